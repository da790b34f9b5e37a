/* registry.h - a study's runs and results in SQLite (DIR/registry.db), safe for many workers.
 *
 * The only module that speaks SQL: everything above it sees typed rows (StudyInfo, ArmRow, RunRow,
 * MetricRow) and verbs (lease, finish, fail, release, settle). Every SQLite call is checked and a
 * failure names the registry file and the operation.
 *
 * Tables (docs/FORMATS.md has every column): meta (schema version, study identity), study, arm
 * (with the learning rate chosen for it and how), run (planned shape and budget, exact N / D /
 * FLOPs, config JSON, status, timings, results) and metric (one row per evaluation).
 * WAL mode lets readers (study status, report) watch while workers write. A worker leases a run
 * inside BEGIN IMMEDIATE, which holds the write lock: two workers can never lease the same run.
 *
 * Run status: blocked (waiting for its arm's learning-rate sweep) -> pending -> running ->
 * done | failed. A run left `running` by a process that no longer exists goes back to pending
 * when the study is started again, and resumes from its checkpoint. */
#ifndef AP_REGISTRY_H
#define AP_REGISTRY_H

#include "core/status.h"
#include "study/alloc.h"
#include "study/spec.h"
#include "train/rundir.h"

#define REGISTRY_SCHEMA_VERSION 3
#define REGISTRY_FILE "registry.db"

typedef struct Registry Registry;

typedef enum { REG_OPEN_READ = 0, REG_OPEN_WRITE = 1, REG_OPEN_CREATE = 2 } RegistryMode;

/* Opens DIR/registry.db. READ: an existing registry, read only (reports, status, export).
 * WRITE: an existing registry. CREATE: creates DIR and an empty registry if missing.
 * Refuses, with a one-line reason, a file that is not SQLite, is damaged, is some other SQLite
 * database, or was written by a newer schema. */
int registry_open(Registry **r, const char *dir, RegistryMode mode, Status *st);
void registry_close(Registry *r);
/* Other workers hold the write lock for milliseconds: a statement waits up to this long for it. */
#define REGISTRY_BUSY_MS 60000
/* Another wait (tests of a registry held for good). */
void registry_set_busy_timeout(Registry *r, int ms);
const char *registry_path(const Registry *r);

typedef enum { RUN_BLOCKED = 0, RUN_PENDING, RUN_RUNNING, RUN_DONE, RUN_FAILED } RunStatus;
const char *run_status_name(int status);
const char *run_kind_name(int kind);

typedef struct {
    char name[128], allocation[16], data[512], tokenizer[512], created[32], sha256[65];
    char *spec; /* the study file as it was run (malloc'ed) */
} StudyInfo;

typedef struct {
    int id;
    char name[64], preset[256], allocation[16];
    char overrides[STUDY_MAX_OVERRIDES * 80]; /* "key=value key=value" as in the study file */
    double base_lr, lr_mult, lr;              /* lr_mult, lr: NaN until the sweep chose them */
    char lr_source[300];
    int tune_arm; /* the arm whose sweep sets this arm's learning rate */
} ArmRow;

typedef struct {
    int id, arm_id;
    char arm[64];
    int kind; /* RunKind */
    int budget_index, point, seed;
    double budget, lr_mult, target_params;
    long long params, params_nonembedding, params_kaplan; /* Chinchilla's, ours (N), Kaplan's conventions */
    int d_model, n_layers, steps;
    double tokens, flops, flops_6nd;
    int status; /* RunStatus */
    int attempts;
    double elapsed_s, val_loss, val_bpb; /* NaN when not known; val: the validation half */
    double test_loss, test_bpb;          /* the test half: what frontiers use */
    double test_bpb_se;                  /* its standard error over evaluation windows */
    double unigram_bpb;                  /* the plateau of a run that learnt nothing */
    int keep;                            /* its final checkpoint is kept */
    int copied_from;                     /* 0: trained itself; else the run whose result it shares */
    char *config;                        /* resolved recipe as JSON (malloc'ed; registry_runs_free) */
} RunRow;

typedef struct {
    int total, done, running, pending, blocked, failed;
    double flops_total, flops_done; /* planned, and trained so far (finished runs and progress of others) */
} RegistryCounts;

/* ---- setting up */
/* New registry: stores the study, its planned runs and data_sha256 (dataset_fingerprint of its
 * data). Existing: checks it holds this very study (same file contents) on the same data (a
 * registry from before the data was recorded records it now), else refuses, naming both
 * checksums when the data changed. Safe when two processes start together. */
int registry_init_study(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, const char *data_sha256,
                        Status *st);
