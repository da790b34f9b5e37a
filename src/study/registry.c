/* registry.c - the SQLite run registry: opening, recording a study, the life of a run, sweeps
 * (see registry.h; reading and export are in registry_read.c). */
#include "study/registry_sql.h"

#include "core/fileio.h"
#include "core/strbuf.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS study (id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL,"
    "  spec_sha256 TEXT NOT NULL, allocation TEXT NOT NULL, data TEXT NOT NULL, tokenizer TEXT NOT NULL,"
    "  created TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS arm (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES study(id),"
    "  name TEXT NOT NULL UNIQUE, preset TEXT NOT NULL, overrides TEXT NOT NULL, allocation TEXT NOT NULL,"
    "  base_lr REAL NOT NULL, lr_mult REAL, lr REAL, lr_source TEXT, tune_arm INTEGER);"
    "CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY, arm_id INTEGER NOT NULL REFERENCES arm(id),"
    "  kind TEXT NOT NULL, priority INTEGER NOT NULL, budget_index INTEGER NOT NULL, budget REAL NOT NULL,"
    "  point INTEGER NOT NULL, seed INTEGER NOT NULL, lr_mult REAL NOT NULL, target_params REAL NOT NULL,"
    "  params INTEGER NOT NULL, params_nonembedding INTEGER NOT NULL, d_model INTEGER NOT NULL,"
    "  n_layers INTEGER NOT NULL, tokens REAL NOT NULL, flops REAL NOT NULL, flops_6nd REAL NOT NULL,"
    "  steps INTEGER NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, host TEXT, pid INTEGER,"
    "  attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, elapsed_s REAL,"
    "  progress_flops REAL NOT NULL DEFAULT 0, last_loss REAL, val_loss REAL, val_bpb REAL,"
    "  copied_from INTEGER, error TEXT, params_kaplan INTEGER, keep INTEGER NOT NULL DEFAULT 0, test_loss REAL,"
    "  test_bpb REAL, unigram_bpb REAL, test_bpb_se REAL);"
    "CREATE INDEX IF NOT EXISTS run_status ON run(status, priority, id);"
    "CREATE TABLE IF NOT EXISTS metric (run_id INTEGER NOT NULL REFERENCES run(id), step INTEGER NOT NULL,"
    "  tokens REAL, flops REAL, epochs REAL, train_loss REAL, val_loss REAL, val_bpb REAL, lr REAL,"
    "  grad_norm REAL, PRIMARY KEY (run_id, step));";

static const char *STATUS_NAMES[] = {"blocked", "pending", "running", "done", "failed"};

const char *run_status_name(int status) {
    return status >= 0 && status <= RUN_FAILED ? STATUS_NAMES[status] : "?";
}

const char *run_kind_name(int kind) { return kind == RUN_LR_SWEEP ? "lr_sweep" : "main"; }

int reg_status_of(const char *name) {
    for (int i = 0; i <= RUN_FAILED; i++)
        if (name && !strcmp(name, STATUS_NAMES[i])) return i;
    return -1;
}

const char *registry_path(const Registry *r) { return r->path; }

/* ---------------------------------------------------------------- checked SQLite calls */

/* An error of operation `op`, in words a user can act on. */
int reg_fail(Registry *r, Status *st, const char *op) {
    int code = sqlite3_extended_errcode(r->db) & 0xff;
    const char *msg = sqlite3_errmsg(r->db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
        return status_fail(st, AP_ECORRUPT,
                           "registry %s: %s: %s (not a study registry, or a damaged one: move it away to run the study "
                           "afresh)",
                           r->path, op, msg);
    int err = sqlite3_system_errno(r->db);
    if (code == SQLITE_FULL || (code == SQLITE_IOERR && (err == ENOSPC || err == EFBIG || err == EDQUOT)))
        return status_fail(st, AP_ENOSPC, "registry %s: %s: no space left (the disk is full, or a file size limit)",
                           r->path, op);
    if (code == SQLITE_READONLY)
        return status_fail(st, AP_EIO, "registry %s: %s: %s (is the study directory writable?)", r->path, op, msg);
    if (code == SQLITE_BUSY)
        return status_fail(st, AP_EIO, "registry %s: %s: another process held the database for over %g s", r->path,
                           op, r->busy_ms / 1000.0);
    return status_fail(st, AP_EIO, "registry %s: %s: %s", r->path, op, msg);
}

int reg_exec(Registry *r, const char *sql, const char *op, Status *st) {
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK) return reg_fail(r, st, op);
    return 0;
}

void reg_rollback(Registry *r) {
    if (!sqlite3_get_autocommit(r->db)) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
}

int reg_prep(Registry *r, Stmt *s, const char *sql, const char *op, Status *st) {
    s->r = r, s->q = NULL, s->bind_rc = SQLITE_OK, s->op = op;
    if (sqlite3_prepare_v2(r->db, sql, -1, &s->q, NULL) != SQLITE_OK) return reg_fail(r, st, op);
    return 0;
}

