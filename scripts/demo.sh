#!/usr/bin/env bash
# The embedded default: run the bundled RocksDB workload and trace it with
# `ckb-libbpf rocksdb` for N seconds (default 10). Needs root.
cd "$(dirname "$0")/.."
. scripts/lib.sh
secs=${1:-10}
need_built
need_root "the demo loads BPF programs"
dir=$(mktemp -d /tmp/ckb-libbpf-demo.XXXXXX)
at_exit "rm -rf '$dir'"
# Rounds of ~900 RocksDB calls each, paced so a second shows a few thousand.
"$WORKLOAD" --db "$dir/db" --secs $((secs + 5)) --pause-ms 20 >"$dir/workload.out" &
wl=$!
kill_at_exit "$wl"
sleep 1
log "+ $TOOL rocksdb ${secs}s --pid $wl"
"$TOOL" rocksdb "${secs}s" --pid "$wl"
