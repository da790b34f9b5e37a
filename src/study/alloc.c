/* alloc.c - size ladder and allocation rules (see alloc.h). */
#include "study/alloc.h"
#include "train/curriculum.h"
#include "study/spec.h"

#include "models/model.h"
#include "optim/optim.h"
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALLOC_CHECKPOINT_FLOPS 1e12

/* width w set for an arm of width d0, at width d: the same ratio, a multiple of 8, at least 8. */
static int scale_width(int w, int d, int d0) {
    long x = ((long)w * d / (d0 > 0 ? d0 : d) + 4) / 8 * 8;
    return x < 8 ? 8 : (int)x;
}

/* A transformer shape of width d and depth L, or 0 when the arm's switches cannot take it. */
static int transformer_shape(const Config *arm, int d, int L, Config *c) {
    *c = *arm;
    c->d_model = d;
    c->d_ff = 0;
    c->n_layers = L;
    int hd = d <= 64 ? 16 : (d % 32 == 0 ? 32 : 16);
    c->n_heads = d / hd;
    /* multi-head attention stays multi-head at every size; a set number of kv heads is kept */
    c->n_kv_heads = arm->n_kv_heads == arm->n_heads ? 0 : arm->n_kv_heads;
    if (c->n_kv_heads && c->n_heads % c->n_kv_heads) return 0;
    if (arm->value_embeds > c->n_layers) c->value_embeds = c->n_layers;
    /* widths the arm sets in proportion to its d_model keep that proportion (experts, latents) */
    if (arm->moe_d_ff) c->moe_d_ff = scale_width(arm->moe_d_ff, d, arm->d_model);
    if (arm->q_lora_rank) c->q_lora_rank = scale_width(arm->q_lora_rank, d, arm->d_model);
    Status st;
    return config_resolve(c, &st) == 0;
}

static int lstm_shape(const Config *arm, int d, Config *c) {
    *c = *arm;
    c->d_model = d;
    c->lstm_hidden = arm->lstm_proj ? 2 * d : d;
    Status st;
    return config_resolve(c, &st) == 0;
}

double alloc_flops_per_token(const Config *cfg) {
    StepFlops f;
    double tokens;
    curriculum_mean(cfg, &tokens, &f); /* a batch ramp or sequence warmup: the run's means */
    ParamSet ps;
    model_param_table(cfg, &ps);
    double opt = optim_step_flops(cfg, &ps);
    return (f.forward + f.backward + opt) / tokens;
}

static int rung_order(const void *a, const void *b) {
    const Rung *x = a, *y = b;
    return (x->n > y->n) - (x->n < y->n);
}

static int add_rung(Ladder *l, int *cap, const Config *c) {
    if (l->n == *cap) {
        int nc = *cap ? 2 * *cap : 256;
        Rung *r = realloc(l->r, (size_t)nc * sizeof *r);
        if (!r) return -1;
        l->r = r, *cap = nc;
    }
    size_t total, ne;
    model_count_params(c, &total, &ne);
    Rung *r = &l->r[l->n++];
    r->shape = *c;
    /* sized by the parameters a token goes through: a mixture's idle experts cost no compute */
    r->n = (double)ne - (double)(total - model_active_params(c));
    r->fpt = alloc_flops_per_token(c);
    return 0;
}

int ladder_build(const Config *arm, int batch, int context, Ladder *out, Status *st) {
    memset(out, 0, sizeof *out);
    Config base = *arm;
    base.batch = batch, base.context = context;
    int cap = 0;
    if (arm->family == FAMILY_LSTM) {
        for (int d = 32; d <= 4096; d += d < 256 ? 8 : d < 1024 ? 32 : 128) {
            Config c;
            if (lstm_shape(&base, d, &c) && add_rung(out, &cap, &c)) goto oom;
        }
    } else {
        for (int d = 48; d <= 4096; d += d < 256 ? 16 : d < 1024 ? 64 : 256)
            for (int L = 2; L <= 48; L++) {
                if (d < 12 * L || d > 64 * L) continue; /* aspect ratio d / L in 12..64 */
                Config c;
                if (transformer_shape(&base, d, L, &c) && add_rung(out, &cap, &c)) goto oom;
            }
    }
    if (out->n == 0) return status_fail(st, AP_EINVAL, "no ladder shape suits this arm's switches");
    qsort(out->r, (size_t)out->n, sizeof *out->r, rung_order);
    return 0;
oom:
    ladder_free(out);
    return status_fail(st, AP_ENOMEM, "out of memory building the size ladder");
}

