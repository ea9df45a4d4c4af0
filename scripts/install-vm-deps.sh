#!/usr/bin/env bash
# Installs what the kernel-NBD VM test (test/vm) needs, from Debian's
# packages: qemu to boot a Debian kernel under TCG, a static busybox for the
# guest's userland, socat to forward the guest's S3 traffic to a loopback
# port, and kmod (modinfo) to find the kernel modules' dependencies. The
# guest kernel itself is fetched by the test (apt-get download into its
# cache). Idempotent and quiet when all is there.
set -euo pipefail

# command -> Debian package
declare -A need=(
	[qemu-system-x86_64]=qemu-system-x86
	[socat]=socat
	[modinfo]=kmod
	[mke2fs]=e2fsprogs
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# Debian's busybox (dynamic) and busybox-static conflict: the static one is
# what can run in an initramfs without a libc.
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)

# The test fetches the guest kernel with apt-get download: the package
# lists must name it.
apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-' || update=1

if [ ${#missing[@]} -gt 0 ] || [ -n "${update:-}" ]; then
	pkgs=
	if [ ${#missing[@]} -gt 0 ]; then
		pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	fi
	echo "install-vm-deps: installing Debian packages: ${pkgs:-none (updating package lists)}"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	if [ -n "$pkgs" ]; then
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
	fi
fi
