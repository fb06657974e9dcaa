# ckb-libbpf in a container. BPF runs in the host kernel, so the container
# shares the host's PID namespace and kernel interfaces; see README
# "Container" for the exact flags and mounts (tested by packaging/container-test.sh).
#
# With a registry:
#   docker build -t ckb-libbpf .
# Without one (this repository's test host), from local base images made by
# packaging/base-images.sh (Debian packages + the host's Rust toolchain):
#   docker build --network=host \
#     --build-arg BUILDER_IMAGE=ckb-libbpf-builder:bookworm \
#     --build-arg RUNTIME_IMAGE=ckb-libbpf-runtime:bookworm -t ckb-libbpf .
# The build downloads crates from crates.io (hence --network=host where
# docker has no bridge network).
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
# clang compiles the BPF objects; libelf/zlib link libbpf. Installed only
# when the builder image lacks them (the local builder has them).
RUN if ! command -v clang >/dev/null || ! dpkg -s libelf-dev zlib1g-dev pkg-config >/dev/null 2>&1; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           clang llvm libelf-dev zlib1g-dev pkg-config \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# rust:1-bookworm installs the minimal rustup profile, whose `rustfmt` is a
# stub that exits 1; libbpf-cargo formats the generated skeletons with it and
# the build fails. Install the real one, and prove it runs.
RUN if command -v rustup >/dev/null; then rustup component add rustfmt; fi \
 && rustfmt --version
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY include include
COPY src src
COPY examples examples
RUN cargo build --release --locked --bin ckb-libbpf

FROM ${RUNTIME_IMAGE}
RUN if ! dpkg -s libelf1 zlib1g >/dev/null 2>&1; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libelf1 zlib1g \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /src/target/release/ckb-libbpf /usr/sbin/ckb-libbpf
ENTRYPOINT ["/usr/sbin/ckb-libbpf"]
CMD ["--help"]
