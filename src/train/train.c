/* train.c - the training loop (see train.h). */
#define _DEFAULT_SOURCE /* realpath */
#include "train/train.h"
#include "train/curriculum.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "dist/dist.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "train/ctxeval.h"
#include "train/rundir.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void join(char *buf, size_t size, const char *dir, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

static int stop_requested(const Trainer *tr) { return tr->stop && *tr->stop; }

/* Bytes of memory available to a new process now (MemAvailable), or 0 when unknown. */
static double memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0.0;
    char line[256];
    double kb = 0.0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024.0;
}

int train_check_memory(const Config *c, int local_batch, Status *st) {
    MemoryEstimate e = model_memory_estimate(c, local_batch, c->context);
    double limit = c->memory_limit > 0 ? c->memory_limit * 1e9 : memory_available();
    if (limit <= 0 || e.total <= limit) return 0;
    return status_fail(st, AP_ENOMEM,
                       "this run needs about %.2f GB (parameters %.2f, gradients %.2f, optimiser %.2f, activations "
                       "%.2f at batch %d x context %d) but %s %.2f GB; lower batch, context or the model size",
                       e.total / 1e9, e.params / 1e9, e.grads / 1e9, e.optimizer / 1e9, e.activations / 1e9, c->batch,
                       c->context, c->memory_limit > 0 ? "memory_limit is" : "only", limit / 1e9);
}

/* Keeps the data-parallel fields across the memset of setup/resume, and checks them. */
static int init_parallel(Trainer *tr, int dp_size, Status *st) {
    tr->dp_size = dp_size > 1 ? dp_size : 1;
    tr->dp_rank = tr->dp_size > 1 ? dist_dp_rank() : 0;
    if (tr->dp_size > 1 && dist_dp_size() != tr->dp_size)
        return status_fail(st, AP_EINVAL, "data parallel over %d ranks, but the group has %d", tr->dp_size,
                           dist_dp_size());
    if (tr->dp_rank != 0) tr->quiet = 1;
    return 0;
}

/* Loads the teacher of a distilled run (cfg.teacher): a finished run's model with the student's
 * tokenizer and vocabulary and at least its context, prepared for the student's batches. */
static int load_teacher(Trainer *tr, Status *st) {
    const Config *c = &tr->cfg;
    char path[CONFIG_PATH_MAX + 32];
    if (rundir_path(path, sizeof path, c->teacher, RUNDIR_CHECKPOINT, st)) return -1;
    if (!file_exists(path))
        return status_fail(st, AP_EINVAL, "teacher '%s' holds no checkpoint.bin: train the teacher there first",
                           c->teacher);
    if (!(tr->teacher = calloc(1, sizeof *tr->teacher))) return status_fail(st, AP_ENOMEM, "out of memory");
    Config *t = &tr->teacher_cfg;
    if (checkpoint_load_model(tr->teacher, t, path, st)) return status_wrap(st, "teacher '%s'", c->teacher);
    Tokenizer tok = {0};
    if (rundir_load_tokenizer(&tok, c->teacher, st)) return status_wrap(st, "teacher '%s'", c->teacher);
    int same = tok.hash == tr->data.tok.hash && tok.n_tokens == tr->data.tok.n_tokens;
    char tname[sizeof tok.name];
    snprintf(tname, sizeof tname, "%s", tok.name);
    tokenizer_free(&tok);
    if (!same)
        return status_fail(st, AP_EINVAL,
                           "teacher '%s' was trained with tokenizer '%s', this run uses '%s': distillation compares "
                           "distributions over the same tokens",
                           c->teacher, tname, tr->data.tok.name);
    if (t->vocab != c->vocab)
        return status_fail(st, AP_EINVAL, "teacher '%s' has vocab=%d, this run %d: set vocab=%d", c->teacher, t->vocab,
                           c->vocab, t->vocab);
    if (t->context < c->context)
        return status_fail(st, AP_EINVAL, "teacher '%s' was trained at context=%d, shorter than this run's %d",
                           c->teacher, t->context, c->context);
    if (model_prepare(tr->teacher, tr->local_batch, c->context, st)) return status_wrap(st, "teacher");
    size_t n = (size_t)tr->local_batch * c->context * (size_t)c->vocab;
    if (!(tr->soft = floats_alloc(n)))
        return status_fail(st, AP_ENOMEM, "cannot allocate the teacher's soft targets (%.1f MB)", n * 4.0 / 1e6);
    return 0;
}

/* init_from: a fresh run starts from another run's trained parameters (a fine-tune: at a longer
 * context with a RoPE scaling, say) with a fresh optimiser and schedule. The shapes must match. */
