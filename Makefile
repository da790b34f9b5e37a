# algoprog: the two commands are `make run` and `make test` (see README.md).
BUILD     ?= build
BUILDTYPE ?= Release
JOBS      ?= $(shell nproc)
ALGOPROG  := $(BUILD)/algoprog

.PHONY: all build test test-openblas run bench fuzz setup setup-test clean clang asan

all: build

setup:
	@scripts/setup

setup-test:
	@scripts/setup --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILDTYPE)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit, gradient, PyTorch reference and end-to-end.
test: setup-test
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Every test again on a build without oneDNN (the fallback: every product on OpenBLAS).
test-openblas: setup-test
	cmake -S . -B build-openblas -DCMAKE_BUILD_TYPE=Release -DALGOPROG_WITH_ONEDNN=OFF
	cmake --build build-openblas -j $(JOBS)
	cd build-openblas && ctest --output-on-failure -j $(JOBS)

# The main job: fetch the default corpus, train the default preset, print samples.
run: setup
	$(MAKE) build
	scripts/run

# Speed against OpenBLAS sgemm, the FMA peak and the PyTorch peer (bench/torch_peer.py), all configs
# and 1 and 2 threads, as one ratio table (about 15 minutes; keep the machine otherwise idle).
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--configs small --threads 2".
bench: setup-test
	$(MAKE) build
	$(ALGOPROG) bench --json $(BUILD)/bench.json $(BENCH_ARGS)
	for n in gpt2 cl100k_base o200k_base; do [ -f data/tokenizers/$$n.tok ] || $(ALGOPROG) tokenize import tiktoken:$$n; done
	$(ALGOPROG) bench --tokenizers --json $(BUILD)/bench_tokenizers.json

# libFuzzer over every loader of outside input, FUZZ_SECONDS each (default 60); new crashes are
# left in build-fuzz/crashes/ and fail the target (copy them to tests/fuzz/corpus/TARGET/).
FUZZ_SECONDS ?= 60
fuzz: setup-test
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Fuzz -DALGOPROG_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)
	scripts/fuzz build-fuzz $(FUZZ_SECONDS)

# Compile with clang too (warnings are errors).
clang: setup-test
	CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release
	cmake --build build-clang -j $(JOBS)

# Address + undefined-behaviour sanitizers over the whole test suite.
asan: setup-test
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Asan
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-clang build-asan build-openblas build-fuzz
