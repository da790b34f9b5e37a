/* A token shard: header, sizes against the file length, checksum, ids against the vocabulary. */
#include "data/shard.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_temp_file(data, size, ".bin");
    Tokenizer t;
    Status st = {0};
    if (tokenizer_bytes(&t, &st)) abort();
    Shard s;
    if (shard_open(&s, path, &t, &st) == 0) {
        uint64_t sum = 0;
        for (size_t i = 0; i < s.n_tokens; i++) sum += shard_token(&s, i); /* every id readable */
        if (sum == UINT64_MAX) abort();
        shard_close(&s);
    }
    tokenizer_free(&t);
    unlink(path);
    return 0;
}
