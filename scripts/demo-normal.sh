#!/usr/bin/env bash
# The normal state, as a JSON snapshot checked against ground truth (root).
#
#   scripts/demo-normal.sh [ROUNDS]      (default 20; DEMO_OUT: target/demo)
#
# The bundled workload runs ROUNDS scripted rounds of RocksDB calls whose
# number, bytes and misses it knows exactly and prints as one JSON line.
# `ckb-libbpf rocksdb --pid PID --json --by-function --ops all --value-sizes` traces it
# (every function, the single-stepped ones too, so every count is exact);
# its JSON lines are the snapshot, kept in DEMO_OUT/normal.jsonl beside the
# workload's own line (DEMO_OUT/workload.json). Every figure is decoded
# with jq and compared with the workload's: one line per check, expected
# then seen; exit 0 only when all agree, 1 otherwise.
cd "$(dirname "$0")/.."
. scripts/lib.sh
rounds=${1:-20}
out=${DEMO_OUT:-$REPO/target/demo}
need_built
need_cmds jq
need_root "demo-normal loads BPF programs"
mkdir -p "$out"
dir=$(mktemp -d /tmp/ckb-libbpf-normal.XXXXXX)
at_exit "rm -rf '$dir'"

# A workload that waits on stdin: the tool attaches before the first call
# and reads after the last, so nothing the workload did is outside the capture.
mkfifo "$dir/in"
"$WORKLOAD" --db "$dir/db" --rounds "$rounds" --wait-stdin <"$dir/in" >"$dir/workload.out" &
wl=$!
kill_at_exit "$wl"
exec 3>"$dir/in"
wait_for READY "$dir/workload.out" "$wl"
log "+ $TOOL rocksdb --pid $wl --json --by-function --ops all --value-sizes --interval 0.5"
"$TOOL" rocksdb --pid "$wl" --json --by-function --ops all --value-sizes --interval 0.5 >"$out/normal.jsonl" 2>"$dir/tool.err" &
tool=$!
kill_at_exit "$tool" INT
wait_for "RocksDB functions" "$dir/tool.err" "$tool"
echo go >&3
until grep -q elapsed_us "$dir/workload.out"; do
	kill -0 "$wl" 2>/dev/null || die 1 "the workload died: $(cat "$dir/workload.out")"
	sleep 0.05
done
grep elapsed_us "$dir/workload.out" >"$out/workload.json"
sleep 1 # one more interval, so the interval lines hold the calls too
kill -INT "$tool"
code=0
wait "$tool" || code=$?
echo "done" >&3
exec 3>&-
wait "$wl" || true

truth=$out/workload.json
snap=$out/normal.jsonl
fails=0
# check WHAT EXPECTED SEEN
check() {
	if [ "$2" = "$3" ]; then
		printf 'ok    %-46s expected %-24s saw %s\n' "$1" "$2" "$3"
	else
		printf 'FAIL  %-46s expected %-24s saw %s\n' "$1" "$2" "$3"
		fails=$((fails + 1))
	fi
}

echo "snapshot: $snap ($(wc -l <"$snap") JSON lines); ground truth: $truth"
check "tool exit code on SIGINT" 0 "$code"
check "every line is a JSON report" "$(wc -l <"$snap")" "$(jq -c 'select(.type == "report")' "$snap" 2>/dev/null | wc -l)"
check "final reports (the last line only)" "1 true" "$(jq -s '[.[] | select(.final == true)] | length' "$snap") $(tail -1 "$snap" | jq .final)"
fin=$(tail -1 "$snap")
check "pid" "$(jq .pid "$truth")" "$(jq .pid <<<"$fin")"
check "lost events + uncounted calls" 0 "$(jq '.lost_events + .uncounted_calls' <<<"$fin")"

# Per function: every function the workload called, exactly; nothing else.
while read -r name n; do
	check "calls of $name" "$n" "$(jq --arg f "$name" '.functions[$f].count // "absent"' <<<"$fin")"
done < <(jq -r '.calls | to_entries[] | "\(.key) \(.value)"' "$truth")
check "functions seen that the workload never called" "none" \
	"$(jq -r --argjson t "$(jq .calls "$truth")" '[.functions | to_entries[] | select(.value.count > 0 and ($t[.key] == null)) | .key] | if length == 0 then "none" else join(",") end' <<<"$fin")"

# Per operation class: the RocksDB C functions of each class (written out
# here, independently of the tool's own table).
classes='{
	"GET": ["rocksdb_get", "rocksdb_get_cf", "rocksdb_get_pinned", "rocksdb_get_pinned_cf",
		"rocksdb_transaction_get_pinned_cf", "rocksdb_transaction_get_for_update_cf"],
	"PUT": ["rocksdb_put", "rocksdb_put_cf", "rocksdb_transaction_put_cf"],
	"DELETE": ["rocksdb_delete", "rocksdb_delete_cf", "rocksdb_transaction_delete_cf"],
	"WRITE": ["rocksdb_write"],
	"ITER_SEEK": ["rocksdb_iter_seek", "rocksdb_iter_seek_to_first"],
	"ITER_CREATE": ["rocksdb_create_iterator", "rocksdb_create_iterator_cf"],
	"ITER_NEXT": ["rocksdb_iter_next"],
	"TXN_BEGIN": ["rocksdb_optimistictransaction_begin"],
	"TXN_COMMIT": ["rocksdb_transaction_commit"]}'
while read -r class n; do
	check "$class count" "$n" "$(jq --arg c "$class" '.operations[$c].count // "absent"' <<<"$fin")"
done < <(jq -r --argjson cl "$classes" '.calls as $c | $cl | to_entries[] | "\(.key) \([.value[] | $c[.] // 0] | add)"' "$truth")

check "PUT bytes (key + value)" "$(jq .put_bytes "$truth")" "$(jq '.operations.PUT.bytes // "absent"' <<<"$fin")"
check "GET bytes (values found)" "$(jq .get_bytes "$truth")" "$(jq '.operations.GET.bytes // "absent"' <<<"$fin")"
check "GET misses" "$(jq .get_misses "$truth")" "$(jq '.operations.GET.misses // "absent"' <<<"$fin")"
check "GET hit ratio (x 1e6)" "$(jq '(.calls as $c | ["rocksdb_get", "rocksdb_get_cf", "rocksdb_get_pinned", "rocksdb_get_pinned_cf", "rocksdb_transaction_get_pinned_cf", "rocksdb_transaction_get_for_update_cf"] | map($c[.] // 0) | add) as $g | ($g - .get_misses) / $g * 1e6 | round' "$truth")" \
	"$(jq '.operations.GET.hit_ratio * 1e6 | round' <<<"$fin")"
check "GET p50 <= p99 <= max, all > 0" true "$(jq '.operations.GET | 0 < .p50_us and .p50_us <= .p99_us and .p99_us <= .max_us' <<<"$fin")"
check "interval PUT counts add up to the final" "$(jq '.operations.PUT.count' <<<"$fin")" \
	"$(jq -s '[.[] | select(.final == false) | .operations.PUT.count // 0] | add' "$snap")"

if [ "$fails" -gt 0 ]; then
	echo "FAIL: $fails of the checks above disagree"
	exit 1
fi
echo "PASS: the snapshot agrees with the workload's ground truth"
