/* test_optim.c - Muon's Newton-Schulz orthogonalisation, the weights' moving average (ema_decay).
 * (The full update rules of SGD, Adam, AdamW and Muon are compared with PyTorch in ref_torch.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "optim/optim.h"

/* Eigenvalues of the small Gram matrix O O^T (k x k, symmetric) by Jacobi rotations. */
static void sym_eigen(double *a, int n, double *ev) {
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        if (off < 1e-20) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                if (fabs(a[p * n + q]) < 1e-15) continue;
                double th = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1)), c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = a[i * n + i];
}

static void check_shape(int rows, int cols, unsigned seed) {
    Rng r;
    rng_seed(&r, seed);
    size_t n = (size_t)rows * cols;
    int k = rows < cols ? rows : cols;
    float *G = malloc(n * sizeof(float)), *O = malloc(n * sizeof(float));
    float *ws = malloc((3 * (size_t)k * k + 2 * n) * sizeof(float));
    /* a moderately ill-conditioned matrix: columns scaled over one order of magnitude */
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) G[(size_t)i * cols + j] = rng_normal(&r) * powf(10.0f, -1.0f * j / cols);
    muon_orthogonalize(O, G, rows, cols, 5, ws);
    /* singular values of O = sqrt(eigenvalues of the k x k Gram matrix) */
    double *gram = calloc((size_t)k * k, sizeof(double)), *ev = calloc((size_t)k, sizeof(double));
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double s = 0;
            if (rows <= cols)
                for (int j = 0; j < cols; j++) s += (double)O[(size_t)a * cols + j] * O[(size_t)b * cols + j];
            else
                for (int i = 0; i < rows; i++) s += (double)O[(size_t)i * cols + a] * O[(size_t)i * cols + b];
            gram[a * k + b] = s;
        }
    sym_eigen(gram, k, ev);
    double lo = 1e9, hi = 0;
    for (int i = 0; i < k; i++) {
        double sv = sqrt(fmax(ev[i], 0));
        lo = fmin(lo, sv), hi = fmax(hi, sv);
    }
    printf("  %dx%d: singular values of NS5(G) in [%.3f, %.3f]\n", rows, cols, lo, hi);
    /* the quintic iteration is tuned for speed, not exactness: it lands in about [0.7, 1.2] for the
     * directions that carry signal (much weaker directions are lifted less in 5 steps) */
    assert_true(hi < 1.25);
    assert_true(lo > 0.6);
    /* the same orientation result as on the transpose */
    float *Gt = malloc(n * sizeof(float)), *Ot = malloc(n * sizeof(float));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) Gt[(size_t)j * rows + i] = G[(size_t)i * cols + j];
    muon_orthogonalize(Ot, Gt, cols, rows, 5, ws);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) assert_float_equal(Ot[(size_t)j * rows + i], O[(size_t)i * cols + j], 1e-5);
    free(G), free(O), free(ws), free(gram), free(ev), free(Gt), free(Ot);
}

static void test_newton_schulz(void **state) {
    (void)state;
    check_shape(16, 16, 1);
    check_shape(12, 40, 2);
    check_shape(40, 12, 3);
    /* in place works, and a zero gradient stays zero */
    float z[12] = {0}, ws[3 * 9 + 24];
    muon_orthogonalize(z, z, 3, 4, 5, ws);
    for (int i = 0; i < 12; i++) assert_true(z[i] == 0.0f);
}

/* ema_decay: after each step e = a e + (1 - a) p with a = min(d, (1+t)/(10+t)), from e = p at the
 * start; swapping the average in and out leaves the training weights bit for bit. */
static void test_ema(void **state) {
    (void)state;
    ParamSet ps = {0};
    float *w, *gw, *b, *gb;
    paramset_add(&ps, "w", &w, &gw, PGROUP_MATRIX, PINIT_NORMAL, 0.5f, 4, 3, 0);
    paramset_add(&ps, "b", &b, &gb, PGROUP_VECTOR, PINIT_ONES, 0, 3, 0, 0);
    Status st = {0};
    assert_int_equal(paramset_alloc(&ps, &st), 0);
    Rng r;
    rng_seed(&r, 5);
    paramset_init(&ps, &r);
    Config cfg;
    config_defaults(&cfg);
    cfg.optimizer = OPT_ADAMW, cfg.ema_decay = 0.9;
    Optimizer o;
    assert_int_equal(optim_create(&o, &cfg, &ps, &st), 0);
    size_t n = ps.numel; /* tensors are aligned: there may be padding between them */
    double *e = malloc(n * sizeof *e);
    float *trained = malloc(n * sizeof *trained);
    for (size_t i = 0; i < ps.numel; i++) e[i] = ps.data[i];
    for (int t = 1; t <= 30; t++) {
        for (size_t i = 0; i < ps.numel; i++) ps.grad[i] = rng_normal(&r);
        optim_step(&o, 1e-2);
        optim_ema_update(&o);
        double a = fmin(0.9, (1.0 + t) / (10.0 + t));
        for (size_t i = 0; i < ps.numel; i++) e[i] = a * e[i] + (1 - a) * ps.data[i];
    }
    memcpy(trained, ps.data, n * sizeof *trained);
    double worst = 0;
    for (size_t i = 0; i < ps.numel; i++) worst = fmax(worst, fabs(o.ema[i] - e[i]));
    printf("  ema after 30 steps: max |e - reference| = %.2g\n", worst);
    assert_true(worst < 1e-6);
    optim_eval_weights_in(&o);
    for (size_t i = 0; i < ps.numel; i++) assert_true(ps.data[i] == o.ema[i]);
    assert_true(memcmp(trained, ps.data, n * sizeof *trained) != 0);
    optim_eval_weights_in(&o); /* twice: still the average, the training weights kept */
    optim_eval_weights_out(&o);
    assert_memory_equal(trained, ps.data, n * sizeof *trained);
    free(e), free(trained);
    optim_free(&o);
    paramset_free(&ps);
}

int main(void) {
    parallel_init(2);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_newton_schulz), cmocka_unit_test(test_ema)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
