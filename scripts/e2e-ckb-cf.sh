#!/usr/bin/env bash
# End to end, issue 17: per-column-family counts on a real CKB node (not CI).
#
#   scripts/e2e-ckb-cf.sh [BLOCKS]        (default 300; needs root)
#
# 1. Uses CKB_BIN or `ckb` on PATH (see scripts/e2e-ckb.sh for a build).
# 2. Mines a dev chain to BLOCKS blocks and exports it.
# 3. `ckb import`s the export into a fresh chain while `ckb-libbpf rocksdb
#    --binary CKB --json` traces it, and checks the final report's by_cf
#    rows against what CKB's schema (db-schema, store::StoreTransaction::
#    insert_block) predicts: every imported block's header is written once
#    to COLUMN_BLOCK_HEADER and its number-hash pair once to
#    COLUMN_NUMBER_HASH, all in the chain database <chain>/data/db; the
#    genesis block, written when the fresh database is initialised, adds one
#    to each. Families must carry CKB's names, and no handle may stay
#    unresolved ("db@0x..", "cf@0x.."). The iterator classes, counted by
#    default at C++ stand-ins, must equal the C functions' counts.
# 4. WRITE bytes on a live node: a fresh dev chain with the Indexer module
#    (whose database is written with rocksdb_write, one batch per block)
#    mines LIVE_BLOCKS (default 100) blocks under `ckb-libbpf rocksdb
#    --binary`; with the node stopped (SIGSTOP) once the indexer caught up,
#    the indexer database's WRITE calls and bytes must equal the batches in
#    its write-ahead log (scripts/rocksdb-wal.py: each batch's data is one
#    WAL record).
# Exit 1 if a check fails. Results in $OUT (default /tmp/ckb-libbpf-e2e-cf).
cd "$(dirname "$0")/.."
. scripts/lib.sh
blocks=${1:-300}
out=${OUT:-/tmp/ckb-libbpf-e2e-cf}
tool=$TOOL
[ -x "$tool" ] || make build >/dev/null
ckb=$(find_ckb) || exit 2
need_root "e2e-ckb-cf loads BPF programs"
need_cmds curl jq python3
rm -rf "$out"
mkdir -p "$out"
chain=$out/chain

log "dev chain in $chain: mining $blocks blocks"
ckb_dev_init "$ckb" "$chain" 18124 18125
ckb_dev_miner "$chain" 20
ports_free 18124 18125
ckb_dev_run "$ckb" "$chain" "$out/node.log"
ckb_dev_mine "$ckb" "$chain" "$out/miner.log"
ckb_mine_to 18124 "$blocks"
kill "$miner"
wait "$miner" 2>/dev/null || true
kill "$node"
wait "$node" 2>/dev/null || true
"$ckb" export -C "$chain" --target "$out/export" >/dev/null 2>&1
exported=$(find "$out/export" -maxdepth 1 -name '*.json*' | sort | head -1)
[ -n "$exported" ] || die 1 "ckb export wrote nothing to $out/export"
# One JSON block per line; genesis (number 0) is not imported again.
imported=$(jq -r '.header.number' "$exported" | grep -vc '^0x0$' || true)
log "export holds $imported blocks after genesis"

real=$(readlink -f "$ckb")
"$tool" rocksdb --binary "$real" --json --interval 3600 >"$out/import.jsonl" 2>"$out/import.err" &
tp=$!
kill_at_exit "$tp" INT
wait_for attached "$out/import.err" "$tp"
# A second capture of the iterator classes through the C functions
# themselves (single-stepped, opted in): the ground truth for the default
# capture's stand-ins (rocksdb::DBIter / BaseDeltaIterator methods).
"$tool" rocksdb --binary "$real" --json --interval 3600 --ops ITER_SEEK,ITER_NEXT --causes none >"$out/iter.jsonl" 2>"$out/iter.err" &
tp2=$!
kill_at_exit "$tp2" INT
wait_for attached "$out/iter.err" "$tp2"
ckb_dev_init "$ckb" "$out/imp" 18224 18225
cp "$chain/specs/dev.toml" "$out/imp/specs/dev.toml"
"$ckb" import -C "$out/imp" "$exported" >"$out/import.log" 2>&1
kill -INT "$tp" "$tp2"
wait "$tp" || true
wait "$tp2" || true

