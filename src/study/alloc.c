/* alloc.c - size ladder and allocation rules (see alloc.h). */
#include "study/alloc.h"
#include "study/spec.h"

#include "models/model.h"
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int LADDER[] = {16,  32,  48,  64,  80,  96,   112,  128,  160,  192,  224, 256,
                             320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048};
#define N_LADDER ((int)(sizeof LADDER / sizeof LADDER[0]))

/* The shape at ladder width d; returns 0 if the arm's switches cannot take it (GQA, RoPE). */
static int shape_at(const Config *arm, int d, Config *c) {
    *c = *arm;
    c->d_model = d;
    c->d_ff = 0;
    if (arm->family == FAMILY_LSTM) {
        c->lstm_hidden = arm->lstm_proj ? 2 * d : d;
    } else {
        c->n_layers = (d + 16) / 32 > 0 ? (d + 16) / 32 : 1;
        int hd = d <= 64 ? 16 : (d % 32 == 0 ? 32 : 16);
        c->n_heads = d / hd;
        /* multi-head attention stays multi-head at every size; a set number of kv heads is kept */
        c->n_kv_heads = arm->n_kv_heads == arm->n_heads ? 0 : arm->n_kv_heads;
        if (c->n_kv_heads && c->n_heads % c->n_kv_heads) return 0;
        if (arm->value_embeds > c->n_layers) c->value_embeds = c->n_layers;
    }
    Status st;
    return config_resolve(c, &st) == 0;
}

double alloc_flops_per_token(const Config *cfg) {
    StepFlops f = model_step_flops(cfg, cfg->batch, cfg->context);
    ParamSet ps;
    model_param_table(cfg, &ps);
    double opt = optim_step_flops(cfg, &ps);
    return (f.forward + f.backward + opt) / ((double)cfg->batch * cfg->context);
}

int ladder_shape(const Config *arm, double target, Config *out, Status *st) {
    double best = INFINITY;
    int found = 0;
    for (int i = 0; i < N_LADDER; i++) {
        Config c;
        if (!shape_at(arm, LADDER[i], &c)) continue;
        size_t total, ne;
        model_count_params(&c, &total, &ne);
        double dist = fabs(log((double)ne / target));
        if (dist < best) {
            best = dist;
            *out = c;
            found = 1;
        }
    }
    if (!found) return status_fail(st, AP_EINVAL, "no ladder width suits this arm's switches");
    if (best > log(3.0)) {
        size_t total, ne;
        model_count_params(out, &total, &ne);
        return status_fail(st, AP_EINVAL,
                           "a model of %.3g parameters is outside the size ladder (the nearest has %zu, width %d); "
                           "change the budgets",
                           target, ne, out->d_model);
    }
    return 0;
}

