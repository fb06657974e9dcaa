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
#   ckb    4.   `ckb import` of an exported dev chain: bare / floor / ckb-libbpf
#               (needs scripts/e2e-ckb.sh's data; skipped otherwise)
#   chain  4.   a running dev chain (node + Dummy miner in notify mode):
#               blocks/min and node CPU per block in alternating windows,
#               bare / under `ckb-libbpf rocksdb --pid NODE` (default
#               options); needs CKB_BIN (skipped, loudly, otherwise)
# Usage: scripts/bench.sh [SECTION...]
# Env: OUT (default target/bench), REPS (alternations, 7), ROUNDS (workload
#      rounds per run, 200), TOOL_SECS (10), CKB_BIN, E2E_DIR, CKB_REPS (5),
#      PERCALL_N (calls of the function per run in `funcs`, 100000),
#      CHAIN_SECS (60, one window), CHAIN_REPS (6 windows of each setup),
#      CHAIN_DELAY_MS (500, the miner's Dummy delay: one block per ~0.5 s),
#      CHAIN_PORT (38114: RPC; +1 P2P, +2 the miner's notify listener),
#      CHAIN_TOOL_ARGS (extra `rocksdb` options in the "ours" windows, none:
#      the defaults; e.g. "--causes none" to leave the net layer out).
# Writes $OUT/results.json (one object per measurement) and $OUT/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${OUT:-$repo/target/bench}; reps=${REPS:-7}; rounds=${ROUNDS:-200}
tool_secs=${TOOL_SECS:-10}
tool=$repo/target/release/ckb-libbpf; wl=$repo/target/release/examples/rocksdb_workload
sections=${*:-hit prog tool funcs ckb chain}
[ -x "$tool" ] && [ -x "$wl" ] || { echo "build first: make build workload" >&2; exit 1; }
for c in jq bpftrace bpftool awk perf; do
	command -v $c >/dev/null || { echo "$c missing: make deps" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "bench loads BPF programs: run as root" >&2; exit 3; }

mkdir -p "$out"; : > "$out/results.jsonl"
scratch=$(mktemp -d /tmp/ckb-libbpf-bench.XXXXXX)
bg=""; bgs=(); ckb_pids=(); chain_cg=""; stats_old=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
	for p in $bg "${bgs[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${ckb_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -z "$chain_cg" ] || rmdir "$chain_cg" 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$stats_old"
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A private copy: file-wide probes see only our runs, not other users'.
cp "$wl" "$scratch/wl"; w=$scratch/wl

