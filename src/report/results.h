/* results.h - a study's results as the report sees them: read through the registry, then fitted.
 *
 * results_load reads the study, its arms (with one run's resolved recipe each, for the claim
 * table's selectors), every run, and the finished main runs as fit points (N = non-embedding
 * parameters without the head, loss = test bits per byte, with their seeds); runs on the unigram
 * plateau are counted and left out. results_fit builds every arm's frontier in one call (shared
 * noise, budgets matched across arms); results_pair computes a CEG between two arms once and
 * keeps it; results_ablations finds [ablation] packages among the arms and measures them. */
#ifndef AP_RESULTS_H
#define AP_RESULTS_H

#include "config/config.h"
#include "core/status.h"
#include "fit/ablation.h"
#include "fit/ceg.h"
#include "fit/frontier.h"
#include "fit/laws.h"
#include "fit/points.h"
#include "study/registry.h"

#define RESULTS_MAX_ABLATIONS 4

typedef struct {
    ArmRow row;
    Config cfg; /* the resolved recipe of the arm's first run (has_cfg) */
    int has_cfg;
    Frontier fr;   /* frontier points from the IsoFLOP profiles, the law through them (fr.law when
                    * fr.has_law), the noise across seeds, and N*(C), D*(C) (fit/frontier.h) */
    int n_points;  /* finished main runs on the frontier's side (plateau runs excluded) */
    int n_plateau; /* finished main runs within plateau_margin of the unigram loss: left out */
    FitParam a_kaplan, a_chinchilla; /* N*(C) ~ C^a with N counted Kaplan's and Chinchilla's way */
    Holdout holdout; /* the law refitted without the largest budget predicts it (k = 0: not checked) */
    /* N* ~ C^a by approach 2 (IsoFLOP parabolas, with its design bias under approach 3's law on the same
     * runs) and by approach 3, beside the frontier's vertices (has_a23 = 0: why says why not) */
    FitParam a2, a3;
    double a2_bias;
    int a2_flagged, has_a23;
    char a23_why[96];
    /* this arm's CEG over the first arm on each cost axis (fit/points.h COST_*), at the middle of the
     * loss levels both reach on that axis; ok = 0: why says what was missing */
    struct {
        double loss, ceg, lo, hi;
        int ok;
        char why[96];
    } axis[COST_AXES];
} ResultArm;

typedef struct {
    int ref, cand;
    CegCurve c;
    int ok;          /* both frontiers comparable */
    char why[256];   /* why not */
} ResultPair;

typedef struct {
    char name[48];
    int base, full, n;
    char sw[ABLATION_MAX][48];
    int plus[ABLATION_MAX], minus[ABLATION_MAX]; /* arm indices */
    AblationStats s;
} ResultAblation;

typedef struct {
    StudyInfo info;
    char dir[1024]; /* the study directory (run directories are DIR/runs/ID-ARM) */
    int runs_total, runs_done;
    double flops_done, seconds; /* of the finished runs; seconds of training (copies excluded) */
    double plateau_margin;      /* the study's: runs this close to the unigram loss are left out */
    double eval_se;             /* median over finished main runs of test_bpb_se / test_bpb (NaN: none) */
    FitOptions fit;             /* what results_fit used (resamples, seed, level) */
    ResultArm *arms;
    int n_arms;
    RunRow *runs; /* every run, in id order */
    int n_runs;
    PointSet ps; /* finished main runs; ps.p[i].arm indexes arms */
    ResultPair *pairs;
    int n_pairs, cap_pairs;
    PointSet ps_kaplan, ps_chinchilla; /* the same points with N counted as Kaplan and Chinchilla did */
    ResultAblation abl[RESULTS_MAX_ABLATIONS];
    int n_ablations;
    char ablation_note[256]; /* a package whose arms are all there but not all fitted: which, and why */
} Results;

int results_load(Results *r, const char *dir, Status *st);
/* Fits every arm; CEGs of every arm over the first. */
int results_fit(Results *r, const FitOptions *o, int verbose, Status *st);
/* Index of the CEG of arm cand over arm ref (computed on first use), or -1 without memory. */
int results_pair(Results *r, int ref, int cand);
int results_arm_named(const Results *r, const char *name);

/* What an arm's model costs beyond training FLOPs at one budget, read from the budget's best
 * measured size (the lowest mean test loss over seeds among its finished main runs): C5 asks what
 * memory a mixture of experts pays, C7 what KV cache each attention kind leaves per token. */
typedef struct {
    int run;         /* index into Results.runs of one seed's run of that size; -1: no finished run */
    double flops;    /* the budget (mean exact FLOPs of those runs) */
    double loss;     /* their mean test bits per byte */
    double params;   /* every parameter */
    double active;   /* parameters one token goes through (= params without experts) */
    double kv_bytes; /* KV cache per token at inference, fp32, all layers; NaN for the LSTM */
    double memory;   /* training bytes at the study's batch and context (model_memory_estimate) */
} ArmCost;
int results_arm_cost(const Results *r, int arm, int budget_index, ArmCost *out);
/* Budgets of the study (1 + the largest budget index of a main run). */
int results_n_budgets(const Results *r);
/* Finds NAME.base / NAME.full / NAME+S / NAME-S arm sets and measures each package. */
void results_ablations(Results *r);
void results_free(Results *r);

/* The finished main runs of the study in dir as fit points (`algoprog fit DIR`). */
int results_points(const char *dir, int axis, PointSet *ps, Status *st);

#endif
