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
 *   lr_sweep = 3                  # learning rates tried per arm at the smallest budget (0: preset's)
 *   [arm gpt2]
 *   preset = gpt2-2019            # any recipe; then any recipe key as an override
 *   [arm llama]
 *   preset = llama-2023
 *
 * Keys the study itself sets (shape, steps, data, seed, ...) are refused inside arms. */
#ifndef AP_SPEC_H
#define AP_SPEC_H

#include "core/status.h"
#include "models/config.h"

#include <stdint.h>

#define STUDY_MAX_ARMS 32
#define STUDY_MAX_BUDGETS 64
#define STUDY_MAX_OVERRIDES 48

typedef enum { ALLOC_CHINCHILLA = 0, ALLOC_KAPLAN = 1, ALLOC_ISOFLOP = 2, ALLOC_FIXED = 3 } AllocRule;

typedef struct {
    char name[64];
    char preset[256];
    char overrides[STUDY_MAX_OVERRIDES][2][256]; /* key, value */
    int n_overrides;
    Config cfg; /* preset + overrides + the study's settings, resolved except for the shape */
} StudyArm;

typedef struct {
    char name[128];
    char data[512];
    char tokenizer[512];
    double budgets[STUDY_MAX_BUDGETS];
    int n_budgets;
    int seeds, extra_seeds;
    int allocation;
    double tokens_per_param;  /* chinchilla: D = r N */
    double kaplan_exponent;   /* kaplan: N grows as C^a from the chinchilla size at the smallest budget */
    int isoflop_points;
    double isoflop_span;      /* ratio between the largest and smallest N of a budget */
    double fixed_params[STUDY_MAX_BUDGETS], fixed_tokens[STUDY_MAX_BUDGETS];
    int n_fixed;
    int context, batch;
    int lr_sweep;
    double lr_sweep_factor;
    double warmup_frac;
    int eval_tokens;
    int evals_per_run;
    int min_steps;
    int keep_checkpoints;
    StudyArm arms[STUDY_MAX_ARMS];
    int n_arms;
    char *text;        /* the file as read */
    char hash[65];     /* SHA-256 of the text: the study's identity in its registry */
} StudySpec;

int spec_load(StudySpec *s, const char *path, Status *st);
void spec_free(StudySpec *s);
/* Parses "a:b:n" (log range) or "a, b, c" into values; returns the count or -1. */
int spec_parse_budgets(const char *text, double *out, int max, Status *st);
const char *alloc_rule_name(int rule);

#endif