void ladder_free(Ladder *l) {
    free(l->r);
    l->r = NULL;
    l->n = 0;
}

/* Distance in log N, plus a small preference for the canonical aspect ratio d/L = 32 among shapes of
 * nearly the same size. */
static double rung_distance(const Rung *r, double log_target) {
    double d = fabs(log(r->n) - log_target);
    if (r->shape.family != FAMILY_LSTM) d += 0.02 * fabs(log((double)r->shape.d_model / r->shape.n_layers / 32.0));
    return d;
}

int ladder_nearest(const Ladder *l, double n, const Rung **out, Status *st) {
    double best = INFINITY, lt = log(n);
    for (int i = 0; i < l->n; i++) {
        double d = rung_distance(&l->r[i], lt);
        if (d < best) best = d, *out = &l->r[i];
    }
    if (fabs(log((*out)->n / n)) > log(1.5))
        return status_fail(st, AP_EINVAL,
                           "a model of %.3g parameters is outside the size ladder (%.3g to %.3g for this arm; the "
                           "nearest has %.0f, width %d x %d layers); change the budgets",
                           n, l->r[0].n, l->r[l->n - 1].n, (*out)->n, (*out)->shape.d_model, (*out)->shape.n_layers);
    return 0;
}

int ladder_for_compute(const Ladder *l, double C, double r, const Rung **out, Status *st) {
    double best = INFINITY;
    for (int i = 0; i < l->n; i++) {
        double d = fabs(log(l->r[i].fpt * r * l->r[i].n / C));
        if (d < best) best = d, *out = &l->r[i];
    }
    if (best > log(2.0))
        return status_fail(st, AP_EINVAL,
                           "budget %.3g FLOPs is outside the size ladder at %.3g tokens per parameter (it spans %.3g to "
                           "%.3g FLOPs for this arm); change the budgets",
                           C, r, l->r[0].fpt * r * l->r[0].n, l->r[l->n - 1].fpt * r * l->r[l->n - 1].n);
    return 0;
}

int ladder_shape(const Config *arm, double target, Config *out, Status *st) {
    Ladder l;
    if (ladder_build(arm, arm->batch, arm->context, &l, st)) return -1;
    const Rung *r;
    int rc = ladder_nearest(&l, target, &r, st);
    if (!rc) *out = r->shape;
    ladder_free(&l);
    return rc;
}

/* Fills a run for a shape and a token target: whole steps, schedule lengths, exact counts. */
static int finish_run(const StudySpec *s, PlannedRun *r, const Config *shape, double tokens, Status *st) {
    Config *c = &r->cfg;
    *c = *shape;
    double per_step;
    curriculum_mean(c, &per_step, NULL); /* batch * context, or a curriculum's mean */
    long steps = lround(tokens / per_step);
    if (steps < s->min_steps) {
        size_t total, ne;
        model_count_params(c, &total, &ne);
        return status_fail(st, AP_EINVAL,
                           "budget %.3g FLOPs gives arm '%s' (%zu parameters, width %d x %d layers) only %ld steps of "
                           "%d x %d tokens; a run needs at least min_steps = %d: raise the smallest budget",
                           r->budget, s->arms[r->arm].name, ne, c->d_model, c->n_layers, steps, s->batch, s->context,
                           s->min_steps);
    }
    if (steps > (1L << 30)) return status_fail(st, AP_EINVAL, "budget %.3g needs too many steps", r->budget);
    c->steps = (int)steps;
    c->seed = (uint64_t)r->seed;
    c->warmup = (int)lround(s->warmup_frac * steps);
    /* rounded up, so the last periodic evaluation is the final step's (rounded down, the last two
     * were a step or a few apart: an evaluation too many per run) */
    c->eval_every = (int)((steps + s->evals_per_run - 1) / s->evals_per_run);
    /* each run evaluates at the end only the held-out half it is judged by */
    c->final_eval = r->kind == RUN_MAIN ? FINAL_EVAL_TEST : FINAL_EVAL_VALIDATION;
    c->lr = s->arms[r->arm].cfg.lr * r->lr_mult;
    c->adam_lr = s->arms[r->arm].cfg.adam_lr * r->lr_mult;
    if (curriculum_active(c)) { /* each step's own shape, as the trainer will count them */
        double model_flops;
        ParamSet ps;
        model_param_table(c, &ps);
        curriculum_totals(c, &r->tokens, &model_flops);
        r->flops = model_flops + (double)steps * optim_step_flops(c, &ps);
    } else {
        r->tokens = (double)steps * per_step;
        r->flops = r->tokens * alloc_flops_per_token(c);
    }
    /* A checkpoint per ALLOC_CHECKPOINT_FLOPS of training (about 10 s of a one-thread worker), at most
     * 20 a run: a crash loses little, and small runs do not spend more time saving than a crash
     * could cost them (at 20 a run, checkpoints took 1.3% of a study's time; `bench --study`). */
    long n_ckpt = (long)ceil(r->flops / ALLOC_CHECKPOINT_FLOPS);
    n_ckpt = n_ckpt < 1 ? 1 : n_ckpt > 20 ? 20 : n_ckpt;
    c->checkpoint_every = (int)((steps + n_ckpt - 1) / n_ckpt);
    model_count_params(c, &r->params, &r->params_nonembedding);
    if (train_check_memory(c, c->batch, st)) {
        char why[sizeof st->msg];
        snprintf(why, sizeof why, "%s", st->msg);
        return status_fail(st, AP_EINVAL, "budget %.3g FLOPs plans a model of %zu parameters that does not fit: %s",
                           r->budget, r->params, why);
    }
    r->params_kaplan = model_kaplan_params(c);
    r->flops_6nd = 6.0 * (double)r->params * r->tokens;
    return 0;
}

