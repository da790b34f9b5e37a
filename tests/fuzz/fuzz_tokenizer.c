/* A tokenizer file: then, if it loads, encode a fixed text with it and decode back exactly. */
#include "data/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".tok");
    Tokenizer t;
    Status st = {0};
    if (tokenizer_load(&t, path, &st) == 0) {
        static const char text[] = "It is a truth universally acknowledged, 1234 don't \xff\xfe caf\xc3\xa9 \n\n  x";
        Encoder *e = encoder_create(&t);
        TokenList ids = {0};
        if (e && encoder_encode_ordinary(e, (const unsigned char *)text, sizeof text - 1, &ids, &st) == 0) {
            unsigned char *back = NULL;
            size_t n = 0;
            if (tokenizer_decode(&t, ids.ids, ids.n, &back, &n, &st) == 0) {
                if (n != sizeof text - 1 || memcmp(back, text, n)) abort(); /* a loaded tokenizer round-trips */
                free(back);
            }
        }
        tokenlist_free(&ids);
        if (e) encoder_free(e);
        tokenizer_free(&t);
    }
    unlink(path);
    return 0;
}
