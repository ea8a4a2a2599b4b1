# swrap: `make` builds everything into ./bin; `make test` runs every test;
# `make demo` runs the seed example. See README.md.

GO       ?= go
BIN      := bin
GOFLAGS  ?=
export CGO_ENABLED := 0

.PHONY: all broker cli shim demo-progs test unit integration demo bench bench-quick bench-profile soak fuzz vet clean

all: broker shim cli demo-progs

broker:
	$(GO) build $(GOFLAGS) -o $(BIN)/swrap-broker ./cmd/swrap-broker

cli:
	$(GO) build $(GOFLAGS) -o $(BIN)/swrap ./cmd/swrap

shim:
	$(MAKE) -C shim

# The demo's TCP server and client (C), wrapped by the shim like any program.
demo-progs:
	$(MAKE) -C demo

# Everything the tests need is built first; unit tests and integration
# tests (real broker, real shim, real programs) run in one go test call.
test: all vet
	$(GO) test -count=1 -timeout 20m ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# The seed example: a wrapped TCP server and client (bin/demo-server,
# bin/demo-client), a capture, its summary. `sh scripts/demo.sh --nc` runs it
# with netcat-openbsd instead.
demo: all
	sh scripts/demo.sh

# Side-by-side benchmarks: kernel loopback, socket_wrapper, swrap (with and
# without a capture). Writes bench/results/latest.{md,png,json}; see README.md.
bench: all
	sh bench/run.sh

bench-quick: all
	sh bench/run.sh --quick

# The broker's CPU profile, system calls and frames per request under the
# real-server loads: bench/results/profile*.{txt,json}; see bench/PROFILE.md.
bench-profile: all
	sh bench/run.sh --profile

# A few minutes of load and faults on 64 hosts (not part of make test):
# requests served and verified, the broker's footprint before, during and
# after; writes bench/results/soak-latest.{md,json}. SOAK_FLAGS=-duration=30s
soak: all
	$(GO) build $(GOFLAGS) -o $(BIN)/soak ./bench/soak
	ulimit -n 65536 2>/dev/null || true; $(BIN)/soak $(SOAK_FLAGS)

fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 2m ./wire/

clean:
	rm -rf $(BIN)
	$(MAKE) -C shim clean
	$(MAKE) -C demo clean
