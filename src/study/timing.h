/* timing.h - where a study's time went: the runs' own clocks (final.json "time") summed, set
 * against the registry's timestamps. `algoprog bench --study DIR` prints it; `study run` prints
 * its first line.
 *
 * The workers' time is the span from the first run's lease to the last run's end times the number
 * of workers (estimated as the runs' summed lease-to-finish time over the span, rounded: the
 * registry does not record it). Training steps split into matrix products, attention (its
 * products apart), the optimiser, data batches and the rest of forward + backward (norms,
 * activations, embeddings, loss: "element-wise"); outside the steps: evaluations, checkpoints,
 * set-up; the rest of each lease (writing results, the registry), and the time no run was leased
 * (waiting for sweeps to settle, the tail of the last runs). Meaningful for a study run in one
 * session: pauses between sessions count as idle. */
#ifndef AP_TIMING_H
#define AP_TIMING_H

#include "core/status.h"
#include "train/rundir.h"

#include <stdio.h>

typedef struct {
    int runs;       /* finished runs trained here (copied results excluded) */
    int timed;      /* of them, with a "time" record (older runs have none) */
    double flops;   /* their training FLOPs */
    double span_s;  /* first lease to last finish */
    double lease_s; /* sum of each run's lease-to-finish time */
    int workers;    /* estimated */
    double steps_s; /* sum of the training steps' time (elapsed_s) */
    RunTimes sum;   /* summed over the timed runs */
} StudyTimes;

int study_times(const char *out_dir, StudyTimes *t, Status *st);
/* The table; peak: the machine's FMA peak at the study's cores in GFLOP/s (0: not shown). */
void study_times_print(const StudyTimes *t, double peak, const char *peak_what, FILE *out);

#endif