static int init_from_run(Trainer *tr, Status *st) {
    const Config *c = &tr->cfg;
    char path[CONFIG_PATH_MAX + 32];
    if (rundir_path(path, sizeof path, c->init_from, RUNDIR_CHECKPOINT, st)) return -1;
    if (!file_exists(path))
        return status_fail(st, AP_EINVAL, "init_from '%s' holds no checkpoint.bin: train that run first", c->init_from);
    Tokenizer tok = {0};
    if (rundir_load_tokenizer(&tok, c->init_from, st)) return status_wrap(st, "init_from '%s'", c->init_from);
    int same = tok.hash == tr->data.tok.hash && tok.n_tokens == tr->data.tok.n_tokens;
    tokenizer_free(&tok);
    if (!same)
        return status_fail(st, AP_EINVAL, "init_from '%s' was trained with another tokenizer than this run's '%s'",
                           c->init_from, tr->data.tok.name);
    TensorFile tf;
    Config from;
    TrainState ts;
    OptimMeta om;
    if (checkpoint_open(path, &tf, &from, &ts, &om, st)) return status_wrap(st, "init_from");
    int rc = checkpoint_restore_params(&tf, tr->model.ps, st);
    tensorfile_free(&tf);
    if (rc) { /* a mismatch is a recipe that does not fit the run, not a damaged file */
        if (st->code == AP_ECORRUPT) st->code = AP_EINVAL;
        return status_wrap(st,
                           "init_from '%s' (its model must have this run's shapes: start from its recipe, "
                           "`algoprog train %s/config.ini init_from=%s ...`)",
                           c->init_from, c->init_from, c->init_from);
    }
    return 0;
}

/* The teacher's forward FLOPs over the first `steps` steps (each step's shape; curriculum.h). */
static double teacher_flops(const Trainer *tr, int64_t steps) {
    if (!tr->teacher) return 0;
    double total = 0, per = 0;
    StepShape last = {0, 0, 0};
    Config t = tr->teacher_cfg;
    t.window_warmup = t.batch_warmup = t.seq_warmup = 0;
    for (int64_t k = 0; k < steps; k++) {
        StepShape s = curriculum_step(&tr->cfg, (long)k);
        if (s.batch != last.batch || s.context != last.context) /* shapes change rarely: count each once */
            per = model_step_flops(&t, s.batch, s.context).forward, last = s;
        total += per;
    }
    return total;
}

/* Everything after the config is known: data and tokenizer (which fix the vocabulary), model,
 * optimiser, buffers. */
static int setup_common(Trainer *tr, Rng *init_rng, int fresh, Status *st) {
    Config *c = &tr->cfg;
    /* the run's record names the library that ran: without oneDNN, auto is OpenBLAS */
    if (c->gemm == GEMMLIB_AUTO && !gemm_have_onednn()) c->gemm = GEMMLIB_OPENBLAS;
    if (dataset_open(&tr->data, c->data, c->tokenizer, c->val_frac, c->max_unique_tokens, c->context, c->seed, st))
        return -1;
    if (c->data_epochs > 0 && tr->data.unique < c->max_unique_tokens)
        return status_fail(st, AP_EINVAL,
                           "data_epochs=%g needs %llu unique training tokens and '%s' has %zu: use more text, fewer "
                           "steps or more epochs",
                           c->data_epochs, (unsigned long long)c->max_unique_tokens, c->data, tr->data.unique);
    int multiples[CONFIG_MAX_EVAL_CONTEXTS], n_mult = config_eval_contexts(c, multiples, CONFIG_MAX_EVAL_CONTEXTS, st);
    if (n_mult < 0) return -1;
    if (n_mult && dataset_eval_windows(&tr->data, EVAL_TEST) < (size_t)multiples[n_mult - 1])
        return status_fail(st, AP_EINVAL, "eval_contexts=%s: the test half of '%s' holds %zu windows of %d tokens, "
                           "fewer than one window of %d x %d", c->eval_contexts, c->data,
                           dataset_eval_windows(&tr->data, EVAL_TEST), c->context, multiples[n_mult - 1], c->context);
    int n_tok = tr->data.tok.n_tokens;
    if (c->vocab == 0) c->vocab = n_tok;
    if (c->vocab < n_tok)
        return status_fail(st, AP_EINVAL, "vocab=%d is smaller than tokenizer '%s' with %d tokens", c->vocab,
                           tr->data.tok.name, n_tok);
    if (model_is_stateful(c) && dataset_use_streams(&tr->data, c->batch, st)) return -1;
    if (c->batch % tr->dp_size)
        return status_fail(st, AP_EINVAL, "batch=%d does not split over %d ranks: use a multiple of %d", c->batch,
                           tr->dp_size, tr->dp_size);
    if (c->batch_warmup > 0 && c->batch_start % tr->dp_size)
        return status_fail(st, AP_EINVAL, "batch_start=%d does not split over %d ranks: use a multiple of %d",
                           c->batch_start, tr->dp_size, tr->dp_size);
    tr->local_batch = c->batch / tr->dp_size;
    if (train_check_memory(c, tr->local_batch, st)) return -1;
    if (model_create(&tr->model, c, init_rng, st)) return -1;
    if (fresh && c->init_from[0] && init_from_run(tr, st)) return -1; /* before the optimiser copies any weights */
    if (optim_create(&tr->opt, c, tr->model.ps, st)) return -1;
    if (model_prepare(&tr->model, tr->local_batch, c->context, st)) return -1;
    if (c->teacher[0] && load_teacher(tr, st)) return -1;
    size_t N = (size_t)c->batch * (size_t)c->context;
    tr->inputs = malloc(N * sizeof(int));
    tr->targets = malloc(N * sizeof(int));
    if (!tr->inputs || !tr->targets) return status_fail(st, AP_ENOMEM, "out of memory for batch buffers");
    curriculum_mean(c, &tr->step_tokens, &tr->step_flops);
    tr->step_flops.optimizer = optim_step_flops(c, tr->model.ps);
    return 0;
}

