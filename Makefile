# The README's two commands are `make run` and `make test`; the rest are parts of them or
# long runs that stay out of `make test`.
SHELL := /bin/bash
JOBS  ?= 2
DEBUG_DIR   := build/debug
RELEASE_DIR := build/release

.PHONY: all deps build release test unit conformance system run stop lint bench demo fuzz clean

all: build

deps:
	@scripts/deps.sh

# Debug build with ASan+UBSan: what the tests run.
build: deps
	@cmake -S . -B $(DEBUG_DIR) -DCMAKE_BUILD_TYPE=Debug -DFERMATA_SANITIZE=ON >/dev/null
	@cmake --build $(DEBUG_DIR) -j$(JOBS)

# Optimised build: what `make run` and the benchmarks run.
release: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(RELEASE_DIR) -j$(JOBS)

unit: build
	ctest --test-dir $(DEBUG_DIR) -L unit --output-on-failure -j$(JOBS)

conformance: build
	ctest --test-dir $(DEBUG_DIR) -L conformance --output-on-failure

system: build
	scripts/test-system.sh

test: unit conformance system

run: release
	scripts/run.sh

stop:
	scripts/services.sh stop; scripts/stack.sh stop

clean:
	rm -rf build
