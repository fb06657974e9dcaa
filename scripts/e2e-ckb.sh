#!/usr/bin/env bash
# End to end against a real CKB node (not part of CI: building CKB takes ~20 min).
#
#   scripts/e2e-ckb.sh [BLOCKS]        (default 3000; needs root)
#
# 1. Uses the CKB binary CKB_BIN, or `ckb` on PATH (build one with
#    `cargo install ckb --locked --version 0.210.0 --root DIR`, ~30 min).
# 2. Makes a dev chain on 127.0.0.1 (Dummy miner, short delay) until it has
#    BLOCKS blocks, and exports it.
# 3. Live: `ckb-libbpf rocksdb` on the running node for CAPTURE_SECS (default
#    60), sampling the tool's RSS and CPU.
# 4. Exact: `ckb import` of the export while ckb-libbpf (default options)
#    and an equivalent bpftrace script both trace the CKB binary; per-function
#    counts must agree, and per operation class, where the iterator classes
#    are counted by default at C++ stand-ins and by bpftrace at the C
#    functions (exit 1 if not). The import's cost: `scripts/bench.sh ckb` on
#    this export.
# Results go to stdout and $OUT (default /tmp/ckb-libbpf-e2e). EXACT_ONLY=1
# keeps $OUT's chain and export and runs step 4 alone.
cd "$(dirname "$0")/.."
. scripts/lib.sh
blocks=${1:-3000}
capture=${CAPTURE_SECS:-60}
out=${OUT:-/tmp/ckb-libbpf-e2e}
tool=$TOOL
[ -x "$tool" ] || make build >/dev/null
ckb=$(find_ckb) || exit 2
need_root "e2e-ckb loads BPF programs"
need_cmds bpftrace curl jq
chain=$out/chain
log() { echo "== $*" >&2; }

if [ -z "${EXACT_ONLY:-}" ]; then
	rm -rf "$out"
	mkdir -p "$out"
	log "dev chain in $chain"
	ckb_dev_init "$ckb" "$chain" 18114 18115
	# Notify mode: the miner hears of each template at once (polling makes ~2
	# blocks/s; a long chain for `bench.sh ckb` needs more).
	ckb_dev_miner "$chain" 20 18116
	ports_free 18114 18115 18116
	ckb_dev_run "$ckb" "$chain" "$out/node.log"
	ckb_dev_mine "$ckb" "$chain" "$out/miner.log"
	ckb_mine_to 18114 "$blocks"

	log "live capture: ckb-libbpf rocksdb ${capture}s on pid $node (node + miner running)"
	"$tool" rocksdb "${capture}s" --pid "$node" --json --by-function >"$out/live.jsonl" 2>"$out/live.err" &
	tp=$!
	kill_at_exit "$tp" INT
	peak=0 last=0 rss_first=""
	cpu0=$(awk '{print $14 + $15}' "/proc/$tp/stat" 2>/dev/null || echo 0)
	cpu1=$cpu0
	t0=$(date +%s.%N)
	while kill -0 "$tp" 2>/dev/null; do
		r=$(awk '/VmRSS/ {print $2}' "/proc/$tp/status" 2>/dev/null || echo 0)
		if [ -n "$r" ] && [ "$r" -gt 0 ]; then
			[ -n "$rss_first" ] || rss_first=$r
			[ "$r" -le "$peak" ] || peak=$r
			last=$r
		fi
		cpu1=$(awk '{print $14 + $15}' "/proc/$tp/stat" 2>/dev/null || echo "$cpu1")
		sleep 1
	done
	t1=$(date +%s.%N)
	wait "$tp" || true
	hz=$(getconf CLK_TCK)
	echo "tool: RSS first ${rss_first} KiB, last ${last} KiB, peak ${peak} KiB; CPU $(awk -v a="$cpu0" -v b="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {printf "%.2f%% of one core", (b-a)/hz/(t1-t0)*100}')" | tee "$out/live-resources.txt"
	tail -1 "$out/live.jsonl" | jq -c '.operations | to_entries[] | {op: .key, count: .value.count, avg_us: .value.avg_us, p50_us: .value.p50_us, p99_us: .value.p99_us, max_us: .value.max_us, hit_ratio: .value.hit_ratio}' | tee "$out/live-ops.txt"

	log "export"
	kill "$miner"
	wait "$miner" 2>/dev/null || true
	kill "$node"
	wait "$node" 2>/dev/null || true
	"$ckb" export -C "$chain" --target "$out/export" >/dev/null 2>&1
