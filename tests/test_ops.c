/* test_ops.c - every forward/backward pair against finite differences.
 * Each test builds a scalar loss L = sum(r * forward(inputs)) with a fixed random r, runs the
 * backward with dout = r, and checks each input's and weight's gradient numerically. */
#define _DEFAULT_SOURCE /* SA_ONSTACK, setitimer */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

#include <string.h>

#include <omp.h>
#include <signal.h>
#include <sys/time.h>

#include "core/parallel.h"
#include "gradcheck.h"
#include "kernels/attention_tiles.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/small_gemm.h"
#include "models/model.h"

static const GradcheckOpts OPTS = {1e-2, 2e-3, 2e-2, 64};

static float *vec(size_t n, unsigned seed, float scale) {
    float *x = calloc(n ? n : 1, sizeof(float));
    if (seed) gc_fill(x, n, seed, scale);
    return x;
}

/* A gradient buffer holding garbage: a backward that writes over it (GRAD_SET) must not read it. */
static float *nan_vec(size_t n) {
    float *v = vec(n, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    return v;
}

/* GRAD_ADD onto pre gave added; GRAD_SET gave set: added must be pre + set (to rounding). */
static int added_onto(const char *name, const float *added, const float *pre, const float *set, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want = (double)pre[i] + set[i];
        if (!(fabs(added[i] - want) <= 1e-6 * (1.0 + fabs(want)))) bad++;
    }
    if (bad)
        fprintf(stderr, "%s: GRAD_ADD is not the previous contents plus the GRAD_SET gradient at %d of %zu\n", name,
                bad, n);
    return bad;
}

static double dotr(const float *out, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

/* ------------------------------------------------------------ GEMM libraries */
/* The libraries this build can run: OpenBLAS always, oneDNN when linked. */
static int gemm_libs(GemmLib *out) {
    int n = 0;
    out[n++] = GEMM_OPENBLAS;
    if (gemm_have_onednn()) out[n++] = GEMM_ONEDNN;
    return n;
}

static void use_lib(GemmLib lib) {
    Status st;
    assert_int_equal(gemm_use(lib, &st), 0);
}

/* Element (i, j) of op(X) for X stored row-major with leading dimension ld. */
static double op_at(const float *X, size_t ld, int trans, size_t i, size_t j) {
    return trans ? X[j * ld + i] : X[i * ld + j];
}

/* x rounded to bfloat16's 8 significant bits, to nearest with ties to even (nearbyint in the
 * default rounding mode): an independent version of gemm.c's bit trick, for normal numbers. */
static double bf16_ref(float x) {
    if (x == 0.0f) return 0.0;
    int e;
    frexp(x, &e);
    return ldexp(nearbyint(ldexp(x, 8 - e)), e - 8);
}

/* The bound of every bf16 check, as a fraction of the sum of |terms|. bf16 keeps 8 significant
 * bits, so rounding to nearest has relative error <= 2^-8 (half of the 2^-7 spacing in [1, 2));
 * a term a*b of two rounded inputs is then off by at most 2 * 2^-8 + 2^-16 (7.83e-3) of |a*b|,
 * and fp32 accumulation adds the fp32 test's 4e-6. Rounded up: 8e-3. */
#define BF16_TOL 8e-3

typedef struct {
    double worst, worst_rounded; /* |error| / sum of |terms|: against the exact inputs, the bf16-rounded ones */
    int checked;
} GemmErr;

/* One product of the reference tests: op(A) op(B) of the shape, transposes tr (bit 0: A, bit 1: B),
 * beta -0.5 or 0 (then C starts as NaN), alpha 0.75, leading dimensions wider than the rows, inputs
 * from seeds seed, seed + 100 and C's from the next hundred's 1. fp32 (bf16 = 0) on lib: within 4e-6 of the sum of |terms|.
 * bf16: within BF16_TOL of it, and within 4e-6 against the inputs rounded to bf16 here. C's padding
 * must stay untouched. */
static void gemm_check_case(const size_t shape[3], int tr, int with_beta, unsigned seed, GemmLib lib, int bf16,
                            GemmErr *e) {
    size_t M = shape[0], N = shape[1], K = shape[2];
    int ta = tr & 1, tb = tr >> 1;
    size_t ra = ta ? K : M, ca = ta ? M : K, rb = tb ? N : K, cb = tb ? K : N;
    size_t lda = ca + 3, ldb = cb + 1, ldc = N + 2;
    float alpha = 0.75f, beta = with_beta ? -0.5f : 0.0f;
    float *A = vec(ra * lda, seed, 1), *B = vec(rb * ldb, seed + 100, 1);
    float *C = vec(M * ldc, seed - (unsigned)(seed % 100) + 201, 1), *C0 = vec(M * ldc, 0, 0);
    if (!with_beta)
        for (size_t i = 0; i < M * ldc; i++)
            if (i % ldc < N) C[i] = NAN;
    memcpy(C0, C, M * ldc * sizeof(float));
    if (bf16) assert_int_equal(gemm_bf16_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), 0);
    else gemm_sgemm_on(lib, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double tol = bf16 ? BF16_TOL : 4e-6;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < ldc; j++) {
            float got = C[i * ldc + j];
            if (j >= N) { /* the padding of C */
                assert_memory_equal(&got, &C0[i * ldc + j], sizeof got);
                continue;
            }
            double sum = 0.0, sum_r = 0.0, mag = 0.0;
            for (size_t k = 0; k < K; k++) {
                double a = op_at(A, lda, ta, i, k), b = op_at(B, ldb, tb, k, j), t = (double)alpha * a * b;
                sum += t, mag += fabs(t);
                if (bf16) sum_r += (double)alpha * bf16_ref((float)a) * bf16_ref((float)b);
            }
            if (with_beta) {
                double c = (double)beta * C0[i * ldc + j];
                sum += c, sum_r += c, mag += fabs(c);
            }
            double err = fabs(got - sum), err_r = bf16 ? fabs(got - sum_r) : 0.0;
            if (mag > 0 && err / mag > e->worst) e->worst = err / mag;
            if (mag > 0 && err_r / mag > e->worst_rounded) e->worst_rounded = err_r / mag;
            if (!(err <= tol * mag + 1e-30) || !(err_r <= 4e-6 * mag + 1e-30)) {
                print_error("%s %zux%zux%zu ta=%d tb=%d beta=%g: C[%zu,%zu] = %.9g, reference %.9g%s\n",
                            bf16 ? "bf16" : gemm_lib_name(lib), M, N, K, ta, tb, (double)beta, i, j, (double)got, sum,
                            bf16 ? " (see the bf16-rounded reference)" : "");
                fail();
            }
            e->checked++;
        }
    free(A), free(B), free(C), free(C0);
}

/* Every library against a double-precision loop: all four transpose pairs, odd shapes, alpha and
 * beta, leading dimensions wider than the rows, and C outside the product untouched. Tolerance:
 * 4e-6 of the sum of the absolute terms |alpha a_ik b_kj| + |beta c_ij| (about 34 ulps of that
 * sum; fp32 accumulation over K <= 300 terms in any order stays well inside it). With beta = 0, C
 * starts as NaN: it must be written, never read. */
static void test_gemm_matches_reference(void **state) {
    (void)state;
    static const size_t SHAPES[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 130, 16}, {130, 64, 257}, {4, 192, 48}};
    GemmLib libs[2];
    int n_libs = gemm_libs(libs);
    int checked = 0;
    for (int li = 0; li < n_libs; li++) {
        GemmErr e = {0};
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++)
            for (int tr = 0; tr < 4; tr++)
                for (int with_beta = 0; with_beta < 2; with_beta++)
                    gemm_check_case(SHAPES[si], tr, with_beta, 101 + (unsigned)si, libs[li], 0, &e);
        printf("  gemm %-8s worst |error| / sum of |terms| = %.2e (tolerance 4e-6)\n", gemm_lib_name(libs[li]), e.worst);
        checked += e.checked;
    }
    assert_true(checked > 0);
}

/* Inside one of our parallel regions each library runs single-threaded (attention's per-head
 * products): every thread's product matches the same product made outside, to rounding. */
