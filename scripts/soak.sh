#!/usr/bin/env bash
# Long soak (proposal S-1..S-3): ckb-libbpf beside a node for hours or days.
#
#   scripts/soak.sh [DURATION_SECS=172800] [PID]
#
# Without PID it starts the bundled workload (~15 K RocksDB calls/s). Every
# SAMPLE_SECS (60) it appends one row to soak.tsv in OUT_DIR
# (/tmp/ckb-libbpf-soak.<time>):
#   time  elapsed_s  tool_rss_kb  tool_cpu_pct  ops_total  ops_per_s  lost_events  dmesg_bpf_lines
# and at the end prints the verdict and exits 0 only if
#   S-1 the tool ran the whole time and exited 0 on SIGINT,
#   S-2 its RSS grew by at most 5 MB after the first 5 minutes (or 10 % of the run),
#   S-3 the kernel log gained no BPF/uprobe warnings.
# Needs root. The tool must be built (make build workload).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-172800}
pid=${2:-}
sample=${SAMPLE_SECS:-60}
tool=$PWD/target/release/ckb-libbpf
workload=$PWD/target/release/examples/rocksdb_workload
out=${OUT_DIR:-/tmp/ckb-libbpf-soak.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
[ -x "$tool" ] || { echo "build first: make build workload" >&2; exit 1; }

wl=""
if [ -z "$pid" ]; then
	"$workload" --db "$out/db" --secs 0 --pause-ms 40 > /dev/null &
	wl=$!
	pid=$wl
	sleep 1
fi
tp=""
cleanup() {
	[ -n "$tp" ] && kill -INT "$tp" 2>/dev/null
	[ -n "$wl" ] && kill "$wl" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$out/db"
}
trap cleanup EXIT

dmesg_bpf() { dmesg 2>/dev/null | grep -ciE 'bpf|uprobe|WARNING: CPU' || true; }
dmesg0=$(dmesg_bpf)
hz=$(getconf CLK_TCK)

"$tool" rocksdb --pid "$pid" --json --interval "$sample" > "$out/tool.jsonl" 2> "$out/tool.err" &
tp=$!
echo "soak: tool pid $tp tracing pid $pid for $secs s; data in $out" >&2
printf 'time\telapsed_s\ttool_rss_kb\ttool_cpu_pct\tops_total\tops_per_s\tlost_events\tdmesg_bpf_lines\n' > "$out/soak.tsv"

start=$(date +%s)
ticks0=$(awk '{print $14+$15}' /proc/$tp/stat)
t_prev=$start; ticks_prev=$ticks0; ops_total=0; alive=1
while :; do
	sleep "$sample"
	now=$(date +%s)
	if ! kill -0 "$tp" 2>/dev/null; then alive=0; break; fi
	rss=$(awk '/VmRSS/ {print $2}' /proc/$tp/status)
	ticks=$(awk '{print $14+$15}' /proc/$tp/stat)
	cpu=$(awk -v t=$((ticks - ticks_prev)) -v hz="$hz" -v s=$((now - t_prev)) 'BEGIN {printf "%.3f", 100 * t / hz / s}')
	last=$(tail -n 1 "$out/tool.jsonl")
	ops=$(printf '%s' "$last" | { grep -o '"count":[0-9]*' || true; } | awk -F: '{s += $2} END {print s + 0}')
	lost=$(printf '%s' "$last" | { grep -o '"lost_events":[0-9]*' || true; } | cut -d: -f2)
	ops_total=$((ops_total + ops))
	printf '%s\t%d\t%s\t%s\t%d\t%.0f\t%s\t%d\n' "$(date -Is)" $((now - start)) "$rss" "$cpu" "$ops_total" \
		"$(awk -v o="$ops" -v s=$((now - t_prev)) 'BEGIN {print o / s}')" "${lost:-0}" $(( $(dmesg_bpf) - dmesg0 )) >> "$out/soak.tsv"
	t_prev=$now; ticks_prev=$ticks
	[ $((now - start)) -ge "$secs" ] && break
done

code=1
if [ $alive = 1 ]; then
	kill -INT "$tp"
	wait "$tp" && code=0 || code=$?
	tp=""
fi
# Baseline: the first row after 5 minutes, or after 10 % of a short run.
warm=$(( secs / 10 < 300 ? secs / 10 : 300 ))
verdict=$(awk -F'\t' -v warm="$warm" -v alive=$alive -v code=$code '
	NR == 1 { next }
	$2 >= warm && base == "" { base = $3 }
	{ last = $3; if ($3 > peak) peak = $3; lost = $7; d = $8; rows++ }
	END {
		s1 = (alive && code == 0); s2 = (base != "" && peak - base <= 5120); s3 = (d == 0)
		printf "S-1 ran to the end, exit %d: %s\n", code, s1 ? "PASS" : "FAIL"
		printf "S-2 RSS after warm-up %d kB, peak %d kB, end %d kB (growth %d kB, limit 5120): %s\n", base, peak, last, peak - base, s2 ? "PASS" : "FAIL"
		printf "S-3 new BPF/uprobe kernel log lines: %d: %s\n", d, s3 ? "PASS" : "FAIL"
		printf "rows %d, lost events %d\n", rows, lost
		exit !(s1 && s2 && s3)
	}' "$out/soak.tsv") && ok=1 || ok=0
echo "$verdict" | tee "$out/verdict.txt"
[ "$ok" = 1 ]
