/* dist.c - MPI behind dist.h, or single-process stubs when the build has no MPI. */
#include "dist/dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#if ALGOPROG_MPI
#include <mpi.h>

static int g_started;          /* MPI_Init was called by us (set once, before any thread starts) */
static MPI_Comm g_dp = MPI_COMM_NULL; /* the data-parallel group; MPI_COMM_WORLD unless split */

static MPI_Comm dp_comm(void) { return g_dp == MPI_COMM_NULL ? MPI_COMM_WORLD : g_dp; }

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int dist_init(int *argc, char ***argv) {
    if (!launched_by_mpirun()) return 1;
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    g_started = 1;
    return dist_size();
}

void dist_finalize(void) {
    if (g_dp != MPI_COMM_NULL) MPI_Comm_free(&g_dp);
    g_dp = MPI_COMM_NULL;
    if (g_started) MPI_Finalize();
    g_started = 0;
}

void dist_abort(int code) {
    if (g_started && dist_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int dist_rank(void) {
    int r = 0;
    if (g_started) MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int dist_size(void) {
    int s = 1;
    if (g_started) MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}

int dist_compiled(void) { return 1; }

int dist_split_groups(int group_size) {
    if (!g_started) return -1;
    int r = dist_rank(), color = r == 0 ? 0 : 1 + (r - 1) / group_size;
    MPI_Comm_split(MPI_COMM_WORLD, color, r, &g_dp);
    return color - 1;
}

int dist_dp_rank(void) {
    int r = 0;
    if (g_started) MPI_Comm_rank(dp_comm(), &r);
    return r;
}

int dist_dp_size(void) {
    int s = 1;
    if (g_started) MPI_Comm_size(dp_comm(), &s);
    return s;
}

void dist_group_bcast(void *buf, size_t n) {
    if (g_started && dist_dp_size() > 1) MPI_Bcast(buf, (int)n, MPI_BYTE, 0, dp_comm());
}

void dist_allreduce_sum_f32(float *x, size_t n) {
    if (!g_started || dist_dp_size() == 1) return;
    for (size_t off = 0; off < n; off += DIST_BUCKET_FLOATS) {
        size_t m = n - off < DIST_BUCKET_FLOATS ? n - off : DIST_BUCKET_FLOATS;
        MPI_Allreduce(MPI_IN_PLACE, x + off, (int)m, MPI_FLOAT, MPI_SUM, dp_comm());
    }
}

void dist_allreduce_sum_f64(double *x, size_t n) {
    if (!g_started || dist_dp_size() == 1) return;
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, dp_comm());
}

void dist_barrier(void) {
    if (g_started) MPI_Barrier(MPI_COMM_WORLD);
}

int dist_send(int dest, int tag, const void *buf, size_t n) {
    return MPI_Send(buf, (int)n, MPI_BYTE, dest, tag, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

static size_t recv_polling(int src, int *from, int *tag, void *buf, size_t cap) {
    MPI_Status s;
    int flag = 0;
    struct timespec nap = {0, 2000000}; /* 2 ms: a coordinator must not steal a worker's core */
    for (;;) {
        MPI_Iprobe(src, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
        if (flag) break;
        nanosleep(&nap, NULL);
    }
    int count = 0;
    MPI_Get_count(&s, MPI_BYTE, &count);
    if ((size_t)count > cap) abort(); /* protocol bug: messages are fixed structs */
    MPI_Recv(buf, count, MPI_BYTE, s.MPI_SOURCE, s.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (from) *from = s.MPI_SOURCE;
    *tag = s.MPI_TAG;
    return (size_t)count;
}

size_t dist_recv_any(int *src, int *tag, void *buf, size_t cap) { return recv_polling(MPI_ANY_SOURCE, src, tag, buf, cap); }
size_t dist_recv_from(int src, int *tag, void *buf, size_t cap) { return recv_polling(src, NULL, tag, buf, cap); }

#else /* no MPI in this build: one process */

int dist_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 1;
}
void dist_finalize(void) {}
void dist_abort(int code) { (void)code; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
int dist_compiled(void) { return 0; }
int dist_split_groups(int group_size) {
    (void)group_size;
    return -1;
}
int dist_dp_rank(void) { return 0; }
int dist_dp_size(void) { return 1; }
void dist_group_bcast(void *buf, size_t n) { (void)buf, (void)n; }
void dist_allreduce_sum_f32(float *x, size_t n) { (void)x, (void)n; }
void dist_allreduce_sum_f64(double *x, size_t n) { (void)x, (void)n; }
void dist_barrier(void) {}
int dist_send(int dest, int tag, const void *buf, size_t n) {
    (void)dest, (void)tag, (void)buf, (void)n;
    abort(); /* callers check dist_size() > 1 first */
}
size_t dist_recv_any(int *src, int *tag, void *buf, size_t cap) {
    (void)src, (void)tag, (void)buf, (void)cap;
    abort();
}
size_t dist_recv_from(int src, int *tag, void *buf, size_t cap) {
    (void)src, (void)tag, (void)buf, (void)cap;
    abort();
}
#endif
