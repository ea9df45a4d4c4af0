# s3backer-go. `make run` serves a 1 GiB disk stored in ./data over NBD;
# `make test` installs the test tools and runs everything CI runs.
export PATH := /usr/local/go/bin:$(shell go env GOPATH 2>/dev/null)/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/s3backer-go/s3backer/internal/config.Version=$(VERSION)
GO      ?= go
RUN_ADDR ?= 127.0.0.1:10809
FUZZTIME ?= 10s

.PHONY: all build plugin install install-man run test lint unit e2e fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/s3backer ./cmd/s3backer

# The nbdkit plugin: bin/nbdkit-s3backer-plugin.so and the Go library it
# loads, bin/libs3backer-nbdkit.so (cgo; needs a C compiler and nbdkit's
# plugin header, Debian's nbdkit-plugin-dev).
plugin:
	GO=$(GO) VERSION=$(VERSION) nbdkit/build.sh bin

# bin/s3backer into $(PREFIX)/bin; the plugin into nbdkit's plugin
# directory, so that `nbdkit s3backer bucket=...` finds it.
PREFIX ?= /usr/local
NBDKIT_PLUGINDIR ?= $(shell nbdkit --dump-config 2>/dev/null | sed -n 's/^plugindir=//p')
install: build plugin
	install -D -m 0755 bin/s3backer $(DESTDIR)$(PREFIX)/bin/s3backer
	@test -n "$(NBDKIT_PLUGINDIR)" || { echo "install: nbdkit is not installed (or set NBDKIT_PLUGINDIR)"; exit 1; }
	install -D -m 0755 bin/nbdkit-s3backer-plugin.so $(DESTDIR)$(NBDKIT_PLUGINDIR)/nbdkit-s3backer-plugin.so
	install -D -m 0644 bin/libs3backer-nbdkit.so $(DESTDIR)$(NBDKIT_PLUGINDIR)/libs3backer-nbdkit.so

# The manual page, into $(PREFIX)/share/man/man1 (`install` should depend
# on it: install: build plugin install-man).
MANDIR ?= $(PREFIX)/share/man
install-man:
	install -D -m 0644 docs/s3backer.1 $(DESTDIR)$(MANDIR)/man1/s3backer.1

run: build
	@mkdir -p data
	@echo "Serving a 1 GiB disk stored in ./data at nbd://$(RUN_ADDR) (Ctrl-C stops it)."
	@echo "Connect with:  nbdinfo nbd://$(RUN_ADDR)"
	@echo "               qemu-img info nbd://$(RUN_ADDR)"
	@echo "               nbd-client $(subst :, ,$(RUN_ADDR)) /dev/nbd0   (needs the nbd kernel module)"
	bin/s3backer --nbd --test -f --size=1G --blockSize=256k data nbd://$(RUN_ADDR)

test: build
	scripts/install-test-deps.sh
	$(MAKE) plugin
	$(MAKE) lint
	$(MAKE) fuzz
	$(MAKE) unit

lint:
	@fmt=$$(gofmt -l cmd internal nbdkit test bench 2>/dev/null); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

# Every package, the end-to-end tests with real clients included, under the
# race detector.
unit:
	S3BACKER_BIN=$(CURDIR)/bin/s3backer S3BACKER_PLUGIN=$(CURDIR)/bin/nbdkit-s3backer-plugin.so $(GO) test -race -count=1 -timeout 20m ./...

# The fuzz targets, briefly (their seed corpora also run in `unit`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime $(FUZZTIME) ./internal/nbd/
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./internal/nbd/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/codec/
	$(GO) test -run '^$$' -fuzz '^FuzzSumLanes$$' -fuzztime $(FUZZTIME) ./internal/md5sum/

bench: build
	bench/nbdcopy.sh

clean:
	rm -rf bin
