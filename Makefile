# s3backer-go. `make run` serves a 1 GiB disk stored in ./data over NBD;
# `make test` installs the test tools and runs everything CI runs.
export PATH := /usr/local/go/bin:$(shell go env GOPATH 2>/dev/null)/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/s3backer-go/s3backer/internal/config.Version=$(VERSION)
GO      ?= go
RUN_ADDR ?= 127.0.0.1:10809
FUZZTIME ?= 10s

.PHONY: all build run test lint unit e2e fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/s3backer ./cmd/s3backer

run: build
	@mkdir -p data
	@echo "Serving a 1 GiB disk stored in ./data at nbd://$(RUN_ADDR) (Ctrl-C stops it)."
	@echo "Connect with:  nbdinfo nbd://$(RUN_ADDR)"
	@echo "               qemu-img info nbd://$(RUN_ADDR)"
	@echo "               nbd-client $(subst :, ,$(RUN_ADDR)) /dev/nbd0   (needs the nbd kernel module)"
	bin/s3backer --nbd --test -f --size=1G --blockSize=256k data nbd://$(RUN_ADDR)

test: build
	scripts/install-test-deps.sh
	$(MAKE) lint
	$(MAKE) fuzz
	$(MAKE) unit

lint:
	@fmt=$$(gofmt -l cmd internal test bench 2>/dev/null); if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

# Every package, the end-to-end tests with real clients included, under the
# race detector.
unit:
	S3BACKER_BIN=$(CURDIR)/bin/s3backer $(GO) test -race -count=1 -timeout 20m ./...

# The fuzz targets, briefly (their seed corpora also run in `unit`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime $(FUZZTIME) ./internal/nbd/
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./internal/nbd/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/codec/

bench: build
	bench/nbdcopy.sh

clean:
	rm -rf bin
