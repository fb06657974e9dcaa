#!/usr/bin/env bash
# Long soak (proposal S-1..S-3, the §6.5 report): ckb-libbpf beside a node
# for hours or days, then a report (scripts/soak-report.sh) from its data.
#
#   scripts/soak.sh [DURATION_SECS=172800] [ckb|workload|PID]   (default ckb)
#
#   ckb       a CKB dev chain on 127.0.0.1: node + Dummy miner (notify mode,
#             one block per MINER_DELAY_MS) from a private copy of CKB_BIN (or
#             `ckb` on PATH), traced by `ckb-libbpf rocksdb --pid NODE`; beside
#             it the bundled workload in episodes, each with a write burst,
#             traced by a second instance (below)
#   workload  the workload episodes and their tracer alone (no CKB needed)
#   PID       `ckb-libbpf rocksdb --pid PID` on a process that runs already
#
# Workload episodes: a private copy of the bundled workload runs for
# EPISODE_SECS (600) at WL_RATE calls/s (2000) with small memtables and,
# BURST_AT s (400) into each episode, a write burst of BURST_MB MiB (32)
# that causes flushes, compactions and write stalls; its tracer is
# `rocksdb --binary COPY --ops all --by-function` (every process of the
# file, every function). Each episode prints its exact calls per function
# (workload-counts.jsonl): with the tracer's final report that is the
# fidelity table. Episodes fit inside the duration, so the last one ends
# (and prints its counts) before the tracers stop.
#
# Both tracers print `--json --histogram` lines every SAMPLE_SECS (30)
# (TOOL_ARGS: extra `rocksdb` options for both). Every SAMPLE_SECS one row
# goes to soak.tsv:
#   time elapsed_s tool_rss_kb tool_cpu_pct node_cpu_pct node_rss_kb tip
#   wl_tool_rss_kb wl_tool_cpu_pct events_per_s lost_events wl_events_per_s
#   wl_lost_events dmesg_bpf_lines
# (tool_* is the instance on the node or PID, wl_tool_* the one on the
# workload; NA where a mode has none; events from each tracer's latest
# interval line). At the end (or on Ctrl-C / SIGTERM: the tracers still
# get SIGINT and print their final line) it writes verdict.txt and
# meta.json, generates OUT_DIR/report/REPORT.md (unless SOAK_REPORT=0) and
# exits 0 only if
#   S-1 every tracer ran the whole duration and exited 0 on SIGINT,
#   S-2 each tracer's RSS grew by at most 5 MB after the first 5 minutes
#       (or 10 % of a shorter run),
#   S-3 the kernel log gained no BPF/uprobe/WARNING lines (dmesg-new.txt).
# Data in OUT_DIR (default /tmp/ckb-libbpf-soak.<time>). Needs root; the
# tracers do not take the BPF test lock: their probes sit on private copies.
# Env: SAMPLE_SECS EPISODE_SECS BURST_AT BURST_MB WL_RATE MINER_DELAY_MS
#      SOAK_PORT (48114: RPC; +1 P2P, +2 the miner's notify listener)
#      CKB_BIN TOOL_ARGS OUT_DIR SOAK_REPORT
cd "$(dirname "$0")/.."
. scripts/lib.sh

secs=${1:-172800}
target=${2:-ckb}
sample=${SAMPLE_SECS:-30}
episode=${EPISODE_SECS:-600}
burst_at=${BURST_AT:-400}
burst_mb=${BURST_MB:-32}
rate=${WL_RATE:-2000}
delay=${MINER_DELAY_MS:-1000}
port=${SOAK_PORT:-48114}
read -ra tool_args <<<"${TOOL_ARGS:-}"
out=${OUT_DIR:-/tmp/ckb-libbpf-soak.$(date +%Y%m%d-%H%M%S)}
case $secs in '' | *[!0-9]*) die 2 "DURATION_SECS must be a number of seconds, not '$secs'" ;; esac
case $target in
ckb | workload) ;;
*[!0-9]*) die 2 "the target is ckb, workload or a PID, not '$target'" ;;
*) kill -0 "$target" 2>/dev/null || die 2 "no process $target" ;;
esac
need_built
need_cmds jq awk dmesg
need_root "soak loads BPF programs"
mkdir -p "$out/bin"
out=$(cd "$out" && pwd)
hz=$(getconf CLK_TCK)
log "soak: $target for $secs s, a row every $sample s; data in $out"