void reg_bind_int(Stmt *s, int i, long long v) {
    if (s->bind_rc == SQLITE_OK) s->bind_rc = sqlite3_bind_int64(s->q, i, v);
}
void reg_bind_text(Stmt *s, int i, const char *v) {
    if (s->bind_rc == SQLITE_OK) s->bind_rc = v ? sqlite3_bind_text(s->q, i, v, -1, SQLITE_TRANSIENT)
                                                : sqlite3_bind_null(s->q, i);
}
/* NaN is stored as NULL (an unknown value). */
void reg_bind_num(Stmt *s, int i, double v) {
    if (s->bind_rc == SQLITE_OK) s->bind_rc = isnan(v) ? sqlite3_bind_null(s->q, i) : sqlite3_bind_double(s->q, i, v);
}

/* 1: a row, 0: done, -1: error (st set). */
int reg_step(Stmt *s, Status *st) {
    if (s->bind_rc != SQLITE_OK) return status_fail(st, AP_EIO, "registry %s: %s: binding a value: %s", s->r->path,
                                                   s->op, sqlite3_errstr(s->bind_rc));
    int rc = sqlite3_step(s->q);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return reg_fail(s->r, st, s->op);
}

void reg_reset(Stmt *s) {
    sqlite3_reset(s->q);
    sqlite3_clear_bindings(s->q);
    s->bind_rc = SQLITE_OK;
}

void reg_finalize(Stmt *s) {
    sqlite3_finalize(s->q);
    s->q = NULL;
}

/* Runs a statement that returns no rows. */
int reg_run1(Stmt *s, Status *st) {
    int rc = reg_step(s, st);
    reg_finalize(s);
    return rc < 0 ? -1 : 0;
}

double reg_col_num(sqlite3_stmt *q, int i) {
    return sqlite3_column_type(q, i) == SQLITE_NULL ? NAN : sqlite3_column_double(q, i);
}

