#!/usr/bin/env bash
# Issue 13: how many alerts does a normal run raise? (Should be none.)
#
#   scripts/normal-alerts.sh [SECS]          (default 600; needs root)
#
# 1. The bundled workload's normal rounds (no burst), traced by
#    `ckb-libbpf rocksdb --pid PID --json` with its default options
#    (baseline 300 s, then the detector is live) for SECS seconds.
# 2. With a CKB binary (CKB_BIN or `ckb` on PATH): a quiet dev chain (node
#    + Dummy miner, 1 s a block) traced the same way for SECS seconds.
# Both run at once. Prints the alerts each raised (onsets) with their
# lines, and exits 0 only if there were none. Not part of `make test`.
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-600}
need_built
need_cmds jq
need_root "normal-alerts loads BPF programs"
dir=$(mktemp -d /tmp/ckb-libbpf-normal-alerts.XXXXXX)
at_exit "rm -rf '$dir'"

"$WORKLOAD" --db "$dir/db" --secs 0 --pause-ms 40 >/dev/null 2>&1 &
wl=$!
kill_at_exit "$wl"
"$TOOL" rocksdb --pid "$wl" --json --interval 10 "${secs}s" >"$dir/workload.jsonl" 2>"$dir/workload.err" &
t1=$!
kill_at_exit "$t1" INT

t2=""
if ckb=$(find_ckb 2>/dev/null); then
	cp "$ckb" "$dir/ckb"
	ckb_dev_init "$dir/ckb" "$dir/chain" 18424 18425
	ckb_dev_miner "$dir/chain" 1000 18426
	ports_free 18424 18425 18426
	ckb_dev_run "$dir/ckb" "$dir/chain" "$dir/node.log"
	ckb_dev_mine "$dir/ckb" "$dir/chain" "$dir/miner.log"
	"$TOOL" rocksdb --pid "$node" --json --interval 10 "${secs}s" >"$dir/ckb.jsonl" 2>"$dir/ckb.err" &
	t2=$!
	kill_at_exit "$t2" INT
else
	log "no CKB binary (CKB_BIN): the dev chain part is NOT RUN"
fi
log "tracing for $secs s (baseline: the first 300 s)"
wait "$t1"
[ -n "$t2" ] && wait "$t2"

bad=0
for f in workload ckb; do
	[ -f "$dir/$f.jsonl" ] || continue
	n=$(jq -s '[.[] | select(.type == "report") | (.anomalies // [])[] | select(.onset)] | length' "$dir/$f.jsonl")
	calls=$(tail -1 "$dir/$f.jsonl" | jq '[.operations[].count] | add')
	echo "$f: $n alerts in $secs s ($calls RocksDB calls traced)"
	jq -c 'select(.type == "report") | (.anomalies // [])[] | select(.onset)' "$dir/$f.jsonl"
	[ "$n" = 0 ] || bad=1
done
exit "$bad"
