/* report.c - load, fit, judge, write (see report.h). */
#include "report/report.h"

#include "core/fileio.h"
#include "report/claims.h"
#include "report/html.h"
#include "report/results.h"
#include "report/samples.h"
#include "report/tables.h"
#include "study/registry.h"
#include "study/summary.h"

#include <stdio.h>
#include <stdlib.h>

/* runs.csv and metrics.csv beside the report: the same files as `study export`. */
static int export_runs(const char *dir, const char *rdir, Status *st) {
    Registry *reg;
    char runs[1300], metrics[1300];
    snprintf(runs, sizeof runs, "%s/runs.csv", rdir);
    snprintf(metrics, sizeof metrics, "%s/metrics.csv", rdir);
    if (registry_open(&reg, dir, REG_OPEN_READ, st)) return -1;
    int rc = registry_export_csv(reg, runs, metrics, st);
    registry_close(reg);
    return rc;
}

static int report_build(const char *dir, const ReportOptions *o, Status *st);

int report_write(const char *dir, const ReportOptions *o, Status *st) {
    char reg[1100];
    snprintf(reg, sizeof reg, "%s/" REGISTRY_FILE, dir);
    if (!file_exists(reg)) return report_build(dir, o, st); /* which says there is no study there */
    int lock;
    if (study_files_lock(dir, &lock, st)) return -1;
    int rc = report_build(dir, o, st);
    file_unlock(lock);
    return rc;
}

static int report_build(const char *dir, const ReportOptions *o, Status *st) {
    Results *r = calloc(1, sizeof *r);
    ClaimResult *claims = calloc(CLAIMS_MAX, sizeof *claims);
    if (!r || !claims) {
        free(r), free(claims);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    if (results_load(r, dir, st)) {
        free(r), free(claims);
        return -1;
    }
    FitOptions fo;
    fit_options_default(&fo);
    fo.n_boot = o->n_boot;
    fo.seed = o->seed;
    if (results_fit(r, &fo, o->verbose, st)) {
        results_free(r);
        free(r), free(claims);
        return -1;
    }
    results_ablations(r);
    int n_claims = claims_evaluate(r, claims, CLAIMS_MAX);
    ArmSample *samples = calloc((size_t)(r->n_arms ? r->n_arms : 1), sizeof *samples);
    if (samples) samples_generate(r, dir, samples);
    char rdir[1100], path[1200];
    snprintf(rdir, sizeof rdir, "%s/report", dir);
    int rc = dir_create(rdir, st);
    StrBuf b = {0};
    if (!rc) {
        html_render(r, claims, n_claims, samples, o, &b);
        snprintf(path, sizeof path, "%s/index.html", rdir);
        rc = b.failed ? status_fail(st, AP_ENOMEM, "out of memory building the report")
                      : file_write_atomic(path, b.s, b.len, st);
    }
    if (!rc) rc = tables_write(r, claims, n_claims, rdir, st);
    if (!rc) rc = export_runs(dir, rdir, st);
    sb_free(&b);
    if (samples) samples_free(samples, r->n_arms);
    free(samples);
    results_free(r);
    free(r);
    free(claims);
    return rc;
}
