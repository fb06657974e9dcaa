#!/usr/bin/env bash
# End to end against a real CKB node (not part of CI: building CKB takes ~20 min).
#
#   scripts/e2e-ckb.sh [BLOCKS]        (default 3000; needs root)
#
# 1. Builds CKB (`cargo install ckb --locked`) unless CKB_BIN points to one.
# 2. Makes a dev chain on 127.0.0.1 (Dummy miner, short delay) until it has
#    BLOCKS blocks, and exports it.
# 3. Live: `ckb-libbpf rocksdb` on the running node for CAPTURE_SECS (default
#    60), sampling the tool's RSS and CPU.
# 4. Exact: `ckb import` of the export while ckb-libbpf and an equivalent
#    bpftrace script both trace the CKB binary; per-function counts must agree.
# 5. Cost: import time bare, under empty probes (bpftrace), under ckb-libbpf.
# Results go to stdout and $OUT (default /tmp/ckb-libbpf-e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
blocks=${1:-3000}
capture=${CAPTURE_SECS:-60}
out=${OUT:-/tmp/ckb-libbpf-e2e}
tool=$(pwd)/target/release/ckb-libbpf
[ -x "$tool" ] || make build >/dev/null
ckb=${CKB_BIN:-}
if [ -z "$ckb" ]; then
	ckb=/opt/ckb/bin/ckb
	[ -x "$ckb" ] || cargo install ckb --locked --root /opt/ckb
