# swrap: `make` builds everything into ./bin; `make test` runs every test;
# `make demo` runs the seed example. See README.md.

GO       ?= go
BIN      := bin
GOFLAGS  ?=
export CGO_ENABLED := 0

.PHONY: all broker cli shim demo-progs man test unit integration demo bench bench-quick bench-profile pgo soak \
	fuzz vet clean install uninstall deb

all: broker shim cli demo-progs man

broker:
	$(GO) build $(GOFLAGS) -o $(BIN)/swrap-broker ./cmd/swrap-broker

cli:
	$(GO) build $(GOFLAGS) -o $(BIN)/swrap ./cmd/swrap

shim:
	$(MAKE) -C shim

# The man page swrap(1), written by swrap itself from the tables its help
# uses (cmd/swrap/manual.go): one source, and nothing but Go to build it.
man: cli
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
		$(BIN)/swrap help --roff $(VERSION) > $(BIN)/swrap.1

# The demo's TCP server and client (C), wrapped by the shim like any program.
demo-progs:
	$(MAKE) -C demo

# Everything the tests need is built first; unit tests and integration
# tests (real broker, real shim, real programs) run in one go test call.
# The integration tests then run again with every broker on 2 Ps: the
# broker's default on a machine of 4 CPUs or more, where its goroutines
# really run in parallel (on 2 CPUs it defaults to 1).
test: all vet
	$(GO) test -count=1 -timeout 20m ./...
	SWRAP_TEST_BROKER_PROCS=2 $(GO) test -count=1 -timeout 20m ./tests/

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

# The broker's profile-guided optimisation: go build reads
# cmd/swrap-broker/default.pgo (the workloads above plus iperf3 bulk, merged);
# refresh it when the data path changes. See bench/PROFILE.md.
pgo: all
	sh bench/run.sh --profile --pgo cmd/swrap-broker/default.pgo

# A few minutes of load and faults on 64 hosts (not part of make test):
# requests served and verified, the broker's footprint before, during and
# after; writes bench/results/soak-latest.{md,json}. SOAK_FLAGS=-duration=30s
soak: all
	$(GO) build $(GOFLAGS) -o $(BIN)/soak ./bench/soak
	ulimit -n 65536 2>/dev/null || true; $(BIN)/soak $(SOAK_FLAGS)

fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 2m ./wire/

# ---------------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=...]; make uninstall (same
# variables); make deb (a package of `make install PREFIX=/usr`).
#
# SOCKET_WRAPPER_VERSION is the socket_wrapper version the pkg-config and
# CMake files claim. 1.5.2: the newest release whose behaviour swrap covers
# (the compatibility contract was read from 1.3.3-1.5.2; its interposed calls
# are 1.5.2's), and not below what consumers ask for: recent Samba's build
# requires pkg-config socket_wrapper >= 1.5.1 (Debian bookworm ships 1.3.5).
VERSION                ?= 0.1.0
SOCKET_WRAPPER_VERSION := 1.5.2
PREFIX     ?= /usr/local
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null)
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
CMAKEDIR   := $(LIBDIR)/cmake/socket_wrapper
PCDIR      := $(LIBDIR)/pkgconfig
GEN        := $(BIN)/gen

# What install puts where (the broker in LIBDIR/swrap/, where the shim looks
# for it relative to its own location); uninstall removes exactly these.
INSTALLED := $(BINDIR)/swrap $(LIBDIR)/swrap/swrap-broker $(MANDIR)/man1/swrap.1 \
	$(LIBDIR)/libswrap.so $(LIBDIR)/libsocket_wrapper.so.0 $(LIBDIR)/libsocket_wrapper.so \
	$(LIBDIR)/libsocket_wrapper_noop.so.0 $(LIBDIR)/libsocket_wrapper_noop.so \
	$(INCLUDEDIR)/socket_wrapper.h $(PCDIR)/socket_wrapper.pc $(PCDIR)/socket_wrapper_noop.pc \
	$(CMAKEDIR)/socket_wrapper-config.cmake $(CMAKEDIR)/socket_wrapper-config-version.cmake

