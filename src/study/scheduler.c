/* scheduler.c - run, watch and export studies (see scheduler.h). */
#include "study/scheduler.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "dist/dist.h"
#include "study/alloc.h"
#include "study/registry.h"
#include "study/spec.h"
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_study_stop;
static void on_stop(int sig) { g_study_stop = sig; }

static void fmt_time(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

/* Checks what runs need, before any of them starts: the data and the tokenizer. */
static int check_inputs(const StudySpec *s, int *vocab, Status *st) {
    char tpath[700];
    Tokenizer t;
    if (dataset_tokenizer_path(s->tokenizer, tpath, sizeof tpath, st) || tokenizer_load(&t, tpath, st))
        return status_wrap(st, "study '%s'", s->name);
    *vocab = t.n_tokens;
    tokenizer_free(&t);
    Corpus c;
    Status ignore;
    if (!file_exists(s->data) && corpus_open(&c, s->data, dataset_data_dir(), &ignore))
        return status_fail(st, AP_EINVAL,
                           "study '%s': data '%s' is neither a file nor a built corpus (build it: `algoprog corpus "
                           "build %s`)",
                           s->name, s->data, s->data);
    return 0;
}

static int load_plan(const char *path, StudySpec *s, PlannedRun **runs, int *n, Status *st) {
    int vocab;
    if (spec_load(s, path, st)) return -1;
    if (check_inputs(s, &vocab, st) || alloc_plan(s, vocab, runs, n, st)) {
        spec_free(s);
        return -1;
    }
    return 0;
}

int study_plan(const char *study_path, FILE *out, Status *st) {
    StudySpec *s = calloc(1, sizeof *s);
    PlannedRun *runs;
    int n;
    if (!s) return status_fail(st, AP_ENOMEM, "out of memory");
    if (load_plan(study_path, s, &runs, &n, st)) {
        free(s);
        return -1;
    }
    double total = 0;
    fprintf(out, "study %s: %d arms, %d runs, allocation %s\n", s->name, s->n_arms, n, alloc_rule_name(s->allocation));
    fprintf(out, "%-14s %-8s %10s %5s %11s %11s %7s %10s %10s\n", "arm", "kind", "budget", "seed", "params", "tokens",
            "steps", "FLOPs", "x lr");
    for (int i = 0; i < n; i++) {
        const PlannedRun *r = &runs[i];
        total += r->flops;
        fprintf(out, "%-14s %-8s %10.3g %5d %11zu %11.4g %7d %10.4g %10.3g\n", s->arms[r->arm].name,
                r->kind == RUN_LR_SWEEP ? "lr-sweep" : "main", r->budget, r->seed, r->params_nonembedding, r->tokens,
                r->cfg.steps, r->flops, r->lr_mult);
    }
    fprintf(out, "total %.4g FLOPs\n", total);
    free(runs);
    spec_free(s);
    free(s);
    return 0;
}

/* ---------------------------------------------------------------- one worker */

typedef struct {
    Registry *reg;
    int run_id;
    double last_report;
    int show;
    const char *label;
    /* for the study-wide line: FLOPs of the study, done before this run, and the clock */
    double study_total, done_before, t_start, flops_at_start;
    int runs_done, runs_total;
} ProgressCtx;

static void on_step(void *ctx, const Trainer *tr, float loss) {
    ProgressCtx *p = ctx;
    double now = time_now();
    if (now - p->last_report < 1.0 && tr->ts.step != tr->cfg.steps) return;
    p->last_report = now;
    if (p->reg) registry_progress(p->reg, p->run_id, tr->ts.flops, loss); /* MPI workers have no registry */
    if (p->show) {
        double done = p->done_before + tr->ts.flops, rate = (done - p->flops_at_start) / (now - p->t_start);
        char eta[32] = "?";
        if (rate > 0) fmt_time(eta, sizeof eta, (p->study_total - done) / rate);
        fprintf(stderr, "\r\033[K[study %d/%d runs, %.0f%% of FLOPs, ETA %s] run %d %s: step %lld/%d, loss %.4f",
                p->runs_done, p->runs_total, 100.0 * done / (p->study_total > 0 ? p->study_total : 1), eta, p->run_id,
                p->label, (long long)tr->ts.step, tr->cfg.steps, loss);
        fflush(stderr);
    }
}

static void run_dir_of(const char *out_dir, const ClaimedRun *c, char *buf, size_t size) {
    snprintf(buf, size, "%s/runs/%d-%s", out_dir, c->id, c->arm);
}

static void remove_checkpoint(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    unlink(path);
}

/* Trains one claimed run (fresh or from its checkpoint). 0 done, 1 interrupted, -1 failed. */
static int train_run(const ClaimedRun *c, const char *out_dir, int threads, int dp_size, ProgressCtx *p,
                     int keep_ckpt, Status *st) {
    char dir[1100], path[1200];
    run_dir_of(out_dir, c, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/final.json", dir);
    if (file_exists(path)) return 0; /* trained, but the registry did not hear of it before a crash */
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return status_fail(st, AP_ENOMEM, "out of memory");
    tr->dp_size = dp_size;
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    int rc;
    if (file_exists(path)) {
        rc = trainer_resume(tr, dir, 0, NULL, st);
    } else {
        Config cfg;
        config_defaults(&cfg);
        rc = config_from_json(&cfg, c->config_json, st);
        if (!rc && strlen(dir) >= sizeof cfg.out) rc = status_fail(st, AP_EINVAL, "run directory path too long: %s", dir);
        if (!rc) memcpy(cfg.out, dir, strlen(dir) + 1);
        cfg.threads = threads;
        if (!rc) rc = trainer_setup(tr, &cfg, st);
    }
    if (!rc) {
        tr->quiet = 1;
        tr->on_step = on_step;
        tr->on_step_ctx = p;
        rc = trainer_run(tr, st);
        if (p->show) fprintf(stderr, "\r\033[K");
    }
    int interrupted = rc && strstr(st->msg, "interrupted by signal");
    trainer_free(tr);
    free(tr);
    if (interrupted) return 1;
    if (rc) return -1;
    if (!keep_ckpt && dist_dp_rank() == 0) remove_checkpoint(dir);
    return 0;
}

static void print_done(Registry *reg, int run_id) {
    sqlite3_stmt *q;
    sqlite3_prepare_v2(reg->db,
                       "SELECT arm.name, kind, params_nonembedding, tokens, flops, val_bpb, elapsed_s, run.lr_mult"
                       " FROM run JOIN arm ON arm.id=arm_id WHERE run.id=?",
                       -1, &q, NULL);
    sqlite3_bind_int(q, 1, run_id);
    if (sqlite3_step(q) == SQLITE_ROW) {
        char t[32];
        fmt_time(t, sizeof t, sqlite3_column_double(q, 6));
        printf("done run %3d %-12s %-8s N=%-9lld D=%-9.3g %9.3g FLOPs  x%-5.3g lr  %.4f bits/byte  (%s)\n", run_id,
               (const char *)sqlite3_column_text(q, 0),
               strcmp((const char *)sqlite3_column_text(q, 1), "main") ? "lr-sweep" : "main",
               (long long)sqlite3_column_int64(q, 2), sqlite3_column_double(q, 3), sqlite3_column_double(q, 4),
               sqlite3_column_double(q, 7), sqlite3_column_double(q, 5), t);
        fflush(stdout);
    }
    sqlite3_finalize(q);
}

/* Claims and trains runs until none is left or a signal stops us. Returns 130 when stopped. */
static int worker_loop(const char *out_dir, int threads, int show, int keep_ckpt, Status *st) {
    Registry reg;
    if (registry_open(&reg, out_dir, 0, st)) return -1;
    parallel_init(threads);
    int rc = 0;
    RegistryCounts k0;
    if (registry_counts(&reg, &k0, st)) {
        registry_close(&reg);
        return -1;
    }
    double t_start = time_now();
    while (!g_study_stop) {
        ClaimedRun *c = malloc(sizeof *c);
        if (!c) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        int got = registry_claim(&reg, c, st);
        if (got < 0) {
            free(c);
            rc = -1;
            break;
        }
        if (got == 0) {
            free(c);
            RegistryCounts k;
            if (registry_counts(&reg, &k, st)) {
                rc = -1;
                break;
            }
            if (k.running == 0 && k.pending == 0) break; /* blocked runs wait for sweeps nobody will run */
            sleep(1);                                    /* others are still training: wait for released runs */
            continue;
        }
        Status rst = {0};
        RegistryCounts k;
        registry_counts(&reg, &k, &rst);
        ProgressCtx p = {&reg, c->id, 0, show && isatty(2), c->arm, k.flops_total, k.flops_done, t_start,
                         k0.flops_done, k.done, k.total};
        int r = train_run(c, out_dir, threads, 1, &p, keep_ckpt, &rst);
        char dir[1100];
        run_dir_of(out_dir, c, dir, sizeof dir);
        if (r == 0 && registry_finish(&reg, c->id, dir, &rst) == 0) {
            if (show) print_done(&reg, c->id);
        } else if (r == 1) {
            registry_release(&reg, c->id, st);
            free(c);
            rc = 130;
            break;
        } else {
            fprintf(stderr, "run %d (%s) failed: %s\n", c->id, c->arm, rst.msg);
            registry_fail(&reg, c->id, rst.msg, st);
        }
        free(c);
    }
    if (g_study_stop && rc == 0) rc = 130;
    registry_close(&reg);
    return rc;
}

/* ---------------------------------------------------------------- over MPI ranks
 * Rank 0 owns the registry (SQLite stays single-writer, on rank 0's disk) and hands out runs in
 * the registry's claim order; every other rank asks for a run, trains it into the shared out
 * directory and reports back. A rank that dies takes mpirun down with it; its run is still
 * `running` under rank 0's (now dead) pid and goes back to pending on the next start. */
enum { TAG_READY = 1, TAG_DONE, TAG_FAILED, TAG_STOPPED, TAG_RUN, TAG_WAIT, TAG_QUIT };

typedef struct {
    int run_id;
    char message[512];
} RunReport;

static int mpi_coordinator(Registry *reg, const char *out_dir, int groups, int show, Status *st) {
    int active = groups, rc = 0;
    ClaimedRun *c = malloc(sizeof *c);
    RunReport *rep = malloc(sizeof *rep);
    if (!c || !rep) {
        free(c), free(rep);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    while (active > 0) {
        int src, tag;
        union {
            RunReport rep;
            char none;
        } msg;
        dist_recv_any(&src, &tag, &msg, sizeof msg);
        Status rst = {0};
        if (tag == TAG_DONE || tag == TAG_FAILED || tag == TAG_STOPPED) {
            *rep = msg.rep;
            char dir[1100];
            ClaimedRun tmp = {.id = rep->run_id};
            sqlite3_stmt *q; /* the run directory needs the arm's name */
            sqlite3_prepare_v2(reg->db, "SELECT arm.name FROM run JOIN arm ON arm.id=arm_id WHERE run.id=?", -1, &q,
                               NULL);
            sqlite3_bind_int(q, 1, rep->run_id);
            if (sqlite3_step(q) == SQLITE_ROW) snprintf(tmp.arm, sizeof tmp.arm, "%s", sqlite3_column_text(q, 0));
            sqlite3_finalize(q);
            run_dir_of(out_dir, &tmp, dir, sizeof dir);
            if (tag == TAG_DONE && registry_finish(reg, rep->run_id, dir, &rst) == 0) {
                if (show) print_done(reg, rep->run_id);
            } else if (tag == TAG_STOPPED) {
                registry_release(reg, rep->run_id, &rst);
            } else {
                const char *why = tag == TAG_DONE ? rst.msg : rep->message;
                fprintf(stderr, "run %d (%s, rank %d) failed: %s\n", rep->run_id, tmp.arm, src, why);
                registry_fail(reg, rep->run_id, why, &rst);
            }
            continue;
        }
        if (tag != TAG_READY) abort(); /* protocol bug */
        int got = g_study_stop ? 0 : registry_claim(reg, c, &rst);
        if (got < 0) {
            rc = status_fail(st, AP_EIO, "%s", rst.msg);
            g_study_stop = SIGTERM; /* tell everyone to stop */
            got = 0;
        }
        if (got == 1) {
            dist_send(src, TAG_RUN, c, sizeof *c);
            continue;
        }
        RegistryCounts k = {0};
        registry_counts(reg, &k, &rst);
        if (g_study_stop || (k.running == 0 && k.pending == 0)) {
            dist_send(src, TAG_QUIT, "", 1);
            active--;
        } else {
            dist_send(src, TAG_WAIT, "", 1); /* runs wait for a sweep another rank is training */
        }
    }
    free(c), free(rep);
    return rc;
}

/* A group of ranks_per_run ranks trains one run at a time; its rank 0 (the leader) talks to the
 * coordinator and broadcasts each assignment to the group. */
static int mpi_worker(const char *out_dir, int threads, int keep_ckpt, Status *st) {
    parallel_init(threads);
    struct {
        int tag;
        ClaimedRun c;
    } *m = malloc(sizeof *m);
    if (!m) return status_fail(st, AP_ENOMEM, "out of memory");
    int leader = dist_dp_rank() == 0, stopped = 0;
    for (;;) {
        if (leader) {
            dist_send(0, TAG_READY, "", 1);
            dist_recv_from(0, &m->tag, &m->c, sizeof m->c);
        }
        dist_group_bcast(m, sizeof *m);
        if (m->tag == TAG_QUIT) break;
        if (m->tag == TAG_WAIT) {
            sleep(1);
            continue;
        }
        ProgressCtx p = {NULL, m->c.id, 0, 0, m->c.arm, 0, 0, time_now(), 0, 0, 0};
        RunReport rep = {m->c.id, ""};
        Status rst = {0};
        int r = train_run(&m->c, out_dir, threads, dist_dp_size(), &p, keep_ckpt, &rst);
        if (r < 0) { /* the message, cut to the report's size */
            size_t l = strnlen(rst.msg, sizeof rep.message - 1);
            memcpy(rep.message, rst.msg, l);
            rep.message[l] = '\0';
        }
        if (leader) dist_send(0, r == 0 ? TAG_DONE : r == 1 ? TAG_STOPPED : TAG_FAILED, &rep, sizeof rep);
        if (r == 1) stopped = 1;
    }
    free(m);
    return stopped ? 130 : 0;
}

/* ---------------------------------------------------------------- the study */

static void print_progress(Registry *reg, double flops_start, double t_start) {
    RegistryCounts k;
    Status st;
    if (registry_counts(reg, &k, &st)) return;
    double rate = (k.flops_done - flops_start) / (time_now() - t_start);
    char eta[32] = "?";
    if (rate > 0) fmt_time(eta, sizeof eta, (k.flops_total - k.flops_done) / rate);
    fprintf(stderr, "\r\033[K[study] runs %d/%d done, %d running%s | FLOPs %.3g / %.3g (%.0f%%) | ETA %s", k.done,
            k.total, k.running, k.failed ? " (some failed)" : "", k.flops_done, k.flops_total,
            100.0 * k.flops_done / (k.flops_total > 0 ? k.flops_total : 1), eta);
    fflush(stderr);
}

int study_run(const char *study_path, const char *out_dir, const StudyOptions *o, Status *st) {
    int ranks = dist_size(), G = o->ranks_per_run > 1 ? o->ranks_per_run : 1;
    if (ranks > 1 && o->workers > 1)
        return status_fail(st, AP_EINVAL, "under mpirun each rank is a worker: drop workers=%d", o->workers);
    if (G > 1 && (ranks < 2 || (ranks - 1) % G))
        return status_fail(st, AP_EINVAL,
                           "ranks_per_run=%d needs mpirun with 1 + a multiple of %d ranks (rank 0 coordinates), got %d",
                           G, G, ranks);
    if (ranks > 1) dist_split_groups(G); /* collective: every rank, before they part ways */
    if (ranks > 1 && dist_rank() != 0) { /* a worker rank: never touches the registry */
        int threads = o->threads > 0 ? o->threads : 1;
        int keep = 0;
        StudySpec *s = calloc(1, sizeof *s);
        if (s && spec_load(s, study_path, st) == 0) {
            keep = s->keep_checkpoints;
            spec_free(s);
        }
        free(s);
        return mpi_worker(out_dir, threads, keep, st);
    }
    StudySpec *s = calloc(1, sizeof *s);
    PlannedRun *runs = NULL;
    int n = 0;
    if (!s) return status_fail(st, AP_ENOMEM, "out of memory");
    if (load_plan(study_path, s, &runs, &n, st)) {
        free(s);
        return -1;
    }
    Registry reg;
    int rc = registry_open(&reg, out_dir, 1, st);
    if (!rc) rc = registry_init_study(&reg, s, runs, n, st);
    int recovered = rc ? 0 : registry_recover(&reg, st);
    if (recovered < 0) rc = -1;
    int keep = s->keep_checkpoints, workers = o->workers > 0 ? o->workers : 1;
    int threads = o->threads > 0 ? o->threads : (parallel_cores() / workers > 0 ? parallel_cores() / workers : 1);
    if (!rc && !o->quiet) {
        RegistryCounts k;
        registry_counts(&reg, &k, st);
        if (ranks > 1)
            printf("study %s -> %s: %d runs (%d done, %d to go%s), %.3g FLOPs; %d MPI ranks: rank 0 hands out runs, "
                   "%d train them (%d per run)\n",
                   s->name, out_dir, k.total, k.done, k.total - k.done, recovered ? ", interrupted runs resume" : "",
                   k.flops_total, ranks, ranks - 1, G);
        else
            printf("study %s -> %s: %d runs (%d done, %d to go%s), %.3g FLOPs; %d worker%s x %d thread%s\n", s->name,
                   out_dir, k.total, k.done, k.total - k.done, recovered ? ", interrupted runs resume" : "",
                   k.flops_total, workers, workers > 1 ? "s" : "", threads, threads > 1 ? "s" : "");
        fflush(stdout);
    }
    free(runs);
    spec_free(s);
    free(s);
    if (rc) {
        registry_close(&reg);
        return -1;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_study_stop = 0;
    RegistryCounts k0;
    registry_counts(&reg, &k0, st);
    double t0 = time_now();
    if (ranks > 1) {
        rc = mpi_coordinator(&reg, out_dir, (ranks - 1) / G, !o->quiet, st);
        registry_close(&reg);
        if (g_study_stop && rc == 0) rc = 130;
    } else if (workers == 1) {
        registry_close(&reg);
        rc = worker_loop(out_dir, threads, !o->quiet, keep, st);
    } else {
        int started = 0;
        for (int w = 0; w < workers && w < 64; w++) {
            pid_t pid = fork();
            if (pid < 0) {
                rc = status_errno(st, errno, "cannot start worker %d", w);
                break;
            }
            if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM); /* workers stop (and checkpoint) with the study */
                Status wst = {0};
                int wrc = worker_loop(out_dir, threads, 0, keep, &wst);
                if (wrc < 0) fprintf(stderr, "worker %d: %s\n", w, wst.msg);
                _exit(wrc < 0 ? 1 : wrc == 130 ? 130 : 0);
            }
            started++;
        }
        int alive = started;
        int last_done = k0.done;
        while (alive > 0) {
            int status;
            pid_t done = waitpid(-1, &status, WNOHANG);
            if (done > 0) {
                alive--;
                continue;
            }
            if (done < 0 && errno != EINTR) break;
            if (!o->quiet) {
                int tty = isatty(2);
                RegistryCounts k;
                if (!registry_counts(&reg, &k, st) && k.done != last_done) {
                    if (tty) fprintf(stderr, "\r\033[K");
                    sqlite3_stmt *q;
                    sqlite3_prepare_v2(reg.db,
                                       "SELECT id FROM run WHERE status='done' ORDER BY finished_at DESC, id DESC LIMIT ?",
                                       -1, &q, NULL);
                    sqlite3_bind_int(q, 1, k.done - last_done);
                    while (sqlite3_step(q) == SQLITE_ROW) print_done(&reg, sqlite3_column_int(q, 0));
                    sqlite3_finalize(q);
                    last_done = k.done;
                }
                if (tty) print_progress(&reg, k0.flops_done, t0);
            }
            struct timespec ts = {0, 500000000};
            nanosleep(&ts, NULL);
        }
        if (!o->quiet && isatty(2)) fprintf(stderr, "\r\033[K");
        registry_close(&reg);
        if (g_study_stop && rc == 0) rc = 130;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc < 0) return -1;
    if (rc == 130) {
        status_fail(st, AP_EINTERNAL, "study stopped by a signal; runs were checkpointed: run the same command again "
                                      "to continue");
        return 130;
    }
    if (registry_open(&reg, out_dir, 0, st)) return -1;
    RegistryCounts k;
    rc = registry_counts(&reg, &k, st);
    registry_close(&reg);
    if (rc) return -1;
    if (!o->quiet) {
        char t[32];
        fmt_time(t, sizeof t, time_now() - t0);
        printf("study: %d/%d runs done in %s%s\n", k.done, k.total, t,
               k.failed ? "; some runs failed (see `algoprog study status`)" : "");
    }
    return k.failed || k.done < k.total ? 1 : 0;
}

/* ---------------------------------------------------------------- status and export */

int study_status(const char *out_dir, FILE *out, Status *st) {
    Registry reg;
    if (registry_open(&reg, out_dir, 0, st)) return -1;
    RegistryCounts k;
    if (registry_counts(&reg, &k, st)) {
        registry_close(&reg);
        return -1;
    }
    sqlite3_stmt *q;
    sqlite3_prepare_v2(reg.db, "SELECT name, allocation, data, tokenizer, created FROM study", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW)
        fprintf(out, "study %s (allocation %s, data %s, tokenizer %s, created %s)\n", sqlite3_column_text(q, 0),
                sqlite3_column_text(q, 1), sqlite3_column_text(q, 2), sqlite3_column_text(q, 3),
                sqlite3_column_text(q, 4));
    sqlite3_finalize(q);
    fprintf(out, "runs: %d done, %d running, %d pending, %d blocked, %d failed of %d | FLOPs %.4g of %.4g (%.0f%%)\n",
            k.done, k.running, k.pending, k.blocked, k.failed, k.total, k.flops_done, k.flops_total,
            100.0 * k.flops_done / (k.flops_total > 0 ? k.flops_total : 1));
    fprintf(out, "\n%-14s %-9s %9s %5s %10s %10s %10s %6s %-8s %10s\n", "arm", "kind", "budget", "seed", "params",
            "tokens", "FLOPs", "x lr", "status", "bits/byte");
    sqlite3_prepare_v2(reg.db,
                       "SELECT arm.name, kind, budget, seed, params_nonembedding, tokens, flops, run.lr_mult, status,"
                       " val_bpb, copied_from FROM run JOIN arm ON arm.id=arm_id ORDER BY arm.id, kind DESC, budget,"
                       " point, seed, run.lr_mult",
                       -1, &q, NULL);
    while (sqlite3_step(q) == SQLITE_ROW) {
        char bpb[32] = "-";
        if (sqlite3_column_type(q, 9) != SQLITE_NULL) snprintf(bpb, sizeof bpb, "%.4f", sqlite3_column_double(q, 9));
        fprintf(out, "%-14s %-9s %9.3g %5d %10lld %10.4g %10.4g %6.3g %-8s %10s%s\n", sqlite3_column_text(q, 0),
                strcmp((const char *)sqlite3_column_text(q, 1), "main") ? "lr-sweep" : "main",
                sqlite3_column_double(q, 2), sqlite3_column_int(q, 3), (long long)sqlite3_column_int64(q, 4),
                sqlite3_column_double(q, 5), sqlite3_column_double(q, 6), sqlite3_column_double(q, 7),
                sqlite3_column_text(q, 8), bpb, sqlite3_column_type(q, 10) != SQLITE_NULL ? " (= its sweep run)" : "");
    }
    sqlite3_finalize(q);
    fprintf(out, "\n%-14s %-16s %10s %12s  %s\n", "arm", "preset", "best bpb", "lr", "how the lr was chosen");
    sqlite3_prepare_v2(reg.db,
                       "SELECT name, preset, (SELECT min(val_bpb) FROM run WHERE arm_id=arm.id AND kind='main'), lr,"
                       " lr_source, overrides FROM arm ORDER BY id",
                       -1, &q, NULL);
    while (sqlite3_step(q) == SQLITE_ROW) {
        char best[32] = "-", lr[32] = "-";
        if (sqlite3_column_type(q, 2) != SQLITE_NULL) snprintf(best, sizeof best, "%.4f", sqlite3_column_double(q, 2));
        if (sqlite3_column_type(q, 3) != SQLITE_NULL) snprintf(lr, sizeof lr, "%.4g", sqlite3_column_double(q, 3));
        fprintf(out, "%-14s %-16s %10s %12s  %s%s%s\n", sqlite3_column_text(q, 0), sqlite3_column_text(q, 1), best, lr,
                sqlite3_column_text(q, 4), sqlite3_column_bytes(q, 5) ? "; overrides: " : "",
                sqlite3_column_text(q, 5));
    }
    sqlite3_finalize(q);
    registry_close(&reg);
    return 0;
}

/* Writes a query's rows as CSV (RFC 4180 quoting for text). */
static int write_csv(Registry *reg, const char *sql, const char *path, Status *st) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(reg->db, sql, -1, &q, NULL) != SQLITE_OK)
        return status_fail(st, AP_EIO, "export: %s", sqlite3_errmsg(reg->db));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int cols = sqlite3_column_count(q), rc = 0;
#define PUT(...)                                                                                                     \
    do {                                                                                                             \
        int need = snprintf(NULL, 0, __VA_ARGS__);                                                                   \
        if (len + (size_t)need + 1 > cap) {                                                                          \
            cap = 2 * (cap + (size_t)need);                                                                          \
            char *nb = realloc(buf, cap);                                                                            \
            if (!nb) {                                                                                               \
                rc = -1;                                                                                             \
                break;                                                                                               \
            }                                                                                                        \
            buf = nb;                                                                                                \
        }                                                                                                            \
        len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__);                                                  \
    } while (0)
    for (int c = 0; c < cols && buf; c++) PUT("%s%s", c ? "," : "", sqlite3_column_name(q, c));
    PUT("\n");
    while (!rc && sqlite3_step(q) == SQLITE_ROW) {
        for (int c = 0; c < cols; c++) {
            if (c) PUT(",");
            switch (sqlite3_column_type(q, c)) {
            case SQLITE_NULL: break;
            case SQLITE_INTEGER: PUT("%lld", (long long)sqlite3_column_int64(q, c)); break;
            case SQLITE_FLOAT: PUT("%.17g", sqlite3_column_double(q, c)); break;
            default: {
                const char *t = (const char *)sqlite3_column_text(q, c);
                PUT("\"");
                for (; *t; t++) {
                    if (*t == '"') PUT("\"\"");
                    else PUT("%c", *t);
                }
                PUT("\"");
            }
            }
        }
        PUT("\n");
    }