log() { printf '%s\n' "$*" >&2; }
# record SECTION JSON-OBJECT: one machine-readable result line
record() { jq -cn --arg s "$1" --argjson v "$2" '{section: $s} + $v' >> "$out/results.jsonl"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_for() { # PATTERN FILE PID: until the line shows up, or the process died
	until grep -q "$1" "$2" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || { log "setup failed:"; cat "$2" >&2; exit 1; }
		sleep 0.05
	done
}
stop_bg() { [ -n "$bg" ] && { kill -INT $bg 2>/dev/null; wait $bg || true; }; bg=""; }

# Tool in the background on $w (bg=its pid, output in $scratch/$name.out);
# remaining args go to `ckb-libbpf rocksdb`.
start_tool() {
	local name=${NAME:-tool}
	"$tool" rocksdb --binary "$w" --json --interval "${INTERVAL:-3600}" "$@" \
		> "$scratch/$name.out" 2> "$scratch/$name.err" & bg=$!
	wait_for attached "$scratch/$name.err" $bg
}
# bpftrace in the background with script $1.
start_bpftrace() {
	local name=${NAME:-bt}
	bpftrace -e "$1" > "$scratch/$name.out" 2>&1 & bg=$!
	wait_for Attaching "$scratch/$name.out" $bg
	sleep 1 # "Attaching N probes..." is printed before the last attach
}
# Keeps the tracer just started running (stopped by stop_all).
keep() { bgs+=("$bg"); bg=""; }
stop_all() { for p in "${bgs[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" || true; done; bgs=(); }
# One workload run; prints the CPU time it took in µs (task-clock of the
# whole process: user + kernel, where uprobes and BPF programs run). CPU
# time rather than wall time: the other jobs on a shared machine delay a
# run but do not add to its CPU time. METRIC=wall for the workload's own
# elapsed time of its rounds.
run_wl() {
	local wall
	wall=$(perf stat -x, -e task-clock -o "$scratch/perf.out" \
		"$w" --db "$scratch/db" --rounds "$rounds" "$@" | sed -n 's/.*"elapsed_us":\([0-9]*\).*/\1/p')
	rm -rf "$scratch/db"
	if [ "${METRIC:-cpu}" = wall ]; then echo "$wall"; else
		awk -F, '/task-clock/ {printf "%d\n", $1 * 1000}' "$scratch/perf.out"; fi
}
# Functions the tool attaches by default (emulated first instruction).
default_funcs() {
	"$tool" symbols "$1" --json --tier 1 |
		jq -r '.tier1[] | select(.present and .probe_cost == "emulated") | .name'
}
# The equivalent bpftrace script: per-function count and latency histogram.
bt_script() { # FILE FUNCS...
	local f=$1 p="" r=""; shift
	for fn in "$@"; do p+="uprobe:$f:$fn,"; r+="uretprobe:$f:$fn,"; done
	printf '%s { @start[tid] = nsecs; } %s /@start[tid]/ { @count[probe] = count(); @lat[probe] = hist(nsecs - @start[tid]); delete(@start[tid]); }' \
		"${p%,}" "${r%,}"
}
bt_empty() { # FILE FUNCS...
	local f=$1 p="" r=""; shift
	for fn in "$@"; do p+="uprobe:$f:$fn,"; r+="uretprobe:$f:$fn,"; done
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

mapfile -t funcs < <(default_funcs "$w")
log "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
record machine "$(jq -cn --arg k "$(uname -r)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
	--argjson n "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo ?)" \
	--arg bt "$(bpftrace --version)" '{kernel: $k, cpu: $cpu, cpus: $n, load: $load, commit: $commit, bpftrace: $bt}')"

# ---------------------------------------------------------------- 1 + 2
# Every setup traces a private copy of the workload (probes are per file),
# all attached at once, so runs can alternate quickly without attaching and
# detaching in between: REPS rounds of bare, floor, ours, bpftrace,
# bpftrace-empty, in a rotating order.
section_hit() {
	log "== per-hit cost: bare / floor (our links, empty programs) / ckb-libbpf / bpftrace / bpftrace empty; $reps alternations of $rounds rounds"
	local s; for s in bare floor ours bt bte; do cp "$wl" "$scratch/wl-$s"; done
	w=$scratch/wl-floor NAME=floor start_tool --empty-programs; keep
	w=$scratch/wl-ours NAME=ours start_tool; keep
	NAME=bt start_bpftrace "$(bt_script "$scratch/wl-bt" "${funcs[@]}")"; keep
	NAME=bte start_bpftrace "$(bt_empty "$scratch/wl-bte" "${funcs[@]}")"; keep
	local -A t=()
	local order=(bare floor ours bt bte)
	for i in $(seq "$reps"); do
		for s in "${order[@]}"; do t[$s]+=" $(w=$scratch/wl-$s run_wl)"; done
		order=("${order[@]:1}" "${order[0]}")
		log "  $i: bare${t[bare]##* } floor${t[floor]##* } ours${t[ours]##* } bpftrace${t[bt]##* } bpftrace-empty${t[bte]##* } µs"
	done
	stop_all
	local calls; calls=$(tail -1 "$scratch/ours.out" | jq --argjson n "$reps" '[.operations[].count] | add / $n')
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
	cp "$wl" "$scratch/wl-floor"; cp "$wl" "$scratch/wl-ours"
	w=$scratch/wl-floor NAME=floor start_tool --empty-programs; local pf=$bg; keep
	w=$scratch/wl-ours NAME=ours start_tool; local po=$bg; keep
	sysctl -qw kernel.bpf_stats_enabled=1
	local -A ns=()
	local a b s pid name t0 c0 t1 c1
	for i in $(seq "$reps"); do
		for s in ours floor; do
			if [ $s = ours ]; then pid=$po; else pid=$pf; fi
			a=$(prog_stats $pid); w=$scratch/wl-$s run_wl >/dev/null; b=$(prog_stats $pid)
			while read -r name t1 c1; do
				read -r t0 c0 < <(awk -v n="$name" '$1 == n {print $2, $3}' <<< "$a")
				[ "$c1" -gt "$c0" ] || continue
				ns[$name]+=" $(( (t1 - t0) / (c1 - c0) ))"
			done <<< "$b"
		done
	done
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
# proc_cpu PID: utime+stime in clock ticks
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
section_tool() {
	local hz; hz=$(getconf CLK_TCK)
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
		IFS='|' read -r name wargs targs <<< "$spec"
		log "== tool's own cost: $name (workload $wargs, $tool_secs s) $targs"
		# shellcheck disable=SC2086 # the argument lists are meant to split
		INTERVAL=1 start_tool $targs
		sleep 2 # past start-up: steady state only
		local c0 t0 c1 t1 rss_steady
		c0=$(proc_cpu $bg); t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		"$w" --db "$scratch/db" --secs "$tool_secs" $wargs > "$scratch/wl.out"
		c1=$(proc_cpu $bg); t1=$(date +%s.%N)
		rss_steady=$(awk '/^VmRSS:/ {print $2}' /proc/$bg/status)
		local hwm; hwm=$(awk '/^VmHWM:/ {print $2}' /proc/$bg/status)
		rm -rf "$scratch/db"; stop_bg
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
	local pc=$repo/target/release/examples/rocksdb_percall n=${PERCALL_N:-100000}
	[ -x "$pc" ] || { echo "build first: cargo build --release --example rocksdb_percall" >&2; exit 1; }
	log "== cost per hit of each function: rocksdb_percall --n $n, bare / floor / ckb-libbpf --ops FUNC, $reps alternations"
	local s; for s in bare floor ours; do cp "$pc" "$scratch/pc-$s"; done
	local -A insn=() kind=()
	local name k i
	while read -r name k i; do kind[$name]=$k; insn[$name]=$i; done < <(
		"$tool" symbols "$scratch/pc-bare" --json --tier 1 |
			jq -r '.tier1[] | select(.present) | "\(.name) \(.probe_cost) \(.first_insn | gsub(" "; "_"))"')
	run_pc() { # SETUP FUNC: prints "loop_cpu_ns hits"
		"$scratch/pc-$1" --func "$2" --n "$n" --db "$scratch/pcdb-$1" |
			jq -r "[.loop_${METRIC:-cpu}_ns, .hits, .setup_calls] | @tsv"
		rm -rf "$scratch/pcdb-$1"
	}
	local fn
	for fn in $("$pc" --list); do
		[ -n "${kind[$fn]:-}" ] || { log "  $fn: not in the binary, skipped"; continue; }
		w=$scratch/pc-floor NAME=floor start_tool --empty-programs --ops "$fn"; keep
		w=$scratch/pc-ours NAME=ours start_tool --ops "$fn"; keep
		local -A t=(); local hits=0 setup=0 order=(bare floor ours) v h u
		for _ in $(seq "$reps"); do
			for s in "${order[@]}"; do
				read -r v h u <<< "$(run_pc "$s" "$fn")"; t[$s]+=" $v"; hits=$h; setup=$u
			done
			order=("${order[@]:1}" "${order[0]}")
		done
		stop_all
		# Ground truth: the tool saw exactly the calls the loop made.
		local seen; seen=$(tail -1 "$scratch/ours.out" | jq '[.operations[].count] | add // 0')
		# shellcheck disable=SC2086 # word splitting of the lists is meant
		record funcs "$(jq -cn --arg f "$fn" --arg k "${kind[$fn]}" --arg insn "${insn[$fn]//_/ }" \
			--argjson n "$hits" --argjson u "$setup" --argjson reps "$reps" --argjson seen "$seen" --arg metric "${METRIC:-cpu}" \
			--argjson b "$(median ${t[bare]})" --argjson fl "$(median ${t[floor]})" --argjson o "$(median ${t[ours]})" \
			--arg raw "bare${t[bare]} | floor${t[floor]} | ours${t[ours]}" '{
			function: $f, probe_cost: $k, first_insn: $insn, metric: $metric, calls_per_run: $n, reps: $reps,
			calls_seen: $seen, calls_expected: (($n + $u) * $reps), bare_ns_per_call: ($b / $n),
			floor_ns_per_hit: (($fl-$b)/$n), ours_ns_per_hit: (($o-$b)/$n), raw_ns: $raw}')"
		log "  $(tail -1 "$out/results.jsonl" | jq -c '{function, probe_cost, floor_ns_per_hit, ours_ns_per_hit, calls_seen, calls_expected}')"
	done
}

# ---------------------------------------------------------------- 4
section_ckb() {
	local ckb=${CKB_BIN:-/root/ckb-build/inst/bin/ckb} dir=${E2E_DIR:-/tmp/ckb-libbpf-e2e}
	local n=${CKB_REPS:-5}
	if [ ! -x "$ckb" ] || ! ls "$dir"/export/*.json* >/dev/null 2>&1 || [ ! -f "$dir/chain/specs/dev.toml" ]; then
		log "== ckb import: skipped (needs $ckb and scripts/e2e-ckb.sh's export in $dir)"
		record ckb '{"skipped": true}'
		return
	fi
	cp "$ckb" "$scratch/ckb"; local c=$scratch/ckb exported
	exported=$(ls "$dir"/export/*.json* | head -1)
	log "== ckb import of $exported: bare / floor / ckb-libbpf, $n alternations"
	import() { # prints seconds; the exporting chain's spec, as e2e-ckb.sh
		rm -rf "$scratch/imp"
		"$c" init -C "$scratch/imp" --chain dev --ba-arg 0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7 --force >/dev/null
		cp "$dir/chain/specs/dev.toml" "$scratch/imp/specs/dev.toml"
		# CPU seconds (task-clock) by default: wall time is quantised
		# here (runs fall ~1 s apart whatever is attached); METRIC=wall
		# for elapsed seconds.
		local t0 t1; t0=$(date +%s.%N)
		perf stat -x, -e task-clock -o "$scratch/perf.out" \
			"$c" import -C "$scratch/imp" "$exported" >/dev/null 2>&1
		t1=$(date +%s.%N)
		rm -rf "$scratch/imp"
		if [ "${METRIC:-cpu}" = wall ]; then
			awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
		else
			awk -F, '/task-clock/ {printf "%.3f\n", $1 / 1000}' "$scratch/perf.out"
		fi
	}
	local bare=() floor=() ours=() blocks
	for i in $(seq "$n"); do
		bare+=("$(import)")
		w=$c start_tool --empty-programs; floor+=("$(import)"); stop_bg
		w=$c start_tool; ours+=("$(import)"); stop_bg
		log "  $i: bare ${bare[-1]} floor ${floor[-1]} ours ${ours[-1]} s"
	done
	blocks=$(wc -l < "$exported" 2>/dev/null || echo 0)
	local mb mf mo; mb=$(median "${bare[@]}"); mf=$(median "${floor[@]}"); mo=$(median "${ours[@]}")
	record ckb "$(jq -cn --arg metric "${METRIC:-cpu}" --argjson b "$mb" --argjson f "$mf" --argjson o "$mo" --argjson blocks "$blocks" \
		--arg raw "bare ${bare[*]} | floor ${floor[*]} | ours ${ours[*]}" '{
		metric: $metric, blocks: $blocks, median_s: {bare: $b, floor: $f, ours: $o},
		floor_slowdown: ($f/$b), ours_slowdown: ($o/$b), ours_vs_floor: (($o/$b)/($f/$b)), raw_s: $raw}')"
}

# ---------------------------------------------------------------- 4 (chain)
# A running dev chain, network-bound: the miner (Dummy worker, CHAIN_DELAY_MS
# per block) is told of every new block template by the node (notify mode),
# so blocks arrive at a fixed cadence like a node following the network,
# and what the node spends per block shows up in blocks/min only as the
# node's own delay in the loop. One chain, one node process: windows of
# CHAIN_SECS alternate bare / ours in ABBA order (bare ours, ours bare, ...)
# so a linear drift (the chain growing, other jobs) cancels, and the tool is
# started before an "ours" window and stopped (SIGINT) after it, with the
# same 2 s settle before every window. Two chains side by side were not
# used: two nodes + two miners on 2 shared cores disturb each other, and
# their chains never have the same state.
# Per window: blocks/min (RPC get_tip_block_number), node CPU per block
# (the whole process, exited threads included: usage_usec of a cgroup v2
# holding only the node when one can be made, exact to the µs; otherwise
# /proc/PID/stat utime+stime, in 10 ms ticks); per "ours" window: RocksDB
# calls the tool saw (final JSON line), per second and per block, and its
# lost_events + uncounted_calls.
section_chain() {
	local ckb=${CKB_BIN:-/root/ckb-build/inst/bin/ckb}
	local secs=${CHAIN_SECS:-60} n=${CHAIN_REPS:-6} delay=${CHAIN_DELAY_MS:-500} port=${CHAIN_PORT:-38114}
	if [ ! -x "$ckb" ]; then
		log "############################################################"
		log "== chain: SKIPPED: no CKB binary at $ckb (set CKB_BIN=/path/to/ckb;"
		log "   scripts/e2e-ckb.sh installs one). blocks/min NOT measured."
		log "############################################################"
		record chain "$(jq -cn --arg b "$ckb" '{skipped: true, ckb_bin: $b}')"
		return
	fi
	command -v curl >/dev/null || { echo "curl missing: apt-get install curl" >&2; exit 3; }
	local p; for p in "$port" $((port + 1)) $((port + 2)); do
		if (: > "/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "chain: port $p is in use; set CHAIN_PORT to a free base port" >&2; exit 3
		fi
	done
	# A private copy: uprobes are per file, so no one else's ckb pays for
	# our probes, and no one else's probes land in our node.
	cp "$ckb" "$scratch/ckb-chain"; local c=$scratch/ckb-chain d=$scratch/chain hz
	hz=$(getconf CLK_TCK)
	"$c" init -C "$d" --chain dev --ba-arg 0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7 --force >/dev/null
	sed -i "s#^listen_addresses = .*#listen_addresses = [\"/ip4/127.0.0.1/tcp/$((port + 1))\"]#; s#^listen_address = .*#listen_address = \"127.0.0.1:$port\"#" "$d/ckb.toml"
	sed -i "s|^# notify = \[.*|notify = [\"http://127.0.0.1:$((port + 2))\"]|" "$d/ckb.toml"
	sed -i "s/^value = .*/value = $delay/; s#127.0.0.1:8114#127.0.0.1:$port#; s|^# listen = .*|listen = \"127.0.0.1:$((port + 2))\"|" "$d/ckb-miner.toml"
	grep -q '^notify = ' "$d/ckb.toml" && grep -q '^listen = ' "$d/ckb-miner.toml" ||
		{ echo "chain: this ckb's config templates lack notify/listen (ckb init changed?)" >&2; exit 1; }
	tip() { # prints "number timestamp_ms" of the tip block
		local r
		r=$(curl -s -m 5 -X POST -H 'content-type: application/json' \
			-d '{"id":1,"jsonrpc":"2.0","method":"get_tip_header","params":[]}' \
			"http://127.0.0.1:$port" | jq -r '.result | "\(.number) \(.timestamp)"' 2>/dev/null) || true
		[[ $r == 0x*" "0x* ]] || { echo "chain: the node's RPC on 127.0.0.1:$port does not answer" >&2; exit 1; }
		echo $((${r% *})) $((${r#* }))
	}
	alive() { # fails loudly if the node or the miner died
		local q; for q in "${ckb_pids[@]}"; do kill -0 "$q" 2>/dev/null ||
			{ log "chain: a ckb process died; node log tail:"; tail -5 "$d/node.out" >&2; tail -5 "$d/miner.out" >&2; exit 1; }
		done
	}
	"$c" run -C "$d" > "$d/node.out" 2>&1 & local node=$!; ckb_pids+=("$node")
	local k; for k in $(seq 100); do
		curl -s -m 1 "http://127.0.0.1:$port" >/dev/null 2>&1 && break
		kill -0 "$node" 2>/dev/null || { log "chain: the node did not start:"; tail -20 "$d/node.out" >&2; exit 1; }
		sleep 0.3
	done
	"$c" miner -C "$d" > "$d/miner.out" 2>&1 & ckb_pids+=($!)
	local cg="" cpu_src="proc_stat_ticks" root
	root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
	if [ -n "$root" ] && mkdir "$root/ckb-libbpf-bench.$$" 2>/dev/null; then
		chain_cg=$root/ckb-libbpf-bench.$$
		if echo "$node" > "$chain_cg/cgroup.procs" 2>/dev/null && [ -r "$chain_cg/cpu.stat" ]; then
			cg=$chain_cg; cpu_src="cgroup2_usage_usec"
		fi
	fi
	node_cpu_us() {
		if [ -n "$cg" ]; then awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat"
		else echo $(( $(proc_cpu "$node") * 1000000 / hz )); fi
	}
	# Warm-up: past start-up, and proof the chain produces blocks.
	local w0 w1 _ts; read -r w0 _ts <<< "$(tip)"; sleep "${CHAIN_WARMUP:-20}"; alive
	read -r w1 _ts <<< "$(tip)"
	[ "$w1" -gt "$w0" ] || { log "chain: no block mined in ${CHAIN_WARMUP:-20} s (tip $w1); miner log:"; tail -20 "$d/miner.out" >&2; exit 1; }
	log "== running dev chain: $n × ${secs} s windows each of bare / ckb-libbpf rocksdb --pid $node ${CHAIN_TOOL_ARGS:-(default options)}, ABBA order; miner delay $delay ms; tip $w1 after warm-up"
	local -A bpm=() cpb=() cps=() cpbk=() lost=()
	window() { # SETUP I
		local s=$1 i=$2 tool_out="$scratch/chain-$1-$2"
		if [ "$s" = ours ]; then
			# shellcheck disable=SC2086 # CHAIN_TOOL_ARGS: words meant
			"$tool" rocksdb --pid "$node" --json --interval 3600 ${CHAIN_TOOL_ARGS:-} > "$tool_out.out" 2> "$tool_out.err" & bg=$!
			wait_for attached "$tool_out.err" $bg
		fi
		sleep 2 # settle: the same for both setups
		local a0 ts0 c0 t0 a1 ts1 c1 t1 bps
		alive; read -r a0 ts0 <<< "$(tip)"; c0=$(node_cpu_us); t0=$(date +%s.%N)
		sleep "$secs"
		read -r a1 ts1 <<< "$(tip)"; c1=$(node_cpu_us); t1=$(date +%s.%N); alive
		[ "$a1" -gt "$a0" ] || { log "chain: no block in a ${secs} s window ($s $i, tip $a1)"; exit 1; }
		# The rate from the tip blocks' own timestamps (set by the node
		# when it assembles each template, ms): no ±1 block of window
		# edge. CPU per block = CPU per wall second / blocks per second.
		bps=$(awk -v b=$((a1 - a0)) -v d=$((ts1 - ts0)) 'BEGIN {printf "%.6f", b * 1000 / d}')
		bpm[$s]+=" $(awk -v r="$bps" 'BEGIN {printf "%.2f", r * 60}')"
		cpb[$s]+=" $(awk -v c=$((c1 - c0)) -v r="$bps" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.3f", c / 1000 / (t1 - t0) / r}')"
		local msg="  $s $i: $((a1 - a0)) blocks in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s, node CPU $(( (c1 - c0) / 1000 )) ms"
		if [ "$s" = ours ]; then
			local calls el ls
			stop_bg
			# calls per block: the tool's rate (from attach to SIGINT,
			# settle included) over the window's block rate
			read -r calls el ls < <(tail -1 "$tool_out.out" |
				jq -r '[([.operations[].count] | add // 0), .elapsed_secs, (.lost_events + .uncounted_calls)] | @tsv')
			[ "$(tail -1 "$tool_out.out" | jq -r .final)" = true ] || { log "chain: the tool's last line is not final"; exit 1; }
			cps[ours]+=" $(awk -v c="$calls" -v e="$el" 'BEGIN {printf "%.1f", c / e}')"
			cpbk[ours]+=" $(awk -v c="$calls" -v e="$el" -v r="$bps" 'BEGIN {printf "%.1f", c / e / r}')"
			lost[ours]+=" $ls"
			msg+=", tool: $calls RocksDB calls in $el s, lost $ls"
		fi
		log "$msg"
	}
	local i
	for i in $(seq "$n"); do
		if [ $((i % 2)) = 1 ]; then window bare "$i"; window ours "$i"; else window ours "$i"; window bare "$i"; fi
	done
	# No probe left behind: the last tool is gone, the node still runs.
	alive
	local lost_total; lost_total=$(printf '%s\n' ${lost[ours]} | awk '{s += $1} END {print s + 0}')
	# shellcheck disable=SC2086 # word splitting of the lists is meant
	record chain "$(jq -cn --argjson secs "$secs" --argjson reps "$n" --argjson delay "$delay" --argjson tip "$(tip | cut -d' ' -f1)" --arg src "$cpu_src" --arg targs "${CHAIN_TOOL_ARGS:-}" \
		--argjson bb "$(median ${bpm[bare]})" --argjson bo "$(median ${bpm[ours]})" \
		--argjson cb "$(median ${cpb[bare]})" --argjson co "$(median ${cpb[ours]})" \
		--argjson cps "$(median ${cps[ours]})" --argjson cpbk "$(median ${cpbk[ours]})" --argjson lost "$lost_total" \
		--arg raw "blocks/min bare${bpm[bare]} | ours${bpm[ours]}; CPU ms/block bare${cpb[bare]} | ours${cpb[ours]}; calls/s${cps[ours]}; lost${lost[ours]}" '{
		window_s: $secs, reps: $reps, miner_delay_ms: $delay, tool_args: $targs, final_tip: $tip, cpu_source: $src,
		blocks_per_min: {bare: $bb, ours: $bo}, cpu_ms_per_block: {bare: $cb, ours: $co},
		blocks_per_min_ratio: ($bo / $bb), cpu_per_block_ratio: ($co / $cb),
		rocksdb_calls_per_s: $cps, rocksdb_calls_per_block: $cpbk, lost: $lost, raw: $raw}')"
	log "  $(tail -1 "$out/results.jsonl" | jq -c 'del(.raw)')"
	local q; for q in "${ckb_pids[@]}"; do kill -TERM "$q" 2>/dev/null || true; done
	for q in "${ckb_pids[@]}"; do wait "$q" 2>/dev/null || true; done
	ckb_pids=()
	[ -z "$chain_cg" ] || { rmdir "$chain_cg" 2>/dev/null || true; chain_cg=""; }
	rm -rf "$d" "$c"
}

for s in $sections; do "section_$s"; done
jq -s . "$out/results.jsonl" > "$out/results.json"
scripts/bench-report.sh "$out/results.json" > "$out/results.md"
cat "$out/results.md"
log "results: $out/results.json, $out/results.md"
