/* registry_fixture.h - a study registry with n planned runs and no data behind them (nothing
 * trains), for the tests of the registry itself and of its behaviour under injected faults. */
#ifndef AP_REGISTRY_FIXTURE_H
#define AP_REGISTRY_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "study/registry.h"

/* Fills a one-arm study and n pending main runs; runs i and twin_of[i] >= 0 get the same recipe.
 * The caller frees s->text, s and runs. */
static inline void fixture_study(StudySpec *s, PlannedRun *runs, int n, const int *twin_of) {
    snprintf(s->name, sizeof s->name, "unit");
    snprintf(s->data, sizeof s->data, "none");
    snprintf(s->tokenizer, sizeof s->tokenizer, "bytes");
    s->text = strdup("[study]\nname = unit\n");
    snprintf(s->hash, sizeof s->hash, "%064d", 7);
    s->n_arms = 1;
    s->n_budgets = n; /* run i at budget i: the largest budget leases first */
    snprintf(s->arms[0].name, sizeof s->arms[0].name, "a");
    snprintf(s->arms[0].preset, sizeof s->arms[0].preset, "gpt2-2019");
    s->arms[0].allocation = -1;
    config_defaults(&s->arms[0].cfg);
    for (int i = 0; i < n; i++) {
        config_defaults(&runs[i].cfg);
        runs[i].cfg.seed = (uint64_t)(twin_of && twin_of[i] >= 0 ? twin_of[i] : i) + 1; /* twins share a recipe */
        runs[i].kind = RUN_MAIN, runs[i].budget_index = i, runs[i].budget = 1e9 * (i + 1), runs[i].seed = 1;
        runs[i].flops = runs[i].budget, runs[i].tokens = 1000, runs[i].params = 100, runs[i].params_nonembedding = 50;
    }
}

/* Creates DIR/registry.db holding that study, recorded on data whose checksum is "0...01". */
static inline int fixture_registry(const char *dir, int n, const int *twin_of, Status *st) {
    StudySpec *s = calloc(1, sizeof *s);
    PlannedRun *runs = calloc((size_t)n, sizeof *runs);
    if (!s || !runs) abort();
    fixture_study(s, runs, n, twin_of);
    Registry *r;
    char data[65];
    snprintf(data, sizeof data, "%064d", 1);
    int rc = registry_open(&r, dir, REG_OPEN_CREATE, st);
    if (!rc) {
        rc = registry_init_study(r, s, runs, n, data, st);
        registry_close(r);
    }
    free(s->text);
    free(s);
    free(runs);
    return rc;
}

#endif
