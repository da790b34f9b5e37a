/* dist.h - the only door to MPI: data-parallel reductions for one run, and messages for
 * spreading a study's runs over ranks (docs/CLUSTER.md).
 *
 * Built with OpenMPI when CMake finds it (ALGOPROG_MPI=1), else as single-process stubs, so
 * nothing above this header includes mpi.h or needs MPI to build. dist_init starts MPI only when
 * the process was launched by mpirun (its environment says so); a plain `algoprog` never touches
 * MPI. The MPI state is process-wide by nature; these functions are its explicit context. */
#ifndef AP_DIST_H
#define AP_DIST_H

#include <stddef.h>

/* Starts MPI under mpirun; returns the world size (1 without MPI or without mpirun). */
int dist_init(int *argc, char ***argv);
void dist_finalize(void);
/* Ends every rank with an error code (a rank failed and the others would wait forever). */
void dist_abort(int code);
int dist_rank(void);
int dist_size(void);
/* 1 if this build has MPI. */
int dist_compiled(void);

/* Data-parallel groups (a study's ranks_per_run): rank 0 stays alone as the coordinator and
 * ranks 1.. form groups of `group_size`. Afterwards the reductions below and dist_dp_rank/size
 * work within the caller's group. Returns the caller's group index (-1 for rank 0). */
int dist_split_groups(int group_size);
int dist_dp_rank(void);
int dist_dp_size(void);
/* Rank 0 of the group broadcasts n bytes to its group. */
void dist_group_bcast(void *buf, size_t n);

/* In-place sums over the ranks of the data-parallel group (all ranks unless split), in buckets (DIST_BUCKET_FLOATS) so a large gradient never needs
 * a second full-size buffer inside MPI. No-ops on one rank. */
#define DIST_BUCKET_FLOATS (1u << 20)
void dist_allreduce_sum_f32(float *x, size_t n);
void dist_allreduce_sum_f64(double *x, size_t n);
void dist_barrier(void);

/* Point to point, for the study coordinator. Payloads are bytes (small structs). */
int dist_send(int dest, int tag, const void *buf, size_t n);
/* Waits for a message from any rank (polling with short sleeps, so a waiting coordinator does
 * not spin a core the workers need). Returns the payload size, sets *src and *tag. */
size_t dist_recv_any(int *src, int *tag, void *buf, size_t cap);
/* Waits for a message from `src` with any tag. */
size_t dist_recv_from(int src, int *tag, void *buf, size_t cap);

#endif
