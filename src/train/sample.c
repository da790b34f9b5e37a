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

static void emit(const Tokenizer *tok, int id, FILE *out) {
    if (!out) return;
    if (tok->special[id])
        fprintf(out, "%s", tok->special_names[id]);
    else
        fwrite(tok->tok_bytes + tok->tok_off[id], 1, tokenizer_token_len(tok, id), out);
    fflush(out);
}

int sample_generate(const Model *m, const Tokenizer *tok, const char *prompt, int n, const SampleParams *p,
                    uint64_t seed, FILE *out, Status *st) {
    int V = m->cfg.vocab;
    TokenList toks = {0};
    Encoder *enc = encoder_create(tok);
    if (!enc) return status_fail(st, AP_ENOMEM, "out of memory for sampling");
    int rc = encoder_encode_ordinary(enc, (const unsigned char *)prompt, strlen(prompt), &toks, st);
    encoder_free(enc);
    if (rc) {
        tokenlist_free(&toks);
        return -1;
    }
    if (toks.n == 0 && tokenlist_push(&toks, (uint32_t)(tok->eot >= 0 ? tok->eot : tok->byte_id['\n']))) {
        tokenlist_free(&toks);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < toks.n; i++)
        if ((int)toks.ids[i] >= V) {
            tokenlist_free(&toks);
            return status_fail(st, AP_EINVAL, "the tokenizer gives id %u, outside the model's vocabulary %d",
                               toks.ids[i], V);
        }
    Decoder dec;
    if (decoder_create(&dec, m, st)) {
        tokenlist_free(&toks);
        return -1;
    }
    size_t T = (size_t)dec.max_pos;
    float *scratch = malloc(2 * (size_t)V * sizeof(float));
    if (!scratch) {
        tokenlist_free(&toks);
        decoder_free(&dec);
        return status_fail(st, AP_ENOMEM, "out of memory for sampling");
    }
    Rng rng;
    rng_seed(&rng, seed);
    /* window: toks[start .. n) are in the cache at positions 0 .. n-start */
    size_t start = toks.n > T ? toks.n - T : 0;
    for (size_t i = start; i < toks.n; i++) decoder_feed(&dec, (int)toks.ids[i], (int)(i - start));
    for (int g = 0; g < n && !rc; g++) {
        int next = sample_token(dec.logits, V, p, &rng, scratch);
        if (next >= tok->n_tokens) next = tok->byte_id[0]; /* padded vocabulary rows are never data */
        if (tokenlist_push(&toks, (uint32_t)next)) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        emit(tok, next, out);
        if (g == n - 1) break;
        if (toks.n - start > T) { /* context full: keep the last half, re-encode it */
            start = toks.n - (T > 1 ? T / 2 : 1);
            decoder_reset(&dec);
            for (size_t i = start; i < toks.n; i++) decoder_feed(&dec, (int)toks.ids[i], (int)(i - start));
        } else {
            decoder_feed(&dec, next, (int)(toks.n - 1 - start));
        }
    }
    tokenlist_free(&toks);
    free(scratch);
    decoder_free(&dec);
    return rc;
}
