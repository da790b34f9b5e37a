/* test_ops.c - every forward/backward pair against finite differences.
 * Each test builds a scalar loss L = sum(r * forward(inputs)) with a fixed random r, runs the
 * backward with dout = r, and checks each input's and weight's gradient numerically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/ops.h"

static const GradcheckOpts OPTS = {1e-2, 2e-3, 2e-2, 64};

static float *vec(size_t n, unsigned seed, float scale) {
    float *x = calloc(n ? n : 1, sizeof(float));
    if (seed) gc_fill(x, n, seed, scale);
    return x;
}

static double dotr(const float *out, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

/* ------------------------------------------------------------ linear */
typedef struct {
    float *out, *inp, *w, *b, *r;
    size_t M, IC, OC;
} LinearCtx;

static double linear_loss(void *p) {
    LinearCtx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->M, c->IC, c->OC);
    return dotr(c->out, c->r, c->M * c->OC);
}

static void test_linear(void **state) {
    (void)state;
    LinearCtx c = {0};
    c.M = 7, c.IC = 5, c.OC = 6;
    c.out = vec(c.M * c.OC, 0, 0);
    c.inp = vec(c.M * c.IC, 1, 1);
    c.w = vec(c.OC * c.IC, 2, 0.5f);
    c.b = vec(c.OC, 3, 0.5f);
    c.r = vec(c.M * c.OC, 4, 1);
    float *dinp = vec(c.M * c.IC, 0, 0), *dw = vec(c.OC * c.IC, 0, 0), *db = vec(c.OC, 0, 0);
    linear_backward(dinp, dw, db, c.r, c.inp, c.w, c.M, c.IC, c.OC);
    int bad = 0;
    bad += gradcheck_tensor("linear dinp", c.inp, dinp, c.M * c.IC, linear_loss, &c, OPTS);
    bad += gradcheck_tensor("linear dweight", c.w, dw, c.OC * c.IC, linear_loss, &c, OPTS);
    bad += gradcheck_tensor("linear dbias", c.b, db, c.OC, linear_loss, &c, OPTS);
    /* backward accumulates: a second call doubles every gradient */
    float first = dw[3];
    linear_backward(dinp, dw, db, c.r, c.inp, c.w, c.M, c.IC, c.OC);
    assert_float_equal(dw[3], 2 * first, 1e-5);
    assert_int_equal(bad, 0);
    free(c.out), free(c.inp), free(c.w), free(c.b), free(c.r), free(dinp), free(dw), free(db);
}

/* ------------------------------------------------------------ norms */
typedef struct {
    float *out, *mean, *rstd, *inp, *w, *b, *r;
    size_t N, C;
    int rms;
} NormCtx;

static double norm_loss(void *p) {
    NormCtx *c = p;
    if (c->rms)
        rmsnorm_forward(c->out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5f);
    else
        layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
    return dotr(c->out, c->r, c->N * c->C);
}

