/* A tiktoken rank file (JSON: pat_str, special_tokens, base64 bpe_ranks), then, if it imports,
 * an encode/decode round trip through the tokenizer it makes. */
#include "data/tiktoken.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".json");
    Tokenizer t;
    Status st = {0};
    if (tiktoken_import(&t, path, "fuzz", &st) == 0) {
        fuzz_roundtrip(&t);
        tokenizer_free(&t);
    }
    unlink(path);
    return 0;
}
