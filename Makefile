# Anvil — a thin wrapper over CMake. Every target installs what is missing
# first (scripts/install-deps.sh is quick when everything is present).
#
#   make serve        build and run the server with examples/anvil.yaml
#   make check        regen-check, layers, lint, -Werror build + tests, ASan/UBSan build + tests
#   make layers       the layer and circle check of the sources (scripts/check-layers.py)
#   make regen        rewrite generated/ from openapi.yaml
#   make regen-check  fail if generated/ is out of date
#   make lint         OpenAPI 3.1 lint of openapi.yaml (redocly), AsyncAPI check of generated/asyncapi.yaml
#   make bench        HTTP RPC benchmark (bench/http_rpc.sh)
#   make client-test  the upstream's published client against the binary (CTest -L client)
#   make interop      the drop-in test with the client installed afresh from npm (INTEROP_DIR)
#   make fuzz         run the libFuzzer target for FUZZ_SECONDS (default 300)

SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 300
CHECK_FUZZ_SECONDS ?= 20
PYTHON = $(shell scripts/find-python.sh 2>/dev/null)
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)
INTEROP_DIR ?= $(BUILD)/interop-client

.PHONY: all deps build serve check test asan-test client-test interop regen regen-check layers lint bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

serve: build
	@echo
	@echo "Anvil on http://127.0.0.1:7331 with examples/anvil.yaml (database examples/anvil.db)."
	@echo "Example token (from examples/anvil.yaml): dev-operator-token"
	@echo "  Operator console: http://127.0.0.1:7331/console (sign in with that token)"
	@echo "  curl -s -X POST http://127.0.0.1:7331/v1/rpc/listWorkflows \\"
	@echo "       -H 'Authorization: Bearer dev-operator-token' -d '{}'"
	@echo
	$(BUILD)/anvil serve --config examples/anvil.yaml

regen: deps
	$(PYTHON) codegen/anvil_codegen.py --spec openapi.yaml --out generated

regen-check:
	@py=$$(scripts/find-python.sh) || { echo "regen-check: run scripts/install-deps.sh first"; exit 1; }; \
	$$py codegen/anvil_codegen.py --spec openapi.yaml --out generated --check

# The include graph; the link graph of the built layers is the CTest test
# structure.links, so it runs in both builds.
layers:
	@py=$$(scripts/find-python.sh) || { echo "layers: run scripts/install-deps.sh first"; exit 1; }; \
	$$py scripts/check-layers.py

lint: deps
	tools/lint/node_modules/.bin/redocly lint --config tools/lint/redocly.yaml openapi.yaml
	node tools/lint/asyncapi-check.cjs generated/asyncapi.yaml

test: build
	cd $(BUILD) && ctest $(CTEST_FLAGS)

# Just the upstream client test (tests/client/README.md). `build` runs
# install-deps first, which runs `npm ci` in tests/client when needed.
client-test: build
	cd $(BUILD) && ctest --output-on-failure -L client

# The published client from npm, installed afresh into a scratch folder (the
# versions tests/client/package-lock.json pins), then the drop-in test
# against the binary (docs/compatibility.md).
interop: build
	rm -rf $(INTEROP_DIR) && mkdir -p $(INTEROP_DIR)
	cp tests/client/package.json tests/client/package-lock.json $(INTEROP_DIR)/
	cd $(INTEROP_DIR) && npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) tests/integration/test_interop.py --anvil $(BUILD)/anvil --client-dir $(INTEROP_DIR)

# Sanitizer build: clang when present (it also builds the libFuzzer target,
# which then runs for CHECK_FUZZ_SECONDS as one of the tests).
asan-test: deps
	@cc=$$(command -v clang || command -v gcc); \
	[ -f $(ASAN_BUILD)/CMakeCache.txt ] || CC=$$cc cmake -S . -B $(ASAN_BUILD) \
	    -DCMAKE_BUILD_TYPE=Debug -DANVIL_SANITIZE=ON -DANVIL_FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

check: deps
	$(MAKE) --no-print-directory regen-check
	$(MAKE) --no-print-directory layers
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test
	$(MAKE) --no-print-directory asan-test

bench: build
	bench/http_rpc.sh

fuzz: deps
	@[ -f $(ASAN_BUILD)/CMakeCache.txt ] || CC=clang cmake -S . -B $(ASAN_BUILD) \
	    -DCMAKE_BUILD_TYPE=Debug -DANVIL_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target fuzz_frame
	mkdir -p $(ASAN_BUILD)/fuzz-corpus
	$(ASAN_BUILD)/fuzz_frame -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    $(ASAN_BUILD)/fuzz-corpus tests/fuzz/corpus

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
