#!/usr/bin/env bash
# Per-send cost of the net layer on a loopback send loop (root).
#
#   scripts/net-overhead.sh [SENDS] [ROUNDS]     (defaults 200000, 3)
#
# One net_workload process sends SENDS 64-byte writes to its own listener,
# timing only the send loop; rounds alternate bare / traced with tp_btf /
# traced with classic tracepoints, in one run. Prints ns per send of each
# and the medians' differences.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}; rounds=${2:-3}
tool=$(pwd)/target/release/ckb-libbpf
wl=$(pwd)/target/release/examples/net_workload
[ -x "$wl" ] || cargo build --release --example net_workload >/dev/null
coproc W { "$wl"; }
read -r _ pid port4 _ <&"${W[0]}"
bench() { echo "bench 127.0.0.1:$port4 $n" >&"${W[1]}"; read -r line <&"${W[0]}"; echo "$line" | sed 's/.*"ns_per_call":\([0-9.]*\).*/\1/'; }
traced() { # $1 = backend
	"$tool" net --pid "$pid" --backend "$1" --interval 60 >/dev/null 2>/tmp/net-overhead.err & local t=$!
	until grep -q attached /tmp/net-overhead.err 2>/dev/null; do sleep 0.1; done
	bench; kill -INT "$t"; wait "$t" || true
}
declare -A r
bench >/dev/null # warm up
for i in $(seq "$rounds"); do
	r[bare]+="$(bench) "; r[tp_btf]+="$(traced tp_btf) "; r[tracepoint]+="$(traced tracepoint) "
done
echo quit >&"${W[1]}"; wait "$W_PID" 2>/dev/null || true
med() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mn() { tr ' ' '\n' | grep . | sort -n | head -1; }
b=$(echo "${r[bare]}" | med); bm=$(echo "${r[bare]}" | mn)
# The machine is shared: the minimum is the least disturbed run of each.
for k in bare tp_btf tracepoint; do
	m=$(echo "${r[$k]}" | med); x=$(echo "${r[$k]}" | mn)
	printf "%-11s ns/send: %s\n            median %s (%+.0f ns, x%.3f)  min %s (%+.0f ns, x%.3f)\n" "$k" "${r[$k]}" \
		"$m" "$(echo "$m - $b" | bc -l)" "$(echo "$m / $b" | bc -l)" "$x" "$(echo "$x - $bm" | bc -l)" "$(echo "$x / $bm" | bc -l)"
done
