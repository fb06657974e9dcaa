#!/usr/bin/env bash
# The demo environment of docker-compose.yml in one command.
#
#   packaging/compose.sh up     build the images, start a CKB dev node and its
#                               miner, `ckb-libbpf export` on the node and
#                               Prometheus (http://127.0.0.1:9090)
#   packaging/compose.sh down   stop and remove all of it, volumes included
#   packaging/compose.sh test   up; passes when Prometheus has stored
#                               ckb-libbpf's RocksDB counts of the node and
#                               CKB's own chain tip, both above 0; then down
#
# CKB_BIN: the CKB binary (default `ckb` on PATH), copied into
# packaging/compose/ckb/ (the image's build context; never committed).
# BASE_IMAGES=local (default) makes the base images from Debian's packages
# (packaging/base-images.sh, as the container test does: no registry);
# BASE_IMAGES=registry builds FROM rust:1-bookworm and debian:bookworm-slim.
# Uses `docker compose`, else docker-compose (Debian's 1.29). Root; docker
# running (`dockerd --bridge=none --iptables=false &` where there is no
# bridge network). Ports 8100, 8114, 8115, 9090 and 9190 of 127.0.0.1 must
# be free.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

project="ckb-libbpf-demo"
action=${1:-up}

compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -p "$project" "$@"
    elif command -v docker-compose >/dev/null; then
        docker-compose -p "$project" "$@"
    else
        die 1 "neither \`docker compose\` nor docker-compose: apt-get install docker-compose"
    fi
}

# The images, built with docker itself (the same builder container-test
# uses; compose then only starts them).
build() {
    local ckb
    ckb=$(find_ckb) || exit 2
    case ${BASE_IMAGES:-local} in
    local)
        packaging/base-images.sh
        export BUILDER_IMAGE=ckb-libbpf-builder:bookworm RUNTIME_IMAGE=ckb-libbpf-runtime:bookworm
        ;;
    registry)
        export BUILDER_IMAGE=rust:1-bookworm RUNTIME_IMAGE=debian:bookworm-slim
        ;;
    *) die 2 "BASE_IMAGES=${BASE_IMAGES}: local or registry" ;;
    esac
    cp "$ckb" packaging/compose/ckb/ckb
    local args=(--network=host --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
    log "building ckb-libbpf-compose/ckb ($("$ckb" --version))"
    docker build -q "${args[@]}" -t ckb-libbpf-compose/ckb packaging/compose/ckb >/dev/null
    log "building ckb-libbpf-compose/prometheus (Debian's prometheus package)"
    docker build -q "${args[@]}" -t ckb-libbpf-compose/prometheus packaging/compose/prometheus >/dev/null
    log "building ckb-libbpf-compose/ckb-libbpf (the Dockerfile)"
    docker build -q "${args[@]}" -t ckb-libbpf-compose/ckb-libbpf . >/dev/null
}

up() {
    need_cmds docker
    docker info >/dev/null 2>&1 || die 1 "docker is not running (dockerd --bridge=none --iptables=false &)"
    ports_free 8100 8114 8115 9090 9190
    build
    compose up -d --no-build
    log "up: CKB RPC http://127.0.0.1:8114, ckb-libbpf http://127.0.0.1:9190/metrics, Prometheus http://127.0.0.1:9090"
}

down() {
    compose down -v --remove-orphans
}

# prom_sum EXPR: the sum of the instant vector EXPR in Prometheus, 0 when
# it has none (or does not answer yet).
prom_sum() {
    python3 - "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[1]})
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        result = json.load(r)["data"]["result"]
    print(sum(float(s["value"][1]) for s in result))
except Exception:
    print(0)
PY
}

test_env() {
    need_cmds python3
    at_exit down
    up
    local rocksdb=0 tip=0 deadline=$((SECONDS + ${COMPOSE_WAIT_SECS:-300}))
    # dashboards/prometheus.yml scrapes every 15 s.
    while [ "$SECONDS" -lt "$deadline" ]; do
        rocksdb=$(prom_sum 'sum(ckb_libbpf_rocksdb_op_duration_seconds_count{job="ckb-libbpf"})')
        tip=$(prom_sum 'ckb_chain_tip{job="ckb"}')
        if awk -v a="$rocksdb" -v b="$tip" 'BEGIN {exit !(a > 0 && b > 0)}'; then
            break
        fi
        sleep 5
    done
    echo "compose-test: expected ckb_libbpf_rocksdb_op_duration_seconds_count > 0 and ckb_chain_tip > 0 in Prometheus"
    echo "compose-test: saw RocksDB calls ${rocksdb}, chain tip ${tip} (after ${SECONDS} s)"
    if ! awk -v a="$rocksdb" -v b="$tip" 'BEGIN {exit !(a > 0 && b > 0)}'; then
        compose ps >&2 || true
        compose logs --tail 30 >&2 || true
        die 1 "compose-test: FAIL"
    fi
    echo "compose-test: ok"
}

case $action in
up) up ;;
down) down ;;
test) test_env ;;
*) die 2 "usage: packaging/compose.sh up|down|test" ;;
esac