static void test_gemm_inside_parallel_region(void **state) {
    (void)state;
    GemmLib libs[2];
    int n_libs = gemm_libs(libs);
    size_t M = 64, N = 200, K = 32, n = 8;
    float *A = vec(n * M * K, 401, 1), *B = vec(K * N, 402, 1), *C = vec(n * M * N, 0, 0), *R = vec(n * M * N, 0, 0);
    for (int li = 0; li < n_libs; li++) {
        for (size_t t = 0; t < n; t++)
            gemm_sgemm_on(libs[li], 0, 1, M, N, K, 1.0f, A + t * M * K, K, B, K, 0.0f, R + t * M * N, N);
#pragma omp parallel for schedule(static)
        for (size_t t = 0; t < n; t++)
            gemm_sgemm_on(libs[li], 0, 1, M, N, K, 1.0f, A + t * M * K, K, B, K, 0.0f, C + t * M * N, N);
        for (size_t i = 0; i < n * M * N; i++) assert_float_equal(C[i], R[i], 1e-5 * (1 + fabsf(R[i])));
    }
    free(A), free(B), free(C), free(R);
}

/* Run to run, with the thread count fixed, each library gives the same bits: the training shapes
 * where a library may split K between threads (dW) and rows (x W^T), and a product under the
 * auto rule's choice. */
static void test_gemm_bit_identical_runs(void **state) {
    (void)state;
    static const size_t SHAPES[][5] = {{256, 256, 4096, 1, 0}, {4096, 384, 128, 0, 1}, {1024, 48, 192, 0, 0}};
    GemmLib libs[3];
    int n_libs = gemm_libs(libs);
    libs[n_libs++] = GEMM_AUTO;
    for (int li = 0; li < n_libs; li++)
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
            size_t M = SHAPES[si][0], N = SHAPES[si][1], K = SHAPES[si][2];
            int ta = (int)SHAPES[si][3], tb = (int)SHAPES[si][4];
            float *A = vec(M * K, 501, 1), *B = vec(K * N, 502, 1), *C = vec(M * N, 503, 1), *first = vec(M * N, 0, 0);
            float *again = vec(M * N, 0, 0);
            for (int r = 0; r < 4; r++) {
                float *out = r ? again : first;
                memcpy(out, C, M * N * sizeof(float));
                gemm_sgemm_on(libs[li], ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 1.0f, out, N);
                if (r) assert_memory_equal(again, first, M * N * sizeof(float));
            }
            free(A), free(B), free(C), free(first), free(again);
        }
}

/* oneDNN 2.6.3's sgemm corrupts the heap when a signal handler runs on the stack of a thread
 * inside it; parallel_init gives every thread an alternate signal stack and handlers use it
 * (SA_ONSTACK, as the CLI's do). A timer signal every 37 us during thousands of products on the
 * shapes that corrupted memory here without that: every result must keep its bits. */
static volatile sig_atomic_t g_ticks;
static void on_tick(int sig) {
    (void)sig;
    g_ticks++;
}

static void test_gemm_under_signals(void **state) {
    (void)state;
    static const size_t SHAPES[][5] = {{64, 16, 256, 0, 0}, {256, 48, 192, 0, 1}, {1024, 48, 192, 0, 0}, {48, 192, 256, 1, 0}};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    GemmLib libs[2];
    int n_libs = gemm_libs(libs);
    for (int li = 0; li < n_libs; li++)
        for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
            size_t M = SHAPES[si][0], N = SHAPES[si][1], K = SHAPES[si][2];
            int ta = (int)SHAPES[si][3], tb = (int)SHAPES[si][4];
            float *A = vec(M * K, 601, 1), *B = vec(K * N, 602, 1), *C = vec(M * N, 0, 0), *R = vec(M * N, 0, 0);
            gemm_sgemm_on(libs[li], ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, R, N);
            struct itimerval on = {{0, 37}, {0, 37}}, off = {{0, 0}, {0, 0}};
            setitimer(ITIMER_REAL, &on, NULL);
            int wrong = 0;
            for (int r = 0; r < 400; r++) {
                gemm_sgemm_on(libs[li], ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
                wrong += memcmp(C, R, M * N * sizeof(float)) != 0;
            }
            setitimer(ITIMER_REAL, &off, NULL);
            assert_int_equal(wrong, 0);
            free(A), free(B), free(C), free(R);
        }
    sigaction(SIGALRM, &old, NULL);
    printf("  %d timer signals during the products, every result intact\n", (int)g_ticks);
    assert_true(g_ticks > 0);
}

/* ------------------------------------------------------------ bf16 products */

/* Teardown of the bf16 tests: a failed one must not leave bf16 on (or forced off) for the rest. */
static int precision_reset(void **state) {
    (void)state;
    Status st;
    gemm_bf16_force_unavailable(0);
    return gemm_set_precision(GEMM_FP32, &st);
}

/* gemm_bf16_sgemm against two double-precision loops, on the fp32 test's odd shapes plus one above
 * the bf16 work rule, all four transpose pairs, alpha, beta 0 and nonzero, leading dimensions wider
 * than the rows, C's padding untouched and, with beta = 0, C only written (it starts as NaN):
 * - the exact inputs, within BF16_TOL of the sum of |terms| (what training sees);
 * - the inputs rounded to bf16 here, within the fp32 test's 4e-6: a product of two bf16 values is
 *   exact in fp32, so this pins the rounding (to nearest even) and fp32 accumulation exactly.
 * The worst error against the exact inputs must also exceed 1e-5, or the product ran in fp32. */
static void test_gemm_bf16_matches_reference(void **state) {
    (void)state;
    if (!gemm_bf16_available()) {
        printf("  bf16 products unavailable here (no oneDNN, or no AVX512-BF16/AMX): skipped\n");
        skip();
    }
    static const size_t SHAPES[][3] = {{1, 1, 1},     {7, 5, 3},    {33, 17, 65},    {64, 130, 16},
                                       {130, 64, 257}, {4, 192, 48}, {257, 129, 200}};
    GemmErr e = {0};
    for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++)
        for (int tr = 0; tr < 4; tr++)
            for (int with_beta = 0; with_beta < 2; with_beta++)
                gemm_check_case(SHAPES[si], tr, with_beta, 701 + (unsigned)si, GEMM_ONEDNN, 1, &e);
    double worst = e.worst, worst_rounded = e.worst_rounded;
    printf("  gemm bf16 worst |error| / sum of |terms| = %.2e (tolerance %.0e); against bf16-rounded inputs %.2e "
           "(tolerance 4e-6)\n",
           worst, BF16_TOL, worst_rounded);
    assert_true(worst > 1e-5);
}

/* precision = bf16 through gemm_sgemm: products at or above GEMM_BF16_MIN_WORK give the bits of
 * gemm_bf16_sgemm, smaller ones the bits of the fp32 library; run to run the bits repeat; inside
 * a parallel region every thread's product (its own cached primitive) matches the one made
 * outside; nothing falls back to fp32; and precision = fp32 gives the fp32 bits again. */
static void test_gemm_bf16_precision(void **state) {
    (void)state;
    if (!gemm_bf16_available()) skip();
    Status st;
    size_t M = 256, N = 192, K = 128, n = 6; /* 6.3M multiply-adds: bf16 */
    assert_true(gemm_bf16_applies(M, N, K) && !gemm_bf16_applies(64, 64, 64));
    float *A = vec(n * M * K, 1001, 1), *B = vec(K * N, 1002, 1), *C = vec(n * M * N, 0, 0), *R = vec(n * M * N, 0, 0);
    float *D = vec(M * N, 0, 0);
    unsigned long fallbacks = gemm_bf16_fallbacks();
    assert_int_equal(gemm_set_precision(GEMM_BF16, &st), 0);
    assert_int_equal(gemm_precision(), GEMM_BF16);
    for (int r = 0; r < 2; r++) {
        gemm_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, r ? D : C, N);
        if (r) assert_memory_equal(C, D, M * N * sizeof(float));
    }
    assert_int_equal(gemm_bf16_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N), 0);
    assert_memory_equal(C, R, M * N * sizeof(float));
    /* below the rule: the fp32 library's bits */
    gemm_sgemm(0, 1, 64, 64, 64, 1.0f, A, K, B, K, 0.0f, C, 64);
    gemm_sgemm_on(gemm_current(), 0, 1, 64, 64, 64, 1.0f, A, K, B, K, 0.0f, R, 64);
    assert_memory_equal(C, R, 64 * 64 * sizeof(float));
    for (size_t t = 0; t < n; t++) gemm_sgemm(0, 1, M, N, K, 1.0f, A + t * M * K, K, B, K, 0.0f, R + t * M * N, N);
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < n; t++) gemm_sgemm(0, 1, M, N, K, 1.0f, A + t * M * K, K, B, K, 0.0f, C + t * M * N, N);
    for (size_t i = 0; i < n * M * N; i++) assert_float_equal(C[i], R[i], 1e-5 * (1 + fabsf(R[i])));
    assert_int_equal(gemm_bf16_fallbacks(), fallbacks);
    assert_int_equal(gemm_set_precision(GEMM_FP32, &st), 0);
    gemm_sgemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    gemm_sgemm_on(gemm_current(), 0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);
    assert_memory_equal(C, R, M * N * sizeof(float));
    free(A), free(B), free(C), free(R), free(D);
}

