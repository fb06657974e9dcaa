#!/usr/bin/env bash
# `ckb-libbpf net` against two CKB dev nodes peered over 127.0.0.1 (root).
#
#   scripts/e2e-ckb-net.sh [CAPTURE_SECS]   (default 40)
#
# Node A runs with a miner; the tool traces A; node B (bootnode: A) starts
# after the attach, is stopped halfway and started again, so A's log shows
# accept / close / accept. CKB binary: CKB_BIN, or `ckb` on PATH. Output in
# $OUT (default /tmp/ckb-libbpf-e2e-net).
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-40}
out=${OUT:-/tmp/ckb-libbpf-e2e-net}
ckb=$(find_ckb) || exit 2
[ -x "$TOOL" ] || die 1 "build first: make build"
need_root "e2e-ckb-net loads BPF programs"
need_cmds curl jq
ports_free 18214 18215 18314 18315
rm -rf "$out"
mkdir -p "$out"
ckb_dev_init "$ckb" "$out/a" 18214 18215
ckb_dev_init "$ckb" "$out/b" 18314 18315
cp "$out/a/specs/dev.toml" "$out/b/specs/dev.toml" # one genesis, one network id
ckb_dev_miner "$out/a" 500

"$ckb" run -C "$out/a" >"$out/a.log" 2>&1 &
a=$!
kill_at_exit "$a"
wait_port 18214 "$a"
id=$(ckb_rpc 18214 local_node_info | jq -r .result.node_id)
case $id in "" | null) die 1 "node A did not say its node id" ;; esac
sed -i "s#^bootnodes = .*#bootnodes = [\"/ip4/127.0.0.1/tcp/18215/p2p/$id\"]#" "$out/b/ckb.toml"
"$ckb" miner -C "$out/a" >"$out/miner.log" 2>&1 &
kill_at_exit $!

"$TOOL" net "${secs}s" --pid "$a" --interval 5 >"$out/net.txt" 2>"$out/net.err" &
t=$!
kill_at_exit "$t" INT
wait_for attached "$out/net.err" "$t"
"$ckb" run -C "$out/b" >"$out/b1.log" 2>&1 &
b=$!
sleep $((secs / 2))
kill "$b"
wait "$b" 2>/dev/null || true
sleep 3
"$ckb" run -C "$out/b" >"$out/b2.log" 2>&1 &
kill_at_exit $!
wait "$t" || true
echo "tip A: $(ckb_tip 18214), tip B: $(ckb_tip 18314)"
cat "$out/net.err"
grep -E "CONNECT|ACCEPT|CLOSE" "$out/net.txt" || true
sed -n '/=== net summary/,$p' "$out/net.txt"
