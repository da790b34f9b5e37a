/* parallel.h - one thread pool for the whole process.
 *
 * Kernels use OpenMP; GEMMs go to oneDNN or OpenBLAS (kernels/gemm.h). We link Debian's OpenMP
 * build of OpenBLAS, and Debian's oneDNN uses libgomp too, so all share libgomp's pool (oneDNN
 * follows omp_set_num_threads): with two separate pools on a two-core machine, each pool's
 * spinning threads steal the cores the other needs (perf_anchors.md measured 2 threads slower
 * than 1 for PyTorch configured that way). parallel_init is called once by the CLI or a test. */
#ifndef AP_PARALLEL_H
#define AP_PARALLEL_H

/* threads <= 0 means $OMP_NUM_THREADS if set, else all cores. Returns the number of threads in use.
 * Also gives every thread of the pool an alternate signal stack: signal handlers must be installed
 * with SA_ONSTACK (cli.c's are). oneDNN 2.6.3's sgemm corrupts the heap when a handler runs on the
 * stack of a thread inside it (reproduced here with SIGALRM: "free(): invalid next size"; OpenBLAS
 * is unaffected); on the alternate stack it is safe (test_ops checks it). */
int parallel_init(int threads);
int parallel_threads(void);
/* Number of online CPU cores. */
int parallel_cores(void);
/* Monotonic wall clock in seconds. */
double time_now(void);

#endif