static void run_norm(int rms) {
    NormCtx c = {0};
    c.N = 6, c.C = 9, c.rms = rms;
    c.out = vec(c.N * c.C, 0, 0);
    c.mean = vec(c.N, 0, 0);
    c.rstd = vec(c.N, 0, 0);
    c.inp = vec(c.N * c.C, 11, 1.5f);
    c.w = vec(c.C, 12, 1);
    c.b = vec(c.C, 13, 1);
    c.r = vec(c.N * c.C, 14, 1);
    float *dinp = vec(c.N * c.C, 0, 0), *dw = vec(c.C, 0, 0), *db = vec(c.C, 0, 0);
    norm_loss(&c);
    if (rms)
        rmsnorm_backward(dinp, dw, c.r, c.inp, c.w, c.rstd, c.N, c.C);
    else
        layernorm_backward(dinp, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    int bad = 0;
    bad += gradcheck_tensor(rms ? "rmsnorm dinp" : "layernorm dinp", c.inp, dinp, c.N * c.C, norm_loss, &c, OPTS);
    bad += gradcheck_tensor(rms ? "rmsnorm dweight" : "layernorm dweight", c.w, dw, c.C, norm_loss, &c, OPTS);
    if (!rms) bad += gradcheck_tensor("layernorm dbias", c.b, db, c.C, norm_loss, &c, OPTS);
    assert_int_equal(bad, 0);
    free(c.out), free(c.mean), free(c.rstd), free(c.inp), free(c.w), free(c.b), free(c.r), free(dinp), free(dw),
        free(db);
}

static void test_layernorm(void **state) {
    (void)state;
    run_norm(0);
}

static void test_rmsnorm(void **state) {
    (void)state;
    run_norm(1);
}

typedef struct {
    float *out, *rstd, *inp, *qw, *kw, *r;
    size_t N, H, Hkv, hd;
} QkCtx;

static double qk_loss(void *p) {
    QkCtx *c = p;
    qknorm_forward(c->out, c->rstd, c->inp, c->qw, c->kw, c->N, c->H, c->Hkv, c->hd, 1e-5f);
    return dotr(c->out, c->r, c->N * (c->H + 2 * c->Hkv) * c->hd);
}

static void test_qknorm(void **state) {
    (void)state;
    QkCtx c = {0};
    c.N = 5, c.H = 4, c.Hkv = 2, c.hd = 6;
    size_t n = c.N * (c.H + 2 * c.Hkv) * c.hd;
    c.out = vec(n, 0, 0);
    c.rstd = vec(c.N * (c.H + c.Hkv), 0, 0);
    c.inp = vec(n, 21, 1);
    c.qw = vec(c.hd, 22, 1);
    c.kw = vec(c.hd, 23, 1);
    c.r = vec(n, 24, 1);
    float *dinp = vec(n, 0, 0), *dqw = vec(c.hd, 0, 0), *dkw = vec(c.hd, 0, 0);
    qk_loss(&c);
    qknorm_backward(dinp, dqw, dkw, c.r, c.inp, c.qw, c.kw, c.rstd, c.N, c.H, c.Hkv, c.hd);
    int bad = 0;
    bad += gradcheck_tensor("qknorm dinp", c.inp, dinp, n, qk_loss, &c, OPTS);
    bad += gradcheck_tensor("qknorm dq_gain", c.qw, dqw, c.hd, qk_loss, &c, OPTS);
    bad += gradcheck_tensor("qknorm dk_gain", c.kw, dkw, c.hd, qk_loss, &c, OPTS);
    assert_int_equal(bad, 0);
    free(c.out), free(c.rstd), free(c.inp), free(c.qw), free(c.kw), free(c.r), free(dinp), free(dqw), free(dkw);
}

/* ------------------------------------------------------------ elementwise activations */
typedef void (*ew_fwd)(float *, const float *, size_t);
typedef void (*ew_bwd)(float *, const float *, const float *, size_t);
typedef struct {
    ew_fwd f;
    float *out, *inp, *r;
    size_t n;
} EwCtx;

static double ew_loss(void *p) {
    EwCtx *c = p;
    c->f(c->out, c->inp, c->n);
    return dotr(c->out, c->r, c->n);
}

static int run_ew(const char *name, ew_fwd f, ew_bwd b, int away_from_zero) {
    EwCtx c = {f, NULL, NULL, NULL, 40};
    c.out = vec(c.n, 0, 0);
    c.inp = vec(c.n, 31, 1.5f);
    c.r = vec(c.n, 32, 1);
    if (away_from_zero) /* kinks at 0: keep inputs further than eps from it */
        for (size_t i = 0; i < c.n; i++) c.inp[i] += c.inp[i] > 0 ? 0.05f : -0.05f;
    float *d = vec(c.n, 0, 0);
    b(d, c.r, c.inp, c.n);
    int bad = gradcheck_tensor(name, c.inp, d, c.n, ew_loss, &c, OPTS);
    free(c.out), free(c.inp), free(c.r), free(d);
    return bad;
}

static void test_activations(void **state) {
    (void)state;
    int bad = 0;
    bad += run_ew("gelu", gelu_forward, gelu_backward, 0);
    bad += run_ew("relu", relu_forward, relu_backward, 1);
    bad += run_ew("relu2", relu2_forward, relu2_backward, 1);
    assert_int_equal(bad, 0);
}

typedef void (*gated_fwd)(float *, const float *, size_t, size_t);
typedef void (*gated_bwd)(float *, const float *, const float *, size_t, size_t);
typedef struct {
    gated_fwd f;
    float *out, *inp, *r;
    size_t N, F;
} GatedCtx;

static double gated_loss(void *p) {
    GatedCtx *c = p;
    c->f(c->out, c->inp, c->N, c->F);
    return dotr(c->out, c->r, c->N * c->F);
}

static int run_gated(const char *name, gated_fwd f, gated_bwd b) {
    GatedCtx c = {f, NULL, NULL, NULL, 4, 7};
    c.out = vec(c.N * c.F, 0, 0);
    c.inp = vec(2 * c.N * c.F, 41, 1.5f);
    c.r = vec(c.N * c.F, 42, 1);
    float *d = vec(2 * c.N * c.F, 0, 0);
    b(d, c.r, c.inp, c.N, c.F);
    int bad = gradcheck_tensor(name, c.inp, d, 2 * c.N * c.F, gated_loss, &c, OPTS);
    free(c.out), free(c.inp), free(c.r), free(d);
    return bad;
}

static void test_gated(void **state) {
    (void)state;
    int bad = run_gated("swiglu", swiglu_forward, swiglu_backward) + run_gated("geglu", geglu_forward, geglu_backward);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------ residual, softcap */
typedef struct {
    float *out, *a, *b, *r;
    size_t n;
    float cap;
} PairCtx;

static double residual_loss(void *p) {
    PairCtx *c = p;
    residual_forward(c->out, c->a, c->b, c->n);
    return dotr(c->out, c->r, c->n);
}

static double softcap_loss(void *p) {
    PairCtx *c = p;
    softcap_forward(c->out, c->a, c->n, c->cap);
    return dotr(c->out, c->r, c->n);
}

static void test_residual_softcap(void **state) {
    (void)state;
    PairCtx c = {NULL, NULL, NULL, NULL, 30, 3.0f};
    c.out = vec(c.n, 0, 0);
    c.a = vec(c.n, 51, 4);
    c.b = vec(c.n, 52, 1);
    c.r = vec(c.n, 53, 1);
    float *da = vec(c.n, 0, 0), *db = vec(c.n, 0, 0), *dc = vec(c.n, 0, 0);
    residual_backward(da, db, c.r, c.n);
    softcap_backward(dc, c.r, c.a, c.n, c.cap);
    int bad = 0;
    bad += gradcheck_tensor("residual da", c.a, da, c.n, residual_loss, &c, OPTS);
    bad += gradcheck_tensor("residual db", c.b, db, c.n, residual_loss, &c, OPTS);
    bad += gradcheck_tensor("softcap", c.a, dc, c.n, softcap_loss, &c, OPTS);
    assert_int_equal(bad, 0);
    free(c.out), free(c.a), free(c.b), free(c.r), free(da), free(db), free(dc);
}

/* ------------------------------------------------------------ embeddings and positions */
typedef struct {
    float *out, *wte, *wpe, *r;
    int *tokens;
    size_t B, T, C, V;
    float scale;
    int mode; /* 0 token embedding, 1 learned positions, 2 sinusoidal */
} EmbCtx;

static double emb_loss(void *p) {
    EmbCtx *c = p;
    size_t N = c->B * c->T;
    embedding_forward(c->out, c->tokens, c->wte, N, c->C, c->scale);
    if (c->mode == 1) posemb_learned_forward(c->out, c->wpe, c->B, c->T, c->C);
    if (c->mode == 2) posemb_sinusoidal_forward(c->out, c->B, c->T, c->C, 0);
    return dotr(c->out, c->r, N * c->C);
}

static void test_embeddings(void **state) {
    (void)state;
    EmbCtx c = {0};
    c.B = 2, c.T = 5, c.C = 6, c.V = 7, c.scale = 1.7f, c.mode = 1;
    size_t N = c.B * c.T;
    int toks[10] = {1, 3, 3, 0, 6, 2, 3, 1, 5, 5}; /* repeats: gradients must add up */
    c.tokens = toks;
    c.out = vec(N * c.C, 0, 0);
    c.wte = vec(c.V * c.C, 61, 1);
    c.wpe = vec(c.T * c.C, 62, 1);
    c.r = vec(N * c.C, 63, 1);
    float *dwte = vec(c.V * c.C, 0, 0), *dwpe = vec(c.T * c.C, 0, 0);
    embedding_backward(dwte, c.r, toks, N, c.C, c.scale);
    posemb_learned_backward(dwpe, c.r, c.B, c.T, c.C);
    int bad = 0;
    /* row 4 of wte is never used: its gradient must be exactly zero */
    for (size_t i = 4 * c.C; i < 5 * c.C; i++) assert_true(dwte[i] == 0.0f);
    bad += gradcheck_tensor("embedding dwte", c.wte, dwte, c.V * c.C, emb_loss, &c, OPTS);
    bad += gradcheck_tensor("learned pos dwpe", c.wpe, dwpe, c.T * c.C, emb_loss, &c, OPTS);
    /* sinusoidal table matches the formula */
    float *z = vec(c.T * c.C, 0, 0);
    posemb_sinusoidal_forward(z, 1, c.T, c.C, 0);
    assert_float_equal(z[3 * c.C + 2], sin(3.0 / pow(10000.0, 2.0 / 6.0)), 1e-6);
    assert_float_equal(z[3 * c.C + 3], cos(3.0 / pow(10000.0, 2.0 / 6.0)), 1e-6);
    assert_int_equal(bad, 0);
    free(c.out), free(c.wte), free(c.wpe), free(c.r), free(dwte), free(dwpe), free(z);
}

typedef struct {
    float *x, *work, *r, *cosb, *sinb;
    size_t B, T, stride, nrot, hd;
} RopeCtx;

static double rope_loss(void *p) {
    RopeCtx *c = p;
    size_t n = c->B * c->T * c->stride;
    memcpy(c->work, c->x, n * sizeof(float));
    rope_forward(c->work, c->cosb, c->sinb, c->B, c->T, c->stride, c->nrot, c->hd, 0);
    return dotr(c->work, c->r, n);
}

static void test_rope(void **state) {
    (void)state;
    RopeCtx c = {0};
    c.B = 2, c.T = 6, c.hd = 8, c.nrot = 3, c.stride = 4 * 8; /* 3 rotated heads, 1 passed through */
    size_t n = c.B * c.T * c.stride;
    c.x = vec(n, 71, 1);
    c.work = vec(n, 0, 0);
    c.r = vec(n, 72, 1);
    c.cosb = vec(c.T * c.hd / 2, 0, 0);
    c.sinb = vec(c.T * c.hd / 2, 0, 0);
    rope_tables(c.cosb, c.sinb, c.T, c.hd, 100.0f);
    float *d = vec(n, 0, 0);
    memcpy(d, c.r, n * sizeof(float));
    rope_backward(d, c.cosb, c.sinb, c.B, c.T, c.stride, c.nrot, c.hd, 0);
    int bad = gradcheck_tensor("rope", c.x, d, n, rope_loss, &c, (GradcheckOpts){1e-2, 2e-3, 2e-2, 0});
    /* rotation preserves the norm of each rotated pair */
    rope_loss(&c);
    size_t row = 1 * c.stride;
    double before = c.x[row + 1] * c.x[row + 1] + c.x[row + 5] * c.x[row + 5];
    double after = c.work[row + 1] * c.work[row + 1] + c.work[row + 5] * c.work[row + 5];
    assert_float_equal(before, after, 1e-5);
    assert_int_equal(bad, 0);
    free(c.x), free(c.work), free(c.r), free(c.cosb), free(c.sinb), free(d);
}

/* ------------------------------------------------------------ attention */
typedef struct {
    float *out, *att, *qkv, *r, *scratch;
    size_t B, T, H, Hkv, hd;
} AttnCtx;

static double attn_loss(void *p) {
    AttnCtx *c = p;
    attention_forward(c->out, c->att, c->scratch, c->qkv, c->B, c->T, c->H, c->Hkv, c->hd);
    return dotr(c->out, c->r, c->B * c->T * c->H * c->hd);
}

/* Plain reference: full scores with a -inf mask, softmax, weighted sum of values. */
static void attention_reference(float *out, const float *qkv, size_t B, size_t T, size_t H, size_t Hkv, size_t hd) {
    size_t stride = (H + 2 * Hkv) * hd;
    double *s = calloc(T, sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++) {
                size_t kh = h / (H / Hkv);
                double mx = -INFINITY, sum = 0;
                for (size_t u = 0; u < T; u++) {
                    if (u > t) {
                        s[u] = -INFINITY;
                        continue;
                    }
                    double d = 0;
                    for (size_t i = 0; i < hd; i++)
                        d += (double)qkv[(b * T + t) * stride + h * hd + i] * qkv[(b * T + u) * stride + (H + kh) * hd + i];
                    s[u] = d / sqrt((double)hd);
                    if (s[u] > mx) mx = s[u];
                }
                for (size_t u = 0; u < T; u++) sum += (s[u] = exp(s[u] - mx));
                for (size_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (size_t u = 0; u < T; u++) o += s[u] / sum * qkv[(b * T + u) * stride + (H + Hkv + kh) * hd + i];
                    out[(b * T + t) * H * hd + h * hd + i] = (float)o;
                }
            }
    free(s);
}

static void run_attention(size_t H, size_t Hkv) {
    AttnCtx c = {0};
    c.B = 2, c.T = 7, c.H = H, c.Hkv = Hkv, c.hd = 4;
    size_t nqkv = c.B * c.T * (c.H + 2 * c.Hkv) * c.hd, nout = c.B * c.T * c.H * c.hd;
    c.out = vec(nout, 0, 0);
    c.att = vec(c.B * c.H * c.T * c.T, 0, 0);
    c.qkv = vec(nqkv, 81, 1);
    c.r = vec(nout, 82, 1);
    float *ref = vec(nout, 0, 0), *d = vec(nqkv, 0, 0);
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(c.T, c.hd), 0, 0);
    c.scratch = scratch;
    attn_loss(&c);
    attention_reference(ref, c.qkv, c.B, c.T, c.H, c.Hkv, c.hd);
    for (size_t i = 0; i < nout; i++) assert_float_equal(c.out[i], ref[i], 1e-5);
    attention_backward(d, scratch, c.r, c.qkv, c.att, c.B, c.T, c.H, c.Hkv, c.hd);
    char name[32];
    snprintf(name, sizeof name, "attention H%zu/kv%zu", H, Hkv);
    int bad = gradcheck_tensor(name, c.qkv, d, nqkv, attn_loss, &c, (GradcheckOpts){1e-2, 2e-3, 2e-2, 0});
    assert_int_equal(bad, 0);
    free(c.out), free(c.att), free(c.qkv), free(c.r), free(ref), free(d), free(scratch);
}

static void test_attention_mha(void **state) {
    (void)state;
    run_attention(4, 4);
}
static void test_attention_gqa(void **state) {
    (void)state;
    run_attention(4, 2);
}
static void test_attention_mqa(void **state) {
    (void)state;
    run_attention(3, 1);
}

/* The fast kernels (transposed heads, blocks of 64 keys, ap_expf) against the plain ones in
 * reference.c on a shape with more than one key block, a ragged last block and GQA. */
static void test_attention_fast_matches_reference(void **state) {
    (void)state;
    size_t B = 2, T = 131, H = 4, Hkv = 2, hd = 12, stride = (H + 2 * Hkv) * hd;
    size_t nqkv = B * T * stride, nout = B * T * H * hd, natt = B * H * T * T;
    float *qkv = vec(nqkv, 91, 2), *g = vec(nout, 92, 1);
    /* att starts as garbage: each forward must write every entry its backward reads */
    float *out = vec(nout, 0, 0), *out_ref = vec(nout, 0, 0), *att = vec(natt, 93, 50), *att_ref = vec(natt, 94, 50);
    float *d = vec(nqkv, 0, 0), *d_ref = vec(nqkv, 0, 0), *d_cross = vec(nqkv, 0, 0);
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(T, hd), 0, 0);
    attention_forward(out, att, scratch, qkv, B, T, H, Hkv, hd);
    attention_forward_ref(out_ref, att_ref, scratch, qkv, B, T, H, Hkv, hd);
    for (size_t i = 0; i < nout; i++) assert_float_equal(out[i], out_ref[i], 2e-5 * (1 + fabsf(out_ref[i])));
    for (size_t bh = 0; bh < B * H; bh++)
        for (size_t t = 0; t < T; t++)
            for (size_t j = 0; j <= t; j++) {
                size_t k = (bh * T + t) * T + j;
                assert_float_equal(att[k], att_ref[k], 2e-6 + 2e-5 * att_ref[k]);
            }
    attention_backward(d, scratch, g, qkv, att, B, T, H, Hkv, hd);
    attention_backward_ref(d_ref, scratch, g, qkv, att_ref, B, T, H, Hkv, hd);
    for (size_t i = 0; i < nqkv; i++) assert_float_equal(d[i], d_ref[i], 5e-5 * (1 + fabsf(d_ref[i])));
    /* the fast backward also accepts the reference forward's probabilities (the contract in ops.h) */
    attention_backward(d_cross, scratch, g, qkv, att_ref, B, T, H, Hkv, hd);
    for (size_t i = 0; i < nqkv; i++) assert_float_equal(d_cross[i], d_ref[i], 5e-5 * (1 + fabsf(d_ref[i])));
    free(qkv), free(g), free(out), free(out_ref), free(att), free(att_ref), free(d), free(d_ref), free(d_cross);
    free(scratch);
}

