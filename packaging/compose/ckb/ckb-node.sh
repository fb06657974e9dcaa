#!/bin/sh
# Entry point of the compose environment's CKB containers (/data is their
# shared volume):
#   node   on first start, a dev chain in /data (Dummy miner, RPC, P2P and
#          the Prometheus exporter on 127.0.0.1 only); then writes its host
#          PID (the container shares the host's PID namespace) to
#          /data/ckb.pid for `ckb-libbpf export --pid` and runs the node
#   miner  waits for the node, then mines one block per CKB_BLOCK_MS
# CKB_RPC_PORT (8114), CKB_P2P_PORT (8115), CKB_METRICS_PORT (8100, where
# dashboards/prometheus.yml scrapes it), CKB_BLOCK_MS (1000).
set -eu
data=/data
rpc=${CKB_RPC_PORT:-8114}
p2p=${CKB_P2P_PORT:-8115}
metrics=${CKB_METRICS_PORT:-8100}
# The dev chain's block assembler lock (the same as scripts/lib.sh's).
ba_arg=0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7

case "${1:-node}" in
node)
    # A PID from an earlier run must never be traced.
    rm -f "$data/ckb.pid"
    if [ ! -f "$data/ckb.toml" ]; then
        ckb init -C "$data" --chain dev --ba-arg "$ba_arg" \
            --rpc-port "$rpc" --p2p-port "$p2p" --force >/dev/null
        # The templates bind P2P to 0.0.0.0 and leave the exporter off.
        sed -i \
            -e "s#^listen_addresses = .*#listen_addresses = [\"/ip4/127.0.0.1/tcp/$p2p\"]#" \
            -e "s#^listen_address = .*#listen_address = \"127.0.0.1:$rpc\"#" \
            -e 's/^# \[metrics.exporter.prometheus\]/[metrics.exporter.prometheus]/' \
            -e "s/^# target = { type = \"prometheus\".*/target = { type = \"prometheus\", listen_address = \"127.0.0.1:$metrics\" }/" \
            "$data/ckb.toml"
        grep -q "^target = { type = \"prometheus\", listen_address = \"127.0.0.1:$metrics\" }" "$data/ckb.toml" || {
            echo "ckb-node.sh: could not enable CKB's Prometheus exporter (ckb.toml template changed?)" >&2
            exit 1
        }
        sed -i -e "s/^value = .*/value = ${CKB_BLOCK_MS:-1000}/" \
            -e "s#127.0.0.1:8114#127.0.0.1:$rpc#" "$data/ckb-miner.toml"
    fi
    echo $$ >"$data/ckb.pid"
    exec ckb run -C "$data"
    ;;
miner)
    until [ -s "$data/ckb.pid" ] && [ -d "/proc/$(cat "$data/ckb.pid")" ]; do sleep 1; done
    exec ckb miner -C "$data"
    ;;
*)
    exec "$@"
    ;;
esac
