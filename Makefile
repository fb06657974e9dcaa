# ckb-libbpf: build, demo and test entry points.
# Every target installs what it needs on a fresh Debian/Ubuntu machine (`deps`).

CARGO       ?= cargo
PREFIX      ?= /usr/local
# Install layout (make install / uninstall; make deb uses PREFIX=/usr).
# sbin: a tool for administrators (root or capabilities).
BINDIR      ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
ASSETS      := target/assets
DEMO_SECS   ?= 10
APT_PKGS    := clang llvm libelf-dev zlib1g-dev pkg-config libclang-dev make jq bpftool bpftrace binutils librocksdb-dev python3-jwt python3-cryptography tmux e2fsprogs util-linux libcap2-bin shellcheck
WORKLOAD    := target/release/examples/rocksdb_workload
TOOL        := target/release/ckb-libbpf
# Debian's prometheus package, unpacked (not installed: no service starts):
# promtool lints the exporter's output, the server scrapes it in tests.
PROM_TOOLS  := target/tools/prometheus

.PHONY: all deps build workload demo demo-stress demo-check demo-normal env-check test vmlinux assets install install-files uninstall deb deb-test container-test compose compose-down compose-test lint clean e2e-ckb fuzz soak soak-smoke soak-deps bench

all: build

# System packages: clang builds the BPF objects, libelf/zlib link libbpf,
# libclang-dev runs bindgen for RocksDB; bpftool/bpftrace are used by tests, tmux by the overview test.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup)"; exit 1; }
	@test -x $(PROM_TOOLS)/usr/bin/promtool -a -x $(PROM_TOOLS)/usr/bin/prometheus || { \
		echo "unpacking Debian's prometheus package into $(PROM_TOOLS) (promtool and a server for the export tests)"; \
		tmp=$$(mktemp -d) && \
		{ (cd $$tmp && apt-get download prometheus) >/dev/null 2>&1 || \
		  { apt-get update -qq && (cd $$tmp && apt-get download prometheus) >/dev/null; }; } && \
		mkdir -p $(PROM_TOOLS) && dpkg-deb -x $$tmp/prometheus_*.deb $(PROM_TOOLS) && rm -rf $$tmp; \
	}

build: deps
	$(CARGO) build --release --bin ckb-libbpf

workload: deps
	$(CARGO) build --release --example rocksdb_workload

# The embedded default: start the bundled RocksDB workload, trace it for
# DEMO_SECS seconds, stop it.
demo: build workload
	@scripts/demo.sh $(DEMO_SECS)

# F-7: a write burst must raise an alert with a RocksDB background cause
# within 15 s (needs the anomaly detector wired into `rocksdb`).
demo-stress: build workload
	@scripts/demo-stress.sh $(BASELINE_SECS)

# The seed's acceptance demos: each prints what it expected and what it saw
# and exits 0 only when they agree. demo-check: `check`, `symbols` and the
# live test; demo-normal: a JSON snapshot of the bundled workload checked
# against its own counts (target/demo/); env-check: the host's kernel, BTF,
# privileges, memory, disk and docker (ENV_CHECK_ARGS=--no-docker for a
# native install).
demo-check: build workload
	@scripts/demo-check.sh $(BINARY)

demo-normal: build workload
	@scripts/demo-normal.sh $(DEMO_ROUNDS)

env-check:
	@scripts/env-check.sh $(ENV_CHECK_ARGS)

# Lint first (CI runs this target), then real BPF in the real kernel: must
# run as root. A test that cannot load BPF fails here instead of skipping.
test: deps lint
	CKB_LIBBPF_REQUIRE_BPF=1 $(CARGO) test --release -- --test-threads=2

# Regenerate src/bpf/vmlinux.h from this machine's kernel BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > src/bpf/vmlinux.h

# Man pages (section 8, one per subcommand) and bash/zsh/fish completions,
# generated from the clap definitions in src/cli.rs.
assets: build
	rm -rf $(ASSETS)
	$(TOOL) generate-assets $(ASSETS)

install: build assets install-files