/* The decode kernel against the rows of the batched one: query t attends to a cache of t + 1 keys,
 * read in place from the training layout (rows QKV floats apart). */
static void run_attention_decode(size_t H, size_t Hkv) {
    size_t T = 70, hd = 8, stride = (H + 2 * Hkv) * hd, C = H * hd; /* T > 64: two query blocks */
    float *qkv = vec(T * stride, 95, 2), *out = vec(T * C, 0, 0), *att = vec(H * T * T, 0, 0);
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(T, hd), 0, 0);
    float *y = vec(C, 0, 0), *p = vec(H * T, 0, 0);
    attention_forward(out, att, scratch, qkv, 1, T, H, Hkv, hd);
    double worst_out = 0, worst_att = 0;
    for (size_t t = 0; t < T; t++) {
        attention_decode_forward(y, p, qkv + t * stride, qkv + H * hd, qkv + (H + Hkv) * hd, t + 1, H, Hkv, hd,
                                 stride);
        double d = 0, norm = 0; /* relative to the row's largest entry: single entries may cancel to ~0 */
        for (size_t i = 0; i < C; i++) {
            d = fmax(d, fabs(y[i] - out[t * C + i]));
            norm = fmax(norm, fabs(out[t * C + i]));
        }
        worst_out = fmax(worst_out, d / norm);
        for (size_t h = 0; h < H; h++)
            for (size_t j = 0; j <= t; j++)
                worst_att = fmax(worst_att, fabs(p[h * (t + 1) + j] - att[(h * T + t) * T + j]));
    }
    printf("  attention decode H%zu/kv%zu: max rel diff out %.2e, max abs diff probabilities %.2e\n", H, Hkv,
           worst_out, worst_att);
    assert_true(worst_out < 1e-5);
    assert_true(worst_att < 2e-6);
    free(qkv), free(out), free(att), free(scratch), free(y), free(p);
}

