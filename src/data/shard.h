/* shard.h - token shards: a fixed header and the token ids of one split of a corpus.
 *
 *   0  char[8] "APSHARD\0"     8  u32 version (1)      12 u32 bytes per token (2 or 4)
 *   16 u64 tokens              24 u64 source bytes the tokens stand for (specials excluded)
 *   32 u64 documents           40 u64 tokenizer hash   48 u64 source text hash (sha256 prefix)
 *   56 u32 CRC32C of the tokens                         60 u32 header bytes (64)
 *   64 tokens, little-endian, uint16 when the vocabulary fits, else uint32
 * The trainer memory-maps shards read-only; opening checks size, checksum and ids < vocab, and
 * a shard made by another tokenizer is refused by hash. */
#ifndef AP_SHARD_H
#define AP_SHARD_H

#include "core/status.h"
#include "data/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *map;
    size_t map_len;
    const unsigned char *tokens;
    int width;
    uint64_t n_tokens, n_bytes, n_docs, tokenizer_hash, text_hash;
} Shard;

int shard_write(const char *path, const Tokenizer *t, const uint32_t *ids, size_t n, uint64_t n_bytes, uint64_t n_docs,
                uint64_t text_hash, Status *st);
/* Opens and validates; with t non-NULL also checks the tokenizer hash and that every id < t->n_tokens. */
int shard_open(Shard *s, const char *path, const Tokenizer *t, Status *st);
void shard_close(Shard *s);

static inline uint32_t shard_token(const Shard *s, size_t i) {
    if (s->width == 2) return (uint32_t)s->tokens[2 * i] | (uint32_t)s->tokens[2 * i + 1] << 8;
    const unsigned char *p = s->tokens + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
