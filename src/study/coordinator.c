/* coordinator.c - a study over MPI ranks (see coordinator.h). */
#include "study/coordinator.h"

#include "core/parallel.h"
#include "dist/dist.h"
#include "study/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TAG_READY = 1, TAG_DONE, TAG_FAILED, TAG_STOPPED, TAG_RUN, TAG_WAIT, TAG_QUIT };

#define ASSIGN_CONFIG_MAX 32768

/* What rank 0 sends a group: one run. */
typedef struct {
    int tag;
    int id, kind, keep;
    char arm[64];
    char config[ASSIGN_CONFIG_MAX];
} Assignment;

/* What a group's leader sends back. */
typedef struct {
    int run_id;
    char message[512];
} RunReport;

static int stopping(const WorkerOptions *o) { return o->stop && *o->stop; }

/* A group reported the end of a run: record it. */
static void record(Registry *reg, const WorkerOptions *o, int src, int tag, const RunReport *rep) {
    Status rst = {0};
    RunRow x;
    char dir[1100];
    if (registry_run(reg, rep->run_id, &x, &rst) ||
        worker_run_dir(dir, sizeof dir, o->out_dir, x.id, x.arm, &rst)) {
        fprintf(stderr, "rank %d reported run %d: %s\n", src, rep->run_id, rst.msg);
        return;
    }
    if (tag == TAG_DONE && worker_record_done(reg, rep->run_id, dir, &rst) == 0) {
        if (o->show) progress_print_done(reg, rep->run_id);
    } else if (tag == TAG_STOPPED) {
        registry_release(reg, rep->run_id, &rst);
    } else {
        const char *why = tag == TAG_DONE ? rst.msg : rep->message;
        fprintf(stderr, "run %d (%s, rank %d) failed: %s\n", rep->run_id, x.arm, src, why);
        if (registry_fail(reg, rep->run_id, why, &rst) == 0 && x.kind == RUN_LR_SWEEP) tune_settle_arm(reg, x.arm_id, &rst);
    }
}

int coordinator_serve(Registry *reg, const WorkerOptions *o, int groups, Status *st) {
    int active = groups, rc = 0, quit = 0;
    Assignment *a = malloc(sizeof *a);
    if (!a) return status_fail(st, AP_ENOMEM, "out of memory");
    while (active > 0) {
        int src, tag;
        RunReport rep;
        memset(&rep, 0, sizeof rep);
        dist_recv_any(&src, &tag, &rep, sizeof rep);
        if (tag == TAG_DONE || tag == TAG_FAILED || tag == TAG_STOPPED) {
            rep.message[sizeof rep.message - 1] = '\0';
            record(reg, o, src, tag, &rep);
            continue;
        }
        if (tag != TAG_READY) abort(); /* protocol bug */
        Status rst = {0};
        LeasedRun c;
        int got = quit || stopping(o) ? 0 : registry_lease(reg, &c, &rst);
        if (got < 0) {
            rc = status_fail(st, rst.code, "%s", rst.msg);
            quit = 1; /* tell everyone to stop */
            got = 0;
        }
        if (got == 1 && strlen(c.config) >= sizeof a->config) {
            fprintf(stderr, "run %d (%s) failed: its config is over %d bytes\n", c.id, c.arm, ASSIGN_CONFIG_MAX);
            registry_fail(reg, c.id, "config too long to send to a rank", &rst);
            free(c.config);
            got = 0;
        }
        if (got == 1) {
            memset(a, 0, sizeof *a);
            a->tag = TAG_RUN;
            a->id = c.id, a->kind = c.kind, a->keep = c.keep;
            snprintf(a->arm, sizeof a->arm, "%s", c.arm);
            snprintf(a->config, sizeof a->config, "%s", c.config);
            free(c.config);
            dist_send(src, TAG_RUN, a, sizeof *a);
            continue;
        }
        RegistryCounts k = {0};
        /* a run marked running by a process that died (a rank of an earlier, killed study) would wait forever */
        if (!quit && !stopping(o) && registry_release_dead(reg, &rst) >= 0 && tune_settle_pending(reg, &rst) == 0 &&
            registry_counts(reg, &k, &rst) == 0 &&
            (k.running > 0 || k.pending > 0)) {
            dist_send(src, TAG_WAIT, "", 1); /* runs wait for a sweep another rank is training */
        } else {
            dist_send(src, TAG_QUIT, "", 1);
            active--;
        }
    }
    free(a);
    return rc;
}

int coordinator_work(const WorkerOptions *o, Status *st) {
    parallel_init(o->threads);
    Assignment *m = malloc(sizeof *m);
    if (!m) return status_fail(st, AP_ENOMEM, "out of memory");
    int leader = dist_dp_rank() == 0, stopped = 0;
    for (;;) {
        if (leader) {
            int tag;
            dist_send(0, TAG_READY, "", 1);
            memset(m, 0, sizeof *m);
            dist_recv_from(0, &tag, m, sizeof *m);
            m->tag = tag;
        }
        dist_group_bcast(m, sizeof *m);
        if (m->tag == TAG_QUIT) break;
        if (m->tag == TAG_WAIT) {
            sleep(1);
            continue;
        }
        ProgressCtx p = {NULL, m->id, m->arm, 0, 0, 0, 0, time_now(), 0, 0, 0};
        RunReport rep = {m->id, ""};
        Status rst = {0};
        char dir[1100];
        int r = worker_run_dir(dir, sizeof dir, o->out_dir, m->id, m->arm, &rst);
        if (!r) r = worker_train(dir, m->config, m->keep, o, dist_dp_size(), &p, &rst);
        if (r < 0) { /* the message, cut to the report's size */
            size_t l = strnlen(rst.msg, sizeof rep.message - 1);
            memcpy(rep.message, rst.msg, l);
            rep.message[l] = '\0';
        }
        if (leader) dist_send(0, r == 0 ? TAG_DONE : r == 1 ? TAG_STOPPED : TAG_FAILED, &rep, sizeof rep);
        if (r == 1) stopped = 1;
    }
    free(m);
    if (stopped) return status_fail(st, AP_EINTERRUPTED, "stopped; the run was checkpointed");
    return 0;
}
