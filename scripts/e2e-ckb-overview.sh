#!/usr/bin/env bash
# `ckb-libbpf overview` against a real CKB dev node, in a real terminal
# (tmux; root; not CI).
#
#   scripts/e2e-ckb-overview.sh [BLOCKS]     (default 30)
#
# Node A (RPC modules + Terminal, for get_overview) mines with the Dummy
# miner; node B peers with it, so A has one inbound peer. The tool runs
# `overview --pid A --causes all --rpc A` in a 200x60 tmux pane; the script
# captures the pane ($OUT/pane-*.txt; each tab at 200x60 and 120x36 at the
# end) and checks
# (exit 1 if any check fails):
#   1. the RocksDB tab shows live counts: the GET and PUT totals grow while
#      the miner runs, and the split names CKB's column families in A's
#      chain database (COLUMN_*, no unresolved handle); the title line
#      has the node's CPU (from /proc: the RPC's is ~0 on 0.210);
#   2. with the miner stopped (a still tip), the header's tip equals
#      get_tip_header's number, its peers get_peers' count (in/out as
#      is_outbound says), its tx pool tx_pool_info's pending/proposed, its
#      version local_node_info's;
#   3. q: exit 0, the shell's stty settings as before, alternate screen
#      left, cursor shown.
# CKB binary: CKB_BIN, or `ckb` on PATH. Panes and logs in $OUT (default
# /tmp/ckb-libbpf-e2e-overview).
#
# Result here (CKB 0.210.0, Linux 6.18, 2 cores, 2026-11-29, 52 s): all checks
# ok. RocksDB tab GET total 158 -> 366 and PUT 67 -> 152 over 5 s of mining;
# 8 CKB families named in a/data/db, none unresolved; header "tip #31 · peers
# 1 (0 out/1 in) · tx pool 0 pending/0 proposed · RSS 139.3 MiB · v0.210.0",
# each equal to the node's RPC; title "node CPU 2.0%" against 2.2 % from
# /proc over the 5 s; q: exit 0, stty identical, alternate screen off, cursor
# on. The node's get_overview answers in both encodings the client reads
# (Uint64 as "0x.." strings, SysInfo as numbers); its sys.cpu_usage was
# 6.9e-05 % while the node used ~1 % of a core, hence the /proc figure.
cd "$(dirname "$0")/.."
. scripts/lib.sh
blocks=${1:-30}
out=${OUT:-/tmp/ckb-libbpf-e2e-overview}
ckb=$(find_ckb) || exit 2
[ -x "$TOOL" ] || die 1 "build first: make build"
need_root "e2e-ckb-overview loads BPF programs"
need_cmds curl jq tmux
ports_free 18414 18415 18514 18515
rm -rf "$out"
mkdir -p "$out"
ckb_dev_init "$ckb" "$out/a" 18414 18415
ckb_dev_init "$ckb" "$out/b" 18514 18515
cp "$out/a/specs/dev.toml" "$out/b/specs/dev.toml" # one genesis, one network id
ckb_dev_miner "$out/a" 1000
# get_overview is in the Terminal module, which the template leaves out.
grep -q '^modules = \[' "$out/a/ckb.toml" || die 1 "ckb.toml has no rpc modules line (template changed?)"
grep -q '^modules = \[.*"Terminal"' "$out/a/ckb.toml" ||
	sed -i 's/^modules = \[/modules = ["Terminal", /' "$out/a/ckb.toml"

"$ckb" run -C "$out/a" >"$out/a.log" 2>&1 &
a=$!
kill_at_exit "$a"
wait_port 18414 "$a"
log "${SECONDS}s node A up (pid $a)"
id=$(ckb_rpc 18414 local_node_info | jq -r .result.node_id)
case $id in "" | null) die 1 "node A did not say its node id" ;; esac
sed -i "s#^bootnodes = .*#bootnodes = [\"/ip4/127.0.0.1/tcp/18415/p2p/$id\"]#" "$out/b/ckb.toml"
"$ckb" run -C "$out/b" >"$out/b.log" 2>&1 &
kill_at_exit $!
"$ckb" miner -C "$out/a" >"$out/miner.log" 2>&1 &
miner=$!
kill_at_exit "$miner"

session=ckb-libbpf-e2e-$$
tmux new-session -d -s "$session" -x 200 -y 60 "bash --norc --noprofile"
at_exit "tmux kill-session -t $session 2>/dev/null"
pane() { tmux capture-pane -p -t "$session"; }
# wait_pane WHAT PATTERN [SECS]: until the pane matches the extended regex.
wait_pane() {
	local deadline=$((SECONDS + ${3:-60}))
	until pane | grep -Eq -- "$2"; do
		[ "$SECONDS" -lt "$deadline" ] || {
			pane >"$out/pane-failed.txt"
			die 1 "no $1 on the screen after ${3:-60} s ($out/pane-failed.txt)"
		}
		sleep 0.5
	done
}
bad=0
check() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $1: $2"
	else
		echo "FAIL $1: screen $2, node $3"
		bad=$((bad + 1))
	fi
}
tmux send-keys -t "$session" "stty -g > $out/stty.before; $TOOL overview --pid $a --causes all --rpc http://127.0.0.1:18414 2>$out/tool.err; echo \$? > $out/rc; stty -g > $out/stty.after" Enter
wait_pane "first interval" "alerts: learning"
wait_pane "RPC header" "tip #"
log "${SECONDS}s overview up"