else
	[ -f "$chain/specs/dev.toml" ] || die 1 "EXACT_ONLY: no chain in $chain (run without it first)"
fi
exported=$(find "$out/export" -maxdepth 1 -name '*.json*' | sort | head -1)
[ -n "$exported" ] || die 1 "ckb export wrote nothing to $out/export"

real=$(readlink -f "$ckb")
# bpftrace traces the C functions: those ckb-libbpf attaches by default
# (emulated) and the single-stepped iterator ones it counts at their C++
# stand-ins (bpftrace pays ~10 us a call for those; this run is not timed).
declare -A opof=() costof=()
while read -r f op cost; do
	opof[$f]=$op
	costof[$f]=$cost
done < <("$tool" symbols "$real" --json --tier 1 |
	jq -r '.tier1[] | select(.present and (.name | startswith("rocksdb_")) and (.probe_cost == "emulated" or (.op | test("^ITER_(SEEK|NEXT)$")))) | "\(.name) \(.op) \(.probe_cost)"')
funcs=("${!opof[@]}")
probes=""
for f in "${funcs[@]}"; do probes+="uprobe:$real:$f,"; done

log "exact comparison over one import: ckb-libbpf vs bpftrace on ${#funcs[@]} functions"
bpftrace -e "${probes%,} { @[probe] = count(); }" >"$out/bpftrace.txt" 2>&1 &
bt=$!
kill_at_exit "$bt" INT
wait_for Attaching "$out/bpftrace.txt" "$bt"
sleep 1 # "Attaching N probes..." comes before the last attach
"$tool" rocksdb --binary "$real" --json --by-function --interval 3600 >"$out/import.jsonl" 2>"$out/import.err" &
tp=$!
kill_at_exit "$tp" INT
wait_for attached "$out/import.err" "$tp"
# The exporting chain's spec: same genesis, so every block imports.
ckb_dev_init "$ckb" "$out/imp" 18214 18215
cp "$chain/specs/dev.toml" "$out/imp/specs/dev.toml"
"$ckb" import -C "$out/imp" "$exported" >/dev/null 2>&1
kill -INT "$tp"
wait "$tp" || true
kill -INT "$bt"
wait "$bt" || true
tail -1 "$out/import.jsonl" | jq -r '.functions | to_entries[] | select(.value.count > 0) | "\(.key) \(.value.count)"' | sort >"$out/ours.txt"
sed -n 's/^@\[uprobe:.*:\(rocksdb_[a-z_]*\)\]: \([0-9]*\)$/\1 \2/p' "$out/bpftrace.txt" | sort >"$out/theirs.txt"
# Per C function ckb-libbpf attached (its rows named rocksdb_*), then per
# operation class: bpftrace's C functions summed by class against the
# class totals (the iterator classes: stand-ins against C functions).
for f in "${funcs[@]}"; do echo "$f ${opof[$f]}"; done | sort >"$out/ops.txt"
{
	for f in "${funcs[@]}"; do [ "${costof[$f]}" = emulated ] && echo "$f"; done | sort | join - "$out/theirs.txt" |
		join "$out/ours.txt" - -a2 -e0 -o 0,1.2,2.2 | awk '{print "function", $0}'
	join "$out/theirs.txt" "$out/ops.txt" | awk '{s[$3] += $2} END {for (o in s) print o, s[o]}' | sort >"$out/theirs-ops.txt"
	tail -1 "$out/import.jsonl" | jq -r '.operations | to_entries[] | "\(.key) \(.value.count)"' | sort |
		join - "$out/theirs-ops.txt" -a2 -e0 -o 0,1.2,2.2 | awk '{print "class", $0}'
} | awk '{d = ($4 ? ($3-$4)/$4*100 : 0); printf "%-8s %-42s ours %9d  bpftrace %9d  diff %+.3f%%\n", $1, $2, $3, $4, d; if ($3 != $4) bad++}
	END {if (bad) {print bad " rows differ"; exit 1}}' | tee "$out/compare.txt"
log "import cost (bare / floor / ckb-libbpf): E2E_DIR=$out scripts/bench.sh ckb uses this export"
