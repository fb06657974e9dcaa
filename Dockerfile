# Build and run ckb-libbpf in a container. BPF needs the host kernel:
#   docker build -t ckb-libbpf .
#   docker run --rm --privileged --pid=host -v /sys/kernel:/sys/kernel ckb-libbpf rocksdb 30s
# --pid=host lets the tool see the node's /proc entries; the BPF object is
# embedded in the binary, so nothing else is copied.
FROM rust:1-bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      clang llvm libelf-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY include include
COPY src src
COPY examples examples
RUN cargo build --release --locked --bin ckb-libbpf

FROM debian:bookworm-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ckb-libbpf /usr/local/bin/ckb-libbpf
ENTRYPOINT ["/usr/local/bin/ckb-libbpf"]
CMD ["--help"]