# What was run, for the report's reproduction section.
cp "$TOOL" "$out/bin/ckb-libbpf"
tool=$out/bin/ckb-libbpf
command="SAMPLE_SECS=$sample"
[ "$target" = ckb ] && command+=" MINER_DELAY_MS=$delay"
[ "$target" = ckb ] || [ "$target" = workload ] &&
	command+=" EPISODE_SECS=$episode BURST_AT=$burst_at BURST_MB=$burst_mb WL_RATE=$rate"
[ -n "${TOOL_ARGS:-}" ] && command+=" TOOL_ARGS='$TOOL_ARGS'"
command+=" scripts/soak.sh $secs $target"
ckb_version=""
node="" miner="" tp="" wtp="" runner=""

# ---------------------------------------------------------------- the node
if [ "$target" = ckb ]; then
	ckb=$(find_ckb) || die 2 "the ckb mode needs a CKB binary (or use: scripts/soak.sh $secs workload)"
	need_cmds curl
	ports_free "$port" $((port + 1)) $((port + 2))
	# A private copy: uprobes sit on files, so no other ckb pays for our
	# probes and no one else's probes land in this node.
	cp "$ckb" "$out/bin/ckb"
	ckb_version=$("$out/bin/ckb" --version | head -1)
	ckb_dev_init "$out/bin/ckb" "$out/chain" "$port" $((port + 1))
	ckb_dev_miner "$out/chain" "$delay" $((port + 2))
	ckb_dev_run "$out/bin/ckb" "$out/chain" "$out/node.log"
	ckb_dev_mine "$out/bin/ckb" "$out/chain" "$out/miner.log"
elif [ "$target" != workload ]; then
	node=$target
fi

# ---------------------------------------------------------------- tracers
if [ -n "$node" ]; then
	"$tool" rocksdb --pid "$node" --json --histogram --interval "$sample" "${tool_args[@]}" \
		>"$out/node.jsonl" 2>"$out/node.err" &
	tp=$!
	kill_at_exit "$tp" INT
	wait_for attached "$out/node.err" "$tp"
fi
if [ "$target" = ckb ] || [ "$target" = workload ]; then
	cp "$WORKLOAD" "$out/bin/rocksdb_workload"
	"$tool" rocksdb --binary "$out/bin/rocksdb_workload" --ops all --by-function --value-sizes --json --histogram \
		--interval "$sample" "${tool_args[@]}" >"$out/workload.jsonl" 2>"$out/workload-tool.err" &
	wtp=$!
	kill_at_exit "$wtp" INT
	wait_for attached "$out/workload-tool.err" "$wtp"
fi

start=$(date +%s)
end=$((start + secs))
# The kernel log's clock (seconds since boot) at the start: S-3 counts the
# matching lines after it (robust to a ring buffer that wraps).
boot0=$(cut -d' ' -f1 /proc/uptime)
dmesg_new() {
	dmesg 2>/dev/null | awk -v t0="$boot0" '
		match($0, /^\[ *[0-9]+\.[0-9]+\]/) {
			t = substr($0, RSTART + 1, RLENGTH - 2) + 0
			if (t >= t0 && tolower($0) ~ /bpf|uprobe|warning: cpu/) print
		}'
}

jq -n --arg cmd "$command" --arg target "$target" --argjson secs "$secs" --argjson sample "$sample" \
	--argjson start "$start" --arg kernel "$(uname -srvm)" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
	--argjson cpus "$(nproc)" --argjson mem_kb "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
	--arg ckb "$ckb_version" --arg tool "$("$tool" --version)" --arg tool_sha "$(sha256sum "$tool" | cut -c1-16)" \
	--arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--argjson episode "$episode" --argjson burst_at "$burst_at" --argjson burst_mb "$burst_mb" \
	--argjson rate "$rate" --argjson delay "$delay" --arg tool_args "${TOOL_ARGS:-}" '
	{command: $cmd, target: $target, planned_secs: $secs, sample_secs: $sample, start_unix: $start,
	 kernel: $kernel, cpu: $cpu, cpus: $cpus, mem_kb: $mem_kb, ckb_version: $ckb, tool_version: $tool,
	 tool_sha256_16: $tool_sha, commit: $commit, episode_secs: $episode, burst_at_secs: $burst_at,
	 burst_mb: $burst_mb, workload_rate: $rate, miner_delay_ms: $delay, tool_args: $tool_args}' >"$out/meta.json"

