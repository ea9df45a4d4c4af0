#!/bin/sh
# Builds s3backer's nbdkit plugin into DIR (default bin): the C plugin
# nbdkit loads, nbdkit-s3backer-plugin.so, and beside it the Go library it
# loads once nbdkit serves, libs3backer-nbdkit.so (see nbdkit/plugin.go for
# why there are two). Needs cgo, a C compiler and nbdkit's plugin header
# (Debian: nbdkit-plugin-dev). VERSION is shown by nbdkit --dump-plugin.
set -eu
cd "$(dirname "$0")/.."
out=${1:-bin}
mkdir -p "$out"
: "${GO:=go}" "${CC:=cc}" "${VERSION:=dev}"
CGO_ENABLED=1 "$GO" build -trimpath -buildmode=c-shared \
	-ldflags "-X github.com/s3backer-go/s3backer/internal/config.Version=$VERSION" \
	-o "$out/libs3backer-nbdkit.so" ./nbdkit
rm -f "$out/libs3backer-nbdkit.h"
"$CC" -std=gnu11 -O2 -Wall -Wextra -fPIC -shared -DS3B_VERSION="\"$VERSION\"" \
	-o "$out/nbdkit-s3backer-plugin.so" nbdkit/shim/plugin.c -ldl