void reg_col_text(sqlite3_stmt *q, int i, char *dst, size_t size) {
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

char *reg_col_dup(sqlite3_stmt *q, int i) {
    const unsigned char *t = sqlite3_column_text(q, i);
    return strdup(t ? (const char *)t : "");
}

static void now_iso(char *buf, size_t size) {
    time_t t = time(NULL);
    struct tm tm;
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static void hostname(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) snprintf(buf, size, "localhost");
    buf[size - 1] = '\0';
}

/* ---------------------------------------------------------------- opening */

/* -1 error, 0 an empty database, 1 ours (schema version in *version). */
static int inspect(Registry *r, int *version, Status *st) {
    Stmt s;
    if (reg_prep(r, &s, "SELECT count(*), (SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta')"
                    " FROM sqlite_master",
             "reading it", st))
        return -1;
    int rc = reg_step(&s, st), objects = 0, has_meta = 0;
    if (rc == 1) objects = sqlite3_column_int(s.q, 0), has_meta = sqlite3_column_int(s.q, 1);
    reg_finalize(&s);
    if (rc < 0) return -1;
    if (objects == 0) return 0;
    if (!has_meta)
        return status_fail(st, AP_EINVAL,
                           "registry %s is an SQLite database but not an algoprog study registry (it has no meta "
                           "table); choose another out= directory",
                           r->path);
    *version = -1;
    if (reg_prep(r, &s, "SELECT value FROM meta WHERE key='schema_version'", "reading its schema version", st)) return -1;
    rc = reg_step(&s, st);
    if (rc == 1) *version = atoi((const char *)sqlite3_column_text(s.q, 0));
    reg_finalize(&s);
    if (rc < 0) return -1;
    if (*version < 0)
        return status_fail(st, AP_EINVAL, "registry %s has no schema version: not an algoprog study registry",
                           r->path);
    return 1;
}

/* Upgrades in place, one version at a time. 1 -> 2: the columns of the test/validation split, the
 * plateau check, Kaplan's parameter count, kept checkpoints and shared learning-rate sweeps.
 * 2 -> 3: the test loss's standard error. Old rows keep NULLs there. */
static int migrate(Registry *r, int from, Status *st) {
    static const char *STEP[] = {
        NULL, /* 0 */
        "BEGIN IMMEDIATE; ALTER TABLE arm ADD COLUMN tune_arm INTEGER; ALTER TABLE run ADD COLUMN params_kaplan INTEGER;"
        "ALTER TABLE run ADD COLUMN keep INTEGER NOT NULL DEFAULT 0; ALTER TABLE run ADD COLUMN test_loss REAL;"
        "ALTER TABLE run ADD COLUMN test_bpb REAL; ALTER TABLE run ADD COLUMN unigram_bpb REAL;"
        "UPDATE meta SET value='2' WHERE key='schema_version'; COMMIT;",
        "BEGIN IMMEDIATE; ALTER TABLE run ADD COLUMN test_bpb_se REAL;"
        "UPDATE meta SET value='3' WHERE key='schema_version'; COMMIT;",
    };
    for (int v = from; v < REGISTRY_SCHEMA_VERSION; v++)
        if (reg_exec(r, STEP[v], "upgrading its schema", st)) {
            reg_rollback(r);
            return -1;
        }
    return 0;
}

/* WAL lets readers watch while workers write. Switching to it needs the database to itself for
 * a moment, and SQLite answers BUSY at once (no busy handler) when another process is opening it
 * too: retry for a while instead of failing a second `study run` started alongside the first. */
static int set_up_connection(Registry *r, Status *st) {
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(r->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) break;
        if ((rc & 0xff) != SQLITE_BUSY || attempt == 600) return reg_fail(r, st, "setting it up");
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
    }
    return reg_exec(r, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", "setting it up", st);
}

int registry_open(Registry **out, const char *dir, RegistryMode mode, Status *st) {
    *out = NULL;
    Registry *r = calloc(1, sizeof *r);
    if (!r) return status_fail(st, AP_ENOMEM, "out of memory");
    int n = snprintf(r->path, sizeof r->path, "%s/" REGISTRY_FILE, dir);
    if (n < 0 || (size_t)n >= sizeof r->path) {
        free(r);
        return status_fail(st, AP_EINVAL, "study directory path too long: %s", dir);
    }
    r->readonly = mode == REG_OPEN_READ;
    if (mode != REG_OPEN_CREATE && !file_exists(r->path)) {
        free(r);
        return status_fail(st, AP_EINVAL, "no study registry in '%s' (no %s there)", dir, REGISTRY_FILE);
    }
    if (mode == REG_OPEN_CREATE) {
        if (dir_create(dir, st)) {
            free(r);
            return -1;
        }
        if (access(dir, W_OK) != 0) {
            free(r);
            return status_errno(st, errno, "study directory '%s' is not writable", dir);
        }
    }
    int flags = mode == REG_OPEN_READ ? SQLITE_OPEN_READONLY
                                      : SQLITE_OPEN_READWRITE | (mode == REG_OPEN_CREATE ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(r->path, &r->db, flags, NULL) != SQLITE_OK) {
        reg_fail(r, st, "cannot open it");
        registry_close(r);
        return -1;
    }
    r->busy_ms = REGISTRY_BUSY_MS;
    sqlite3_busy_timeout(r->db, r->busy_ms);
    sqlite3_extended_result_codes(r->db, 1);
    int version = 0, kind = inspect(r, &version, st);
    int rc = kind < 0 ? -1 : 0;
    if (!rc && kind == 0 && mode != REG_OPEN_CREATE)
        rc = status_fail(st, AP_EINVAL, "registry %s is empty: no study was recorded in it", r->path);
    if (!rc && kind == 1 && version > REGISTRY_SCHEMA_VERSION)
        rc = status_fail(st, AP_EINVAL, "registry %s has schema version %d; this build reads up to %d", r->path,
                         version, REGISTRY_SCHEMA_VERSION);
    if (!rc && mode != REG_OPEN_READ) rc = set_up_connection(r, st);
    if (!rc && kind == 1 && version < REGISTRY_SCHEMA_VERSION) {
        if (mode == REG_OPEN_READ) { /* an older registry is upgraded in place, even by a reader */
            sqlite3_close(r->db);
            r->db = NULL;
            if (sqlite3_open_v2(r->path, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                rc = reg_fail(r, st, "opening it to upgrade its schema");
            if (!rc) sqlite3_busy_timeout(r->db, r->busy_ms), sqlite3_extended_result_codes(r->db, 1);
            if (!rc) rc = set_up_connection(r, st);
        }
        if (!rc) rc = migrate(r, version, st);
    }
    if (!rc && kind == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO meta VALUES ('schema_version', '%d');",
                 REGISTRY_SCHEMA_VERSION);
        rc = reg_exec(r, "BEGIN IMMEDIATE", "creating its tables", st);
        if (!rc) rc = reg_exec(r, SCHEMA, "creating its tables", st);
        if (!rc) rc = reg_exec(r, sql, "creating its tables", st);
        if (!rc) rc = reg_exec(r, "COMMIT", "creating its tables", st);
        if (rc) reg_rollback(r);
    }
    if (rc) {
        registry_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void registry_set_busy_timeout(Registry *r, int ms) {
    r->busy_ms = ms;
    sqlite3_busy_timeout(r->db, ms);
}

void registry_close(Registry *r) {
    if (!r) return;
    if (r->db) sqlite3_close(r->db);
    free(r);
}

/* ---------------------------------------------------------------- recording a study */

static int insert_arms(Registry *r, const StudySpec *s, Status *st) {
    Stmt q;
    if (reg_prep(r, &q,
                 "INSERT INTO arm (id, study_id, name, preset, overrides, allocation, base_lr, lr_mult, lr, lr_source,"
                 " tune_arm) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 "recording the arms", st))
        return -1;
    int rc = 0;
    for (int a = 0; a < s->n_arms && !rc; a++) {
        const StudyArm *arm = &s->arms[a];
        char over[STUDY_MAX_OVERRIDES * 80] = "";
        for (int i = 0; i < arm->n_overrides; i++) {
            size_t l = strlen(over);
            snprintf(over + l, sizeof over - l, "%s%s=%s", i ? " " : "", arm->overrides[i][0], arm->overrides[i][1]);
        }
        reg_reset(&q);
        reg_bind_int(&q, 1, a + 1);
        reg_bind_text(&q, 2, arm->name);
        reg_bind_text(&q, 3, arm->preset);
        reg_bind_text(&q, 4, over);
        reg_bind_text(&q, 5, alloc_rule_name(arm->allocation >= 0 ? arm->allocation : s->allocation));
        reg_bind_num(&q, 6, arm->cfg.lr);
        reg_bind_num(&q, 7, s->lr_sweep ? NAN : 1.0);
        reg_bind_num(&q, 8, s->lr_sweep ? NAN : arm->cfg.lr);
        reg_bind_text(&q, 9, s->lr_sweep ? "pending: learning-rate sweep" : "preset (no sweep)");
        reg_bind_int(&q, 10, alloc_tune_leader(s, a) + 1);
        rc = reg_step(&q, st) < 0 ? -1 : 0;
    }
    reg_finalize(&q);
    return rc;
}

static int insert_runs(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, Status *st) {
    Stmt q;
    if (reg_prep(r, &q,
             "INSERT INTO run (arm_id, kind, priority, budget_index, budget, point, seed, lr_mult, target_params,"
             " params, params_nonembedding, d_model, n_layers, tokens, flops, flops_6nd, steps, config, status,"
             " params_kaplan, keep) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             "recording the runs", st))
        return -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const PlannedRun *p = &runs[i];
        char *json = config_to_json(&p->cfg);
        if (!json) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        /* the sweeps, then the largest budget of every arm first: partial results cover all arms,
         * and the last runs leased are the shortest, so no worker idles long at the end (with the
         * largest last, one of two workers waited 14-18 s of a 15-minute study) */
        int priority = p->kind == RUN_LR_SWEEP
                           ? 0
                           : 1 + (s->n_budgets - 1 - p->budget_index) * 1000 + p->point * 10 + (p->seed > 1);
        reg_reset(&q);
        reg_bind_int(&q, 1, p->arm + 1);
        reg_bind_text(&q, 2, run_kind_name(p->kind));
        reg_bind_int(&q, 3, priority);
        reg_bind_int(&q, 4, p->budget_index);
        reg_bind_num(&q, 5, p->budget);
        reg_bind_int(&q, 6, p->point);
        reg_bind_int(&q, 7, p->seed);
        reg_bind_num(&q, 8, p->lr_mult);
        reg_bind_num(&q, 9, p->target_params);
        reg_bind_int(&q, 10, (long long)p->params);
        reg_bind_int(&q, 11, (long long)p->params_nonembedding);
        reg_bind_int(&q, 12, p->cfg.d_model);
        reg_bind_int(&q, 13, p->cfg.n_layers);
        reg_bind_num(&q, 14, p->tokens);
        reg_bind_num(&q, 15, p->flops);
        reg_bind_num(&q, 16, p->flops_6nd);
        reg_bind_int(&q, 17, p->cfg.steps);
        reg_bind_text(&q, 18, json);
        reg_bind_text(&q, 19, run_status_name(p->kind == RUN_MAIN && s->lr_sweep ? RUN_BLOCKED : RUN_PENDING));
        reg_bind_int(&q, 20, (long long)p->params_kaplan);
        reg_bind_int(&q, 21, p->keep);
        rc = reg_step(&q, st) < 0 ? -1 : 0;
        free(json);
    }
    reg_finalize(&q);
    return rc;
}

static int meta_put(Registry *r, const char *key, const char *value, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "INSERT OR REPLACE INTO meta VALUES (?, ?)", "recording the study", st)) return -1;
    reg_bind_text(&q, 1, key);
    reg_bind_text(&q, 2, value);
    return reg_run1(&q, st);
}

/* The data check of an existing study (registry_init_study). */
static int check_data(Registry *r, const StudySpec *s, const char *data_sha256, Status *st) {
    char was[65] = "";
    int got = registry_meta(r, "data_sha256", was, sizeof was, st);
    if (got < 0) return -1;
    if (got == 0) return meta_put(r, "data_sha256", data_sha256, st); /* recorded before the check existed */
    if (!strcmp(was, data_sha256)) return 0;
    return status_fail(st, AP_EINVAL,
                       "the study's data '%s' changed on disk since the study began (sha256 %s then, %s now): its "
                       "runs would mix two texts; restore the data, or run the study in a new out= directory",
                       s->data, was, data_sha256);
}

int registry_init_study(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, const char *data_sha256,
                        Status *st) {
    /* the check and the insert in one write transaction: two processes starting together agree */
    if (reg_exec(r, "BEGIN IMMEDIATE", "recording the study", st)) return -1;
    Stmt q;
    if (reg_prep(r, &q, "SELECT name, spec_sha256 FROM study LIMIT 1", "reading the study", st)) {
        reg_rollback(r);
        return -1;
    }
    int found = reg_step(&q, st);
    char name[128] = "", sha[65] = "";
    if (found == 1) reg_col_text(q.q, 0, name, sizeof name), reg_col_text(q.q, 1, sha, sizeof sha);
    reg_finalize(&q);
    if (found != 0) {
        reg_rollback(r);
        if (found < 0) return -1;
        if (strcmp(sha, s->hash))
            return status_fail(st, AP_EINVAL,
                               "registry %s belongs to study '%s' with a different study file; run this study in "
                               "another out= directory (a registry keeps one study's results)",
                               r->path, name);
        return check_data(r, s, data_sha256, st);
    }
    char created[32];
    now_iso(created, sizeof created);
    int rc = reg_prep(r, &q, "INSERT INTO study VALUES (1, ?, ?, ?, ?, ?, ?, ?)", "recording the study", st);
    if (!rc) {
        reg_bind_text(&q, 1, s->name);
        reg_bind_text(&q, 2, s->text);
        reg_bind_text(&q, 3, s->hash);
        reg_bind_text(&q, 4, alloc_rule_name(s->allocation));
        reg_bind_text(&q, 5, s->data);
        reg_bind_text(&q, 6, s->tokenizer);
        reg_bind_text(&q, 7, created);
        rc = reg_run1(&q, st);
    }
    if (!rc) rc = insert_arms(r, s, st);
    if (!rc) rc = insert_runs(r, s, runs, n, st);
    /* what tune.c and the report need to know of the study's settings, without the study file */
    char v[5][32];
    snprintf(v[0], sizeof v[0], "%d", s->lr_sweep);
    snprintf(v[1], sizeof v[1], "%.17g", s->lr_sweep_factor);
    snprintf(v[2], sizeof v[2], "%d", s->lr_sweep_extend);
    snprintf(v[3], sizeof v[3], "%.17g", s->plateau_margin);
    snprintf(v[4], sizeof v[4], "%d", s->lr_sweep_seeds);
    const char *meta[][2] = {{"study_sha256", s->hash},   {"lr_sweep", v[0]},       {"lr_sweep_factor", v[1]},
                             {"lr_sweep_extend", v[2]},   {"plateau_margin", v[3]}, {"lr_sweep_seeds", v[4]},
                             {"data_sha256", data_sha256}};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0] && !rc; i++) rc = meta_put(r, meta[i][0], meta[i][1], st);
    if (!rc) rc = reg_exec(r, "COMMIT", "recording the study", st);
    if (rc) reg_rollback(r);
    return rc;
}

/* Runs marked running by a process of this host that no longer exists go back to pending (inside
 * the caller's transaction). Returns how many, or -1. */
static int release_dead(Registry *r, Status *st) {
    char host[256];
    hostname(host, sizeof host);
    Stmt q, u;
    if (reg_prep(r, &q, "SELECT id, pid FROM run WHERE status='running' AND host=?", "releasing runs of dead processes",
                 st))
        return -1;
    if (reg_prep(r, &u, "UPDATE run SET status='pending', pid=NULL WHERE id=?", "releasing runs of dead processes",
                 st)) {
        reg_finalize(&q);
        return -1;
    }
    reg_bind_text(&q, 1, host);
    int n = 0, got;
    while ((got = reg_step(&q, st)) == 1) {
        pid_t pid = (pid_t)sqlite3_column_int(q.q, 1);
        if (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH)) continue; /* still alive: another study process */
        reg_reset(&u);
        reg_bind_int(&u, 1, sqlite3_column_int(q.q, 0));
        if (reg_step(&u, st) < 0) {
            got = -1;
            break;
        }
        n++;
    }
    reg_finalize(&q);
    reg_finalize(&u);
    return got < 0 ? -1 : n;
}

int registry_release_dead(Registry *r, Status *st) {
    if (reg_exec(r, "BEGIN IMMEDIATE", "releasing runs of dead processes", st)) return -1;
    int n = release_dead(r, st);
    if (n < 0 || reg_exec(r, "COMMIT", "releasing runs of dead processes", st)) {
        reg_rollback(r);
        return -1;
    }
    return n;
}

int registry_recover(Registry *r, Status *st) {
    if (reg_exec(r, "BEGIN IMMEDIATE", "recovering runs", st)) return -1;
    int n = release_dead(r, st);
    /* starting the study again means: try the failed runs again */
    if (n < 0 || reg_exec(r, "UPDATE run SET status='pending', error=NULL WHERE status='failed'", "recovering runs", st)) {
        reg_rollback(r);
        return -1;
    }
    n += sqlite3_changes(r->db);
    if (reg_exec(r, "COMMIT", "recovering runs", st)) {
        reg_rollback(r);
        return -1;
    }
    return n;
}

/* ---------------------------------------------------------------- the life of a run */

/* A pending run whose twin (same kind, same resolved recipe) is done takes the twin's result. */
static int copy_result(Registry *r, int from, int to, Status *st);

int registry_lease(Registry *r, LeasedRun *out, Status *st) {
    memset(out, 0, sizeof *out);
    if (reg_exec(r, "BEGIN IMMEDIATE", "leasing a run", st)) return -1;
    Stmt q;
    int found = 0;
    /* identical runs are computed once: a run waits while its twin trains, and copies it when done */
    for (;;) {
        if (reg_prep(r, &q,
                     "SELECT run.id, arm_id, arm.name, kind, config, keep, (SELECT min(o.id) FROM run o WHERE"
                     " o.status='done' AND o.kind=run.kind AND o.config=run.config AND o.copied_from IS NULL)"
                     " FROM run JOIN arm ON arm.id = arm_id WHERE status='pending' AND NOT EXISTS (SELECT 1 FROM"
                     " run o WHERE o.status='running' AND o.kind=run.kind AND o.config=run.config)"
                     " ORDER BY priority, run.id LIMIT 1",
                     "leasing a run", st)) {
            reg_rollback(r);
            return -1;
        }
        found = reg_step(&q, st);
        int twin = 0;
        if (found == 1) {
            out->id = sqlite3_column_int(q.q, 0);
            out->arm_id = sqlite3_column_int(q.q, 1);
            reg_col_text(q.q, 2, out->arm, sizeof out->arm);
            out->kind = strcmp((const char *)sqlite3_column_text(q.q, 3), "main") ? RUN_LR_SWEEP : RUN_MAIN;
            out->keep = sqlite3_column_int(q.q, 5);
            twin = sqlite3_column_type(q.q, 6) == SQLITE_NULL ? 0 : sqlite3_column_int(q.q, 6);
            if (!twin && !(out->config = reg_col_dup(q.q, 4))) found = status_fail(st, AP_ENOMEM, "out of memory");
        }
        reg_finalize(&q);
        if (found != 1 || !twin) break;
        if (copy_result(r, twin, out->id, st)) {
            found = -1;
            break;
        }
    }
    if (found < 0) {
        reg_rollback(r);
        return -1;
    }
    if (found == 0) { /* nothing to train now; keep the twins' copies made on the way */
        if (reg_exec(r, "COMMIT", "leasing a run", st)) {
            reg_rollback(r);
            return -1;
        }
        return 0;
    }
    char host[256], now[32];
    hostname(host, sizeof host);
    now_iso(now, sizeof now);
    int rc = reg_prep(r, &q,
                  "UPDATE run SET status='running', host=?, pid=?, attempts=attempts+1,"
                  " started_at=COALESCE(started_at, ?) WHERE id=? AND status='pending'",
                  "leasing a run", st);
    if (!rc) {
        reg_bind_text(&q, 1, host);
        reg_bind_int(&q, 2, (long long)getpid());
        reg_bind_text(&q, 3, now);
        reg_bind_int(&q, 4, out->id);
        rc = reg_run1(&q, st);
    }
    if (!rc && sqlite3_changes(r->db) != 1) rc = status_fail(st, AP_EINTERNAL, "registry %s: lost a lease", r->path);
    if (!rc) rc = reg_exec(r, "COMMIT", "leasing a run", st);
    if (rc) {
        reg_rollback(r);
        free(out->config);
        out->config = NULL;
        return -1;
    }
    return 1;
}

int registry_progress(Registry *r, int run_id, double flops_done, double loss, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "UPDATE run SET progress_flops=?, last_loss=? WHERE id=?", "recording progress", st)) return -1;
    reg_bind_num(&q, 1, flops_done);
    reg_bind_num(&q, 2, loss);
    reg_bind_int(&q, 3, run_id);
    return reg_run1(&q, st);
}

