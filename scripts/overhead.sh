#!/usr/bin/env bash
# The bundled workload's slowdown under ckb-libbpf, as ratios measured in one
# run. Three setups alternate (bare, floor, ours) PAIRS times so machine noise
# hits all of them; medians are compared:
#   bare  - no probes
#   floor - empty uprobe+uretprobe programs (bpftrace) on the same functions:
#           what the kernel charges before any BPF work of ours
#   ours  - ckb-libbpf rocksdb (default functions) --json
# Usage: scripts/overhead.sh [ROUNDS] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}; pairs=${2:-5}
tool=$(pwd)/target/release/ckb-libbpf; wl=target/release/examples/rocksdb_workload
[ -x "$tool" ] && [ -x "$wl" ] || { echo "build first: make build workload" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "bpftrace missing: make deps" >&2; exit 1; }
scratch=$(mktemp -d /tmp/ckb-libbpf-overhead.XXXXXX)
bg=""
trap '[ -n "$bg" ] && kill -INT $bg 2>/dev/null; rm -rf "$scratch"' EXIT
cp "$wl" "$scratch/wl"   # a private copy: file-wide probes see only our runs

# The functions ckb-libbpf attaches by default (emulated first instruction).
funcs=$("$tool" symbols "$scratch/wl" --json --tier 1 | jq -r '.tier1[] | select(.present and .probe_cost == "emulated") | .name')
probes=$(for f in $funcs; do printf 'uprobe:%s:%s,' "$scratch/wl" "$f"; done | sed 's/,$//')
rprobes=$(for f in $funcs; do printf 'uretprobe:%s:%s,' "$scratch/wl" "$f"; done | sed 's/,$//')

run() { "$scratch/wl" --db "$scratch/db" --rounds "$rounds" | sed -n 's/.*"elapsed_us":\([0-9]*\).*/\1/p'; rm -rf "$scratch/db"; }
wait_for() { until grep -q "$1" "$2" 2>/dev/null; do sleep 0.05; done; }
bare=(); floor=(); ours=()
for i in $(seq "$pairs"); do
	bare+=("$(run)")

	bpftrace -e "$probes { } $rprobes { }" > "$scratch/bt.out" 2>&1 & bg=$!
	wait_for Attaching "$scratch/bt.out"; sleep 1
	floor+=("$(run)")
	kill -INT $bg; wait $bg || true; bg=""

	"$tool" rocksdb --binary "$scratch/wl" --json --interval 3600 > "$scratch/tool.out" 2> "$scratch/tool.err" & bg=$!
	wait_for attached "$scratch/tool.err"
	ours+=("$(run)")
	kill -INT $bg; wait $bg; bg=""
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${bare[@]}"); mf=$(median "${floor[@]}"); mo=$(median "${ours[@]}")
calls=$(tail -1 "$scratch/tool.out" | jq '[.operations[].count] | add')
echo "workload: $rounds rounds, $calls traced calls per run; $pairs alternations; $(echo "$funcs" | wc -l) functions"
echo "elapsed us: bare [${bare[*]}]  floor [${floor[*]}]  ours [${ours[*]}]"
awk -v b="$mb" -v f="$mf" -v o="$mo" -v c="$calls" 'BEGIN {
	printf "median: bare %.1f ms, floor %.1f ms (%.3fx), ckb-libbpf %.1f ms (%.3fx)\n", b/1e3, f/1e3, f/b, o/1e3, o/b
	printf "per traced call: floor +%.2f us, ckb-libbpf +%.2f us; (ours - bare) / (floor - bare) = %.2f\n", (f-b)/c, (o-b)/c, (o-b)/(f-b) }'
