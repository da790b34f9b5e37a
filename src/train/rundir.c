/* rundir.c - run-directory files and their records (see rundir.h). */
#include "train/rundir.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rundir_path(char *buf, size_t size, const char *dir, const char *name, Status *st) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return status_fail(st, AP_EINVAL, "run directory path too long: %s", dir);
    return 0;
}

int rundir_has(const char *dir, const char *name) {
    char path[1200];
    Status ignore;
    return rundir_path(path, sizeof path, dir, name, &ignore) == 0 && file_exists(path);
}

int rundir_lock(const char *dir, int *fd, Status *st) {
    char path[1200], what[1200];
    if (rundir_path(path, sizeof path, dir, RUNDIR_LOCK, st)) return -1;
    snprintf(what, sizeof what, "run directory '%s'", dir);
    return file_lock(path, what,
                     " (another `algoprog train` or a study worker): wait for it to end, or choose another out=", fd,
                     st);
}

void rundir_unlock(int fd) { file_unlock(fd); }

/* Appends a finished line to DIR/metrics.jsonl. A write that fails part-way (a full disk) is cut
 * back off, so the file never ends in half a line. */
static int append_line(const char *dir, const StrBuf *line, Status *st) {
    char path[1200];
    if (line->failed) return status_fail(st, AP_ENOMEM, "out of memory writing metrics");
    if (rundir_path(path, sizeof path, dir, RUNDIR_METRICS, st)) return -1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return status_errno(st, errno, "cannot open '%s'", path);
    off_t before = lseek(fd, 0, SEEK_END);
    const char *p = line->s;
    size_t left = line->len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (before >= 0 && ftruncate(fd, before) != 0) e = errno;
            close(fd);
            return status_errno(st, e, "cannot write '%s'", path);
        }
        p += w, left -= (size_t)w;
    }
    if (close(fd) != 0) return status_errno(st, errno, "cannot write '%s'", path);
    return 0;
}

int rundir_append_metric(const char *dir, const MetricRow *m, Status *st) {
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "step"), jw_int(&w, (long long)m->step);
    jw_key(&w, "tokens"), jw_number(&w, "%.17g", m->tokens);
    jw_key(&w, "flops"), jw_number(&w, "%.17g", m->flops);
    jw_key(&w, "epochs"), jw_number(&w, "%.6g", m->epochs);
    jw_key(&w, "train_loss"), jw_number(&w, "%.9g", m->train_loss);
    jw_key(&w, "val_loss"), jw_number(&w, "%.9g", m->val_loss);
    jw_key(&w, "val_bpb"), jw_number(&w, "%.9g", m->val_bpb);
    jw_key(&w, "lr"), jw_number(&w, "%.9g", m->lr);
    jw_key(&w, "grad_norm"), jw_number(&w, "%.9g", m->grad_norm);
    jw_key(&w, "tokens_per_s"), jw_number(&w, "%.1f", m->tokens_per_s);
    jw_key(&w, "elapsed_s"), jw_number(&w, "%.3f", m->elapsed_s);
    if (m->moe_load_max > 0) { /* NaN or 0: a model without experts */
        jw_key(&w, "moe_aux_loss"), jw_number(&w, "%.9g", m->moe_aux_loss);
        jw_key(&w, "moe_load_max"), jw_number(&w, "%.6g", m->moe_load_max);
    }
    jw_object_end(&w);
    sb_putc(&b, '\n');
    int rc = append_line(dir, &b, st);
    sb_free(&b);
    return rc;
}

int rundir_append_rollback(const char *dir, int64_t step, int at_step, const char *what, double lr_scale,
                           int64_t rollbacks, Status *st) {
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "step"), jw_int(&w, (long long)step);
    jw_key(&w, "event"), jw_string(&w, "rollback");
    jw_key(&w, "at_step"), jw_int(&w, at_step);
    jw_key(&w, "what"), jw_string(&w, what);
    jw_key(&w, "lr_scale"), jw_number(&w, "%.9g", lr_scale);
    jw_key(&w, "rollbacks"), jw_int(&w, (long long)rollbacks);
    jw_object_end(&w);
    sb_putc(&b, '\n');
    int rc = append_line(dir, &b, st);
    sb_free(&b);
    return rc;
}

/* Calls fn on every complete line of metrics.jsonl with its parsed object; stops at a torn or
 * unreadable line (fn's nonzero return also stops). *consumed: the bytes of the lines read. */
static void each_line(const char *text, size_t len, const char *path, int (*fn)(void *, const JsonValue *), void *ctx,
                     size_t *consumed) {
    size_t pos = 0;
    int line = 0;
    *consumed = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) break; /* a torn last line */
        line++;
        char what[1300];
        snprintf(what, sizeof what, "%s line %d", path, line);
        JsonDoc doc;
        Status ignore;
        if (json_parse(&doc, text + pos, (size_t)(nl - (text + pos)), what, &ignore)) break;
        int stop = fn(ctx, doc.root);
        json_free(&doc);
        if (stop) break;
        pos = (size_t)(nl - text) + 1;
        *consumed = pos;
    }
}

