/* test_alloc.c - the size ladder and allocation rules give the documented N and D, and parameter
 * counts computed without building a model equal the built model's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/parallel.h"
#include "models/model.h"
#include "study/alloc.h"
#include "study/spec.h"

static void base_config(Config *c, const char *preset) {
    Status st = {0};
    config_defaults(c);
    assert_int_equal(config_load_recipe(c, preset, &st), 0);
    c->vocab = 257;
    c->context = 64;
    c->batch = 8;
    assert_int_equal(config_resolve(c, &st), 0);
}

static void test_counts_match_models(void **state) {
    (void)state;
    const char *presets[] = {"gpt2-2019", "llama-2023", "speedrun-2025", "lstm-2016", "vaswani-2017"};
    for (int i = 0; i < 5; i++) {
        Config c;
        base_config(&c, presets[i]);
        size_t total, ne;
        model_count_params(&c, &total, &ne);
        Model m;
        Rng r;
        Status st = {0};
        rng_seed(&r, 1);
        assert_int_equal(model_create(&m, &c, &r, &st), 0);
        assert_int_equal(total, model_total_params(&m));
        assert_int_equal(ne, model_nonembedding_params(&m));
        model_free(&m);
    }
}

static void test_ladder(void **state) {
    (void)state;
    Config arm, shape;
    Status st = {0};
    base_config(&arm, "llama-2023");
    /* a target that is a ladder point comes back exactly: width 128 -> 4 layers, 4 heads of 32 */
    Config at128 = arm;
    at128.d_model = 128, at128.n_layers = 4, at128.n_heads = 4, at128.d_ff = 0, at128.n_kv_heads = 0;
    assert_int_equal(config_resolve(&at128, &st), 0);
    size_t total, ne;
    model_count_params(&at128, &total, &ne);
    assert_int_equal(ladder_shape(&arm, (double)ne, &shape, &st), 0);
    assert_int_equal(shape.d_model, 128);
    assert_int_equal(shape.n_layers, 4);
    assert_int_equal(shape.n_heads, 4);
    /* larger targets never give smaller models */
    size_t prev = 0;
    for (double n = 3e3; n < 3e7; n *= 1.7) {
        if (ladder_shape(&arm, n, &shape, &st)) printf("target %g: %s\n", n, st.msg);
        assert_int_equal(ladder_shape(&arm, n, &shape, &st), 0);
        model_count_params(&shape, &total, &ne);
        assert_true(ne >= prev);
        assert_true(fabs(log((double)ne / n)) < log(3.0));
        prev = ne;
    }
    /* outside the ladder: a clear error */
    assert_int_equal(ladder_shape(&arm, 10, &shape, &st), -1);
    assert_non_null(strstr(st.msg, "outside the size ladder"));
}

static StudySpec *load_spec(const char *text) {
    char path[] = "/tmp/algoprog-test-alloc-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    StudySpec *s = calloc(1, sizeof *s);
    Status st = {0};
    int rc = spec_load(s, path, &st);
    if (rc) printf("spec: %s\n", st.msg);
    assert_int_equal(rc, 0);
    unlink(path);
    return s;
}

static void test_rules(void **state) {
    (void)state;
    const char *head = "[study]\nname = t\ndata = x.txt\ncontext = 64\nbatch = 8\nmin_steps = 1\n";
    char text[1024];
    Status st = {0};
    PlannedRun *runs;
    int n;
    /* chinchilla: target N = sqrt(C / 120); D = C / exact FLOPs per token, whole steps */
    snprintf(text, sizeof text, "%sbudgets = 1e12:1e14:3\n[arm a]\npreset = llama-2023\n", head);
    StudySpec *s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 3);
    assert_float_equal(runs[1].budget, 1e13, 1e3);
    for (int i = 0; i < n; i++) {
        assert_float_equal(runs[i].target_params, sqrt(runs[i].budget / 120.0), 1e-6 * runs[i].target_params);
        double fpt = alloc_flops_per_token(&runs[i].cfg);
        assert_float_equal(runs[i].flops, runs[i].tokens * fpt, 1.0);
        assert_true(fabs(runs[i].flops / runs[i].budget - 1) < 512 * fpt / runs[i].budget + 1e-9); /* < 1 step */
        assert_int_equal(runs[i].cfg.steps * 8 * 64, (int)runs[i].tokens);
    }
    free(runs);
    spec_free(s);
    free(s);
    /* kaplan: same model as chinchilla at the smallest budget, then N ~ C^0.73 */
    snprintf(text, sizeof text, "%sbudgets = 1e12, 1e14\nallocation = kaplan\n[arm a]\npreset = llama-2023\n", head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_float_equal(runs[0].target_params, sqrt(1e12 / 120.0), 1e-6);
    assert_float_equal(runs[1].target_params / runs[0].target_params, pow(100.0, 0.73), 1e-6);
    free(runs);
    spec_free(s);
    free(s);
    /* isoflop: 5 targets log-spaced over a factor 8 around the chinchilla N */
    snprintf(text, sizeof text, "%sbudgets = 1e14\nallocation = isoflop\n[arm a]\npreset = llama-2023\n", head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 5);
    double mid = sqrt(1e14 / 120.0);
    assert_float_equal(runs[0].target_params, mid / sqrt(8.0), 1e-6 * mid);
    assert_float_equal(runs[2].target_params, mid, 1e-6 * mid);
    assert_float_equal(runs[4].target_params, mid * sqrt(8.0), 1e-6 * mid);
    free(runs);
    spec_free(s);
    free(s);
    /* fixed: the given N and D; sweeps come first and extra seeds only at the smallest budget */
    snprintf(text, sizeof text,
             "%sallocation = fixed\nfixed_params = 1e5, 4e5\nfixed_tokens = 2e6, 8e6\nlr_sweep = 3\nextra_seeds = 2\n"
             "[arm a]\npreset = gpt2-2019\n",
             head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 3 + 3 + 1); /* 3 sweep runs, 3 seeds at the first point, 1 at the second */
    assert_int_equal(runs[0].kind, RUN_LR_SWEEP);
    assert_float_equal(runs[0].lr_mult, 0.5, 1e-12);
    assert_float_equal(runs[2].lr_mult, 2.0, 1e-12);
    assert_float_equal(runs[3].tokens, 2e6, 8 * 64);
    assert_int_equal(runs[5].seed, 3);
    free(runs);
    spec_free(s);
    free(s);
}

int main(void) {
    parallel_init(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_match_models),
        cmocka_unit_test(test_ladder),
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
