/* tiktoken.c - tiktoken rank files to algoprog tokenizers (see tiktoken.h). */
#include "data/tiktoken.h"

#include "core/fileio.h"
#include "core/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIKTOKEN_MAX_TOKENS (1 << 22)

int tiktoken_known(const char *name) {
    static const char *const names[] = {"gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* ---- base64 ---- */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes n base64 characters (with '=' padding) into out; returns the byte count or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out) {
    if (n == 0 || n % 4) return -1;
    long len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) v[k] = s[i + k] == '=' ? 0 : b64_value((unsigned char)s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) return -1;
        int pad = (s[i + 3] == '=') + (s[i + 2] == '=');
        if (pad && i + 4 != n) return -1;
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[len++] = (unsigned char)(w >> 16);
        if (pad < 2) out[len++] = (unsigned char)(w >> 8);
        if (pad < 1) out[len++] = (unsigned char)w;
    }
    return len;
}

/* ---- the import ---- */

typedef struct {
    JsonDoc doc; /* every string below points into it */
    const char *pattern;
    const char *ranks; /* the bpe_ranks string */
    const char *special_names[64];
    long long special_ids[64];
    int n_special;
    long long explicit_n;
} RankFile;

static void rankfile_free(RankFile *r) { json_free(&r->doc); }

/* A string with no \u0000 inside (the C string is all of it). */
static const char *plain_string(const JsonValue *v) {
    return v->type == JSON_STRING && strlen(v->string) == v->len ? v->string : NULL;
}

/* A whole number that fits a long long, from its text. */
static int whole_number(const JsonValue *v, long long *out) {
    if (v->type != JSON_NUMBER || strpbrk(v->string, ".eE")) return -1;
    errno = 0;
    *out = strtoll(v->string, NULL, 10);
    return errno ? -1 : 0;
}

static int parse_rankfile(RankFile *r, const char *text, size_t len, const char *path, Status *st) {
    memset(r, 0, sizeof *r);
    r->explicit_n = -1;
    if (json_parse(&r->doc, text, len, path, st)) return -1;
    const JsonValue *root = r->doc.root;
    if (root->type != JSON_OBJECT) return status_fail(st, AP_ECORRUPT, "'%s' is not a JSON object", path);
    for (const JsonValue *m = root->child; m; m = m->next) { /* a repeated key: the last one counts */
        int bad = 0;
        if (!strcmp(m->key, "pat_str")) {
            bad = !(r->pattern = plain_string(m));
        } else if (!strcmp(m->key, "bpe_ranks")) {
            bad = !(r->ranks = plain_string(m));
        } else if (!strcmp(m->key, "explicit_n_vocab")) {
            bad = whole_number(m, &r->explicit_n);
        } else if (!strcmp(m->key, "special_tokens")) {
            bad = m->type != JSON_OBJECT || m->n > 64;
            r->n_special = 0;
            for (const JsonValue *sp = bad ? NULL : m->child; sp && !bad; sp = sp->next) {
                long long id = -1;
                bad = whole_number(sp, &id) || id < 0 || id >= TIKTOKEN_MAX_TOKENS || strchr(sp->key, '"') ||
                      strlen(sp->key) > 300;
                r->special_names[r->n_special] = sp->key;
                r->special_ids[r->n_special++] = id;
            }
        } else {
            bad = 1;
        }
        if (bad) return status_fail(st, AP_ECORRUPT, "'%s': bad or unexpected value for \"%s\"", path, m->key);
    }
    if (!r->pattern || !r->ranks || r->n_special == 0)
        return status_fail(st, AP_ECORRUPT, "'%s': needs pat_str, bpe_ranks and special_tokens", path);
    return 0;
}