static void test_attention_decode(void **state) {
    (void)state;
    run_attention_decode(4, 4);
    run_attention_decode(4, 2);
    run_attention_decode(3, 1);
}

/* ------------------------------------------------------------ LSTM cell */
/* One time step inside a (B, T, .) layout, as the training loop calls it: rows ld = T*H apart,
 * the previous cell state in another layout (ld_prev). L = sum(rh * h) + sum(rc * c). */
typedef struct {
    float *z, *work, *h, *c, *tc, *c_prev, *rh, *rc;
    size_t B, H, ld, ld_prev;
} CellCtx;

static double cell_loss(void *p) {
    CellCtx *c = p;
    memcpy(c->work, c->z, c->B * 4 * c->ld * sizeof(float)); /* the forward turns z into activations */
    lstm_cell_forward(c->h, c->c, c->tc, c->work, c->c_prev, c->B, c->H, c->ld, c->ld_prev);
    double s = 0;
    for (size_t b = 0; b < c->B; b++)
        for (size_t j = 0; j < c->H; j++)
            s += (double)c->h[b * c->ld + j] * c->rh[b * c->H + j] + (double)c->c[b * c->ld + j] * c->rc[b * c->H + j];
    return s;
}

static void test_lstm_cell(void **state) {
    (void)state;
    CellCtx c = {0};
    c.B = 3, c.H = 5, c.ld = 2 * 5, c.ld_prev = 5;
    size_t nz = c.B * 4 * c.ld, nh = c.B * c.ld, nb = c.B * c.H;
    c.z = vec(nz, 101, 1.5f);
    c.work = vec(nz, 0, 0);
    c.h = vec(nh, 0, 0), c.c = vec(nh, 0, 0), c.tc = vec(nh, 0, 0);
    c.c_prev = vec(c.B * c.ld_prev, 102, 1);
    c.rh = vec(nb, 103, 1), c.rc = vec(nb, 104, 1);
    float *dz = vec(nz, 0, 0), *dc_prev = vec(nb, 0, 0);
    cell_loss(&c);
    /* the forward's values: c = f * c_prev + i * g, h = o * tanh(c) */
    for (size_t b = 0; b < c.B; b++)
        for (size_t j = 0; j < c.H; j++) {
            const float *z = c.z + b * 4 * c.ld;
            double si = 1 / (1 + exp(-z[j])), sf = 1 / (1 + exp(-z[c.H + j])), g = tanh(z[2 * c.H + j]);
            double so = 1 / (1 + exp(-z[3 * c.H + j])), cc = sf * c.c_prev[b * c.ld_prev + j] + si * g;
            assert_float_equal(c.c[b * c.ld + j], cc, 1e-6);
            assert_float_equal(c.h[b * c.ld + j], so * tanh(cc), 1e-6);
        }
    /* dc carries rc in and the gradient of c_prev out, in place as the training loop does */
    memcpy(dc_prev, c.rc, nb * sizeof(float));
    lstm_cell_backward(dz, dc_prev, c.rh, dc_prev, c.work, c.c_prev, c.tc, c.B, c.H, c.ld, c.ld_prev);
    int bad = 0;
    bad += gradcheck_tensor("lstm cell dz", c.z, dz, nz, cell_loss, &c, OPTS);
    bad += gradcheck_tensor("lstm cell dc_prev", c.c_prev, dc_prev, c.B * c.ld_prev, cell_loss, &c, OPTS);
    /* the rows of z outside the step's H columns are not the cell's: their gradient stays 0 */
    for (size_t b = 0; b < c.B; b++)
        for (size_t i = 4 * c.H; i < 4 * c.ld; i++) assert_true(dz[b * 4 * c.ld + i] == 0.0f);
    /* a decoder's in-place state update (c aliasing c_prev) gives the same bits */
    float *state_c = vec(c.H, 0, 0), *h1 = vec(c.H, 0, 0), *tc1 = vec(c.H, 0, 0), *z1 = vec(4 * c.H, 0, 0);
    memcpy(state_c, c.c_prev, c.H * sizeof(float));
    memcpy(z1, c.z, 4 * c.H * sizeof(float));
    lstm_cell_forward(h1, state_c, tc1, z1, state_c, 1, c.H, c.H, c.H);
    cell_loss(&c);
    for (size_t j = 0; j < c.H; j++) {
        assert_true(state_c[j] == c.c[j]);
        assert_true(h1[j] == c.h[j]);
    }
    assert_int_equal(bad, 0);
    free(c.z), free(c.work), free(c.h), free(c.c), free(c.tc), free(c.c_prev), free(c.rh), free(c.rc), free(dz),
        free(dc_prev), free(state_c), free(h1), free(tc1), free(z1);
}

