#!/usr/bin/env bash
# F-7 acceptance: a synthetic RocksDB write burst must raise an anomaly alert
# whose probable cause is RocksDB background work (write stall, compaction or
# flush) within 15 s of the burst. Needs root; exits 0 on success, 1 if no
# such alert came in time, 3 if the tool lacks the anomaly options.
#
#   scripts/demo-stress.sh [BASELINE_SECS] [BURST_MB]     (defaults 20, 32)
#
# What it does:
#  1. starts the bundled workload: quiet rounds (the baseline), then at
#     BASELINE_SECS + 5 s a burst of BURST_MB MiB of writes with tiny
#     memtables and level-0 triggers (--small-memtables), which forces
#     flushes, compactions and write stalls; the workload prints
#     `BURST start <unix ms>` on stderr when the burst begins;
#  2. runs `ckb-libbpf rocksdb --pid PID --json --baseline-secs BASELINE_SECS`
#     alongside (needs the background layer and the analyzer wired into
#     `rocksdb`: each JSON report line carries an `anomalies` array);
#  3. succeeds when a report line timestamped at most 15 s after the burst
#     start has an anomaly with cause write_stall, compaction or flush.
cd "$(dirname "$0")/.."
. scripts/lib.sh
baseline=${1:-20}
mb=${2:-32}
limit_ms=15000
tool=$TOOL
workload=$WORKLOAD
need_built
need_cmds jq
need_root "demo-stress loads BPF programs"
if ! "$tool" rocksdb --help | grep -q -- '--baseline-secs'; then
	die 3 "ckb-libbpf rocksdb has no --baseline-secs: the anomaly detector is not wired in yet"
fi

dir=$(mktemp -d /tmp/ckb-libbpf-stress.XXXXXX)
at_exit "rm -rf '$dir'"
"$workload" --db "$dir/db" --secs 0 --pause-ms 50 --small-memtables \
	--burst-at $((baseline + 5)) --burst-mb "$mb" >"$dir/workload.out" 2>"$dir/workload.err" &
wl=$!
kill_at_exit "$wl"
sleep 1
echo "+ $tool rocksdb --pid $wl --json --baseline-secs $baseline" >&2
"$tool" rocksdb --pid "$wl" --json --baseline-secs "$baseline" >"$dir/tool.jsonl" 2>"$dir/tool.err" &
tl=$!
kill_at_exit "$tl" INT

# Wait for the burst (baseline + 5 s, plus slack for a slow start).
for _ in $(seq $((baseline + 60))); do
	grep -q '^BURST start' "$dir/workload.err" && break
	kill -0 "$tl" 2>/dev/null || { echo "ckb-libbpf exited early:" >&2; cat "$dir/tool.err" >&2; exit 1; }
	sleep 1
done
burst_ms=$(awk '/^BURST start/ {print $3; exit}' "$dir/workload.err")
[ -n "$burst_ms" ] || { echo "the workload never started its burst" >&2; exit 1; }
echo "burst started at $(date -u -d "@$((burst_ms / 1000))" +%T); waiting up to $((limit_ms / 1000)) s for an alert" >&2

# The first report line with a background-caused anomaly, as
# "<timestamp ms> <operation> <cause> <multiplier>".
found=""
deadline=$(( $(date +%s) + limit_ms / 1000 + 3 ))
while [ "$(date +%s)" -le "$deadline" ]; do
	found=$(jq -r --argjson t0 "$burst_ms" '
		select(.type == "report" and (.anomalies // [] | length) > 0)
		| (.timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) as $s
		| (.timestamp | capture("\\.(?<ms>[0-9]+)Z$").ms // "0" | tonumber) as $ms
		| ($s * 1000 + $ms) as $t
		| select($t >= $t0)
		| .anomalies[]
		| select(.cause == "write_stall" or .cause == "compaction" or .cause == "flush")
		| "\($t) \(.operation) \(.cause) \(.multiplier)"' "$dir/tool.jsonl" 2>/dev/null | head -1)
	[ -n "$found" ] && break
	sleep 1
done

echo "expected: an anomaly caused by write_stall, compaction or flush within $((limit_ms / 1000)) s of the burst"
if [ -z "$found" ]; then
	echo "actual:   none (last report lines below)"
	tail -n 3 "$dir/tool.jsonl"
	exit 1
fi
read -r t op cause mult <<<"$found"
delay=$((t - burst_ms))
awk -v op="$op" -v m="$mult" -v c="$cause" -v d="$delay" \
	'BEGIN { printf "actual:   %s latency spike (%.1fx baseline), cause %s, %.1f s after the burst\n", op, m, c, d / 1000 }'
[ "$delay" -le "$limit_ms" ] || { echo "FAIL: later than $((limit_ms / 1000)) s"; exit 1; }
echo "PASS"
