/* A tiktoken rank file (JSON: pat_str, special_tokens, base64 bpe_ranks), then, if it imports,
 * an encode/decode round trip through the tokenizer it makes. */
#include "data/tiktoken.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".json");
    Tokenizer t;
    Status st = {0};
    if (tiktoken_import(&t, path, "fuzz", &st) == 0) {
        static const char text[] = "Hello, world! It's 2026: caf\xc3\xa9 \xf0\x9f\x98\x80 \xff  \n\n x";
        Encoder *e = encoder_create(&t);
        TokenList ids = {0};
        if (e && encoder_encode_ordinary(e, (const unsigned char *)text, sizeof text - 1, &ids, &st) == 0) {
            unsigned char *back = NULL;
            size_t n = 0;
            if (tokenizer_decode(&t, ids.ids, ids.n, &back, &n, &st) == 0) {
                if (n != sizeof text - 1 || memcmp(back, text, n)) abort(); /* an imported tokenizer round-trips */
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
