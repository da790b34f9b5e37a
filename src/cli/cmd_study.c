/* cmd_study.c - `algoprog study run|plan|status|export`. */
#include "cli/cli.h"

#include "dist/dist.h"
#include "report/report.h"
#include "study/scheduler.h"
#include "study/summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_study =
    "usage: algoprog study run STUDY.ini out=DIR [workers=N] [threads=N] [ranks_per_run=G] [--quiet]\n"
    "         (default: one worker per core when every run is small, else one worker on every core)\n"
    "         (under mpirun -np K: rank 0 hands out runs, the other ranks train them, G ranks per run)\n"
    "       algoprog study plan STUDY.ini             the runs, sizes and FLOPs, without running\n"
    "       algoprog study status DIR                 progress and results so far\n"
    "       algoprog study export DIR --csv|--json    every run and metric, for pandas or R\n";

static int int_arg(const char *a, const char *key, int lo, int hi, int *out) {
    size_t n = strlen(key);
    if (strncmp(a, key, n) || a[n] != '=') return 0;
    char *end;
    long v = strtol(a + n + 1, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "algoprog: error: %s must be an integer in [%d, %d]\n", key, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 1;
}

int cmd_study(int argc, char **argv) {
    Status st = {0};
    if (argc < 2) return fputs(cli_usage_study, stderr), 2;
    if (!strcmp(argv[0], "plan")) return study_plan(argv[1], stdout, &st) ? cli_fail(&st) : 0;
    if (!strcmp(argv[0], "status")) return study_status(argv[1], stdout, &st) ? cli_fail(&st) : 0;
    if (!strcmp(argv[0], "export")) {
        int json = argc > 2 && !strcmp(argv[2], "--json");
        if (argc > 2 && !json && strcmp(argv[2], "--csv")) return fputs(cli_usage_study, stderr), 2;
        return study_export(argv[1], NULL, json, 0, &st) ? cli_fail(&st) : 0;
    }
    if (strcmp(argv[0], "run")) return fputs(cli_usage_study, stderr), 2;
    StudyOptions o = {.workers = 0, .stop = cli_stop_flag()};
    const char *out = NULL;
    for (int i = 2; i < argc; i++) {
        int r;
        if (!strncmp(argv[i], "out=", 4)) out = argv[i] + 4;
        else if (!strcmp(argv[i], "--quiet")) o.quiet = 1;
        else if ((r = int_arg(argv[i], "workers", 1, 64, &o.workers)) != 0 ||
                 (r = int_arg(argv[i], "threads", 1, 1024, &o.threads)) != 0 ||
                 (r = int_arg(argv[i], "ranks_per_run", 1, 4096, &o.ranks_per_run)) != 0) {
            if (r < 0) return 2;
        } else {
            fprintf(stderr, "algoprog: error: unknown argument '%s'\n%s", argv[i], cli_usage_study);
            return 2;
        }
    }
    if (!out || !out[0]) return fputs("algoprog: error: study run needs out=DIR\n", stderr), 2;
    cli_catch_signals();
    int rc = study_run(argv[1], out, &o, &st);
    if (rc >= 0) return rc;
    int code = cli_fail(&st);
    /* under mpirun the other ranks would wait for rank 0's runs forever */
    if (dist_size() > 1 && st.code != AP_EINTERRUPTED) dist_abort(code);
    return code;
}

const char *const cli_usage_report =
    "usage: algoprog report STUDY_DIR [--boot N] [--seed S] [--verbose]\n"
    "  writes STUDY_DIR/report/index.html (self-contained) and its tables as CSV and JSON\n";

int cmd_report(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_report, stderr), 2;
    ReportOptions o = {1000, 42, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--boot") && i + 1 < argc) o.n_boot = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) o.seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--verbose")) o.verbose = 1;
        else return fprintf(stderr, "algoprog: error: unknown argument '%s'\n", argv[i]), 2;
    }
    if (o.n_boot < 10 || o.n_boot > 100000) return fputs("algoprog: error: --boot must be 10..100000\n", stderr), 2;
    Status st = {0};
    if (report_write(argv[0], &o, &st)) return cli_fail(&st);
    printf("report: %s/report/index.html\n", argv[0]);
    return 0;
}
