/* registry_read.c - the registry's typed reads and its export (see registry.h). */
#include "study/registry_sql.h"

#include "core/fileio.h"
#include "core/strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

int registry_study_info(Registry *r, StudyInfo *out, Status *st) {
    memset(out, 0, sizeof *out);
    Stmt q;
    if (reg_prep(r, &q, "SELECT name, allocation, data, tokenizer, created, spec_sha256, spec FROM study", "reading the study",
             st))
        return -1;
    int got = reg_step(&q, st);
    if (got == 1) {
        reg_col_text(q.q, 0, out->name, sizeof out->name);
        reg_col_text(q.q, 1, out->allocation, sizeof out->allocation);
        reg_col_text(q.q, 2, out->data, sizeof out->data);
        reg_col_text(q.q, 3, out->tokenizer, sizeof out->tokenizer);
        reg_col_text(q.q, 4, out->created, sizeof out->created);
        reg_col_text(q.q, 5, out->sha256, sizeof out->sha256);
        out->spec = reg_col_dup(q.q, 6);
        if (!out->spec) got = status_fail(st, AP_ENOMEM, "out of memory");
    }
    reg_finalize(&q);
    if (got == 0) return status_fail(st, AP_EINVAL, "registry %s holds no study", r->path);
    return got < 0 ? -1 : 0;
}

void study_info_free(StudyInfo *s) {
    free(s->spec);
    s->spec = NULL;
}

int registry_counts(Registry *r, RegistryCounts *c, Status *st) {
    memset(c, 0, sizeof *c);
    Stmt q;
    if (reg_prep(r, &q,
             "SELECT status, count(*), sum(flops), sum(CASE WHEN status='done' THEN flops"
             " ELSE min(progress_flops, flops) END) FROM run GROUP BY status",
             "counting runs", st))
        return -1;
    int got;
    while ((got = reg_step(&q, st)) == 1) {
        int n = sqlite3_column_int(q.q, 1);
        c->total += n;
        c->flops_total += sqlite3_column_double(q.q, 2);
        c->flops_done += sqlite3_column_double(q.q, 3);
        switch (reg_status_of((const char *)sqlite3_column_text(q.q, 0))) {
        case RUN_DONE: c->done = n; break;
        case RUN_RUNNING: c->running = n; break;
        case RUN_PENDING: c->pending = n; break;
        case RUN_BLOCKED: c->blocked = n; break;
        case RUN_FAILED: c->failed = n; break;
        }
    }
    reg_finalize(&q);
    return got < 0 ? -1 : 0;
}

int registry_arms(Registry *r, ArmRow **out, int *n, Status *st) {
    *out = NULL, *n = 0;
    Stmt q;
    if (reg_prep(r, &q,
                 "SELECT id, name, preset, overrides, allocation, base_lr, lr_mult, lr, lr_source, coalesce(tune_arm, id)"
                 " FROM arm ORDER BY id",
             "reading the arms", st))
        return -1;
    int got, cap = 0;
    while ((got = reg_step(&q, st)) == 1) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            ArmRow *a = realloc(*out, (size_t)cap * sizeof *a);
            if (!a) {
                got = status_fail(st, AP_ENOMEM, "out of memory");
                break;
            }
            *out = a;
        }
        ArmRow *a = &(*out)[(*n)++];
        a->id = sqlite3_column_int(q.q, 0);
        reg_col_text(q.q, 1, a->name, sizeof a->name);
        reg_col_text(q.q, 2, a->preset, sizeof a->preset);
        reg_col_text(q.q, 3, a->overrides, sizeof a->overrides);
        reg_col_text(q.q, 4, a->allocation, sizeof a->allocation);
        a->base_lr = reg_col_num(q.q, 5);
        a->lr_mult = reg_col_num(q.q, 6);
        a->lr = reg_col_num(q.q, 7);
        reg_col_text(q.q, 8, a->lr_source, sizeof a->lr_source);
        a->tune_arm = sqlite3_column_int(q.q, 9);
    }
    reg_finalize(&q);
    if (got < 0) {
        free(*out);
        *out = NULL, *n = 0;
        return -1;
    }
    return 0;
}

#define RUN_COLUMNS                                                                                                   \
    "run.id, arm_id, arm.name, kind, budget_index, point, seed, budget, run.lr_mult, target_params, params,"         \
    " params_nonembedding, d_model, n_layers, steps, tokens, flops, flops_6nd, status, attempts, elapsed_s,"           \
    " val_loss, val_bpb, copied_from, params_kaplan, test_loss, test_bpb, unigram_bpb, keep, test_bpb_se"

