/* rng.h - deterministic random numbers with explicit state.
 *
 * xoshiro256** seeded through splitmix64 (Blackman & Vigna). Each owner (model init, data
 * sampler, text sampler) holds its own Rng so that streams never interfere, and the state is
 * four words that checkpoints save verbatim: a resumed run continues the exact same stream. */
#ifndef AP_RNG_H
#define AP_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* Uniform in [0, 1) with 24 bits (float) or 53 bits (double). */
float rng_uniform(Rng *r);
double rng_uniform_double(Rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Standard normal by Box-Muller, one value per call (simple, and the stream stays easy to reason about). */
float rng_normal(Rng *r);

#endif