/* Where bf16 cannot run (forced here as on a CPU without AVX512-BF16, or a build without oneDNN),
 * asking for it is a clear error, from gemm_set_precision and from model_create with the recipe
 * key, and the precision stays fp32: a bf16 recipe never silently trains in fp32. */
static void test_precision_bf16_unavailable(void **state) {
    (void)state;
    Status st;
    int avail = gemm_bf16_available();
    gemm_bf16_force_unavailable(1);
    assert_false(gemm_bf16_available());
    assert_int_equal(gemm_set_precision(GEMM_BF16, &st), -1);
    assert_int_equal(st.code, AP_EINVAL);
    printf("  %s\n", st.msg);
    assert_non_null(strstr(st.msg, "precision=bf16"));
    assert_non_null(strstr(st.msg, "precision=fp32"));
    assert_int_equal(gemm_precision(), GEMM_FP32);
    float A[6] = {1, 2, 3, 4, 5, 6}, C[4] = {7, 7, 7, 7};
    assert_int_equal(gemm_bf16_sgemm(0, 0, 2, 2, 3, 1.0f, A, 3, A, 2, 0.0f, C, 2), -1);
    assert_true(C[0] == 7 && C[3] == 7);
    Config cfg;
    config_defaults(&cfg);
    cfg.vocab = 16, cfg.precision = PRECISION_BF16;
    Model m;
    Rng rng;
    rng_seed(&rng, 1);
    assert_int_equal(model_create(&m, &cfg, &rng, &st), -1);
    assert_non_null(strstr(st.msg, "precision=bf16"));
    gemm_bf16_force_unavailable(0);
    assert_int_equal(gemm_bf16_available(), avail);
    assert_int_equal(gemm_set_precision(GEMM_BF16, &st), avail ? 0 : -1);
    assert_int_equal(gemm_set_precision(GEMM_FP32, &st), 0);
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

static void run_linear(void) {
    LinearCtx c = {0};
    c.M = 7, c.IC = 5, c.OC = 6;
    c.out = vec(c.M * c.OC, 0, 0);
    c.inp = vec(c.M * c.IC, 1, 1);
    c.w = vec(c.OC * c.IC, 2, 0.5f);
    c.b = vec(c.OC, 3, 0.5f);
    c.r = vec(c.M * c.OC, 4, 1);
    float *dinp = vec(c.M * c.IC, 0, 0), *dw = vec(c.OC * c.IC, 0, 0), *db = vec(c.OC, 0, 0);
    linear_backward(dinp, GRAD_ADD, dw, db, c.r, c.inp, c.w, c.M, c.IC, c.OC);
    int bad = 0;
    bad += gradcheck_tensor("linear dinp", c.inp, dinp, c.M * c.IC, linear_loss, &c, OPTS);
    bad += gradcheck_tensor("linear dweight", c.w, dw, c.OC * c.IC, linear_loss, &c, OPTS);
    bad += gradcheck_tensor("linear dbias", c.b, db, c.OC, linear_loss, &c, OPTS);
    /* backward accumulates: a second call doubles every gradient; GRAD_SET writes dinp over what was there
     * (NaNs included) and still adds to the weights' gradients */
    float first = dw[3], first_in = dinp[2];
    linear_backward(dinp, GRAD_ADD, dw, db, c.r, c.inp, c.w, c.M, c.IC, c.OC);
    assert_float_equal(dw[3], 2 * first, 1e-5);
    assert_float_equal(dinp[2], 2 * first_in, 1e-5);
    for (size_t i = 0; i < c.M * c.IC; i++) dinp[i] = NAN;
    linear_backward(dinp, GRAD_SET, dw, db, c.r, c.inp, c.w, c.M, c.IC, c.OC);
    assert_float_equal(dw[3], 3 * first, 1e-5);
    for (size_t i = 0; i < c.M * c.IC; i++) assert_false(isnan(dinp[i]));
    assert_float_equal(dinp[2], first_in, 1e-6);
    assert_int_equal(bad, 0);
    free(c.out), free(c.inp), free(c.w), free(c.b), free(c.r), free(dinp), free(dw), free(db);
}

/* The linear layer's gradients on each GEMM library. */
static void test_linear(void **state) {
    (void)state;
    GemmLib libs[2];
    int n_libs = gemm_libs(libs);
    for (int li = 0; li < n_libs; li++) {
        use_lib(libs[li]);
        run_linear();
    }
    use_lib(GEMM_AUTO);
}

/* The sum of |terms| of each entry of op(X) op(Y) (M,N), plus |C0| when accumulating into C0. */
static double *abs_terms(const float *X, size_t ldx, int tx, const float *Y, size_t ldy, int ty, const float *C0,
                         size_t M, size_t N, size_t K) {
    double *mag = calloc(M * N, sizeof *mag);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = C0 ? fabs(C0[i * N + j]) : 0.0;
            for (size_t k = 0; k < K; k++) s += fabs(op_at(X, ldx, tx, i, k) * op_at(Y, ldy, ty, k, j));
            mag[i * N + j] = s;
        }
    return mag;
}

/* |a - b| <= BF16_TOL * mag + 1e-6 entry by entry; returns the worst |a - b| / mag. The two sides
 * are fp32 (within 4e-6 of mag of the exact value) and bf16 (within 7.83e-3), so BF16_TOL covers
 * their difference; 1e-6 covers the fp32 rounding of the bias added afterwards. */
static double bf16_close(const char *what, const float *a, const float *b, const double *mag, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (mag[i] > 0 && d / mag[i] > worst) worst = d / mag[i];
        if (!(d <= BF16_TOL * mag[i] + 1e-6)) {
            print_error("%s[%zu]: bf16 %.9g, fp32 %.9g, sum of |terms| %.9g\n", what, i, (double)a[i], (double)b[i],
                        mag[i]);
            fail();
        }
    }
    return worst;
}

/* A linear layer's forward and backward under precision = bf16 against fp32, at a shape whose three
 * products (each 7.9M multiply-adds) all run in bf16, with gradients accumulating into nonzero
 * values (beta = 1): every entry within the bf16 bound of its sum of |terms|, the bias gradient
 * (no product) bit-identical, and some entries different (the products did run in bf16). */
