/* worker.c - lease, train, record (see worker.h). */
#include "study/worker.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "dist/dist.h"
#include "study/tune.h"
#include "train/rundir.h"
#include "train/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

static int stopping(const WorkerOptions *o) { return o->stop && *o->stop; }

int worker_run_dir(char *buf, size_t size, const char *out_dir, int run_id, const char *arm, Status *st) {
    int n = snprintf(buf, size, "%s/runs/%d-%s", out_dir, run_id, arm);
    if (n < 0 || (size_t)n >= size || (size_t)n >= CONFIG_PATH_MAX)
        return status_fail(st, AP_EINVAL, "run directory path too long: %s/runs/%d-%s", out_dir, run_id, arm);
    return 0;
}

int worker_train(const char *dir, const char *config_json, int keep, const WorkerOptions *o, int dp_size,
                 ProgressCtx *p, Status *st) {
    if (rundir_has(dir, RUNDIR_FINAL)) return 0; /* trained, but the registry did not hear of it before a crash */
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return status_fail(st, AP_ENOMEM, "out of memory");
    tr->dp_size = dp_size;
    int rc;
    if (rundir_has(dir, RUNDIR_CHECKPOINT)) {
        rc = trainer_resume(tr, dir, 0, NULL, st);
    } else {
        Config cfg;
        config_defaults(&cfg);
        rc = config_from_json(&cfg, config_json, st);
        if (!rc) {
            snprintf(cfg.out, sizeof cfg.out, "%s", dir); /* worker_run_dir checked the length */
            cfg.threads = o->threads;
            rc = trainer_setup(tr, &cfg, st);
        }
    }
    if (!rc) {
        tr->quiet = 1;
        tr->stop = o->stop;
        tr->on_step = progress_on_step;
        tr->on_step_ctx = p;
        rc = trainer_run(tr, st);
        if (p->show) progress_clear_line();
    }
    trainer_free(tr);
    free(tr);
    if (rc) return st->code == AP_EINTERRUPTED ? 1 : -1;
    if (!o->keep_checkpoints && !keep && dist_dp_rank() == 0) {
        char path[1200];
        if (rundir_path(path, sizeof path, dir, RUNDIR_CHECKPOINT, st) == 0) unlink(path);
    }
    return 0;
}

int worker_record_done(Registry *reg, int run_id, const char *dir, Status *st) {
    RunFinal f;
    MetricRow *m = NULL;
    int n = 0, sweep_arm = 0;
    if (rundir_read_final(dir, &f, st) || rundir_read_metrics(dir, &m, &n, st)) return -1;
    int rc = registry_finish(reg, run_id, &f, m, n, &sweep_arm, st);
    free(m);
    if (!rc && sweep_arm) rc = tune_settle_arm(reg, sweep_arm, st);
    return rc;
}

/* Failures of the machine rather than of the run: the run goes back to pending and the study stops
 * with the error, instead of marking run after run failed on a full disk. */
static int environmental(StatusCode code) { return code == AP_ENOSPC || code == AP_EIO || code == AP_ENOMEM; }

/* Trains one leased run and records how it ended. 1 when stopped, 0 otherwise, -1 on an error that
 * stops the worker (st set). */
static int work_on(Registry *reg, const LeasedRun *c, const WorkerOptions *o, double t_start, double flops_at_start,
                   Status *st) {
    RegistryCounts k;
    Status rst = {0};
    if (registry_counts(reg, &k, st)) return -1;
    ProgressCtx p = {reg, c->id, c->arm, o->show && isatty(2), 0, k.flops_total, k.flops_done, t_start,
                     flops_at_start, k.done, k.total};
    char dir[1100];
    int r = worker_run_dir(dir, sizeof dir, o->out_dir, c->id, c->arm, &rst);
    if (!r) r = worker_train(dir, c->config, c->keep, o, 1, &p, &rst);
    if (r == 1) return registry_release(reg, c->id, st) ? -1 : 1;
    if (r == 0 && worker_record_done(reg, c->id, dir, &rst) == 0) {
        if (o->show) progress_print_done(reg, c->id);
        return 0;
    }
    if (environmental(rst.code)) {
        Status ignore;
        registry_release(reg, c->id, &ignore);
        *st = rst;
        return status_wrap(st, "run %d (%s)", c->id, c->arm);
    }
    fprintf(stderr, "run %d (%s) failed: %s\n", c->id, c->arm, rst.msg);
    if (registry_fail(reg, c->id, rst.msg, st)) return -1;
    /* a diverged sweep run is a result (its rate is too high): the sweep may be complete now */
    return c->kind == RUN_LR_SWEEP && tune_settle_arm(reg, c->arm_id, st) ? -1 : 0;
}

