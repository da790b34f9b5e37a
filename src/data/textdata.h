/* textdata.h - byte-level training text with a fixed held-out split.
 *
 * The file is read once; its last val_frac (rounded to whole bytes) is held out and never
 * sampled for training. Training batches are random windows of T+1 bytes drawn with the
 * trainer's Rng (saved in checkpoints, so a resumed run draws the same windows). Evaluation
 * walks consecutive, non-overlapping windows from the start of the held-out text, always the
 * same ones, so every evaluation of every run sees identical text. */
#ifndef AP_TEXTDATA_H
#define AP_TEXTDATA_H

#include "core/rng.h"
#include "core/status.h"

#include <stddef.h>

typedef struct {
    unsigned char *bytes;
    size_t len;
    size_t train_len; /* [0, train_len) is training text, [train_len, len) held out */
    char path[512];
} TextData;

/* Loads `path`; needs room for one window of T+1 bytes on each side of the split. */
int textdata_load(TextData *d, const char *path, double val_frac, int T, Status *st);
void textdata_free(TextData *d);
/* B random training windows: inputs/targets (B, T). */
void textdata_train_batch(const TextData *d, Rng *rng, int B, int T, int *inputs, int *targets);
/* Number of evaluation batches covering up to eval_tokens held-out targets. */
int textdata_val_batches(const TextData *d, int B, int T, long eval_tokens);
/* Evaluation batch k; windows past the end of the held-out text get targets -1 (ignored). */
void textdata_val_batch(const TextData *d, int k, int B, int T, int *inputs, int *targets);
/* Shannon entropy of the held-out bytes' unigram distribution, in bits per byte. */
double textdata_val_unigram_bits(const TextData *d);

#endif