typedef struct {
    int64_t step;
} TruncateCtx;

static int keep_until(void *ctx, const JsonValue *v) {
    const JsonValue *s = json_get(v, "step");
    return !s || s->type != JSON_NUMBER || (int64_t)s->number > ((TruncateCtx *)ctx)->step;
}

int rundir_truncate_metrics(const char *dir, int64_t step, Status *st) {
    char path[1200];
    if (rundir_path(path, sizeof path, dir, RUNDIR_METRICS, st)) return -1;
    if (!file_exists(path)) return file_write_atomic(path, "", 0, st);
    char *text = NULL;
    size_t len = 0, keep = 0;
    if (file_read_all(path, &text, &len, (size_t)1 << 30, st)) return -1;
    TruncateCtx ctx = {step};
    each_line(text, len, path, keep_until, &ctx, &keep);
    int rc = file_write_atomic(path, text, keep, st);
    free(text);
    return rc;
}

typedef struct {
    MetricRow *rows;
    int n, cap, failed;
} ReadCtx;

static int collect(void *ctx, const JsonValue *v) {
    ReadCtx *c = ctx;
    if (json_get(v, "event")) return 0; /* a rollback note, not a measurement */
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        MetricRow *r = realloc(c->rows, (size_t)cap * sizeof *r);
        if (!r) {
            c->failed = 1;
            return 1;
        }
        c->rows = r, c->cap = cap;
    }
    MetricRow *m = &c->rows[c->n++];
    m->step = (int64_t)json_get_number(v, "step", NAN);
    m->tokens = json_get_number(v, "tokens", NAN);
    m->flops = json_get_number(v, "flops", NAN);
    m->epochs = json_get_number(v, "epochs", NAN);
    m->train_loss = json_get_number(v, "train_loss", NAN);
    m->val_loss = json_get_number(v, "val_loss", NAN);
    m->val_bpb = json_get_number(v, "val_bpb", NAN);
    m->lr = json_get_number(v, "lr", NAN);
    m->grad_norm = json_get_number(v, "grad_norm", NAN);
    m->tokens_per_s = json_get_number(v, "tokens_per_s", NAN);
    m->elapsed_s = json_get_number(v, "elapsed_s", NAN);
    return 0;
}

int rundir_read_metrics(const char *dir, MetricRow **rows, int *n, Status *st) {
    char path[1200];
    *rows = NULL, *n = 0;
    if (rundir_path(path, sizeof path, dir, RUNDIR_METRICS, st)) return -1;
    char *text = NULL;
    size_t len = 0, used = 0;
    if (file_read_all(path, &text, &len, (size_t)1 << 28, st)) return -1;
    ReadCtx c = {0};
    each_line(text, len, path, collect, &c, &used);
    free(text);
    if (c.failed) {
        free(c.rows);
        return status_fail(st, AP_ENOMEM, "out of memory reading '%s'", path);
    }
    *rows = c.rows, *n = c.n;
    return 0;
}

int rundir_write_final(const char *dir, const RunFinal *f, Status *st) {
    char path[1200], seed[32];
    if (rundir_path(path, sizeof path, dir, RUNDIR_FINAL, st)) return -1;
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "step"), jw_int(&w, (long long)f->step);
    jw_key(&w, "val_loss"), jw_number(&w, "%.9g", f->val_loss);
    jw_key(&w, "val_bpb"), jw_number(&w, "%.9g", f->val_bpb);
    jw_key(&w, "test_loss"), jw_number(&w, "%.9g", f->test_loss);
    jw_key(&w, "test_bpb"), jw_number(&w, "%.9g", f->test_bpb);
    jw_key(&w, "test_bpb_se"), jw_number(&w, "%.4g", f->test_bpb_se);
    jw_key(&w, "unigram_bpb"), jw_number(&w, "%.9g", f->unigram_bpb);
    jw_key(&w, "params"), jw_number(&w, "%.0f", f->params);
    jw_key(&w, "params_nonembedding"), jw_int(&w, (long long)f->params_nonembedding);
    jw_key(&w, "tokens"), jw_number(&w, "%.17g", f->tokens);
    jw_key(&w, "flops"), jw_number(&w, "%.17g", f->flops);
    jw_key(&w, "flops_6nd"), jw_number(&w, "%.17g", f->flops_6nd);
    jw_key(&w, "teacher_flops"), jw_number(&w, "%.17g", f->teacher_flops);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed); /* all 64 bits, as an integer */
    jw_key(&w, "seed"), jw_raw(&w, seed);
    jw_key(&w, "elapsed_s"), jw_number(&w, "%.3f", f->elapsed_s);
    jw_key(&w, "tokens_per_s"), jw_number(&w, "%.1f", f->tokens_per_s);
    { /* how OpenMP threads waited (core/parallel.h parallel_adapt_waiting): a busy machine is slower */
        const char *wait = getenv("OMP_WAIT_POLICY"), *why = getenv("ALGOPROG_WAIT_POLICY");
        jw_key(&w, "omp_wait"), jw_string(&w, why && strcmp(why, "default") ? why : wait ? wait : "default");
    }
    if (f->n_ctx) {
        jw_key(&w, "context_eval"), jw_array_begin(&w);
        for (int i = 0; i < f->n_ctx; i++) {
            const RunContextEval *c = &f->ctx[i];
            const char *name = config_enum_name("rope_scaling", c->scaling);
            jw_object_begin(&w);
            jw_key(&w, "multiple"), jw_int(&w, c->multiple);
            jw_key(&w, "rope_scaling"), jw_string(&w, name ? name : "none");
            jw_key(&w, "rope_factor"), jw_number(&w, "%.9g", c->factor);
            jw_key(&w, "test_bpb"), jw_number(&w, "%.9g", c->bpb);
            jw_key(&w, "test_bpb_beyond"), jw_number(&w, "%.9g", c->bpb_beyond);
            jw_object_end(&w);
        }
        jw_array_end(&w);
    }
    jw_key(&w, "time");
    jw_object_begin(&w);
