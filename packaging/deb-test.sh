#!/usr/bin/env bash
# The .deb as an operator meets it, in a fresh Debian container: installs
# with dpkg (its Depends are in minbase + libelf1), `man ckb-libbpf-rocksdb`
# finds the page, bash completes `ckb-libbpf rocksdb --over` to
# --overhead-budget, `systemd-analyze verify` accepts the example unit with
# the binary and pages in place, and `dpkg --purge` leaves none of its files.
# Root; docker running; `make deb` done. Uses ckb-libbpf-runtime:bookworm
# (packaging/base-images.sh) plus systemd, man-db and bash from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(find target -maxdepth 1 -name "ckb-libbpf_*.deb" -printf "%T@ %p\n" 2>/dev/null | sort -rn | head -n1 | cut -d" " -f2)
[ -n "$deb" ] || { echo "deb-test: no target/ckb-libbpf_*.deb: make deb" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "deb-test: docker is not running" >&2; exit 1; }
packaging/base-images.sh >/dev/null

# The operator's machine: Debian with systemd and man-db (made once).
if ! docker image inspect ckb-libbpf-debtest:bookworm >/dev/null 2>&1; then
    printf '%s\n' 'FROM ckb-libbpf-runtime:bookworm' \
        'RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd man-db >/dev/null && rm -rf /var/lib/apt/lists/*' |
        DOCKER_BUILDKIT=0 docker build -q --network=host -t ckb-libbpf-debtest:bookworm - >/dev/null
fi

docker run --rm --network=host -v "$PWD/$deb:/tmp/ckb-libbpf.deb:ro" ckb-libbpf-debtest:bookworm bash -c '
set -euo pipefail
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
dpkg -i /tmp/ckb-libbpf.deb >/dev/null
files=$(dpkg -L ckb-libbpf)
/usr/sbin/ckb-libbpf --version | grep -q "^ckb-libbpf " || fail "--version"
page=$(man -w ckb-libbpf-rocksdb) || fail "man ckb-libbpf-rocksdb finds no page"
[ "$page" = /usr/share/man/man8/ckb-libbpf-rocksdb.8.gz ] || fail "page at $page"
MANWIDTH=80 man ckb-libbpf-rocksdb 2>/dev/null | grep -q -- "--overhead-budget" || fail "rocksdb page lacks --overhead-budget"
for s in check net symbols syscall; do man -w "ckb-libbpf-$s" >/dev/null || fail "no page for $s"; done
# What bash does on TAB after "ckb-libbpf rocksdb --over".
source /usr/share/bash-completion/completions/ckb-libbpf
COMP_WORDS=(ckb-libbpf rocksdb --over); COMP_CWORD=2; COMP_LINE="ckb-libbpf rocksdb --over"; COMP_POINT=${#COMP_LINE}
_ckb__libbpf ckb-libbpf --over rocksdb
[ "${COMPREPLY[*]}" = "--overhead-budget" ] || fail "bash completed to: ${COMPREPLY[*]}"
unit=/usr/lib/systemd/system/ckb-libbpf-export.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
dpkg --purge ckb-libbpf >/dev/null
left=$(for f in $files; do [ -f "$f" ] && echo "$f"; done; true)
[ -z "$left" ] || fail "left after purge: $left"
echo "deb-test: ok: installed, man page, bash completion, unit verified, purged clean ($(echo "$files" | wc -l) paths)"
'
