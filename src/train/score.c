/* score.c - per-document bits per byte under a trained model (see score.h). */
#include "train/score.h"

#include "core/parallel.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "train/checkpoint.h"
#include "train/rundir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SCORE_BATCH = 8 }; /* windows per forward pass: enough rows for the GEMMs to run at speed */

int score_documents(const char *run_dir, const unsigned char *text, size_t len, size_t n_docs, const size_t *doc_bytes,
                    double *bpb, ScoreInfo *info, int verbose, Status *st) {
    memset(info, 0, sizeof *info);
    double t0 = time_now();
    char path[1200];
    if (rundir_path(path, sizeof path, run_dir, RUNDIR_CHECKPOINT, st)) return -1;
    Config cfg;
    Model *m = calloc(1, sizeof *m);
    Tokenizer tok = {0};
    TokenList ids = {0};
    double *nats = calloc(n_docs ? n_docs : 1, sizeof *nats);
    int *inputs = NULL, *targets = NULL;
    int rc = m && nats ? 0 : status_fail(st, AP_ENOMEM, "out of memory scoring documents");
    if (!rc) rc = checkpoint_load_model(m, &cfg, path, st);
    if (!rc) {
        char tok_path[700];
        rc = dataset_tokenizer_path(cfg.tokenizer, tok_path, sizeof tok_path, st);
        if (!rc) rc = tokenizer_load(&tok, tok_path, st);
    }
    if (!rc && tok.eot < 0)
        rc = status_fail(st, AP_EINVAL, "run '%s': its tokenizer '%s' has no end-of-text token to mark documents",
                         run_dir, cfg.tokenizer);
    if (!rc) rc = tokenizer_encode_parallel(&tok, text, len, &ids, st);
    const int T = cfg.context, B = SCORE_BATCH;
    if (!rc) rc = model_prepare(m, B, T, st);
    if (!rc) {
        inputs = malloc((size_t)B * T * sizeof *inputs), targets = malloc((size_t)B * T * sizeof *targets);
        if (!inputs || !targets) rc = status_fail(st, AP_ENOMEM, "out of memory scoring documents");
    }
    snprintf(info->model, sizeof info->model, "d_model %d, %d layers, context %d, tokenizer %s", cfg.d_model, cfg.n_layers, cfg.context, cfg.tokenizer);
    /* windows of T targets: targets ids[s+1 .. s+T], inputs ids[s .. s+T-1]; targets come in text
     * order, so the document of each is counted by the end-of-text tokens gone by */
    size_t n_windows = ids.n > 1 ? (ids.n - 1 + (size_t)T - 1) / (size_t)T : 0, next_report = 0;
    size_t doc = ids.n && ids.ids[0] == (uint32_t)tok.eot; /* an empty first document is over already */
    for (size_t w0 = 0; !rc && w0 < n_windows; w0 += B) {
        for (int b = 0; b < B; b++)
            for (int j = 0; j < T; j++) {
                size_t s = (w0 + (size_t)b) * (size_t)T + (size_t)j;
                int in_range = s + 1 < ids.n;
                inputs[(size_t)b * T + j] = in_range ? (int)ids.ids[s] : tok.eot;
                targets[(size_t)b * T + j] = in_range ? (int)ids.ids[s + 1] : -1;
            }
        model_forward(m, inputs, targets, B, T, 0);
        const float *loss = model_losses(m);
        for (size_t k = 0; k < (size_t)B * T; k++) {
            int y = targets[k];
            if (y < 0) break;
            if (y == tok.eot) {
                doc++;
                continue;
            }
            if (doc < n_docs) nats[doc] += loss[k];
        }
        info->tokens += (size_t)B * T;
        if (verbose && (w0 + B >= n_windows || time_now() >= (double)next_report)) {
            fprintf(stderr, "\rscoring: %zu of %zu windows (%.0f tokens/s)", w0 + B < n_windows ? w0 + B : n_windows,
                    n_windows, info->tokens / (time_now() - t0 + 1e-9));
            next_report = (size_t)time_now() + 2;
        }
    }
    if (verbose && n_windows) fputc('\n', stderr);
    if (!rc && doc + 1 < n_docs) /* the text ends in a separator: the count of end-of-text tokens is n_docs */
        rc = status_fail(st, AP_EINVAL, "scoring found %zu documents where %zu were expected: the text and its "
                         "document list disagree", doc + 1, n_docs);
    for (size_t i = 0; !rc && i < n_docs; i++) bpb[i] = doc_bytes[i] ? nats[i] / (log(2.0) * doc_bytes[i]) : NAN;
    info->seconds = time_now() - t0;
    free(inputs), free(targets), free(nats);
    tokenlist_free(&ids);
    tokenizer_free(&tok);
    if (m) model_free(m);
    free(m);
    return rc;
}
