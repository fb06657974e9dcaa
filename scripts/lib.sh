# shellcheck shell=bash
# Shared helpers of scripts/*.sh; sourced, never run:
#
#   cd "$(dirname "$0")/.." && . scripts/lib.sh
#
# Sourcing it sets `set -euo pipefail`, defines TOOL and WORKLOAD (absolute
# paths of the release builds) and installs one EXIT trap that runs what the
# script registered with at_exit / kill_at_exit, newest first, so every
# script cleans up the same way on success, failure and Ctrl-C.

set -euo pipefail

REPO=$(pwd)
TOOL=$REPO/target/release/ckb-libbpf
WORKLOAD=$REPO/target/release/examples/rocksdb_workload
# The funded dev-chain account of `ckb init --chain dev`'s documentation: any
# lock arg works for a dev chain, one fixed value keeps runs comparable.
CKB_DEV_BA_ARG=0xc8328aabcd9b9e8e64fbc566c4385c3bdeb219d7

log() { printf '%s\n' "$*" >&2; }
# die CODE MESSAGE...: the message on stderr, then exit CODE.
die() {
	local code=$1
	shift
	log "$(basename "$0"): $*"
	exit "$code"
}

# ---------------------------------------------------------------- cleanup
_lib_exit=()
# at_exit COMMAND: run COMMAND (a string, eval'd) when the script exits.
at_exit() { _lib_exit+=("$1"); }
# kill_at_exit PID [SIGNAL]: stop PID (default TERM) at exit and reap it.
# Tracers get INT: that is how they print their final report and detach.
kill_at_exit() { at_exit "kill -${2:-TERM} $1 2>/dev/null; wait $1 2>/dev/null"; }
_lib_cleanup() {
	local i
	for ((i = ${#_lib_exit[@]} - 1; i >= 0; i--)); do
		eval "${_lib_exit[i]}" || true
	done
	_lib_exit=()
}
trap _lib_cleanup EXIT
# Ctrl-C / SIGTERM become a normal exit, so the EXIT trap runs once.
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
need_root() { [ "$(id -u)" = 0 ] || die 3 "$1: run as root (or with CAP_BPF + CAP_PERFMON)"; }
# need_cmds CMD...: every command on PATH, else exit 3 naming the missing ones.
need_cmds() {
	local c missing=()
	for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
	[ ${#missing[@]} = 0 ] || die 3 "missing: ${missing[*]} (make deps installs them)"
}
need_built() {
	if [ ! -x "$TOOL" ] || [ ! -x "$WORKLOAD" ]; then
		die 1 "build first: make build workload"
	fi
}
# find_ckb: prints the CKB binary to use: $CKB_BIN, else `ckb` on PATH.
# There is no default location: a path that exists on one machine is a
# different (or no) binary on the next.
find_ckb() {
	local c=${CKB_BIN:-}
	if [ -z "$c" ]; then
		c=$(command -v ckb) || {
			log "no CKB binary: set CKB_BIN=/path/to/ckb or put ckb on PATH"
			log "  (cargo install ckb --locked --version 0.210.0 --root DIR builds one in ~30 min)"
			return 1
		}
	fi
	[ -x "$c" ] || { log "CKB_BIN=$c is not an executable file"; return 1; }
	printf '%s\n' "$c"
}

# ---------------------------------------------------------------- statistics
# median N...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# spread N...: "min median max".
spread() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[1], a[int((NR + 1) / 2)], a[NR]}'; }

# alternate REPS FUNC SETUP...: calls `FUNC SETUP I` for every setup, REPS
# times, the order rotating by one each time (a b c, b c a, c a b, ...; for
# two setups that is ABBA): warm-up, drift and other jobs on a shared
# machine then fall on every setup alike. FUNC runs in this shell, so it
# may start tracers and record into global arrays.
alternate() {
	# Prefixed locals: bash scoping is dynamic, so FUNC sees these names
	# instead of its caller's (a plain `n` hid the caller's round count).
	local _alt_n=$1 _alt_f=$2 _alt_i _alt_s
	shift 2
	local _alt_order=("$@")
	for _alt_i in $(seq "$_alt_n"); do
		for _alt_s in "${_alt_order[@]}"; do "$_alt_f" "$_alt_s" "$_alt_i"; done
		_alt_order=("${_alt_order[@]:1}" "${_alt_order[0]}")
	done
}

# ---------------------------------------------------------------- waiting
# wait_for PATTERN FILE PID [SECS]: until a line matching PATTERN is in FILE;
# fails (exit 1, FILE shown) when PID dies first or after SECS (default 60).
wait_for() {
	local deadline=$((SECONDS + ${4:-60}))
	until grep -q -- "$1" "$2" 2>/dev/null; do
		if ! kill -0 "$3" 2>/dev/null; then
			log "process $3 exited before printing '$1':"
			cat "$2" >&2 2>/dev/null || true
			exit 1
		fi
		[ "$SECONDS" -lt "$deadline" ] || {
			log "no '$1' in $2 after ${4:-60} s"
			exit 1
		}
		sleep 0.05
	done
}
# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT PID [SECS]: until 127.0.0.1:PORT accepts; fails like wait_for.
wait_port() {
	local deadline=$((SECONDS + ${3:-60}))
	until port_open "$1"; do
		kill -0 "$2" 2>/dev/null || die 1 "process $2 exited before listening on 127.0.0.1:$1"
		[ "$SECONDS" -lt "$deadline" ] || die 1 "nothing listens on 127.0.0.1:$1 after ${3:-60} s"
		sleep 0.2
	done
}
# ports_free PORT...: fails naming the first port already taken.
ports_free() {
	local p
	for p in "$@"; do
		! port_open "$p" || die 3 "port $p on 127.0.0.1 is in use: choose other ports"
	done
}

# ---------------------------------------------------------------- CKB dev chain
# ckb_dev_init CKB DIR RPC_PORT P2P_PORT: a fresh dev chain in DIR whose RPC
# and P2P listen on 127.0.0.1 only (the templates bind P2P to 0.0.0.0).
ckb_dev_init() {
	local ckb=$1 dir=$2 rpc=$3 p2p=$4
	"$ckb" init -C "$dir" --chain dev --ba-arg "$CKB_DEV_BA_ARG" \
		--rpc-port "$rpc" --p2p-port "$p2p" --force >/dev/null
	sed -i "s#^listen_addresses = .*#listen_addresses = [\"/ip4/127.0.0.1/tcp/$p2p\"]#; s#^listen_address = .*#listen_address = \"127.0.0.1:$rpc\"#" \
		"$dir/ckb.toml"
	grep -q "^listen_address = \"127.0.0.1:$rpc\"" "$dir/ckb.toml" ||
		die 1 "ckb init's ckb.toml has no listen_address line (template changed?)"
}
# ckb_dev_miner DIR DELAY_MS [NOTIFY_PORT]: the Dummy miner of DIR's chain
# makes one block per DELAY_MS. With NOTIFY_PORT the node pushes every new
# block template to the miner (notify mode) instead of the miner polling
# every second: blocks then come at a steady cadence (polling races the
# node's new template; measured: 14 to 44 blocks per 10 s with nothing
# attached).
ckb_dev_miner() {
	local dir=$1 delay=$2 notify=${3:-} rpc
	rpc=$(ckb_rpc_port "$dir")
	sed -i "s/^value = .*/value = $delay/; s#127.0.0.1:8114#127.0.0.1:$rpc#" "$dir/ckb-miner.toml"
	if [ -n "$notify" ]; then
		sed -i "s|^# notify = \[.*|notify = [\"http://127.0.0.1:$notify\"]|" "$dir/ckb.toml"
		sed -i "s|^# listen = .*|listen = \"127.0.0.1:$notify\"|" "$dir/ckb-miner.toml"
		if ! grep -q '^notify = ' "$dir/ckb.toml" || ! grep -q '^listen = ' "$dir/ckb-miner.toml"; then
			die 1 "this ckb's config templates lack notify/listen (ckb init changed?)"
		fi
	fi
}
# ckb_rpc_port DIR: the RPC port of DIR's ckb.toml (set by ckb_dev_init).
ckb_rpc_port() { sed -n 's/^listen_address = "127.0.0.1:\([0-9]*\)"/\1/p' "$1/ckb.toml"; }
# ckb_dev_run CKB DIR LOG: `CKB run -C DIR` in the background, stopped at
# exit; returns once its RPC port listens. Sets $node.
ckb_dev_run() {
	"$1" run -C "$2" >"$3" 2>&1 &
	node=$!
	kill_at_exit "$node"
	wait_port "$(ckb_rpc_port "$2")" "$node" 60
}
# ckb_dev_mine CKB DIR LOG: DIR's Dummy miner in the background, stopped at
# exit. Sets $miner.
ckb_dev_mine() {
	"$1" miner -C "$2" >"$3" 2>&1 &
	miner=$!
	kill_at_exit "$miner"
}
# ckb_mine_to PORT BLOCKS [SECS]: until the node on PORT has BLOCKS blocks,
# its tip logged every SECS (default 5).
ckb_mine_to() {
	while [ "$(ckb_tip "$1")" -lt "$2" ]; do
		sleep "${3:-5}"
		log "tip $(ckb_tip "$1")"
	done
}
# ckb_rpc PORT METHOD: the JSON-RPC answer of the node on 127.0.0.1:PORT.
ckb_rpc() {
	curl -s -m 5 -X POST -H 'content-type: application/json' \
		-d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":[]}" "http://127.0.0.1:$1"
}
# ckb_tip PORT: the tip block number (decimal), 0 when the node does not answer.
ckb_tip() { echo $(($(ckb_rpc "$1" get_tip_block_number | jq -r '.result // "0x0"' 2>/dev/null || echo 0))); }
