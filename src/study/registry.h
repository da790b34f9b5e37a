/* registry.h - a study's runs and results in SQLite (DIR/registry.db), safe for many workers.
 *
 * Tables (docs/FORMATS.md has every column): meta (schema version, study identity), study, arm
 * (with the learning rate chosen for it and how), run (planned shape and budget, exact N / D /
 * FLOPs, config JSON, status, timings, results) and metric (one row per evaluation).
 * WAL mode lets readers (study status) watch while workers write. A worker claims a run inside
 * BEGIN IMMEDIATE, which holds the write lock: two workers can never claim the same run.
 *
 * Run status: blocked (waiting for its arm's learning-rate sweep) -> pending -> running ->
 * done | failed. A run left `running` by a process that no longer exists goes back to pending
 * when the study is started again, and resumes from its checkpoint. */
#ifndef AP_REGISTRY_H
#define AP_REGISTRY_H

#include "core/status.h"
#include "study/alloc.h"
#include "study/spec.h"

#include <sqlite3.h>

#define REGISTRY_SCHEMA_VERSION 1

typedef struct {
    sqlite3 *db;
    char path[1024];
} Registry;

typedef struct {
    int id;
    int arm_id;
    char arm[64];
    int kind;
    char config_json[16384];
} ClaimedRun;

int registry_open(Registry *r, const char *dir, int create, Status *st);
void registry_close(Registry *r);
/* New registry: stores the study and its planned runs. Existing: checks it holds this very
 * study (same file contents), else refuses. */
int registry_init_study(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, Status *st);
/* Gives runs of dead local workers, and failed runs, back to pending. Returns how many. */
int registry_recover(Registry *r, Status *st);
/* 1: claimed *out; 0: nothing pending now; -1: error. */
int registry_claim(Registry *r, ClaimedRun *out, Status *st);
int registry_progress(Registry *r, int run_id, double flops_done, double loss);
/* Loads DIR's metrics.jsonl and final.json into the registry and marks the run done; when it
 * completes its arm's learning-rate sweep, picks the arm's lr and releases the arm's runs. */
int registry_finish(Registry *r, int run_id, const char *run_dir, Status *st);
int registry_fail(Registry *r, int run_id, const char *message, Status *st);
/* An interrupted run goes back to pending (it resumes from its checkpoint next time). */
int registry_release(Registry *r, int run_id, Status *st);

typedef struct {
    int total, done, running, pending, blocked, failed;
    double flops_total, flops_done;
} RegistryCounts;
int registry_counts(Registry *r, RegistryCounts *c, Status *st);

#endif