# ---------------------------------------------------------------- episodes
# run_episodes: one workload run after the other until the end, each
# sized to finish (counts printed) 5 s before it; the running one's pid in
# wl.pid so the cleanup can stop it.
run_episodes() {
	local i=0 left len at wl
	while :; do
		left=$((end - $(date +%s) - 5))
		[ "$left" -ge 30 ] || break
		len=$((left < episode ? left : episode))
		at=$((burst_at < len * 2 / 3 ? burst_at : len / 2))
		i=$((i + 1))
		rm -rf "$out/wl-db"
		printf '%d\t%s\t%d\t%d\n' "$i" "$(date +%s%3N)" "$len" "$at" >>"$out/episodes.tsv"
		"$out/bin/rocksdb_workload" --db "$out/wl-db" --secs "$len" --rate "$rate" --small-memtables \
			--burst-at "$at" --burst-mb "$burst_mb" >>"$out/workload-counts.jsonl" 2>>"$out/workload.err" &
		wl=$!
		echo "$wl" >"$out/wl.pid"
		wait "$wl" || echo "episode $i: the workload exited with $?" >>"$out/workload.err"
	done
	rm -f "$out/wl.pid"
	rm -rf "$out/wl-db"
}
if [ -n "$wtp" ]; then
	printf 'episode\tstart_ms\tsecs\tburst_at\n' >"$out/episodes.tsv"
	: >"$out/workload-counts.jsonl"
	run_episodes &
	runner=$!
	at_exit "kill $runner 2>/dev/null; [ -f '$out/wl.pid' ] && kill \$(cat '$out/wl.pid') 2>/dev/null; wait $runner 2>/dev/null; rm -rf '$out/wl-db'"
fi

# ---------------------------------------------------------------- sampling
# rss PID / ticks PID: VmRSS in kB / utime+stime, NA when PID is gone.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo NA; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA; }
pct() { # TICKS_NOW TICKS_BEFORE SECS
	if [ "$1" = NA ] || [ "$2" = NA ]; then echo NA; else awk -v d=$(($1 - $2)) -v hz="$hz" -v s="$3" 'BEGIN {printf "%.3f", 100 * d / hz / s}'; fi
}
# events FILE: "calls_per_s lost" of the tracer's latest interval report.
events() {
	[ -n "$2" ] || { echo "NA NA"; return; }
	tail -n 4 "$1" | grep '"type":"report"' | tail -n 1 |
		jq -r '"\(([.operations[].count] | add // 0) / .interval_secs | floor) \(.lost_events + .uncounted_calls)"' 2>/dev/null ||
		echo "NA NA"
}
printf 'time\telapsed_s\ttool_rss_kb\ttool_cpu_pct\tnode_cpu_pct\tnode_rss_kb\ttip\twl_tool_rss_kb\twl_tool_cpu_pct\tevents_per_s\tlost_events\twl_events_per_s\twl_lost_events\tdmesg_bpf_lines\n' >"$out/soak.tsv"
stop=0
trap 'stop=1' INT TERM
t_prev=$start
tk_prev=$([ -n "$tp" ] && ticks "$tp" || echo NA)
wk_prev=$([ -n "$wtp" ] && ticks "$wtp" || echo NA)
nk_prev=$([ -n "$node" ] && ticks "$node" || echo NA)
dead=""
while [ "$stop" = 0 ]; do
	# Sleep in the background: a signal ends `wait` at once.
	left=$((end - $(date +%s)))
	sleep $((left < sample ? (left > 0 ? left : 0) : sample)) &
	sp=$!
	wait "$sp" || kill "$sp" 2>/dev/null || true
	now=$(date +%s)
	el=$((now - t_prev))
	[ "$el" -gt 0 ] || el=1
	for p in $tp $wtp; do kill -0 "$p" 2>/dev/null || dead+=" $p"; done
	tk=NA wk=NA nk=NA
	[ -n "$tp" ] && tk=$(ticks "$tp")
	[ -n "$wtp" ] && wk=$(ticks "$wtp")
	[ -n "$node" ] && nk=$(ticks "$node")
	read -r ev lost <<<"$(events "$out/node.jsonl" "$tp")"
	read -r wev wlost <<<"$(events "$out/workload.jsonl" "$wtp")"
	tip=NA
	[ "$target" = ckb ] && tip=$(ckb_tip "$port")
	printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n' "$(date -u +%FT%TZ)" $((now - start)) \
		"$([ -n "$tp" ] && rss "$tp" || echo NA)" "$(pct "$tk" "$tk_prev" "$el")" \
		"$(pct "$nk" "$nk_prev" "$el")" "$([ -n "$node" ] && rss "$node" || echo NA)" "$tip" \
		"$([ -n "$wtp" ] && rss "$wtp" || echo NA)" "$(pct "$wk" "$wk_prev" "$el")" \
		"$ev" "$lost" "$wev" "$wlost" "$(dmesg_new | wc -l)" >>"$out/soak.tsv"
	t_prev=$now tk_prev=$tk wk_prev=$wk nk_prev=$nk
	[ -z "$dead" ] || { log "soak: tracer(s)$dead exited early"; break; }
	[ "$now" -lt "$end" ] || break