static int write_config_file(const Trainer *tr, Status *st) {
    char path[CONFIG_PATH_MAX + 32];
    join(path, sizeof path, tr->cfg.out, RUNDIR_CONFIG);
    char *text = config_to_recipe(&tr->cfg);
    if (!text) return status_fail(st, AP_ENOMEM, "out of memory");
    int rc = file_write_atomic(path, text, strlen(text), st);
    free(text);
    return rc;
}

/* A run directory a recipe names (teacher, init_from), recorded as an absolute path: a resume from
 * elsewhere finds it. */
static int absolute_run_path(char path[CONFIG_PATH_MAX], const char *key, Status *st) {
    char abs[PATH_MAX];
    if (!realpath(path, abs) || strlen(abs) >= CONFIG_PATH_MAX)
        return status_fail(st, AP_EINVAL, "%s '%s' not found: train that run there first", key, path);
    memcpy(path, abs, strlen(abs) + 1); /* it fits: checked above */
    return 0;
}

static int setup_fresh(Trainer *tr, const Config *cfg, Status *st) {
    int dp = tr->dp_size;
    memset(tr, 0, sizeof *tr);
    if (init_parallel(tr, dp, st)) return -1;
    tr->ts.lr_scale = 1.0;
    tr->cfg = *cfg;
    Config *c = &tr->cfg;
    if (!c->out[0]) return status_fail(st, AP_EINVAL, "no run directory: set out=DIR");
    if (config_resolve(c, st)) return -1;
    if (c->teacher[0] && absolute_run_path(c->teacher, "teacher", st)) return -1;
    if (c->init_from[0] && absolute_run_path(c->init_from, "init_from", st)) return -1;
    if (c->data_epochs > 0) { /* the unique tokens that many epochs of this run's tokens take */
        double tokens;
        curriculum_mean(c, &tokens, NULL);
        c->max_unique_tokens = (uint64_t)ceil((double)c->steps * tokens / c->data_epochs);
        if (c->max_unique_tokens < (uint64_t)c->context + 1) c->max_unique_tokens = (uint64_t)c->context + 1;
    }
    char ck[CONFIG_PATH_MAX + 32];
    join(ck, sizeof ck, c->out, RUNDIR_CHECKPOINT);
    if (file_exists(ck))
        return status_fail(st, AP_EINVAL,
                           "'%s' already holds a run; continue it with `algoprog train --resume %s` or choose "
                           "another out=",
                           c->out, c->out);
    Rng init_rng;
    rng_seed(&init_rng, c->seed);
    if (setup_common(tr, &init_rng, 1, st)) return -1;
    if (tr->dp_rank != 0) return 0; /* rank 0 writes the run directory */
    if (dir_create(c->out, st) || rundir_lock(c->out, &tr->lock_fd, st)) return -1;
    tr->locked = 1;
    if (file_exists(ck)) /* another trainer finished a run here between the check above and the lock */
        return status_fail(st, AP_EINVAL, "'%s' already holds a run; continue it with `algoprog train --resume %s`",
                           c->out, c->out);
    if (tr->data.tok.kind != TOK_BYTES) {
        char tp[CONFIG_PATH_MAX + 32];
        join(tp, sizeof tp, c->out, RUNDIR_TOKENIZER);
        if (tokenizer_save(&tr->data.tok, tp, st)) return -1;
    }
    char mp[CONFIG_PATH_MAX + 32];
    join(mp, sizeof mp, c->out, RUNDIR_METRICS);
    if (file_write_atomic(mp, "", 0, st)) return -1;
    return write_config_file(tr, st);
}

/* Keys that may change when resuming without making the continuation ill-defined. */
static int resume_key_allowed(const char *key) {
    static const char *ok[] = {"steps", "eval_every",   "checkpoint_every", "log_every", "threads",
                               "gemm",  "on_nonfinite", "memory_limit",     NULL};
    const char *k = strchr(key, '.') ? strchr(key, '.') + 1 : key;
    for (int i = 0; ok[i]; i++)
        if (!strcmp(k, ok[i])) return 1;
    return 0;
}

