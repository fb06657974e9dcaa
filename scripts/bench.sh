#!/usr/bin/env bash
# `make bench`: what ckb-libbpf costs, as ratios measured in one run each
# (the machines are noisy: setups alternate, medians are compared, nothing
# here is an absolute-time assertion). Sections, all by default:
#   hit    1+2. per-hit cost of the bundled workload: bare / empty programs
#               through our own links (the floor) / ckb-libbpf / bpftrace
#   prog        bpf_stats run time per program call (kernel.bpf_stats_enabled)
#   tool   3.   the tool's own CPU, RSS and lost events at ~10 K and ~100 K calls/s
#   funcs  5.   cost per hit of every function the tool can attach, by probe kind
#               (examples/rocksdb_percall: one function PERCALL_N times a run)
#   causes      what `rocksdb --causes syscall|net` adds to `--causes none`
#               (bundled workload, whole-process CPU)
#   net         per-send cost of `ckb-libbpf net` on a loopback send loop,
#               tp_btf and classic tracepoints (examples/net_workload)
#   budget      what `--overhead-budget` really costs the workload's calling
#               thread, against the tool's own estimate
#   ckb    4.   `ckb import` of an exported dev chain: bare / floor / ckb-libbpf
#               (needs scripts/e2e-ckb.sh's data; skipped otherwise)
#   chain  4.   a running dev chain (node + Dummy miner in notify mode): node
#               CPU per block and blocks/min in alternating windows of bare /
#               floor (`--empty-programs`: same functions, same links) /
#               defaults (`ckb-libbpf rocksdb --pid NODE`); needs a CKB binary
#               (CKB_BIN or `ckb` on PATH; skipped, loudly, otherwise)
#   export      `ckb-libbpf export`: the workload's ops/s bare / exporter
#               attached, not scraped / attached and scraped every 1 s
#               (alternating windows), the exporter's CPU and RSS, and the
#               latency of EXPORT_SCRAPES scrapes of /metrics (curl)
#   overview    `ckb-libbpf overview` in a real terminal (tmux, 200x60): the
#               whole tool's CPU (capture + redraws) over OVERVIEW_SECS, with
#               the workload idle and at ~15 K calls/s, on the Overview and
#               RocksDB tabs (issue 16: under 2 % of a core)
# Usage: scripts/bench.sh [SECTION...]
# Env: OUT (default target/bench), REPS (alternations, 7), ROUNDS (workload
#      rounds per run, 200), METRIC (cpu; wall for elapsed time), TOOL_SECS
#      (10), PERCALL_N (calls of the function per run in `funcs`, 100000),
#      PERCALL_FUNCS (the functions `funcs` measures; all it can call),
#      CAUSES_ROUNDS (300), NET_SENDS (200000), BUDGET (1 %), BUDGET_ROUNDS
#      (8000), BUDGET_REPS (5), CKB_BIN, E2E_DIR, CKB_REPS (5),
#      CHAIN_SECS (30, one window), CHAIN_REPS (8 windows of each setup),
#      CHAIN_SETUPS ("bare floor defaults"; also "nocauses": --causes none),
#      CHAIN_DELAY_MS (500, the miner's Dummy delay: one block per ~0.5 s),
#      CHAIN_PORT (38114: RPC; +1 P2P, +2 the miner's notify listener),
#      CHAIN_TOOL_ARGS (extra `rocksdb` options of the "defaults" windows),
#      EXPORT_SECS (10, one window), EXPORT_REPS (REPS), EXPORT_SCRAPES (1000),
#      EXPORT_SCRAPE_RATE (20000 workload calls/s during them), EXPORT_PORT
#      (39190 and +1: the two exporters).
# Writes $OUT/results.json (one object per measurement) and $OUT/results.md.
# shellcheck disable=SC2317 # the *_run/chain_window callbacks run through alternate()
cd "$(dirname "$0")/.."
. scripts/lib.sh

out=${OUT:-$REPO/target/bench}
reps=${REPS:-7}
rounds=${ROUNDS:-200}
tool_secs=${TOOL_SECS:-10}
tool=$TOOL
wl=$WORKLOAD
sections=${*:-hit prog tool funcs causes net budget ckb chain export overview}
for s in $sections; do
	case $s in
	hit | prog | tool | funcs | causes | net | budget | ckb | chain | export | overview) ;;
	*) die 2 "no section '$s' (sections: hit prog tool funcs causes net budget ckb chain export)" ;;
	esac
done
need_built
need_cmds jq bpftrace bpftool awk perf
need_root "bench loads BPF programs"

mkdir -p "$out"
: >"$out/results.jsonl"
scratch=$(mktemp -d /tmp/ckb-libbpf-bench.XXXXXX)
bg=""
bgs=()
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
bench_cleanup() {
	local p
	# the tracers still running (bg: the one just started, bgs: kept ones)
	for p in $bg "${bgs[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	sysctl -qw kernel.bpf_stats_enabled="$stats_old"
	rm -rf "$scratch"
}
at_exit bench_cleanup
# A private copy: file-wide probes see only our runs, not other users'.
cp "$wl" "$scratch/wl"
w=$scratch/wl

# record SECTION JSON-OBJECT: one machine-readable result line
record() { jq -cn --arg s "$1" --argjson v "$2" '{section: $s} + $v' >>"$out/results.jsonl"; }
stop_bg() {
	if [ -n "$bg" ]; then
		kill -INT "$bg" 2>/dev/null
		wait "$bg" || true
	fi
	bg=""
}

