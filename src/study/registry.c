/* registry.c - the SQLite run registry (see registry.h). */
#include "study/registry.h"

#include "core/fileio.h"

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
    "  base_lr REAL NOT NULL, lr_mult REAL, lr REAL, lr_source TEXT);"
    "CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY, arm_id INTEGER NOT NULL REFERENCES arm(id),"
    "  kind TEXT NOT NULL, priority INTEGER NOT NULL, budget_index INTEGER NOT NULL, budget REAL NOT NULL,"
    "  point INTEGER NOT NULL, seed INTEGER NOT NULL, lr_mult REAL NOT NULL, target_params REAL NOT NULL,"
    "  params INTEGER NOT NULL, params_nonembedding INTEGER NOT NULL, d_model INTEGER NOT NULL,"
    "  n_layers INTEGER NOT NULL, tokens REAL NOT NULL, flops REAL NOT NULL, flops_6nd REAL NOT NULL,"
    "  steps INTEGER NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL, host TEXT, pid INTEGER,"
    "  attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, elapsed_s REAL,"
    "  progress_flops REAL NOT NULL DEFAULT 0, last_loss REAL, val_loss REAL, val_bpb REAL,"
    "  copied_from INTEGER, error TEXT);"
    "CREATE INDEX IF NOT EXISTS run_status ON run(status, priority, id);"
    "CREATE TABLE IF NOT EXISTS metric (run_id INTEGER NOT NULL REFERENCES run(id), step INTEGER NOT NULL,"
    "  tokens REAL, flops REAL, epochs REAL, train_loss REAL, val_loss REAL, val_bpb REAL, lr REAL,"
    "  grad_norm REAL, PRIMARY KEY (run_id, step));";

