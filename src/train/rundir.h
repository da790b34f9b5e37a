/* rundir.h - a run directory: the names of its files and the records they hold.
 *
 * A run lives in one directory (docs/FORMATS.md has every field):
 *   config.ini     the resolved recipe (every key, in sections), which `algoprog train DIR/config.ini`
 *                  trains again (resuming reads the checkpoint's copy instead)
 *   metrics.jsonl  one JSON object per evaluation (a MetricRow), plus event lines (rollbacks)
 *   checkpoint.bin the latest checkpoint (atomically replaced)
 *   final.json     written when the run completes (a RunFinal)
 *   tokenizer.tok  a copy of the run's tokenizer (BPE runs), so the directory stands alone
 *   lock           held (flock) by the process training the run, with its pid: one trainer a run
 * The trainer writes these records and the study engine reads them back through this module, so
 * the format has one writer and one reader. */
#ifndef AP_RUNDIR_H
#define AP_RUNDIR_H

#include "config/config.h"
#include "core/status.h"
#include "data/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define RUNDIR_CONFIG "config.ini"
#define RUNDIR_METRICS "metrics.jsonl"
#define RUNDIR_CHECKPOINT "checkpoint.bin"
#define RUNDIR_FINAL "final.json"
#define RUNDIR_LOCK "lock"
#define RUNDIR_TOKENIZER "tokenizer.tok"

/* DIR/NAME into buf; fails (AP_EINVAL) when the path does not fit. */
int rundir_path(char *buf, size_t size, const char *dir, const char *name, Status *st);
int rundir_has(const char *dir, const char *name);

/* Takes the run's lock (an exclusive flock on DIR/lock, which then holds our pid) into *fd, or
 * fails (AP_EINVAL) naming the process that holds it: two trainers writing one directory would
 * interleave their metrics and overwrite each other's checkpoints. The kernel drops a flock when
 * its holder dies, so a killed run's lock is never stale. */
int rundir_lock(const char *dir, int *fd, Status *st);
void rundir_unlock(int fd);

/* One evaluation. NaN fields are written as null (a first line has no train loss or grad norm). */
typedef struct {
    int64_t step;
    double tokens, flops, epochs;
    double train_loss, val_loss, val_bpb, lr, grad_norm;
    double tokens_per_s, elapsed_s;
    /* mixture of experts (NaN, and not written, without experts): the last training step's balance
     * loss, and its busiest expert's load over the mean load (worst MoE layer; 1 = perfectly even) */
    double moe_aux_loss, moe_load_max;
} MetricRow;

/* Where a run's wall time went, in seconds, as the process that finished it measured (a resumed
 * run's earlier sessions are not included): setup (data, tokenizer, model and optimiser), the
 * training steps' parts (data batches, forward, backward, optimiser: these four sum to the step
 * time), and within forward + backward the time in matrix products (gemm, attention's per-head
 * ones included), in attention (its products: attention_gemm), then evaluations during training,
 * checkpoints, and the final evaluation with final.json itself. */
#define RUNTIMES_FIELDS(X)                                                                                          \
    X(setup) X(data) X(forward) X(backward) X(optimizer) X(gemm) X(attention) X(attention_gemm) X(eval)          \
        X(checkpoint) X(final)
#define RUNTIMES_DECLARE(name) double name;
typedef struct {
    RUNTIMES_FIELDS(RUNTIMES_DECLARE)
} RunTimes;
#undef RUNTIMES_DECLARE

/* One evaluation beyond the training context (eval_contexts; train/ctxeval.h). */
typedef struct {
    int multiple, scaling;   /* context = multiple x the training context; RopeScaleKind */
    double factor;           /* the scaling's factor */
    double bpb, bpb_beyond;  /* test half: every position, and positions past the training context */
} RunContextEval;

#define RUNDIR_MAX_CONTEXT_EVALS (CONFIG_MAX_EVAL_CONTEXTS * 4)

typedef struct {
    int64_t step;
    double val_loss, val_bpb;   /* the validation half (what sweeps choose by) */
    double test_loss, test_bpb; /* the test half (what studies report) */
    double test_bpb_se;         /* its standard error over evaluation windows (the text's own noise) */
    double unigram_bpb;         /* a unigram model of the held-out text: the plateau of a run that learnt nothing */
    double params;
    size_t params_nonembedding;
    double tokens, flops, flops_6nd;
    double teacher_flops;       /* a distilled run's teacher forwards (not in flops); 0 without a teacher */
    uint64_t seed;
    double elapsed_s, tokens_per_s;
    RunTimes time; /* NaN fields in a final.json written before they were recorded */
    RunContextEval ctx[RUNDIR_MAX_CONTEXT_EVALS]; /* eval_contexts, in order of multiple then scaling */
    int n_ctx;
} RunFinal;

/* Appends one metrics line; a failed write leaves the file as it was (a torn last line, from a
 * crash mid-write, is dropped on resume). */
int rundir_append_metric(const char *dir, const MetricRow *m, Status *st);
/* Appends a rollback event line (not a measurement: readers skip it). */
int rundir_append_rollback(const char *dir, int64_t step, int at_step, const char *what, double lr_scale,
                           int64_t rollbacks, Status *st);
/* Keeps the metrics lines of steps <= step (lines written after a checkpoint are redone). */
int rundir_truncate_metrics(const char *dir, int64_t step, Status *st);
/* The measurement lines of metrics.jsonl (event lines skipped), malloc'ed into *rows. */
int rundir_read_metrics(const char *dir, MetricRow **rows, int *n, Status *st);

int rundir_write_final(const char *dir, const RunFinal *f, Status *st);
/* The tokenizer a run was trained with: its copy in the directory, else "bytes". */
int rundir_load_tokenizer(Tokenizer *t, const char *dir, Status *st);
int rundir_read_final(const char *dir, RunFinal *f, Status *st);

#endif