static int insert_metrics(Registry *r, int run_id, const MetricRow *m, int n, Status *st) {
    Stmt q;
    int rc = reg_prep(r, &q, "DELETE FROM metric WHERE run_id=?", "recording metrics", st);
    if (!rc) {
        reg_bind_int(&q, 1, run_id);
        rc = reg_run1(&q, st);
    }
    if (rc || reg_prep(r, &q, "INSERT INTO metric VALUES (?,?,?,?,?,?,?,?,?,?)", "recording metrics", st)) return -1;
    for (int i = 0; i < n && !rc; i++) {
        reg_reset(&q);
        reg_bind_int(&q, 1, run_id);
        reg_bind_int(&q, 2, (long long)m[i].step);
        reg_bind_num(&q, 3, m[i].tokens);
        reg_bind_num(&q, 4, m[i].flops);
        reg_bind_num(&q, 5, m[i].epochs);
        reg_bind_num(&q, 6, m[i].train_loss);
        reg_bind_num(&q, 7, m[i].val_loss);
        reg_bind_num(&q, 8, m[i].val_bpb);
        reg_bind_num(&q, 9, m[i].lr);
        reg_bind_num(&q, 10, m[i].grad_norm);
        rc = reg_step(&q, st) < 0 ? -1 : 0;
    }
    reg_finalize(&q);
    return rc;
}

