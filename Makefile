# The README's two commands are `make run` and `make test`; the rest are parts of them or
# long runs that stay out of `make test`.
SHELL := /bin/bash
JOBS  ?= 2
DEBUG_DIR   := build/debug
RELEASE_DIR := build/release

FUZZ_TARGETS := mp3 mp3_check mp3_source range ids song_json s3_xml trace
FUZZ_SHORT   ?= 20
FUZZ_SECONDS ?= 600

APIFUZZ_EXAMPLES ?= 1000

.PHONY: all deps build release test unit conformance system fuzz-short run stop reset lint containers bench bench-uploads demo fuzz chaos apifuzz valgrind fresh-debian clean

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

# Short fuzz runs (replaying every kept regression input first); `make fuzz` is the long run.
fuzz-short: deps
	@for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh $$t $(FUZZ_SHORT) || exit 1; done

fuzz: deps
	@for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh $$t $(FUZZ_SECONDS) || exit 1; done

test: unit conformance fuzz-short system

# Offline validation of the deployment files and the OpenAPI description.
lint: deps
	@scripts/lint.sh

# Every image of deploy/compose.yaml built and the Compose stack run and checked here with
# podman (no Docker engine; root; installs podman, buildah, debootstrap and podman-compose
# itself): scripts/containers.sh, tests/containers/.
containers:
	scripts/containers.sh

# Benchmarks (not tests): results go to bench/results/.
bench: release
	bench/run-all.sh
	bench/breaker/run.sh

# Only the big streamed uploads (1 MB to 1 GB, and 8 at once with peak RSS): issue 13's figures.
bench-uploads: release
	BENCH_ONLY=big bench/run-all.sh

# Long runs, outside `make test`: the chaos test with 1000 uploads, schemathesis with many
# examples, every service under valgrind.
chaos: build
	CHAOS_UPLOADS=1000 CHAOS_HA_UPLOADS=1000 CHAOS_HA_RATE=30 \
	  scripts/test-system.sh -k "test_chaos or test_ha" -s

apifuzz: build
	tests/apifuzz/run.sh $(APIFUZZ_EXAMPLES)

valgrind: deps
	tests/valgrind/run.sh

# scripts/deps.sh, a build and the stack on a fresh minimal Debian 12 (debootstrap + chroot),
# from a clone in /root: what a new machine does. Root only; downloads ~1 GB.
fresh-debian:
	tests/fresh-debian/run.sh

# Uploads a generated MP3 through a running `make run` and shows each step.
demo:
	scripts/demo.sh

run: release
	scripts/run.sh

stop:
	scripts/services.sh stop; scripts/stack.sh stop

# Deletes the local stack's data (databases, queues, files): its data directory only.
reset:
	scripts/services.sh stop; scripts/stack.sh reset

clean:
	rm -rf build
