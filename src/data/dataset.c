/* dataset.c - a run's tokens and their order (see dataset.h). */
#include "data/dataset.h"

#include "core/fileio.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/corpus.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dataset_data_dir(void) {
    const char *env = getenv("ALGOPROG_DATA");
    return env && env[0] ? env : "data";
}

int dataset_tokenizer_path(const char *name, char *path, size_t size, Status *st) {
    if (!strcmp(name, "bytes") || strchr(name, '/') || strstr(name, ".tok")) {
        snprintf(path, size, "%s", name);
        return 0;
    }
    snprintf(path, size, "%s/tokenizers/%s.tok", dataset_data_dir(), name);
    if (!file_exists(path))
        return status_fail(st, AP_EINVAL, "no tokenizer '%s' (looked for %s); train one with `algoprog tokenize train`",
                           name, path);
    return 0;
}

static int open_cached_shard(Dataset *d, int split, const char *path, const char *text_path, uint64_t text_hash,
                             Status *st);
static int encode_shard(Dataset *d, int split, const char *path, const char *text_path, uint64_t bytes, uint64_t docs,
                        uint64_t text_hash, Status *st);

/* Tokens of one split of a corpus, from the shard cache or encoded now and cached. */
static int corpus_shard(Dataset *d, const Corpus *c, int split, Status *st) {
    static const char *names[2] = {"train", "val"};
    char dir[700], path[900], text_path[700], tname[64];
    size_t k = 0;
    for (const char *p = d->tok.name; *p && k + 1 < sizeof tname; p++) /* the name goes into a file name */
        tname[k++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
    tname[k] = '\0';
    snprintf(dir, sizeof dir, "%s/shards", c->dir);
    snprintf(path, sizeof path, "%s/%s-%016llx.%s.bin", dir, tname, (unsigned long long)d->tok.hash, names[split]);
    snprintf(text_path, sizeof text_path, "%s/%s.txt", c->dir, names[split]);
    uint64_t text_hash;
    unsigned char digest[32];
    for (int i = 0; i < 8; i++) {
        unsigned hi, lo;
        sscanf(c->sha256[split] + 2 * i, "%1x%1x", &hi, &lo);
        digest[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(&text_hash, digest, 8);
    if (file_exists(path)) return open_cached_shard(d, split, path, text_path, text_hash, st);
    /* Several processes may want the same shard at once (a study's workers on a fresh corpus): one
     * encodes it under the lock, the others wait and open what it wrote. */
    char lock_path[920];
    int lock_fd = -1;
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    if (dir_create(dir, st) || file_lock_wait(lock_path, "the shard cache", &lock_fd, st)) return -1;
    int rc = file_exists(path) ? open_cached_shard(d, split, path, text_path, text_hash, st)
                               : encode_shard(d, split, path, text_path, c->bytes[split], c->docs[split], text_hash, st);
    file_unlock(lock_fd);
    return rc;
}

static int open_cached_shard(Dataset *d, int split, const char *path, const char *text_path, uint64_t text_hash,
                             Status *st) {
    if (shard_open(&d->shard[split], path, &d->tok, st)) return -1;
    if (d->shard[split].text_hash != text_hash) {
        shard_close(&d->shard[split]);
        return status_fail(st, AP_EINVAL, "shard '%s' was made from another version of %s (rebuild: delete it)", path,
                           text_path);
    }
    return 0;
}

static int encode_shard(Dataset *d, int split, const char *path, const char *text_path, uint64_t bytes, uint64_t docs,
                        uint64_t text_hash, Status *st) {
    char *text;
    size_t len;
    if (file_read_all(text_path, &text, &len, (size_t)1 << 36, st)) return -1;
    fprintf(stderr, "encoding %s with tokenizer '%s' (%.1f MB) ...\n", text_path, d->tok.name, len / 1e6);
    TokenList ids = {0};
    int rc = tokenizer_encode_parallel(&d->tok, (const unsigned char *)text, len, &ids, st);
    free(text);
    if (!rc) rc = shard_write(path, &d->tok, ids.ids, ids.n, bytes, docs, text_hash, st);
    tokenlist_free(&ids);
    if (!rc) rc = shard_open(&d->shard[split], path, &d->tok, st);
    return rc;
}

static uint64_t count_bytes(const Tokenizer *t, const uint32_t *ids, size_t n) {
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++) b += tokenizer_byte_count(t, (int)ids[i]);
    return b;
}

static int text_source(Dataset *d, const char *path, double val_frac, Status *st) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, (size_t)1 << 34, st)) return status_wrap(st, "data");
    TokenList ids = {0};
    int rc = tokenizer_encode_parallel(&d->tok, (const unsigned char *)text, len, &ids, st);
    free(text);
    if (rc) return -1;
    size_t n_val = (size_t)((double)ids.n * val_frac), n_train = ids.n - n_val;
    d->mem[0] = malloc((n_train ? n_train : 1) * sizeof(uint32_t));
    d->mem[1] = malloc((n_val ? n_val : 1) * sizeof(uint32_t));
    if (!d->mem[0] || !d->mem[1]) {
        tokenlist_free(&ids);
        return status_fail(st, AP_ENOMEM, "out of memory for the tokens of '%s'", path);
    }
    memcpy(d->mem[0], ids.ids, n_train * sizeof(uint32_t));
    memcpy(d->mem[1], ids.ids + n_train, n_val * sizeof(uint32_t));
    d->n[0] = n_train;
    d->n[1] = n_val;
    d->bytes[0] = count_bytes(&d->tok, d->mem[0], n_train);
    d->bytes[1] = count_bytes(&d->tok, d->mem[1], n_val);
    tokenlist_free(&ids);
    return 0;
}