int registry_finish(Registry *r, int run_id, const RunFinal *f, const MetricRow *m, int n_metrics, int *sweep_arm,
                    Status *st) {
    *sweep_arm = 0;
    if (reg_exec(r, "BEGIN IMMEDIATE", "finishing a run", st)) return -1;
    int rc = insert_metrics(r, run_id, m, n_metrics, st), arm_id = 0, sweep = 0;
    char now[32];
    now_iso(now, sizeof now);
    Stmt q;
    if (!rc && !(rc = reg_prep(r, &q,
                           "UPDATE run SET status='done', val_loss=?, val_bpb=?, elapsed_s=?, progress_flops=flops,"
                           " finished_at=?, pid=NULL, test_loss=?, test_bpb=?, unigram_bpb=?, test_bpb_se=? WHERE id=?"
                           " RETURNING arm_id, kind",
                           "finishing a run", st))) {
        reg_bind_num(&q, 1, f->val_loss);
        reg_bind_num(&q, 2, f->val_bpb);
        reg_bind_num(&q, 3, f->elapsed_s);
        reg_bind_text(&q, 4, now);
        reg_bind_num(&q, 5, f->test_loss);
        reg_bind_num(&q, 6, f->test_bpb);
        reg_bind_num(&q, 7, f->unigram_bpb);
        reg_bind_num(&q, 8, f->test_bpb_se);
        reg_bind_int(&q, 9, run_id);
        int got = reg_step(&q, st);
        if (got == 1) {
            arm_id = sqlite3_column_int(q.q, 0);
            sweep = !strcmp((const char *)sqlite3_column_text(q.q, 1), "lr_sweep");
        }
        reg_finalize(&q);
        if (got == 0) rc = status_fail(st, AP_EINTERNAL, "registry %s: no run %d to finish", r->path, run_id);
        if (got < 0) rc = -1;
    }
    if (!rc && sweep && !(rc = reg_prep(r, &q, "SELECT count(*) FROM run WHERE arm_id=? AND kind='lr_sweep' AND"
                                           " status NOT IN ('done', 'failed')",
                                    "finishing a run", st))) {
        reg_bind_int(&q, 1, arm_id);
        int got = reg_step(&q, st);
        if (got == 1 && sqlite3_column_int(q.q, 0) == 0) *sweep_arm = arm_id;
        reg_finalize(&q);
        if (got < 0) rc = -1;
    }
    if (!rc) rc = reg_exec(r, "COMMIT", "finishing a run", st);
    if (rc) {
        reg_rollback(r);
        *sweep_arm = 0;
    }
    return rc;
}

