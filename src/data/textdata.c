/* textdata.c - byte-level text and its fixed split (see textdata.h). */
#include "data/textdata.h"

#include "core/fileio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int textdata_load(TextData *d, const char *path, double val_frac, int T, Status *st) {
    memset(d, 0, sizeof *d);
    if (!path || !path[0]) return status_fail(st, AP_EINVAL, "no training text: set data=FILE");
    char *buf;
    size_t len;
    if (file_read_all(path, &buf, &len, (size_t)1 << 34, st)) return status_wrap(st, "data");
    size_t val = (size_t)((double)len * val_frac);
    size_t need = (size_t)T + 1;
    if (val < need || len - val < need) {
        free(buf);
        return status_fail(st, AP_EINVAL,
                           "data '%s' has %zu bytes: too small to hold out %.3g of it and still have %zu-byte "
                           "windows (context+1) on both sides",
                           path, len, val_frac, need);
    }
    d->bytes = (unsigned char *)buf;
    d->len = len;
    d->train_len = len - val;
    snprintf(d->path, sizeof d->path, "%s", path);
    return 0;
}

void textdata_free(TextData *d) {
    free(d->bytes);
    d->bytes = NULL;
}

void textdata_train_batch(const TextData *d, Rng *rng, int B, int T, int *inputs, int *targets) {
    uint64_t starts = (uint64_t)(d->train_len - (size_t)T - 1) + 1;
    for (int b = 0; b < B; b++) {
        size_t s = (size_t)rng_below(rng, starts);
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = d->bytes[s + (size_t)t];
            targets[b * T + t] = d->bytes[s + (size_t)t + 1];
        }
    }
}

static size_t val_windows(const TextData *d, int T) { return (d->len - d->train_len - 1) / (size_t)T; }

int textdata_val_batches(const TextData *d, int B, int T, long eval_tokens) {
    size_t want = ((size_t)eval_tokens + (size_t)T - 1) / (size_t)T, have = val_windows(d, T);
    size_t windows = want < have ? want : have;
    if (windows == 0) windows = 1;
    return (int)((windows + (size_t)B - 1) / (size_t)B);
}

void textdata_val_batch(const TextData *d, int k, int B, int T, int *inputs, int *targets) {
    size_t have = val_windows(d, T);
    for (int b = 0; b < B; b++) {
        size_t w = (size_t)k * (size_t)B + (size_t)b;
        size_t s = d->train_len + w * (size_t)T;
        for (int t = 0; t < T; t++) {
            if (w < have) {
                inputs[b * T + t] = d->bytes[s + (size_t)t];
                targets[b * T + t] = d->bytes[s + (size_t)t + 1];
            } else {
                inputs[b * T + t] = 0;
                targets[b * T + t] = -1;
            }
        }
    }
}

double textdata_val_unigram_bits(const TextData *d) {
    size_t counts[256] = {0}, n = d->len - d->train_len;
    for (size_t i = d->train_len; i < d->len; i++) counts[d->bytes[i]]++;
    double h = 0.0;
    for (int i = 0; i < 256; i++)
        if (counts[i]) {
            double p = (double)counts[i] / (double)n;
            h -= p * log2(p);
        }
    return h;
}
