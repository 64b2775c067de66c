# zrocket front door. `make run` and `make test` are all a new user needs.
#
#   make deps       install missing Debian packages (root), or print the command
#   make build      configure and build into build/
#   make run        deps + build, then `zrocket dev` in the foreground
#   make test       deps + build with warnings as errors + the whole test suite
#   make test-asan  the test suite under AddressSanitizer/UBSan (build-asan/)
#   make install    install library, header, zrocket and zrocket.pc (PREFIX)
#   make bench      the benchmark matrix (bench/run.sh -> docs/benchmarks.md)
#   make failover-demo  kill -9 a master under load, watch the failover

PREFIX ?= /usr/local
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DATA ?= ./zrocket-data
PORT ?= 10911

BUILD_PKGS = gcc make cmake pkg-config libzmq3-dev libczmq-dev \
             libmsgpack-dev librocksdb-dev libcmocka-dev
TEST_PKGS = python3-zmq python3-msgpack iproute2

.PHONY: all deps deps-test build run test test-asan install bench clean \
        failover-demo

all: build

# Installs what is missing; never asks twice for what is there.
define install_pkgs
	@missing=""; for p in $(1); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$(2)" ] && ! command -v npm >/dev/null 2>&1; then \
	    missing="$$missing nodejs npm"; \
	fi; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "make deps: installing$$missing"; \
	        apt-get update -q && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	    else \
	        echo "make deps: missing packages:$$missing"; \
	        echo "run: sudo apt-get update && sudo apt-get install -y$$missing"; \
	        exit 1; \
	    fi; \
	fi
endef

deps:
	$(call install_pkgs,$(BUILD_PKGS),)

deps-test:
	$(call install_pkgs,$(BUILD_PKGS) $(TEST_PKGS),node)

CONFIGURE = cmake -S . -B $(BUILD) -DWERROR=ON -DSANITIZE= \
            -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null

build: deps
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/zrocket dev --data $(DATA) --port $(PORT)

test: deps-test
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps-test
	cmake -S . -B build-asan -DWERROR=ON -DSANITIZE=address,undefined \
	    -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	ZR_BIN=$(BUILD)/zrocket bash bench/run.sh

failover-demo: build
	ZR_BIN=$(BUILD)/zrocket bash examples/failover/demo.sh

clean:
	rm -rf $(BUILD) build-asan
