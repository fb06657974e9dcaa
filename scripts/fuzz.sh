#!/usr/bin/env bash
# Fuzz the ELF path (symbols, offsets, first-instruction decoding) with
# cargo fuzz for N seconds (default 300). The harness is corpus-free: it
# starts from a few real binaries copied into a scratch corpus.
# cargo fuzz needs nightly flags; on a stable-only machine RUSTC_BOOTSTRAP=1
# unlocks them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=$(mktemp -d /tmp/ckb-libbpf-fuzz.XXXXXX)
for f in /bin/true /usr/lib/x86_64-linux-gnu/libz.so.1 target/release/examples/rocksdb_workload; do
	[ -f "$f" ] && head -c 262144 "$f" > "$corpus/$(basename "$f")"
done
RUSTC_BOOTSTRAP=1 cargo fuzz run elf "$corpus" -- -max_total_time="$secs" -rss_limit_mb=4096 -max_len=1048576