static const char *const RULE_NAMES[] = {"chinchilla", "kaplan", "isoflop", "fixed"};

const char *alloc_rule_name(int rule) { return rule >= 0 && rule <= ALLOC_FIXED ? RULE_NAMES[rule] : "?"; }

int alloc_rule_parse(const char *text) {
    for (int i = 0; i <= ALLOC_FIXED; i++)
        if (!strcmp(text, RULE_NAMES[i])) return i;
    return -1;
}

/* The arm whose sweep tunes arm a: the first arm with the same preset and overrides (arms that
 * differ only in their allocation rule share one learning-rate law). */
int alloc_tune_leader(const StudySpec *s, int a) {
    for (int b = 0; b < a; b++) {
        const StudyArm *x = &s->arms[a], *y = &s->arms[b];
        if (strcmp(x->preset, y->preset) || x->n_overrides != y->n_overrides) continue;
        int same = 1;
        for (int i = 0; i < x->n_overrides && same; i++)
            same = !strcmp(x->overrides[i][0], y->overrides[i][0]) && !strcmp(x->overrides[i][1], y->overrides[i][1]);
        if (same) return b;
    }
    return a;
}

/* The profile of a budget: `points` distinct rungs around `mid`, `step` apart in N. */
static int profile(const Ladder *l, const Rung *mid, int points, double step, const Rung **out, Status *st) {
    for (int p = 0; p < points; p++) {
        double target = mid->n * pow(step, p - (points - 1) / 2.0);
        if (ladder_nearest(l, target, &out[p], st)) return -1;
        /* neighbours on a coarse part of the ladder may round to the same shape: step outward */
        if (p > 0 && out[p]->n <= out[p - 1]->n) {
            const Rung *next = out[p - 1] + 1;
            if (next >= l->r + l->n) return status_fail(st, AP_EINVAL, "the profile runs off the top of the ladder");
            out[p] = next;
        }
    }
    return 0;
}

/* Plans one run of arm a at budget b (C) on a rung; tokens = C / FLOPs per token unless given. */
static int plan_run(const StudySpec *s, int a, int kind, int b, double C, int point, int seed, double lr_mult,
                    double target, const Rung *rung, double tokens, PlannedRun *r, Status *st) {
    memset(r, 0, sizeof *r);
    r->arm = a, r->kind = kind, r->budget_index = b, r->point = point, r->seed = seed, r->lr_mult = lr_mult;
    r->target_params = target;
    r->tune_arm = alloc_tune_leader(s, a);
    if (tokens > 0) {
        r->budget = tokens * rung->fpt;
    } else {
        r->budget = C;
        tokens = C / rung->fpt;
    }
    return finish_run(s, r, &rung->shape, tokens, st);
}