/* Gives runs of dead local workers, and failed runs, back to pending. Returns how many. */
int registry_recover(Registry *r, Status *st);
/* Gives runs held by processes of this host that have died back to pending; returns how many. For
 * a study that waits on runs marked running: their holder may have died after the study started
 * (an orphaned rank of a killed mpirun, say). */
int registry_release_dead(Registry *r, Status *st);

/* ---- the life of a run */
typedef struct {
    int id, arm_id;
    char arm[64];
    int kind;
    int keep;     /* keep the final checkpoint */
    char *config; /* JSON (malloc'ed; free it) */
} LeasedRun;

/* 1: leased *out (status running, this host and pid); 0: nothing pending now; -1: error.
 * Identical runs (same kind and resolved recipe, e.g. a Kaplan arm's first budget and its
 * Chinchilla twin) are trained once: a run waits while its twin trains and takes its result. */
int registry_lease(Registry *r, LeasedRun *out, Status *st);
int registry_progress(Registry *r, int run_id, double flops_done, double loss, Status *st);
/* Records a finished run's metrics and final loss and marks it done. *sweep_arm is set to the
 * run's arm id when it was the last open run of that arm's learning-rate sweep, else 0. */
int registry_finish(Registry *r, int run_id, const RunFinal *f, const MetricRow *m, int n_metrics, int *sweep_arm,
                    Status *st);
int registry_fail(Registry *r, int run_id, const char *message, Status *st);
/* An interrupted run goes back to pending (it resumes from its checkpoint next time). */
int registry_release(Registry *r, int run_id, Status *st);
/* Every run this process (host and pid) holds goes back to pending; returns how many. For a worker
 * that is not training: anything still marked as its own is stale. */
int registry_release_own(Registry *r, Status *st);

/* ---- learning-rate sweeps (the policy lives in study/tune.c) */
/* Sweep leaders whose sweep is complete while runs of their group wait (after a crash, say). */
int registry_arms_to_settle(Registry *r, int *arm_ids, int max, Status *st);
/* The arms a leader's sweep tunes (itself and the arms that share its recipe). */
int registry_tune_group(Registry *r, int leader, int *arm_ids, int max, Status *st);
typedef struct {
    int arm_id;
    double lr_mult;        /* a representative multiplier of the preset's rate (the arm's smallest run) */
    const char *lr_source; /* how it was chosen, in words */
} ArmTuning;
typedef struct {
    int run_id;
    const char *config; /* JSON with the chosen learning rate */
    double lr_mult;
} RunRelease;
/* Records the arms' learning rates and releases their blocked runs, in one transaction; does
 * nothing when the arms were settled already (by another worker). */
int registry_settle(Registry *r, const ArmTuning *arms, int n_arms, const RunRelease *rel, int n, Status *st);
/* New runs copying run template_run's plan with another learning rate (a sweep grown past an edge). */
int registry_add_runs(Registry *r, int template_run, const double *lr_mult, char *const *configs, int n, Status *st);
/* A study setting kept in the registry (lr_sweep, lr_sweep_factor, lr_sweep_extend, lr_sweep_seeds,
 * plateau_margin): 1 found, 0 absent, -1 error. */
int registry_meta(Registry *r, const char *key, char *buf, size_t size, Status *st);

/* ---- reading */
int registry_study_info(Registry *r, StudyInfo *out, Status *st);
void study_info_free(StudyInfo *s);
int registry_counts(Registry *r, RegistryCounts *c, Status *st);
/* All arms in study order (malloc'ed). */
int registry_arms(Registry *r, ArmRow **out, int *n, Status *st);
/* Runs (malloc'ed, with configs when with_config), in id order; filter by arm (0: all), by kind
 * (-1: all) and by status (-1: all). */
int registry_runs(Registry *r, int arm_id, int kind, int status, int with_config, RunRow **out, int *n, Status *st);
void registry_runs_free(RunRow *rows, int n);
int registry_run(Registry *r, int run_id, RunRow *out, Status *st);
/* Ids of the most recently finished runs, newest first. */
int registry_recent_done(Registry *r, int *ids, int max, Status *st);
/* When the runs trained here (not copied) ran, from the registry's timestamps (whole seconds):
 * the first lease, the last finish, and the sum of each run's lease-to-finish time. */
typedef struct {
    int runs;
    double first_start, last_finish, run_wall_s; /* seconds (Unix time for the first two) */
} RegistrySpan;
int registry_span(Registry *r, RegistrySpan *out, Status *st);

/* ---- export: every run and metric (docs/FORMATS.md), as in `study export` */
int registry_export_csv(Registry *r, const char *runs_path, const char *metrics_path, Status *st);
int registry_export_json(Registry *r, const char *path, Status *st);

#endif
