/* tokenizer.c - token tables, files, encoding and decoding (see tokenizer.h). */
#include "data/tokenizer.h"

#include "core/sha256.h"
#include "core/tensorfile.h"

#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZER_FILE_MAX_TOKENS (1 << 22)

int tokenlist_push(TokenList *l, uint32_t id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        uint32_t *p = realloc(l->ids, cap * sizeof *p);
        if (!p) return -1;
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

void tokenlist_free(TokenList *l) {
    free(l->ids);
    memset(l, 0, sizeof *l);
}

void tokenizer_free(Tokenizer *t) {
    free(t->pattern);
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->special);
    if (t->special_names)
        for (int i = 0; i < t->n_tokens; i++) free(t->special_names[i]);
    free(t->special_names);
    bytesmap_free(&t->ranks);
    pretok_free(t->pre);
    memset(t, 0, sizeof *t);
}

static void compute_hash(Tokenizer *t) {
    Sha256 s;
    unsigned char d[32];
    sha256_init(&s);
    const char *pat = t->pattern ? t->pattern : "";
    sha256_update(&s, pat, strlen(pat) + 1);
    uint32_t n = (uint32_t)t->n_tokens;
    sha256_update(&s, &n, 4);
    sha256_update(&s, t->tok_off, (size_t)(n + 1) * sizeof(uint32_t));
    sha256_update(&s, t->tok_bytes, t->tok_off[n]);
    sha256_update(&s, t->special, n);
    sha256_final(&s, d);
    memcpy(&t->hash, d, 8);
}

int tokenizer_build(Tokenizer *t, int kind, const char *name, const char *pattern, int n, const uint32_t *off,
                    const unsigned char *bytes, char *const *special_names, int eot, Status *st) {
    memset(t, 0, sizeof *t);
    t->kind = kind;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_tokens = n;
    t->eot = eot;
    t->tok_off = malloc((size_t)(n + 1) * sizeof *t->tok_off);
    t->tok_bytes = malloc(off[n] ? off[n] : 1);
    t->special = calloc((size_t)n, 1);
    t->special_names = calloc((size_t)n, sizeof *t->special_names);
    if (pattern) t->pattern = strdup(pattern);
    if (!t->tok_off || !t->tok_bytes || !t->special || !t->special_names || (pattern && !t->pattern) ||
        bytesmap_init(&t->ranks, (size_t)n)) {
        tokenizer_free(t);
        return status_fail(st, AP_ENOMEM, "out of memory building a tokenizer of %d tokens", n);
    }
    memcpy(t->tok_off, off, (size_t)(n + 1) * sizeof *off);
    memcpy(t->tok_bytes, bytes, off[n]);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int i = 0; i < n; i++) {
        if (special_names && special_names[i]) {
            t->special[i] = 1;
            t->special_names[i] = strdup(special_names[i]);
            if (!t->special_names[i]) {
                tokenizer_free(t);
                return status_fail(st, AP_ENOMEM, "out of memory");
            }
            continue;
        }
        size_t len = off[i + 1] - off[i];
        if (len == 0) {
            tokenizer_free(t);
            return status_fail(st, AP_ECORRUPT, "token %d is empty", i);
        }
        int inserted;
        uint32_t *v = bytesmap_put(&t->ranks, bytes + off[i], len, &inserted);
        if (!v) {
            tokenizer_free(t);
            return status_fail(st, AP_ENOMEM, "out of memory");
        }
        if (!inserted) {
            int other = (int)*v;
            tokenizer_free(t);
            return status_fail(st, AP_ECORRUPT, "tokens %d and %d have the same bytes", other, i);
        }
        *v = (uint32_t)i;
        if (len == 1) t->byte_id[bytes[off[i]]] = i;
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) {
            tokenizer_free(t);
            return status_fail(st, AP_ECORRUPT, "byte 0x%02x has no token: the tokenizer cannot encode every input", b);
        }
    if (eot >= n || (eot >= 0 && !t->special[eot])) {
        tokenizer_free(t);
        return status_fail(st, AP_ECORRUPT, "end-of-text id %d is not a special token", eot);
    }
    if (pattern && pretok_compile(&t->pre, pattern, st)) {
        tokenizer_free(t);
        return -1;
    }
    compute_hash(t);
    return 0;
}

