#!/usr/bin/env bash
# A real CKB dev node restarted, then upgraded, under `ckb-libbpf rocksdb`
# (issue 5). Not in CI (needs a CKB binary: CKB_BIN, default the one
# scripts/e2e-ckb.sh installs). Needs root. Output in $OUT.
#
#   t=0   node + miner running, tool attached with --pid
#   t=15  SIGTERM the node, start it again 3 s later           (restart)
#   t=35  replace the binary file (copy + rename: new inode), SIGTERM the
#         node, start it from the new file 3 s later            (upgrade)
#   t=60  SIGINT the tool: final summary with both gaps
set -euo pipefail
cd "$(dirname "$0")/.."
ckb_src=${CKB_BIN:-/opt/ckb/bin/ckb}
out=${OUT:-/tmp/ckb-libbpf-restart}
tool=$(pwd)/target/release/ckb-libbpf
[ -x "$tool" ] || make build >/dev/null
[ -x "$ckb_src" ] || { echo "no CKB binary at $ckb_src (set CKB_BIN, or run scripts/e2e-ckb.sh once)" >&2; exit 2; }
rm -rf "$out"; mkdir -p "$out/bin"
cp "$ckb_src" "$out/bin/ckb"; ckb=$out/bin/ckb
chain=$out/chain
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$ckb" init -C "$chain" --chain dev --ba-arg 0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7 --force >/dev/null
sed -i 's#^listen_addresses = .*#listen_addresses = ["/ip4/127.0.0.1/tcp/28115"]#; s#^listen_address = .*#listen_address = "127.0.0.1:28114"#' "$chain/ckb.toml"
sed -i "s/^value = .*/value = 50/; s#127.0.0.1:8114#127.0.0.1:28114#" "$chain/ckb-miner.toml"

start_node() { "$ckb" run -C "$chain" >> "$out/node.log" 2>&1 & node=$!; pids+=("$node"); }
start_node; sleep 3
"$ckb" miner -C "$chain" > "$out/miner.log" 2>&1 & pids+=($!)
sleep 2
"$tool" rocksdb --pid "$node" --json --interval 2 > "$out/tool.jsonl" 2> "$out/tool.err" & tp=$!
pids+=("$tp")
echo "node pid $node, tool pid $tp" >&2
sleep 15
echo "restart: SIGTERM $node" >&2
kill "$node"; wait "$node" 2>/dev/null || true; sleep 3; start_node; echo "new node pid $node" >&2
sleep 17
echo "upgrade: new inode at $ckb, SIGTERM $node" >&2
cp "$ckb" "$ckb.new" && mv "$ckb.new" "$ckb"
kill "$node"; wait "$node" 2>/dev/null || true; sleep 3; start_node; echo "upgraded node pid $node" >&2
sleep 22
kill -INT "$tp"; wait "$tp" && echo "tool exit 0" >&2 || echo "tool exit $?" >&2
echo "--- target events"
grep '"type":"target"' "$out/tool.jsonl" || true
echo "--- per-pid operations (interval reports)"
jq -r 'select(.type == "report" and .final == false) | [.pid, ([.operations[].count] | add)] | @tsv' "$out/tool.jsonl" |
	awk '{ops[$1] += $2} END {for (p in ops) print "pid " p ": " ops[p] " RocksDB calls"}'
echo "--- final"
tail -1 "$out/tool.jsonl" | jq -c '{pid, elapsed_secs, lost_events, gaps, ops: (.operations | map_values(.count))}'
grep -v "left out\|not in the target" "$out/tool.err"
