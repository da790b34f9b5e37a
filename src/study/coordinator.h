/* coordinator.h - a study over MPI ranks (docs/CLUSTER.md).
 *
 * Rank 0 owns the registry (SQLite stays single-writer, on rank 0's disk) and hands out runs in
 * the registry's lease order; every other rank asks for a run, trains it into the shared out
 * directory and reports back. With ranks_per_run = G, ranks 1.. form groups of G that train one
 * run data-parallel; each group's first rank talks to the coordinator. A rank that dies takes
 * mpirun down with it; its run is still `running` under rank 0's (now dead) pid and goes back to
 * pending on the next start. */
#ifndef AP_COORDINATOR_H
#define AP_COORDINATOR_H

#include "core/status.h"
#include "study/registry.h"
#include "study/worker.h"

/* Rank 0: serves `groups` worker groups until every run is done or a stop request. */
int coordinator_serve(Registry *reg, const WorkerOptions *o, int groups, Status *st);
/* Ranks 1..: trains what rank 0 hands out. */
int coordinator_work(const WorkerOptions *o, Status *st);

#endif
