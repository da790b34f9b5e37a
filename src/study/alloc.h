/* alloc.h - from budgets to runs: the size ladder and the allocation rules.
 *
 * Size ladder (the same for every arm): a parameter target N (non-embedding parameters) is
 * mapped to the ladder width whose model comes closest to N in log scale. Widths d are
 * 16, 32, 48, ... (docs/STUDIES.md lists them); a transformer gets n_layers = max(1, round(d/32))
 * (aspect ratio d/L = 32), heads of 16 dimensions up to d = 64 and of 32 above (16 when 32 does
 * not divide d), d_ff from its activation, n_kv_heads kept when the arm sets it (MQA/GQA) and
 * equal to the heads otherwise; an LSTM keeps its preset's layer count with hidden = d.
 * Every run records its exact N, tokens and FLOPs; the target is only how it was chosen.
 *
 * Rules, for a budget C in FLOPs:
 *   chinchilla  N = sqrt(C / (6 r)) with r = tokens_per_param (20 by default): D ~ r N
 *   kaplan      N = N_chinchilla(C0) (C / C0)^a with a = kaplan_exponent (0.73), C0 the smallest
 *               budget: both rules start from the same model and Kaplan grows it faster
 *   isoflop     isoflop_points models per budget, log-spaced over isoflop_span around the
 *               chinchilla N (for Chinchilla's approach 2)
 *   fixed       the (N, D) pairs given by fixed_params and fixed_tokens; their budget follows
 * then D = C / (exact FLOPs per token of the chosen shape), rounded to whole steps. */
#ifndef AP_ALLOC_H
#define AP_ALLOC_H

#include "config/config.h"
#include "core/status.h"

struct StudySpec; /* study/spec.h */

typedef enum { ALLOC_CHINCHILLA = 0, ALLOC_KAPLAN = 1, ALLOC_ISOFLOP = 2, ALLOC_FIXED = 3 } AllocRule;

/* "chinchilla", "kaplan", "isoflop", "fixed"; "?" for anything else. */
const char *alloc_rule_name(int rule);
/* The rule named by text, or -1. */
int alloc_rule_parse(const char *text);

typedef enum { RUN_MAIN = 0, RUN_LR_SWEEP = 1 } RunKind;

typedef struct {
    int arm;
    int kind;
    int budget_index;
    double budget;        /* the planned FLOPs of the run's budget */
    int point;            /* isoflop: index of the model at this budget */
    int seed;
    double lr_mult;       /* learning-rate multiplier (sweep runs; main runs get the chosen one later) */
    double target_params;
    Config cfg;           /* complete: shape, steps, seed, schedule lengths, data */
    size_t params, params_nonembedding;
    double tokens, flops, flops_6nd;
} PlannedRun;

/* Shape for a parameter target. Fails when no ladder width is within a factor 3 of N. */
int ladder_shape(const Config *arm, double target_nonemb, Config *out, Status *st);
/* Exact FLOPs per training token of a resolved config (forward, backward, optimiser). */
double alloc_flops_per_token(const Config *cfg);
/* Every run of the study (sweep runs first), or a clear error for impossible budgets. */
int alloc_plan(const struct StudySpec *s, int vocab, PlannedRun **out, int *n_out, Status *st);

#endif