#define RUNTIMES_WRITE(name) jw_key(&w, #name "_s"), jw_number(&w, "%.3f", f->time.name);
    RUNTIMES_FIELDS(RUNTIMES_WRITE)
#undef RUNTIMES_WRITE
    jw_object_end(&w);
    jw_object_end(&w);
    sb_putc(&b, '\n');
    int rc = b.failed ? status_fail(st, AP_ENOMEM, "out of memory") : file_write_atomic(path, b.s, b.len, st);
    sb_free(&b);
    return rc;
}

int rundir_read_final(const char *dir, RunFinal *f, Status *st) {
    char path[1200];
    if (rundir_path(path, sizeof path, dir, RUNDIR_FINAL, st)) return -1;
    char *text = NULL;
    size_t len = 0;
    if (file_read_all(path, &text, &len, 1 << 20, st)) return -1;
    JsonDoc doc;
    int rc = json_parse(&doc, text, len, path, st);
    free(text);
    if (rc) return -1;
    const JsonValue *v = doc.root;
    if (!v || v->type != JSON_OBJECT) {
        json_free(&doc);
        return status_fail(st, AP_ECORRUPT, "%s: not a JSON object", path);
    }
    memset(f, 0, sizeof *f);
    f->step = (int64_t)json_get_number(v, "step", -1);
    f->val_loss = json_get_number(v, "val_loss", NAN);
    f->val_bpb = json_get_number(v, "val_bpb", NAN);
    f->test_loss = json_get_number(v, "test_loss", NAN);
    f->test_bpb = json_get_number(v, "test_bpb", NAN);
    f->test_bpb_se = json_get_number(v, "test_bpb_se", NAN);
    f->unigram_bpb = json_get_number(v, "unigram_bpb", NAN);
    f->params = json_get_number(v, "params", NAN);
    f->params_nonembedding = (size_t)json_get_number(v, "params_nonembedding", 0);
    f->tokens = json_get_number(v, "tokens", NAN);
    f->flops = json_get_number(v, "flops", NAN);
    f->flops_6nd = json_get_number(v, "flops_6nd", NAN);
    f->teacher_flops = json_get_number(v, "teacher_flops", 0); /* absent before distillation existed */
    const JsonValue *seed = json_get(v, "seed"); /* all 64 bits: from the number's text, not a double */
    f->seed = seed && seed->type == JSON_NUMBER && seed->string ? strtoull(seed->string, NULL, 10) : 0;
    f->elapsed_s = json_get_number(v, "elapsed_s", NAN);
    f->tokens_per_s = json_get_number(v, "tokens_per_s", NAN);
    const JsonValue *ce = json_get(v, "context_eval");
    for (const JsonValue *e = ce && ce->type == JSON_ARRAY ? ce->child : NULL; e && f->n_ctx < RUNDIR_MAX_CONTEXT_EVALS;
         e = e->next) {
        RunContextEval *c = &f->ctx[f->n_ctx++];
        const JsonValue *name = json_get(e, "rope_scaling");
        c->multiple = (int)json_get_number(e, "multiple", 0);
        c->scaling = 0;
        for (int k = 0; k < 4 && name && name->type == JSON_STRING; k++) {
            const char *n = config_enum_name("rope_scaling", k);
            if (n && !strcmp(n, name->string)) c->scaling = k;
        }
        c->factor = json_get_number(e, "rope_factor", NAN);
        c->bpb = json_get_number(e, "test_bpb", NAN);
        c->bpb_beyond = json_get_number(e, "test_bpb_beyond", NAN);
    }
    const JsonValue *t = json_get(v, "time");
    int has_time = t && t->type == JSON_OBJECT;
#define RUNTIMES_READ(name) f->time.name = has_time ? json_get_number(t, #name "_s", NAN) : NAN;
    RUNTIMES_FIELDS(RUNTIMES_READ)
#undef RUNTIMES_READ
    json_free(&doc);
    return 0;
}

int rundir_load_tokenizer(Tokenizer *t, const char *dir, Status *st) {
    char path[1200];
    if (rundir_path(path, sizeof path, dir, RUNDIR_TOKENIZER, st)) return -1;
    return tokenizer_load(t, file_exists(path) ? path : "bytes", st);
}