int tokenizer_bytes(Tokenizer *t, Status *st) {
    uint32_t off[258];
    unsigned char bytes[256 + TOK_DOC_SEPARATOR_LEN];
    char *names[257] = {0};
    for (int i = 0; i < 256; i++) {
        off[i] = (uint32_t)i;
        bytes[i] = (unsigned char)i;
    }
    off[256] = 256;
    memcpy(bytes + 256, TOK_DOC_SEPARATOR, TOK_DOC_SEPARATOR_LEN);
    off[257] = 256 + TOK_DOC_SEPARATOR_LEN;
    names[256] = "<|endoftext|>";
    return tokenizer_build(t, TOK_BYTES, "bytes", NULL, 257, off, bytes, names, 256, st);
}

/* ---------------------------------------------------------------- files */

int tokenizer_save(const Tokenizer *t, const char *path, Status *st) {
    int n = t->n_tokens;
    size_t names_len = 0;
    for (int i = 0; i < n; i++)
        if (t->special_names[i]) names_len += strlen(t->special_names[i]) + 24;
    char *text = malloc(512 + names_len);
    if (!text) return status_fail(st, AP_ENOMEM, "out of memory");
    int len = snprintf(text, 512, "[tokenizer]\nname = \"%s\"\nkind = %s\nn_tokens = %d\neot = %d\n[special]\n", t->name,
                       t->kind == TOK_BYTES ? "bytes" : "bpe", n, t->eot);
    for (int i = 0; i < n; i++)
        if (t->special_names[i]) len += sprintf(text + len, "%d = \"%s\"\n", i, t->special_names[i]);
    TensorList l = {0};
    uint64_t shape_off = (uint64_t)n + 1, shape_bytes = t->tok_off[n] ? t->tok_off[n] : 1, shape_pat;
    static const unsigned char zero = 0;
    tensorlist_add(&l, "token_offsets", TF_I32, t->tok_off, 1, &shape_off);
    tensorlist_add(&l, "token_bytes", TF_U8, t->tok_off[n] ? t->tok_bytes : &zero, 1, &shape_bytes);
    if (t->pattern) {
        shape_pat = strlen(t->pattern);
        tensorlist_add(&l, "pattern", TF_U8, t->pattern, 1, &shape_pat);
    }
    int rc = tensorfile_write(path, TF_KIND_TOKENIZER, text, &l, st);
    tensorlist_free(&l);
    free(text);
    return rc;
}

int tokenizer_load(Tokenizer *t, const char *name_or_path, Status *st) {
    if (!strcmp(name_or_path, "bytes")) return tokenizer_bytes(t, st);
    TensorFile f;
    if (tensorfile_read(&f, name_or_path, st)) return -1;
    int rc = 0, n = -1, eot = -1;
    char name[128] = "", kind[16] = "";
    char **names = NULL;
    char *pattern = NULL;
    if (f.kind != TF_KIND_TOKENIZER) {
        rc = status_fail(st, AP_ECORRUPT, "'%s' is not a tokenizer file", name_or_path);
        goto done;
    }
    /* the header text is small and fixed-form: parse it line by line */
    const char *p = f.text;
    int in_special = 0;
    while (*p && !rc) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        if (ll >= sizeof line) ll = sizeof line - 1;
        memcpy(line, p, ll);
        line[ll] = '\0';
        p += ll + (nl ? 1 : 0);
        if (!strcmp(line, "[special]")) {
            in_special = 1;
            if (names) /* a second [special] section would replace (and leak) the first */
                rc = status_fail(st, AP_ECORRUPT, "'%s': [special] appears twice", name_or_path);
            else if (n <= 0 || n > TOKENIZER_FILE_MAX_TOKENS)
                rc = status_fail(st, AP_ECORRUPT, "'%s': bad n_tokens", name_or_path);
            else if (!(names = calloc((size_t)n, sizeof *names)))
                rc = status_fail(st, AP_ENOMEM, "'%s': out of memory", name_or_path);
            continue;
        }
        int id;
        char val[400];
        if (in_special) {
            if (sscanf(line, "%d = \"%399[^\"]\"", &id, val) != 2 || id < 0 || id >= n || names[id])
                rc = status_fail(st, AP_ECORRUPT, "'%s': bad special token line '%s'", name_or_path, line);
            else if (!(names[id] = strdup(val)))
                rc = status_fail(st, AP_ENOMEM, "out of memory");
        } else if (sscanf(line, "name = \"%127[^\"]\"", name) == 1 || sscanf(line, "kind = %15s", kind) == 1 ||
                   sscanf(line, "n_tokens = %d", &n) == 1 || sscanf(line, "eot = %d", &eot) == 1 ||
                   !strcmp(line, "[tokenizer]")) {
            continue;
        } else {
            rc = status_fail(st, AP_ECORRUPT, "'%s': unexpected header line '%s'", name_or_path, line);
        }
    }
    if (rc) goto done;
    const TensorEntry *offs = tensorfile_find(&f, "token_offsets"), *bytes = tensorfile_find(&f, "token_bytes"),
                      *pat = tensorfile_find(&f, "pattern");
    if (!names || !offs || !bytes || offs->dtype != TF_I32 || bytes->dtype != TF_U8 || offs->ndim != 1 ||
        offs->shape[0] != (uint64_t)n + 1 || (pat && pat->dtype != TF_U8)) {
        rc = status_fail(st, AP_ECORRUPT, "'%s': token table missing or malformed", name_or_path);
        goto done;
    }
    const uint32_t *off = offs->data;
    for (int i = 0; i < n; i++)
        if (off[i] > off[i + 1]) rc = status_fail(st, AP_ECORRUPT, "'%s': token offsets decrease at %d", name_or_path, i);
    if (!rc && (off[0] != 0 || off[n] > bytes->nbytes))
        rc = status_fail(st, AP_ECORRUPT, "'%s': token offsets run past the token bytes", name_or_path);
    if (rc) goto done;
    if (pat) {
        pattern = malloc(pat->nbytes + 1);
        if (!pattern) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(pattern, pat->data, pat->nbytes);
        pattern[pat->nbytes] = '\0';
    }
    rc = tokenizer_build(t, strcmp(kind, "bytes") ? TOK_BPE : TOK_BYTES, name, pattern, n, off, bytes->data, names, eot,
                         st);
    if (rc) status_wrap(st, "tokenizer '%s'", name_or_path);
