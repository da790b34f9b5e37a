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

#define REGISTRY_SCHEMA_VERSION 1
#define REGISTRY_FILE "registry.db"

typedef struct Registry Registry;

typedef enum { REG_OPEN_READ = 0, REG_OPEN_WRITE = 1, REG_OPEN_CREATE = 2 } RegistryMode;

/* Opens DIR/registry.db. READ: an existing registry, read only (reports, status, export).
 * WRITE: an existing registry. CREATE: creates DIR and an empty registry if missing.
 * Refuses, with a one-line reason, a file that is not SQLite, is damaged, is some other SQLite
 * database, or was written by a newer schema. */
int registry_open(Registry **r, const char *dir, RegistryMode mode, Status *st);
void registry_close(Registry *r);
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
} ArmRow;

typedef struct {
    int id, arm_id;
    char arm[64];
    int kind; /* RunKind */
    int budget_index, point, seed;
    double budget, lr_mult, target_params;
    long long params, params_nonembedding;
    int d_model, n_layers, steps;
    double tokens, flops, flops_6nd;
    int status; /* RunStatus */
    int attempts;
    double elapsed_s, val_loss, val_bpb; /* NaN when not known */
    int copied_from;                     /* 0: trained itself; else the run whose result it shares */
    char *config;                        /* resolved recipe as JSON (malloc'ed; registry_runs_free) */
} RunRow;

typedef struct {
    int total, done, running, pending, blocked, failed;
    double flops_total, flops_done; /* planned, and trained so far (finished runs and progress of others) */
} RegistryCounts;

/* ---- setting up */
/* New registry: stores the study and its planned runs. Existing: checks it holds this very
 * study (same file contents), else refuses. Safe when two processes start together. */
int registry_init_study(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, Status *st);
/* Gives runs of dead local workers, and failed runs, back to pending. Returns how many. */
int registry_recover(Registry *r, Status *st);

/* ---- the life of a run */
typedef struct {
    int id, arm_id;
    char arm[64];
    int kind;
    char *config; /* JSON (malloc'ed; free it) */
} LeasedRun;

/* 1: leased *out (status running, this host and pid); 0: nothing pending now; -1: error. */
int registry_lease(Registry *r, LeasedRun *out, Status *st);
int registry_progress(Registry *r, int run_id, double flops_done, double loss, Status *st);
/* Records a finished run's metrics and final loss and marks it done. *sweep_arm is set to the
 * run's arm id when it was the last open run of that arm's learning-rate sweep, else 0. */
int registry_finish(Registry *r, int run_id, const RunFinal *f, const MetricRow *m, int n_metrics, int *sweep_arm,
                    Status *st);
int registry_fail(Registry *r, int run_id, const char *message, Status *st);
/* An interrupted run goes back to pending (it resumes from its checkpoint next time). */
int registry_release(Registry *r, int run_id, Status *st);

/* ---- learning-rate sweeps (the policy lives in study/tune.c) */
/* Arms whose sweep is complete but whose runs are still blocked (after a crash between the two). */
int registry_arms_to_settle(Registry *r, int *arm_ids, int max, Status *st);
/* Releases an arm's blocked runs with their new configs, records its learning rate, and copies
 * the result of run copy_from into run copy_to (0: none), all in one transaction. Does nothing
 * if the arm was settled already (by another worker). */
typedef struct {
    int run_id;
    const char *config; /* JSON */
} RunRelease;
int registry_settle_arm(Registry *r, int arm_id, double lr_mult, const char *lr_source, const RunRelease *rel, int n,
                        int copy_from, int copy_to, Status *st);

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

/* ---- export: every run and metric (docs/FORMATS.md), as in `study export` */
int registry_export_csv(Registry *r, const char *runs_path, const char *metrics_path, Status *st);
int registry_export_json(Registry *r, const char *path, Status *st);

#endif
