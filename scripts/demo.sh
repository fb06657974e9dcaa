#!/usr/bin/env bash
# The embedded default: run the bundled RocksDB workload and trace it with
# `ckb-libbpf rocksdb` for N seconds (default 10). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
tool=target/release/ckb-libbpf
workload=target/release/examples/rocksdb_workload
[ -x "$tool" ] && [ -x "$workload" ] || { echo "build first: make build workload" >&2; exit 1; }

db=$(mktemp -d /tmp/ckb-libbpf-demo.XXXXXX)
# Rounds of ~900 RocksDB calls each, paced so a second shows a few thousand.
"$workload" --db "$db/db" --secs $((secs + 5)) --pause-ms 20 > "$db/workload.out" &
wl=$!
trap 'kill $wl 2>/dev/null; wait $wl 2>/dev/null || true; rm -rf "$db"' EXIT
sleep 1
echo "+ $tool rocksdb ${secs}s --pid $wl" >&2
"$tool" rocksdb "${secs}s" --pid "$wl"