static int setup_resume(Trainer *tr, const char *dir, int argc, char **argv, Status *st) {
    int dp = tr->dp_size;
    memset(tr, 0, sizeof *tr);
    if (init_parallel(tr, dp, st)) return -1;
    char ck[CONFIG_PATH_MAX + 32];
    join(ck, sizeof ck, dir, RUNDIR_CHECKPOINT);
    if (!file_exists(ck)) return status_fail(st, AP_EINVAL, "no checkpoint in '%s' to resume from", dir);
    if (tr->dp_rank == 0) {
        if (rundir_lock(dir, &tr->lock_fd, st)) return -1;
        tr->locked = 1;
    }
    TensorFile tf;
    OptimMeta om;
    if (checkpoint_open(ck, &tf, &tr->cfg, &tr->ts, &om, st)) return -1;
    for (int i = 0; i < argc; i++) {
        char key[128];
        const char *eq = strchr(argv[i], '=');
        size_t kl = eq ? (size_t)(eq - argv[i]) : 0;
        if (!eq || kl >= sizeof key) {
            tensorfile_free(&tf);
            return status_fail(st, AP_EINVAL, "argument '%s' is not of the form key=value", argv[i]);
        }
        memcpy(key, argv[i], kl);
        key[kl] = '\0';
        if (!resume_key_allowed(key)) {
            tensorfile_free(&tf);
            return status_fail(st, AP_EINVAL,
                               "'%s' cannot change when resuming (only steps, eval_every, checkpoint_every, "
                               "log_every, threads, gemm, on_nonfinite, memory_limit)",
                               key);
        }
        if (config_set(&tr->cfg, key, eq + 1, st)) {
            tensorfile_free(&tf);
            return -1;
        }
    }
    /* the run directory may have been moved or renamed since */
    snprintf(tr->cfg.out, sizeof tr->cfg.out, "%s", dir);
    Config *c = &tr->cfg;
    int rc = config_resolve(c, st);
    /* the run's own thread count (unless overridden): results are bit-identical per thread count */
    if (!rc) parallel_init(c->threads);
    Rng init_rng;
    rng_seed(&init_rng, c->seed);
    if (!rc) rc = setup_common(tr, &init_rng, 0, st);
    if (!rc) rc = checkpoint_restore_params(&tf, tr->model.ps, st);
    if (!rc) rc = checkpoint_restore_optim(&tf, &tr->opt, &om, st);
    if (!rc && model_is_stateful(c)) rc = model_restore_state(&tr->model, &tf, st);
    tensorfile_free(&tf);
    if (rc) return status_wrap(st, "resuming '%s'", dir);
    if (tr->ts.step > c->steps)
        return status_fail(st, AP_EINVAL, "checkpoint is at step %" PRId64 ", beyond steps=%d", tr->ts.step, c->steps);
    if (tr->dp_rank != 0) return 0;
    if (rundir_truncate_metrics(dir, tr->ts.step, st)) return -1;
    return write_config_file(tr, st);
}

int trainer_setup(Trainer *tr, const Config *cfg, Status *st) {
    double t0 = time_now();
    int rc = setup_fresh(tr, cfg, st);
    tr->times.setup = time_now() - t0;
    return rc;
}

int trainer_resume(Trainer *tr, const char *dir, int argc, char **argv, Status *st) {
    double t0 = time_now();
    int rc = setup_resume(tr, dir, argc, argv, st);
    tr->times.setup = time_now() - t0;
    return rc;
}

