#!/usr/bin/env bash
# Installs what the test suite needs, from the package registries only:
# Debian packages for the real NBD clients, nbdkit and the C s3backer; the
# Versity S3 Gateway (the real S3 server of the tests) and staticcheck from
# the Go module proxy. Idempotent and quiet when all is there.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
VERSITYGW_VERSION=v1.8.0

# command -> Debian package
declare -A need=(
	[nbdinfo]=libnbd-bin
	[nbdsh]=libnbd-bin
	[nbdcopy]=libnbd-bin
	[qemu-io]=qemu-utils
	[qemu-img]=qemu-utils
	[nbdkit]=nbdkit
	[s3backer]=s3backer
	[fio]=fio
	[mkfs.ext4]=e2fsprogs
	[fusermount]=fuse
	[e2fsck]=e2fsprogs
	[losetup]=mount
	[fstrim]=util-linux
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The nbdkit plugin is built against nbdkit's plugin header.
[ -f /usr/include/nbdkit-plugin.h ] || missing+=(nbdkit-plugin-dev)
# nbdsh is Python: it needs Debian's libnbd bindings, not pyenv's python.
/usr/bin/python3 -c 'import nbd' >/dev/null 2>&1 || missing+=(python3-libnbd)

if [ ${#missing[@]} -gt 0 ]; then
	pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	echo "install-test-deps: installing Debian packages: $pkgs"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi

# qemu, busybox-static, socat and kmod for the kernel-NBD VM test (test/vm).
"$(dirname "$0")/install-vm-deps.sh"

gobin=$(go env GOPATH)/bin
if ! [ -x "$gobin/staticcheck" ] || ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	echo "install-test-deps: installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# Its --version says "git"; the module version is in the build info.
if ! go version -m "$gobin/versitygw" 2>/dev/null | grep -q "mod.*github.com/versity/versitygw.*$VERSITYGW_VERSION"; then
	echo "install-test-deps: installing versitygw $VERSITYGW_VERSION (takes a minute or two once)"
	# Outside the module, so the gateway's dependencies stay out of go.mod.
	(cd / && GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
fi