static int db_fail(Registry *r, Status *st, const char *what) {
    return status_fail(st, AP_EIO, "registry %s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

static int exec(Registry *r, const char *sql, Status *st) {
    char *err = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        status_fail(st, AP_EIO, "registry %s: %s", r->path, err ? err : "error");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static void now_iso(char *buf, size_t size) {
    time_t t = time(NULL);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

int registry_open(Registry *r, const char *dir, int create, Status *st) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s/registry.db", dir);
    if (!create && !file_exists(r->path)) return status_fail(st, AP_EINVAL, "no study registry in '%s'", dir);
    if (create && dir_create(dir, st)) return -1;
    if (sqlite3_open_v2(r->path, &r->db, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), NULL) !=
        SQLITE_OK) {
        int rc = db_fail(r, st, "cannot open");
        registry_close(r);
        return rc;
    }
    sqlite3_busy_timeout(r->db, 60000); /* other workers hold the lock for milliseconds */
    if (exec(r, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", st) ||
        exec(r, SCHEMA, st)) {
        registry_close(r);
        return -1;
    }
    /* refuse a registry written by a newer version */
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &q, NULL);
    int version = -1;
    if (sqlite3_step(q) == SQLITE_ROW) version = atoi((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (version > REGISTRY_SCHEMA_VERSION) {
        registry_close(r);
        return status_fail(st, AP_EINVAL, "registry %s has schema version %d; this build reads up to %d", r->path,
                           version, REGISTRY_SCHEMA_VERSION);
    }
    if (version < 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO meta VALUES ('schema_version', '%d')", REGISTRY_SCHEMA_VERSION);
        if (exec(r, sql, st)) {
            registry_close(r);
            return -1;
        }
    }
    return 0;
}

void registry_close(Registry *r) {
    if (r->db) sqlite3_close(r->db);
    r->db = NULL;
}

int registry_init_study(Registry *r, const StudySpec *s, const PlannedRun *runs, int n, Status *st) {
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db, "SELECT name, spec_sha256 FROM study LIMIT 1", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW) {
        char name[128], sha[65];
        snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(q, 0));
        snprintf(sha, sizeof sha, "%s", (const char *)sqlite3_column_text(q, 1));
        sqlite3_finalize(q);
        if (strcmp(sha, s->hash))
            return status_fail(st, AP_EINVAL,
                               "registry %s belongs to study '%s' with a different study file; run this study in "
                               "another out= directory (a registry keeps one study's results)",
                               r->path, name);
        return 0;
    }
    sqlite3_finalize(q);
    if (exec(r, "BEGIN IMMEDIATE", st)) return -1;
    char created[32];
    now_iso(created, sizeof created);
    int rc = 0;
    sqlite3_prepare_v2(r->db, "INSERT INTO study VALUES (1, ?, ?, ?, ?, ?, ?, ?)", -1, &q, NULL);
    sqlite3_bind_text(q, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, s->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, s->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, alloc_rule_name(s->allocation), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, s->data, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, s->tokenizer, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, created, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) rc = db_fail(r, st, "insert study");
    sqlite3_finalize(q);
    for (int a = 0; a < s->n_arms && !rc; a++) {
        const StudyArm *arm = &s->arms[a];
        char over[STUDY_MAX_OVERRIDES * 80] = "";
        for (int i = 0; i < arm->n_overrides; i++) {
            size_t l = strlen(over);
            snprintf(over + l, sizeof over - l, "%s%s=%s", i ? " " : "", arm->overrides[i][0], arm->overrides[i][1]);
        }
        sqlite3_prepare_v2(r->db, "INSERT INTO arm VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &q, NULL);
        sqlite3_bind_int(q, 1, a + 1);
        sqlite3_bind_text(q, 2, arm->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, arm->preset, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, over, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 5, alloc_rule_name(arm->allocation >= 0 ? arm->allocation : s->allocation), -1,
                          SQLITE_STATIC);
        sqlite3_bind_double(q, 6, arm->cfg.lr);
        if (s->lr_sweep) {
            sqlite3_bind_null(q, 7), sqlite3_bind_null(q, 8);
            sqlite3_bind_text(q, 9, "pending: learning-rate sweep", -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_double(q, 7, 1.0), sqlite3_bind_double(q, 8, arm->cfg.lr);
            sqlite3_bind_text(q, 9, "preset (no sweep)", -1, SQLITE_STATIC);
        }
        if (sqlite3_step(q) != SQLITE_DONE) rc = db_fail(r, st, "insert arm");
        sqlite3_finalize(q);
    }
    sqlite3_prepare_v2(r->db,
                       "INSERT INTO run (arm_id, kind, priority, budget_index, budget, point, seed, lr_mult,"
                       " target_params, params, params_nonembedding, d_model, n_layers, tokens, flops, flops_6nd,"
                       " steps, config, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       -1, &q, NULL);
    for (int i = 0; i < n && !rc; i++) {
        const PlannedRun *p = &runs[i];
        char *json = config_to_json(&p->cfg);
        if (!json) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        /* small budgets of every arm first, so early results cover all arms */
        int priority = p->kind == RUN_LR_SWEEP ? 0 : 1 + p->budget_index * 1000 + p->point * 10 + (p->seed > 1);
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, p->arm + 1);
        sqlite3_bind_text(q, 2, p->kind == RUN_LR_SWEEP ? "lr_sweep" : "main", -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, priority);
        sqlite3_bind_int(q, 4, p->budget_index);
        sqlite3_bind_double(q, 5, p->budget);
        sqlite3_bind_int(q, 6, p->point);
        sqlite3_bind_int(q, 7, p->seed);
        sqlite3_bind_double(q, 8, p->lr_mult);
        sqlite3_bind_double(q, 9, p->target_params);
        sqlite3_bind_int64(q, 10, (sqlite3_int64)p->params);
        sqlite3_bind_int64(q, 11, (sqlite3_int64)p->params_nonembedding);
        sqlite3_bind_int(q, 12, p->cfg.d_model);
        sqlite3_bind_int(q, 13, p->cfg.n_layers);
        sqlite3_bind_double(q, 14, p->tokens);
        sqlite3_bind_double(q, 15, p->flops);
        sqlite3_bind_double(q, 16, p->flops_6nd);
        sqlite3_bind_int(q, 17, p->cfg.steps);
        sqlite3_bind_text(q, 18, json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 19, p->kind == RUN_MAIN && s->lr_sweep ? "blocked" : "pending", -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) rc = db_fail(r, st, "insert run");
        free(json);
    }
    sqlite3_finalize(q);
    if (!rc) {
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES ('study_sha256', '%s')", s->hash);
        rc = exec(r, sql, st);
    }
    if (rc) {
        exec(r, "ROLLBACK", st);
        return -1;
    }
    return exec(r, "COMMIT", st);
}

static void hostname(char *buf, size_t size) {
    if (gethostname(buf, size) != 0) snprintf(buf, size, "localhost");
    buf[size - 1] = '\0';
}

int registry_recover(Registry *r, Status *st) {
    char host[256];
    hostname(host, sizeof host);
    if (exec(r, "BEGIN IMMEDIATE", st)) return -1;
    sqlite3_stmt *q, *u;
    sqlite3_prepare_v2(r->db, "SELECT id, pid FROM run WHERE status='running' AND host=?", -1, &q, NULL);
    sqlite3_bind_text(q, 1, host, -1, SQLITE_STATIC);
    sqlite3_prepare_v2(r->db, "UPDATE run SET status='pending', pid=NULL WHERE id=?", -1, &u, NULL);
    int n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        pid_t pid = (pid_t)sqlite3_column_int(q, 1);
        if (pid > 0 && kill(pid, 0) == 0) continue; /* still alive: another study process */
        sqlite3_reset(u);
        sqlite3_bind_int(u, 1, sqlite3_column_int(q, 0));
        sqlite3_step(u);
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    /* starting the study again means: try the failed runs again */
    if (exec(r, "UPDATE run SET status='pending', error=NULL WHERE status='failed'", st)) {
        exec(r, "ROLLBACK", st);
        return -1;
    }
    n += sqlite3_changes(r->db);
    if (exec(r, "COMMIT", st)) return -1;
    return n;
}

int registry_claim(Registry *r, ClaimedRun *out, Status *st) {
    if (exec(r, "BEGIN IMMEDIATE", st)) return -1;
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db,
                       "SELECT run.id, arm_id, arm.name, kind, config FROM run JOIN arm ON arm.id = arm_id"
                       " WHERE status='pending' ORDER BY priority, run.id LIMIT 1",
                       -1, &q, NULL);
    int found = sqlite3_step(q) == SQLITE_ROW;
    if (found) {
        out->id = sqlite3_column_int(q, 0);
        out->arm_id = sqlite3_column_int(q, 1);
        snprintf(out->arm, sizeof out->arm, "%s", (const char *)sqlite3_column_text(q, 2));
        out->kind = strcmp((const char *)sqlite3_column_text(q, 3), "main") ? RUN_LR_SWEEP : RUN_MAIN;
        snprintf(out->config_json, sizeof out->config_json, "%s", (const char *)sqlite3_column_text(q, 4));
    }
    sqlite3_finalize(q);
    if (!found) {
        exec(r, "COMMIT", st);
        return 0;
    }
    char host[256], now[32];
    hostname(host, sizeof host);
    now_iso(now, sizeof now);
    sqlite3_prepare_v2(r->db,
                       "UPDATE run SET status='running', host=?, pid=?, attempts=attempts+1,"
                       " started_at=COALESCE(started_at, ?) WHERE id=? AND status='pending'",
                       -1, &q, NULL);
    sqlite3_bind_text(q, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, (int)getpid());
    sqlite3_bind_text(q, 3, now, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, out->id);
    int ok = sqlite3_step(q) == SQLITE_DONE && sqlite3_changes(r->db) == 1;
    sqlite3_finalize(q);
    if (!ok) {
        exec(r, "ROLLBACK", st);
        return db_fail(r, st, "claim");
    }
    return exec(r, "COMMIT", st) ? -1 : 1;
}

int registry_progress(Registry *r, int run_id, double flops_done, double loss) {
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db, "UPDATE run SET progress_flops=?, last_loss=? WHERE id=?", -1, &q, NULL);
    sqlite3_bind_double(q, 1, flops_done);
    sqlite3_bind_double(q, 2, loss);
    sqlite3_bind_int(q, 3, run_id);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(q);
    return rc;
}

/* A number after "key": in a JSON line we wrote ourselves; NAN for null or absent. */
static double json_num(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p) return NAN;
    p += strlen(pat);
    if (!strncmp(p, "null", 4)) return NAN;
    return strtod(p, NULL);
}

static void bind_num(sqlite3_stmt *q, int i, double v) {
    if (isnan(v))
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_double(q, i, v);
}

/* After the last sweep run of an arm: the best multiplier becomes the arm's; its runs start. */
static int settle_sweep(Registry *r, int arm_id, Status *st) {
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db, "SELECT count(*) FROM run WHERE arm_id=? AND kind='lr_sweep' AND status!='done'", -1, &q,
                       NULL);
    sqlite3_bind_int(q, 1, arm_id);
    int open_runs = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 1;
    sqlite3_finalize(q);
    if (open_runs) return 0;
    sqlite3_prepare_v2(r->db,
                       "SELECT id, lr_mult, val_bpb, (SELECT min(lr_mult) FROM run WHERE arm_id=?1 AND kind='lr_sweep'),"
                       " (SELECT max(lr_mult) FROM run WHERE arm_id=?1 AND kind='lr_sweep') FROM run"
                       " WHERE arm_id=?1 AND kind='lr_sweep' AND val_bpb IS NOT NULL ORDER BY val_bpb, lr_mult LIMIT 1",
                       -1, &q, NULL);
    sqlite3_bind_int(q, 1, arm_id);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return 0;
    }
    int best_run = sqlite3_column_int(q, 0);
    double mult = sqlite3_column_double(q, 1), bpb = sqlite3_column_double(q, 2);
    double lo = sqlite3_column_double(q, 3), hi = sqlite3_column_double(q, 4);
    sqlite3_finalize(q);
    char source[256];
    snprintf(source, sizeof source, "sweep: x%.4g of the preset lr was best (%.4f bits/byte)%s", mult, bpb,
             mult == lo || mult == hi ? "; at the edge of the swept range, widen it" : "");
    sqlite3_prepare_v2(r->db, "UPDATE arm SET lr_mult=?, lr=base_lr*?, lr_source=? WHERE id=?", -1, &q, NULL);
    sqlite3_bind_double(q, 1, mult);
    sqlite3_bind_double(q, 2, mult);
    sqlite3_bind_text(q, 3, source, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, arm_id);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(r, st, "update arm");
    sqlite3_finalize(q);
    /* release the arm's runs with the chosen learning rate */
    sqlite3_stmt *sel, *upd;
    sqlite3_prepare_v2(r->db, "SELECT id, config FROM run WHERE arm_id=? AND status='blocked'", -1, &sel, NULL);
    sqlite3_bind_int(sel, 1, arm_id);
    sqlite3_prepare_v2(r->db, "UPDATE run SET config=?, lr_mult=?, status='pending' WHERE id=?", -1, &upd, NULL);
    while (!rc && sqlite3_step(sel) == SQLITE_ROW) {
        Config c;
        config_defaults(&c);
        if (config_from_json(&c, (const char *)sqlite3_column_text(sel, 1), st)) {
            rc = -1;
            break;
        }
        c.lr *= mult;
        c.adam_lr *= mult;
        char *json = config_to_json(&c);
        sqlite3_reset(upd);
        sqlite3_bind_text(upd, 1, json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(upd, 2, mult);
        sqlite3_bind_int(upd, 3, sqlite3_column_int(sel, 0));
        if (sqlite3_step(upd) != SQLITE_DONE) rc = db_fail(r, st, "release runs");
        free(json);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    /* the main run identical to the winning sweep run need not be trained again */
    if (!rc) {
        sqlite3_stmt *dup;
        sqlite3_prepare_v2(r->db,
                           "SELECT m.id FROM run m JOIN run w ON w.id=?1 WHERE m.arm_id=w.arm_id AND m.kind='main'"
                           " AND m.status='pending' AND m.budget_index=w.budget_index AND m.point=w.point AND m.seed=w.seed",
                           -1, &dup, NULL);
        sqlite3_bind_int(dup, 1, best_run);
        if (sqlite3_step(dup) == SQLITE_ROW) {
            int main_id = sqlite3_column_int(dup, 0);
            char sql[1024];
            snprintf(sql, sizeof sql,
                     "UPDATE run SET (status, val_loss, val_bpb, elapsed_s, progress_flops, started_at, finished_at,"
                     " copied_from) = (SELECT 'done', val_loss, val_bpb, elapsed_s, progress_flops, started_at,"
                     " finished_at, id FROM run WHERE id=%d) WHERE id=%d;"
                     "INSERT INTO metric SELECT %d, step, tokens, flops, epochs, train_loss, val_loss, val_bpb, lr,"
                     " grad_norm FROM metric WHERE run_id=%d;",
                     best_run, main_id, main_id, best_run);
            rc = exec(r, sql, st);
        }
        sqlite3_finalize(dup);
    }
    return rc;
}

int registry_finish(Registry *r, int run_id, const char *run_dir, Status *st) {
    char path[1100], *metrics = NULL, *final = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    if (file_read_all(path, &metrics, &len, 1 << 28, st)) return -1;
    snprintf(path, sizeof path, "%s/final.json", run_dir);
    if (file_read_all(path, &final, &len, 1 << 20, st)) {
        free(metrics);
        return -1;
    }
    if (exec(r, "BEGIN IMMEDIATE", st)) {
        free(metrics), free(final);
        return -1;
    }
    int rc = 0;
    sqlite3_stmt *q;
    char del[96];
    snprintf(del, sizeof del, "DELETE FROM metric WHERE run_id=%d", run_id);
    rc = exec(r, del, st);
    sqlite3_prepare_v2(r->db, "INSERT INTO metric VALUES (?,?,?,?,?,?,?,?,?,?)", -1, &q, NULL);
    for (char *line = strtok(metrics, "\n"); line && !rc; line = strtok(NULL, "\n")) {
        static const char *keys[] = {"step", "tokens", "flops", "epochs", "train_loss", "val_loss", "val_bpb", "lr",
                                     "grad_norm"};
        if (strstr(line, "\"event\"")) continue; /* a rollback note, not a measurement */
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, run_id);
        for (int k = 0; k < 9; k++) bind_num(q, k + 2, json_num(line, keys[k]));
        if (sqlite3_step(q) != SQLITE_DONE) rc = db_fail(r, st, "insert metric");
    }
    sqlite3_finalize(q);
    char now[32];
    now_iso(now, sizeof now);
    int arm_id = 0, sweep = 0;
    if (!rc) {
        sqlite3_prepare_v2(r->db,
                           "UPDATE run SET status='done', val_loss=?, val_bpb=?, elapsed_s=?, progress_flops=flops,"
                           " finished_at=?, pid=NULL WHERE id=? RETURNING arm_id, kind",
                           -1, &q, NULL);
        bind_num(q, 1, json_num(final, "val_loss"));
        bind_num(q, 2, json_num(final, "val_bpb"));
        bind_num(q, 3, json_num(final, "elapsed_s"));
        sqlite3_bind_text(q, 4, now, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 5, run_id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            arm_id = sqlite3_column_int(q, 0);
            sweep = !strcmp((const char *)sqlite3_column_text(q, 1), "lr_sweep");
        } else {
            rc = db_fail(r, st, "finish run");
        }
        sqlite3_finalize(q);
    }
    if (!rc && sweep) rc = settle_sweep(r, arm_id, st);
    free(metrics), free(final);
    if (rc) {
        Status ignore;
        exec(r, "ROLLBACK", &ignore);
        return -1;
    }
    return exec(r, "COMMIT", st);
}