/* ------------------------------------------------------------ cross-entropy */
typedef struct {
    float *logits, *probs, *losses;
    int *targets;
    size_t N, V;
} XentCtx;

static double xent_loss(void *p) {
    XentCtx *c = p;
    crossentropy_softmax_forward(c->losses, c->probs, c->logits, c->targets, c->N, c->V);
    double s = 0;
    for (size_t n = 0; n < c->N; n++) s += c->losses[n];
    return s / (double)c->N;
}

static void test_crossentropy(void **state) {
    (void)state;
    int targets[6] = {0, 4, 2, -1, 9, 9}; /* -1: ignored */
    XentCtx c = {0};
    c.N = 6, c.V = 10, c.targets = targets;
    c.logits = vec(c.N * c.V, 91, 3);
    c.probs = vec(c.N * c.V, 0, 0);
    c.losses = vec(c.N, 0, 0);
    xent_loss(&c);
    assert_true(c.losses[3] == 0.0f);
    /* huge logits stay finite */
    float *big = vec(c.V, 0, 0), pbig[10], lbig;
    big[0] = 1e4f, big[1] = -1e4f;
    int t0 = 1;
    crossentropy_softmax_forward(&lbig, pbig, big, &t0, 1, c.V);
    assert_true(isfinite(lbig));
    assert_float_equal(lbig, 2e4, 1.0);
    float *d = vec(c.N * c.V, 0, 0);
    crossentropy_softmax_backward(d, c.probs, c.targets, 1.0f / (float)c.N, c.N, c.V);
    int bad = gradcheck_tensor("softmax+xent", c.logits, d, c.N * c.V, xent_loss, &c, (GradcheckOpts){1e-2, 1e-4, 2e-2, 0});
    assert_int_equal(bad, 0);
    free(c.logits), free(c.probs), free(c.losses), free(big), free(d);
}

int main(void) {
    parallel_init(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),         cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),        cmocka_unit_test(test_qknorm),
        cmocka_unit_test(test_activations),    cmocka_unit_test(test_gated),
        cmocka_unit_test(test_residual_softcap), cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_rope),           cmocka_unit_test(test_attention_mha),
        cmocka_unit_test(test_attention_gqa),  cmocka_unit_test(test_attention_mqa),
        cmocka_unit_test(test_attention_fast_matches_reference),
        cmocka_unit_test(test_attention_decode), cmocka_unit_test(test_lstm_cell),
        cmocka_unit_test(test_crossentropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