static double unigram_bpb(const Dataset *d) {
    size_t n = d->n[1];
    if (n == 0 || d->bytes[1] == 0) return NAN;
    uint64_t *counts = calloc((size_t)d->tok.n_tokens, sizeof *counts);
    if (!counts) return NAN;
    for (size_t i = 0; i < n; i++) counts[dataset_token(d, 1, i)]++;
    double bits = 0.0;
    for (int v = 0; v < d->tok.n_tokens; v++)
        if (counts[v]) bits -= (double)counts[v] * log2((double)counts[v] / (double)n);
    free(counts);
    return bits / (double)d->bytes[1];
}

/* Whether data= names a corpus (a directory with manifest.json, or a name under the data directory
 * that is not also a file) rather than a text file. */
static int names_corpus(const char *data) {
    char manifest[700], named[700];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", data);
    snprintf(named, sizeof named, "%s/%s/manifest.json", dataset_data_dir(), data);
    return file_exists(manifest) || (!strchr(data, '/') && !file_exists(data) && file_exists(named));
}

static int hash_file(Sha256 *h, const char *path, Status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) return status_errno(st, errno, "cannot read %s", path);
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) sha256_update(h, buf, n);
    int bad = ferror(f);
    free(buf);
    fclose(f);
    return bad ? status_fail(st, AP_EIO, "error reading %s", path) : 0;
}

int dataset_fingerprint(const char *data, char hex[65], Status *st) {
    if (!data || !data[0]) return status_fail(st, AP_EINVAL, "no training data: set data=CORPUS or data=FILE");
    Sha256 h;
    sha256_init(&h);
    if (names_corpus(data)) {
        Corpus c;
        char path[700];
        if (corpus_open(&c, data, dataset_data_dir(), st)) return -1;
        for (int s = 0; s < 2; s++) {
            snprintf(path, sizeof path, "%s/%s", c.dir, s ? "val.txt" : "train.txt");
            if (hash_file(&h, path, st)) return -1;
        }
    } else if (!file_exists(data)) {
        return status_fail(st, AP_EINVAL, "data '%s': no such file or corpus", data);
    } else if (hash_file(&h, data, st)) {
        return -1;
    }
    unsigned char digest[32];
    sha256_final(&h, digest);
    sha256_to_hex(digest, hex);
    return 0;
}

