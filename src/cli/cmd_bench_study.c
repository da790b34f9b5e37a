/* cmd_bench_study.c - `algoprog bench --study DIR`: where a study's time went (study/timing.h),
 * next to the FMA peak of this machine measured now on as many threads as it has cores. */
#include "cli/cli.h"

#include "bench/bench.h"
#include "core/parallel.h"
#include "study/timing.h"

#include <stdio.h>
#include <string.h>

int bench_study(int argc, char **argv) {
    Status st = {0};
    const char *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--study") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            status_fail(&st, AP_EINVAL, "bench --study takes a study directory and nothing else (got '%s')\n%s", argv[i],
                        cli_usage_bench);
            return cli_fail(&st);
        }
    }
    if (!dir) {
        status_fail(&st, AP_EINVAL, "bench --study wants a study directory\n%s", cli_usage_bench);
        return cli_fail(&st);
    }
    StudyTimes t;
    if (study_times(dir, &t, &st)) return cli_fail(&st);
    int cores = parallel_init(parallel_cores());
    BenchRate peak = bench_fma_peak();
    char what[96];
    snprintf(what, sizeof what, "%d-thread %s", cores, bench_fma_isa());
    printf("study %s\n", dir);
    study_times_print(&t, peak.best, what, stdout);
    return 0;
}
