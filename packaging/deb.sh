#!/usr/bin/env bash
# Builds target/ckb-libbpf_VERSION_ARCH.deb from an existing release build and
# its generated assets (`make deb` runs `build` and `assets` first). Plain
# dpkg-deb: no cargo-deb to install. Dependencies come from dpkg-shlibdeps,
# so they match what the binary really links.
set -euo pipefail
cd "$(dirname "$0")/.."

tool=target/release/ckb-libbpf
assets=target/assets
for f in "$tool" "$assets/man8/ckb-libbpf.8"; do
    [ -e "$f" ] || { echo "deb.sh: $f missing: run 'make deb' (it builds first)" >&2; exit 1; }
done
for c in dpkg-deb dpkg-shlibdeps; do
    command -v "$c" >/dev/null || { echo "deb.sh: $c missing: apt-get install dpkg-dev" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
work=target/deb
root=$work/root
rm -rf "$work"
mkdir -p "$root/DEBIAN"

make --no-print-directory install-files DESTDIR="$root" PREFIX=/usr \
    ZSHCOMPDIR=/usr/share/zsh/vendor-completions >/dev/null
# Debian policy: man pages compressed, reproducibly (-n: no name or time).
gzip -9n "$root"/usr/share/man/man8/*.8
install -D -m 0644 packaging/ckb-libbpf-export.service \
    "$root/usr/lib/systemd/system/ckb-libbpf-export.service"
doc=$root/usr/share/doc/ckb-libbpf
install -d "$doc"
install -m 0644 README.md "$doc/README.md"
# The Grafana dashboard, when this tree has one (issue 14).
for d in dashboards/*.json grafana/*.json packaging/*.json; do
    [ -e "$d" ] && install -D -m 0644 "$d" "$root/usr/share/ckb-libbpf/$(basename "$d")"
done
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: ckb-libbpf"
    echo
    echo "Files: *"
    echo "Copyright: The ckb-libbpf authors"
    echo "License: MIT or Apache-2.0"
    echo
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' LICENSE-MIT
    echo
    echo "License: Apache-2.0"
    echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
} >"$doc/copyright"

# dpkg-shlibdeps wants a debian/control beside it; give it a throwaway one.
mkdir -p "$work/src/debian"
printf 'Source: ckb-libbpf\n\nPackage: ckb-libbpf\nArchitecture: any\n' >"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O "../../../$tool" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: ckb-libbpf
Version: $version
Architecture: $arch
Maintainer: ckb-libbpf developers <ckb-libbpf@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Homepage: https://github.com/nervosnetwork/ckb
Description: eBPF deep observability for CKB full nodes
 ckb-libbpf attaches to a live CKB node with eBPF (uprobes, tracepoints) and
 reports in the node's own terms: RocksDB operation latency, throughput and
 hit ratio, P2P traffic per peer, syscalls per thread role. Needs a kernel
 with BPF and BTF; runs as root or with CAP_BPF and CAP_PERFMON (see
 /usr/share/doc/ckb-libbpf/README.md).
CONTROL
# The unit is an example: installed, never enabled or started by the package.
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | sort | xargs md5sum) >"$root/DEBIAN/md5sums"

out=target/ckb-libbpf_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
dpkg-deb --info "$out" | sed -n 's/^ \(Depends\|Installed-Size\): /  \1: /p'
