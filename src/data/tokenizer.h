/* tokenizer.h - byte-level tokenizers: `bytes`, and BPE trained by the tool (or imported).
 *
 * A tokenizer is a table of tokens (id -> bytes), a pre-tokenisation pattern, and special tokens.
 * Encoding follows the tiktoken rule: text is split into chunks by the pattern; each chunk that
 * is itself a token becomes that token, otherwise its bytes are merged pairwise, always merging
 * the adjacent pair whose concatenation has the lowest rank (= id) among existing tokens. Every
 * single byte is a token, so any byte string encodes and decodes back exactly.
 *
 * Documents: text files hold documents separated by the two bytes "\x1e\n" (ASCII record
 * separator, newline). Encoding turns each separator into the end-of-text special token and
 * decoding turns it back, so corpus files round-trip byte for byte. */
#ifndef AP_TOKENIZER_H
#define AP_TOKENIZER_H

#include "core/hashmap.h"
#include "core/status.h"
#include "data/pretok.h"

#include <stddef.h>
#include <stdint.h>

#define TOK_DOC_SEPARATOR "\x1e\n"
#define TOK_DOC_SEPARATOR_LEN 2

typedef enum { TOK_BYTES = 0, TOK_BPE = 1 } TokenizerKind;

typedef struct {
    int kind;
    char name[128];
    char *pattern;           /* pre-tokenisation regex; NULL for bytes */
    int n_tokens;            /* ids are 0 .. n_tokens-1, specials included */
    uint32_t *tok_off;       /* (n_tokens + 1) offsets into tok_bytes */
    unsigned char *tok_bytes;
    unsigned char *special;  /* (n_tokens) 1 for special tokens */
    char **special_names;    /* (n_tokens) "<|endoftext|>" etc., NULL for ordinary tokens */
    int byte_id[256];        /* id of each single byte */
    int eot;                 /* end-of-text special id (document boundary), -1 if none */
    BytesMap ranks;          /* ordinary token bytes -> id */
    Pretok *pre;
    uint64_t hash;           /* identity: shards record it and refuse another tokenizer */
} Tokenizer;

/* The byte tokenizer: ids 0..255 are bytes, 256 is <|endoftext|>. */
int tokenizer_bytes(Tokenizer *t, Status *st);
/* Loads "bytes" or a tokenizer file (docs/FORMATS.md). */
int tokenizer_load(Tokenizer *t, const char *name_or_path, Status *st);
int tokenizer_save(const Tokenizer *t, const char *path, Status *st);
void tokenizer_free(Tokenizer *t);
/* Builds a tokenizer from a token table (ranks = ids). Used by training and importers. Token
 * bytes for ids 0..n-1 concatenated in `bytes` with offsets `off` (n+1); `special_names[i]`
 * non-NULL marks a special. Validates: every byte present, no duplicate ordinary token. */
int tokenizer_build(Tokenizer *t, int kind, const char *name, const char *pattern, int n, const uint32_t *off,
                    const unsigned char *bytes, char *const *special_names, int eot, Status *st);

static inline size_t tokenizer_token_len(const Tokenizer *t, int id) { return t->tok_off[id + 1] - t->tok_off[id]; }
/* Source bytes a token stands for (0 for specials), for bits-per-byte accounting. */
static inline size_t tokenizer_byte_count(const Tokenizer *t, int id) {
    return t->special[id] ? 0 : tokenizer_token_len(t, id);
}

/* A growable list of token ids. */
typedef struct {
    uint32_t *ids;
    size_t n, cap;
} TokenList;
int tokenlist_push(TokenList *l, uint32_t id);
void tokenlist_free(TokenList *l);

/* Per-thread encoder: regex match state and a cache of chunk -> tokens. */
typedef struct Encoder Encoder;
Encoder *encoder_create(const Tokenizer *t);
void encoder_free(Encoder *e);
/* Appends the tokens of text (no specials recognised) to out. */
int encoder_encode_ordinary(Encoder *e, const unsigned char *text, size_t len, TokenList *out, Status *st);
/* Appends the tokens of a document file's text: separators become the end-of-text token. */
int encoder_encode_docs(Encoder *e, const unsigned char *text, size_t len, TokenList *out, Status *st);
/* Encodes with all threads: the text is cut at document separators (or, lacking them, at
 * newlines) into pieces encoded in parallel; the result equals the single-thread encoding. */
int tokenizer_encode_parallel(const Tokenizer *t, const unsigned char *text, size_t len, TokenList *out, Status *st);

/* Appends the bytes of ids to a malloc'ed buffer (specials as their decoded form). */
int tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, unsigned char **out, size_t *out_len,
                     Status *st);

/* Trains a byte-level BPE on text (document separators respected) to vocab_size ids:
 * 256 bytes, <|endoftext|>, then merges in order. Pair counts are updated incrementally per
 * merge (only the words that contain the merged pair are touched) and the next pair comes
 * from a max-heap; ties go to the smallest (left id, right id). */
int tokenizer_train_bpe(Tokenizer *t, const unsigned char *text, size_t len, int vocab_size, const char *pattern,
                        const char *name, int verbose, Status *st);

#endif
