/* summary.c - `study status` and `study export` (see summary.h). */
#include "study/summary.h"

#include "core/fileio.h"
#include "study/registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The status table's order: arm, main runs before sweeps, budget, model, seed, multiplier. */
static int run_order(const void *a, const void *b) {
    const RunRow *x = a, *y = b;
    if (x->arm_id != y->arm_id) return x->arm_id < y->arm_id ? -1 : 1;
    if (x->kind != y->kind) return x->kind == RUN_MAIN ? -1 : 1;
    if (x->budget != y->budget) return x->budget < y->budget ? -1 : 1;
    if (x->point != y->point) return x->point < y->point ? -1 : 1;
    if (x->seed != y->seed) return x->seed < y->seed ? -1 : 1;
    if (x->lr_mult != y->lr_mult) return x->lr_mult < y->lr_mult ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void print_runs(FILE *out, RunRow *runs, int n) {
    qsort(runs, (size_t)n, sizeof *runs, run_order);
    fprintf(out, "\n%-14s %-9s %9s %5s %10s %10s %10s %6s %-8s %10s\n", "arm", "kind", "budget", "seed", "params",
            "tokens", "FLOPs", "x lr", "status", "bits/byte");
    fprintf(out, "%-14s %-9s %9s %5s %10s %10s %10s %6s %-8s %10s\n", "", "", "", "", "(N)", "", "", "", "",
            "(test; val)");
    for (int i = 0; i < n; i++) {
        const RunRow *x = &runs[i];
        char bpb[32] = "-";
        /* main runs report the test half; sweeps were judged on the validation half */
        double v = x->kind == RUN_MAIN ? x->test_bpb : x->val_bpb;
        if (!isnan(v)) snprintf(bpb, sizeof bpb, "%.4f", v);
        char twin[32] = "";
        if (x->copied_from) snprintf(twin, sizeof twin, " (= run %d)", x->copied_from);
        fprintf(out, "%-14s %-9s %9.3g %5d %10lld %10.4g %10.4g %6.3g %-8s %10s%s\n", x->arm,
                x->kind == RUN_MAIN ? "main" : "lr-sweep", x->budget, x->seed, x->params_nonembedding, x->tokens,
                x->flops, x->lr_mult, run_status_name(x->status), bpb, twin);
    }
}

static void print_arms(FILE *out, const ArmRow *arms, int n_arms, const RunRow *runs, int n) {
    fprintf(out, "\n%-14s %-16s %10s %12s  %s\n", "arm", "preset", "best test", "lr", "how the lr was chosen");
    for (int a = 0; a < n_arms; a++) {
        const ArmRow *m = &arms[a];
        double best = NAN;
        for (int i = 0; i < n; i++)
            if (runs[i].arm_id == m->id && runs[i].kind == RUN_MAIN && !isnan(runs[i].test_bpb) &&
                !(runs[i].test_bpb >= best))
                best = runs[i].test_bpb;
        char b[32] = "-", lr[32] = "-";
        if (!isnan(best)) snprintf(b, sizeof b, "%.4f", best);
        if (!isnan(m->lr)) snprintf(lr, sizeof lr, "%.4g", m->lr);
        fprintf(out, "%-14s %-16s %10s %12s  %s%s%s\n", m->name, m->preset, b, lr, m->lr_source,
                m->overrides[0] ? "; overrides: " : "", m->overrides);
    }
}

int study_status(const char *out_dir, FILE *out, Status *st) {
    Registry *reg;
    if (registry_open(&reg, out_dir, REG_OPEN_READ, st)) return -1;
    StudyInfo info;
    RegistryCounts k;
    ArmRow *arms = NULL;
    RunRow *runs = NULL;
    int n_arms = 0, n = 0;
    int rc = registry_study_info(reg, &info, st);
    if (!rc) rc = registry_counts(reg, &k, st);
    if (!rc) rc = registry_arms(reg, &arms, &n_arms, st);
    if (!rc) rc = registry_runs(reg, 0, -1, -1, 0, &runs, &n, st);
    registry_close(reg);
    if (!rc) {
        fprintf(out, "study %s (allocation %s, data %s, tokenizer %s, created %s)\n", info.name, info.allocation,
                info.data, info.tokenizer, info.created);
        fprintf(out,
                "runs: %d done, %d running, %d pending, %d blocked, %d failed of %d | FLOPs %.4g of %.4g (%.0f%%)\n",
                k.done, k.running, k.pending, k.blocked, k.failed, k.total, k.flops_done, k.flops_total,
                100.0 * k.flops_done / (k.flops_total > 0 ? k.flops_total : 1));
        print_runs(out, runs, n);
        print_arms(out, arms, n_arms, runs, n);
        study_info_free(&info);
    }
    registry_runs_free(runs, n);
    free(arms);
    return rc;
}

int study_files_lock(const char *out_dir, int *fd, Status *st) {
    char path[1100], what[1100];
    snprintf(path, sizeof path, "%s/" STUDY_FILES_LOCK, out_dir);
    snprintf(what, sizeof what, "study directory '%s'", out_dir);
    return file_lock(path, what, " (another `algoprog report` or `study export` writing its files): wait for it to finish",
                     fd, st);
}

int study_export(const char *out_dir, const char *to_dir, int json, int quiet, Status *st) {
    Registry *reg;
    int lock;
    if (registry_open(&reg, out_dir, REG_OPEN_READ, st)) return -1;
    if (study_files_lock(out_dir, &lock, st)) {
        registry_close(reg);
        return -1;
    }
    const char *dest = to_dir ? to_dir : out_dir;
    char a[1100], b[1100];
    int rc;
    if (!json) {
        snprintf(a, sizeof a, "%s/runs.csv", dest);
        snprintf(b, sizeof b, "%s/metrics.csv", dest);
        rc = registry_export_csv(reg, a, b, st);
        if (!rc && !quiet) printf("wrote %s and %s\n", a, b);
    } else {
        snprintf(a, sizeof a, "%s/study.json", dest);
        rc = registry_export_json(reg, a, st);
        if (!rc && !quiet) printf("wrote %s\n", a);
    }
    file_unlock(lock);
    registry_close(reg);
    return rc;
}
