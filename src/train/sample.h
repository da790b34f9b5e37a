/* sample.h - text generation from a trained model with a key/value cache.
 *
 * Temperature, top-k and top-p (nucleus, Holtzman et al. 2020) filtering; temperature 0 is
 * greedy. For transformers, generation longer than the context slides the window: the last half of
 * the context is re-encoded and decoding continues, so any length can be generated. */
#ifndef AP_SAMPLE_H
#define AP_SAMPLE_H

#include "core/rng.h"
#include "core/status.h"
#include "data/tokenizer.h"
#include "models/model.h"

#include <stdio.h>

typedef struct {
    double temperature; /* 0: greedy */
    int top_k;          /* 0: off */
    double top_p;       /* 1: off */
} SampleParams;

/* Picks a token from logits (V). scratch holds 2*V floats. */
int sample_token(const float *logits, int V, const SampleParams *p, Rng *rng, float *scratch);
/* Generates n tokens after the prompt, writing each token's text to out as it comes (special
 * tokens as their names, e.g. "<|endoftext|>"). An empty prompt starts a new document. */
int sample_generate(const Model *m, const Tokenizer *tok, const char *prompt, int n, const SampleParams *p,
                    uint64_t seed, FILE *out, Status *st);

#endif
