/* quality.c - degraded and filtered corpora (see quality.h). */
#include "data/quality.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "data/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int is_sep(const unsigned char *p, size_t i, size_t len) { return p[i] == 0x1e && i + 1 < len && p[i + 1] == '\n'; }

int quality_docs(const unsigned char *text, size_t len, DocSpan **spans, size_t *n, Status *st) {
    size_t count = 0, cap = 0;
    DocSpan *s = NULL;
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && !is_sep(text, end, len)) end++;
        if (count == cap) {
            cap = cap ? 2 * cap : 1024;
            DocSpan *grown = realloc(s, cap * sizeof *s);
            if (!grown) return free(s), status_fail(st, AP_ENOMEM, "out of memory listing documents");
            s = grown;
        }
        s[count++] = (DocSpan){pos, end - pos};
        pos = end < len ? end + TOK_DOC_SEPARATOR_LEN : len;
    }
    *spans = s, *n = count;
    return 0;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

void quality_shuffle_words(const unsigned char *doc, size_t len, uint64_t seed, unsigned char *out) {
    size_t n_words = 0;
    for (size_t i = 0; i < len; i++) n_words += !is_space(doc[i]) && (i == 0 || is_space(doc[i - 1]));
    DocSpan *w = n_words ? malloc(n_words * sizeof *w) : NULL;
    if (!w) { /* no words, or no memory for their list: the document as it is */
        memcpy(out, doc, len);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        if (is_space(doc[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !is_space(doc[j])) j++;
        w[k++] = (DocSpan){i, j - i};
        i = j;
    }
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = n_words - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(&r, i + 1);
        DocSpan t = w[i];
        w[i] = w[j], w[j] = t;
    }
    /* the whitespace runs stay where they were; the word slots between them take the permuted words,
     * whose lengths differ, so the text is rebuilt left to right: same bytes in total */
    size_t o = 0;
    k = 0;
    for (size_t i = 0; i < len;) {
        if (is_space(doc[i])) {
            out[o++] = doc[i++];
            continue;
        }
        while (i < len && !is_space(doc[i])) i++;
        memcpy(out + o, doc + w[k].off, w[k].len);
        o += w[k++].len;
    }
    free(w);
}

void quality_choose(size_t n, double frac, uint64_t seed, unsigned char *mark) {
    memset(mark, 0, n);
    size_t want = (size_t)llround(frac * (double)n);
    if (want > n) want = n;
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) abort(); /* a few bytes per document: the documents themselves are far larger */
    for (size_t i = 0; i < n; i++) idx[i] = i;
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < want; i++) { /* a partial Fisher-Yates: the first `want` are a uniform choice */
        size_t j = i + (size_t)rng_below(&r, n - i);
        size_t t = idx[i];
        idx[i] = idx[j], idx[j] = t;
        mark[idx[i]] = 1;
    }
    free(idx);
}

typedef struct {
    double score;
    size_t index;
} Ranked;

static int by_score(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    int xn = isnan(x->score), yn = isnan(y->score);
    if (xn != yn) return xn - yn; /* NaN last */
    if (!xn && x->score != y->score) return x->score < y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

double quality_keep_lowest(const double *score, size_t n, double frac, unsigned char *keep) {
    memset(keep, 0, n);
    size_t want = (size_t)llround(frac * (double)n);
    if (want < 1) want = 1;
    if (want > n) want = n;
    Ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) abort();
    for (size_t i = 0; i < n; i++) r[i] = (Ranked){score[i], i};
    qsort(r, n, sizeof *r, by_score);
    double threshold = NAN;
    for (size_t i = 0; i < want && !isnan(r[i].score); i++) keep[r[i].index] = 1, threshold = r[i].score;
    free(r);
    return threshold;
}

