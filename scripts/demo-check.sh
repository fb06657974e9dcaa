#!/usr/bin/env bash
# Will ckb-libbpf work here, and what does a binary offer? (root)
#
#   scripts/demo-check.sh [BINARY]
#
# Runs `ckb-libbpf check`, `ckb-libbpf symbols` and `ckb-libbpf check --pid`
# as a reviewer would, shows their reports, then checks them against what
# is known independently of the tool:
#   - check: the environment passes (no FAIL line, "ok": true, exit 0) and
#     every layer has a backend;
#   - symbols: every RocksDB C function the bundled workload calls (its own
#     count, from a run) is found in its binary, with an offset and a probe
#     cost; with BINARY (e.g. a CKB binary) also in that one;
#   - check --pid: the live test on the running workload sees RocksDB calls
#     of functions the workload makes, and detaches.
# One line per check, expected then seen; exit 0 only when all agree.
cd "$(dirname "$0")/.."
. scripts/lib.sh
binary=${1:-}
need_built
need_cmds jq
need_root "demo-check loads BPF programs"
[ -z "$binary" ] || [ -f "$binary" ] || die 2 "no file $binary"
dir=$(mktemp -d /tmp/ckb-libbpf-check.XXXXXX)
at_exit "rm -rf '$dir'"

fails=0
check() { # WHAT EXPECTED SEEN
	if [ "$2" = "$3" ]; then
		printf 'ok    %-56s expected %-22s saw %s\n' "$1" "$2" "$3"
	else
		printf 'FAIL  %-56s expected %-22s saw %s\n' "$1" "$2" "$3"
		fails=$((fails + 1))
	fi
}
show() { # the command, then its report as a user sees it
	log "+ $*"
	"$@" || true
	echo
}

# Ground truth: which RocksDB C functions the workload calls (one round).
"$WORKLOAD" --db "$dir/db1" --rounds 1 >"$dir/truth.json"
mapfile -t called < <(jq -r '.calls | keys[]' "$dir/truth.json")
declare -A is_called=()
for f in "${called[@]}"; do is_called[$f]=1; done

# 1. The environment.
show "$TOOL" check
code=0
"$TOOL" check --json >"$dir/check.json" || code=$?
check "check: exit code" 0 "$code"
check "check: \"ok\"" true "$(jq .ok "$dir/check.json")"
check "check: FAIL lines" none "$(jq -r '[.checks[] | select(.status == "fail") | .name] | if length == 0 then "none" else join(", ") end' "$dir/check.json")"
for layer in rocksdb net syscall; do
	b=$(jq -r --arg l "$layer" '.backends[$l] // "none"' "$dir/check.json")
	check "check: $layer layer backend ($b)" chosen "$(if [ "$b" = none ]; then echo none; else echo chosen; fi)"
done

# 2. The symbols of the workload's binary (and of BINARY).
symbols_of() { # FILE LABEL
	local f=$1 label=$2 fn
	show "$TOOL" symbols "$f"
	"$TOOL" symbols "$f" --json --tier 1 >"$dir/sym.json"
	check "symbols $label: RocksDB link mode" "$(if [ "$label" = workload ]; then echo static; else jq -r .link_mode "$dir/sym.json"; fi)" "$(jq -r .link_mode "$dir/sym.json")"
	for fn in "${called[@]}"; do
		check "symbols $label: $fn" "present, offset, cost" \
			"$(jq -r --arg f "$fn" '.tier1[] | select(.name == $f) |
				if .present and (.offset | type) == "number" and (.probe_cost == "emulated" or .probe_cost == "single-step")
				then "present, offset, cost" else "present \(.present) offset \(.offset) cost \(.probe_cost)" end' "$dir/sym.json")"
	done
}
symbols_of "$WORKLOAD" workload
[ -z "$binary" ] || symbols_of "$binary" "$(basename "$binary")"

# 3. The live test: real probes on a running workload for 3 s.
"$WORKLOAD" --db "$dir/db2" --secs 0 --pause-ms 20 >/dev/null &
wl=$!
kill_at_exit "$wl"
sleep 1 # past opening the database
show "$TOOL" check --pid "$wl"
code=0
"$TOOL" check --pid "$wl" --json >"$dir/live.json" || code=$?
check "check --pid: exit code" 0 "$code"
live=$(jq -r '.checks[] | select(.name == "live uprobe") | "\(.status)|\(.detail)"' "$dir/live.json")
check "check --pid: live uprobe status" ok "${live%%|*}"
calls=$(sed -n 's/^\([0-9]*\) RocksDB calls.*/\1/p' <<<"${live#*|}")
check "check --pid: RocksDB calls seen in 3 s (${calls:-none})" "> 0" "$(if [ "${calls:-0}" -gt 0 ]; then echo "> 0"; else echo "${calls:-none}"; fi)"
# The functions it names ("get_pinned_cf 120, ...") are ones the workload calls.
stray=none
while read -r f; do
	[ -n "${is_called[rocksdb_$f]:-}" ] || stray=$f
done < <(sed 's/^[^:]*: //; s/, /\n/g' <<<"${live#*|}" | awk '{print $1}')
check "check --pid: functions named are the workload's" none "$stray"
check "check --pid: detach" ok "$(jq -r '.checks[] | select(.name == "detach") | .status' "$dir/live.json")"

if [ "$fails" -gt 0 ]; then
	echo "FAIL: $fails of the checks above disagree"
	exit 1
fi
echo "PASS: the environment, the symbols and the live test agree with what was expected"