int tiktoken_import(Tokenizer *t, const char *json_path, const char *name, Status *st) {
    char *text;
    size_t len;
    if (file_read_all(json_path, &text, &len, (size_t)1 << 30, st)) return -1;
    RankFile r;
    int rc = parse_rankfile(&r, text, len, json_path, st);
    free(text);
    if (rc) {
        rankfile_free(&r);
        return -1;
    }
    /* pass 1: rank of every token, bytes concatenated in rank order as they come */
    size_t cap = strlen(r.ranks) + 16, nb = 0, n_alloc = 1024;
    unsigned char *bytes = malloc(cap);
    long long *rank_of = malloc(n_alloc * sizeof *rank_of);
    uint32_t *start = malloc(n_alloc * sizeof *start);
    size_t count = 0;
    long long next = 0, max_id = -1;
    const char *p = r.ranks;
    while (!rc && bytes && rank_of && start && *p) {
        while (*p == ' ' || *p == '\n') p++;
        if (!*p) break;
        size_t w = strcspn(p, " \n");
        if (w == 1 && *p == '!') { /* "! N": the ranks continue from N */
            p += 1;
            char *e;
            next = strtoll(p, &e, 10);
            if (e == p || next < 0 || next >= TIKTOKEN_MAX_TOKENS) rc = status_fail(st, AP_ECORRUPT, "'%s': bad rank marker", json_path);
            p = e;
            continue;
        }
        if (count == n_alloc) {
            n_alloc *= 2;
            long long *a = realloc(rank_of, n_alloc * sizeof *rank_of);
            uint32_t *b = realloc(start, n_alloc * sizeof *start);
            if (a) rank_of = a;
            if (b) start = b;
            if (!a || !b) {
                rc = status_fail(st, AP_ENOMEM, "out of memory");
                break;
            }
        }
        long got = b64_decode(p, w, bytes + nb);
        if (got <= 0 || next >= TIKTOKEN_MAX_TOKENS) {
            rc = status_fail(st, AP_ECORRUPT, "'%s': bad base64 token '%.*s' at rank %lld", json_path, (int)(w < 40 ? w : 40), p,
                             next);
            break;
        }
        start[count] = (uint32_t)nb;
        rank_of[count++] = next;
        if (next > max_id) max_id = next;
        nb += (size_t)got;
        next++;
        p += w;
    }
    if (!rc && (!bytes || !rank_of || !start)) rc = status_fail(st, AP_ENOMEM, "out of memory");
    int eot = -1;
    for (int i = 0; !rc && i < r.n_special; i++) {
        if (r.special_ids[i] > max_id) max_id = r.special_ids[i];
        if (!strcmp(r.special_names[i], "<|endoftext|>")) eot = (int)r.special_ids[i];
    }
    long long n = max_id + 1;
    if (!rc && r.explicit_n > 0 && r.explicit_n != n)
        rc = status_fail(st, AP_ECORRUPT, "'%s': %lld ids but explicit_n_vocab = %lld", json_path, n, r.explicit_n);
    /* pass 2: the id table; ids with no token become reserved specials */
    uint32_t *off = NULL;
    unsigned char *table = NULL;
    char **names = NULL;
    long long *tok_of_id = NULL;
    if (!rc) {
        off = malloc(((size_t)n + 1) * sizeof *off);
        table = malloc(nb ? nb : 1);
        names = calloc((size_t)n, sizeof *names);
        tok_of_id = malloc((size_t)n * sizeof *tok_of_id);
        if (!off || !table || !names || !tok_of_id) rc = status_fail(st, AP_ENOMEM, "out of memory");
    }
    if (!rc) {
        for (long long i = 0; i < n; i++) tok_of_id[i] = -1;
        for (size_t k = 0; k < count && !rc; k++) {
            if (tok_of_id[rank_of[k]] >= 0) rc = status_fail(st, AP_ECORRUPT, "'%s': rank %lld appears twice", json_path, rank_of[k]);
            tok_of_id[rank_of[k]] = (long long)k;
        }
        for (int i = 0; i < r.n_special && !rc; i++) {
            if (tok_of_id[r.special_ids[i]] >= 0 || names[r.special_ids[i]])
                rc = status_fail(st, AP_ECORRUPT, "'%s': special %s reuses id %lld", json_path, r.special_names[i],
                                 r.special_ids[i]);
            else if (!(names[r.special_ids[i]] = strdup(r.special_names[i])))
                rc = status_fail(st, AP_ENOMEM, "out of memory");
        }
    }
    size_t used = 0;
    for (long long i = 0; !rc && i < n; i++) {
        off[i] = (uint32_t)used;
        long long k = tok_of_id[i];
        if (k >= 0) {
            size_t l = (k + 1 < (long long)count ? start[k + 1] : nb) - start[k];
            memcpy(table + used, bytes + start[k], l);
            used += l;
        } else if (!names[i]) {
            char buf[48];
            snprintf(buf, sizeof buf, "<|reserved_%lld|>", i);
            if (!(names[i] = strdup(buf))) rc = status_fail(st, AP_ENOMEM, "out of memory");
        }
    }
    if (!rc) {
        off[n] = (uint32_t)used;
        rc = tokenizer_build(t, TOK_BPE, name, r.pattern, (int)n, off, table, names, eot, st);
        if (rc) status_wrap(st, "importing '%s'", json_path);
    }
    if (names)
        for (long long i = 0; i < n; i++) free(names[i]);
    free(names), free(off), free(table), free(tok_of_id), free(bytes), free(rank_of), free(start);
    rankfile_free(&r);
    return rc;
}
