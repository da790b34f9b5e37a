/* samples.h - what each arm's largest model writes, from one fixed prompt.
 *
 * Every arm keeps the final checkpoint of its largest run (the largest budget, the middle size,
 * seed 1). The report loads it and generates SAMPLE_TOKENS tokens after the prompt at temperature
 * SAMPLE_TEMPERATURE with sampling seed 1, so a reader sees what the 2016, 2019, 2023 and 2025
 * recipes produce at equal compute. */
#ifndef AP_SAMPLES_H
#define AP_SAMPLES_H

#include "core/status.h"
#include "report/results.h"

#define SAMPLE_TOKENS 200
#define SAMPLE_TEMPERATURE 0.8
#define SAMPLE_PROMPT "The "

typedef struct {
    int arm;      /* index into Results.arms */
    int run_id;   /* the run sampled */
    char *text;   /* prompt + generation (malloc'ed), or NULL */
    char why[256]; /* why there is no sample */
} ArmSample;

/* One sample per arm (samples[arm]); arms without a kept checkpoint say why. */
void samples_generate(const Results *r, const char *dir, ArmSample *samples);
void samples_free(ArmSample *samples, int n);

#endif
