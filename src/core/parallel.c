/* parallel.c - thread settings shared by OpenMP kernels and OpenBLAS (see parallel.h). */
#include "core/parallel.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int parallel_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int parallel_init(int threads) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (threads <= 0 && env && atoi(env) > 0) threads = atoi(env);
    if (threads <= 0) threads = parallel_cores();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    return threads;
}

int parallel_threads(void) { return omp_get_max_threads(); }

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
