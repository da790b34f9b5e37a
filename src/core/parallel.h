/* parallel.h - one thread pool for the whole process.
 *
 * Kernels use OpenMP; GEMMs go to OpenBLAS. We link Debian's OpenMP build of OpenBLAS so both
 * share libgomp's pool: with two separate pools on a two-core machine, each pool's spinning
 * threads steal the cores the other needs (perf_anchors.md measured 2 threads slower than 1 for
 * PyTorch configured that way). parallel_init is called once by the CLI or a test. */
#ifndef AP_PARALLEL_H
#define AP_PARALLEL_H

/* threads <= 0 means $OMP_NUM_THREADS if set, else all cores. Returns the number of threads in use. */
int parallel_init(int threads);
int parallel_threads(void);
/* Number of online CPU cores. */
int parallel_cores(void);
/* Monotonic wall clock in seconds. */
double time_now(void);

#endif
