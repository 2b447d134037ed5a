# stanzad: entry points for building, testing and trying it out, on Debian 12.
#
#   make deps              check (and, as root, install) the Debian packages
#   make build             cmake --preset default && cmake --build --preset default
#   make test              deps + build + every test (unit and integration)
#   make test-unit         unit tests only         make test-integration   integration only
#   make test-fault        the fault scenarios only (resets, black hole, restarts, kill -9)
#   make test-asan         AddressSanitizer + UBSan build, every test against it
#   make test-tsan         ThreadSanitizer build (clang), the daemon's unit tests against it
#   make fuzz              build and run the libFuzzer targets (needs clang++; FUZZ_SECONDS=60)
#   make demo              stanzad against a throwaway Prosody, in the foreground
#   make bench             build, then run the framer benchmark
#   make install           install into PREFIX (default /usr/local; DESTDIR is honoured)
#   make deb               Debian packages in dist/ (dpkg-buildpackage, from a clean copy of HEAD)
#   make test-deb          make deb, then unpack the .deb files and run the installed binaries
#   make clean             remove the build trees and .demo/

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := build

# Debian's python: python3-slixmpp is installed for it, not for other pythons on PATH.
PYTHON := /usr/bin/python3
# Test processes run in parallel; each integration test starts its own Prosody.
JOBS ?= 2

DEBIAN_PACKAGES := \
	build-essential cmake ninja-build pkg-config \
	libuv1-dev libssl-dev libpugixml-dev libspdlog-dev libtomlplusplus-dev \
	catch2 nlohmann-json3-dev libsqlite3-dev libc-ares-dev libidn-dev \
	scdoc zsh fish \
	prosody prosody-modules ejabberd erlang-p1-sqlite3 jabberd2 python3-slixmpp openssl \
	libomemo-c-dev python3-omemo python3-oldmemo python3-twomemo python3-xmlschema \
	emacs-nox weechat-headless irssi tmux dnsmasq-base microsocks \
	clang libclang-rt-14-dev

.PHONY: help deps build test test-unit test-integration test-fault test-asan test-tsan fuzz demo bench clean install deb test-deb

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

deps:
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$pkg" 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then \
	  echo "deps: all Debian packages are installed"; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  echo "deps: stopping the system services the packages started (the tests run their own)"; \
	  for svc in prosody ejabberd jabberd2; do service $$svc stop >/dev/null 2>&1 || true; done; \
	  pkill -x epmd >/dev/null 2>&1 || true; \
	else \
	  echo "deps: missing Debian packages:$$missing" >&2; \
	  echo "deps: install them with:" >&2; \
	  echo "  sudo apt-get install -y --no-install-recommends$$missing" >&2; \
	  exit 1; \
	fi

# WERROR=1 (as CI does) makes every compiler warning an error.
WERROR_FLAG = -DSTANZAD_WERROR=$(if $(WERROR),ON,OFF)

build:
	cmake --preset default $(WERROR_FLAG)
	cmake --build --preset default

test: deps build
	ctest --preset default -j$(JOBS)

test-unit: build
	ctest --preset default -L '^unit$$' -j$(JOBS)

test-integration: build
	ctest --preset default -L '^integration$$' -j$(JOBS)

test-fault: build
	ctest --preset default -L '^fault$$' -j$(JOBS)

# Unit and integration tests under the sanitizers; the timing-heavy fault scenarios run in
# `make test` (a sanitized build is several times slower, which is not what they measure).
test-asan: deps
	cmake --preset asan $(WERROR_FLAG)
	cmake --build --preset asan
	ctest --preset asan -LE '^fault$$' -j$(JOBS)

# The daemon has one thread besides its event loop: the store's checkpoint worker
# (daemon/store_checkpoint.hpp). Its unit tests, and the store's, run here under TSan; a
# race is an error. Not part of `make test` (clang, and a build tree of its own).
test-tsan: deps
	cmake --preset tsan $(WERROR_FLAG)
	cmake --build --preset tsan --target test_daemon stanzad
	TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_daemon

# Each target runs FUZZ_SECONDS from the seeds in tests/fuzz/corpus/ (copied, so the
# committed seeds stay small); a crash fails the target and leaves its input in build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := framer stream jsonl im omemo irc irc_session socks5 dns

fuzz:
	@if ! command -v clang++ >/dev/null 2>&1; then \
	  echo "fuzz: clang++ not found (make deps installs clang); skipping"; exit 0; \
	fi; \
	cmake --preset fuzz && cmake --build --preset fuzz --target $(addprefix fuzz_,$(FUZZ_TARGETS)); \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus/$$t/; \
	  echo "fuzz: fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  (cd build-fuzz && ./tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	     -print_final_stats=1 corpus/$$t 2>&1 | grep -E '^(stat::number_of_executed_units|==|SUMMARY)' ); \
	done

# GNUInstallDirs paths under PREFIX; DESTDIR=/tmp/root make install stages it (packaging).
PREFIX ?= /usr/local

install: build
	cmake --install build --prefix $(PREFIX)

# The packages come from HEAD as committed (git archive), built in a temporary directory,
# so uncommitted work never gets in. One core unless DEB_BUILD_OPTIONS says otherwise
# (parallel=2). lintian must report no errors; its warnings are in debian/README.source.
deb: DEBIAN_PACKAGES += debhelper dh-elpa lintian git
deb: deps
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "deb: building from HEAD $$(git rev-parse --short HEAD) (uncommitted changes are not included)"; \
	git archive --prefix=stanzad/ HEAD | tar -x -C "$$tmp"; \
	(cd "$$tmp/stanzad" && DEB_BUILD_OPTIONS="$${DEB_BUILD_OPTIONS:-parallel=1}" dpkg-buildpackage -us -uc -b); \
	mkdir -p dist; rm -f dist/*.deb dist/*.changes dist/*.buildinfo; \
	cp "$$tmp"/*.deb "$$tmp"/*.changes "$$tmp"/*.buildinfo dist/; \
	echo "deb: lintian"; lintian --fail-on error --info dist/*.changes; \
	ls -l dist/

# Unpacks the packages into a scratch root (dpkg -x) and runs what they install.
test-deb: deb
	@root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	for d in dist/*.deb; do dpkg -x "$$d" "$$root"; done; \
	"$$root/usr/bin/stanzad" --version; "$$root/usr/bin/stanzactl" --version; \
	for f in usr/lib/systemd/user/stanzad.service usr/share/man/man1/stanzad.1.gz \
	         usr/share/man/man1/stanzactl.1.gz usr/share/man/man5/stanzad.toml.5.gz \
	         usr/share/bash-completion/completions/stanzactl usr/share/zsh/vendor-completions/_stanzactl \
	         usr/share/fish/vendor_completions.d/stanzactl.fish usr/share/doc/stanzad/examples/config.toml; do \
	  test -e "$$root/$$f" || { echo "test-deb: $$f is not in the packages" >&2; exit 1; }; \
	done; \
	"$$root/usr/bin/stanzad" --check-config -c "$$root/usr/share/doc/stanzad/examples/config.toml"; \
	echo "test-deb: ok"

demo: deps build
	$(PYTHON) scripts/demo.py

bench: build
	./build/bench/bench_framer

clean:
	rm -rf build build-asan build-tsan build-fuzz .demo
