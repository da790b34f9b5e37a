/* checkpoint.c - save and restore runs (see checkpoint.h). */
#include "train/checkpoint.h"

#include "core/ini.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_tensors(TensorList *l, const char *prefix, const ParamSet *ps, const float *base) {
    for (int i = 0; i < ps->n; i++) {
        const ParamTensor *t = &ps->t[i];
        char name[TF_NAME_MAX];
        uint64_t shape[4];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        tensorlist_add(l, name, TF_F32, base + t->offset, t->ndim, shape);
    }
}

int checkpoint_save(const char *path, const Config *cfg, const ParamSet *ps, const Optimizer *opt,
                    const TrainState *ts, const TensorList *extra, Status *st) {
    char *conf = config_to_text(cfg, 0);
    if (!conf) return status_fail(st, AP_ENOMEM, "out of memory saving a checkpoint");
    size_t cap = strlen(conf) + 1024;
    char *text = malloc(cap);
    if (!text) {
        free(conf);
        return status_fail(st, AP_ENOMEM, "out of memory saving a checkpoint");
    }
    /* %.17g round-trips doubles exactly; RNG words in hex. */
    snprintf(text, cap,
             "[meta]\nkind = checkpoint\nstep = %" PRId64 "\ntokens = %.17g\nflops = %.17g\nloss_sum = %.17g\n"
             "loss_count = %" PRId64 "\nelapsed_s = %.17g\noptim_t = %" PRId64 "\nsf_lr_max = %.17g\n"
             "sf_weight_sum = %.17g\n"
             "data_epoch = %" PRIu64 "\ndata_pos = %" PRIu64 "\nlr_scale = %.17g\nrollbacks = %" PRId64
             "\n[config]\n%s",
             ts->step, ts->tokens, ts->flops, ts->loss_sum, ts->loss_count, ts->elapsed_s, opt ? opt->t : 0,
             opt ? opt->sf_lr_max : 0.0, opt ? opt->sf_weight_sum : 0.0,
             ts->cursor.epoch, ts->cursor.pos, ts->lr_scale, ts->rollbacks, conf);
    free(conf);
    TensorList l = {0};
    add_tensors(&l, "p.", ps, ps->data);
    if (opt) {
        add_tensors(&l, "m.", ps, opt->m);
        if (opt->v) add_tensors(&l, "v.", ps, opt->v);
        if (opt->ema) add_tensors(&l, "e.", ps, opt->ema);
    }
    for (int i = 0; extra && i < extra->n; i++)
        tensorlist_add(&l, extra->t[i].name, extra->t[i].dtype, extra->t[i].data, extra->t[i].ndim, extra->t[i].shape);
    int rc = tensorfile_write(path, TF_KIND_CHECKPOINT, text, &l, st);
    tensorlist_free(&l);
    free(text);
    return rc;
}