static int set_status(Registry *r, int run_id, const char *status, const char *message, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "UPDATE run SET status=?, error=?, pid=NULL WHERE id=?", "updating a run", st)) return -1;
    reg_bind_text(&q, 1, status);
    reg_bind_text(&q, 2, message);
    reg_bind_int(&q, 3, run_id);
    return reg_run1(&q, st);
}

int registry_fail(Registry *r, int run_id, const char *message, Status *st) {
    return set_status(r, run_id, "failed", message, st);
}

int registry_release(Registry *r, int run_id, Status *st) { return set_status(r, run_id, "pending", NULL, st); }

int registry_release_own(Registry *r, Status *st) {
    char host[256];
    hostname(host, sizeof host);
    Stmt q;
    if (reg_prep(r, &q, "UPDATE run SET status='pending', pid=NULL WHERE status='running' AND host=? AND pid=?",
                 "releasing runs", st))
        return -1;
    reg_bind_text(&q, 1, host);
    reg_bind_int(&q, 2, (long long)getpid());
    if (reg_run1(&q, st)) return -1;
    return sqlite3_changes(r->db);
}

/* ---------------------------------------------------------------- learning-rate sweeps */

int registry_arms_to_settle(Registry *r, int *arm_ids, int max, Status *st) {
    Stmt q;
    /* sweep leaders whose sweep is complete while runs of their group still wait */
    if (reg_prep(r, &q,
                 "SELECT id FROM arm WHERE EXISTS (SELECT 1 FROM run JOIN arm g ON g.id=run.arm_id WHERE"
                 " run.status='blocked' AND coalesce(g.tune_arm, g.id)=arm.id)"
                 " AND EXISTS (SELECT 1 FROM run WHERE arm_id=arm.id AND kind='lr_sweep')"
                 " AND NOT EXISTS (SELECT 1 FROM run WHERE arm_id=arm.id AND kind='lr_sweep' AND status NOT IN"
                 " ('done', 'failed'))"
                 " ORDER BY id",
                 "finding settled sweeps", st))
        return -1;
    int n = 0, got;
    while ((got = reg_step(&q, st)) == 1 && n < max) arm_ids[n++] = sqlite3_column_int(q.q, 0);
    reg_finalize(&q);
    return got < 0 ? -1 : n;
}