# 1. Live counts on the RocksDB tab while blocks come.
tmux send-keys -t "$session" 2
wait_pane "RocksDB tab" "Time by database and column family"
# total OP: the TOTAL column of an operation's row.
total() { pane | awk -v op="$1" '{gsub(/│/, " ")} $1 == op {gsub(/,/, "", $NF); print $NF; exit}'; }
sleep 3
pane >"$out/pane-rocksdb-1.txt"
get1=$(total GET) put1=$(total PUT)
ticks0=$(awk '{print $14 + $15}' "/proc/$a/stat")
sleep 5
pane >"$out/pane-rocksdb-2.txt"
get2=$(total GET) put2=$(total PUT)
# The node's CPU on the title line is the tool's /proc/PID/stat reading (the
# RPC's sys.cpu_usage is ~0 on 0.210 whatever the load): shown, and the
# node's own average over these 5 s printed beside it for comparison.
title_cpu=$(head -1 "$out/pane-rocksdb-2.txt" | sed -n 's/.*node CPU \([0-9.]*\)%.*/\1/p')
echo "title: node CPU ${title_cpu:-?}% (last interval); /proc over the 5 s: $(awk -v t0="$ticks0" -v hz="$(getconf CLK_TCK)" '{printf "%.1f%%", ($14 + $15 - t0) / hz / 5 * 100}' "/proc/$a/stat")"
[ -n "$title_cpu" ] || { echo "FAIL no node CPU on the title line"; bad=$((bad + 1)); }
echo "RocksDB tab: GET total $get1 -> $get2, PUT total $put1 -> $put2 over 5 s"
if [ "${get2:-0}" -le "${get1:-0}" ] || [ "${put2:-0}" -le "${put1:-0}" ]; then
	echo "FAIL the RocksDB totals do not grow while the node mines"
	bad=$((bad + 1))
fi
db=$(readlink -f "$out/a/data/db")
families=$(grep -F "$db" "$out/pane-rocksdb-2.txt" | grep -oE 'COLUMN_[A-Z_]+' | sort -u | tr '\n' ' ')
echo "families on screen in $db: $families"
[ -n "$families" ] || { echo "FAIL no CKB column family named in $db"; bad=$((bad + 1)); }
! grep -qE 'db@0x|cf@0x|unresolved' "$out/pane-rocksdb-2.txt" ||
	{ echo "FAIL unresolved handles on screen"; bad=$((bad + 1)); }

# 2. The header against the node's own RPC, with a still tip.
while [ "$(ckb_tip 18414)" -lt "$blocks" ]; do sleep 2; done
kill "$miner"
wait "$miner" 2>/dev/null || true
log "${SECONDS}s tip $(ckb_tip 18414), miner stopped"
sleep 2
tip=$(($(ckb_rpc 18414 get_tip_header | jq -r .result.number)))
# node_line: the header's line with the node's own view.
node_line() { pane | grep -m1 '^ node ' || true; }
screen_tip() { node_line | sed -n 's/.*tip #\([0-9,]*\).*/\1/p' | tr -d ,; }
# The tool asks every 3 s, and get_overview caches parts of its answer for
# up to 10 s: the still tip is on the screen within ~15 s.
deadline=$((SECONDS + 20))
while [ "$(screen_tip)" != "$tip" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
sleep 11 # every cached part refreshed at least once since the tip stood still
pane >"$out/pane-header.txt"
node_line=$(grep -m1 '^ node ' "$out/pane-header.txt" || true)
echo "header:$node_line"
screen_tip=$(echo "$node_line" | sed -n 's/.*tip #\([0-9,]*\).*/\1/p' | tr -d ,)
check "tip (get_tip_header)" "$screen_tip" "$tip"
peers=$(ckb_rpc 18414 get_peers | jq '.result | length')
out_peers=$(ckb_rpc 18414 get_peers | jq '[.result[] | select(.is_outbound)] | length')
screen_peers=$(echo "$node_line" | sed -n 's/.*peers \([0-9]*\) (\([0-9]*\) out\/\([0-9]*\) in).*/\1 \2 \3/p')
check "peers total/out/in (get_peers)" "$screen_peers" "$peers $out_peers $((peers - out_peers))"
pool=$(ckb_rpc 18414 tx_pool_info | jq -r '.result | "\(.pending) \(.proposed)"')
pool=$(for v in $pool; do printf '%d ' "$v"; done)
screen_pool=$(echo "$node_line" | sed -n 's/.*tx pool \([0-9]*\) pending\/\([0-9]*\) proposed.*/\1 \2 /p')
check "tx pool pending/proposed (tx_pool_info)" "$screen_pool" "$pool"
version=$(ckb_rpc 18414 local_node_info | jq -r .result.version | cut -d' ' -f1)
screen_version=$(echo "$node_line" | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+[^ ]*' | tail -1)
check "version (local_node_info)" "$screen_version" "v$version"

# Every tab as the operator sees it, in this pane and in a 120x36 terminal
# (the tool redraws on resize; README's transcript).
for size in 200x60 120x36; do
	tmux resize-window -t "$session" -x "${size%x*}" -y "${size#*x}"
	for k in 1 2 3 4; do
		tmux send-keys -t "$session" "$k"
		sleep 1.5
		pane >"$out/pane-$size-tab$k.txt"
	done
done

# 3. q: exit 0 and the terminal back.
tmux send-keys -t "$session" q
deadline=$((SECONDS + 30))
until [ -s "$out/stty.after" ]; do
	[ "$SECONDS" -lt "$deadline" ] || die 1 "the tool did not exit on q"
	sleep 0.2
done
log "${SECONDS}s q: the tool exited"
check "exit code on q" "$(cat "$out/rc")" 0
check "stty settings after exit" "$(cat "$out/stty.after")" "$(cat "$out/stty.before")"
check "alternate screen" "$(tmux display -p -t "$session" '#{alternate_on}')" 0
check "cursor shown" "$(tmux display -p -t "$session" '#{cursor_flag}')" 1
[ "$bad" = 0 ] || exit 1
echo "all checks ok"
