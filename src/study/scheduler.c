/* scheduler.c - running a study: plan, record, recover, then train with workers (see scheduler.h). */
#include "study/scheduler.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "core/sha256.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "dist/dist.h"
#include "study/alloc.h"
#include "study/coordinator.h"
#include "study/progress.h"
#include "study/registry.h"
#include "study/spec.h"
#include "study/tune.h"
#include "study/worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The identity of the study's data: the fingerprint of its corpus, or, when arms train on corpora
 * of their own, of all of them. Those must share the study corpus's held-out text (as corpora
 * derived by `algoprog corpus filter` do): every arm is evaluated on the same text, or CEGs would
 * compare different measurements. */
static int study_data_fingerprint(const StudySpec *s, char hex[65], Status *st) {
    if (dataset_fingerprint(s->data, hex, st)) return -1;
    Sha256 h;
    int mixed = 0;
    Corpus base;
    for (int i = 0; i < s->n_arms; i++) {
        const char *data = s->arms[i].cfg.data;
        int seen = !strcmp(data, s->data);
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(s->arms[j].cfg.data, data);
        if (seen) continue;
        Corpus c;
        if (!mixed && corpus_open(&base, s->data, dataset_data_dir(), st))
            return status_wrap(st, "arm '%s' trains on data '%s' of its own, so the study's data must be a corpus",
                               s->arms[i].name, data);
        if (corpus_open(&c, data, dataset_data_dir(), st)) return status_wrap(st, "arm '%s'", s->arms[i].name);
        if (strcmp(c.sha256[1], base.sha256[1]))
            return status_fail(st, AP_EINVAL, "arm '%s' trains on corpus '%s', whose held-out text differs from the "
                               "study corpus '%s': arms must be evaluated on the same text (derive corpora with "
                               "`algoprog corpus filter %s ...`)", s->arms[i].name, data, s->data, s->data);
        char arm_hex[65];
        if (dataset_fingerprint(data, arm_hex, st)) return -1;
        if (!mixed) sha256_init(&h), sha256_update(&h, hex, 64);
        mixed = 1;
        sha256_update(&h, data, strlen(data) + 1);
        sha256_update(&h, arm_hex, 64);
    }
    if (mixed) {
        unsigned char digest[32];
        sha256_final(&h, digest);
        sha256_to_hex(digest, hex);
    }
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


/* Records the plan (or checks the registry holds this study), recovers runs of dead workers and
 * settles sweeps a crash left open. Prints where the study stands. */
/* Runs this small train faster side by side, one thread each, than one at a time on every core
 * (measured: a 83k-parameter llama at batch 4 x 256, 1.2e9 FLOPs a step, gives 72 GFLOP/s on 2
 * threads but 2 x 52 GFLOP/s as two 1-thread runs). Larger steps keep every core on one run. */
#define SMALL_STEP_FLOPS 1e10

static int prepare(const char *study_path, const char *out_dir, const StudyOptions *o, int ranks, int G, int *workers_io,
                   int *threads_io, int *keep, Status *st) {
    StudySpec *s = calloc(1, sizeof *s);
    PlannedRun *runs = NULL;
    int n = 0;
    if (!s) return status_fail(st, AP_ENOMEM, "out of memory");
    if (load_plan(study_path, s, &runs, &n, st)) {
        free(s);
        return -1;
    }
    *keep = s->keep_checkpoints;
    double biggest = 0; /* FLOPs of the largest step of any run */
    for (int i = 0; i < n; i++) biggest = fmax(biggest, runs[i].flops / (runs[i].cfg.steps > 0 ? runs[i].cfg.steps : 1));
    int cores = parallel_cores();
    if (*workers_io <= 0) /* given threads per run, as many workers as fit the cores */
        *workers_io = ranks == 1 && biggest < SMALL_STEP_FLOPS ? (*threads_io > 0 && cores / *threads_io > 1 ? cores / *threads_io : *threads_io > 0 ? 1 : cores) : 1;
    if (*threads_io <= 0) *threads_io = cores / *workers_io > 0 ? cores / *workers_io : 1;
    int workers = *workers_io, threads = *threads_io;
    Registry *reg = NULL;
    char data_sha[65];
    int rc = study_data_fingerprint(s, data_sha, st);
    if (!rc) rc = registry_open(&reg, out_dir, REG_OPEN_CREATE, st);
    if (!rc) rc = registry_init_study(reg, s, runs, n, data_sha, st);
    int recovered = rc ? 0 : registry_recover(reg, st);
    if (recovered < 0) rc = -1;
    if (!rc) rc = tune_settle_pending(reg, st);
    RegistryCounts k;
    if (!rc) rc = registry_counts(reg, &k, st);
    if (!rc && !o->quiet) {
        char how[160];
        if (ranks > 1)
            snprintf(how, sizeof how, "%d MPI ranks: rank 0 hands out runs, %d train them (%d per run)", ranks,
                     ranks - 1, G);
        else
            snprintf(how, sizeof how, "%d worker%s x %d thread%s", workers, workers > 1 ? "s" : "", threads,
                     threads > 1 ? "s" : "");
        printf("study %s -> %s: %d runs (%d done, %d to go%s), %.3g FLOPs; %s\n", s->name, out_dir, k.total, k.done,
               k.total - k.done, recovered ? ", interrupted runs resume" : "", k.flops_total, how);
        fflush(stdout);
    }
    registry_close(reg);
    free(runs);
    spec_free(s);
    free(s);
    return rc;
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
    int workers = o->workers; /* 0: chosen from the runs' sizes in prepare() */
    WorkerOptions w = {out_dir, o->threads, 0, !o->quiet, o->stop};
    if (ranks > 1 && dist_rank() != 0) { /* a worker rank: never touches the registry */
        StudySpec *s = calloc(1, sizeof *s);
        if (s && spec_load(s, study_path, st) == 0) {
            w.keep_checkpoints = s->keep_checkpoints;
            spec_free(s);
        }
        free(s);
        w.threads = o->threads > 0 ? o->threads : 1;
        return coordinator_work(&w, st);
    }
    if (prepare(study_path, out_dir, o, ranks, G, &workers, &w.threads, &w.keep_checkpoints, st)) return -1;
    Registry *reg;
    RegistryCounts k;
    if (registry_open(&reg, out_dir, REG_OPEN_READ, st)) return -1;
    int rc = registry_counts(reg, &k, st);
    registry_close(reg);
    if (rc) return -1;
    double t0 = time_now(), flops0 = k.flops_done;
    if (ranks > 1) {
        Registry *reg;
        rc = registry_open(&reg, out_dir, REG_OPEN_WRITE, st);
        if (!rc) {
            rc = coordinator_serve(reg, &w, (ranks - 1) / G, st);
            registry_close(reg);
        }
        if (!rc && o->stop && *o->stop)
            rc = status_fail(st, AP_EINTERRUPTED, "study stopped; runs were checkpointed: run the same command again "
                                                  "to continue");
    } else if (workers == 1) {
        rc = worker_loop(&w, st);
    } else {
        rc = worker_fork_all(&w, workers, st);
    }
    if (rc) return -1;
    if (registry_open(&reg, out_dir, REG_OPEN_READ, st)) return -1;
    rc = registry_counts(reg, &k, st);
    registry_close(reg);
    if (rc) return -1;
    if (!o->quiet) {
        char t[32];
        double wall = time_now() - t0;
        progress_fmt_duration(t, sizeof t, wall);
        /* the study's throughput: what bench's peak figures are to be compared with */
        printf("study: %d/%d runs done in %s (%.1f GFLOP/s of training FLOPs over the wall time)%s\n", k.done,
               k.total, t, wall > 0 ? (k.flops_done - flops0) / wall * 1e-9 : 0.0,
               k.failed ? "; some runs failed (see `algoprog study status`)" : "");
        printf("study: where the time went, against this machine's peak: `algoprog bench --study %s`\n", out_dir);
    }
    return k.failed || k.done < k.total ? 1 : 0;
}