int worker_loop(const WorkerOptions *o, Status *st) {
    Registry *reg;
    if (registry_open(&reg, o->out_dir, REG_OPEN_WRITE, st)) return -1;
    parallel_init(o->threads);
    RegistryCounts k0;
    int rc = registry_counts(reg, &k0, st);
    double t_start = time_now();
    while (!rc && !stopping(o)) {
        LeasedRun c;
        int got = registry_lease(reg, &c, st);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0) {
            RegistryCounts k;
            /* nothing trains here while this worker waits: a run still marked as ours is stale, and so is one
             * whose holder died after this study started */
            if (registry_release_own(reg, st) < 0 || registry_release_dead(reg, st) < 0 || tune_settle_pending(reg, st) ||
                registry_counts(reg, &k, st)) {
                rc = -1;
                break;
            }
            if (k.pending) continue;                      /* a sweep was just settled */
            if (k.running == 0) break;                    /* blocked runs wait for sweeps nobody will run */
            struct timespec ts = {0, 250000000};          /* others are still training: wait for released runs */
            nanosleep(&ts, NULL);
            continue;
        }
        int r = work_on(reg, &c, o, t_start, k0.flops_done, st);
        free(c.config);
        if (r < 0) rc = -1;
    }
    registry_close(reg);
    if (!rc && stopping(o))
        rc = status_fail(st, AP_EINTERRUPTED, "study stopped; runs were checkpointed: run the same command again to "
                                              "continue");
    return rc;
}

/* The parent of forked workers: prints finished runs and the live line until every child ends. */
static int watch(Registry *reg, const WorkerOptions *o, const pid_t *pids, int n, int *failed, Status *st) {
    RegistryCounts k0;
    if (registry_counts(reg, &k0, st)) return -1;
    double t0 = time_now();
    int alive = n, last_done = k0.done, forwarded = 0;
    while (alive > 0) {
        int status;
        pid_t done = waitpid(-1, &status, WNOHANG);
        if (done > 0) {
            alive--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) == 1) {
                *failed = 1;
                if (alive > 0 && !stopping(o)) { /* say so now: the study slows down from here */
                    if (o->show) progress_clear_line();
                    fprintf(stderr, "study: a worker stopped on an error (its message is above); continuing on %d "
                            "worker%s\n", alive, alive == 1 ? "" : "s");
                }
            }
            continue;
        }
        if (done < 0 && errno != EINTR) break;
        if (stopping(o) && !forwarded) { /* a signal sent to us alone reaches the workers too */
            for (int w = 0; w < n; w++) kill(pids[w], (int)*o->stop);
            forwarded = 1;
        }
        if (o->show) {
            RegistryCounts k;
            Status ignore;
            if (!registry_counts(reg, &k, &ignore) && k.done > last_done) {
                int ids[MAX_WORKERS * 4], m = k.done - last_done;
                progress_clear_line();
                m = registry_recent_done(reg, ids, m < MAX_WORKERS * 4 ? m : MAX_WORKERS * 4, &ignore);
                for (int i = 0; i < m; i++) progress_print_done(reg, ids[i]);
                last_done = k.done;
            }
            if (isatty(2)) progress_print_study(reg, k0.flops_done, t0);
        }
        struct timespec ts = {0, 500000000};
        nanosleep(&ts, NULL);
    }
    if (o->show) progress_clear_line();
    return 0;
}

int worker_fork_all(const WorkerOptions *o, int workers, Status *st) {
    Registry *reg;
    if (registry_open(&reg, o->out_dir, REG_OPEN_WRITE, st)) return -1;
    pid_t pids[MAX_WORKERS], parent = getpid();
    int started = 0, rc = 0, failed = 0;
    fflush(stdout), fflush(stderr); /* children must not repeat buffered output */
    for (int w = 0; w < workers && w < MAX_WORKERS; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            rc = status_errno(st, errno, "cannot start worker %d", w);
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* workers stop (and checkpoint) with the study */
            if (getppid() != parent) _exit(2); /* the study died before the line above took effect */
            WorkerOptions wo = *o;
            wo.show = 0;
            Status wst = {0};
            int wrc = worker_loop(&wo, &wst);
            if (wrc < 0 && wst.code != AP_EINTERRUPTED) fprintf(stderr, "worker %d: %s\n", w, wst.msg);
            _exit(wrc == 0 ? 0 : wst.code == AP_EINTERRUPTED ? 2 : 1);
        }
        pids[started++] = pid;
    }
    if (watch(reg, o, pids, started, &failed, st)) rc = -1;
    registry_close(reg);
    if (!rc && stopping(o))
        return status_fail(st, AP_EINTERRUPTED, "study stopped; runs were checkpointed: run the same command again to "
                                                "continue");
    if (!rc && failed) return status_fail(st, AP_EIO, "a worker stopped on an error (its message is above)");
    return rc;
}