done
trap 'exit 130' INT TERM
ran=$(($(date +%s) - start))
[ "$stop" = 0 ] || log "soak: stopped by a signal after $ran s (planned $secs s)"

# ---------------------------------------------------------------- the end
# The workload first (a stopped soak interrupts its episode: that episode
# has no counts, and the report says the fidelity table is incomplete),
# then the tracers with SIGINT: their final line covers the whole run.
interrupted=false
if [ -n "$runner" ]; then
	# The last episode ends 5 s before the end, then lets RocksDB settle
	# before printing its counts: up to 2 minutes' grace unless stopped.
	grace=$((SECONDS + 120))
	while [ "$stop" = 0 ] && kill -0 "$runner" 2>/dev/null && [ "$SECONDS" -lt "$grace" ]; do sleep 1; done
	if kill -0 "$runner" 2>/dev/null; then
		interrupted=true
		kill "$runner" 2>/dev/null
		[ -f "$out/wl.pid" ] && kill "$(cat "$out/wl.pid")" 2>/dev/null
	fi
	wait "$runner" 2>/dev/null || true
fi
# SIGINT, then the exit code (in this shell: only it can wait for them).
tool_code=NA wl_code=NA
for p in $tp $wtp; do kill -INT "$p" 2>/dev/null || true; done
if [ -n "$tp" ]; then
	tool_code=0
	wait "$tp" || tool_code=$?
fi
if [ -n "$wtp" ]; then
	wl_code=0
	wait "$wtp" || wl_code=$?
fi
dmesg_new >"$out/dmesg-new.txt"
tmp=$(jq --argjson ran "$ran" --arg tc "$tool_code" --arg wc "$wl_code" --argjson stopped "$stop" \
	--argjson interrupted "$interrupted" --argjson end_unix "$(date +%s)" \
	'. + {ran_secs: $ran, end_unix: $end_unix, stopped_by_signal: ($stopped == 1), episode_interrupted: $interrupted,
	      tool_exit: ($tc | tonumber? // null), workload_tool_exit: ($wc | tonumber? // null)}' "$out/meta.json")
printf '%s\n' "$tmp" >"$out/meta.json"

# Baseline of S-2: the first row after 5 minutes, or after 10 % of a short run.
warm=$((secs / 10 < 300 ? secs / 10 : 300))
verdict=$(awk -F'\t' -v warm="$warm" -v secs="$secs" -v ran="$ran" -v tc="$tool_code" -v wc="$wl_code" \
	-v dmesg="$(wc -l <"$out/dmesg-new.txt")" '
	NR == 1 { next }
	{
		for (c = 3; c <= 8; c += 5) if ($c != "NA") {
			if ($2 >= warm && !(c in base)) base[c] = $c
			if ($c > peak[c]) peak[c] = $c
			last[c] = $c
		}
		rows++
	}
	END {
		name[3] = "tracer on the node"; name[8] = "tracer on the workload"
		s1 = (ran >= secs) && (tc == "NA" || tc == 0) && (wc == "NA" || wc == 0)
		printf "S-1 ran %d of %d s; exit codes: node tracer %s, workload tracer %s: %s\n", ran, secs, tc, wc, s1 ? "PASS" : "FAIL"
		s2 = 1
		for (c = 3; c <= 8; c += 5) if (c in peak) {
			ok = (c in base) && peak[c] - base[c] <= 5120
			s2 = s2 && ok
			printf "S-2 %s: RSS after warm-up %d kB, peak %d kB, end %d kB (growth %d kB, limit 5120): %s\n", name[c], base[c], peak[c], last[c], peak[c] - base[c], ok ? "PASS" : "FAIL"
		}
		s3 = (dmesg == 0)
		printf "S-3 new BPF/uprobe/WARNING kernel log lines: %d: %s\n", dmesg, s3 ? "PASS" : "FAIL"
		printf "rows %d\n", rows
		exit !(s1 && s2 && s3)
	}' "$out/soak.tsv") && ok=1 || ok=0
echo "$verdict" | tee "$out/verdict.txt"
if [ "${SOAK_REPORT:-1}" != 0 ]; then
	scripts/soak-report.sh "$out" || { log "soak: the report failed"; ok=0; }
fi
[ "$ok" = 1 ]