static int write_manifest(const Corpus *c, const Corpus *src, const Derivation *how, Status *st) {
    StrBuf text = {0};
    JsonWriter w;
    jw_init(&w, &text);
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    jw_object_begin(&w);
    jw_key(&w, "name"), jw_string(&w, c->name);
    jw_key(&w, "description"), jw_string(&w, "derived from another corpus along a quality axis (claim C10)");
    jw_key(&w, "built"), jw_string(&w, when);
    jw_key(&w, "split"), jw_string(&w, "the source's held-out documents, copied unchanged");
    jw_key(&w, "val_frac"), jw_number(&w, "%.6g", src->val_frac);
    jw_key(&w, "docs_train"), jw_int(&w, (long long)c->docs[0]);
    jw_key(&w, "docs_val"), jw_int(&w, (long long)c->docs[1]);
    jw_key(&w, "bytes_train"), jw_int(&w, (long long)c->bytes[0]);
    jw_key(&w, "bytes_val"), jw_int(&w, (long long)c->bytes[1]);
    jw_key(&w, "sha256_train"), jw_string(&w, c->sha256[0]);
    jw_key(&w, "sha256_val"), jw_string(&w, c->sha256[1]);
    jw_key(&w, "derived"), jw_object_begin(&w);
    jw_key(&w, "source"), jw_string(&w, how->source);
    jw_key(&w, "source_sha256_train"), jw_string(&w, how->source_sha256);
    jw_key(&w, "noise"), jw_number(&w, "%.6g", how->noise);
    jw_key(&w, "score"), jw_string(&w, how->score[0] ? how->score : "none");
    jw_key(&w, "model"), jw_string(&w, how->model);
    jw_key(&w, "keep"), jw_number(&w, "%.6g", how->keep);
    jw_key(&w, "threshold"), jw_number(&w, "%.9g", how->threshold);
    jw_key(&w, "seed"), jw_int(&w, (long long)how->seed);
    jw_key(&w, "docs_in"), jw_int(&w, (long long)how->docs_in);
    jw_key(&w, "docs_noised"), jw_int(&w, (long long)how->docs_noised);
    jw_key(&w, "docs_kept"), jw_int(&w, (long long)how->docs_kept);
    jw_object_end(&w);
    jw_key(&w, "files"), jw_object_begin(&w);
    jw_key(&w, "train"), jw_string(&w, "train.txt");
    jw_key(&w, "val"), jw_string(&w, "val.txt");
    jw_key(&w, "document_separator"), jw_string(&w, TOK_DOC_SEPARATOR);
    jw_object_end(&w);
    jw_object_end(&w);
    sb_putc(&text, '\n');
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.json", c->dir);
    int rc = text.failed ? status_fail(st, AP_ENOMEM, "out of memory writing the corpus manifest")
                         : file_write_atomic(path, text.s, text.len, st);
    sb_free(&text);
    return rc;
}

int quality_write_corpus(Corpus *out, const Corpus *src, const char *name, const char *data_dir,
                         const unsigned char *text, const DocSpan *spans, size_t n, const unsigned char *keep,
                         const Derivation *how, Status *st) {
    memset(out, 0, sizeof *out);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return status_fail(st, AP_EINVAL, "corpus name '%s': use lower-case letters, digits, '-' and '_'", name);
    if (!name[0] || strlen(name) >= sizeof out->name)
        return status_fail(st, AP_EINVAL, "corpus name '%s': 1 to %zu characters", name, sizeof out->name - 1);
    if (!strcmp(name, src->name))
        return status_fail(st, AP_EINVAL, "out=%s: a derived corpus needs a name of its own", name);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->dir, sizeof out->dir, "%s/%s", data_dir, name);
    out->val_frac = src->val_frac;
    if (dir_create(out->dir, st)) return -1;
    char path[700];
    snprintf(path, sizeof path, "%s/manifest.json", out->dir);
    unlink(path); /* an older corpus of this name stops existing before its files change */
    /* the held-out text first, copied unchanged: it must hash as the source's */
    char *val;
    size_t val_len;
    snprintf(path, sizeof path, "%s/val.txt", src->dir);
    if (file_read_all(path, &val, &val_len, (size_t)1 << 34, st)) return -1;
    sha256_hex(val, val_len, out->sha256[1]);
    if (strcmp(out->sha256[1], src->sha256[1])) {
        free(val);
        return status_fail(st, AP_ECORRUPT, "%s no longer matches its manifest (sha256 %s, recorded %s): rebuild "
                           "corpus '%s'", path, out->sha256[1], src->sha256[1], src->name);
    }
    snprintf(path, sizeof path, "%s/val.txt", out->dir);
    int rc = file_write_atomic(path, val, val_len, st);
    free(val);
    out->docs[1] = src->docs[1], out->bytes[1] = src->bytes[1];
    if (rc) return -1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i]) total += spans[i].len + TOK_DOC_SEPARATOR_LEN;
    unsigned char *train = malloc(total ? total : 1);
    if (!train) return status_fail(st, AP_ENOMEM, "out of memory writing corpus '%s'", name);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        memcpy(train + o, text + spans[i].off, spans[i].len);
        memcpy(train + o + spans[i].len, TOK_DOC_SEPARATOR, TOK_DOC_SEPARATOR_LEN);
        o += spans[i].len + TOK_DOC_SEPARATOR_LEN;
        out->docs[0]++, out->bytes[0] += spans[i].len;
    }
    sha256_hex(train, total, out->sha256[0]);
    snprintf(path, sizeof path, "%s/train.txt", out->dir);
    rc = file_write_atomic(path, train, total, st);
    free(train);
    /* the manifest last: a corpus without one does not exist, so a crash leaves nothing half-made */
    return rc ? -1 : write_manifest(out, src, how, st);
}
