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

/* A loaded tokenizer must encode any bytes and decode them back exactly. */
#ifdef AP_TOKENIZER_H
static inline void fuzz_roundtrip(const Tokenizer *t) {
    static const char text[] = "It is a truth universally acknowledged, 1234 don't \xff\xfe caf\xc3\xa9 "
                               "\xf0\x9f\x98\x80 \n\n  x";
    Status st = {0};
    Encoder *e = encoder_create(t);
    TokenList ids = {0};
    if (e && encoder_encode_ordinary(e, (const unsigned char *)text, sizeof text - 1, &ids, &st) == 0) {
        unsigned char *back = NULL;
        size_t n = 0;
        if (tokenizer_decode(t, ids.ids, ids.n, &back, &n, &st) == 0) {
            if (n != sizeof text - 1 || memcmp(back, text, n)) abort();
            free(back);
        }
    }
    tokenlist_free(&ids);
    if (e) encoder_free(e);
}
#endif

#endif