int dataset_open(Dataset *d, const char *data, const char *tokenizer, double val_frac, uint64_t max_unique, int T,
                 uint64_t seed, Status *st) {
    memset(d, 0, sizeof *d);
    d->T = T;
    d->seed = seed;
    if (!data || !data[0]) return status_fail(st, AP_EINVAL, "no training data: set data=CORPUS or data=FILE");
    char tpath[700];
    if (dataset_tokenizer_path(tokenizer, tpath, sizeof tpath, st) || tokenizer_load(&d->tok, tpath, st)) return -1;
    int rc;
    if (names_corpus(data)) {
        Corpus c;
        rc = corpus_open(&c, data, dataset_data_dir(), st);
        if (!rc) rc = corpus_shard(d, &c, 0, st);
        if (!rc) rc = corpus_shard(d, &c, 1, st);
        if (!rc) {
            d->source_is_corpus = 1;
            for (int s = 0; s < 2; s++) {
                d->n[s] = d->shard[s].n_tokens;
                d->bytes[s] = d->shard[s].n_bytes;
            }
            snprintf(d->desc, sizeof d->desc, "corpus %s (%s)", c.name, c.dir);
        }
    } else {
        if (!file_exists(data)) {
            if (strchr(data, '/')) return status_fail(st, AP_EINVAL, "data '%s': no such file or corpus directory", data);
            return status_fail(st, AP_EINVAL,
                               "data '%s' is not a file, and there is no corpus of that name in %s/ (build it with "
                               "`algoprog corpus build %s`)",
                               data, dataset_data_dir(), data);
        }
        rc = text_source(d, data, val_frac, st);
        snprintf(d->desc, sizeof d->desc, "%s", data);
    }
    if (rc) {
        dataset_free(d);
        return -1;
    }
    size_t need = (size_t)T + 1;
    /* held out: a window for the validation half and one for the test half (docs/FORMATS.md) */
    if (d->n[0] < need || d->n[1] < 2 * (size_t)T + 1) {
        size_t n0 = d->n[0], n1 = d->n[1];
        dataset_free(d);
        return status_fail(st, AP_EINVAL,
                           "data '%s' has %zu training and %zu held-out tokens: too small for windows of %zu "
                           "(context+1) tokens (training needs one, the held-out part two: validation and "
                           "test); use more text, a larger val_frac or a shorter context",
                           data, n0, n1, need);
    }
    d->unique = d->n[0];
    if (max_unique > 0 && max_unique < d->unique) {
        if (max_unique < need) {
            dataset_free(d);
            return status_fail(st, AP_EINVAL, "max_unique_tokens=%llu is smaller than one window (%zu tokens)",
                               (unsigned long long)max_unique, need);
        }
        d->unique = (size_t)max_unique;
    }
    d->n_windows = (d->unique - 1) / (size_t)T;
    d->perm = malloc(d->n_windows * sizeof *d->perm);
    if (!d->perm) {
        dataset_free(d);
        return status_fail(st, AP_ENOMEM, "out of memory for %zu windows", d->n_windows);
    }
    d->val_unigram_bpb = unigram_bpb(d);
    return 0;
}

void dataset_free(Dataset *d) {
    for (int s = 0; s < 2; s++) {
        shard_close(&d->shard[s]);
        free(d->mem[s]);
    }
    free(d->perm);
    tokenizer_free(&d->tok);
    memset(d, 0, sizeof *d);
}

/* Fisher-Yates with a stream seeded by (seed, epoch): any epoch's order can be rebuilt alone. */
static void make_perm(Dataset *d, uint64_t epoch) {
    Rng r;
    rng_seed(&r, d->seed ^ 0x5851f42d4c957f2dULL ^ (epoch * 0x9e3779b97f4a7c15ULL));
    for (size_t i = 0; i < d->n_windows; i++) d->perm[i] = (uint32_t)i;
    for (size_t i = d->n_windows; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        uint32_t t = d->perm[i - 1];
        d->perm[i - 1] = d->perm[j];
        d->perm[j] = t;
    }
    d->perm_epoch = epoch;
    d->perm_valid = 1;
}