done:
    if (names)
        for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(pattern);
    tensorfile_free(&f);
    return rc;
}

/* ---------------------------------------------------------------- encoding */

#define CACHE_MAX_ENTRIES (1u << 20)

struct Encoder {
    const Tokenizer *t;
    PretokMatch *match;
    BytesMap cache;       /* chunk -> index into cache_spans */
    uint32_t *spans;      /* pairs (start in cache_ids, count) */
    size_t n_spans, cap_spans;
    TokenList cache_ids;
    /* scratch for merging one chunk */
    uint32_t *parts, *rank;
    size_t scratch_cap;
    TokenList *out;
    Status *st;
    int failed;
};

Encoder *encoder_create(const Tokenizer *t) {
    Encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->t = t;
    if (t->pre && !(e->match = pretok_match_create(t->pre))) goto fail;
    if (bytesmap_init(&e->cache, 4096)) goto fail;
    return e;
fail:
    encoder_free(e);
    return NULL;
}

void encoder_free(Encoder *e) {
    if (!e) return;
    pretok_match_free(e->match);
    bytesmap_free(&e->cache);
    free(e->spans);
    tokenlist_free(&e->cache_ids);
    free(e->parts);
    free(e->rank);
    free(e);
}

static inline uint32_t rank_of(const Tokenizer *t, const unsigned char *p, size_t len) {
    const uint32_t *v = bytesmap_get(&t->ranks, p, len);
    return v ? *v : UINT32_MAX;
}

/* tiktoken's byte-pair merge: parts[i] are boundaries; rank[i] is the rank of the token that
 * would cover parts[i]..parts[i+2]. Merge the lowest-rank pair until none is a token. */
static int merge_chunk(Encoder *e, const unsigned char *p, size_t n, TokenList *out) {
    const Tokenizer *t = e->t;
    if (n + 1 > e->scratch_cap) {
        size_t cap = 2 * (n + 1);
        uint32_t *a = realloc(e->parts, cap * sizeof *a), *b = a ? realloc(e->rank, cap * sizeof *b) : NULL;
        if (a) e->parts = a;
        if (!a || !b) return -1;
        e->rank = b;
        e->scratch_cap = cap;
    }
    uint32_t *parts = e->parts, *rank = e->rank;
    /* m boundaries delimit m-1 pieces; rank[i] is for merging pieces i and i+1 (m-2 pairs) */
    ptrdiff_t m = (ptrdiff_t)n + 1;
    for (ptrdiff_t i = 0; i < m; i++) parts[i] = (uint32_t)i;
    for (ptrdiff_t i = 0; i < m - 2; i++) rank[i] = rank_of(t, p + i, 2);
    while (m > 2) {
        uint32_t best = UINT32_MAX;
        ptrdiff_t bi = 0;
        for (ptrdiff_t i = 0; i < m - 2; i++)
            if (rank[i] < best) best = rank[i], bi = i;
        if (best == UINT32_MAX) break;
        /* merge pieces bi and bi+1: drop boundary bi+1 and pair bi+1 */
        memmove(parts + bi + 1, parts + bi + 2, (size_t)(m - bi - 2) * sizeof *parts);
        if (m - bi - 4 > 0) memmove(rank + bi + 1, rank + bi + 2, (size_t)(m - bi - 4) * sizeof *rank);
        m--;
        if (bi < m - 2) rank[bi] = rank_of(t, p + parts[bi], parts[bi + 2] - parts[bi]);
        if (bi > 0) rank[bi - 1] = rank_of(t, p + parts[bi - 1], parts[bi + 1] - parts[bi - 1]);
    }
    for (ptrdiff_t i = 0; i + 1 < m; i++) {
        size_t len = parts[i + 1] - parts[i];
        uint32_t id = len == 1 ? (uint32_t)t->byte_id[p[parts[i]]] : rank_of(t, p + parts[i], len);
        if (tokenlist_push(out, id)) return -1;
    }
    return 0;
}

static void encode_chunk(const unsigned char *p, size_t n, void *ctx) {
    Encoder *e = ctx;
    if (e->failed) return;
    const Tokenizer *t = e->t;
    uint32_t id = rank_of(t, p, n); /* the common case: the whole chunk is one token */
    if (id != UINT32_MAX) {
        if (tokenlist_push(e->out, id)) e->failed = 1;
        return;
    }
    const uint32_t *hit = bytesmap_get(&e->cache, p, n);
    if (hit) {
        const uint32_t *span = e->spans + 2 * (size_t)*hit;
        for (uint32_t i = 0; i < span[1]; i++)
            if (tokenlist_push(e->out, e->cache_ids.ids[span[0] + i])) e->failed = 1;
        return;
    }
    size_t before = e->out->n;
    if (merge_chunk(e, p, n, e->out)) {
        e->failed = 1;
        return;
    }
    if (e->cache.count >= CACHE_MAX_ENTRIES) return;
    /* remember this chunk's tokens */
    if (e->n_spans == e->cap_spans) {
        size_t cap = e->cap_spans ? 2 * e->cap_spans : 1024;
        uint32_t *s = realloc(e->spans, 2 * cap * sizeof *s);
        if (!s) return;
        e->spans = s;
        e->cap_spans = cap;
    }
    uint32_t start = (uint32_t)e->cache_ids.n;
    for (size_t i = before; i < e->out->n; i++)
        if (tokenlist_push(&e->cache_ids, e->out->ids[i])) return;
    uint32_t *slot = bytesmap_put(&e->cache, p, n, NULL);
    if (!slot) return;
    *slot = (uint32_t)e->n_spans;
    e->spans[2 * e->n_spans] = start;
    e->spans[2 * e->n_spans + 1] = (uint32_t)(e->out->n - before);
    e->n_spans++;
}

int encoder_encode_ordinary(Encoder *e, const unsigned char *text, size_t len, TokenList *out, Status *st) {
    const Tokenizer *t = e->t;
    if (!t->pre) { /* bytes: one token per byte */
        for (size_t i = 0; i < len; i++)
            if (tokenlist_push(out, (uint32_t)t->byte_id[text[i]])) return status_fail(st, AP_ENOMEM, "out of memory");
        return 0;
    }
    e->out = out;
    e->failed = 0;
    if (pretok_split(t->pre, e->match, text, len, encode_chunk, e, st)) return -1;
    if (e->failed) return status_fail(st, AP_ENOMEM, "out of memory while encoding");
    return 0;
}

int encoder_encode_docs(Encoder *e, const unsigned char *text, size_t len, TokenList *out, Status *st) {
    size_t pos = 0;
    while (pos < len) {
        const unsigned char *sep = NULL;
        for (const unsigned char *q = memchr(text + pos, 0x1e, len - pos); q;
             q = memchr(q + 1, 0x1e, (size_t)(text + len - q - 1))) {
            if (q + 1 < text + len && q[1] == '\n') {
                sep = q;
                break;
            }
            if (q + 1 >= text + len) break;
        }
        size_t end = sep ? (size_t)(sep - text) : len;
        if (encoder_encode_ordinary(e, text + pos, end - pos, out, st)) return -1;
        if (!sep) break;
        if (e->t->eot < 0) return status_fail(st, AP_EINVAL, "tokenizer '%s' has no end-of-text token", e->t->name);
        if (tokenlist_push(out, (uint32_t)e->t->eot)) return status_fail(st, AP_ENOMEM, "out of memory");
        pos = end + TOK_DOC_SEPARATOR_LEN;
    }
    return 0;
}

/* A cut that cannot change the encoding: right after a document separator, or after '\n'
 * followed by an ASCII letter (no pattern we ship lets a chunk span "\n" + letter). */
static size_t safe_cut(const unsigned char *text, size_t len, size_t at) {
    for (size_t i = at; i + 1 < len; i++) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != 0x1e) &&
            ((text[i + 1] | 0x20) >= 'a' && (text[i + 1] | 0x20) <= 'z'))
            return i + 1;
        if (text[i] == 0x1e && text[i + 1] == '\n') return i + 2;
    }
    return len;
}

int tokenizer_encode_parallel(const Tokenizer *t, const unsigned char *text, size_t len, TokenList *out, Status *st) {
    int nt = omp_get_max_threads();
    size_t piece = 1 << 20;
    size_t n_pieces = len / piece + 1;
    if (nt <= 1 || n_pieces < 2) {
        Encoder *e = encoder_create(t);
        if (!e) return status_fail(st, AP_ENOMEM, "out of memory");
        int rc = encoder_encode_docs(e, text, len, out, st);
        encoder_free(e);
        return rc;
    }
    size_t *cuts = malloc((n_pieces + 1) * sizeof *cuts);
    TokenList *parts = calloc(n_pieces, sizeof *parts);
    Status *sts = calloc(n_pieces, sizeof *sts);
    int *rcs = calloc(n_pieces, sizeof *rcs);
    if (!cuts || !parts || !sts || !rcs) {
        free(cuts), free(parts), free(sts), free(rcs);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    cuts[0] = 0;
    for (size_t i = 1; i < n_pieces; i++) {
        size_t c = safe_cut(text, len, i * piece);
        cuts[i] = c < cuts[i - 1] ? cuts[i - 1] : c;
    }
    cuts[n_pieces] = len;
#pragma omp parallel
    {
        Encoder *e = encoder_create(t);
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n_pieces; i++) {
            if (!e)
                rcs[i] = status_fail(&sts[i], AP_ENOMEM, "out of memory");
            else
                rcs[i] = encoder_encode_docs(e, text + cuts[i], cuts[i + 1] - cuts[i], &parts[i], &sts[i]);
        }
        encoder_free(e);
    }
    int rc = 0;
    for (size_t i = 0; i < n_pieces && !rc; i++) {
        if (rcs[i]) {
            *st = sts[i];
            rc = -1;
            break;
        }
        for (size_t j = 0; j < parts[i].n; j++)
            if (tokenlist_push(out, parts[i].ids[j])) {
                rc = status_fail(st, AP_ENOMEM, "out of memory");
                break;
            }
    }
    for (size_t i = 0; i < n_pieces; i++) tokenlist_free(&parts[i]);
    free(cuts), free(parts), free(sts), free(rcs);
    return rc;
}

int tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, unsigned char **out, size_t *out_len,
                     Status *st) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= (uint32_t)t->n_tokens)
            return status_fail(st, AP_ECORRUPT, "token id %u at position %zu is outside the vocabulary (%d)", ids[i], i,
                               t->n_tokens);
        total += tokenizer_token_len(t, (int)ids[i]);
    }
    unsigned char *buf = malloc(total ? total : 1);
    if (!buf) return status_fail(st, AP_ENOMEM, "out of memory decoding %zu tokens", n);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = tokenizer_token_len(t, (int)ids[i]);
        memcpy(buf + pos, t->tok_bytes + t->tok_off[ids[i]], len);
        pos += len;
    }
    *out = buf;
    *out_len = total;
    return 0;
}
