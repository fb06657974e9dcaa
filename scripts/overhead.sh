#!/usr/bin/env bash
# Workload slowdown under `ckb-libbpf rocksdb`, measured as a ratio in one
# run: bare and traced runs alternate (ABAB...) so machine noise hits both;
# the medians are compared. Usage: scripts/overhead.sh [ROUNDS] [PAIRS] [-- TOOL ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-200}; pairs=${2:-5}; shift $(( $# >= 2 ? 2 : $# )); [ "${1:-}" = "--" ] && shift
tool=target/release/ckb-libbpf; wl=target/release/examples/rocksdb_workload
[ -x "$tool" ] && [ -x "$wl" ] || { echo "build first: make build workload" >&2; exit 1; }
scratch=$(mktemp -d /tmp/ckb-libbpf-overhead.XXXXXX); trap 'rm -rf "$scratch"' EXIT
cp "$wl" "$scratch/wl"   # a private copy: file-wide probes see only our runs

run() { "$scratch/wl" --db "$scratch/db-$1" --rounds "$rounds" | sed -n 's/.*"elapsed_us":\([0-9]*\).*/\1/p'; rm -rf "$scratch/db-$1"; }
bare=(); traced=()
for i in $(seq "$pairs"); do
	bare+=("$(run "b$i")")
	"$tool" rocksdb --binary "$scratch/wl" --json --interval 60 "$@" > "$scratch/tool.out" 2> "$scratch/tool.err" &
	tp=$!
	until grep -q "attached" "$scratch/tool.err" 2>/dev/null; do sleep 0.05; done
	traced+=("$(run "t$i")")
	kill -INT "$tp"; wait "$tp"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${bare[@]}"); mt=$(median "${traced[@]}")
calls=$(tail -1 "$scratch/tool.out" | jq '[.operations[].count] | add')
echo "rounds=$rounds pairs=$pairs bare_us=[${bare[*]}] traced_us=[${traced[*]}]"
awk -v b="$mb" -v t="$mt" -v c="$calls" 'BEGIN {
	printf "median bare %.1f ms, traced %.1f ms: slowdown ratio %.3f (+%.1f%%), %d traced calls in the last run, %.2f us added per call\n",
		b/1000, t/1000, t/b, (t/b-1)*100, c, (t-b)/c }'
