/* dataset.h - training and held-out tokens for a run, and the order they are seen in.
 *
 * `data` names a corpus (a directory with manifest.json, or NAME under the data directory) or a
 * plain text file. A corpus's train/held-out split is its own (by document, corpus.h); its token
 * shards for the run's tokenizer are made on first use and cached in the corpus's shards/
 * directory. A text file is tokenized in memory and its last val_frac of tokens held out.
 *
 * Training order: the first U training tokens (U = max_unique_tokens, or all) are cut into
 * non-overlapping windows of context+1 tokens; each epoch visits every window once in an order
 * shuffled by (seed, epoch). A run that asks for more tokens than U repeats the data, and the
 * number of epochs is reported (claim C11). The position (epoch, window) is saved in checkpoints.
 *
 * Streams (recurrent models that carry state): instead, the U tokens are cut into B contiguous
 * streams, one per batch row, read front to back T tokens per step; an epoch ends when the
 * streams are used up, and the next starts them again (the model's carried state is reset then).
 *
 * Held-out: the held-out tokens are cut into windows of context+1 tokens stepping by context; the
 * first half of the windows is the validation part (the evaluations during training, and what a
 * learning-rate sweep is judged on), the second half the test part (the loss a study reports).
 * Evaluations read consecutive windows from the start of a part, always the same ones.
 * Bits per byte = total nats / (ln 2 x the bytes of the predicted tokens), specials 0 bytes. */
#ifndef AP_DATASET_H
#define AP_DATASET_H

#include "core/status.h"
#include "data/shard.h"
#include "data/tokenizer.h"

#include <stdint.h>

typedef struct {
    uint64_t epoch, pos; /* pos: windows of this epoch already consumed */
} DataCursor;

typedef struct {
    Tokenizer tok;
    int source_is_corpus;
    Shard shard[2];   /* corpus: [0] train, [1] held-out */
    uint32_t *mem[2]; /* text file: tokens in memory */
    size_t n[2];      /* tokens per split */
    uint64_t bytes[2];
    size_t unique;    /* training tokens in use */
    size_t n_windows;
    uint32_t *perm;   /* window order of perm_epoch */
    uint64_t perm_epoch;
    int perm_valid;
    uint64_t seed;
    int T;
    int streams;      /* > 0: stream order with this many streams (= batch rows) */
    size_t stream_len, stream_steps;
    double val_unigram_bpb; /* bits/byte of a unigram model of the held-out tokens (baseline) */
    char desc[768];
} Dataset;

/* Data directory for corpus names and tokenizer names: $ALGOPROG_DATA or "data". */
const char *dataset_data_dir(void);
/* Resolves a tokenizer name: "bytes", a path, or NAME -> DATA/tokenizers/NAME.tok. */
int dataset_tokenizer_path(const char *name, char *path, size_t size, Status *st);
int dataset_open(Dataset *d, const char *data, const char *tokenizer, double val_frac, uint64_t max_unique,
                 int T, uint64_t seed, Status *st);
void dataset_free(Dataset *d);
/* The content identity of what data= names, as dataset_open resolves it: SHA-256 over a corpus's
 * train.txt then val.txt, or over a text file. Studies record it and refuse to go on when it
 * changes (their runs would mix two texts). */
int dataset_fingerprint(const char *data, char hex[65], Status *st);

static inline uint32_t dataset_token(const Dataset *d, int split, size_t i) {
    return d->mem[split] ? d->mem[split][i] : shard_token(&d->shard[split], i);
}
/* Switches training order to B contiguous streams (see above). */
int dataset_use_streams(Dataset *d, int B, Status *st);
/* B training windows; advances the cursor. Returns 1 when this batch starts the streams anew
 * (stream order: a carried state must be reset), else 0. */
int dataset_train_batch(Dataset *d, DataCursor *cur, int B, int *inputs, int *targets);
/* Epochs completed (fractional) after `tokens` training tokens. */
double dataset_epochs(const Dataset *d, double tokens);
typedef enum { EVAL_VAL = 0, EVAL_TEST = 1 } EvalPart;
/* Windows in a held-out part, and the batches of B windows that cover its first `tokens` tokens
 * (tokens <= 0: the whole part). */
size_t dataset_eval_windows(const Dataset *d, EvalPart part);
int dataset_eval_batches(const Dataset *d, EvalPart part, int B, long tokens);
/* Batch k of a part: windows k*B .. k*B+B-1 (whole batches, so an evaluation of `tokens` reads
 * every window of the batches that cover them); windows past the end of the part get targets -1.
 * Adds the predicted bytes to *bytes, and each row's to row_bytes[b] when it is not NULL. */
void dataset_eval_batch(const Dataset *d, EvalPart part, int k, int B, int *inputs, int *targets, uint64_t *bytes,
                        uint64_t *row_bytes);

#endif
