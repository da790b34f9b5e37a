/* sample.c - decoding with a KV cache (see sample.h). */
#include "train/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_desc(const void *a, const void *b) {
    float x = ((const float *)a)[0], y = ((const float *)b)[0];
    return (x < y) - (x > y);
}

int sample_token(const float *logits, int V, const SampleParams *p, Rng *rng, float *scratch) {
    if (p->temperature <= 0.0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    /* scratch: pairs (probability, index) so sorting keeps indices */
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        float e = expf((float)((logits[i] - mx) / p->temperature));
        scratch[2 * i] = e;
        scratch[2 * i + 1] = (float)i;
        sum += e;
    }
    int n = V;
    if ((p->top_k > 0 && p->top_k < V) || p->top_p < 1.0) {
        qsort(scratch, (size_t)V, 2 * sizeof(float), cmp_desc);
        if (p->top_k > 0 && p->top_k < n) n = p->top_k;
        if (p->top_p < 1.0) {
            double cum = 0.0;
            for (int i = 0; i < n; i++) {
                cum += scratch[2 * i] / sum;
                if (cum >= p->top_p) {
                    n = i + 1;
                    break;
                }
            }
        }
        sum = 0.0;
        for (int i = 0; i < n; i++) sum += scratch[2 * i];
    }
    double u = rng_uniform_double(rng) * sum, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += scratch[2 * i];
        if (u < cum) return (int)scratch[2 * i + 1];
    }
    return (int)scratch[2 * (n - 1) + 1];
}

int sample_generate(const Transformer *m, const unsigned char *prompt, size_t prompt_len, int n,
                    const SampleParams *p, uint64_t seed, FILE *out, Status *st) {
    KVCache kv;
    if (kvcache_create(&kv, m, st)) return -1;
    int T = m->Tmax, V = m->V;
    size_t cap = prompt_len + (size_t)n + 1;
    int *tokens = malloc(cap * sizeof(int));
    float *scratch = malloc(2 * (size_t)V * sizeof(float));
    if (!tokens || !scratch) {
        free(tokens);
        free(scratch);
        kvcache_free(&kv);
        return status_fail(st, AP_ENOMEM, "out of memory for sampling");
    }
    size_t len = 0;
    if (prompt_len == 0) tokens[len++] = '\n'; /* the bytes tokenizer has no start token: begin at a line */
    for (size_t i = 0; i < prompt_len; i++) tokens[len++] = prompt[i];
    Rng rng;
    rng_seed(&rng, seed);
    /* window: tokens[start .. len) are in the cache at positions 0 .. len-start */
    size_t start = len > (size_t)T ? len - (size_t)T : 0;
    for (size_t i = start; i < len; i++) transformer_forward_token(m, &kv, tokens[i], (int)(i - start));
    for (int g = 0; g < n; g++) {
        int next = sample_token(kv.logits, V, p, &rng, scratch);
        tokens[len++] = next;
        if (out) {
            fputc(next & 0xff, out);
            fflush(out);
        }
        if (g == n - 1) break;
        if (len - start > (size_t)T) { /* context full: keep the last half, re-encode it */
            start = len - (T > 1 ? (size_t)T / 2 : 1);
            for (size_t i = start; i < len; i++) transformer_forward_token(m, &kv, tokens[i], (int)(i - start));
        } else {
            transformer_forward_token(m, &kv, next, (int)(len - 1 - start));
        }
    }
    free(tokens);
    free(scratch);
    kvcache_free(&kv);
    return 0;
}