static void test_linear_bf16(void **state) {
    (void)state;
    if (!gemm_bf16_available()) skip();
    Status st;
    size_t M = 256, IC = 160, OC = 192;
    assert_true(gemm_bf16_applies(M, OC, IC) && gemm_bf16_applies(M, IC, OC) && gemm_bf16_applies(OC, IC, M));
    float *inp = vec(M * IC, 21, 1), *w = vec(OC * IC, 22, 0.1f), *b = vec(OC, 23, 0.5f), *dout = vec(M * OC, 24, 1);
    float *dinp0 = vec(M * IC, 25, 1), *dw0 = vec(OC * IC, 26, 1), *db0 = vec(OC, 27, 1);
    float *out[2], *dinp[2], *dw[2], *db[2];
    for (int p = 0; p < 2; p++) { /* 0: fp32, 1: bf16 */
        assert_int_equal(gemm_set_precision(p ? GEMM_BF16 : GEMM_FP32, &st), 0);
        out[p] = vec(M * OC, 0, 0), dinp[p] = vec(M * IC, 0, 0), dw[p] = vec(OC * IC, 0, 0), db[p] = vec(OC, 0, 0);
        memcpy(dinp[p], dinp0, M * IC * sizeof(float));
        memcpy(dw[p], dw0, OC * IC * sizeof(float));
        memcpy(db[p], db0, OC * sizeof(float));
        linear_forward(out[p], inp, w, b, M, IC, OC);
        linear_backward(dinp[p], GRAD_ADD, dw[p], db[p], dout, inp, w, M, IC, OC);
    }
    assert_int_equal(gemm_set_precision(GEMM_FP32, &st), 0);
    double *m_out = abs_terms(inp, IC, 0, w, IC, 1, NULL, M, OC, IC);
    for (size_t i = 0; i < M * OC; i++) m_out[i] += fabs(b[i % OC]);
    double *m_dinp = abs_terms(dout, OC, 0, w, IC, 0, dinp0, M, IC, OC);
    double *m_dw = abs_terms(dout, OC, 1, inp, IC, 0, dw0, OC, IC, M);
    double w1 = bf16_close("out", out[1], out[0], m_out, M * OC);
    double w2 = bf16_close("dinp", dinp[1], dinp[0], m_dinp, M * IC);
    double w3 = bf16_close("dweight", dw[1], dw[0], m_dw, OC * IC);
    printf("  linear bf16 vs fp32, worst |difference| / sum of |terms|: out %.2e, dinp %.2e, dweight %.2e "
           "(tolerance %.0e)\n",
           w1, w2, w3, BF16_TOL);
    assert_memory_equal(db[1], db[0], OC * sizeof(float));
    assert_true(w1 > 1e-5 && w2 > 1e-5 && w3 > 1e-5);
    free(m_out), free(m_dinp), free(m_dw);
    for (int p = 0; p < 2; p++) free(out[p]), free(dinp[p]), free(dw[p]), free(db[p]);
    free(inp), free(w), free(b), free(dout), free(dinp0), free(dw0), free(db0);
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
    float *dinp = nan_vec(n), *dqw = vec(c.hd, 0, 0), *dkw = vec(c.hd, 0, 0); /* dinp written over */
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
typedef void (*ew_bwd)(float *, GradWrite, const float *, const float *, size_t);
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
    float *d = nan_vec(c.n), *acc = vec(c.n, 33, 1), *pre = vec(c.n, 33, 1);
    b(d, GRAD_SET, c.r, c.inp, c.n);
    b(acc, GRAD_ADD, c.r, c.inp, c.n);
    int bad = gradcheck_tensor(name, c.inp, d, c.n, ew_loss, &c, OPTS) + added_onto(name, acc, pre, d, c.n);
    free(c.out), free(c.inp), free(c.r), free(d), free(acc), free(pre);
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
typedef void (*gated_bwd)(float *, GradWrite, const float *, const float *, size_t, size_t);
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
    size_t n = 2 * c.N * c.F;
    float *d = nan_vec(n), *acc = vec(n, 43, 1), *pre = vec(n, 43, 1);
    b(d, GRAD_SET, c.r, c.inp, c.N, c.F);
    b(acc, GRAD_ADD, c.r, c.inp, c.N, c.F);
    int bad = gradcheck_tensor(name, c.inp, d, n, gated_loss, &c, OPTS) + added_onto(name, acc, pre, d, n);
    free(c.out), free(c.inp), free(c.r), free(d), free(acc), free(pre);
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
    float *da = vec(c.n, 0, 0), *db = vec(c.n, 0, 0), *dc = nan_vec(c.n), *acc = vec(c.n, 54, 1), *pre = vec(c.n, 54, 1);
    residual_backward(da, db, c.r, c.n);
    softcap_backward(dc, GRAD_SET, c.r, c.a, c.n, c.cap);
    softcap_backward(acc, GRAD_ADD, c.r, c.a, c.n, c.cap);
    int bad = 0;
    bad += gradcheck_tensor("residual da", c.a, da, c.n, residual_loss, &c, OPTS);
    bad += gradcheck_tensor("residual db", c.b, db, c.n, residual_loss, &c, OPTS);
    bad += gradcheck_tensor("softcap", c.a, dc, c.n, softcap_loss, &c, OPTS);
    bad += added_onto("softcap", acc, pre, dc, c.n);
    assert_int_equal(bad, 0);
    free(c.out), free(c.a), free(c.b), free(c.r), free(da), free(db), free(dc), free(acc), free(pre);
}

/* ------------------------------------------------------------ mixture-of-experts routing */
typedef struct {
    float *logits, *bias, *scores, *gate, *r, *coef, *load;
    int *sel, *sel0;
    size_t N, E, K;
    int sigmoid, aux;
} RouteCtx;

/* sum gate * r, plus the balance loss; the choice of experts must not move under the perturbation */
static double route_loss(void *p) {
    RouteCtx *c = p;
    moe_route_forward(c->scores, c->sel, c->gate, c->logits, c->bias, c->N, c->E, c->K, c->sigmoid);
    assert_memory_equal(c->sel, c->sel0, c->N * c->K * sizeof(int));
    double aux = moe_balance_forward(c->aux ? c->coef : NULL, c->load, c->scores, c->sel, c->N, c->E, c->K, 0.7f,
                                     c->sigmoid);
    return dotr(c->gate, c->r, c->N * c->K) + aux;
}

static void run_route(int sigmoid, int with_bias, int aux) {
    RouteCtx c = {0};
    c.N = 9, c.E = 6, c.K = 2, c.sigmoid = sigmoid, c.aux = aux;
    c.logits = vec(c.N * c.E, 61, 2);
    c.bias = with_bias ? vec(c.E, 62, 0.3f) : NULL;
    c.scores = vec(c.N * c.E, 0, 0), c.gate = vec(c.N * c.K, 0, 0), c.r = vec(c.N * c.K, 63, 1);
    c.coef = vec(c.E, 0, 0), c.load = vec(c.E, 0, 0);
    c.sel = calloc(c.N * c.K, sizeof(int)), c.sel0 = calloc(c.N * c.K, sizeof(int));
    moe_route_forward(c.scores, c.sel0, c.gate, c.logits, c.bias, c.N, c.E, c.K, sigmoid);
    moe_balance_forward(aux ? c.coef : NULL, c.load, c.scores, c.sel0, c.N, c.E, c.K, 0.7f, sigmoid);
    float *dl = vec(c.N * c.E, 0, 0);
    moe_route_backward(dl, c.r, aux ? c.coef : NULL, c.scores, c.sel0, c.gate, c.N, c.E, c.K, sigmoid);
    for (size_t n = 0; n < c.N; n++) /* K distinct experts, the best first */
        for (size_t k = 1; k < c.K; k++) assert_int_not_equal(c.sel0[n * c.K], c.sel0[n * c.K + k]);
    double routed = 0;
    for (size_t e = 0; e < c.E; e++) routed += c.load[e];
    assert_float_equal(routed, (double)(c.N * c.K), 0);
    char name[64];
    snprintf(name, sizeof name, "route %s%s%s", sigmoid ? "sigmoid" : "softmax", with_bias ? " +bias" : "",
             aux ? " +aux" : "");
    int bad = gradcheck_tensor(name, c.logits, dl, c.N * c.E, route_loss, &c, (GradcheckOpts){1e-3, 1e-3, 2e-2, 0});
    assert_int_equal(bad, 0);
    free(c.logits), free(c.bias), free(c.scores), free(c.gate), free(c.r), free(c.coef), free(c.load), free(c.sel),
        free(c.sel0), free(dl);
}

typedef struct {
    float *inp, *rows, *gate, *out, *r;
    int *order, *pos, *eoff, *sel;
    size_t N, E, K, C;
} DispatchCtx;

static double gather_loss(void *p) {
    DispatchCtx *c = p;
    moe_gather_forward(c->rows, c->inp, c->order, c->N * c->K, c->K, c->C);
    return dotr(c->rows, c->r, c->N * c->K * c->C);
}

static double combine_loss(void *p) {
    DispatchCtx *c = p;
    memset(c->out, 0, c->N * c->C * sizeof(float));
    moe_combine_forward(c->out, c->rows, c->gate, c->pos, c->N, c->K, c->C);
    return dotr(c->out, c->r, c->N * c->C);
}