fi
command -v bpftrace >/dev/null || make deps >/dev/null
rm -rf "$out"; mkdir -p "$out"
chain=$out/chain
log() { echo "== $*" >&2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

log "dev chain in $chain"
"$ckb" init -C "$chain" --chain dev --ba-arg 0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7 --force >/dev/null
sed -i 's#^listen_addresses = .*#listen_addresses = ["/ip4/127.0.0.1/tcp/18115"]#; s#^listen_address = .*#listen_address = "127.0.0.1:18114"#' "$chain/ckb.toml"
sed -i "s/^value = .*/value = 20/; s#127.0.0.1:8114#127.0.0.1:18114#" "$chain/ckb-miner.toml"
tip() { curl -s -X POST -H 'content-type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"get_tip_block_number","params":[]}' http://127.0.0.1:18114 | jq -r '.result // "0x0"'; }

"$ckb" run -C "$chain" > "$out/node.log" 2>&1 & node=$!; pids+=("$node")
sleep 3
"$ckb" miner -C "$chain" > "$out/miner.log" 2>&1 & miner=$!; pids+=("$miner")
while [ $(( $(tip) )) -lt "$blocks" ]; do sleep 5; log "tip $(( $(tip) ))"; done

log "live capture: ckb-libbpf rocksdb ${capture}s on pid $node (node + miner running)"
"$tool" rocksdb "${capture}s" --pid "$node" --json --by-function > "$out/live.jsonl" 2> "$out/live.err" & tp=$!
peak=0; cpu0=$(awk '{print $14+$15}' /proc/$tp/stat 2>/dev/null || echo 0); t0=$(date +%s.%N)
rss_first=""
while kill -0 "$tp" 2>/dev/null; do
	r=$(awk '/VmRSS/ {print $2}' /proc/$tp/status 2>/dev/null || echo 0)
	[ -n "$r" ] && { [ -z "$rss_first" ] && [ "$r" -gt 0 ] && rss_first=$r; [ "$r" -gt "$peak" ] && peak=$r; last=$r; }
	cpu1=$(awk '{print $14+$15}' /proc/$tp/stat 2>/dev/null || echo "$cpu0")
	sleep 1
done
t1=$(date +%s.%N); wait "$tp" || true
hz=$(getconf CLK_TCK)
echo "tool: RSS first ${rss_first} KiB, last ${last:-0} KiB, peak ${peak} KiB; CPU $(awk -v a="$cpu0" -v b="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {printf "%.2f%% of one core", (b-a)/hz/(t1-t0)*100}')" | tee "$out/live-resources.txt"
tail -1 "$out/live.jsonl" | jq -c '.operations | to_entries[] | {op: .key, count: .value.count, avg_us: .value.avg_us, p50_us: .value.p50_us, p99_us: .value.p99_us, max_us: .value.max_us, hit_ratio: .value.hit_ratio}' | tee "$out/live-ops.txt"

log "export"
kill "$miner"; sleep 1; kill "$node"; wait "$node" 2>/dev/null || true; pids=()
"$ckb" export -C "$chain" --target "$out/export" >/dev/null 2>&1
exported=$(ls "$out/export"/*.json* | head -1)

import() { # $1 = name
	rm -rf "$out/imp-$1"; "$ckb" init -C "$out/imp-$1" --chain dev --ba-arg 0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7 --force >/dev/null
	cp "$chain/specs/dev.toml" "$out/imp-$1/specs/dev.toml" 2>/dev/null || true
	local s e; s=$(date +%s.%N); "$ckb" import -C "$out/imp-$1" "$exported" >/dev/null 2>&1; e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", e-s}'
}

real=$(readlink -f "$ckb")
funcs=$("$tool" symbols "$real" --json --tier 1 | jq -r '.tier1[] | select(.present and .probe_cost == "emulated") | .name')
probes=$(for f in $funcs; do printf 'uprobe:%s:%s,' "$real" "$f"; done | sed 's/,$//')
rprobes=$(for f in $funcs; do printf 'uretprobe:%s:%s,' "$real" "$f"; done | sed 's/,$//')

log "exact comparison over one import: ckb-libbpf vs bpftrace on $(echo "$funcs" | wc -l) functions"
bpftrace -e "$probes { @[probe] = count(); }" > "$out/bpftrace.txt" 2>&1 & bt=$!
sleep 8
"$tool" rocksdb --binary "$real" --json --by-function --interval 3600 > "$out/import.jsonl" 2> "$out/import.err" & tp=$!
until grep -q attached "$out/import.err"; do sleep 0.2; done
t_tool=$(import both)
kill -INT "$tp"; wait "$tp" || true
kill -INT "$bt"; wait "$bt" || true
tail -1 "$out/import.jsonl" | jq -r '.functions | to_entries[] | select(.value.count > 0) | "\(.key) \(.value.count)"' | sort > "$out/ours.txt"
sed -n 's/^@\[uprobe:.*:\(rocksdb_[a-z_]*\)\]: \([0-9]*\)$/\1 \2/p' "$out/bpftrace.txt" | sort > "$out/theirs.txt"
join -a1 -a2 -e0 -o 0,1.2,2.2 "$out/ours.txt" "$out/theirs.txt" | awk '{d = ($3 ? ($2-$3)/$3*100 : 0); printf "%-42s ours %9d  bpftrace %9d  diff %+.3f%%\n", $1, $2, $3, d}' | tee "$out/compare.txt"

log "import cost: bare / empty probes (bpftrace floor) / ckb-libbpf, alternating"
bare=$(import bare)
bpftrace -e "$probes { } $rprobes { }" > /dev/null 2>&1 & bt=$!; sleep 8
floor=$(import floor); kill -INT "$bt"; wait "$bt" || true
"$tool" rocksdb --binary "$real" --json --interval 3600 > /dev/null 2> "$out/cost.err" & tp=$!
until grep -q attached "$out/cost.err"; do sleep 0.2; done
ours=$(import ours); kill -INT "$tp"; wait "$tp" || true
bare2=$(import bare2)
echo "import of $blocks blocks: bare ${bare}s / ${bare2}s, empty probes ${floor}s, ckb-libbpf ${ours}s (and ${t_tool}s with bpftrace counting too)" | tee "$out/import-cost.txt"
awk -v b="$bare" -v b2="$bare2" -v f="$floor" -v o="$ours" 'BEGIN { m=(b+b2)/2; printf "slowdown: floor %.3fx, ckb-libbpf %.3fx; (ours-bare)/(floor-bare) = %.2f\n", f/m, o/m, (o-m)/(f-m) }' | tee -a "$out/import-cost.txt"