static int read_run(sqlite3_stmt *q, RunRow *x, int with_config) {
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int(q, 0);
    x->arm_id = sqlite3_column_int(q, 1);
    reg_col_text(q, 2, x->arm, sizeof x->arm);
    x->kind = strcmp((const char *)sqlite3_column_text(q, 3), "main") ? RUN_LR_SWEEP : RUN_MAIN;
    x->budget_index = sqlite3_column_int(q, 4);
    x->point = sqlite3_column_int(q, 5);
    x->seed = sqlite3_column_int(q, 6);
    x->budget = sqlite3_column_double(q, 7);
    x->lr_mult = sqlite3_column_double(q, 8);
    x->target_params = sqlite3_column_double(q, 9);
    x->params = sqlite3_column_int64(q, 10);
    x->params_nonembedding = sqlite3_column_int64(q, 11);
    x->d_model = sqlite3_column_int(q, 12);
    x->n_layers = sqlite3_column_int(q, 13);
    x->steps = sqlite3_column_int(q, 14);
    x->tokens = sqlite3_column_double(q, 15);
    x->flops = sqlite3_column_double(q, 16);
    x->flops_6nd = sqlite3_column_double(q, 17);
    x->status = reg_status_of((const char *)sqlite3_column_text(q, 18));
    x->attempts = sqlite3_column_int(q, 19);
    x->elapsed_s = reg_col_num(q, 20);
    x->val_loss = reg_col_num(q, 21);
    x->val_bpb = reg_col_num(q, 22);
    x->copied_from = sqlite3_column_type(q, 23) == SQLITE_NULL ? 0 : sqlite3_column_int(q, 23);
    x->params_kaplan = sqlite3_column_int64(q, 24);
    x->test_loss = reg_col_num(q, 25);
    x->test_bpb = reg_col_num(q, 26);
    x->unigram_bpb = reg_col_num(q, 27);
    x->keep = sqlite3_column_int(q, 28);
    x->test_bpb_se = reg_col_num(q, 29);
    if (with_config) {
        x->config = reg_col_dup(q, 30);
        if (!x->config) return -1;
    }
    return 0;
}

int registry_runs(Registry *r, int arm_id, int kind, int status, int with_config, RunRow **out, int *n, Status *st) {
    *out = NULL, *n = 0;
    Stmt q;
    if (reg_prep(r, &q,
             "SELECT " RUN_COLUMNS ", config FROM run JOIN arm ON arm.id=arm_id WHERE (?1 = 0 OR arm_id = ?1)"
             " AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR status = ?3) ORDER BY run.id",
             "reading runs", st))
        return -1;
    reg_bind_int(&q, 1, arm_id);
    reg_bind_text(&q, 2, kind < 0 ? NULL : run_kind_name(kind));
    reg_bind_text(&q, 3, status < 0 ? NULL : run_status_name(status));
    int got, cap = 0;
    while ((got = reg_step(&q, st)) == 1) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            RunRow *x = realloc(*out, (size_t)cap * sizeof *x);
            if (!x) {
                got = status_fail(st, AP_ENOMEM, "out of memory");
                break;
            }
            *out = x;
        }
        if (read_run(q.q, &(*out)[*n], with_config)) {
            got = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    reg_finalize(&q);
    if (got < 0) {
        registry_runs_free(*out, *n);
        *out = NULL, *n = 0;
        return -1;
    }
    return 0;
}

void registry_runs_free(RunRow *rows, int n) {
    for (int i = 0; rows && i < n; i++) free(rows[i].config);
    free(rows);
}

int registry_run(Registry *r, int run_id, RunRow *out, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "SELECT " RUN_COLUMNS " FROM run JOIN arm ON arm.id=arm_id WHERE run.id=?", "reading a run", st))
        return -1;
    reg_bind_int(&q, 1, run_id);
    int got = reg_step(&q, st);
    if (got == 1) read_run(q.q, out, 0);
    reg_finalize(&q);
    if (got == 0) return status_fail(st, AP_EINVAL, "registry %s: no run %d", r->path, run_id);
    return got < 0 ? -1 : 0;
}

int registry_recent_done(Registry *r, int *ids, int max, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, "SELECT id FROM run WHERE status='done' ORDER BY finished_at DESC, id DESC LIMIT ?",
             "reading finished runs", st))
        return -1;
    reg_bind_int(&q, 1, max);
    int n = 0, got;
    while ((got = reg_step(&q, st)) == 1 && n < max) ids[n++] = sqlite3_column_int(q.q, 0);
    reg_finalize(&q);
    return got < 0 ? -1 : n;
}

