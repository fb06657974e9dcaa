#!/usr/bin/env bash
# The hooks' "$1" (the new root) is mmdebstrap's to expand, not ours.
# shellcheck disable=SC2016
# Makes the Dockerfile's base images locally, for a host that cannot pull
# from a registry: Debian bookworm from Debian's own packages (mmdebstrap,
# ~1 min each), imported into docker.
#   ckb-libbpf-runtime:bookworm   minbase + libelf1     (RUNTIME_IMAGE)
#   ckb-libbpf-toolchain:bookworm minbase + clang, libelf-dev, ... and this
#                                 host's Rust toolchain
#   ckb-libbpf-builder:bookworm   the toolchain + the crates of Cargo.lock,
#                                 vendored from this host's cargo cache
#                                 (BUILDER_IMAGE; remade when Cargo.lock
#                                 changes): the build needs no crates.io
# Then:
#   docker build --network=host \
#     --build-arg BUILDER_IMAGE=ckb-libbpf-builder:bookworm \
#     --build-arg RUNTIME_IMAGE=ckb-libbpf-runtime:bookworm -t ckb-libbpf .
# Needs root, mmdebstrap and docker; REBUILD=1 remakes existing images.
set -euo pipefail
cd "$(dirname "$0")/.."

for c in mmdebstrap docker; do
    command -v "$c" >/dev/null || { echo "base-images.sh: $c missing (apt-get install mmdebstrap docker.io)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have() { [ -z "${REBUILD:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }

if have ckb-libbpf-runtime:bookworm; then
    echo "ckb-libbpf-runtime:bookworm exists"
else
    mmdebstrap --quiet --variant=minbase --include=libelf1,zlib1g \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$tmp/runtime.tar"
    docker import "$tmp/runtime.tar" ckb-libbpf-runtime:bookworm >/dev/null
    echo "made ckb-libbpf-runtime:bookworm"
fi

if have ckb-libbpf-toolchain:bookworm; then
    echo "ckb-libbpf-toolchain:bookworm exists"
else
    # The host's toolchain (rustc, cargo, rustfmt: libbpf-cargo formats the
    # generated skeletons with it), without its documentation.
    rustc_bin=$(rustup which rustc 2>/dev/null || command -v rustc)
    toolchain=$(dirname "$(dirname "$(readlink -f "$rustc_bin")")")
    if [ ! -x "$toolchain/bin/cargo" ] || [ ! -x "$toolchain/bin/rustfmt" ]; then
        echo "base-images.sh: no cargo+rustfmt beside $rustc_bin (rustup component add rustfmt)" >&2
        exit 1
    fi
    mmdebstrap --quiet --variant=minbase \
        --include=ca-certificates,clang,llvm,libelf-dev,zlib1g-dev,pkg-config,make,gcc,libc6-dev \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook="mkdir -p \"\$1\"/opt/rust && tar -C '$toolchain' -c bin lib libexec | tar -C \"\$1\"/opt/rust -x" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$tmp/builder.tar"
    docker import --change 'ENV PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tmp/builder.tar" ckb-libbpf-toolchain:bookworm >/dev/null
    echo "made ckb-libbpf-toolchain:bookworm ($("$toolchain/bin/rustc" --version))"
fi

# The crates, offline: `cargo fetch` (or a build) on this host first.
lock=$(sha256sum Cargo.lock | cut -c1-16)
if [ -z "${REBUILD:-}" ] && [ "$(docker image inspect -f '{{index .Config.Labels "cargo-lock"}}' ckb-libbpf-builder:bookworm 2>/dev/null)" = "$lock" ]; then
    echo "ckb-libbpf-builder:bookworm exists (Cargo.lock $lock)"
else
    cargo vendor --offline --locked --quiet "$tmp/ctx/vendor" >/dev/null || {
        echo "base-images.sh: vendoring failed: run 'cargo fetch' with network access first" >&2
        exit 1
    }
    cat >"$tmp/ctx/config.toml" <<'CONFIG'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/opt/cargo-vendor"
CONFIG
    cat >"$tmp/ctx/Dockerfile" <<DOCKERFILE
FROM ckb-libbpf-toolchain:bookworm
COPY vendor /opt/cargo-vendor
COPY config.toml /root/.cargo/config.toml
LABEL cargo-lock=$lock
DOCKERFILE
    DOCKER_BUILDKIT=0 docker build -q -t ckb-libbpf-builder:bookworm "$tmp/ctx" >/dev/null
    echo "made ckb-libbpf-builder:bookworm (Cargo.lock $lock)"
fi