static int parse_i64(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_f64(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

int checkpoint_open(const char *path, TensorFile *tf, Config *cfg, TrainState *ts, OptimMeta *om, Status *st) {
    if (tensorfile_read(tf, path, st)) return -1;
    if (tf->kind != TF_KIND_CHECKPOINT) {
        tensorfile_free(tf);
        return status_fail(st, AP_ECORRUPT, "'%s' is a tensor file but not a checkpoint", path);
    }
    IniFile ini;
    if (ini_parse(&ini, tf->text, strlen(tf->text), path, st)) {
        tensorfile_free(tf);
        return -1;
    }
    memset(ts, 0, sizeof *ts);
    ts->lr_scale = 1.0;
    memset(om, 0, sizeof *om);
    om->sf_lr_max = -1.0;
    config_defaults(cfg);
    int rc = 0, seen = 0;
    for (int i = 0; i < ini.n && !rc; i++) {
        IniEntry *e = &ini.entries[i];
        if (!strcmp(e->section, "config")) {
            if (config_set(cfg, e->key, e->value, st)) rc = status_wrap(st, "checkpoint '%s'", path);
            continue;
        }
        if (strcmp(e->section, "meta")) continue;
        int bad = 0;
        seen++;
        if (!strcmp(e->key, "step")) bad = parse_i64(e->value, &ts->step);
        else if (!strcmp(e->key, "tokens")) bad = parse_f64(e->value, &ts->tokens);
        else if (!strcmp(e->key, "flops")) bad = parse_f64(e->value, &ts->flops);
        else if (!strcmp(e->key, "loss_sum")) bad = parse_f64(e->value, &ts->loss_sum);
        else if (!strcmp(e->key, "loss_count")) bad = parse_i64(e->value, &ts->loss_count);
        else if (!strcmp(e->key, "elapsed_s")) bad = parse_f64(e->value, &ts->elapsed_s);
        else if (!strcmp(e->key, "optim_t")) bad = parse_i64(e->value, &om->t);
        else if (!strcmp(e->key, "sf_lr_max")) { /* optional: not in checkpoints before schedulefree existed */
            bad = parse_f64(e->value, &om->sf_lr_max);
            seen--;
        } else if (!strcmp(e->key, "sf_weight_sum")) {
            bad = parse_f64(e->value, &om->sf_weight_sum) || !(om->sf_weight_sum >= 0);
            seen--;
        }
        else if (!strcmp(e->key, "data_epoch")) bad = sscanf(e->value, "%" SCNu64, &ts->cursor.epoch) != 1;
        else if (!strcmp(e->key, "data_pos")) bad = sscanf(e->value, "%" SCNu64, &ts->cursor.pos) != 1;
        else if (!strcmp(e->key, "lr_scale")) { /* optional: not in checkpoints before rollbacks existed */
            bad = parse_f64(e->value, &ts->lr_scale) || !(ts->lr_scale > 0 && ts->lr_scale <= 1);
            seen--;
        } else if (!strcmp(e->key, "rollbacks")) {
            bad = parse_i64(e->value, &ts->rollbacks) || ts->rollbacks < 0;
            seen--;
        } else seen--;
        if (bad) rc = status_fail(st, AP_ECORRUPT, "checkpoint '%s': bad meta value %s = '%s'", path, e->key, e->value);
    }
    ini_free(&ini);
    if (!rc && seen < 9) rc = status_fail(st, AP_ECORRUPT, "checkpoint '%s': incomplete [meta] section", path);
    if (!rc && ts->step < 0) rc = status_fail(st, AP_ECORRUPT, "checkpoint '%s': negative step", path);
    if (rc) tensorfile_free(tf);
    return rc;
}

static int restore(const TensorFile *tf, const char *prefix, const ParamSet *ps, float *base, Status *st) {
    for (int i = 0; i < ps->n; i++) {
        const ParamTensor *t = &ps->t[i];
        char name[TF_NAME_MAX];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        const TensorEntry *e = tensorfile_find(tf, name);
        if (!e) return status_fail(st, AP_ECORRUPT, "checkpoint has no tensor '%s'", name);
        int same = e->dtype == TF_F32 && e->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
        if (!same) return status_fail(st, AP_ECORRUPT, "checkpoint tensor '%s' has another shape than the model's", name);
        memcpy(base + t->offset, e->data, t->numel * sizeof(float));
    }
    return 0;
}

int checkpoint_restore_params(const TensorFile *tf, ParamSet *ps, Status *st) {
    return restore(tf, "p.", ps, ps->data, st);
}

int checkpoint_restore_optim(const TensorFile *tf, Optimizer *opt, const OptimMeta *om, Status *st) {
    if (restore(tf, "m.", opt->ps, opt->m, st)) return -1;
    if (opt->v && restore(tf, "v.", opt->ps, opt->v, st)) return -1;
    if (opt->ema && restore(tf, "e.", opt->ps, opt->ema, st)) return -1;
    opt->t = om->t;
    opt->sf_lr_max = om->sf_lr_max, opt->sf_weight_sum = om->sf_weight_sum;
    return 0;
}

int checkpoint_load_model(Model *m, Config *cfg, const char *path, Status *st) {
    return checkpoint_load_model_as(m, cfg, path, 0, NULL, st);
}

int checkpoint_load_model_as(Model *m, Config *cfg, const char *path, int argc, char **argv, Status *st) {
    TensorFile tf;
    TrainState ts;
    OptimMeta om;
    if (checkpoint_open(path, &tf, cfg, &ts, &om, st)) return -1;
    Rng rng;
    rng_seed(&rng, cfg->seed);
    int rc = config_apply_args(cfg, argc, argv, st);
    if (!rc) rc = config_resolve(cfg, st);
    if (!rc && cfg->vocab == 0) rc = status_fail(st, AP_ECORRUPT, "checkpoint '%s' has no vocab", path);
    /* sampling and reports run in fp32 (the weights are fp32), so a bf16 run's checkpoint loads on
     * any machine */
    cfg->precision = PRECISION_FP32;
    if (!rc) rc = model_create(m, cfg, &rng, st);
    if (!rc) rc = checkpoint_restore_params(&tf, m->ps, st);
    tensorfile_free(&tf);
    return rc;
}