# Tool in the background on $w (bg=its pid, output in $scratch/$name.out);
# remaining args go to `ckb-libbpf rocksdb`.
start_tool() {
	local name=${NAME:-tool}
	"$tool" rocksdb --binary "$w" --json --interval "${INTERVAL:-3600}" "$@" \
		>"$scratch/$name.out" 2>"$scratch/$name.err" &
	bg=$!
	wait_for attached "$scratch/$name.err" "$bg"
}
# wait_causes ERRFILE PID ARGS...: after the RocksDB attach line the tool
# loads its cause layers (unless ARGS leave them out); wait for their line
# so a measurement never starts before everything is attached. A tool that
# loads them later (or never) says so here instead of hanging.
wait_causes() {
	local f=$1 p=$2 a
	shift 2
	for a in "$@"; do
		case $a in --empty-programs | none) return 0 ;; esac
	done
	local deadline=$((SECONDS + 10))
	until grep -q "cause inputs" "$f"; do
		kill -0 "$p" 2>/dev/null || die 1 "the tool exited while loading its cause layers: $(cat "$f")"
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "  note: no 'cause inputs' line 10 s after the attach: measuring without waiting for it"
			return 0
		fi
		sleep 0.05
	done
}
# bpftrace in the background with script $1.
start_bpftrace() {
	local name=${NAME:-bt}
	bpftrace -e "$1" >"$scratch/$name.out" 2>&1 &
	bg=$!
	wait_for Attaching "$scratch/$name.out" "$bg"
	sleep 1 # "Attaching N probes..." is printed before the last attach
}
# Keeps the tracer just started running (stopped by stop_all).
keep() {
	bgs+=("$bg")
	bg=""
}
stop_all() {
	local p
	for p in "${bgs[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait "$p" || true
	done
	bgs=()
}
# One workload run of $w; prints the CPU time it took in µs (task-clock of
# the whole process: user + kernel, where uprobes and BPF programs run). CPU
# time rather than wall time: the other jobs on a shared machine delay a
# run but do not add to its CPU time. METRIC=wall for the workload's own
# elapsed time of its rounds.
run_wl() {
	local wall
	wall=$(perf stat -x, -e task-clock -o "$scratch/perf.out" \
		"$w" --db "$scratch/db" --rounds "$rounds" | sed -n 's/.*"elapsed_us":\([0-9]*\).*/\1/p')
	rm -rf "$scratch/db"
	if [ "${METRIC:-cpu}" = wall ]; then echo "$wall"; else
		awk -F, '/task-clock/ {printf "%d\n", $1 * 1000}' "$scratch/perf.out"
	fi
}
# A workload that waits: `start_waiting ARGS...` starts $wl --wait-stdin
# (wpid = its pid; its stdin is fd 3, a fifo), so a tracer can attach by
# pid before it runs; `go_waiting` runs it and prints its JSON line;
# `end_waiting` lets it exit.
start_waiting() {
	rm -f "$scratch/wl.in"
	mkfifo "$scratch/wl.in"
	"$wl" --db "$scratch/db" --wait-stdin "$@" <"$scratch/wl.in" >"$scratch/wl.out" &
	wpid=$!
	exec 3>"$scratch/wl.in"
	wait_for READY "$scratch/wl.out" "$wpid"
}
go_waiting() {
	echo go >&3
	until grep -q elapsed_us "$scratch/wl.out"; do
		kill -0 "$wpid" 2>/dev/null || die 1 "the workload died: $(cat "$scratch/wl.out")"
		sleep 0.02
	done
	grep elapsed_us "$scratch/wl.out"
}
end_waiting() {
	echo "done" >&3
	exec 3>&-
	wait "$wpid" || true
	rm -rf "$scratch/db"
}
# CPU time of PID's threads in ns (schedstat: exact, not 10 ms ticks); only
# thread PID itself with `main`.
task_cpu_ns() {
	if [ "${2:-}" = main ]; then
		awk '{print $1}' "/proc/$1/task/$1/schedstat"
	else
		cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s}'
	fi
}
# Functions the tool attaches by default (emulated first instruction).
# The ELF symbols (C++ stand-ins mangled: bpftrace cannot name them with
# their `::`s).
default_funcs() {
	"$tool" symbols "$1" --json --tier 1 |
		jq -r '.tier1[] | select(.present and .probe_cost == "emulated") | .symbol // .name'
}
# The equivalent bpftrace script: per-function count and latency histogram.
bt_script() { # FILE FUNCS...
	local f=$1 p="" r="" fn
	shift
	for fn in "$@"; do
		p+="uprobe:$f:$fn,"
		r+="uretprobe:$f:$fn,"
	done
	printf '%s { @start[tid] = nsecs; } %s /@start[tid]/ { @count[probe] = count(); @lat[probe] = hist(nsecs - @start[tid]); delete(@start[tid]); }' \
		"${p%,}" "${r%,}"
}
bt_empty() { # FILE FUNCS...
	local f=$1 p="" r="" fn
	shift
	for fn in "$@"; do
		p+="uprobe:$f:$fn,"
		r+="uretprobe:$f:$fn,"
	done
	printf '%s { } %s { }' "${p%,}" "${r%,}"
}
# bpf_stats of the programs held by PID: "name run_time_ns run_cnt" lines.
prog_stats() {
	local pid=$1 f id
	for f in /proc/"$pid"/fdinfo/*; do
		# program fds only (link fds name a prog_id too, without counters)
		grep -q '^run_cnt:' "$f" 2>/dev/null || continue
		id=$(awk '/^prog_id:/ {print $2}' "$f")
		printf '%s %s\n' "$(bpftool prog show id "$id" -j | jq -r .name)" \
			"$(awk '/^run_time_ns:/ {t=$2} /^run_cnt:/ {c=$2} END {print t, c}' "$f")"
	done | sort -u
}
# prog_groups PID: the bpf_stats run time (ns) of PID's programs by layer,
# "rdb_ns bg_ns other_ns" (rdb_*: RocksDB probes, bg_*: background work,
# the rest: cause layers), then the RocksDB programs' run count.
prog_groups() {
	prog_stats "$1" | awk '{ g = ($1 ~ /^rdb_/) ? 1 : ($1 ~ /^bg_/) ? 2 : 3; t[g] += $2; if (g == 1) c += $3 }
		END { printf "%.0f %.0f %.0f %.0f\n", t[1], t[2], t[3], c }'
}
# proc_cpu PID: utime+stime in clock ticks
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

mapfile -t funcs < <(default_funcs "$w")
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
log "machine: $(uname -r), $(nproc) CPUs, $cpu_model, load $(cut -d' ' -f1-3 /proc/loadavg)"
# commit: the checkout; src_commit: the last commit that changed what is
# measured (the tool's sources), which is what a figure belongs to.
record machine "$(jq -cn --arg k "$(uname -r)" --arg cpu "$cpu_model" \
	--argjson n "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo ?)" \
	--arg src "$(git log -1 --format=%h -- src include build.rs Cargo.toml Cargo.lock 2>/dev/null || echo ?)" \
	--arg dirty "$(git status --porcelain -- src include build.rs 2>/dev/null | wc -l)" \
	--arg bt "$(bpftrace --version)" \
	'{kernel: $k, cpu: $cpu, cpus: $n, load: $load, commit: $commit, src_commit: $src, src_dirty_files: ($dirty | tonumber), bpftrace: $bt}')"

# ---------------------------------------------------------------- 1 + 2
# Every setup traces a private copy of the workload (probes are per file),
# all attached at once, so runs can alternate quickly without attaching and
# detaching in between: REPS rounds of bare, floor, ours, bpftrace,
# bpftrace-empty, in a rotating order.
section_hit() {
	log "== per-hit cost: bare / floor (our links, empty programs) / ckb-libbpf / bpftrace / bpftrace empty; $reps alternations of $rounds rounds"
	local s
	for s in bare floor ours bt bte; do cp "$wl" "$scratch/wl-$s"; done
	w=$scratch/wl-floor NAME=floor start_tool --empty-programs
	keep
	w=$scratch/wl-ours NAME=ours start_tool
	keep
	NAME=bt start_bpftrace "$(bt_script "$scratch/wl-bt" "${funcs[@]}")"
	keep
	NAME=bte start_bpftrace "$(bt_empty "$scratch/wl-bte" "${funcs[@]}")"
	keep
	local -A t=()
	hit_run() {
		t[$1]+=" $(w=$scratch/wl-$1 run_wl)"
		log "  $2 $1: ${t[$1]##* } µs"
	}
	alternate "$reps" hit_run bare floor ours bt bte
	stop_all
	local calls
	calls=$(tail -1 "$scratch/ours.out" | jq --argjson n "$reps" '[.operations[].count] | add / $n')
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record hit "$(jq -cn --arg metric "${METRIC:-cpu}" --argjson b "$(median ${t[bare]})" --argjson f "$(median ${t[floor]})" \
		--argjson o "$(median ${t[ours]})" --argjson t "$(median ${t[bt]})" --argjson e "$(median ${t[bte]})" \
		--argjson c "$calls" --argjson reps "$reps" --argjson rounds "$rounds" --argjson nf "${#funcs[@]}" \
		--arg raw "bare${t[bare]} | floor${t[floor]} | ours${t[ours]} | bpftrace${t[bt]} | bpftrace-empty${t[bte]}" '{
		metric: $metric, functions: $nf, rounds: $rounds, reps: $reps, calls_per_run: $c,
		median_us: {bare: $b, floor: $f, ours: $o, bpftrace: $t, bpftrace_empty: $e},
		per_call_ns: {floor: (($f-$b)*1000/$c), ours: (($o-$b)*1000/$c), bpftrace: (($t-$b)*1000/$c), bpftrace_empty: (($e-$b)*1000/$c)},
		ours_vs_floor: (($o-$b)/($f-$b)), ours_vs_bpftrace: (($o-$b)/($t-$b)), raw_us: $raw}')"
}

# ---------------------------------------------------------------- prog
section_prog() {
	log "== bpf_stats: run time per program call, ours and the empty programs ($reps runs of $rounds rounds each)"
	cp "$wl" "$scratch/wl-floor"
	cp "$wl" "$scratch/wl-ours"
	local -A pid=()
	w=$scratch/wl-floor NAME=floor start_tool --empty-programs
	pid[floor]=$bg
	keep
	w=$scratch/wl-ours NAME=ours start_tool
	pid[ours]=$bg
	keep
	sysctl -qw kernel.bpf_stats_enabled=1
	local -A ns=()
	prog_run() {
		local a b name t0 c0 t1 c1
		a=$(prog_stats "${pid[$1]}")
		w=$scratch/wl-$1 run_wl >/dev/null
		b=$(prog_stats "${pid[$1]}")
		while read -r name t1 c1; do
			read -r t0 c0 < <(awk -v n="$name" '$1 == n {print $2, $3}' <<<"$a")
			[ "$c1" -gt "$c0" ] || continue
			ns[$name]+=" $(((t1 - t0) / (c1 - c0)))"
		done <<<"$b"
	}
	alternate "$reps" prog_run ours floor
	sysctl -qw kernel.bpf_stats_enabled="$stats_old"
	stop_all
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record prog "$(jq -cn --argjson e "$(median ${ns[rdb_enter_m]})" --argjson x "$(median ${ns[rdb_exit_m]})" \
		--argjson ee "$(median ${ns[rdb_empty_enter_m]})" --argjson ex "$(median ${ns[rdb_empty_exit_m]})" \
		--arg raw "enter${ns[rdb_enter_m]} | exit${ns[rdb_exit_m]} | empty enter${ns[rdb_empty_enter_m]} | empty exit${ns[rdb_empty_exit_m]}" \
		'{enter_ns: $e, exit_ns: $x, empty_enter_ns: $ee, empty_exit_ns: $ex, raw_ns: $raw}')"
	log "  $(tail -1 "$out/results.jsonl")"
}

# ---------------------------------------------------------------- 3
section_tool() {
	local hz
	hz=$(getconf CLK_TCK)
	# "name|workload args|tool args": pause 60 ms ≈ 10 K calls/s here, pause
	# 0 is the most the workload does, --rate paces it (76 % of its calls are
	# to functions attached by default: --rate 132000 ≈ 100 K traced calls/s).
	# The rate actually traced is reported. The slow setups put every call
	# through the ring buffer and print it (JSON lines into a file).
	local specs=(
		"10k|--pause-ms 60|"
		"100k|--pause-ms 0|"
		"100k-slow|--rate 132000|--slow --threshold 0"
		"max-slow|--pause-ms 0|--slow --threshold 0"
	)
	local spec name wargs targs
	for spec in "${specs[@]}"; do
		IFS='|' read -r name wargs targs <<<"$spec"
		log "== tool's own cost: $name (workload $wargs, $tool_secs s) $targs"
		# shellcheck disable=SC2086 # the argument lists are meant to split
		INTERVAL=1 start_tool $targs
		sleep 2 # past start-up: steady state only
		local c0 t0 c1 t1 rss_steady hwm
		c0=$(proc_cpu "$bg")
		t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		"$w" --db "$scratch/db" --secs "$tool_secs" $wargs >"$scratch/wl.out"
		c1=$(proc_cpu "$bg")
		t1=$(date +%s.%N)
		rss_steady=$(awk '/^VmRSS:/ {print $2}' "/proc/$bg/status")
		hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$bg/status")
		rm -rf "$scratch/db"
		stop_bg
		local calls lost slow lines
		calls=$(tail -1 "$scratch/tool.out" | jq '[.operations[].count] | add')
		lost=$(tail -1 "$scratch/tool.out" | jq '.lost_events + .uncounted_calls')
		slow=$(tail -1 "$scratch/tool.out" | jq '.slow_events')
		lines=$(grep -c '"type":"slow"' "$scratch/tool.out" || true)
		record tool "$(jq -cn --arg n "$name" --argjson c0 "$c0" --argjson c1 "$c1" --argjson t0 "$t0" --argjson t1 "$t1" \
			--argjson hz "$hz" --argjson calls "$calls" --argjson secs "$tool_secs" --argjson lost "$lost" \
			--argjson slow "$slow" --argjson lines "$lines" --argjson rss "$rss_steady" --argjson hwm "$hwm" --arg wl "$wargs" '{
			setup: $n, workload: $wl, calls_per_s: ($calls / $secs), cpu_pct_of_core: (($c1-$c0)/$hz*100/($t1-$t0)),
			rss_steady_kb: $rss, rss_peak_kb: $hwm, slow_events: $slow, slow_lines_printed: $lines, lost: $lost}')"
		log "  $(tail -1 "$out/results.jsonl")"
	done
}

# ---------------------------------------------------------------- 5
# examples/rocksdb_percall calls ONE function PERCALL_N times in a tight
# loop and prints the loop's CPU time (its thread's user + kernel time,
# where the uprobe traps and BPF programs run). Per function: the floor
# (empty programs, our links) and ckb-libbpf --ops FUNC stay attached to
# private copies, and REPS runs of bare / floor / ours alternate in a
# rotating order; cost per hit = (median traced - median bare) / hits.
# `--ops FUNC` names the function, so single-stepped ones are probed too.
section_funcs() {
	local pc=$REPO/target/release/examples/rocksdb_percall n=${PERCALL_N:-100000}
	[ -x "$pc" ] || die 1 "build first: cargo build --release --example rocksdb_percall"
	log "== cost per hit of each function: rocksdb_percall --n $n, bare / floor / ckb-libbpf --ops FUNC, $reps alternations"
	local s
	for s in bare floor ours; do cp "$pc" "$scratch/pc-$s"; done
	local -A insn=() kind=() opof=()
	local name k i o
	while read -r name k i o; do
		kind[$name]=$k
		insn[$name]=$i
		opof[$name]=$o
	done < <("$tool" symbols "$scratch/pc-bare" --json --tier 1 |
		jq -r '.tier1[] | select(.present) | "\(.name) \(.probe_cost) \(.first_insn | gsub(" "; "_")) \(.op)"')
	local fn hits setup
	local -A t=()
	funcs_run() { # SETUP: one run of the loop, "loop_cpu_ns hits setup_calls"
		local v h u
		read -r v h u <<<"$("$scratch/pc-$1" --func "$fn" --n "$n" --db "$scratch/pcdb-$1" |
			jq -r "[.loop_${METRIC:-cpu}_ns, .hits, .setup_calls] | @tsv")"
		rm -rf "$scratch/pcdb-$1"
		t[$1]+=" $v"
		hits=$h
		setup=$u
	}
	# funcs_one PROBE_COST [TOOL_ARGS...]: floor / ours with TOOL_ARGS on
	# the loop of $fn, one record.
	funcs_one() {
		local cost=$1
		shift
		w=$scratch/pc-floor NAME=floor start_tool --empty-programs "$@"
		keep
		w=$scratch/pc-ours NAME=ours start_tool "$@"
		keep
		t=()
		hits=0
		setup=0
		alternate "$reps" funcs_run bare floor ours
		stop_all
		# Ground truth: the tool saw exactly the calls the loop made.
		local seen
		seen=$(tail -1 "$scratch/ours.out" | jq --arg op "${opof[$fn]}" '.operations[$op].count // 0')
		# shellcheck disable=SC2086 # word splitting of the lists is meant
		record funcs "$(jq -cn --arg f "$fn" --arg k "$cost" --arg insn "${insn[$fn]//_/ }" \
			--argjson n "$hits" --argjson u "$setup" --argjson reps "$reps" --argjson seen "$seen" --arg metric "${METRIC:-cpu}" \
			--argjson b "$(median ${t[bare]})" --argjson fl "$(median ${t[floor]})" --argjson o "$(median ${t[ours]})" \
			--arg raw "bare${t[bare]} | floor${t[floor]} | ours${t[ours]}" '{
			function: $f, probe_cost: $k, first_insn: $insn, metric: $metric, calls_per_run: $n, reps: $reps,
			calls_seen: $seen, calls_expected: (($n + $u) * $reps), bare_ns_per_call: ($b / $n),
			floor_ns_per_hit: (($fl-$b)/$n), ours_ns_per_hit: (($o-$b)/$n), raw_ns: $raw}')"
		log "  $(tail -1 "$out/results.jsonl" | jq -c '{function, probe_cost, floor_ns_per_hit, ours_ns_per_hit, calls_seen, calls_expected}')"
	}
	local standins=()
	for fn in ${PERCALL_FUNCS:-$("$pc" --list)}; do
		[ -n "${kind[$fn]:-}" ] || {
			log "  $fn: not in the binary, skipped"
			continue
		}
		funcs_one "${kind[$fn]}" --ops "$fn"
		[ "${kind[$fn]}" = single-step ] && [[ ${opof[$fn]} == ITER_* ]] && standins+=("$fn")
	done
	# A single-stepped iterator function is counted by default at the C++
	# method it calls (its stand-in, emulated): the default plan, whose
	# other probes do not fire in this loop. ITER_NEXT's loop seeks back to
	# the start every PREFILL keys; those few seeks are charged to it.
	for fn in "${standins[@]}"; do
		log "  $fn by default (its C++ stand-in)"
		funcs_one stand-in
	done
}

# ---------------------------------------------------------------- causes
# What the cause layers add: `rocksdb --pid P --causes none / syscall / net`
# on fresh workload runs (a waiting workload, attached by pid before it
# starts), rotating. CPU = every thread of the workload (schedstat, ns):
# the syscall layer taxes every syscall of every thread, not only the
# thread that calls RocksDB.
section_causes() {
	local n=${CAUSES_ROUNDS:-300}
	log "== cause layers: ckb-libbpf rocksdb --causes none / syscall / net, $reps alternations of $n rounds (workload CPU, all threads)"
	local -A t=()
	causes_run() {
		start_waiting --rounds "$n"
		"$tool" rocksdb --pid "$wpid" --interval 3600 --json --causes "$1" \
			>"$scratch/causes.out" 2>"$scratch/causes.err" &
		bg=$!
		wait_for attached "$scratch/causes.err" "$bg"
		wait_causes "$scratch/causes.err" "$bg" --causes "$1"
		local c0 c1
		c0=$(task_cpu_ns "$wpid")
		go_waiting >/dev/null
		c1=$(task_cpu_ns "$wpid")
		stop_bg
		end_waiting
		t[$1]+=" $(((c1 - c0) / 1000))"
		log "  $2 $1: ${t[$1]##* } µs"
	}
	alternate "$reps" causes_run none syscall net
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record causes "$(jq -cn --argjson rounds "$n" --argjson reps "$reps" \
		--argjson b "$(median ${t[none]})" --argjson s "$(median ${t[syscall]})" --argjson n "$(median ${t[net]})" \
		--arg raw "none${t[none]} | syscall${t[syscall]} | net${t[net]}" '{
		rounds: $rounds, reps: $reps, median_cpu_us: {none: $b, syscall: $s, net: $n},
		syscall_vs_none: ($s / $b), net_vs_none: ($n / $b), raw_us: $raw}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw_us)')"
}

# ---------------------------------------------------------------- net
# Per-send cost of the net layer: one examples/net_workload process sends
# NET_SENDS 64-byte writes to its own listener and times its send loop
# (wall ns per send); runs alternate bare / `ckb-libbpf net --backend
# tp_btf` / `--backend tracepoint`, the tool attached before each traced
# run and stopped after it.
section_net() {
	local nw=$REPO/target/release/examples/net_workload n=${NET_SENDS:-200000}
	[ -x "$nw" ] || die 1 "build first: cargo build --release --example net_workload"
	log "== net layer: ns per 64-byte loopback send, bare / tp_btf / tracepoint, $reps alternations of $n sends"
	coproc NW { "$nw"; }
	local nwpid=$NW_PID npid port4 rest
	kill_at_exit "$nwpid"
	read -r _ npid port4 rest <&"${NW[0]}"
	[ -n "$port4" ] || die 1 "net_workload did not print READY"
	local -A t=()
	net_send() {
		local line
		echo "bench 127.0.0.1:$port4 $n" >&"${NW[1]}"
		read -r line <&"${NW[0]}"
		jq -r .ns_per_call <<<"$line"
	}
	net_run() {
		if [ "$1" != bare ]; then
			"$tool" net --pid "$npid" --backend "$1" --interval 60 >/dev/null 2>"$scratch/net.err" &
			bg=$!
			wait_for attached "$scratch/net.err" "$bg"
		fi
		t[$1]+=" $(net_send)"
		stop_bg
		log "  $2 $1: ${t[$1]##* } ns/send"
	}
	net_send >/dev/null # warm-up: connection, page cache, CPU frequency
	alternate "$reps" net_run bare tp_btf tracepoint
	echo quit >&"${NW[1]}"
	wait "$nwpid" 2>/dev/null || true
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record net "$(jq -cn --argjson sends "$n" --argjson reps "$reps" \
		--argjson b "$(median ${t[bare]})" --argjson p "$(median ${t[tp_btf]})" --argjson c "$(median ${t[tracepoint]})" \
		--arg raw "bare${t[bare]} | tp_btf${t[tp_btf]} | tracepoint${t[tracepoint]}" '{
		sends: $sends, reps: $reps, median_ns_per_send: {bare: $b, tp_btf: $p, tracepoint: $c},
		added_ns_per_send: {tp_btf: ($p - $b), tracepoint: ($c - $b)}, raw_ns: $raw}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw_ns)')"
}

# ---------------------------------------------------------------- budget
# What `--overhead-budget B` really costs: the same fixed work
# (`--rounds BUDGET_ROUNDS --pause-ms 0`, full speed) bare / under
# `rocksdb --overhead-budget B` / under plain `rocksdb` (both `--interval 1
# --causes none`), rotating. CPU = run time of the workload's calling
# thread (the one where the uprobe traps and programs run; RocksDB's
# background threads only add noise) from its first call to its report;
# extra CPU in % of one core = (median - bare median) / median wall time,
# which is what the budget limits. Also the tool's own estimate (final
# report's `overhead`).
section_budget() {
	local b=${BUDGET:-1} n=${BUDGET_ROUNDS:-8000} r=${BUDGET_REPS:-5}
	log "== --overhead-budget $b: bare / budget / no budget, $r alternations of $n rounds at full speed"
	local -A cpu=() wall=() est=() att=()
	budget_run() {
		local extra=() c0 c1 line
		[ "$1" != budget ] || extra=(--overhead-budget "$b")
		start_waiting --rounds "$n" --pause-ms 0
		if [ "$1" != bare ]; then
			"$tool" rocksdb --pid "$wpid" --json --interval 1 --causes none "${extra[@]}" \
				>"$scratch/budget.out" 2>"$scratch/budget.err" &
			bg=$!
			wait_for "RocksDB functions" "$scratch/budget.err" "$bg"
		fi
		c0=$(task_cpu_ns "$wpid" main)
		line=$(go_waiting)
		c1=$(task_cpu_ns "$wpid" main)
		cpu[$1]+=" $(((c1 - c0) / 1000000))"
		wall[$1]+=" $(($(jq .elapsed_us <<<"$line") / 1000))"
		local msg="  $2 $1: CPU ${cpu[$1]##* } ms, wall ${wall[$1]##* } ms"
		if [ "$1" != bare ]; then
			stop_bg
			local e a
			read -r e a < <(jq -r 'select(.final == true) | "\(.overhead.est_pct_core) \(.overhead.attached_pct)"' "$scratch/budget.out")
			[ -n "${a:-}" ] || die 1 "no final report with an overhead estimate from the tool: $(tail -3 "$scratch/budget.err")"
			est[$1]+=" $e"
			att[$1]+=" $a"
			msg+=", tool's estimate $e % of a core, attached $a %"
		fi
		end_waiting
		log "$msg"
	}
	alternate "$r" budget_run bare budget full
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record budget "$(jq -cn --argjson budget "$b" --argjson rounds "$n" --argjson reps "$r" \
		--argjson cb "$(median ${cpu[bare]})" --argjson cu "$(median ${cpu[budget]})" --argjson cf "$(median ${cpu[full]})" \
		--argjson wu "$(median ${wall[budget]})" --argjson wf "$(median ${wall[full]})" \
		--argjson eu "$(median ${est[budget]})" --argjson ef "$(median ${est[full]})" \
		--argjson au "$(median ${att[budget]})" --argjson af "$(median ${att[full]})" \
		--arg raw "CPU ms bare${cpu[bare]} | budget${cpu[budget]} | full${cpu[full]}; wall ms bare${wall[bare]} | budget${wall[budget]} | full${wall[full]}" '{
		budget_pct: $budget, rounds: $rounds, reps: $reps,
		median_cpu_ms: {bare: $cb, budget: $cu, full: $cf}, median_wall_ms: {budget: $wu, full: $wf},
		extra_pct_core: {budget: (($cu - $cb) * 100 / $wu), full: (($cf - $cb) * 100 / $wf)},
		tool_estimate_pct_core: {budget: $eu, full: $ef}, attached_pct: {budget: $au, full: $af}, raw: $raw}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw)')"
}

# ---------------------------------------------------------------- 4
# ckb_or_skip SECTION: the CKB binary, or records the section as skipped
# (loudly: a figure that was not measured must not look measured).
ckb_or_skip() {
	local c
	if c=$(find_ckb 2>"$scratch/find-ckb.err"); then
		printf '%s\n' "$c"
		return 0
	fi
	log "############################################################"
	log "== $1: SKIPPED, NOT MEASURED: $(tr '\n' ' ' <"$scratch/find-ckb.err")"
	log "############################################################"
	record "$1" "$(jq -cn --arg why "$(head -1 "$scratch/find-ckb.err")" '{skipped: true, why: $why}')"
	return 1
}

section_ckb() {
	local ckb dir=${E2E_DIR:-/tmp/ckb-libbpf-e2e} n=${CKB_REPS:-5} exported
	ckb=$(ckb_or_skip ckb) || return 0
	exported=$(find "$dir/export" -maxdepth 1 -name '*.json*' 2>/dev/null | sort | head -1)
	if [ -z "$exported" ] || [ ! -f "$dir/chain/specs/dev.toml" ]; then
		log "== ckb import: SKIPPED, NOT MEASURED: needs scripts/e2e-ckb.sh's export in $dir (E2E_DIR)"
		record ckb "$(jq -cn --arg d "$dir" '{skipped: true, why: ("no export in " + $d)}')"
		return
	fi
	cp "$ckb" "$scratch/ckb"
	local c=$scratch/ckb
	log "== ckb import of $exported: bare / floor / ckb-libbpf, $n alternations"
	# CPU seconds (task-clock) by default: wall time is quantised here
	# (runs fall ~1 s apart whatever is attached); METRIC=wall for elapsed
	# seconds. Ports: `import` runs no node, they are never opened.
	local -A t=()
	ckb_import() {
		case $1 in
		floor) w=$c start_tool --empty-programs ;;
		ours) w=$c start_tool ;;
		esac
		rm -rf "$scratch/imp"
		ckb_dev_init "$c" "$scratch/imp" 38414 38415
		cp "$dir/chain/specs/dev.toml" "$scratch/imp/specs/dev.toml" # the exporting chain's spec
		local t0 t1 v
		t0=$(date +%s.%N)
		perf stat -x, -e task-clock -o "$scratch/perf.out" \
			"$c" import -C "$scratch/imp" "$exported" >/dev/null 2>&1
		t1=$(date +%s.%N)
		rm -rf "$scratch/imp"
		local g=(0 0 0 0)
		[ -z "${STATS_PASS:-}" ] || read -ra g < <(prog_groups "$bg")
		stop_bg
		if [ "${METRIC:-cpu}" = wall ]; then
			v=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}')
		else
			v=$(awk -F, '/task-clock/ {printf "%.3f\n", $1 / 1000}' "$scratch/perf.out")
		fi
		if [ -z "${STATS_PASS:-}" ]; then
			t[$1]+=" $v"
			log "  $2 $1: $v s"
			return
		fi
		# The programs' own run time as a share of the import's CPU, by
		# layer, and per RocksDB program run (entry and return each).
		local cpu_ns
		cpu_ns=$(awk -F, '/task-clock/ {printf "%.0f\n", $1 * 1e6}' "$scratch/perf.out")
		pg[$1]+=" $(awk -v r="${g[0]}" -v c="$cpu_ns" 'BEGIN {printf "%.3f", r / c * 100}')"
		ps[$1]+=" $(awk -v r="${g[0]}" 'BEGIN {printf "%.4f", r / 1e9}')"
		pb[$1]+=" $(awk -v r="${g[1]}" -v c="$cpu_ns" 'BEGIN {printf "%.3f", r / c * 100}')"
		ph[$1]+=" $(awk -v r="${g[0]}" -v n="${g[3]}" 'BEGIN {printf "%.1f", n ? r / n : 0}')"
		hits[$1]=${g[3]}
		log "  bpf_stats $2 $1: $v s, RocksDB programs ${g[3]} runs, ${g[0]} ns; background ${g[1]} ns"
	}
	local -A pg=() pb=() ph=() hits=() ps=()
	# Timed runs with bpf_stats off (it adds ~25 ns to every program run,
	# to the floor's as much as ours, which would flatter the ratios);
	# then CKB_STATS_REPS (3) runs of floor and ours with it on, untimed,
	# for where the time goes.
	sysctl -qw kernel.bpf_stats_enabled=0
	alternate "$n" ckb_import bare floor ours
	sysctl -qw kernel.bpf_stats_enabled=1
	STATS_PASS=1 alternate "${CKB_STATS_REPS:-3}" ckb_import floor ours
	sysctl -qw kernel.bpf_stats_enabled="$stats_old"
	local blocks
	blocks=$(wc -l <"$exported")
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record ckb "$(jq -cn --arg metric "${METRIC:-cpu}" --argjson b "$(median ${t[bare]})" --argjson f "$(median ${t[floor]})" \
		--argjson o "$(median ${t[ours]})" --argjson blocks "$blocks" \
		--argjson rdb_f "$(median ${pg[floor]})" --argjson rdb_o "$(median ${pg[ours]})" \
		--argjson bg_o "$(median ${pb[ours]})" --argjson hit_f "$(median ${ph[floor]})" --argjson hit_o "$(median ${ph[ours]})" \
		--argjson hits "${hits[ours]}" \
		--argjson ps_f "$(median ${ps[floor]})" --argjson ps_o "$(median ${ps[ours]})" \
		--arg raw "bare${t[bare]} | floor${t[floor]} | ours${t[ours]}" '{
		metric: $metric, blocks: $blocks, median_s: {bare: $b, floor: $f, ours: $o},
		rocksdb_program_runs: $hits,
		# bpf_stats (medians): program run time as % of the import CPU
		programs_pct_of_import_cpu: {floor_rdb: $rdb_f, ours_rdb: $rdb_o, ours_background: $bg_o},
		program_ns_per_run: {floor: $hit_f, ours: $hit_o},
		floor_slowdown: ($f/$b), ours_slowdown: ($o/$b), ours_vs_floor: (($o/$b)/($f/$b)),
		# the same runs read the other way: what ours adds over bare per
		# unit the floor adds (an independent measurement used this one)
		added_vs_floor_added: (if $f > $b then (($o - $b)/($f - $b)) else null end),
		# the same reading with ours - floor taken from bpf_stats (the run
		# time of our programs minus that of the empty ones, seconds per
		# import): far less noisy than a difference of two timed medians
		program_s: {floor: $ps_f, ours: $ps_o},
		added_vs_floor_added_by_program_time: (if $f > $b then (1 + ($ps_o - $ps_f)/($f - $b)) else null end),
		raw_s: $raw}')"
}

# ---------------------------------------------------------------- 4 (chain)
# A running dev chain, network-bound: the miner (Dummy worker, CHAIN_DELAY_MS
# per block) is told of every new block template by the node (notify mode),
# so blocks arrive at a fixed cadence like a node following the network.
# One chain, one node process: windows of CHAIN_SECS rotate over
# CHAIN_SETUPS (bare floor defaults, floor defaults bare, ...) so a linear
# drift (the chain growing, other jobs) falls on every setup alike; the
# tool is started before a traced window and stopped (SIGINT) after it,
# with the same 2 s settle before every window. Two chains side by side
# were not used: two nodes + two miners on 2 shared cores disturb each
# other, and their chains never have the same state.
#   bare      nothing attached
#   floor     `rocksdb --pid NODE --empty-programs`: the same functions
#             through the same links, programs that return at once (no
#             background or cause layer): what the kernel charges
#   defaults  `rocksdb --pid NODE` with its default options (CHAIN_TOOL_ARGS
#             added): programs, background layer, default cause layers
#   nocauses  `rocksdb --pid NODE --causes none` (optional)
# Per window: blocks/min (tip header timestamps), node CPU per block (the
# whole process, exited threads included: usage_usec of a cgroup v2
# holding only the node when one can be made, exact to the µs; otherwise
# /proc/PID/stat utime+stime, in 10 ms ticks); per traced window: RocksDB
# calls the tool saw (final JSON line) per second and per block, and its
# lost_events + uncounted_calls. Ratios are taken per alternation (the
# windows of one rotation are minutes apart, not the whole run), and their
# min / median / max is the spread.
section_chain() {
	local ckb secs=${CHAIN_SECS:-30} n=${CHAIN_REPS:-8} delay=${CHAIN_DELAY_MS:-500} port=${CHAIN_PORT:-38114}
	local setups
	read -ra setups <<<"${CHAIN_SETUPS:-bare floor defaults}"
	local s
	for s in "${setups[@]}"; do
		case $s in bare | floor | defaults | nocauses) ;; *) die 2 "CHAIN_SETUPS: no setup '$s' (bare floor defaults nocauses)" ;; esac
	done
	ckb=$(ckb_or_skip chain) || return 0
	need_cmds curl
	ports_free "$port" $((port + 1)) $((port + 2))
	# A private copy: uprobes are per file, so no one else's ckb pays for
	# our probes, and no one else's probes land in our node.
	cp "$ckb" "$scratch/ckb-chain"
	local c=$scratch/ckb-chain d=$scratch/chain hz node miner
	hz=$(getconf CLK_TCK)
	ckb_dev_init "$c" "$d" "$port" $((port + 1))
	ckb_dev_miner "$d" "$delay" $((port + 2))
	local cg="" cpu_src="proc_stat_ticks" root
	root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
	local cgdir=${root:-/nonexistent}/ckb-libbpf-bench.$$
	# registered before the node's kill: at exit the node goes first (newest
	# first), then its emptied cgroup
	at_exit "rmdir '$cgdir' 2>/dev/null"
	"$c" run -C "$d" >"$d/node.out" 2>&1 &
	node=$!
	kill_at_exit "$node"
	wait_port "$port" "$node" 60
	"$c" miner -C "$d" >"$d/miner.out" 2>&1 &
	miner=$!
	kill_at_exit "$miner"
	if [ -n "$root" ] && mkdir "$cgdir" 2>/dev/null; then
		if echo "$node" >"$cgdir/cgroup.procs" 2>/dev/null && [ -r "$cgdir/cpu.stat" ]; then
			cg=$cgdir
			cpu_src="cgroup2_usage_usec"
		fi
	fi
	chain_tip() { # prints "number timestamp_ms" of the tip block
		local r
		r=$(ckb_rpc "$port" get_tip_header | jq -r '.result | "\(.number) \(.timestamp)"' 2>/dev/null) || true
		[[ $r == 0x*" "0x* ]] || die 1 "chain: the node's RPC on 127.0.0.1:$port does not answer"
		echo $((${r% *})) $((${r#* }))
	}
	chain_alive() { # fails loudly if the node or the miner died
		local q
		for q in "$node" "$miner"; do
			kill -0 "$q" 2>/dev/null && continue
			log "chain: a ckb process died; logs:"
			tail -5 "$d/node.out" "$d/miner.out" >&2
			exit 1
		done
	}
	node_cpu_us() {
		if [ -n "$cg" ]; then
			awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat"
		else
			echo $(($(proc_cpu "$node") * 1000000 / hz))
		fi
	}
	# Warm-up: past start-up, and proof the chain produces blocks.
	local w0 w1 _ts tip
	tip=$(chain_tip)
	read -r w0 _ts <<<"$tip"
	sleep "${CHAIN_WARMUP:-20}"
	chain_alive
	tip=$(chain_tip)
	read -r w1 _ts <<<"$tip"
	[ "$w1" -gt "$w0" ] || {
		log "chain: no block mined in ${CHAIN_WARMUP:-20} s (tip $w1); miner log:"
		tail -20 "$d/miner.out" >&2
		exit 1
	}
	log "== running dev chain: $n × ${secs} s windows each of ${setups[*]} (rotating) on node pid $node; miner delay $delay ms; tip $w1 after warm-up; node CPU from $cpu_src"
	local -A bpm=() cpb=() cps=() cpbk=() lost=() pshare=()
	# The programs' own run time (bpf_stats, on for every setup alike) as a
	# share of the node's CPU in the same window, per layer: rdb_* (the
	# RocksDB probes), bg_* (background work), the rest (the cause layers,
	# system-wide hooks filtered in BPF: their run time on other processes'
	# events counts too, so it is an upper bound). Far less noisy than the
	# node's CPU per block, whose windows differ by ~10 %: it resolves the
	# "cause layers <= 1 %" question that the CPU totals cannot.
	sysctl -qw kernel.bpf_stats_enabled=1
	chain_window() { # SETUP I
		local s=$1 i=$2 f=$scratch/chain-$1-$2 args=()
		case $s in
		floor) args=(--empty-programs) ;;
		defaults) read -ra args <<<"${CHAIN_TOOL_ARGS:-}" ;;
		nocauses) args=(--causes none) ;;
		esac
		if [ "$s" != bare ]; then
			"$tool" rocksdb --pid "$node" --json --interval 3600 "${args[@]}" >"$f.out" 2>"$f.err" &
			bg=$!
			wait_for attached "$f.err" "$bg"
			wait_causes "$f.err" "$bg" "${args[@]}"
		fi
		sleep 2 # settle: the same for every setup
		local a0 ts0 c0 t0 a1 ts1 c1 t1 bps tip g0=(0 0 0) g1=(0 0 0)
		chain_alive
		tip=$(chain_tip)
		read -r a0 ts0 <<<"$tip"
		[ "$s" = bare ] || read -ra g0 < <(prog_groups "$bg")
		c0=$(node_cpu_us)
		t0=$(date +%s.%N)
		sleep "$secs"
		tip=$(chain_tip)
		read -r a1 ts1 <<<"$tip"
		c1=$(node_cpu_us)
		t1=$(date +%s.%N)
		[ "$s" = bare ] || read -ra g1 < <(prog_groups "$bg")
		chain_alive
		[ "$a1" -gt "$a0" ] || die 1 "chain: no block in a ${secs} s window ($s $i, tip $a1)"
		# The rate from the tip blocks' own timestamps (set by the node
		# when it assembles each template, ms): no ±1 block of window
		# edge. CPU per block = CPU per wall second / blocks per second.
		bps=$(awk -v b=$((a1 - a0)) -v d=$((ts1 - ts0)) 'BEGIN {printf "%.6f", b * 1000 / d}')
		bpm[$s,$i]=$(awk -v r="$bps" 'BEGIN {printf "%.2f", r * 60}')
		cpb[$s,$i]=$(awk -v c=$((c1 - c0)) -v r="$bps" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.4f", c / 1000 / (t1 - t0) / r}')
		local msg
		msg="  $i $s: $((a1 - a0)) blocks in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s, node CPU $(((c1 - c0) / 1000)) ms, ${cpb[$s,$i]} ms/block"
		if [ "$s" != bare ]; then
			local calls el ls
			stop_bg
			[ "$(tail -1 "$f.out" | jq -r .final)" = true ] || die 1 "chain: the tool's last line is not final: $(tail -3 "$f.err")"
			# calls per block: the tool's rate (from attach to SIGINT,
			# settle included) over the window's block rate
			read -r calls el ls < <(tail -1 "$f.out" |
				jq -r '[([.operations[].count] | add // 0), .elapsed_secs, (.lost_events + .uncounted_calls)] | @tsv')
			cps[$s]+=" $(awk -v c="$calls" -v e="$el" 'BEGIN {printf "%.1f", c / e}')"
			cpbk[$s]+=" $(awk -v c="$calls" -v e="$el" -v r="$bps" 'BEGIN {printf "%.1f", c / e / r}')"
			lost[$s]+=" $ls"
			msg+=", tool: $calls RocksDB calls in $el s, lost $ls"
			# shares of the node's CPU (%), per layer
			local sh
			sh=$(awk -v c=$((c1 - c0)) -v a="${g1[0]} ${g1[1]} ${g1[2]}" -v b="${g0[0]} ${g0[1]} ${g0[2]}" 'BEGIN {
				split(a, x, " "); split(b, y, " ")
				printf "%.4f %.4f %.4f", (x[1] - y[1]) / 10 / c, (x[2] - y[2]) / 10 / c, (x[3] - y[3]) / 10 / c }')
			pshare[$s]+="${pshare[$s]:+,}[${sh// /,}]"
			msg+=", programs' run time % of node CPU (rocksdb background causes): $sh"
		fi
		log "$msg"
	}
	alternate "$n" chain_window "${setups[@]}"
	# No probe left behind: the last tool is gone, the node still runs.
	chain_alive
	# Per setup, the windows in alternation order, as JSON arrays.
	local jb="{}" jc="{}" jt="{}" i list
	for s in "${setups[@]}"; do
		list=""
		for i in $(seq "$n"); do list+="${list:+,}${cpb[$s,$i]}"; done
		jc=$(jq -c --arg s "$s" --argjson v "[$list]" '. + {($s): $v}' <<<"$jc")
		list=""
		for i in $(seq "$n"); do list+="${list:+,}${bpm[$s,$i]}"; done
		jb=$(jq -c --arg s "$s" --argjson v "[$list]" '. + {($s): $v}' <<<"$jb")
		[ "$s" = bare ] || jt=$(jq -c --arg s "$s" --arg c "${cps[$s]}" --arg k "${cpbk[$s]}" --arg l "${lost[$s]}" \
			--argjson p "[${pshare[$s]}]" \
			'def nums: split(" ") | map(select(. != "") | tonumber);
			 . + {($s): {calls_per_s: ($c | nums), calls_per_block: ($k | nums), lost: ($l | nums | add),
			   prog_pct_of_node_cpu: {rocksdb: [$p[][0]], background: [$p[][1]], causes: [$p[][2]]}}}' <<<"$jt")
	done
	local final_tip
	tip=$(chain_tip)
	read -r final_tip _ts <<<"$tip"
	record chain "$(jq -cn --argjson secs "$secs" --argjson reps "$n" --argjson delay "$delay" --argjson tip "$final_tip" \
		--arg src "$cpu_src" --arg targs "${CHAIN_TOOL_ARGS:-}" --argjson cpb "$jc" --argjson bpm "$jb" --argjson tool "$jt" '
		def median: sort | .[((length - 1) / 2 | floor)];
		def spread: sort | {min: .[0], median: .[((length - 1) / 2 | floor)], max: .[-1]};
		# per alternation: f(x_i; y_i) over the windows of the same rotation
		def per(a; b; f): [range(0; a | length) as $i | [a[$i], b[$i]] | f] | spread;
		def per3(a; b; c; f): [range(0; a | length) as $i | [a[$i], b[$i], c[$i]] | f] | spread;
		$cpb as $c | {
		window_s: $secs, reps: $reps, setups: ($cpb | keys_unsorted), miner_delay_ms: $delay, tool_args: $targs,
		final_tip: $tip, cpu_source: $src,
		blocks_per_min: ($bpm | map_values(median)), cpu_ms_per_block: ($cpb | map_values(median)),
		per_alternation: ({}
			+ (if $c.floor and $c.bare then {floor_vs_bare: per($c.floor; $c.bare; .[0] / .[1])} else {} end)
			+ (if $c.defaults and $c.bare then {defaults_vs_bare: per($c.defaults; $c.bare; .[0] / .[1])} else {} end)
			+ (if $c.defaults and $c.floor then {defaults_vs_floor: per($c.defaults; $c.floor; .[0] / .[1])} else {} end)
			+ (if $c.defaults and $c.floor and $c.bare then
				{above_floor_share_of_bare: per3($c.defaults; $c.floor; $c.bare; (.[0] - .[1]) / .[2])} else {} end)
			+ (if $c.defaults and $c.nocauses and $c.bare then
				{causes_share_of_bare: per3($c.defaults; $c.nocauses; $c.bare; (.[0] - .[1]) / .[2])} else {} end)),
		tool: ($tool | map_values({calls_per_s: (.calls_per_s | median), calls_per_block: (.calls_per_block | median), lost,
			prog_pct_of_node_cpu: (.prog_pct_of_node_cpu | map_values(spread))})),
		# ratios of the mean CPU per block over all windows of each setup
		totals: (($c | map_values(add / length)) as $m | {}
			+ (if $m.floor and $m.bare then {floor_vs_bare: ($m.floor / $m.bare)} else {} end)
			+ (if $m.defaults and $m.floor then {defaults_vs_floor: ($m.defaults / $m.floor)} else {} end)
			+ (if $m.defaults and $m.nocauses then {defaults_vs_nocauses: ($m.defaults / $m.nocauses)} else {} end)),
		raw: {cpu_ms_per_block: $cpb, blocks_per_min: $bpm, tool: $tool}}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw)')"
	kill -TERM "$miner" "$node" 2>/dev/null || true
	wait "$miner" "$node" 2>/dev/null || true
	rmdir "$cgdir" 2>/dev/null || true
	rm -rf "$d" "$c"
}

# ---------------------------------------------------------------- export
# What `ckb-libbpf export` costs, and whether being scraped changes that.
# Three private copies of the workload: bare; "quiet", traced by an
# exporter that nobody scrapes; "scraped", traced by an exporter that is
# scraped every second during its windows (as Prometheus would, with its
# Accept header). Both exporters (`export --binary COPY --layers
# rocksdb,background --interval 1`: the net layer needs one process to
# follow, and the workload opens no socket) stay attached for the whole
# section, so windows rotate over bare / quiet / scraped without attach or
# detach in between. A window is one workload run of EXPORT_SECS at full
# speed with a second database (`--cf-db2`: the page has per-family series
# too); its measure is the workload's own calls over its own elapsed time
# (ops/s), plus its CPU per call (perf task-clock, which the other jobs of
# a shared machine do not inflate). Ratios are taken per alternation; their
# min / median / max is the spread. The exporters' CPU (utime + stime) is
# taken over their own windows (schedstat, every thread, ns), their RSS at
# the end of each.
# Then EXPORT_SCRAPES scrapes back to back of the scraped exporter while a
# workload runs paced at EXPORT_SCRAPE_RATE calls/s (a node's pace, not a
# saturated core): curl's time_total, p50 / p99 / max, and the page size.
section_export() {
	local secs=${EXPORT_SECS:-10} n=${EXPORT_REPS:-$reps} scrapes=${EXPORT_SCRAPES:-1000} rate=${EXPORT_SCRAPE_RATE:-20000}
	local p0=${EXPORT_PORT:-39190} s
	need_cmds curl
	ports_free "$p0" $((p0 + 1))
	local accept='application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
	local -A epid=() eport=([quiet]=$p0 [scraped]=$((p0 + 1)))
	for s in bare quiet scraped; do cp "$wl" "$scratch/wl-$s"; done
	for s in quiet scraped; do
		"$tool" export --binary "$scratch/wl-$s" --layers rocksdb,background --interval 1 \
			--listen "127.0.0.1:${eport[$s]}" >"$scratch/export-$s.out" 2>"$scratch/export-$s.err" &
		bg=$!
		epid[$s]=$bg
		wait_for attached "$scratch/export-$s.err" "$bg"
		wait_port "${eport[$s]}" "$bg"
		sleep 1 # the background layer attaches after the RocksDB functions
		keep
	done
	log "== export: $n alternations of ${secs} s windows, bare / quiet (exporter, not scraped) / scraped (exporter, scraped every 1 s)"
	local -A ops=() cpc=() ecpu=() erss=()
	: >"$scratch/scrape-1s.txt"
	export_window() { # SETUP I
		local s=$1 c0=0 c1 t0 t1 line calls el cpu sc=""
		if [ "$s" = scraped ]; then
			# The scraper stops when its flag file goes: no process left behind.
			: >"$scratch/scrape.on"
			while [ -e "$scratch/scrape.on" ]; do
				curl -s -o /dev/null -H "Accept: $accept" -w '%{time_total}\n' \
					"http://127.0.0.1:${eport[scraped]}/metrics" >>"$scratch/scrape-1s.txt"
				sleep 1
			done &
			sc=$!
		fi
		[ "$s" = bare ] || c0=$(task_cpu_ns "${epid[$s]}")
		t0=$(date +%s.%N)
		line=$(perf stat -x, -e task-clock -o "$scratch/perf.out" \
			"$scratch/wl-$s" --db "$scratch/db" --cf-db2 "$scratch/db2" --secs "$secs")
		t1=$(date +%s.%N)
		if [ -n "$sc" ]; then
			rm -f "$scratch/scrape.on"
			wait "$sc"
		fi
		rm -rf "$scratch/db" "$scratch/db2"
		calls=$(jq '[.calls[]] | add' <<<"$line")
		el=$(jq .elapsed_us <<<"$line")
		cpu=$(awk -F, '/task-clock/ {printf "%d\n", $1 * 1000}' "$scratch/perf.out")
		ops[$s]+=" $(awk -v c="$calls" -v e="$el" 'BEGIN {printf "%.0f", c * 1e6 / e}')"
		cpc[$s]+=" $(awk -v c="$calls" -v u="$cpu" 'BEGIN {printf "%.4f", u / c}')"
		local msg="  $2 $s: ${ops[$s]##* } calls/s, ${cpc[$s]##* } µs CPU per call"
		if [ "$s" != bare ]; then
			c1=$(task_cpu_ns "${epid[$s]}")
			ecpu[$s]+=" $(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9 * 100 / (t1 - t0)}')"
			erss[$s]+=" $(awk '/^VmRSS:/ {print $2}' "/proc/${epid[$s]}/status")"
			msg+=", exporter ${ecpu[$s]##* } % of a core, RSS ${erss[$s]##* } kB"
		fi
		log "$msg"
	}
	alternate "$n" export_window bare quiet scraped
	# Scrape latency: back to back, while a workload keeps the exporter busy.
	log "== export: $scrapes scrapes of /metrics back to back while the workload makes $rate calls/s"
	"$scratch/wl-scraped" --db "$scratch/db" --cf-db2 "$scratch/db2" --secs 0 --rate "$rate" >/dev/null &
	local wlp=$!
	sleep 2 # past the workload's start and one exporter interval
	local i
	: >"$scratch/scrape.txt"
	for i in $(seq "$scrapes"); do
		curl -s -o /dev/null -H "Accept: $accept" -w '%{time_total} %{size_download}\n' \
			"http://127.0.0.1:${eport[scraped]}/metrics" >>"$scratch/scrape.txt"
	done
	kill "$wlp"
	wait "$wlp" 2>/dev/null || true
	rm -rf "$scratch/db" "$scratch/db2"
	local hwm_q hwm_s
	hwm_q=$(awk '/^VmHWM:/ {print $2}' "/proc/${epid[quiet]}/status")
	hwm_s=$(awk '/^VmHWM:/ {print $2}' "/proc/${epid[scraped]}/status")
	local series
	series=$(curl -s "http://127.0.0.1:${eport[scraped]}/metrics" | grep -vc '^#')
	stop_all
	# Per alternation, as JSON arrays in alternation order.
	local j="{}"
	for s in bare quiet scraped; do
		j=$(jq -c --arg s "$s" --arg o "${ops[$s]}" --arg c "${cpc[$s]}" --arg e "${ecpu[$s]:-}" --arg r "${erss[$s]:-}" '
			def nums: split(" ") | map(select(. != "") | tonumber);
			. + {($s): {ops_per_s: ($o | nums), cpu_us_per_call: ($c | nums), exporter_cpu_pct: ($e | nums), exporter_rss_kb: ($r | nums)}}' <<<"$j")
	done
	local lat
	lat=$(awk '{print $1 * 1000}' "$scratch/scrape.txt" | sort -g | awk '{a[NR] = $1} END {
		printf "{\"n\": %d, \"p50_ms\": %s, \"p99_ms\": %s, \"max_ms\": %s}", NR, a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)], a[NR]}')
	local lat1
	lat1=$(awk '{print $1 * 1000}' "$scratch/scrape-1s.txt" | sort -g | awk '{a[NR] = $1} END {
		printf "{\"n\": %d, \"p50_ms\": %s, \"p99_ms\": %s, \"max_ms\": %s}", NR, a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)], a[NR]}')
	record export "$(jq -cn --argjson secs "$secs" --argjson reps "$n" --argjson w "$j" --argjson lat "$lat" --argjson lat1 "$lat1" \
		--argjson page "$(awk '{s += $2} END {printf "%d", s / NR}' "$scratch/scrape.txt")" --argjson series "$series" \
		--argjson hq "$hwm_q" --argjson hs "$hwm_s" --argjson rate "$rate" '
		def median: sort | .[((length - 1) / 2 | floor)];
		def spread: sort | {min: .[0], median: .[((length - 1) / 2 | floor)], max: .[-1]};
		def per(a; b): [range(0; a | length) as $i | a[$i] / b[$i]] | spread;
		{window_s: $secs, reps: $reps, layers: "rocksdb,background", interval_s: 1,
		 ops_per_s: ($w | map_values(.ops_per_s | median)),
		 cpu_us_per_call: ($w | map_values(.cpu_us_per_call | median)),
		 per_alternation: {
			quiet_vs_bare_ops: per($w.quiet.ops_per_s; $w.bare.ops_per_s),
			scraped_vs_bare_ops: per($w.scraped.ops_per_s; $w.bare.ops_per_s),
			scraped_vs_quiet_ops: per($w.scraped.ops_per_s; $w.quiet.ops_per_s),
			quiet_vs_bare_cpu_per_call: per($w.quiet.cpu_us_per_call; $w.bare.cpu_us_per_call),
			scraped_vs_bare_cpu_per_call: per($w.scraped.cpu_us_per_call; $w.bare.cpu_us_per_call),
			scraped_vs_quiet_cpu_per_call: per($w.scraped.cpu_us_per_call; $w.quiet.cpu_us_per_call)},
		 exporter_cpu_pct: {quiet: ($w.quiet.exporter_cpu_pct | spread), scraped: ($w.scraped.exporter_cpu_pct | spread)},
		 exporter_rss_kb: {quiet: ($w.quiet.exporter_rss_kb | spread), scraped: ($w.scraped.exporter_rss_kb | spread)},
		 exporter_rss_peak_kb: {quiet: $hq, scraped: $hs},
		 scrape_back_to_back: ($lat + {workload_calls_per_s: $rate}), scrape_every_1s: $lat1, page_bytes: $page, page_samples: $series,
		 raw: $w}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw)')"
}

# ---------------------------------------------------------------- overview
# The TUI's own cost: the whole tool (capture, model, redraw) in a real
# terminal. tmux gives it a 200x60 pane; the tool's CPU comes from
# /proc/PID/stat (10 ms ticks: OVERVIEW_SECS of 30 s resolve 0.03 %).
section_overview() {
	local secs=${OVERVIEW_SECS:-30} hz sess=ckb-libbpf-bench-$$ load tab
	need_cmds tmux
	hz=$(getconf CLK_TCK)
	cp "$wl" "$scratch/wl-ov"
	local -A res=()
	for load in idle busy; do
		local wargs=(--db "$scratch/db-ov" --secs 0 --pause-ms 1000)
		[ "$load" = busy ] && wargs=(--db "$scratch/db-ov" --secs 0 --rate 15000)
		"$scratch/wl-ov" "${wargs[@]}" >/dev/null 2>&1 &
		local wpid=$!
		sleep 1
		for tab in 1 2; do
			tmux new-session -d -s "$sess" -x 200 -y 60 \
				"$tool overview --pid $wpid 2>$scratch/ov.err"
			local tpid="" i
			for i in $(seq 100); do
				tpid=$(pgrep -f "^$tool overview --pid $wpid" | head -1)
				[ -n "$tpid" ] && grep -q "attached" "$scratch/ov.err" 2>/dev/null && break
				sleep 0.1
			done
			[ -n "$tpid" ] || die 1 "overview did not start: $(cat "$scratch/ov.err")"
			tmux send-keys -t "$sess" "$tab"
			sleep 3 # past start-up and calibration
			local c0 c1
			c0=$(proc_cpu "$tpid")
			sleep "$secs"
			c1=$(proc_cpu "$tpid")
			tmux send-keys -t "$sess" q
			sleep 1
			tmux kill-session -t "$sess" 2>/dev/null || true
			res[$load,$tab]=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.3f", 100 * c / hz / s}')
			log "  overview, workload $load, tab $tab: ${res[$load,$tab]} % of a core over $secs s"
		done
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null || true
		rm -rf "$scratch/db-ov"
	done
	record overview "$(jq -cn --argjson s "$secs" --argjson a "${res[idle,1]}" --argjson b "${res[idle,2]}" \
		--argjson c "${res[busy,1]}" --argjson d "${res[busy,2]}" \
		'{secs: $s, pct_core: {idle: {overview_tab: $a, rocksdb_tab: $b}, busy_15k: {overview_tab: $c, rocksdb_tab: $d}}}')"
}

for s in $sections; do "section_$s"; done
jq -s . "$out/results.jsonl" >"$out/results.json"
scripts/bench-report.sh "$out/results.json" >"$out/results.md"
cat "$out/results.md"
log "results: $out/results.json, $out/results.md"
