/* spec.h - a study file: corpus, tokenizer, budgets, seeds, allocation rule, tuning, and arms.
 *
 *   [study]
 *   name = demo
 *   data = austen                 # corpus (or text file), as the train key
 *   tokenizer = bytes
 *   budgets = 1e12:1e14:5         # training FLOPs: start:stop:count (log-spaced) or a list a, b, c
 *   seeds = 1                     # seeds of every run
 *   extra_seeds = 1               # more seeds at the smallest budget, to show the noise floor
 *   allocation = chinchilla       # chinchilla | kaplan | isoflop | fixed (see alloc.h)
 *   context = 256                 # the same for every arm
 *   batch = 16
 *   lr_sweep = 5                  # learning rates tried per arm (0: preset's), see study/tune.h
 *   [arm gpt2]
 *   preset = gpt2-2019            # any recipe; then any recipe key as an override
 *   [arm llama]
 *   preset = llama-2023
 *   [arm llama-kaplan]
 *   preset = llama-2023
 *   allocation = kaplan            # an arm may use its own allocation rule
 *
 *   [ablation pkg]                # a package of switches, expanded into arms (see Ablation)
 *   base = gpt2-2019
 *   switch rmsnorm = norm=rmsnorm
 *   switch rope = pos=rope
 *
 * Keys the study itself sets (shape, steps, data, seed, ...) are refused inside arms. */
#ifndef AP_SPEC_H
#define AP_SPEC_H

#include "core/status.h"
#include "config/config.h"
#include "study/alloc.h"

#include <stdint.h>

#define STUDY_MAX_ARMS 48
#define STUDY_MAX_ABLATIONS 4
#define ABLATION_MAX_SWITCHES 10
#define STUDY_MAX_BUDGETS 64
#define STUDY_MAX_OVERRIDES 48

typedef struct {
    char name[64];
    char preset[256];
    char overrides[STUDY_MAX_OVERRIDES][2][256]; /* key, value */
    int n_overrides;
    int allocation; /* AllocRule: the arm's own rule (e.g. a Kaplan arm beside Chinchilla ones), -1: the study's */
    Config cfg; /* preset + overrides + the study's settings, resolved except for the shape */
} StudyArm;

/* An ablation package: [ablation NAME] with base = PRESET and lines `switch S = key=value ...`
 * expands into arms NAME.base, NAME.full (base + every switch), NAME+S (base + S) and NAME-S
 * (full without S): one-at-a-time, leave-one-out and the whole package (claims C2, C3).
 * `design = factorial` (at most ABLATION_MAX_FACTORIAL switches) adds an arm for every other
 * subset, NAME+S1+S2..., so that the report can split the package's gain into Shapley shares. */
#define ABLATION_MAX_FACTORIAL 5
typedef struct {
    char name[48];
    char base[256];
    char switches[ABLATION_MAX_SWITCHES][48];
    char settings[ABLATION_MAX_SWITCHES][512]; /* "key=value key=value" */
    int n_switches;
    int factorial; /* design = factorial: every subset of the switches is an arm */
} Ablation;

typedef struct StudySpec {
    char name[128];
    char data[512];
    char tokenizer[512];
    double budgets[STUDY_MAX_BUDGETS];
    int n_budgets;
    int seeds, extra_seeds;
    int allocation;
    double tokens_per_param;  /* chinchilla: D = r N */
    double kaplan_exponent;   /* kaplan: N grows as C^a from the chinchilla size at the smallest budget */
    int isoflop_points;       /* sizes per budget in a profile (chinchilla and isoflop rules) */
    double isoflop_step;      /* ratio of N between neighbouring sizes of a profile */
    double fixed_params[STUDY_MAX_BUDGETS], fixed_tokens[STUDY_MAX_BUDGETS];
    int n_fixed;
    int context, batch;
    int lr_sweep;             /* learning rates per sweep (0: the preset's rate, no sweep) */
    double lr_sweep_factor;   /* ratio between neighbouring rates */
    int lr_sweep_budgets[STUDY_MAX_BUDGETS]; /* budget indices the sweeps run at (1 or 2) */
    int n_lr_sweep_budgets;
    int lr_sweep_seeds;
    int lr_sweep_extend;      /* times a sweep may grow past an edge of its grid */
    double warmup_frac;
    int eval_tokens;
    int final_eval_tokens;
    double plateau_margin;    /* runs within this fraction of the unigram loss are left out of frontiers */
    int evals_per_run;
    int min_steps;
    int keep_checkpoints;
    StudyArm arms[STUDY_MAX_ARMS];
    int n_arms;
    Ablation ablations[STUDY_MAX_ABLATIONS];
    int n_ablations;
    char *text;        /* the file as read */
    char hash[65];     /* SHA-256 of the text: the study's identity in its registry */
} StudySpec;

int spec_load(StudySpec *s, const char *path, Status *st);
void spec_free(StudySpec *s);
/* Parses "a:b:n" (log range) or "a, b, c" into values; returns the count or -1. */
/* The arm name of a subset of an ablation's switches: NAME+S1+S2... in declaration order. */
int ablation_subset_name(const Ablation *ab, unsigned mask, char *buf, size_t size);
int spec_parse_budgets(const char *text, double *out, int max, Status *st);

#endif
