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
/* Cores' worth of CPU time other processes used over the next `ms` milliseconds (this process must be
 * idle meanwhile), from /proc/stat; NaN when it cannot be read. */
double parallel_other_load(int ms);
/* libgomp's threads spin at barriers before sleeping; when another process holds a core, the thread
 * that shares it arrives late and its partner burns the other core spinning (a 2-thread run 3x slower
 * with one core busy, 1.5x with passive waiting, docs/BENCH.md). libgomp reads its settings when it
 * loads, so this is called first thing in main: when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is
 * set and other processes use half a core or more, it sets OMP_WAIT_POLICY=passive and
 * ALGOPROG_WAIT_POLICY (why) and re-executes the program; otherwise it returns. Not under mpirun. */
void parallel_adapt_waiting(char **argv);
/* Monotonic wall clock in seconds. */
double time_now(void);

/* Section clocks: the wall time the pool's master thread spends inside a few kernels, so a run can
 * say where its steps went (final.json's "time", `algoprog bench --study`). Process-wide, like the
 * pool: the kernels sit deep under the models and need no context threaded through every op to be
 * timed. Only thread 0 adds (section_clock_timed), so there is no race, and a product that runs
 * one per thread inside a parallel region is counted as thread 0 sees it (its own share, which
 * for a balanced region is the region's wall time). Sections may nest: attention's per-head
 * products count in SECTION_GEMM too, and separately in SECTION_ATTENTION_GEMM. */
typedef enum { SECTION_GEMM, SECTION_ATTENTION, SECTION_ATTENTION_GEMM, SECTION_COUNT } Section;
/* 1 on the thread whose time the clocks keep (thread 0 of the pool, or the process outside it). */
int section_clock_timed(void);
void section_clock_add(Section s, double seconds);
double section_clock_read(Section s);

#endif