int registry_tune_group(Registry *r, int leader, int *arm_ids, int max, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "SELECT id FROM arm WHERE coalesce(tune_arm, id)=? ORDER BY id", "reading a sweep's arms", st))
        return -1;
    reg_bind_int(&q, 1, leader);
    int n = 0, got;
    while ((got = reg_step(&q, st)) == 1 && n < max) arm_ids[n++] = sqlite3_column_int(q.q, 0);
    reg_finalize(&q);
    return got < 0 ? -1 : n;
}

int registry_meta(Registry *r, const char *key, char *buf, size_t size, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "SELECT value FROM meta WHERE key=?", "reading the study's settings", st)) return -1;
    reg_bind_text(&q, 1, key);
    int got = reg_step(&q, st);
    if (got == 1) reg_col_text(q.q, 0, buf, size);
    reg_finalize(&q);
    return got;
}

int registry_add_runs(Registry *r, int template_run, const double *lr_mult, char *const *configs, int n, Status *st) {
    if (reg_exec(r, "BEGIN IMMEDIATE", "adding runs", st)) return -1;
    Stmt q;
    int rc = reg_prep(r, &q,
                      "INSERT INTO run (arm_id, kind, priority, budget_index, budget, point, seed, lr_mult,"
                      " target_params, params, params_nonembedding, d_model, n_layers, tokens, flops, flops_6nd, steps,"
                      " config, status, params_kaplan, keep) SELECT arm_id, kind, priority, budget_index, budget, point,"
                      " seed, ?2, target_params, params, params_nonembedding, d_model, n_layers, tokens, flops,"
                      " flops_6nd, steps, ?3, 'pending', params_kaplan, 0 FROM run WHERE id=?1",
                      "adding runs", st);
    for (int i = 0; i < n && !rc; i++) {
        reg_reset(&q);
        reg_bind_int(&q, 1, template_run);
        reg_bind_num(&q, 2, lr_mult[i]);
        reg_bind_text(&q, 3, configs[i]);
        rc = reg_step(&q, st) < 0 ? -1 : 0;
        if (!rc && sqlite3_changes(r->db) != 1)
            rc = status_fail(st, AP_EINTERNAL, "registry %s: no run %d to copy", r->path, template_run);
    }
    if (q.q) reg_finalize(&q);
    if (!rc) rc = reg_exec(r, "COMMIT", "adding runs", st);
    if (rc) reg_rollback(r);
    return rc;
}