final=$(tail -1 "$out/import.jsonl")
echo "$final" | jq -r '.by_cf[] | "\(.db)\t\(.cf)\t\(.op)\t\(.count)\t\(.avg_us)"' | column -t -s $'\t' | tee "$out/by_cf.txt"
db=$(readlink -f "$out/imp/data/db")
count() { echo "$final" | jq --arg db "$db" --arg cf "$1" --arg op "$2" '[.by_cf[] | select(.db == $db and .cf == $cf and .op == $op) | .count] | add // 0'; }
bad=0
check() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $1: $2"
	else
		echo "FAIL $1: $2, the schema predicts $3"
		bad=$((bad + 1))
	fi
}
want=$((imported + 1))
check "PUT on COLUMN_BLOCK_HEADER in $db" "$(count COLUMN_BLOCK_HEADER PUT)" "$want"
check "PUT on COLUMN_NUMBER_HASH in $db" "$(count COLUMN_NUMBER_HASH PUT)" "$want"
unresolved=$(echo "$final" | jq '[.by_cf[] | select((.db | startswith("db@")) or (.cf | startswith("cf@")))] | length')
check "rows with unresolved handles" "$unresolved" 0
numeric=$(echo "$final" | jq --arg db "$db" '[.by_cf[] | select(.db == $db and (.cf | test("^[0-9]+$")))] | length')
check "chain families without their schema names" "$numeric" 0
# Iterators and WRITE bytes in the default view (issue 18).
iter=$(tail -1 "$out/iter.jsonl")
for op in ITER_SEEK ITER_NEXT; do
	got=$(echo "$final" | jq --arg op "$op" '.operations[$op].count // 0')
	want=$(echo "$iter" | jq --arg op "$op" '.operations[$op].count // 0')
	check "$op by default (stand-ins) vs the C functions opted in" "$got" "$want"
done
[ "$(echo "$final" | jq '.operations.ITER_NEXT.count // 0')" -gt 0 ] || { echo "FAIL no ITER_NEXT at all"; bad=$((bad + 1)); }
echo "$final" | jq -c '{operations: (.operations | map_values({count, bytes, avg_us, p99_us})), overhead}'
grep -h "single-stepped\|left out" "$out/import.err" || true

live_blocks=${LIVE_BLOCKS:-100}
log "WRITE bytes on a live node with the Indexer module: $live_blocks blocks"
live=$out/live
ckb_dev_init "$ckb" "$live" 18134 18135
ckb_dev_miner "$live" 20
sed -i 's/^modules = \["Net", /modules = ["Indexer", "Net", /' "$live/ckb.toml"
grep -q '^modules = \["Indexer"' "$live/ckb.toml" || die 1 "ckb.toml has no modules line to add Indexer to"
ports_free 18134 18135
"$tool" rocksdb --binary "$real" --json --interval 3600 --causes none >"$out/live.jsonl" 2>"$out/live.err" &
tp=$!
kill_at_exit "$tp" INT
wait_for attached "$out/live.err" "$tp"
ckb_dev_run "$ckb" "$live" "$out/live-node.log"
at_exit "kill -CONT $node 2>/dev/null"
ckb_dev_mine "$ckb" "$live" "$out/live-miner.log"
ckb_mine_to 18134 "$live_blocks" 2
kill "$miner"
wait "$miner" 2>/dev/null || true
tip=$(ckb_tip 18134)
indexer_tip() { echo $(($(ckb_rpc 18134 get_indexer_tip | jq -r '.result.block_number // "0x0"'))); }
deadline=$((SECONDS + 60))
until [ "$(indexer_tip)" -ge "$tip" ]; do
	[ $SECONDS -lt $deadline ] || die 1 "the indexer stayed at $(indexer_tip) of $tip for 60 s"
	sleep 1
done
sleep 2 # the indexer's last batch is written before its tip is served
kill -STOP "$node"
kill -INT "$tp"
wait "$tp" || true
idx=$(dirname "$(find "$live/data/indexer" -name CURRENT -not -path '*secondary*' | head -1)")
[ -d "$idx" ] || die 1 "no indexer database under $live/data/indexer"
wal=$(scripts/rocksdb-wal.py "$idx") || die 1 "reading the indexer's WAL failed"
kill -CONT "$node"
kill "$node"
wait "$node" 2>/dev/null || true
livefinal=$(tail -1 "$out/live.jsonl")
idx=$(readlink -f "$idx")
wsum() { echo "$livefinal" | jq --arg db "$idx" --arg k "$1" '[.by_cf[] | select(.db == $db and .op == "WRITE") | .[$k] // 0] | add // 0'; }
echo "indexer database $idx: WAL $wal; tip $tip"
check "WRITE calls on the indexer database vs its WAL batches" "$(wsum count)" "$(echo "$wal" | jq .batches)"
check "WRITE bytes on the indexer database vs its WAL batch bytes" "$(wsum bytes)" "$(echo "$wal" | jq .bytes)"
echo "$livefinal" | jq -c '.operations.WRITE | {count, bytes, avg_us, p99_us}'
[ "$bad" = 0 ] || exit 1