# dist/*.in with the paths and versions filled in.
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@PC_LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
	-e 's|@PC_INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
	-e "s|@CMAKE_REL_INCLUDEDIR@|$$(realpath -m --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g" \
	-e 's|@SOCKET_WRAPPER_VERSION@|$(SOCKET_WRAPPER_VERSION)|g' -e 's|@VERSION@|$(VERSION)|g'

install: all
	@mkdir -p $(GEN)
	install -D -m 755 $(BIN)/swrap $(DESTDIR)$(BINDIR)/swrap
	install -D -m 755 $(BIN)/swrap-broker $(DESTDIR)$(LIBDIR)/swrap/swrap-broker
	install -D -m 644 $(BIN)/swrap.1 $(DESTDIR)$(MANDIR)/man1/swrap.1
	install -D -m 644 $(BIN)/libswrap.so $(DESTDIR)$(LIBDIR)/libswrap.so
	ln -sfn libswrap.so $(DESTDIR)$(LIBDIR)/libsocket_wrapper.so.0
	ln -sfn libsocket_wrapper.so.0 $(DESTDIR)$(LIBDIR)/libsocket_wrapper.so
	install -D -m 644 $(BIN)/libsocket_wrapper_noop.so.0 $(DESTDIR)$(LIBDIR)/libsocket_wrapper_noop.so.0
	ln -sfn libsocket_wrapper_noop.so.0 $(DESTDIR)$(LIBDIR)/libsocket_wrapper_noop.so
	install -D -m 644 shim/socket_wrapper.h $(DESTDIR)$(INCLUDEDIR)/socket_wrapper.h
	for f in socket_wrapper.pc socket_wrapper_noop.pc; do \
		$(SUBST) dist/$$f.in > $(GEN)/$$f && \
		install -D -m 644 $(GEN)/$$f $(DESTDIR)$(PCDIR)/$$f || exit 1; done
	for f in socket_wrapper-config.cmake socket_wrapper-config-version.cmake; do \
		$(SUBST) dist/$$f.in > $(GEN)/$$f && \
		install -D -m 644 $(GEN)/$$f $(DESTDIR)$(CMAKEDIR)/$$f || exit 1; done
	@# A real install as root: refresh ld.so's cache, so that the bare name
	@# LD_PRELOAD=libsocket_wrapper.so finds LIBDIR (e.g. under /usr/local).
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBDIR)/swrap $(DESTDIR)$(CMAKEDIR) 2>/dev/null

# The package replaces Debian's libsocket-wrapper: it installs the same
# library names, header, pkg-config and CMake files, so it Conflicts with and
# Replaces it, and Provides it (versioned) for packages that depend on it.
# Depends: the newest GLIBC_ symbol version the two libraries need (the Go
# programs are static).
DEB_ARCH       = $(shell dpkg --print-architecture)
DEB_MAINTAINER ?= swrap maintainers <maintainers@swrap.invalid>
DEB_ROOT       := $(BIN)/deb
DEB            = $(BIN)/swrap_$(VERSION)_$(DEB_ARCH).deb

deb: all
	rm -rf $(DEB_ROOT)
	$(MAKE) install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr
	install -D -m 644 dist/triggers $(DEB_ROOT)/DEBIAN/triggers
	glibc=$$(objdump -T $(BIN)/libswrap.so $(BIN)/libsocket_wrapper_noop.so.0 | \
		grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1); \
	size=$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1); \
	$(SUBST) -e "s|@ARCH@|$(DEB_ARCH)|" -e "s|@MAINTAINER@|$(DEB_MAINTAINER)|" \
		-e "s|@INSTALLED_SIZE@|$$size|" -e "s|@GLIBC_MIN@|$$glibc|" \
		dist/control.in > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group --build $(DEB_ROOT) $(DEB)

clean:
	rm -rf $(BIN)
	$(MAKE) -C shim clean
	$(MAKE) -C demo clean