#undef PUT
    sqlite3_finalize(q);
    if (rc || !buf) {
        free(buf);
        return status_fail(st, AP_ENOMEM, "out of memory exporting");
    }
    rc = file_write_atomic(path, buf, len, st);
    free(buf);
    return rc;
}

static const char *RUNS_SQL =
    "SELECT run.id AS run, arm.name AS arm, arm.preset AS preset, kind, budget, point, seed, run.lr_mult,"
    " arm.base_lr * run.lr_mult AS lr, target_params, params, params_nonembedding, d_model, n_layers, tokens, flops,"
    " flops_6nd, steps, status, attempts, started_at, finished_at, elapsed_s, val_loss, val_bpb, copied_from, error,"
    " config FROM run JOIN arm ON arm.id=arm_id ORDER BY run.id";
static const char *METRICS_SQL =
    "SELECT metric.run_id AS run, arm.name AS arm, metric.step, metric.tokens, metric.flops, metric.epochs,"
    " metric.train_loss, metric.val_loss, metric.val_bpb, metric.lr, metric.grad_norm FROM metric"
    " JOIN run ON run.id=metric.run_id JOIN arm ON arm.id=run.arm_id ORDER BY metric.run_id, metric.step";

int study_export(const char *out_dir, const char *to_dir, int json, int quiet, Status *st) {
    Registry reg;
    if (registry_open(&reg, out_dir, 0, st)) return -1;
    const char *dest = to_dir ? to_dir : out_dir;
    char path[1100];
    int rc;
    if (!json) {
        snprintf(path, sizeof path, "%s/runs.csv", dest);
        rc = write_csv(&reg, RUNS_SQL, path, st);
        snprintf(path, sizeof path, "%s/metrics.csv", dest);
        if (!rc) rc = write_csv(&reg, METRICS_SQL, path, st);
        if (!rc && !quiet) printf("wrote %s/runs.csv and %s/metrics.csv\n", dest, dest);
    } else {
        /* SQLite's JSON functions build the document: one object per run, its metrics nested */
        char sql[4096];
        snprintf(sql, sizeof sql,
                 "SELECT json_group_array(json_object('run', r.run, 'arm', r.arm, 'preset', r.preset, 'kind', r.kind,"
                 " 'budget', r.budget, 'point', r.point, 'seed', r.seed, 'lr_mult', r.lr_mult, 'lr', r.lr,"
                 " 'target_params', r.target_params, 'params', r.params, 'params_nonembedding', r.params_nonembedding,"
                 " 'd_model', r.d_model, 'n_layers', r.n_layers, 'tokens', r.tokens, 'flops', r.flops,"
                 " 'flops_6nd', r.flops_6nd, 'steps', r.steps, 'status', r.status, 'elapsed_s', r.elapsed_s,"
                 " 'val_loss', r.val_loss, 'val_bpb', r.val_bpb, 'config', json(r.config),"
                 " 'metrics', (SELECT json_group_array(json_object('step', step, 'tokens', tokens, 'flops', flops,"
                 " 'epochs', epochs, 'train_loss', train_loss, 'val_loss', val_loss, 'val_bpb', val_bpb, 'lr', lr,"
                 " 'grad_norm', grad_norm)) FROM metric WHERE run_id=r.run))) FROM (%s) r",
                 RUNS_SQL);
        sqlite3_stmt *q;
        rc = sqlite3_prepare_v2(reg.db, sql, -1, &q, NULL) == SQLITE_OK ? 0
                                                                       : status_fail(st, AP_EIO, "export: %s",
                                                                                     sqlite3_errmsg(reg.db));
        if (!rc && sqlite3_step(q) == SQLITE_ROW) {
            snprintf(path, sizeof path, "%s/study.json", dest);
            rc = file_write_atomic(path, sqlite3_column_text(q, 0), (size_t)sqlite3_column_bytes(q, 0), st);
            if (!rc && !quiet) printf("wrote %s\n", path);
        }
        if (!rc || q) sqlite3_finalize(q);
    }
    registry_close(&reg);
    return rc;
}