void trainer_evaluate(Trainer *tr, EvalPart part, long tokens, double *loss, double *bpb, double *bpb_se) {
    const Config *c = &tr->cfg;
    int B = c->batch, T = c->context, Bl = tr->local_batch;
    int nb = dataset_eval_batches(&tr->data, part, B, tokens);
    /* nats, predicted tokens, and per window: sum n^2, n b, b^2 (for the standard error) */
    double sums[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
    uint64_t bytes = 0, *row_bytes = malloc((size_t)B * sizeof *row_bytes);
    size_t first = (size_t)tr->dp_rank * Bl * T;
    optim_eval_weights_in(&tr->opt); /* ema_decay, schedulefree: held-out losses are the average's */
    model_set_window(&tr->model, c->window); /* and the model's own window and shape (a curriculum trains less) */
    Status pst;
    if (model_prepare(&tr->model, Bl, T, &pst)) abort(); /* the setup's shape: its memory is there */
    for (int k = 0; k < nb; k++) {
        dataset_eval_batch(&tr->data, part, k, B, tr->inputs, tr->targets, &bytes, row_bytes);
        model_forward(&tr->model, tr->inputs + first, tr->targets + first, Bl, T, 0);
        const float *losses = model_losses(&tr->model);
        const int *targets = tr->targets + first;
        for (int b = 0; b < Bl; b++) {
            double row = 0.0;
            for (size_t t = (size_t)b * T; t < (size_t)(b + 1) * T; t++)
                if (targets[t] >= 0) {
                    row += losses[t];
                    sums[1] += 1.0;
                }
            double rb = row_bytes ? (double)row_bytes[(size_t)tr->dp_rank * Bl + b] : 0.0;
            sums[0] += row, sums[2] += row * row, sums[3] += row * rb, sums[4] += rb * rb;
        }
    }
    free(row_bytes);
    optim_eval_weights_out(&tr->opt);
    if (tr->dp_size > 1) dist_allreduce_sum_f64(sums, 5);
    double nats = sums[0], count = sums[1];
    *loss = count > 0 ? nats / count : NAN;
    /* bits per byte: the tokenizer-independent axis every arm is compared on */
    *bpb = bytes ? nats / (log(2.0) * (double)bytes) : NAN;
    if (bpb_se) { /* of a ratio of sums over windows (delta method): windows as the sampling unit */
        double R = bytes ? nats / (double)bytes : NAN, ss = sums[2] - 2 * R * sums[3] + R * R * sums[4];
        *bpb_se = bytes && ss > 0 ? sqrt(ss) / (log(2.0) * (double)bytes) : NAN;
    }
}

/* An evaluation of the validation half during training (its time counted apart from the steps'). */
static void evaluate_during(Trainer *tr, double *loss, double *bpb) {
    double t0 = time_now();
    trainer_evaluate(tr, EVAL_VAL, tr->cfg.eval_tokens, loss, bpb, NULL);
    tr->times.eval += time_now() - t0;
}

static void fmt_duration(char *buf, size_t size, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static int append_metrics(Trainer *tr, double val_loss, double val_bpb, double tok_s, Status *st) {
    TrainState *ts = &tr->ts;
    MetricRow m = {ts->step, ts->tokens, ts->flops, dataset_epochs(&tr->data, ts->tokens),
                   ts->loss_count > 0 ? ts->loss_sum / (double)ts->loss_count : NAN, val_loss, val_bpb,
                   ts->step > 0 ? tr->last_lr : schedule_lr(&tr->cfg, 0), ts->step > 0 ? tr->last_grad_norm : NAN,
                   tok_s, ts->elapsed_s, NAN, NAN};
    if (ts->step > 0) m.moe_aux_loss = tr->last_moe_aux, m.moe_load_max = tr->last_moe_load_max;
    ts->loss_sum = 0.0;
    ts->loss_count = 0;
    return tr->dp_rank != 0 ? 0 : rundir_append_metric(tr->cfg.out, &m, st);
}

static int save_checkpoint(Trainer *tr, Status *st) {
    if (tr->dp_rank != 0) return 0;
    char path[CONFIG_PATH_MAX + 32];
    join(path, sizeof path, tr->cfg.out, RUNDIR_CHECKPOINT);
    double t0 = time_now();
    TensorList state = {0};
    model_state_tensors(&tr->model, &state);
    int rc = checkpoint_save(path, &tr->cfg, tr->model.ps, &tr->opt, &tr->ts, &state, st);
    tensorlist_free(&state);
    tr->times.checkpoint += time_now() - t0;
    return rc;
}

/* eval_contexts: the test half at each multiple of the context, under each RoPE scaling worth
 * comparing (C8), with the weights evaluations use. */
static int evaluate_contexts(Trainer *tr, RunFinal *f, Status *st) {
    const Config *c = &tr->cfg;
    int multiples[CONFIG_MAX_EVAL_CONTEXTS], scalings[4];
    int n_mult = config_eval_contexts(c, multiples, CONFIG_MAX_EVAL_CONTEXTS, st), n_scale = ctxeval_scalings(c, scalings);
    int rc = n_mult < 0 ? -1 : 0;
    optim_eval_weights_in(&tr->opt);
    for (int i = 0; !rc && i < n_mult; i++)
        for (int k = 0; !rc && k < n_scale; k++) {
            ContextEval ce;
            rc = ctxeval_run(c, tr->model.ps, multiples[i] * c->context, scalings[k], 0, EVAL_TEST,
                             c->final_eval_tokens, &ce, st);
            if (rc) break;
            RunContextEval *r = &f->ctx[f->n_ctx++];
            *r = (RunContextEval){multiples[i], scalings[k], ce.factor, ce.bpb, ce.bpb_beyond};
            if (!tr->quiet)
                printf("context %dx (%d tokens, rope_scaling %s): test %.4f bits/byte, %.4f past the training context\n",
                       multiples[i], ce.context, config_enum_name("rope_scaling", scalings[k]), ce.bpb, ce.bpb_beyond);
        }
    optim_eval_weights_out(&tr->opt);
    return rc ? status_wrap(st, "eval_contexts") : 0;
}

/* The run's result: the held-out halves final_eval names, final_eval_tokens tokens each. */
static int write_final(Trainer *tr, Status *st) {
    const Config *c = &tr->cfg;
    RunFinal f = {0};
    double t0 = time_now();
    f.val_loss = f.val_bpb = f.test_loss = f.test_bpb = f.test_bpb_se = NAN; /* a half not evaluated */
    if (c->final_eval != FINAL_EVAL_TEST)
        trainer_evaluate(tr, EVAL_VAL, c->final_eval_tokens, &f.val_loss, &f.val_bpb, NULL);
    if (c->final_eval != FINAL_EVAL_VALIDATION)
        trainer_evaluate(tr, EVAL_TEST, c->final_eval_tokens, &f.test_loss, &f.test_bpb, &f.test_bpb_se);
    if (tr->dp_rank != 0) return 0;
    if (evaluate_contexts(tr, &f, st)) return -1;
    double N = (double)model_total_params(&tr->model);
    f.step = tr->ts.step;
    f.unigram_bpb = tr->data.val_unigram_bpb;
    f.params = N;
    f.params_nonembedding = model_nonembedding_params(&tr->model);
    f.tokens = tr->ts.tokens;
    f.flops = tr->ts.flops;
    f.flops_6nd = 6.0 * N * tr->ts.tokens;
    f.teacher_flops = teacher_flops(tr, tr->ts.step);
    f.seed = c->seed;
    f.elapsed_s = tr->ts.elapsed_s;
    f.tokens_per_s = tr->ts.elapsed_s > 0 ? tr->ts.tokens / tr->ts.elapsed_s : 0.0;
    f.time = tr->times;
    f.time.final = time_now() - t0; /* the evaluations; writing the file is not counted */
    if (!tr->quiet) {
        printf("final:");
        if (c->final_eval != FINAL_EVAL_TEST)
            printf(" validation %.4f%s", f.val_bpb, c->final_eval == FINAL_EVAL_BOTH ? "," : "");
        if (c->final_eval != FINAL_EVAL_VALIDATION) printf(" test %.4f", f.test_bpb);
        printf(" bits/byte (unigram %.4f)\n", f.unigram_bpb);
    }
    return rundir_write_final(c->out, &f, st);
}

static void print_header(const Trainer *tr) {
    const Config *c = &tr->cfg;
    const Model *m = &tr->model;
    double N = (double)model_total_params(m), Nne = (double)model_nonembedding_params(m);
    double step_flops = tr->step_flops.forward + tr->step_flops.backward + tr->step_flops.optimizer;
    double tokens = tr->step_tokens;
    double mem = 4.0 * (2.0 * (double)m->ps->numel + (tr->opt.v ? 2.0 : 1.0) * (double)m->ps->numel +
                        (double)model_activation_numel(m));
    if (c->family == FAMILY_LSTM)
        printf("model: lstm, %d layers, d_model %d, hidden %d%s, context %d (state %s), vocab %d\n", c->n_layers,
               c->d_model, c->lstm_hidden, c->lstm_proj ? " projected" : "", c->context,
               config_enum_name("lstm_state", c->lstm_state), c->vocab);
    else
        printf("model: %s, %d layers, d_model %d, %d heads (%d kv), d_ff %d, context %d, vocab %d\n",
               config_enum_name("family", c->family), c->n_layers, c->d_model, c->n_heads, c->n_kv_heads, c->d_ff,
               c->context, c->vocab);
    printf("params: %.0f total, %.0f without embeddings | FLOPs/step %.4g exact%s, %.4g by 6ND | memory %.1f MB\n",
           N, Nne, step_flops, tr->step_flops.optimizer > 0 ? " (Muon's share included)" : "", 6.0 * N * tokens,
           mem / 1e6);
    const Dataset *d = &tr->data;
    printf("data: %s, tokenizer %s | train %zu tokens (%.3g bytes/token)%s, held out %zu tokens | held-out unigram "
           "%.3f bits/byte | %d threads\n",
           d->desc, d->tok.name, d->n[0], d->n[0] ? (double)d->bytes[0] / (double)d->n[0] : 0.0,
           d->unique < d->n[0] ? " (limited by max_unique_tokens)" : "", d->n[1], d->val_unigram_bpb,
           parallel_threads());
    double epochs = dataset_epochs(d, (double)c->steps * tr->step_tokens);
    if (epochs > 1.0) printf("data: %d steps will see the training tokens %.2f times\n", c->steps, epochs);
    fflush(stdout);
}

/* Data parallel: each rank's gradient is of its rows' mean loss; the mean over ranks is the
 * gradient of the global batch's mean loss (equal row counts), up to summation order. */
static void average_gradients(Trainer *tr) {
    ParamSet *ps = tr->model.ps;
    dist_allreduce_sum_f32(ps->grad, ps->numel);
    float inv = 1.0f / (float)tr->dp_size;
#pragma omp parallel for schedule(static) if (ps->numel >= 16384)
    for (size_t i = 0; i < ps->numel; i++) ps->grad[i] *= inv;
}

/* A NaN/Inf at `step`. Policy stop: a clear error. Policy rollback: restore the last checkpoint
 * (parameters, optimiser, carried state, data position), halve the learning rate, record the event
 * in metrics.jsonl and checkpoint at once, so a resume after a crash continues identically. */
#define MAX_ROLLBACKS 3
static int handle_nonfinite(Trainer *tr, const char *what, double value, int step, Status *st) {
    Config *c = &tr->cfg;
    if (c->on_nonfinite != NONFINITE_ROLLBACK)
        return status_fail(st, AP_ENUMERIC,
                           "%s is %f at step %d (lower lr, enable grad_clip, or set on_nonfinite=rollback)", what,
                           value, step);
    if (tr->ts.rollbacks >= MAX_ROLLBACKS)
        return status_fail(st, AP_ENUMERIC, "%s is %f at step %d after %d rollbacks (lr scale %g): giving up", what,
                           value, step, MAX_ROLLBACKS, tr->ts.lr_scale);
    char ck[CONFIG_PATH_MAX + 32];
    join(ck, sizeof ck, c->out, RUNDIR_CHECKPOINT);
    TensorFile tf;
    Config saved;
    TrainState ts;
    OptimMeta om;
    if (checkpoint_open(ck, &tf, &saved, &ts, &om, st)) return status_wrap(st, "rolling back after %s at step %d", what, step);
    int rc = checkpoint_restore_params(&tf, tr->model.ps, st);
    if (!rc) rc = checkpoint_restore_optim(&tf, &tr->opt, &om, st);
    if (!rc && model_is_stateful(c)) rc = model_restore_state(&tr->model, &tf, st);
    tensorfile_free(&tf);
    if (rc) return status_wrap(st, "rolling back after %s at step %d", what, step);
    double elapsed = tr->ts.elapsed_s;
    ts.rollbacks = tr->ts.rollbacks + 1;
    ts.lr_scale = tr->ts.lr_scale * 0.5;
    tr->ts = ts;
    tr->ts.elapsed_s = elapsed;
    if (tr->dp_rank == 0)
        fprintf(stderr,
                "algoprog: %s is %f at step %d: rolled back to step %" PRId64 ", learning rate x%g (rollback %" PRId64
                " of %d)\n",
                what, value, step, ts.step, tr->ts.lr_scale, tr->ts.rollbacks, MAX_ROLLBACKS);
    if (tr->dp_rank != 0) return 0;
    if (rundir_truncate_metrics(c->out, ts.step, st)) return -1;
    if (rundir_append_rollback(c->out, ts.step, step, what, tr->ts.lr_scale, tr->ts.rollbacks, st)) return -1;
    return save_checkpoint(tr, st);
}

int trainer_run(Trainer *tr, Status *st) {
    Config *c = &tr->cfg;
    TrainState *ts = &tr->ts;
    double step_flops = tr->step_flops.forward + tr->step_flops.backward + tr->step_flops.optimizer;
    if (!tr->quiet) print_header(tr);
    int rc = 0;
    double val_loss = NAN, val_bpb = NAN;
    double t_mark = time_now(), tok_mark = ts->tokens, tok_s = 0.0;
    if (ts->step == 0) {
        evaluate_during(tr, &val_loss, &val_bpb);
        if (!tr->quiet) printf("eval step 0: val loss %.4f, %.4f bits/byte\n", val_loss, val_bpb);
        rc = append_metrics(tr, val_loss, val_bpb, 0.0, st);
        if (!rc && c->on_nonfinite == NONFINITE_ROLLBACK) rc = save_checkpoint(tr, st); /* something to return to */
    }
    while (!rc && ts->step < c->steps) {
        double t0 = time_now();
        int step = (int)ts->step;
        int stateful = model_is_stateful(c);
        /* this step's shape (curriculum.h): rows, their length, the attention window, and its FLOPs */
        StepShape sh = curriculum_step(c, step);
        int B = sh.batch, T = sh.context, Bl = B / tr->dp_size;
        if (dataset_train_batch(&tr->data, &ts->cursor, B, tr->inputs, tr->targets) && stateful)
            model_reset_state(&tr->model); /* the streams start over: so does the carried state */
        if (T < c->context) /* sequence-length warmup: each row is the start of its window */
            for (int r = 1; r < B; r++) {
                memmove(tr->inputs + (size_t)r * T, tr->inputs + (size_t)r * c->context, (size_t)T * sizeof(int));
                memmove(tr->targets + (size_t)r * T, tr->targets + (size_t)r * c->context, (size_t)T * sizeof(int));
            }
        size_t first = (size_t)tr->dp_rank * Bl * T;
        if (curriculum_active(c)) {
            StepFlops f = curriculum_step_flops(c, sh);
            step_flops = f.forward + f.backward + tr->step_flops.optimizer;
        }
        model_set_window(&tr->model, sh.window);
        if ((rc = model_prepare(&tr->model, Bl, T, st))) break;
        double t_fwd = time_now(), sections0[SECTION_COUNT];
        for (int k = 0; k < SECTION_COUNT; k++) sections0[k] = section_clock_read((Section)k);
        float loss = model_forward(&tr->model, tr->inputs + first, tr->targets + first, Bl, T, stateful);
        double t_bwd = time_now();
        if (c->fault_nan_step == step + 1 && ts->rollbacks == 0) loss = NAN; /* testing aid (docs/RECIPES.md) */
        if (tr->dp_size > 1) { /* the global batch's mean loss: every rank takes the same branch below */
            double l = loss;
            dist_allreduce_sum_f64(&l, 1);
            loss = (float)(l / tr->dp_size);
        }
        double gnorm = 0.0;
        if (isfinite(loss)) {
            if (tr->teacher) { /* the teacher's view of the same rows: soft targets for this backward */
                if ((rc = model_prepare(tr->teacher, Bl, T, st))) break;
                model_forward(tr->teacher, tr->inputs + first, tr->targets + first, Bl, T, 0);
                distill_targets(tr->soft, model_logits(tr->teacher), (size_t)Bl * T, (size_t)c->vocab,
                                (float)c->distill_temperature);
                transformer_set_distill(tr->model.tf, tr->soft, (float)c->distill_weight,
                                        (float)c->distill_temperature);
            }
            paramset_zero_grad(tr->model.ps);
            model_backward(&tr->model);
            if (tr->dp_size > 1) average_gradients(tr);
            gnorm = optim_clip(tr->model.ps, c->grad_clip);
        }
        double t_opt = time_now();
        if (!isfinite(loss) || !isfinite(gnorm)) {
            const char *what = isfinite(loss) ? "gradient norm" : "training loss";
            double value = isfinite(loss) ? gnorm : loss;
            if ((rc = handle_nonfinite(tr, what, value, step + 1, st))) break;
            t_mark = time_now();
            tok_mark = ts->tokens;
            continue;
        }
        double lr = schedule_lr(c, step) * ts->lr_scale;
        optim_step(&tr->opt, lr);
        size_t n_loads;
        float *loads = model_expert_loads(&tr->model, &n_loads);
        if (loads && tr->dp_size > 1) dist_allreduce_sum_f32(loads, n_loads);
        model_moe_stats(&tr->model, &tr->last_moe_aux, &tr->last_moe_load_max);
        model_end_step(&tr->model);
        optim_ema_update(&tr->opt);
        double now = time_now();
        tr->times.data += t_fwd - t0, tr->times.forward += t_bwd - t_fwd, tr->times.backward += t_opt - t_bwd;
        tr->times.optimizer += now - t_opt;
        tr->times.gemm += section_clock_read(SECTION_GEMM) - sections0[SECTION_GEMM];
        tr->times.attention += section_clock_read(SECTION_ATTENTION) - sections0[SECTION_ATTENTION];
        tr->times.attention_gemm += section_clock_read(SECTION_ATTENTION_GEMM) - sections0[SECTION_ATTENTION_GEMM];
        tr->last_lr = lr;
        tr->last_grad_norm = gnorm;
        ts->step++;
        ts->tokens += (double)B * T;
        ts->flops += step_flops;
        ts->loss_sum += loss;
        ts->loss_count++;
        ts->elapsed_s += now - t0;
        if (tr->on_step) tr->on_step(tr->on_step_ctx, tr, loss);
        int last = ts->step == c->steps;
        if (!tr->quiet && c->log_every > 0 && (ts->step % c->log_every == 0 || last)) {
            tok_s = (ts->tokens - tok_mark) / (now - t_mark);
            char left[32], spent[32];
            fmt_duration(spent, sizeof spent, ts->elapsed_s);
            fmt_duration(left, sizeof left, (c->steps - ts->step) * tr->step_tokens / tok_s);
            printf("step %6" PRId64 "/%d | loss %.4f | lr %.2e | grad norm %6.3f | %7.0f tok/s | %5.1f GFLOP/s | "
                   "%s elapsed, %s left\n",
                   ts->step, c->steps, loss, lr, gnorm, tok_s, tok_s * step_flops / ((double)B * T) / 1e9, spent, left);
            fflush(stdout);
            t_mark = time_now();
            tok_mark = ts->tokens;
        }
        if (ts->step % c->eval_every == 0 || last) {
            evaluate_during(tr, &val_loss, &val_bpb);
            if (!isfinite(val_loss) && c->on_nonfinite == NONFINITE_ROLLBACK) { /* diverged between steps */
                if ((rc = handle_nonfinite(tr, "held-out loss", val_loss, (int)ts->step, st))) break;
                continue;
            }
            if (!tr->quiet)
                printf("eval step %" PRId64 ": val loss %.4f, %.4f bits/byte\n", ts->step, val_loss, val_bpb);
            if (tok_s == 0.0) tok_s = (ts->tokens - tok_mark) / (time_now() - t_mark);
            if ((rc = append_metrics(tr, val_loss, val_bpb, tok_s, st))) break;
        }
        if ((c->checkpoint_every > 0 && ts->step % c->checkpoint_every == 0) || last || stop_requested(tr)) {
            if ((rc = save_checkpoint(tr, st))) break;
        }
        /* throughput counts training only: evaluations and checkpoints restart the clock */
        if (time_now() - now > 0.01) {
            t_mark = time_now();
            tok_mark = ts->tokens;
        }
        if (stop_requested(tr) && !last) {
            rc = status_fail(st, AP_EINTERRUPTED,
                             "interrupted at step %" PRId64 "; checkpoint saved, continue with "
                             "`algoprog train --resume %s`",
                             ts->step, c->out);
            break;
        }
    }
    if (!rc && ts->step == c->steps) {
        if (isnan(val_loss)) evaluate_during(tr, &val_loss, &val_bpb);
        if (c->steps == 0) rc = save_checkpoint(tr, st);
        if (!rc) rc = write_final(tr, st);
        if (!rc && !tr->quiet) {
            char spent[32];
            fmt_duration(spent, sizeof spent, ts->elapsed_s);
            printf("done: %" PRId64 " steps, %.4g tokens, %.4g FLOPs in %s; val %.4f bits/byte -> %s\n", ts->step,
                   ts->tokens, ts->flops, spent, val_bpb, c->out);
        }
    }
    return rc;
}

void trainer_free(Trainer *tr) {
    if (tr->locked) rundir_unlock(tr->lock_fd);
    tr->locked = 0;
    model_free(&tr->model);
    optim_free(&tr->opt);
    dataset_free(&tr->data);
    free(tr->inputs);
    free(tr->targets);
    tr->inputs = tr->targets = NULL;
    if (tr->teacher) model_free(tr->teacher);
    free(tr->teacher);
    free(tr->soft);
    tr->teacher = NULL, tr->soft = NULL;
}
