#!/usr/bin/env bash
# A real CKB dev node restarted, then upgraded, under `ckb-libbpf rocksdb`
# (issue 5). Not in CI (needs a CKB binary: CKB_BIN, or `ckb` on PATH).
# Needs root. Output in $OUT (default /tmp/ckb-libbpf-restart).
#
#   t=0   node + miner running, tool attached with --pid
#   t=15  SIGTERM the node, start it again 3 s later           (restart)
#   t=35  replace the binary file (copy + rename: new inode), SIGTERM the
#         node, start it from the new file 3 s later            (upgrade)
#   t=60  SIGINT the tool: final summary with both gaps
cd "$(dirname "$0")/.."
. scripts/lib.sh
ckb_src=$(find_ckb) || exit 2
out=${OUT:-/tmp/ckb-libbpf-restart}
[ -x "$TOOL" ] || make build >/dev/null
need_root "e2e-ckb-restart loads BPF programs"
need_cmds curl jq
ports_free 28114 28115
rm -rf "$out"
mkdir -p "$out/bin"
cp "$ckb_src" "$out/bin/ckb"
ckb=$out/bin/ckb
chain=$out/chain
ckb_dev_init "$ckb" "$chain" 28114 28115
ckb_dev_miner "$chain" 50

node=""
start_node() {
	"$ckb" run -C "$chain" >>"$out/node.log" 2>&1 &
	node=$!
	kill_at_exit "$node"
	wait_port 28114 "$node"
}
stop_node() {
	kill "$node"
	wait "$node" 2>/dev/null || true
}
start_node
"$ckb" miner -C "$chain" >"$out/miner.log" 2>&1 &
kill_at_exit $!
sleep 2
"$TOOL" rocksdb --pid "$node" --json --interval 2 >"$out/tool.jsonl" 2>"$out/tool.err" &
tp=$!
kill_at_exit "$tp" INT
wait_for attached "$out/tool.err" "$tp"
log "node pid $node, tool pid $tp"
sleep 15
log "restart: SIGTERM $node"
stop_node
sleep 3
start_node
log "new node pid $node"
sleep 17
log "upgrade: new inode at $ckb, SIGTERM $node"
cp "$ckb" "$ckb.new"
mv "$ckb.new" "$ckb"
stop_node
sleep 3
start_node
log "upgraded node pid $node"
sleep 22
kill -INT "$tp"
code=0
wait "$tp" || code=$?
log "tool exit $code"
echo "--- target events"
grep '"type":"target"' "$out/tool.jsonl" || true
echo "--- per-pid operations (interval reports)"
jq -r 'select(.type == "report" and .final == false) | [.pid, ([.operations[].count] | add)] | @tsv' "$out/tool.jsonl" |
	awk '{ops[$1] += $2} END {for (p in ops) print "pid " p ": " ops[p] " RocksDB calls"}'
echo "--- final"
tail -1 "$out/tool.jsonl" | jq -c '{pid, elapsed_secs, lost_events, gaps, ops: (.operations | map_values(.count))}'
grep -v "left out\|not in the target" "$out/tool.err" || true
exit "$code"
