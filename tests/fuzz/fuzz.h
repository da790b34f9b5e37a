/* fuzz.h - shared by the fuzz targets: each target is one LLVMFuzzerTestOneInput over one
 * loader of outside input. Built two ways: with clang's libFuzzer (`make fuzz`, ALGOPROG_FUZZ=ON)
 * to search for crashes, and with standalone.c in every build, where CTest replays the seed
 * corpus and every crash ever found (tests/fuzz/corpus/TARGET/) through the same code.
 * A loader may reject its input (that is the point); it must never crash, hang, leak or read
 * out of bounds. Loaders that only take a path get the bytes through a private temp file. */
#ifndef AP_FUZZ_H
#define AP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the input to a per-process file (in $TMPDIR or /tmp) and returns its path. */
static inline const char *fuzz_temp_file(const uint8_t *data, size_t size, const char *suffix) {
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/algoprog-fuzz-%d%s", dir && *dir ? dir : "/tmp", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort(); /* the harness's own environment is broken: not a finding */
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif
