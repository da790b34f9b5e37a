/* bpe_train.c - incremental byte-level BPE training (see tokenizer_train_bpe in tokenizer.h).
 *
 * The text is cut into pre-tokens (pretok.h) and counted: training works on unique "words" with
 * counts. Each pair of adjacent symbols has a count (summed over words, times word counts) and
 * a list of words it occurs in. A merge touches only the words on its pair's list: each such
 * word's pairs are subtracted, the merge applied, and its pairs added back, so the counts equal
 * a full recount at every step without ever doing one. The next merge comes from a max-heap
 * with lazy deletion: a popped entry whose count is stale is pushed again with its current count. */
#include "data/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t *sym;
    uint32_t len;
    uint64_t count;
    int64_t stamp; /* last merge that processed this word */
} Word;

typedef struct {
    uint32_t a, b;
    int64_t count;
    uint32_t *words; /* words the pair has occurred in (may hold stale entries and duplicates) */
    uint32_t n_words, cap_words;
    int64_t stamp, before; /* count before the current merge, recorded at first touch */
} Pair;

typedef struct {
    int64_t count;
    uint32_t a, b, pair;
} HeapItem;

typedef struct {
    /* words */
    Word *words;
    size_t n_words, cap_words;
    BytesMap word_index;
    /* pairs */
    Pair *pairs;
    size_t n_pairs, cap_pairs;
    U64Map pair_index;
    HeapItem *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched;
    size_t n_touched, cap_touched;
    int oom;
} BpeTrainer;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* ---- heap: larger count first, then smaller (a, b) ---- */
static int heap_less(const HeapItem *x, const HeapItem *y) { /* x ranks below y */
    if (x->count != y->count) return x->count < y->count;
    if (x->a != y->a) return x->a > y->a;
    return x->b > y->b;
}

static void heap_push(BpeTrainer *tr, uint32_t pi) {
    if (grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap)) {
        tr->oom = 1;
        return;
    }
    HeapItem it = {tr->pairs[pi].count, tr->pairs[pi].a, tr->pairs[pi].b, pi};
    size_t i = tr->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&tr->heap[parent], &it)) break;
        tr->heap[i] = tr->heap[parent];
        i = parent;
    }
    tr->heap[i] = it;
}

static HeapItem heap_pop(BpeTrainer *tr) {
    HeapItem top = tr->heap[0], last = tr->heap[--tr->n_heap];
    size_t i = 0, n = tr->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&tr->heap[c], &tr->heap[c + 1])) c++;
        if (!heap_less(&last, &tr->heap[c])) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n) tr->heap[i] = last;
    return top;
}

/* ---- pairs ---- */
static uint32_t pair_get(BpeTrainer *tr, uint32_t a, uint32_t b) {
    int inserted;
    uint64_t *v = u64map_put(&tr->pair_index, (uint64_t)a << 32 | b, &inserted);
    if (!v) {
        tr->oom = 1;
        return 0;
    }
    if (inserted) {
        if (grow((void **)&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs)) {
            tr->oom = 1;
            return 0;
        }
        Pair *p = &tr->pairs[tr->n_pairs];
        memset(p, 0, sizeof *p);
        p->a = a, p->b = b, p->stamp = -1;
        *v = tr->n_pairs++;
    }
    return (uint32_t)*v;
}

static void pair_add_word(BpeTrainer *tr, uint32_t pi, uint32_t w) {
    Pair *p = &tr->pairs[pi];
    if (p->n_words && p->words[p->n_words - 1] == w) return;
    size_t cap = p->cap_words;
    if (grow((void **)&p->words, &cap, (size_t)p->n_words + 1, sizeof *p->words)) {
        tr->oom = 1;
        return;
    }
    p->cap_words = (uint32_t)cap;
    p->words[p->n_words++] = w;
}

static void pair_change(BpeTrainer *tr, uint32_t a, uint32_t b, int64_t delta, int64_t merge) {
    uint32_t pi = pair_get(tr, a, b);
    if (tr->oom) return;
    Pair *p = &tr->pairs[pi];
    if (p->stamp != merge) { /* first touch in this merge: remember the old count */
        p->stamp = merge;
        p->before = p->count;
        if (grow((void **)&tr->touched, &tr->cap_touched, tr->n_touched + 1, sizeof *tr->touched)) {
            tr->oom = 1;
            return;
        }
        tr->touched[tr->n_touched++] = pi;
    }
    p->count += delta;
}

/* ---- words from text ---- */
static void count_chunk(const unsigned char *p, size_t n, void *ctx) {
    BpeTrainer *tr = ctx;
    if (tr->oom) return;
    int inserted;
    uint32_t *v = bytesmap_put(&tr->word_index, p, n, &inserted);
    if (!v || grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words)) {
        tr->oom = 1;
        return;
    }
    if (inserted) {
        Word *w = &tr->words[tr->n_words];
        w->sym = malloc(n * sizeof *w->sym);
        if (!w->sym) {
            tr->oom = 1;
            return;
        }
        for (size_t i = 0; i < n; i++) w->sym[i] = p[i];
        w->len = (uint32_t)n;
        w->count = 0;
        w->stamp = -1;
        *v = (uint32_t)tr->n_words++;
    }
    tr->words[*v].count++;
}

static void bpe_trainer_free(BpeTrainer *tr) {
    for (size_t i = 0; i < tr->n_words; i++) free(tr->words[i].sym);
    for (size_t i = 0; i < tr->n_pairs; i++) free(tr->pairs[i].words);
    free(tr->words);
    free(tr->pairs);
    free(tr->heap);
    free(tr->touched);
    bytesmap_free(&tr->word_index);
    u64map_free(&tr->pair_index);
}

/* Merges (a, b) -> id inside one word, left to right, non-overlapping. Returns 1 if it changed. */
static int word_merge(Word *w, uint32_t a, uint32_t b, uint32_t id) {
    uint32_t j = 0;
    int changed = 0;
    for (uint32_t i = 0; i < w->len; i++) {
        if (i + 1 < w->len && w->sym[i] == a && w->sym[i + 1] == b) {
            w->sym[j++] = id;
            i++;
            changed = 1;
        } else {
            w->sym[j++] = w->sym[i];
        }
    }
    w->len = j;
    return changed;
}

int tokenizer_train_bpe(Tokenizer *t, const unsigned char *text, size_t len, int vocab_size, const char *pattern,
                        const char *name, int verbose, Status *st) {
    if (vocab_size < 257 || vocab_size > (1 << 22))
        return status_fail(st, AP_EINVAL, "vocab=%d: a BPE vocabulary needs 257 (256 bytes + end-of-text) to 4194304",
                           vocab_size);
    BpeTrainer tr;
    memset(&tr, 0, sizeof tr);
    Pretok *pre = NULL;
    PretokMatch *match = NULL;
    /* token table: bytes, end-of-text, then merges */
    size_t cap_tok = (size_t)vocab_size + 1, cap_bytes = 4096 + (size_t)vocab_size * 8;
    uint32_t *off = malloc(cap_tok * sizeof *off);
    unsigned char *bytes = malloc(cap_bytes);
    char **names = calloc((size_t)vocab_size, sizeof *names);
    int rc = 0, n = 0;
    if (!off || !bytes || !names || bytesmap_init(&tr.word_index, 1 << 16) || u64map_init(&tr.pair_index, 1 << 16)) {
        rc = status_fail(st, AP_ENOMEM, "out of memory");
        goto done;
    }
    if (pretok_compile(&pre, pattern, st)) {
        rc = -1;
        goto done;
    }
    match = pretok_match_create(pre);
    if (!match) {
        rc = status_fail(st, AP_ENOMEM, "out of memory");
        goto done;
    }
    /* count pre-tokens document by document (merges never cross a separator) */
    size_t pos = 0;
    while (pos < len && !rc) {
        size_t end = pos;
        while (end < len && !(text[end] == 0x1e && end + 1 < len && text[end + 1] == '\n')) end++;
        rc = pretok_split(pre, match, text + pos, end - pos, count_chunk, &tr, st);
        pos = end + TOK_DOC_SEPARATOR_LEN;
    }
    if (!rc && tr.oom) rc = status_fail(st, AP_ENOMEM, "out of memory counting pre-tokens");
    if (rc) goto done;
    if (verbose) printf("bpe: %zu unique pre-tokens from %zu bytes\n", tr.n_words, len);
    off[0] = 0;
    for (int b = 0; b < 256; b++) {
        bytes[b] = (unsigned char)b;
        off[b + 1] = (uint32_t)(b + 1);
    }
    memcpy(bytes + 256, TOK_DOC_SEPARATOR, TOK_DOC_SEPARATOR_LEN);
    off[257] = 256 + TOK_DOC_SEPARATOR_LEN;
    names[256] = "<|endoftext|>";
    n = 257;
    /* initial pair counts */
    for (size_t wi = 0; wi < tr.n_words && !tr.oom; wi++) {
        Word *w = &tr.words[wi];
        for (uint32_t i = 0; i + 1 < w->len; i++) {
            uint32_t pi = pair_get(&tr, w->sym[i], w->sym[i + 1]);
            if (tr.oom) break;
            tr.pairs[pi].count += (int64_t)w->count;
            pair_add_word(&tr, pi, (uint32_t)wi);
        }
    }
    for (size_t pi = 0; pi < tr.n_pairs; pi++) heap_push(&tr, (uint32_t)pi);
    BytesMap existing; /* merged token bytes -> id, to reuse an id when two merges give one string */
    if (bytesmap_init(&existing, (size_t)vocab_size)) tr.oom = 1;
    int64_t merge = 0;
    while (n < vocab_size && tr.n_heap > 0 && !tr.oom) {
        HeapItem top = heap_pop(&tr);
        Pair *p = &tr.pairs[top.pair];
        if (top.count != p->count) { /* stale: requeue with the current count */
            if (p->count > 0) heap_push(&tr, top.pair);
            continue;
        }
        if (p->count <= 0) break;
        uint32_t a = p->a, b = p->b;
        size_t la = off[a + 1] - off[a], lb = off[b + 1] - off[b];
        if (off[n] + la + lb > cap_bytes) {
            cap_bytes = 2 * cap_bytes + la + lb;
            unsigned char *nb = realloc(bytes, cap_bytes);
            if (!nb) {
                tr.oom = 1;
                break;
            }
            bytes = nb;
        }
        unsigned char *dst = bytes + off[n];
        memcpy(dst, bytes + off[a], la);
        memcpy(dst + la, bytes + off[b], lb);
        int inserted;
        uint32_t *ex = bytesmap_put(&existing, dst, la + lb, &inserted);
        if (!ex) {
            tr.oom = 1;
            break;
        }
        uint32_t id;
        if (inserted) {
            id = (uint32_t)n;
            *ex = id;
            off[n + 1] = off[n] + (uint32_t)(la + lb);
            n++;
        } else {
            id = *ex; /* the same string made by another merge path earlier */
        }
        tr.n_touched = 0;
        /* the pair's word list may grow while we walk it (pairs of the new id): copy its length */
        uint32_t nw = p->n_words;
        for (uint32_t k = 0; k < nw && !tr.oom; k++) {
            uint32_t wi = tr.pairs[top.pair].words[k];
            Word *w = &tr.words[wi];
            if (w->stamp == merge) continue;
            w->stamp = merge;
            int64_t c = (int64_t)w->count;
            int has = 0;
            for (uint32_t i = 0; i + 1 < w->len; i++)
                if (w->sym[i] == a && w->sym[i + 1] == b) has = 1;
            if (!has) continue;
            for (uint32_t i = 0; i + 1 < w->len; i++) pair_change(&tr, w->sym[i], w->sym[i + 1], -c, merge);
            word_merge(w, a, b, id);
            for (uint32_t i = 0; i + 1 < w->len; i++) {
                pair_change(&tr, w->sym[i], w->sym[i + 1], c, merge);
                if (w->sym[i] == id || w->sym[i + 1] == id)
                    pair_add_word(&tr, pair_get(&tr, w->sym[i], w->sym[i + 1]), wi);
            }
        }
        for (size_t k = 0; k < tr.n_touched; k++) {
            Pair *q = &tr.pairs[tr.touched[k]];
            if (q->count > q->before) heap_push(&tr, tr.touched[k]);
        }
        merge++;
        if (verbose && merge % 1000 == 0) printf("bpe: %lld merges, vocabulary %d\n", (long long)merge, n);
    }
    bytesmap_free(&existing);
    if (tr.oom) {
        rc = status_fail(st, AP_ENOMEM, "out of memory during BPE training");
        goto done;
    }
    if (n < vocab_size && verbose)
        printf("bpe: the text has no more pairs to merge; vocabulary stops at %d of %d\n", n, vocab_size);
    rc = tokenizer_build(t, TOK_BPE, name, pattern, n, off, bytes, names, 256, st);
done:
    pretok_match_free(match);
    pretok_free(pre);
    bpe_trainer_free(&tr);
    free(off);
    free(bytes);
    free(names);
    return rc;
}
