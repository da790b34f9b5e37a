/* A tokenizer file: then, if it loads, encode a fixed text with it and decode back exactly. */
#include "data/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".tok");
    Tokenizer t;
    Status st = {0};
    if (tokenizer_load(&t, path, &st) == 0) {
        fuzz_roundtrip(&t);
        tokenizer_free(&t);
    }
    unlink(path);
    return 0;
}