int registry_span(Registry *r, RegistrySpan *out, Status *st) {
    memset(out, 0, sizeof *out);
    Stmt q;
    if (reg_prep(r, &q,
                 "SELECT count(*), min(CAST(strftime('%s', started_at) AS INTEGER)),"
                 " max(CAST(strftime('%s', finished_at) AS INTEGER)),"
                 " total(strftime('%s', finished_at) - strftime('%s', started_at)) FROM run"
                 " WHERE status='done' AND copied_from IS NULL AND started_at IS NOT NULL AND finished_at IS NOT NULL",
                 "reading when runs ran", st))
        return -1;
    int got = reg_step(&q, st);
    if (got == 1) {
        out->runs = sqlite3_column_int(q.q, 0);
        out->first_start = sqlite3_column_double(q.q, 1);
        out->last_finish = sqlite3_column_double(q.q, 2);
        out->run_wall_s = sqlite3_column_double(q.q, 3);
    }
    reg_finalize(&q);
    return got < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- export */

static const char *RUNS_SQL =
    "SELECT run.id AS run, arm.name AS arm, arm.preset AS preset, kind, budget, point, seed, run.lr_mult,"
    " arm.base_lr * run.lr_mult AS lr, target_params, params, params_nonembedding, d_model, n_layers, tokens, flops,"
    " flops_6nd, steps, status, attempts, started_at, finished_at, elapsed_s, val_loss, val_bpb, test_loss, test_bpb,"
    " test_bpb_se, unigram_bpb, params_kaplan, keep, copied_from, error, config FROM run JOIN arm ON arm.id=arm_id"
    " ORDER BY run.id";
static const char *METRICS_SQL =
    "SELECT metric.run_id AS run, arm.name AS arm, metric.step, metric.tokens, metric.flops, metric.epochs,"
    " metric.train_loss, metric.val_loss, metric.val_bpb, metric.lr, metric.grad_norm FROM metric"
    " JOIN run ON run.id=metric.run_id JOIN arm ON arm.id=run.arm_id ORDER BY metric.run_id, metric.step";

/* A query's rows as CSV: integers as integers, reals with 17 digits, text quoted (RFC 4180). */
static int write_csv(Registry *r, const char *sql, const char *path, Status *st) {
    Stmt q;
    if (reg_prep(r, &q, sql, "exporting", st)) return -1;
    StrBuf b = {0};
    int cols = sqlite3_column_count(q.q), got;
    for (int c = 0; c < cols; c++) sb_printf(&b, "%s%s", c ? "," : "", sqlite3_column_name(q.q, c));
    sb_putc(&b, '\n');
    while ((got = reg_step(&q, st)) == 1) {
        for (int c = 0; c < cols; c++) {
            if (c) sb_putc(&b, ',');
            switch (sqlite3_column_type(q.q, c)) {
            case SQLITE_NULL: break;
            case SQLITE_INTEGER: sb_printf(&b, "%lld", (long long)sqlite3_column_int64(q.q, c)); break;
            case SQLITE_FLOAT: sb_printf(&b, "%.17g", sqlite3_column_double(q.q, c)); break;
            default: sb_csv(&b, (const char *)sqlite3_column_text(q.q, c));
            }
        }
        sb_putc(&b, '\n');
    }
    reg_finalize(&q);
    int rc = got < 0                ? -1
             : b.failed             ? status_fail(st, AP_ENOMEM, "out of memory exporting")
                                    : file_write_atomic(path, b.s, b.len, st);
    sb_free(&b);
    return rc;
}

int registry_export_csv(Registry *r, const char *runs_path, const char *metrics_path, Status *st) {
    if (write_csv(r, RUNS_SQL, runs_path, st)) return -1;
    return write_csv(r, METRICS_SQL, metrics_path, st);
}

int registry_export_json(Registry *r, const char *path, Status *st) {
    /* SQLite's JSON functions build the document: one object per run, its metrics nested */
    char sql[8192];
    snprintf(sql, sizeof sql,
             "SELECT json_group_array(json_object('run', r.run, 'arm', r.arm, 'preset', r.preset, 'kind', r.kind,"
             " 'budget', r.budget, 'point', r.point, 'seed', r.seed, 'lr_mult', r.lr_mult, 'lr', r.lr,"
             " 'target_params', r.target_params, 'params', r.params, 'params_nonembedding', r.params_nonembedding,"
             " 'd_model', r.d_model, 'n_layers', r.n_layers, 'tokens', r.tokens, 'flops', r.flops,"
             " 'flops_6nd', r.flops_6nd, 'steps', r.steps, 'status', r.status, 'elapsed_s', r.elapsed_s,"
             " 'val_loss', r.val_loss, 'val_bpb', r.val_bpb, 'test_loss', r.test_loss, 'test_bpb', r.test_bpb,"
             " 'test_bpb_se', r.test_bpb_se,"
             " 'unigram_bpb', r.unigram_bpb, 'params_kaplan', r.params_kaplan, 'keep', r.keep, 'config', json(r.config),"
             " 'metrics', (SELECT json_group_array(json_object('step', step, 'tokens', tokens, 'flops', flops,"
             " 'epochs', epochs, 'train_loss', train_loss, 'val_loss', val_loss, 'val_bpb', val_bpb, 'lr', lr,"
             " 'grad_norm', grad_norm)) FROM metric WHERE run_id=r.run))) FROM (%s) r",
             RUNS_SQL);
    Stmt q;
    if (reg_prep(r, &q, sql, "exporting", st)) return -1;
    int got = reg_step(&q, st), rc = got < 0 ? -1 : 0;
    if (got == 1) rc = file_write_atomic(path, sqlite3_column_text(q.q, 0), (size_t)sqlite3_column_bytes(q.q, 0), st);
    reg_finalize(&q);
    return rc;
}
