/* pretok.h - regex pre-tokenisation with PCRE2 (JIT), the first stage of BPE.
 *
 * A pattern (GPT-4's cl100k pattern by default) splits text into chunks; BPE merges never
 * cross a chunk boundary. Every byte of the input lands in exactly one chunk: bytes the pattern
 * does not match (invalid UTF-8 included, thanks to PCRE2_MATCH_INVALID_UTF) become "gap"
 * chunks of raw bytes, so any input round-trips exactly. */
#ifndef AP_PRETOK_H
#define AP_PRETOK_H

#include "core/status.h"

#include <stddef.h>

/* GPT-4 (tiktoken cl100k_base) pre-tokenisation pattern. */
#define PRETOK_GPT4 \
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"

typedef struct Pretok Pretok;          /* compiled pattern, shared by threads */
typedef struct PretokMatch PretokMatch; /* per-thread match state */

int pretok_compile(Pretok **out, const char *pattern, Status *st);
void pretok_free(Pretok *p);
PretokMatch *pretok_match_create(const Pretok *p);
void pretok_match_free(PretokMatch *m);

/* Calls emit(chunk, len, ctx) for consecutive chunks covering text[0, len) exactly.
 * Returns 0, or -1 with st set if the regex engine fails (e.g. JIT stack exhausted). */
typedef void (*pretok_emit_fn)(const unsigned char *chunk, size_t len, void *ctx);
int pretok_split(const Pretok *p, PretokMatch *m, const unsigned char *text, size_t len, pretok_emit_fn emit,
                 void *ctx, Status *st);

#endif
