/* alloc.h - from budgets to runs: the size ladder and the allocation rules.
 *
 * Size ladder: for each arm, every shape its switches allow on a fine grid, sorted by N (the
 * non-embedding parameters without the head, docs/RECIPES.md): a transformer takes widths d in
 * steps of 16 from 48 with 2.. layers and an aspect ratio d/L of 12..64 (heads of 16 dimensions up
 * to d = 64 and of 32 above when 32 divides d; d_ff from its activation; n_kv_heads kept when the
 * arm sets it), an LSTM its preset's layers with hidden sizes in steps of 8 from 32. Neighbouring
 * shapes differ by a few percent in N (at most ~25% near the bottom), so a rule's target is met within
 * ~12%. Each shape carries its
 * exact training FLOPs per token at the study's batch and context.
 *
 * Rules, for a budget C in FLOPs (exact FLOPs, not 6ND):
 *   chinchilla  the shape whose compute at D = r N tokens is nearest C (r = tokens_per_param):
 *               the allocation rule's choice; the budget's IsoFLOP profile is isoflop_points
 *               shapes around it, isoflop_step apart in N (default sqrt 2), each trained on
 *               D = C / (its FLOPs per token)
 *   isoflop     the same profile (a name kept for older study files)
 *   kaplan      one shape per budget: N = N_chinchilla(C0) (C / C0)^a, a = kaplan_exponent (0.73),
 *               C0 the smallest budget: both rules start from the same model and Kaplan's grows faster
 *   fixed       the (N, D) pairs given by fixed_params and fixed_tokens; their budget follows
 * Steps are rounded to whole steps; a run with fewer than min_steps is refused at planning. */
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
    size_t params, params_nonembedding, params_kaplan;
    double tokens, flops, flops_6nd;
    int keep;             /* keep the final checkpoint (the arm's largest run: samples in the report) */
    int tune_arm;         /* the arm whose learning-rate sweep sets this arm's rate */
} PlannedRun;

/* One shape of an arm's ladder. */
typedef struct {
    Config shape; /* resolved, with the study's batch and context */
    double n;     /* N: non-embedding parameters without the head */
    double fpt;   /* exact training FLOPs per token (forward, backward, optimiser) */
} Rung;

typedef struct {
    Rung *r;
    int n;
} Ladder;

/* Every shape the arm allows, sorted by N; batch and context set the FLOPs per token. */
int ladder_build(const Config *arm, int batch, int context, Ladder *out, Status *st);
void ladder_free(Ladder *l);
/* The rung nearest to N in log scale (ties: the aspect ratio nearer 32). Fails when the nearest
 * is more than a factor 1.5 away (the target is outside the ladder). */
int ladder_nearest(const Ladder *l, double n, const Rung **out, Status *st);
/* The rung whose compute at D = r N tokens is nearest C. */
int ladder_for_compute(const Ladder *l, double C, double r, const Rung **out, Status *st);
/* Shape for a parameter target (a ladder built for this one call). */
int ladder_shape(const Config *arm, double target_nonemb, Config *out, Status *st);
/* Exact FLOPs per training token of a resolved config (forward, backward, optimiser). */
double alloc_flops_per_token(const Config *cfg);
/* The arm whose sweep tunes arm a: the first arm with the same preset and overrides (arms that
 * differ only in their allocation rule share one learning-rate law). */
int alloc_tune_leader(const struct StudySpec *s, int a);
/* Every run of the study (sweep runs first), or a clear error for impossible budgets. */
int alloc_plan(const struct StudySpec *s, int vocab, PlannedRun **out, int *n_out, Status *st);

#endif