static int set_status(Registry *r, int run_id, const char *status, const char *message, Status *st) {
    sqlite3_stmt *q;
    sqlite3_prepare_v2(r->db, "UPDATE run SET status=?, error=?, pid=NULL WHERE id=?", -1, &q, NULL);
    sqlite3_bind_text(q, 1, status, -1, SQLITE_STATIC);
    if (message)
        sqlite3_bind_text(q, 2, message, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 2);
    sqlite3_bind_int(q, 3, run_id);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(r, st, "update run");
    sqlite3_finalize(q);
    return rc;
}

int registry_fail(Registry *r, int run_id, const char *message, Status *st) {
    return set_status(r, run_id, "failed", message, st);
}

int registry_release(Registry *r, int run_id, Status *st) { return set_status(r, run_id, "pending", NULL, st); }

int registry_counts(Registry *r, RegistryCounts *c, Status *st) {
    memset(c, 0, sizeof *c);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT status, count(*), sum(flops), sum(CASE WHEN status='done' THEN flops"
                           " ELSE min(progress_flops, flops) END) FROM run GROUP BY status",
                           -1, &q, NULL) != SQLITE_OK)
        return db_fail(r, st, "count runs");
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(q, 0);
        int n = sqlite3_column_int(q, 1);
        c->total += n;
        c->flops_total += sqlite3_column_double(q, 2);
        c->flops_done += sqlite3_column_double(q, 3);
        if (!strcmp(s, "done")) c->done = n;
        else if (!strcmp(s, "running")) c->running = n;
        else if (!strcmp(s, "pending")) c->pending = n;
        else if (!strcmp(s, "blocked")) c->blocked = n;
        else if (!strcmp(s, "failed")) c->failed = n;
    }
    sqlite3_finalize(q);
    return 0;
}
