/* parallel.c - thread settings shared by OpenMP kernels and the GEMM libraries (see parallel.h). */
#define _DEFAULT_SOURCE /* sigaltstack */
#include "core/parallel.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SIGNAL_STACK_BYTES (64 * 1024) /* an AVX-512 signal frame is about 3 KiB */

/* Gives the calling thread an alternate signal stack, once (see parallel.h). Without one (out of
 * memory), handlers run on the thread's own stack as they would anyway. */
static void signal_stack_here(void) {
    static _Thread_local void *stack;
    if (stack) return;
    stack_t ss = {.ss_sp = malloc(SIGNAL_STACK_BYTES), .ss_size = SIGNAL_STACK_BYTES, .ss_flags = 0};
    if (!ss.ss_sp) return;
    if (sigaltstack(&ss, NULL)) {
        free(ss.ss_sp);
        return;
    }
    stack = ss.ss_sp;
}

/* The aggregate "cpu" line of /proc/stat: busy and total jiffies; -1 when unreadable. */
static int cpu_jiffies(double *busy, double *total) {
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7])
              : 0;
    if (f) fclose(f);
    if (n < 4) return -1;
    *total = 0;
    for (int i = 0; i < 8; i++) *total += (double)v[i];
    *busy = *total - (double)v[3] - (double)v[4]; /* less idle and iowait */
    return 0;
}

double parallel_other_load(int ms) {
    double b0, t0, b1, t1;
    if (cpu_jiffies(&b0, &t0)) return NAN;
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
    if (cpu_jiffies(&b1, &t1) || !(t1 > t0)) return NAN;
    return (b1 - b0) / (t1 - t0) * parallel_cores();
}

void parallel_adapt_waiting(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("ALGOPROG_WAIT_POLICY") ||
        getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK"))
        return;
    double others = parallel_other_load(100);
    char why[96];
    if (!(others >= 0.5)) {
        setenv("ALGOPROG_WAIT_POLICY", "default", 1); /* decided: children inherit it and do not sample again */
        return;
    }
    snprintf(why, sizeof why, "passive: other processes used %.1f cores at start", others);
    setenv("ALGOPROG_WAIT_POLICY", why, 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: then run with the default waiting */
}

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
    /* every thread of the pool, which also runs oneDNN's and OpenBLAS's work */
    signal_stack_here();
#pragma omp parallel
    signal_stack_here();
    return threads;
}

int parallel_threads(void) { return omp_get_max_threads(); }

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Written by thread 0 only (section_clock_timed), read between steps by the same thread. */
static double section_seconds[SECTION_COUNT];

int section_clock_timed(void) { return omp_get_thread_num() == 0; }

void section_clock_add(Section s, double seconds) { section_seconds[s] += seconds; }

double section_clock_read(Section s) { return section_seconds[s]; }