/* Fills a run for a shape and a token target: whole steps, schedule lengths, exact counts. */
static int finish_run(const StudySpec *s, PlannedRun *r, const Config *shape, double tokens, Status *st) {
    Config *c = &r->cfg;
    *c = *shape;
    double per_step = (double)s->batch * s->context;
    long steps = lround(tokens / per_step);
    if (steps < s->min_steps) {
        size_t total, ne;
        model_count_params(c, &total, &ne);
        return status_fail(st, AP_EINVAL,
                           "budget %.3g FLOPs gives arm '%s' (%zu parameters) only %ld steps of %d x %d tokens; "
                           "a run needs at least min_steps = %d: raise the smallest budget",
                           r->budget, s->arms[r->arm].name, ne, steps, s->batch, s->context, s->min_steps);
    }
    if (steps > (1L << 30)) return status_fail(st, AP_EINVAL, "budget %.3g needs too many steps", r->budget);
    c->steps = (int)steps;
    c->seed = (uint64_t)r->seed;
    c->warmup = (int)lround(s->warmup_frac * steps);
    c->eval_every = (int)(steps / s->evals_per_run > 0 ? steps / s->evals_per_run : 1);
    c->checkpoint_every = (int)(steps / 20 > 0 ? steps / 20 : 1);
    c->lr = s->arms[r->arm].cfg.lr * r->lr_mult;
    c->adam_lr = s->arms[r->arm].cfg.adam_lr * r->lr_mult;
    r->tokens = (double)steps * per_step;
    r->flops = r->tokens * alloc_flops_per_token(c);
    model_count_params(c, &r->params, &r->params_nonembedding);
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

int alloc_plan(const StudySpec *s, int vocab, PlannedRun **out, int *n_out, Status *st) {
    *out = NULL;
    *n_out = 0;
    int sweep = s->lr_sweep;
    int most = s->isoflop_points > 1 ? s->isoflop_points : 1, nb = s->n_fixed > s->n_budgets ? s->n_fixed : s->n_budgets;
    size_t cap = (size_t)s->n_arms * ((size_t)nb * most * (s->seeds + s->extra_seeds) + (size_t)sweep) + 1;
    PlannedRun *runs = calloc(cap, sizeof *runs);
    if (!runs) return status_fail(st, AP_ENOMEM, "out of memory planning the study");
    int n = 0;
    double c0 = s->n_budgets ? s->budgets[0] : 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: learning-rate sweeps; pass 1: main runs */
        for (int a = 0; a < s->n_arms; a++) {
            Config arm = s->arms[a].cfg;
            arm.vocab = vocab;
            int rule = s->arms[a].allocation >= 0 ? s->arms[a].allocation : s->allocation;
            int points = rule == ALLOC_ISOFLOP ? s->isoflop_points : 1;
            int n_budgets = rule == ALLOC_FIXED ? s->n_fixed : s->n_budgets;
            if (n_budgets == 0) {
                status_fail(st, AP_EINVAL, "arm '%s' uses allocation %s but the study gives no %s", s->arms[a].name,
                            alloc_rule_name(rule), rule == ALLOC_FIXED ? "fixed_params/fixed_tokens" : "budgets");
                free(runs);
                return -1;
            }
            for (int b = 0; b < n_budgets; b++) {
                if (pass == 0 && (b != s->lr_sweep_budget || sweep == 0)) continue;
                int seeds = pass == 0 ? 1 : s->seeds + (b == 0 ? s->extra_seeds : 0);
                for (int p = 0; p < points; p++) {
                    if (pass == 0 && p != points / 2) continue;
                    for (int seed = 1; seed <= seeds; seed++) {
                        int variants = pass == 0 ? sweep : 1;
                        for (int k = 0; k < variants; k++) {
                            PlannedRun *r = &runs[n];
                            r->arm = a;
                            r->kind = pass == 0 ? RUN_LR_SWEEP : RUN_MAIN;
                            r->budget_index = b;
                            r->point = p;
                            r->seed = seed;
                            r->lr_mult = pass == 0 ? pow(s->lr_sweep_factor, k - (sweep - 1) / 2.0) : 1.0;
                            Config shape;
                            double tokens;
                            if (rule == ALLOC_FIXED) {
                                r->target_params = s->fixed_params[b];
                                if (ladder_shape(&arm, r->target_params, &shape, st)) goto fail;
                                tokens = s->fixed_tokens[b];
                                r->budget = tokens * alloc_flops_per_token(&shape);
                            } else {
                                double C = s->budgets[b];
                                r->budget = C;
                                double n_chin = sqrt(C / (6.0 * s->tokens_per_param));
                                if (rule == ALLOC_KAPLAN)
                                    r->target_params = sqrt(c0 / (6.0 * s->tokens_per_param)) * pow(C / c0, s->kaplan_exponent);
                                else if (rule == ALLOC_ISOFLOP)
                                    r->target_params = n_chin * pow(s->isoflop_span, (double)p / (points - 1) - 0.5);
                                else
                                    r->target_params = n_chin;
                                if (ladder_shape(&arm, r->target_params, &shape, st)) goto fail;
                                shape.batch = s->batch;
                                shape.context = s->context;
                                tokens = C / alloc_flops_per_token(&shape);
                            }
                            if (finish_run(s, r, &shape, tokens, st)) goto fail;
                            n++;
                        }
                    }
                }
            }
        }
    }
    *out = runs;
    *n_out = n;
    return 0;
fail:
    status_wrap(st, "planning arm '%s'", s->arms[runs[n].arm].name);
    free(runs);
    return -1;
}
