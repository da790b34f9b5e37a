/* progress.c - the study's terminal output (see progress.h). */
#include "study/progress.h"

#include "core/parallel.h"

#include <stdio.h>
#include <unistd.h>

void progress_fmt_duration(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

void progress_clear_line(void) {
    if (isatty(2)) fprintf(stderr, "\r\033[K");
}

void progress_on_step(void *ctx, const Trainer *tr, float loss) {
    ProgressCtx *p = ctx;
    double now = time_now();
    if (now - p->last_report < 1.0 && tr->ts.step != tr->cfg.steps) return;
    p->last_report = now;
    Status ignore; /* progress is advisory: a busy registry must not stop training */
    if (p->reg) registry_progress(p->reg, p->run_id, tr->ts.flops, loss, &ignore);
    if (!p->show) return;
    double done = p->done_before + tr->ts.flops, rate = (done - p->flops_at_start) / (now - p->t_start);
    char eta[32] = "?";
    if (rate > 0) progress_fmt_duration(eta, sizeof eta, (p->study_total - done) / rate);
    fprintf(stderr, "\r\033[K[study %d/%d runs, %.0f%% of FLOPs, ETA %s] run %d %s: step %lld/%d, loss %.4f",
            p->runs_done, p->runs_total, 100.0 * done / (p->study_total > 0 ? p->study_total : 1), eta, p->run_id,
            p->label, (long long)tr->ts.step, tr->cfg.steps, loss);
    fflush(stderr);
}

void progress_print_done(Registry *reg, int run_id) {
    RunRow x;
    Status ignore;
    if (registry_run(reg, run_id, &x, &ignore)) return;
    char t[32];
    progress_fmt_duration(t, sizeof t, x.elapsed_s);
    printf("done run %3d %-12s %-8s N=%-9lld D=%-9.3g %9.3g FLOPs  x%-5.3g lr  %.4f %s bits/byte  (%s)\n", run_id,
           x.arm, x.kind == RUN_MAIN ? "main" : "lr-sweep", x.params_nonembedding, x.tokens, x.flops, x.lr_mult,
           x.kind == RUN_MAIN ? x.test_bpb : x.val_bpb, x.kind == RUN_MAIN ? "test" : "val", t);
    fflush(stdout);
}

void progress_print_study(Registry *reg, double flops_start, double t_start) {
    RegistryCounts k;
    Status ignore;
    if (registry_counts(reg, &k, &ignore)) return;
    double rate = (k.flops_done - flops_start) / (time_now() - t_start);
    char eta[32] = "?";
    if (rate > 0) progress_fmt_duration(eta, sizeof eta, (k.flops_total - k.flops_done) / rate);
    fprintf(stderr, "\r\033[K[study] runs %d/%d done, %d running%s | FLOPs %.3g / %.3g (%.0f%%) | ETA %s", k.done,
            k.total, k.running, k.failed ? " (some failed)" : "", k.flops_done, k.flops_total,
            100.0 * k.flops_done / (k.flops_total > 0 ? k.flops_total : 1), eta);
    fflush(stderr);
}
