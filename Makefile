# algoprog: the two commands are `make run` and `make test` (see README.md).
BUILD     ?= build
BUILDTYPE ?= Release
JOBS      ?= $(shell nproc)
ALGOPROG  := $(BUILD)/algoprog

.PHONY: all build test run setup setup-test clean clang asan

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

# The main job: fetch the default corpus, train the default preset, print samples.
run: setup
	$(MAKE) build
	scripts/run

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
	rm -rf $(BUILD) build-clang build-asan