# Copies what `build` and `assets` made; no cargo (`sudo make install-files`
# after a build as a normal user).
install-files:
	install -D -m 0755 $(TOOL) $(DESTDIR)$(BINDIR)/ckb-libbpf
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(ASSETS)/man8/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -D -m 0644 $(ASSETS)/completions/ckb-libbpf $(DESTDIR)$(BASHCOMPDIR)/ckb-libbpf
	install -D -m 0644 $(ASSETS)/completions/_ckb-libbpf $(DESTDIR)$(ZSHCOMPDIR)/_ckb-libbpf
	install -D -m 0644 $(ASSETS)/completions/ckb-libbpf.fish $(DESTDIR)$(FISHCOMPDIR)/ckb-libbpf.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ckb-libbpf
	rm -f $(DESTDIR)$(MANDIR)/man8/ckb-libbpf.8 $(DESTDIR)$(MANDIR)/man8/ckb-libbpf-*.8
	rm -f $(DESTDIR)$(BASHCOMPDIR)/ckb-libbpf $(DESTDIR)$(ZSHCOMPDIR)/_ckb-libbpf $(DESTDIR)$(FISHCOMPDIR)/ckb-libbpf.fish

# target/ckb-libbpf_VERSION_ARCH.deb with dpkg-deb: /usr/sbin/ckb-libbpf, man
# pages, completions, an example systemd unit for `export`.
deb: build assets
	packaging/deb.sh

# The .deb in a fresh Debian container: install, man, completion, unit, purge.
deb-test: deb
	packaging/deb-test.sh

# The Dockerfile built from local base images and run against the bundled
# workload on the host (exact counts). Root, docker running.
container-test: workload
	packaging/container-test.sh

# The demo environment (docker-compose.yml): a CKB dev node and miner (the
# binary CKB_BIN, or `ckb` on PATH), `ckb-libbpf export` on the node and
# Prometheus, in containers. compose-test brings it up, waits until
# Prometheus has the node's RocksDB counts and chain tip, and tears it down.
# Root, docker running; not in CI.
compose:
	packaging/compose.sh up

compose-down:
	packaging/compose.sh down

compose-test:
	packaging/compose.sh test

# Formatting, clippy (release, like the tests: the build is shared) and
# shellcheck over every shell script; shellcheck reads .shellcheckrc (the
# scripts source scripts/lib.sh). `make test` runs this first.
SHELL_SCRIPTS := $(wildcard scripts/*.sh packaging/*.sh packaging/*/*/*.sh) .ci/run
lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	shellcheck $(SHELL_SCRIPTS)

clean:
	$(CARGO) clean

# Against a real CKB node: CKB_BIN, or `ckb` on PATH (`cargo install ckb
# --locked --version 0.210.0 --root DIR` builds one, ~30 min). Not in CI.
e2e-ckb: build
	scripts/e2e-ckb.sh $(E2E_BLOCKS)

fuzz:
	scripts/fuzz.sh $(FUZZ_SECS)

# The long soak (S-1..S-3) and its report (docs/soak/ has one): SOAK_SECS
# (default 48 h) on a CKB dev chain (node + miner; CKB_BIN or `ckb` on PATH)
# with the bundled workload's write bursts beside it, or SOAK_TARGET=workload
# (the workload alone), or PID=... (a running node). Writes OUT_DIR (default
# /tmp/ckb-libbpf-soak.TIME): a TSV timeseries, the tracers' JSON, a verdict
# and report/REPORT.md with its charts (needs python3-matplotlib).
# soak-smoke: 3 minutes of the workload alone, a short real run of the same
# script and report generator (exact fidelity table or exit 1). Root; not CI.
soak: build workload soak-deps
	$(CARGO) build --release --example soak_report
	scripts/soak.sh $(or $(SOAK_SECS),172800) $(or $(PID),$(SOAK_TARGET),ckb)

soak-smoke: build workload soak-deps
	$(CARGO) build --release --example soak_report
	SAMPLE_SECS=10 EPISODE_SECS=60 BURST_AT=30 BURST_MB=16 TOOL_ARGS="--baseline-secs 20" \
		scripts/soak.sh 180 workload

soak-deps:
	@/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null; }

# Benchmarks (issues 6, 13): per-hit cost against the empty-program floor
# and bpftrace, bpf_stats per program, the tool's own CPU/RSS/losses, cost
# per function, the cause layers, the net layer per send, the overhead
# budget, `ckb import` when scripts/e2e-ckb.sh's data exists, node CPU per
# block of a running dev chain, bare / floor / defaults, when a CKB binary
# is found (CKB_BIN or `ckb` on PATH; skipped loudly if not; CHAIN_SECS x
# CHAIN_REPS, ~15 min), and what `export` costs, scraped or not. Root;
# about an hour. Not part of `make test`.
# BENCH="hit prog" runs some sections only (BENCH=chain: the chain alone);
# results in target/bench/.
bench: build workload
	$(CARGO) build --release --example rocksdb_percall --example net_workload
	scripts/bench.sh $(BENCH)
