#!/usr/bin/env bash
# What the cause layers of `ckb-libbpf rocksdb --causes` add to the bundled
# workload, as ratios measured in one run. Three setups alternate PAIRS
# times so machine noise hits all of them; medians are compared:
#   rocksdb  - ckb-libbpf rocksdb --pid P (RocksDB + background layers)
#   +syscall - the same with --causes syscall (raw_syscalls enter/exit)
#   +net     - the same with --causes net (TCP send/recv/lifecycle)
# Usage: scripts/causes-overhead.sh [ROUNDS] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-300}; pairs=${2:-5}
tool=$(pwd)/target/release/ckb-libbpf; wl=$(pwd)/target/release/examples/rocksdb_workload
[ -x "$tool" ] && [ -x "$wl" ] || { echo "build first: make build workload" >&2; exit 1; }
scratch=$(mktemp -d /tmp/ckb-libbpf-causes.XXXXXX)
bg=""
trap '[ -n "$bg" ] && kill -INT $bg 2>/dev/null; rm -rf "$scratch"' EXIT

# One workload run with the tool attached to it: prints elapsed_us.
run() {
	local fifo=$scratch/in
	rm -f "$fifo"; mkfifo "$fifo"
	"$wl" --db "$scratch/db" --rounds "$rounds" --wait-stdin < "$fifo" > "$scratch/wl.out" &
	local w=$!
	exec 3> "$fifo"
	until grep -q READY "$scratch/wl.out" 2>/dev/null; do sleep 0.05; done
	"$tool" rocksdb --pid "$w" --interval 3600 --json "$@" > "$scratch/tool.out" 2> "$scratch/tool.err" & bg=$!
	until grep -q "attached " "$scratch/tool.err" 2>/dev/null; do sleep 0.05; done
	sleep 0.5   # the cause layers attach after the RocksDB note
	echo go >&3
	until grep -q elapsed_us "$scratch/wl.out" 2>/dev/null; do sleep 0.05; done
	kill -INT $bg; wait $bg || true; bg=""
	exec 3>&-
	wait $w || true
	rm -rf "$scratch/db"
	sed -n 's/.*"elapsed_us":\([0-9]*\).*/\1/p' "$scratch/wl.out"
}
base=(); sys=(); net=()
for i in $(seq "$pairs"); do
	base+=("$(run --causes none)")
	sys+=("$(run --causes syscall)")
	net+=("$(run --causes net)")
done
grep -h "cause inputs" "$scratch/tool.err" || true
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fastest() { printf '%s\n' "$@" | sort -n | head -1; }
mb=$(median "${base[@]}"); ms=$(median "${sys[@]}"); mn=$(median "${net[@]}")
fb=$(fastest "${base[@]}"); fs=$(fastest "${sys[@]}"); fn=$(fastest "${net[@]}")
echo "workload: $rounds rounds; $pairs alternations"
echo "elapsed us: rocksdb [${base[*]}]  +syscall [${sys[*]}]  +net [${net[*]}]"
awk -v b="$mb" -v s="$ms" -v n="$mn" 'BEGIN {
	printf "median: rocksdb %.1f ms, +syscall %.1f ms (%.3fx), +net %.1f ms (%.3fx)\n", b/1e3, s/1e3, s/b, n/1e3, n/b }'
awk -v b="$fb" -v s="$fs" -v n="$fn" 'BEGIN {
	printf "fastest: rocksdb %.1f ms, +syscall %.1f ms (%.3fx), +net %.1f ms (%.3fx)\n", b/1e3, s/1e3, s/b, n/1e3, n/b }'