/* Copies run `from`'s result and metrics into run `to` (an identical run need not train twice). */
static int copy_result(Registry *r, int from, int to, Status *st) {
    Stmt q;
    int rc = reg_prep(r, &q,
                  "UPDATE run SET (status, val_loss, val_bpb, test_loss, test_bpb, unigram_bpb, test_bpb_se, elapsed_s,"
                  " progress_flops, started_at, finished_at, copied_from) = (SELECT 'done', val_loss, val_bpb,"
                  " test_loss, test_bpb, unigram_bpb, test_bpb_se, elapsed_s, progress_flops, started_at, finished_at,"
                  " id FROM run WHERE id=?1) WHERE id=?2",
                  "copying a run's result", st);
    if (!rc) {
        reg_bind_int(&q, 1, from);
        reg_bind_int(&q, 2, to);
        rc = reg_run1(&q, st);
    }
    if (!rc && !(rc = reg_prep(r, &q,
                           "INSERT INTO metric SELECT ?2, step, tokens, flops, epochs, train_loss, val_loss, val_bpb,"
                           " lr, grad_norm FROM metric WHERE run_id=?1",
                           "copying a run's metrics", st))) {
        reg_bind_int(&q, 1, from);
        reg_bind_int(&q, 2, to);
        rc = reg_run1(&q, st);
    }
    return rc;
}

int registry_settle(Registry *r, const ArmTuning *arms, int n_arms, const RunRelease *rel, int n, Status *st) {
    if (reg_exec(r, "BEGIN IMMEDIATE", "settling a sweep", st)) return -1;
    Stmt q;
    int rc = 0, blocked = 0;
    /* nothing to do when another worker settled these arms first */
    if (!(rc = reg_prep(r, &q, "SELECT count(*) FROM run WHERE arm_id=? AND status='blocked'", "settling a sweep", st))) {
        for (int a = 0; a < n_arms && !rc; a++) {
            reg_reset(&q);
            reg_bind_int(&q, 1, arms[a].arm_id);
            int got = reg_step(&q, st);
            if (got == 1) blocked += sqlite3_column_int(q.q, 0);
            if (got < 0) rc = -1;
        }
        reg_finalize(&q);
    }
    if (rc || blocked == 0) {
        reg_rollback(r);
        return rc;
    }
    if (!(rc = reg_prep(r, &q, "UPDATE arm SET lr_mult=?, lr=base_lr*?, lr_source=? WHERE id=?", "settling a sweep", st))) {
        for (int a = 0; a < n_arms && !rc; a++) {
            reg_reset(&q);
            reg_bind_num(&q, 1, arms[a].lr_mult);
            reg_bind_num(&q, 2, arms[a].lr_mult);
            reg_bind_text(&q, 3, arms[a].lr_source);
            reg_bind_int(&q, 4, arms[a].arm_id);
            rc = reg_step(&q, st) < 0 ? -1 : 0;
        }
        reg_finalize(&q);
    }
    if (!rc && !(rc = reg_prep(r, &q, "UPDATE run SET config=?, lr_mult=?, status='pending' WHERE id=? AND status='blocked'",
                               "releasing an arm's runs", st))) {
        for (int i = 0; i < n && !rc; i++) {
            reg_reset(&q);
            reg_bind_text(&q, 1, rel[i].config);
            reg_bind_num(&q, 2, rel[i].lr_mult);
            reg_bind_int(&q, 3, rel[i].run_id);
            rc = reg_step(&q, st) < 0 ? -1 : 0;
        }
        reg_finalize(&q);
    }
    if (!rc) rc = reg_exec(r, "COMMIT", "settling a sweep", st);
    if (rc) reg_rollback(r);
    return rc;
}