/* Dispatch groups the assignments by expert, stably; gather and combine are its two directions. */
static void test_moe_routing(void **state) {
    (void)state;
    for (int sigmoid = 0; sigmoid <= 1; sigmoid++)
        for (int bias = 0; bias <= 1; bias++) run_route(sigmoid, bias, !bias);
    DispatchCtx c = {0};
    c.N = 7, c.E = 4, c.K = 2, c.C = 5;
    size_t NK = c.N * c.K;
    c.sel = calloc(NK, sizeof(int)), c.order = calloc(NK, sizeof(int)), c.pos = calloc(NK, sizeof(int));
    c.eoff = calloc(c.E + 1, sizeof(int));
    for (size_t i = 0; i < NK; i++) c.sel[i] = (int)((i * 7 + i / 2) % c.E);
    moe_dispatch(c.order, c.pos, c.eoff, c.sel, c.N, c.E, c.K);
    assert_int_equal(c.eoff[0], 0);
    assert_int_equal(c.eoff[c.E], (int)NK);
    for (size_t e = 0; e < c.E; e++)
        for (int j = c.eoff[e]; j < c.eoff[e + 1]; j++) {
            assert_int_equal(c.sel[c.order[j]], (int)e);               /* rows of e are e's */
            assert_int_equal(c.pos[c.order[j]], j);                    /* pos inverts order */
            if (j > c.eoff[e]) assert_true(c.order[j] > c.order[j - 1]); /* stable */
        }
    c.inp = vec(c.N * c.C, 71, 1), c.rows = vec(NK * c.C, 0, 0), c.r = vec(NK * c.C, 72, 1);
    float *dinp = vec(c.N * c.C, 0, 0);
    moe_gather_backward(dinp, c.r, c.pos, c.N, c.K, c.C);
    int bad = gradcheck_tensor("moe gather", c.inp, dinp, c.N * c.C, gather_loss, &c, OPTS);
    free(c.rows), free(c.r);
    c.rows = vec(NK * c.C, 73, 1), c.gate = vec(NK, 74, 1), c.out = vec(c.N * c.C, 0, 0), c.r = vec(c.N * c.C, 75, 1);
    float *drows = vec(NK * c.C, 0, 0), *dgate = vec(NK, 0, 0);
    moe_combine_backward(drows, dgate, c.r, c.rows, c.gate, c.pos, c.N, c.K, c.C);
    bad += gradcheck_tensor("moe combine rows", c.rows, drows, NK * c.C, combine_loss, &c, OPTS);
    bad += gradcheck_tensor("moe combine gates", c.gate, dgate, NK, combine_loss, &c, OPTS);
    assert_int_equal(bad, 0);
    /* loss-free balancing: overloaded experts' biases go down, underloaded ones' up, by the rate */
    float load[4] = {5, 1, 3, 3}, b[4] = {0, 0, 0, 0};
    moe_bias_update(b, load, 4, 0.25f);
    assert_float_equal(b[0], -0.25, 0), assert_float_equal(b[1], 0.25, 0), assert_float_equal(b[2], 0, 0);
    free(c.sel), free(c.order), free(c.pos), free(c.eoff), free(c.inp), free(c.rows), free(c.gate), free(c.out),
        free(c.r), free(dinp), free(drows), free(dgate);
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

/* MLA's pieces: the partial RoPE (the last dr floats of each head) and the key/value assembly. */
typedef struct {
    float *x, *work, *r, *cosb, *sinb, *kvu, *kr, *qkv;
    size_t B, T, H, hd, dn;
} MlaCtx;

static double rope_part_loss(void *p) {
    MlaCtx *c = p;
    size_t stride = 3 * c->H * c->hd, n = c->B * c->T * stride;
    memcpy(c->work, c->x, n * sizeof(float));
    rope_part_forward(c->work, c->cosb, c->sinb, c->B, c->T, stride, c->H, c->hd, c->dn, c->hd - c->dn, 0);
    return dotr(c->work, c->r, n);
}

static double mla_assemble_loss(void *p) {
    MlaCtx *c = p;
    size_t N = c->B * c->T, QKV = 3 * c->H * c->hd;
    memset(c->qkv, 0, N * QKV * sizeof(float));
    mla_assemble_forward(c->qkv, c->kvu, c->kr, N, c->H, c->hd, c->dn);
    return dotr(c->qkv, c->r, N * QKV);
}

static void test_mla_parts(void **state) {
    (void)state;
    MlaCtx c = {0};
    c.B = 2, c.T = 5, c.H = 3, c.hd = 6, c.dn = 2; /* dr = 4 */
    size_t dr = c.hd - c.dn, N = c.B * c.T, QKV = 3 * c.H * c.hd, n = N * QKV, U = c.H * (c.dn + c.hd);
    c.x = vec(n, 81, 1), c.work = vec(n, 0, 0), c.r = vec(n, 82, 1);
    c.cosb = vec(c.T * dr / 2, 0, 0), c.sinb = vec(c.T * dr / 2, 0, 0);
    rope_tables(c.cosb, c.sinb, c.T, dr, 50.0f, NULL);
    float *d = vec(n, 0, 0);
    memcpy(d, c.r, n * sizeof(float));
    rope_part_backward(d, c.cosb, c.sinb, c.B, c.T, QKV, c.H, c.hd, c.dn, dr, 0);
    int bad = gradcheck_tensor("rope part", c.x, d, n, rope_part_loss, &c, (GradcheckOpts){1e-2, 2e-3, 2e-2, 0});
    /* the first dn floats of each query head and everything after the queries pass through */
    rope_part_loss(&c);
    for (size_t i = 0; i < n; i++) {
        size_t col = i % QKV;
        if (col >= c.H * c.hd || col % c.hd < c.dn) assert_true(c.work[i] == c.x[i]);
    }
    c.kvu = vec(N * U, 83, 1), c.kr = vec(N * dr, 84, 1), c.qkv = vec(n, 0, 0);
    float *dkvu = vec(N * U, 0, 0), *dkr = vec(N * dr, 0, 0);
    mla_assemble_backward(dkvu, dkr, c.r, N, c.H, c.hd, c.dn);
    bad += gradcheck_tensor("mla assemble kvu", c.kvu, dkvu, N * U, mla_assemble_loss, &c, OPTS);
    bad += gradcheck_tensor("mla assemble kr", c.kr, dkr, N * dr, mla_assemble_loss, &c, OPTS);
    assert_int_equal(bad, 0);
    free(c.x), free(c.work), free(c.r), free(c.cosb), free(c.sinb), free(c.kvu), free(c.kr), free(c.qkv), free(d),
        free(dkvu), free(dkr);
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
    rope_tables(c.cosb, c.sinb, c.T, c.hd, 100.0f, NULL);
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
    size_t B, T, H, Hkv, hd, W;
    const float *slopes; /* ALiBi, or NULL */
} AttnCtx;

static double attn_loss(void *p) {
    AttnCtx *c = p;
    attention_forward(c->out, c->att, c->scratch, c->qkv, c->B, c->T, c->H, c->Hkv, c->hd, c->W, c->slopes);
    return dotr(c->out, c->r, c->B * c->T * c->H * c->hd);
}

/* Plain reference: full scores with a -inf mask (causal, and outside a window W > 0), softmax,
 * weighted sum of values. */
static void attention_reference(float *out, const float *qkv, size_t B, size_t T, size_t H, size_t Hkv, size_t hd,
                                size_t W, const float *slopes) {
    size_t stride = (H + 2 * Hkv) * hd;
    double *s = calloc(T, sizeof(double));
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++) {
                size_t kh = h / (H / Hkv);
                double mx = -INFINITY, sum = 0;
                for (size_t u = 0; u < T; u++) {
                    if (u > t || (W && u + W <= t)) {
                        s[u] = -INFINITY;
                        continue;
                    }
                    double d = 0;
                    for (size_t i = 0; i < hd; i++)
                        d += (double)qkv[(b * T + t) * stride + h * hd + i] * qkv[(b * T + u) * stride + (H + kh) * hd + i];
                    s[u] = d / sqrt((double)hd) - (slopes ? (double)slopes[h] * (double)(t - u) : 0.0);
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

static void run_attention(size_t H, size_t Hkv, size_t hd, size_t W, int alibi) {
    AttnCtx c = {0};
    c.B = 2, c.T = 7, c.H = H, c.Hkv = Hkv, c.hd = hd, c.W = W;
    float slopes[8];
    alibi_slopes(slopes, H);
    c.slopes = alibi ? slopes : NULL;
    size_t nqkv = c.B * c.T * (c.H + 2 * c.Hkv) * c.hd, nout = c.B * c.T * c.H * c.hd;
    c.out = vec(nout, 0, 0);
    c.att = vec(c.B * c.H * c.T * c.T, 0, 0);
    c.qkv = vec(nqkv, 81, 1);
    c.r = vec(nout, 82, 1);
    float *ref = vec(nout, 0, 0), *d = nan_vec(nqkv); /* written over, every entry */
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(c.T, c.hd), 0, 0);
    c.scratch = scratch;
    attn_loss(&c);
    attention_reference(ref, c.qkv, c.B, c.T, c.H, c.Hkv, c.hd, c.W, c.slopes);
    for (size_t i = 0; i < nout; i++) assert_float_equal(c.out[i], ref[i], 1e-5);
    attention_backward(d, scratch, c.r, c.qkv, c.out, c.att, c.B, c.T, c.H, c.Hkv, c.hd, c.W, c.slopes);
    char name[48];
    snprintf(name, sizeof name, "attention H%zu/kv%zu hd%zu%s%s", H, Hkv, hd, W ? " window" : "", alibi ? " alibi" : "");
    int bad = gradcheck_tensor(name, c.qkv, d, nqkv, attn_loss, &c, (GradcheckOpts){1e-2, 2e-3, 2e-2, 0});
    assert_int_equal(bad, 0);
    free(c.out), free(c.att), free(c.qkv), free(c.r), free(ref), free(d), free(scratch);
}

static void test_attention_mha(void **state) {
    (void)state;
    run_attention(4, 4, 4, 0, 0);
    run_attention(2, 2, 16, 0, 0); /* the default study's head width */
    run_attention(4, 4, 4, 3, 0);  /* a sliding window of 3 keys */
    run_attention(4, 4, 4, 0, 1);  /* ALiBi */
}
static void test_attention_gqa(void **state) {
    (void)state;
    run_attention(4, 2, 4, 0, 0);
    run_attention(4, 2, 16, 0, 1);
}
static void test_attention_mqa(void **state) {
    (void)state;
    run_attention(3, 1, 4, 0, 0);
    run_attention(3, 1, 32, 2, 1);
}

/* The fast kernels (transposed heads, blocks of 64 keys, ap_expf) against the plain ones in
 * reference.c on a shape with more than one key block, a ragged last block and GQA, at head widths
 * 12 (GEMMs on each library), 16 to 64 (attention_tiles.c where the CPU has AVX-512) and 80 (GEMMs). */
static void run_attention_fast_vs_reference(size_t hd, size_t W, int alibi) {
    size_t B = 2, T = 131, H = 4, Hkv = 2, stride = (H + 2 * Hkv) * hd;
    size_t nqkv = B * T * stride, nout = B * T * H * hd, natt = B * H * T * T;
    float *qkv = vec(nqkv, 91, 2), *g = vec(nout, 92, 1);
    /* att starts as garbage: each forward must write every entry its backward reads */
    float *out = vec(nout, 0, 0), *out_ref = vec(nout, 0, 0), *att = vec(natt, 93, 50), *att_ref = vec(natt, 94, 50);
    /* the backward writes over its gradient (ops.h): garbage in it must not show */
    float *d = nan_vec(nqkv), *d_ref = vec(nqkv, 0, 0), *d_cross = nan_vec(nqkv);
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(T, hd), 0, 0);
    float slopes[4];
    alibi_slopes(slopes, H);
    attention_forward(out, att, scratch, qkv, B, T, H, Hkv, hd, W, alibi ? slopes : NULL);
    attention_forward_ref(out_ref, att_ref, scratch, qkv, B, T, H, Hkv, hd, W, alibi ? slopes : NULL);
    for (size_t i = 0; i < nout; i++) assert_float_equal(out[i], out_ref[i], 2e-5 * (1 + fabsf(out_ref[i])));
    /* the tiles without a window keep each row's maximum score and 1 / sum instead (ops.h) */
    int row_stats = att_tiles_usable(hd) && !W;
    for (size_t bh = 0; bh < B * H; bh++)
        for (size_t t = 0; t < T; t++) {
            const float *a = att + bh * T * T, *pr = att_ref + (bh * T + t) * T;
            if (row_stats) { /* the reference's largest probability is e^0 / sum */
                float pmax = 0.0f;
                for (size_t j = 0; j <= t; j++) pmax = fmaxf(pmax, pr[j]);
                assert_float_equal(a[T + t], pmax, 2e-6 + 2e-5 * pmax);
                continue;
            }
            for (size_t j = 0; j <= t; j++) assert_float_equal(a[t * T + j], pr[j], 2e-6 + 2e-5 * pr[j]);
        }
    attention_backward(d, scratch, g, qkv, out, att, B, T, H, Hkv, hd, W, alibi ? slopes : NULL);
    attention_backward_ref(d_ref, scratch, g, qkv, att_ref, B, T, H, Hkv, hd);
    for (size_t i = 0; i < nqkv; i++) assert_float_equal(d[i], d_ref[i], 5e-5 * (1 + fabsf(d_ref[i])));
    /* where the fast path keeps probabilities, its backward also takes the reference forward's (the
     * contract in ops.h) */
    if (!row_stats) {
        attention_backward(d_cross, scratch, g, qkv, out_ref, att_ref, B, T, H, Hkv, hd, W, alibi ? slopes : NULL);
        for (size_t i = 0; i < nqkv; i++) assert_float_equal(d_cross[i], d_ref[i], 5e-5 * (1 + fabsf(d_ref[i])));
    }
    free(qkv), free(g), free(out), free(out_ref), free(att), free(att_ref), free(d), free(d_ref), free(d_cross);
    free(scratch);
}

/* ... with the fast kernels' GEMMs on each library (the reference makes none). */
static void test_attention_fast_matches_reference(void **state) {
    (void)state;
    GemmLib libs[2];
    int n_libs = gemm_libs(libs);
    for (int li = 0; li < n_libs; li++) {
        use_lib(libs[li]);
        run_attention_fast_vs_reference(12, 0, 0);
        run_attention_fast_vs_reference(16, 0, 0); /* on OpenBLAS as GEMMs, on oneDNN on the tiles */
    }
    use_lib(GEMM_AUTO);
    /* widths that are multiples of 16 run on the register tiles where the CPU has AVX-512 */
    printf("  attention: register tiles %s on this CPU\n", att_tiles_usable(16) ? "used" : "not available");
    for (size_t hd = 16; hd <= 80; hd += 16) run_attention_fast_vs_reference(hd, 0, 0);
    /* sliding windows: inside one key block, across blocks (whole blocks skipped), of one key */
    for (size_t hd = 16; hd <= 48; hd += 32) {
        run_attention_fast_vs_reference(hd, 50, 0);
        run_attention_fast_vs_reference(hd, 70, 0);
        run_attention_fast_vs_reference(hd, 1, 0);
    }
    /* ALiBi, alone and in a window */
    run_attention_fast_vs_reference(16, 0, 1);
    run_attention_fast_vs_reference(32, 70, 1);
}

/* The register tiles one by one against double-precision loops, on every head width they take
 * and ragged shapes: rows 1-64 (tiles of 4 and 16 with a partial last one), keys 1-131 (partial
 * vectors, 1-4 vector tails), diagonals from 0 to past the last key, padded strides. Entries a
 * product must not write (right of each tile's last visible key) keep a sentinel; the softmax and
 * its gradient write exact zeros from the last visible key to n and nothing past n. */
/* The few-row products (small_gemm.h) against double-precision loops: rows 1-9 (a ragged tile of
 * 4), columns 1-145 (1-4 vectors a tile, a masked last one), k from 0, strides wider than the
 * rows, overwriting and accumulating. C keeps a sentinel right of column n and below row m. On a
 * CPU without AVX-512 (or with OpenBLAS pinned) this checks the GEMM fallback. */
static void test_small_gemm(void **state) {
    (void)state;
    printf("  small products: %s\n", small_gemm_tiled(4) ? "register tiles" : "the GEMM library (no tiles here)");
    size_t lda = 150, ldb = 160, ldc = 170, checked = 0;
    float *A = vec(10 * lda, 111, 1), *B = vec(150 * ldb, 112, 1), *C0 = vec(10 * ldc, 113, 1), *C = vec(10 * ldc, 0, 0);
    for (size_t m = 1; m <= 9; m += 2)
        for (size_t n = 1; n <= 145; n += 9)
            for (size_t k = 0; k <= 140; k += 47)
                for (int acc = 0; acc <= 1; acc++) {
                    memcpy(C, C0, 10 * ldc * sizeof(float));
                    small_gemm(m, n, k, A, lda, B, ldb, C, ldc, acc);
                    for (size_t i = 0; i < 10; i++)
                        for (size_t j = 0; j < ldc; j++) {
                            if (i >= m || j >= n) {
                                assert_true(C[i * ldc + j] == C0[i * ldc + j]);
                                continue;
                            }
                            double want = acc ? C0[i * ldc + j] : 0.0;
                            for (size_t p = 0; p < k; p++) want += (double)A[i * lda + p] * B[p * ldb + j];
                            assert_float_equal(C[i * ldc + j], want, 1e-5 * (1 + fabs(want)));
                        }
                    checked++;
                }
    printf("  small products: %zu shapes match double-precision loops\n", checked);
    free(A), free(B), free(C0), free(C);
}

static void test_attention_tiles(void **state) {
    (void)state;
    if (!att_tiles_usable(16)) {
        printf("  attention tiles: not available on this CPU (the GEMM path runs every head)\n");
        return;
    }
    size_t T = 131, ldt = 144, checked = 0;
    float *S = vec(64 * T, 0, 0), *A = vec(64 * 80, 101, 1), *X = vec(T * 80, 102, 1), *Bt = vec(80 * ldt, 0, 0);
    float *P0 = vec(64 * T, 103, 1), *P = vec(64 * T, 0, 0), *C = vec(T * 80, 0, 0), *C0 = vec(T * 80, 104, 1);
    float *E = vec(64 * T, 0, 0), *D = vec(64 * T, 0, 0), row_max[64], row_inv[64], row_scale[64];
    for (size_t r = 0; r < 64; r++) row_scale[r] = 0.5f + (float)r / 64.0f;
    for (size_t hd = 16; hd <= 64; hd += 16)
        for (size_t n = 1; n <= T; n += 13)
            for (size_t m = 1; m <= 64; m += (m < 20 ? 3 : 11))
                for (size_t diag = 0; diag <= n + 1; diag += 1 + n / 3) {
                    size_t lda = hd + 3; /* strides wider than the head, as in the qkv rows */
                    att_tiles_transpose(Bt, ldt, X, lda, n, hd);
                    for (size_t i = 0; i < 64 * T; i++) S[i] = 1e30f;
                    att_tiles_scores(S, T, A, lda, Bt, ldt, m, n, hd, diag, 0.5f);
                    for (size_t r = 0; r < m; r++)
                        for (size_t j = 0; j < n; j++) {
                            double want = 0;
                            for (size_t d = 0; d < hd; d++) want += (double)A[r * lda + d] * X[j * lda + d];
                            if (j <= diag + r)
                                assert_float_equal(S[r * T + j], 0.5 * want, 1e-5 * (1 + fabs(want)));
                            else if (j >= ((diag + m + 15) & ~(size_t)15))
                                assert_true(S[r * T + j] == 1e30f); /* past every tile's last vector */
                        }
                    /* rows times, overwriting and accumulating; P's masked entries are zero */
                    for (size_t r = 0; r < m; r++)
                        for (size_t j = 0; j < T; j++) P[r * T + j] = j <= diag + r ? P0[r * T + j] : 0.0f;
                    for (int acc = 0; acc <= 1; acc++)
                        for (int scaled = 0; scaled <= 1; scaled++) {
                            memcpy(C, C0, T * 80 * sizeof(float));
                            att_tiles_rows_times(C, lda, P, T, X, lda, m, n, hd, diag, acc, scaled ? row_scale : NULL);
                            for (size_t r = 0; r < m; r++)
                                for (size_t d = 0; d < hd; d++) {
                                    double want = 0.0;
                                    for (size_t j = 0; j < n && j <= diag + r; j++) want += (double)P[r * T + j] * X[j * lda + d];
                                    want = (scaled ? row_scale[r] : 1.0) * want + (acc ? C0[r * lda + d] : 0.0);
                                    assert_float_equal(C[r * lda + d], want, 1e-5 * (1 + fabs(want)));
                                }
                        }
                    /* columns times: C[j] += sum over the rows that see key j, and C[j] = that sum from
                     * write_from on (those rows start as NaN: never read); write_from off the tiles' grid too */
                    size_t wfs[3] = {n, diag, diag + 5};
                    for (int w = 0; w < 3; w++) {
                        size_t wf = wfs[w];
                        if (wf > n || (w && diag + m < n)) continue; /* keys past diag + m - 1 have no row */
                        memcpy(C, C0, T * 80 * sizeof(float));
                        for (size_t i = wf * lda; i < n * lda; i++) C[i] = NAN;
                        att_tiles_cols_times(C, lda, P, T, A, lda, m, n, hd, diag, wf);
                        for (size_t j = 0; j < n; j++)
                            for (size_t d = 0; d < hd; d++) {
                                double want = j < wf ? C0[j * lda + d] : 0.0;
                                for (size_t r = j > diag ? j - diag : 0; r < m; r++)
                                    want += (double)P[r * T + j] * A[r * lda + d];
                                assert_float_equal(C[j * lda + d], want, 1e-5 * (1 + fabs(want)));
                            }
                    }
                    /* the softmax in place (not yet divided by the sums) and its gradient from recomputed
                     * probabilities; nothing written at or past n */
                    for (size_t i = 0; i < 64 * T; i++) S[i] = E[i] = 4.0f * P0[i];
                    att_tiles_softmax(E, T, m, n, diag, row_max, row_inv);
                    for (size_t r = 0; r < m; r++) {
                        size_t vis = diag + r + 1 < n ? diag + r + 1 : n;
                        double mx = -INFINITY, z = 0;
                        for (size_t j = 0; j < vis; j++) mx = fmax(mx, 4.0 * P0[r * T + j]);
                        for (size_t j = 0; j < vis; j++) z += exp(4.0 * P0[r * T + j] - mx);
                        assert_true(row_max[r] == (float)mx);
                        assert_float_equal(row_inv[r], 1.0 / z, 1e-6 / z);
                        for (size_t j = 0; j < T; j++) {
                            float e = E[r * T + j];
                            if (j < vis)
                                assert_float_equal(e, exp(4.0 * P0[r * T + j] - mx), 1e-6);
                            else if (j < n)
                                assert_true(e == 0.0f);
                            else
                                assert_true(e == 4.0f * P0[r * T + j]);
                        }
                        for (size_t j = 0; j < T; j++) D[r * T + j] = X[(r * T + j) % (T * 80)]; /* dP */
                    }
                    att_tiles_softmax_backward_recompute(D, T, S, T, m, n, diag, row_max, row_inv, A, lda, C0, lda, hd,
                                                         0.25f);
                    for (size_t r = 0; r < m; r++) {
                        size_t vis = diag + r + 1 < n ? diag + r + 1 : n;
                        double go = 0;
                        for (size_t d = 0; d < hd; d++) go += (double)A[r * lda + d] * C0[r * lda + d];
                        for (size_t j = 0; j < T; j++) {
                            double dp = X[(r * T + j) % (T * 80)];
                            float p = S[r * T + j];
                            if (j < vis) { /* the forward's e^(s - max), times 1 / sum: bit for bit */
                                assert_true(p == E[r * T + j] * row_inv[r]);
                                assert_float_equal(D[r * T + j], p * (dp - go) * 0.25, 2e-6 * (1 + fabs(go)));
                            } else if (j < n)
                                assert_true(p == 0.0f && D[r * T + j] == 0.0f);
                            else
                                assert_true(p == 4.0f * P0[r * T + j] && D[r * T + j] == (float)dp);
                        }
                    }
                    checked++;
                }
    printf("  attention tiles: %zu shapes match double-precision loops\n", checked);
    free(S), free(A), free(X), free(Bt), free(P0), free(P), free(C), free(C0), free(E), free(D);
}

/* The decode kernel against the rows of the batched one: query t attends to a cache of t + 1 keys,
 * read in place from the training layout (rows QKV floats apart). */
static void run_attention_decode(size_t H, size_t Hkv, int alibi) {
    size_t T = 70, hd = 8, stride = (H + 2 * Hkv) * hd, C = H * hd; /* T > 64: two query blocks */
    float *qkv = vec(T * stride, 95, 2), *out = vec(T * C, 0, 0), *att = vec(H * T * T, 0, 0);
    float *scratch = vec((size_t)parallel_threads() * attention_scratch_floats(T, hd), 0, 0);
    float *y = vec(C, 0, 0), *p = vec(H * T, 0, 0);
    float slopes[8];
    alibi_slopes(slopes, H);
    const float *sl = alibi ? slopes : NULL;
    attention_forward(out, att, scratch, qkv, 1, T, H, Hkv, hd, 0, sl);
    double worst_out = 0, worst_att = 0;
    for (size_t t = 0; t < T; t++) {
        attention_decode_forward(y, p, qkv + t * stride, qkv + H * hd, qkv + (H + Hkv) * hd, t + 1, H, Hkv, hd,
                                 stride, sl);
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
    printf("  attention decode H%zu/kv%zu%s: max rel diff out %.2e, max abs diff probabilities %.2e\n", H, Hkv,
           alibi ? " alibi" : "", worst_out, worst_att);
    assert_true(worst_out < 1e-5);
    assert_true(worst_att < 2e-6);
    free(qkv), free(out), free(att), free(scratch), free(y), free(p);
}

static void test_attention_decode(void **state) {
    (void)state;
    run_attention_decode(4, 4, 0);
    run_attention_decode(4, 2, 0);
    run_attention_decode(3, 1, 0);
    run_attention_decode(4, 2, 1);
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
    float *logits, *probs, *losses, *logz;
    int *targets;
    size_t N, V;
    float z; /* z-loss coefficient (0: plain cross-entropy) */
} XentCtx;

static double xent_loss(void *p) {
    XentCtx *c = p;
    if (c->z > 0) zloss_forward(c->logz, c->logits, c->N, c->V);
    crossentropy_softmax_forward(c->losses, c->probs, c->logits, c->targets, c->N, c->V);
    double s = 0;
    for (size_t n = 0; n < c->N; n++)
        if (c->targets[n] >= 0) s += c->losses[n] + (c->z > 0 ? c->z * (double)c->logz[n] * c->logz[n] : 0.0);
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
    /* with a z-loss: logz is the log normaliser, and its gradient folds into the probabilities */
    c.z = 0.3f, c.logz = vec(c.N, 0, 0);
    xent_loss(&c);
    for (size_t n = 0; n < c.N; n++) {
        double sum = 0;
        for (size_t v = 0; v < c.V; v++) sum += exp((double)c.logits[n * c.V + v]);
        assert_float_equal(c.logz[n], log(sum), 1e-5 * fabs(log(sum)) + 1e-6);
    }
    zloss_backward(c.probs, c.logz, c.targets, c.z, c.N, c.V);
    crossentropy_softmax_backward(d, c.probs, c.targets, 1.0f / (float)c.N, c.N, c.V);
    bad += gradcheck_tensor("softmax+xent+z", c.logits, d, c.N * c.V, xent_loss, &c, (GradcheckOpts){1e-2, 1e-4, 2e-2, 0});
    free(c.logz);
    assert_int_equal(bad, 0);
    free(c.logits), free(c.probs), free(c.losses), free(big), free(d);
}

/* ------------------------------------------------------------ RoPE context extension */
/* The scaled tables against the formulas (ops.h) and their defining properties: linear at s t is
 * the unscaled table at t; yarn keeps the high frequencies (r > 32 turns per original context),
 * interpolates the low ones (r < 1) like linear, and scales both by 0.1 ln s + 1. */
static void test_rope_scaling(void **state) {
    (void)state;
    enum { T = 256, HD = 16, H2 = HD / 2 };
    const double base = 10000, s = 4, L = 512;
    float c0[T * H2], s0[T * H2], c1[T * H2], s1[T * H2];
    rope_tables(c0, s0, T, HD, (float)base, NULL);
    for (int kind = ROPE_SCALE_LINEAR; kind <= ROPE_SCALE_YARN; kind++) {
        RopeScaling rs = {kind, s, L};
        rope_tables(c1, s1, T, HD, (float)base, &rs);
        double m = kind == ROPE_SCALE_YARN ? 0.1 * log(s) + 1 : 1, b = kind == ROPE_SCALE_NTK ? base * pow(s, HD / (HD - 2.0)) : base;
        int kept = 0, interpolated = 0;
        for (int i = 0; i < H2; i++) {
            double f = pow(b, -2.0 * i / HD), r = L * f / (2 * 3.141592653589793), g = fmin(1, fmax(0, (r - 1) / 31));
            double want = kind == ROPE_SCALE_LINEAR ? f / s : kind == ROPE_SCALE_YARN ? (1 - g) * f / s + g * f : f;
            for (int t = 0; t < T; t += 7) {
                assert_float_equal(c1[t * H2 + i], m * cos(t * want), 2e-6);
                assert_float_equal(s1[t * H2 + i], m * sin(t * want), 2e-6);
            }
            if (kind == ROPE_SCALE_LINEAR)
                for (int t = 0; t * s < T; t++) assert_float_equal(c1[(int)(t * s) * H2 + i], c0[t * H2 + i], 2e-6);
            if (kind == ROPE_SCALE_YARN && r > 32) kept++, assert_float_equal(c1[100 * H2 + i], m * c0[100 * H2 + i], 2e-6);
            if (kind == ROPE_SCALE_YARN && r < 1) interpolated++, assert_float_equal(c1[4 * 25 * H2 + i], m * c0[25 * H2 + i], 2e-6);
        }
        if (kind == ROPE_SCALE_YARN) assert_true(kept > 0 && interpolated > 0);
    }
    RopeScaling one = {ROPE_SCALE_YARN, 1, L}; /* s = 1 is no scaling, whatever the kind */
    rope_tables(c1, s1, T, HD, (float)base, &one);
    assert_memory_equal(c0, c1, sizeof c0);
}

/* ------------------------------------------------------------ distillation */
typedef struct {
    XentCtx x;
    float *q, *dl; /* soft targets; per-position distillation losses */
    float weight, T;
} DistillCtx;

/* (1 - w) cross-entropy + w T^2 KL(q || softmax(z / T)), mean over all positions */
static double distill_loss(void *p) {
    DistillCtx *c = p;
    crossentropy_softmax_forward(c->x.losses, c->x.probs, c->x.logits, c->x.targets, c->x.N, c->x.V);
    distill_forward(c->dl, c->x.probs, c->q, c->x.targets, c->x.N, c->x.V, c->T);
    double s = 0;
    for (size_t n = 0; n < c->x.N; n++) s += (1 - c->weight) * c->x.losses[n] + c->weight * c->dl[n];
    return s / (double)c->x.N;
}

static void test_distillation(void **state) {
    (void)state;
    int targets[5] = {3, -1, 0, 7, 7};
    const float temps[] = {1.0f, 2.5f};
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        DistillCtx c = {0};
        c.x.N = 5, c.x.V = 8, c.x.targets = targets, c.weight = 0.7f, c.T = temps[k];
        size_t NV = c.x.N * c.x.V;
        c.x.logits = vec(NV, 17, 2), c.x.probs = vec(NV, 0, 0), c.x.losses = vec(c.x.N, 0, 0);
        c.dl = vec(c.x.N, 0, 0);
        /* the teacher: its own logits' softmax, tempered */
        float *tl = vec(NV, 29, 2), *tp = vec(NV, 0, 0), *tloss = vec(c.x.N, 0, 0);
        crossentropy_softmax_forward(tloss, tp, tl, targets, c.x.N, c.x.V);
        c.q = vec(NV, 0, 0);
        distill_targets(c.q, tp, c.x.N, c.x.V, c.T);
        for (size_t n = 0; n < c.x.N; n++) { /* q = softmax(teacher logits / T), exactly */
            double m = -INFINITY, sum = 0;
            for (size_t v = 0; v < c.x.V; v++) m = fmax(m, tl[n * c.x.V + v] / c.T);
            for (size_t v = 0; v < c.x.V; v++) sum += exp(tl[n * c.x.V + v] / c.T - m);
            for (size_t v = 0; v < c.x.V; v++)
                assert_float_equal(c.q[n * c.x.V + v], exp(tl[n * c.x.V + v] / c.T - m) / sum, 1e-6);
        }
        /* a student equal to the teacher at T has zero divergence */
        distill_forward(c.dl, c.q, c.q, targets, c.x.N, c.x.V, 1.0f);
        for (size_t n = 0; n < c.x.N; n++) assert_float_equal(c.dl[n], 0, 1e-6);
        distill_loss(&c);
        float *g = vec(NV, 0, 0), *qg = vec(NV, 0, 0);
        memcpy(qg, c.q, NV * sizeof *qg);
        distill_backward(qg, c.x.probs, targets, c.weight, 1.0f / (float)c.x.N, c.x.N, c.x.V, c.T);
        crossentropy_softmax_backward(g, c.x.probs, targets, (1 - c.weight) / (float)c.x.N, c.x.N, c.x.V);
        for (size_t i = 0; i < NV; i++) g[i] += qg[i];
        char name[32];
        snprintf(name, sizeof name, "distill T=%.1f", c.T);
        bad += gradcheck_tensor(name, c.x.logits, g, NV, distill_loss, &c, (GradcheckOpts){1e-2, 1e-4, 2e-2, 0});
        free(c.x.logits), free(c.x.probs), free(c.x.losses), free(c.dl), free(tl), free(tp), free(tloss), free(c.q);
        free(g), free(qg);
    }
    assert_int_equal(bad, 0);
}

int main(void) {
    parallel_init(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_reference), cmocka_unit_test(test_gemm_inside_parallel_region),
        cmocka_unit_test(test_gemm_bit_identical_runs), cmocka_unit_test(test_gemm_under_signals),
        cmocka_unit_test(test_gemm_bf16_matches_reference),
        cmocka_unit_test_teardown(test_gemm_bf16_precision, precision_reset),
        cmocka_unit_test_teardown(test_precision_bf16_unavailable, precision_reset),
        cmocka_unit_test(test_distillation), cmocka_unit_test(test_rope_scaling), cmocka_unit_test(test_linear),         cmocka_unit_test_teardown(test_linear_bf16, precision_reset),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),        cmocka_unit_test(test_qknorm),
        cmocka_unit_test(test_activations),    cmocka_unit_test(test_gated),
        cmocka_unit_test(test_residual_softcap), cmocka_unit_test(test_moe_routing), cmocka_unit_test(test_mla_parts), cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_rope),           cmocka_unit_test(test_attention_mha),
        cmocka_unit_test(test_attention_gqa),  cmocka_unit_test(test_attention_mqa),
        cmocka_unit_test(test_attention_fast_matches_reference),
        cmocka_unit_test(test_attention_tiles),
        cmocka_unit_test(test_small_gemm),
        cmocka_unit_test(test_attention_decode), cmocka_unit_test(test_lstm_cell),
        cmocka_unit_test(test_crossentropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
