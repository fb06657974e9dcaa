#!/usr/bin/env bash
# `ckb-libbpf net` against two CKB dev nodes peered over 127.0.0.1 (root).
#
#   scripts/e2e-ckb-net.sh [CAPTURE_SECS]   (default 40)
#
# Node A runs with a miner; the tool traces A; node B (bootnode: A) starts
# after the attach, is stopped halfway and started again, so A's log shows
# accept / close / accept. Output in $OUT (default /tmp/ckb-libbpf-e2e-net).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-40}
out=${OUT:-/tmp/ckb-libbpf-e2e-net}
ckb=${CKB_BIN:-/root/ckb-build/inst/bin/ckb}
tool=$(pwd)/target/release/ckb-libbpf
rm -rf "$out"; mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ba=0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7
for n in a:18214:18215 b:18314:18315; do
	IFS=: read -r name rpc p2p <<<"$n"
	"$ckb" init -C "$out/$name" --chain dev --ba-arg $ba --rpc-port "$rpc" --p2p-port "$p2p" --force >/dev/null
	sed -i "s#/ip4/0.0.0.0/tcp/$p2p#/ip4/127.0.0.1/tcp/$p2p#; s#0.0.0.0:$rpc#127.0.0.1:$rpc#" "$out/$name/ckb.toml"
done
cp "$out/a/specs/dev.toml" "$out/b/specs/dev.toml" # one genesis, one network id
sed -i "s/^value = .*/value = 500/; s#127.0.0.1:8114#127.0.0.1:18214#" "$out/a/ckb-miner.toml"
rpc() { curl -s -X POST -H 'content-type: application/json' -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":[]}" "http://127.0.0.1:$1"; }

"$ckb" run -C "$out/a" > "$out/a.log" 2>&1 & a=$!; pids+=("$a")
until rpc 18214 local_node_info | jq -e .result.node_id >/dev/null 2>&1; do sleep 1; done
id=$(rpc 18214 local_node_info | jq -r .result.node_id)
sed -i "s#^bootnodes = .*#bootnodes = [\"/ip4/127.0.0.1/tcp/18215/p2p/$id\"]#" "$out/b/ckb.toml"
"$ckb" miner -C "$out/a" > "$out/miner.log" 2>&1 & m=$!; pids+=("$m")

"$tool" net "${secs}s" --pid "$a" --interval 5 > "$out/net.txt" 2> "$out/net.err" & t=$!
until grep -q "attached" "$out/net.err"; do sleep 0.2; done
"$ckb" run -C "$out/b" > "$out/b1.log" 2>&1 & b=$!
sleep $((secs / 2)); kill "$b"; wait "$b" 2>/dev/null || true
sleep 3
"$ckb" run -C "$out/b" > "$out/b2.log" 2>&1 & b=$!; pids+=("$b")
wait "$t" || true
echo "tip A: $(( $(rpc 18214 get_tip_block_number | jq -r .result) )), tip B: $(( $(rpc 18314 get_tip_block_number | jq -r .result) ))"
cat "$out/net.err"
grep -E "CONNECT|ACCEPT|CLOSE" "$out/net.txt" || true
sed -n '/=== net summary/,$p' "$out/net.txt"
