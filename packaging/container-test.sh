#!/usr/bin/env bash
# The container, end to end, on this host: makes the base images locally
# (packaging/base-images.sh: no registry needed), builds the Dockerfile, and
# runs the image against the bundled RocksDB workload running on the host,
# with the flags and mounts README "Container" documents. Passes only when
# the tool in the container counts exactly the calls the workload made, per
# function, and exits 0 on SIGINT. Root; docker running (`dockerd
# --bridge=none --iptables=false &` where there is no bridge network); the
# workload built (`make workload`). NO_BUILD=1 reuses $IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-ckb-libbpf:test}
workload=target/release/examples/rocksdb_workload
for c in docker jq; do
    command -v "$c" >/dev/null || { echo "container-test: $c missing" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "container-test: docker is not running (dockerd --bridge=none --iptables=false &)" >&2; exit 1; }
[ -x "$workload" ] || { echo "container-test: $workload missing: make workload" >&2; exit 1; }

if [ -z "${NO_BUILD:-}" ]; then
    packaging/base-images.sh
    docker build --network=host \
        --build-arg BUILDER_IMAGE=ckb-libbpf-builder:bookworm \
        --build-arg RUNTIME_IMAGE=ckb-libbpf-runtime:bookworm \
        -t "$image" .
fi

tmp=$(mktemp -d /tmp/ckb-libbpf-ctest.XXXXXX)
name=ckb-libbpf-ctest-$$
wl_pid=
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    [ -n "$wl_pid" ] && kill "$wl_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# The workload waits on stdin before its first call: the tool attaches first.
coproc WL { exec "$workload" --db "$tmp/db" --wait-stdin --rounds 3; }
# shellcheck disable=SC2153 # WL_PID is set by coproc
wl_pid=$WL_PID

read -r ready <&"${WL[0]}"
pid=${ready#READY }
[ "$pid" -gt 0 ] 2>/dev/null || { echo "container-test: workload said '$ready'" >&2; exit 1; }

# What the tool needs from the host, and nothing more (README "Container"):
#  --pid=host     the node's /proc/PID (exe, maps, threads)
#  SYS_ADMIN      bpf() and uprobes; docker 20.10 (Debian 12's) knows no
#                 BPF/PERFMON capability names, and its default seccomp
#                 profile allows bpf() and perf_event_open with SYS_ADMIN
#  SYS_PTRACE     /proc/PID/exe of a process with more capabilities than
#                 the container (a node run by root)
# No mounts: /sys/kernel/btf comes with the container's read-only /sys, and
# the layers used here (uprobe_multi, tp_btf) need no tracefs.
# shellcheck disable=SC2206
run_flags=(${CONTAINER_FLAGS:---pid=host --cap-add=SYS_ADMIN --cap-add=SYS_PTRACE})
docker run -d --name "$name" --network=host "${run_flags[@]}" "$image" \
    rocksdb --pid "$pid" --interval 0.2 --json --by-function --ops all >/dev/null

attached=
for _ in $(seq 600); do
    if docker logs "$name" 2>&1 >/dev/null | grep -q "attached "; then attached=1; break; fi
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || break
    sleep 0.1
done
if [ -z "$attached" ]; then
    echo "container-test: the tool did not attach; its stderr:" >&2
    docker logs "$name" 2>&1 >/dev/null | sed 's/^/  /' >&2
    exit 1
fi

echo go >&"${WL[1]}"
read -r counts <&"${WL[0]}"
sleep 0.5
docker kill --signal INT "$name" >/dev/null
rc=$(docker wait "$name")
docker logs "$name" 2>/dev/null >"$tmp/out.json"
docker logs "$name" 2>&1 >/dev/null >"$tmp/err.txt"
echo "done" >&"${WL[1]}"
wait "$wl_pid" 2>/dev/null || true
wl_pid=

echo "$counts" >"$tmp/counts.json"
fin=$(jq -c 'select(.type == "report" and .final == true)' "$tmp/out.json" | tail -n1)
[ -n "$fin" ] || { echo "container-test: no final report; stderr:" >&2; cat "$tmp/err.txt" >&2; exit 1; }
# Per function: what the workload says it called against what the tool saw.
diff=$(jq -n --argjson want "$(jq -c .calls "$tmp/counts.json")" --argjson fin "$fin" '
    [$want | to_entries[] | select(($fin.functions[.key].count // 0) != .value)
     | "\(.key): workload \(.value), tool \($fin.functions[.key].count // 0)"]')
calls=$(jq '[.calls[]] | add' "$tmp/counts.json")
echo "container-test: exit $rc; $calls calls by the workload (pid $pid) over $(jq '.calls | length' "$tmp/counts.json") functions"
if [ "$rc" != 0 ] || [ "$diff" != "[]" ]; then
    echo "container-test: FAIL: exit code $rc (expected 0); mismatches: $diff" >&2
    sed 's/^/  /' "$tmp/err.txt" >&2
    exit 1
fi
echo "container-test: ok: every function's count equals the workload's"