int alloc_plan(const StudySpec *s, int vocab, PlannedRun **out, int *n_out, Status *st) {
    *out = NULL;
    *n_out = 0;
    int P = s->isoflop_points > 1 ? s->isoflop_points : 1, nb = s->n_fixed > s->n_budgets ? s->n_fixed : s->n_budgets;
    int sweep_runs = s->lr_sweep * s->lr_sweep_seeds * s->n_lr_sweep_budgets;
    size_t cap = (size_t)s->n_arms * ((size_t)nb * P * (s->seeds + s->extra_seeds) + (size_t)sweep_runs) + 1;
    PlannedRun *runs = calloc(cap, sizeof *runs);
    if (!runs) return status_fail(st, AP_ENOMEM, "out of memory planning the study");
    int n = 0, a = 0;
    Ladder l = {0};
    for (int pass = 0; pass < 2; pass++) { /* pass 0: learning-rate sweeps; pass 1: main runs */
        for (a = 0; a < s->n_arms; a++) {
            if (pass == 0 && (s->lr_sweep == 0 || alloc_tune_leader(s, a) != a)) continue; /* one sweep per recipe */
            Config arm = s->arms[a].cfg;
            arm.vocab = vocab;
            int rule = s->arms[a].allocation >= 0 ? s->arms[a].allocation : s->allocation;
            int points = rule == ALLOC_CHINCHILLA || rule == ALLOC_ISOFLOP ? P : 1;
            int n_budgets = rule == ALLOC_FIXED ? s->n_fixed : s->n_budgets;
            if (n_budgets == 0) {
                status_fail(st, AP_EINVAL, "the study gives no %s", rule == ALLOC_FIXED ? "fixed_params/fixed_tokens"
                                                                                        : "budgets");
                goto fail;
            }
            if (ladder_build(&arm, s->batch, s->context, &l, st)) goto fail;
            double n0 = 0; /* the rule's model at the smallest budget (Kaplan's starting point) */
            for (int b = 0; b < n_budgets; b++) {
                int sweep_here = 0;
                for (int i = 0; i < s->n_lr_sweep_budgets; i++) sweep_here |= s->lr_sweep_budgets[i] == b;
                if (pass == 0 && !sweep_here) continue;
                const Rung *mid, *prof[16];
                double C = rule == ALLOC_FIXED ? 0 : s->budgets[b], target, tokens = 0;
                if (rule == ALLOC_FIXED) {
                    target = s->fixed_params[b], tokens = s->fixed_tokens[b];
                    if (ladder_nearest(&l, target, &mid, st)) goto fail;
                } else {
                    if (ladder_for_compute(&l, C, s->tokens_per_param, &mid, st)) goto fail;
                    if (b == 0) n0 = mid->n;
                    target = mid->n;
                    if (rule == ALLOC_KAPLAN) {
                        target = n0 * pow(C / s->budgets[0], s->kaplan_exponent);
                        if (ladder_nearest(&l, target, &mid, st)) goto fail;
                    }
                }
                prof[0] = mid;
                if (points > 1 && profile(&l, mid, points, s->isoflop_step, prof, st)) goto fail;
                if (pass == 0) { /* the sweep: the profile's middle size, lr_sweep_seeds seeds, K rates */
                    const Rung *r = prof[(points - 1) / 2];
                    for (int seed = 1; seed <= s->lr_sweep_seeds; seed++)
                        for (int k = 0; k < s->lr_sweep; k++) {
                            double mult = pow(s->lr_sweep_factor, k - (s->lr_sweep - 1) / 2.0);
                            if (plan_run(s, a, RUN_LR_SWEEP, b, C, (points - 1) / 2, seed, mult, r->n, r, tokens,
                                         &runs[n], st))
                                goto fail;
                            n++;
                        }
                    continue;
                }
                int seeds = s->seeds + (b == 0 ? s->extra_seeds : 0);
                for (int p = 0; p < points; p++)
                    for (int seed = 1; seed <= seeds; seed++) {
                        if (plan_run(s, a, RUN_MAIN, b, C, p, seed, 1.0, points > 1 ? prof[p]->n : target, prof[p],
                                     tokens, &runs[n], st))
                            goto fail;
                        /* the arm's largest run keeps its checkpoint: the report samples from it */
                        runs[n].keep = b == n_budgets - 1 && p == (points - 1) / 2 && seed == 1;
                        n++;
                    }
            }
            ladder_free(&l);
        }
    }
    *out = runs;
    *n_out = n;
    return 0;
fail:
    ladder_free(&l);
    status_wrap(st, "planning arm '%s'", s->arms[a < s->n_arms ? a : 0].name);
    free(runs);
    return -1;
}
