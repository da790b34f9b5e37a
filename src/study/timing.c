/* timing.c - where a study's time went (see timing.h). */
#include "study/timing.h"

#include "study/registry.h"
#include "study/worker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int study_times(const char *out_dir, StudyTimes *t, Status *st) {
    memset(t, 0, sizeof *t);
    Registry *reg;
    if (registry_open(&reg, out_dir, REG_OPEN_READ, st)) return -1;
    RegistrySpan span;
    RunRow *runs = NULL;
    int n = 0, rc = registry_span(reg, &span, st);
    if (!rc) rc = registry_runs(reg, 0, -1, RUN_DONE, 0, &runs, &n, st);
    registry_close(reg);
    if (rc) return -1;
    t->span_s = span.runs ? span.last_finish - span.first_start : 0.0;
    t->lease_s = span.run_wall_s;
    t->workers = t->span_s > 0 ? (int)lround(t->lease_s / t->span_s) : 1;
    if (t->workers < 1) t->workers = 1;
    for (int i = 0; i < n; i++) {
        if (runs[i].copied_from) continue;
        char dir[1100];
        RunFinal f;
        Status ignore;
        t->runs++;
        t->flops += runs[i].flops;
        if (isfinite(runs[i].elapsed_s)) t->steps_s += runs[i].elapsed_s;
        if (worker_run_dir(dir, sizeof dir, out_dir, runs[i].id, runs[i].arm, &ignore) ||
            rundir_read_final(dir, &f, &ignore) || isnan(f.time.forward))
            continue; /* no record of its times: counted in the lease rest */
        t->timed++;
#define TIMING_ADD(name) t->sum.name += f.time.name;
        RUNTIMES_FIELDS(TIMING_ADD)
#undef TIMING_ADD
    }
    registry_runs_free(runs, n);
    return 0;
}

static void row(FILE *out, int indent, const char *what, double s, double total) {
    fprintf(out, "  %*s%-*s %9.1f %6.1f%%\n", indent, "", 52 - indent, what, s, total > 0 ? 100.0 * s / total : 0.0);
}

void study_times_print(const StudyTimes *t, double peak, const char *peak_what, FILE *out) {
    const RunTimes *s = &t->sum;
    double workers_s = t->span_s * t->workers;
    fprintf(out, "%d runs trained (%d with their times recorded), %.3g FLOPs, %.0f s from the first lease to the last "
                 "finish, %d workers (estimated): %.0f worker-seconds\n",
            t->runs, t->timed, t->flops, t->span_s, t->workers, workers_s);
    if (t->span_s > 0) {
        double rate = t->flops / t->span_s / 1e9;
        fprintf(out, "throughput: %.1f GFLOP/s of training FLOPs over the wall time", rate);
        if (peak > 0) fprintf(out, " = %.1f%% of the %s peak (%.1f GFLOP/s)", 100 * rate / peak, peak_what, peak);
        fprintf(out, "\n");
    }
    if (t->steps_s > 0)
        fprintf(out, "the training steps alone: %.1f GFLOP/s per worker\n", t->flops / t->steps_s / 1e9);
    double other = s->forward + s->backward - s->gemm - (s->attention - s->attention_gemm);
    double run_own = t->steps_s + s->eval + s->checkpoint + s->setup + s->final;
    fprintf(out, "\n  %-52s %9s %7s\n", "where the workers' time went", "seconds", "share");
    row(out, 0, "training steps", t->steps_s, workers_s);
    row(out, 2, "matrix products (linear layers, LSTM, head)", s->gemm - s->attention_gemm, workers_s);
    row(out, 2, "attention: per-head products", s->attention_gemm, workers_s);
    row(out, 2, "attention: softmax, masks, copies", s->attention - s->attention_gemm, workers_s);
    row(out, 2, "element-wise (norms, activations, loss, clipping)", other, workers_s);
    row(out, 2, "optimiser", s->optimizer, workers_s);
    row(out, 2, "data batches", s->data, workers_s);
    row(out, 0, "evaluations during training", s->eval, workers_s);
    row(out, 0, "final evaluations (the held-out half judged by)", s->final, workers_s);
    row(out, 0, "checkpoints", s->checkpoint, workers_s);
    row(out, 0, "run set-up (data, model, optimiser)", s->setup, workers_s);
    row(out, 0, "rest of each lease (results, registry, untimed runs)", t->lease_s - run_own, workers_s);
    row(out, 0, "no run leased (sweeps settling, the last runs' tail)", workers_s - t->lease_s, workers_s);
}