int dataset_use_streams(Dataset *d, int B, Status *st) {
    d->streams = B;
    d->stream_len = d->unique / (size_t)B;
    if (d->stream_len < (size_t)d->T + 1)
        return status_fail(st, AP_EINVAL, "%zu training tokens make %d streams of %zu tokens: shorter than one chunk "
                           "of %d+1; use fewer batch rows or more data", d->unique, B, d->stream_len, d->T);
    d->stream_steps = (d->stream_len - 1) / (size_t)d->T;
    return 0;
}

int dataset_train_batch(Dataset *d, DataCursor *cur, int B, int *inputs, int *targets) {
    int T = d->T;
    if (d->streams) {
        if (cur->pos >= d->stream_steps) {
            cur->epoch++;
            cur->pos = 0;
        }
        int restart = cur->pos == 0;
        for (int b = 0; b < B; b++) {
            size_t start = (size_t)b * d->stream_len + (size_t)cur->pos * (size_t)T;
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = (int)dataset_token(d, 0, start + (size_t)t);
                targets[b * T + t] = (int)dataset_token(d, 0, start + (size_t)t + 1);
            }
        }
        cur->pos++;
        return restart;
    }
    for (int b = 0; b < B; b++) {
        if (cur->pos >= d->n_windows) {
            cur->epoch++;
            cur->pos = 0;
        }
        if (!d->perm_valid || d->perm_epoch != cur->epoch) make_perm(d, cur->epoch);
        size_t start = (size_t)d->perm[cur->pos++] * (size_t)T;
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = (int)dataset_token(d, 0, start + (size_t)t);
            targets[b * T + t] = (int)dataset_token(d, 0, start + (size_t)t + 1);
        }
    }
    return 0;
}

double dataset_epochs(const Dataset *d, double tokens) { return tokens / (double)d->unique; }

/* Held-out windows of context+1 tokens stepping by context; the first half validates, the rest tests. */
static size_t held_out_windows(const Dataset *d) { return d->n[1] > 0 ? (d->n[1] - 1) / (size_t)d->T : 0; }

size_t dataset_eval_windows(const Dataset *d, EvalPart part) {
    size_t all = held_out_windows(d), val = all / 2;
    return part == EVAL_VAL ? val : all - val;
}

/* Windows an evaluation of `tokens` tokens reads from the start of a part (at least one). */
static size_t eval_windows_used(const Dataset *d, EvalPart part, long tokens) {
    size_t have = dataset_eval_windows(d, part);
    size_t want = tokens > 0 ? ((size_t)tokens + (size_t)d->T - 1) / (size_t)d->T : have;
    size_t w = want < have ? want : have;
    return w ? w : 1;
}

int dataset_eval_batches(const Dataset *d, EvalPart part, int B, long tokens) {
    return (int)((eval_windows_used(d, part, tokens) + (size_t)B - 1) / (size_t)B);
}

void dataset_eval_batch(const Dataset *d, EvalPart part, int k, int B, int *inputs, int *targets, uint64_t *bytes,
                        uint64_t *row_bytes) {
    int T = d->T;
    size_t have = dataset_eval_windows(d, part);
    size_t first = part == EVAL_VAL ? 0 : held_out_windows(d) / 2;
    for (int b = 0; b < B; b++) {
        size_t w = (size_t)k * (size_t)B + (size_t)b, s = (first + w) * (size_t)T;
        if (row_bytes) row_bytes[b] = 0;
        for (int t = 0; t < T; t++) {
            if (w < have) {
                uint32_t tgt = dataset_token(d, 1, s + (size_t)t + 1);
                inputs[b * T + t] = (int)dataset_token(d, 1, s + (size_t)t);
                targets[b * T + t] = (int)tgt;
                uint64_t nb = tokenizer_byte_count(&d->tok, (int)tgt);
                *bytes += nb;
                if (row_bytes) row_bytes[b] += nb;
            } else {
                inputs[b * T + t] = 0;
                targets[b * T + t] = -1;
            }
        }
    }
}
