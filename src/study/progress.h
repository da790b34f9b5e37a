/* progress.h - what a running study shows on the terminal.
 *
 * One line per finished run on stdout ("done run 12 llama main N=... bits/byte"), and, when
 * stderr is a terminal, a live status line rewritten in place: the run in training (step, loss)
 * or, with several workers, the study's counts, FLOPs and an ETA from the FLOP rate so far.
 * The live line also feeds the registry's progress columns (what `study status` shows others). */
#ifndef AP_PROGRESS_H
#define AP_PROGRESS_H

#include "study/registry.h"
#include "train/train.h"

#include <stddef.h>

typedef struct {
    Registry *reg; /* NULL on MPI worker ranks (rank 0 owns the registry) */
    int run_id;
    const char *label;
    int show; /* draw the live line */
    double last_report;
    /* for the study-wide part: FLOPs of the study, done before this run, and the clock */
    double study_total, done_before, t_start, flops_at_start;
    int runs_done, runs_total;
} ProgressCtx;

/* Trainer callback (Trainer.on_step): at most once a second, and at the last step. */
void progress_on_step(void *ctx, const Trainer *tr, float loss);
/* "done run ..." for a finished run. */
void progress_print_done(Registry *reg, int run_id);
/* The study-wide live line (several workers). */
void progress_print_study(Registry *reg, double flops_at_start, double t_start);
void progress_clear_line(void);
/* Durations as "42s", "3m07s", "1h05m"; "?" when unknown. */
void progress_fmt_duration(char *buf, size_t size, double seconds);

#endif
