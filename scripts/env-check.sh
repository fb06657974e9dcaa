#!/usr/bin/env bash
# Can this host run ckb-libbpf and its container demo? Checked before
# anything is built or started; needs no root and loads nothing (for the
# real attach tests: `ckb-libbpf check`, or scripts/demo-check.sh).
#
#   scripts/env-check.sh [--no-docker]
#
#   kernel    >= 5.15 (ring buffers 5.8, BPF cookies 5.15: the rocksdb layer
#             tells its functions apart by cookie)
#   BTF       /sys/kernel/btf/vmlinux readable (CO-RE)
#   BPF       CONFIG_BPF_SYSCALL, CONFIG_UPROBES, CONFIG_BPF_EVENTS when the
#             kernel config is readable; privileges: root, or CAP_BPF +
#             CAP_PERFMON (CAP_SYS_ADMIN before 5.8)
#   memory    ENV_MIN_MEM_GB (4) GiB available
#   disk      ENV_MIN_DISK_GB (20) GiB free where the build goes (this tree)
#   docker    client >= 20.10, a daemon that answers, compose >= 1.29
#             (the container demo; --no-docker or ENV_CHECK_DOCKER=0 leaves
#             these out, for a host that runs the tool natively). 1.29, not
#             2.0: Debian bookworm's own docker-compose is 1.29.2, and the
#             compose file uses nothing newer.
# One line per check, expected then seen; exit 0 only when all agree, 1
# otherwise.
cd "$(dirname "$0")/.."
. scripts/lib.sh
docker=${ENV_CHECK_DOCKER:-1}
case ${1:-} in
--no-docker) docker=0 ;;
"") ;;
*) die 2 "usage: scripts/env-check.sh [--no-docker]" ;;
esac
min_mem=${ENV_MIN_MEM_GB:-4}
min_disk=${ENV_MIN_DISK_GB:-20}

fails=0
check() { # WHAT EXPECTED SEEN OK(0|1)
	if [ "$4" = 0 ]; then
		printf 'ok    %-26s expected %-30s saw %s\n' "$1" "$2" "$3"
	else
		printf 'FAIL  %-26s expected %-30s saw %s\n' "$1" "$2" "$3"
		fails=$((fails + 1))
	fi
}
# at_least SEEN MIN: version or number SEEN >= MIN (dotted, numerically)
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
ok_if() { if "$@"; then echo 0; else echo 1; fi; }

kernel=$(uname -r)
kver=$(grep -o '^[0-9]*\.[0-9]*' <<<"$kernel")
check kernel ">= 5.15" "$kernel" "$(ok_if at_least "$kver" 5.15)"

btf=/sys/kernel/btf/vmlinux
if [ -r "$btf" ]; then
	check BTF "$btf readable" "$(($(stat -c %s "$btf") / 1024)) KiB" 0
else
	check BTF "$btf readable" "absent (a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed)" 1
fi

config=""
for f in /proc/config.gz "/boot/config-$kernel"; do
	[ -r "$f" ] && config=$f && break
done
if [ -n "$config" ]; then
	for opt in CONFIG_BPF_SYSCALL CONFIG_UPROBES CONFIG_BPF_EVENTS; do
		v=$( (if [ "$config" = /proc/config.gz ]; then zcat "$config"; else cat "$config"; fi) |
			sed -n "s/^$opt=//p")
		check "$opt" y "${v:-not set}" "$(ok_if [ "$v" = y ])"
	done
else
	# Not a failure: many kernels do not publish their config; the BTF and
	# the attach tests of `ckb-libbpf check` show the same facts for real.
	echo "note  kernel config          not readable (/proc/config.gz, /boot/config-$kernel): BPF options not checked here; \`ckb-libbpf check\` tests them for real"
fi

# Effective capabilities of this shell: CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39.
capeff=$((16#$(awk '/^CapEff:/ {print $2}' /proc/self/status)))
has_cap() { [ $(((capeff >> $1) & 1)) = 1 ]; }
if [ "$(id -u)" = 0 ] && has_cap 38 && has_cap 39; then
	privs="root"
elif has_cap 38 && has_cap 39; then
	privs="CAP_BPF + CAP_PERFMON"
else
	privs="uid $(id -u) without CAP_BPF + CAP_PERFMON (run as root, or grant them)"
fi
bpf_caps() { has_cap 38 && has_cap 39; }
check privileges "root or CAP_BPF + CAP_PERFMON" "$privs" "$(ok_if bpf_caps)"

mem_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
mem_gb=$(awk -v k="$mem_kb" 'BEGIN {printf "%.1f", k / 1048576}')
check "memory available" ">= $min_mem GiB" "$mem_gb GiB" "$(ok_if at_least "$mem_gb" "$min_mem")"

disk_kb=$(df -Pk "$REPO" | awk 'NR == 2 {print $4}')
disk_gb=$(awk -v k="$disk_kb" 'BEGIN {printf "%.1f", k / 1048576}')
check "disk free ($REPO)" ">= $min_disk GiB" "$disk_gb GiB" "$(ok_if at_least "$disk_gb" "$min_disk")"

if [ "$docker" = 1 ]; then
	if command -v docker >/dev/null; then
		cv=$(docker version --format '{{.Client.Version}}' 2>/dev/null || true)
		check "docker client" ">= 20.10" "${cv:-unknown}" "$(ok_if at_least "${cv:-0}" 20.10)"
		sv=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)
		check "docker daemon" "answers, >= 20.10" "${sv:-not reachable (start dockerd)}" "$(ok_if at_least "${sv:-0}" 20.10)"
		comp=$(docker compose version --short 2>/dev/null || docker-compose version --short 2>/dev/null || true)
		check "docker compose" ">= 1.29" "${comp:-absent (apt-get install docker-compose)}" "$(ok_if at_least "${comp#v}" 1.29)"
	else
		check docker ">= 20.10" "not installed" 1
	fi
else
	echo "note  docker                 not checked (--no-docker): the container demo needs it"
fi

if [ "$fails" -gt 0 ]; then
	echo "FAIL: $fails of the checks above disagree"
	exit 1
fi
echo "PASS: this host meets every requirement checked"
