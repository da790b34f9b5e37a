/* test_alloc.c - the size ladder and allocation rules give the documented N and D, and parameter
 * counts computed without building a model equal the built model's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

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
    Status st = {0};
    const char *presets[] = {"llama-2023", "gpt2-2019", "lstm-2016", "deepseek-2025"};
    for (int p = 0; p < 4; p++) {
        Config arm;
        base_config(&arm, presets[p]);
        Ladder l;
        assert_int_equal(ladder_build(&arm, 8, 64, &l, &st), 0);
        assert_true(l.n > 20);
        double worst = 0;
        for (int i = 0; i < l.n; i++) {
            const Config *c = &l.r[i].shape;
            size_t total, ne;
            model_count_params(c, &total, &ne);
            /* N: no embeddings, no head, and of a mixture only what a token goes through */
            assert_int_equal((size_t)l.r[i].n, ne - (total - model_active_params(c)));
            if (c->moe_experts) /* the experts keep the preset's width ratio: d_model at the preset */
                assert_true(c->moe_d_ff >= c->d_model - 8 && c->moe_d_ff <= c->d_model + 8);
            assert_float_equal(l.r[i].fpt, alloc_flops_per_token(c), 1e-9 * l.r[i].fpt);
            if (c->family != FAMILY_LSTM) {
                /* the smallest transformer is 48 wide and 2 deep; aspect ratios stay sensible */
                assert_true(c->d_model >= 48 && c->n_layers >= 2);
                assert_true(c->d_model >= 12 * c->n_layers && c->d_model <= 64 * c->n_layers);
            }
            if (i > 0) {
                assert_true(l.r[i].n >= l.r[i - 1].n);
                if (l.r[i - 1].n > 2e5) worst = fmax(worst, l.r[i].n / l.r[i - 1].n);
            }
        }
        printf("  %s: %d shapes from %.3g to %.3g parameters, largest step %.3fx above 2e5\n", presets[p], l.n,
               l.r[0].n, l.r[l.n - 1].n, worst);
        /* a fine ladder: any target is met within about 12% (15%: expert widths round to 8) */
        assert_true(worst < (arm.moe_experts ? 1.35 : 1.3));
        /* a rung comes back as itself; off the ladder is a clear error */
        const Rung *r;
        assert_int_equal(ladder_nearest(&l, l.r[l.n / 2].n, &r, &st), 0);
        assert_true(r->n == l.r[l.n / 2].n);
        assert_int_equal(ladder_nearest(&l, 10, &r, &st), -1);
        assert_non_null(strstr(st.msg, "outside the size ladder"));
        /* the compute rule: D = r N tokens at the shape's exact FLOPs per token comes nearest C */
        assert_int_equal(ladder_for_compute(&l, 1e14, 20, &r, &st), 0);
        for (int i = 0; i < l.n; i++)
            assert_true(fabs(log(r->fpt * 20 * r->n / 1e14)) <= fabs(log(l.r[i].fpt * 20 * l.r[i].n / 1e14)) + 1e-12);
        ladder_free(&l);
    }
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

static void free_plan(PlannedRun *runs, StudySpec *s) {
    free(runs);
    spec_free(s);
    free(s);
}

static void test_rules(void **state) {
    (void)state;
    const char *head = "[study]\nname = t\ndata = x.txt\ncontext = 64\nbatch = 8\nmin_steps = 1\n";
    char text[1024];
    Status st = {0};
    PlannedRun *runs;
    int n;
    /* chinchilla: a profile of 3 sizes sqrt(2) apart around the shape whose D = 20 N fits the budget */
    snprintf(text, sizeof text, "%sbudgets = 1e13:1e15:3\n[arm a]\npreset = llama-2023\n", head);
    StudySpec *s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 9);
    for (int i = 0; i < n; i++) {
        const PlannedRun *r = &runs[i];
        assert_int_equal(r->budget_index, i / 3);
        assert_int_equal(r->point, i % 3);
        double fpt = alloc_flops_per_token(&r->cfg);
        assert_float_equal(r->flops, r->tokens * fpt, 1.0);
        assert_true(fabs(r->flops / r->budget - 1) < 512 * fpt / r->budget + 1e-9); /* within one step */
        assert_int_equal(r->cfg.steps * 8 * 64, (int)r->tokens);
        assert_int_equal((size_t)r->target_params, r->params_nonembedding);
        if (r->point == 1) { /* the rule's choice: about 20 tokens per parameter */
            double ratio = r->tokens / (double)r->params_nonembedding;
            printf("  budget %.3g: middle N %zu, %.1f tokens per parameter\n", r->budget, r->params_nonembedding, ratio);
            assert_true(ratio > 20 / 1.3 && ratio < 20 * 1.3);
            double lo = (double)runs[i - 1].params_nonembedding, hi = (double)runs[i + 1].params_nonembedding;
            assert_true(lo / (double)r->params_nonembedding > 0.55 && lo / (double)r->params_nonembedding < 0.85);
            assert_true(hi / (double)r->params_nonembedding > 1.2 && hi / (double)r->params_nonembedding < 1.8);
        }
        assert_int_equal(r->keep, r->budget_index == 2 && r->point == 1 && r->seed == 1);
        assert_true(r->params_kaplan >= r->params_nonembedding && r->params_kaplan < r->params);
    }
    free_plan(runs, s);
    /* kaplan: the chinchilla choice at the smallest budget, then N ~ C^0.73, one size per budget */
    snprintf(text, sizeof text, "%sbudgets = 1e13, 1e15\nallocation = kaplan\n[arm a]\npreset = llama-2023\n", head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 2);
    assert_float_equal(runs[1].target_params / runs[0].target_params, pow(100.0, 0.73), 1e-6 * pow(100.0, 0.73));
    assert_true(fabs(log((double)runs[1].params_nonembedding / runs[1].target_params)) < log(1.2));
    free_plan(runs, s);
    /* sweeps: one per recipe, at the profile's middle size, seeds x rates at each sweep budget */
    snprintf(text, sizeof text,
             "%sbudgets = 1e13:1e15:3\nlr_sweep = 3\nlr_sweep_budgets = 0, 2\nlr_sweep_seeds = 2\n[arm a]\npreset = "
             "llama-2023\n[arm k]\npreset = llama-2023\nallocation = kaplan\n",
             head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 2 * 2 * 3 + 9 + 3);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(runs[i].kind, RUN_LR_SWEEP);
        assert_int_equal(runs[i].arm, 0);
        assert_int_equal(runs[i].budget_index, i < 6 ? 0 : 2);
        assert_float_equal(runs[i].lr_mult, pow(2.0, i % 3 - 1), 1e-12);
        assert_int_equal(runs[i].params_nonembedding, runs[12 + (i < 6 ? 1 : 7)].params_nonembedding);
    }
    assert_int_equal(runs[21].tune_arm, 0); /* the kaplan arm shares arm a's sweep */
    assert_int_equal(runs[21].params_nonembedding, runs[12 + 1].params_nonembedding); /* and its first model */
    free_plan(runs, s);
    /* fixed: the given N and D; extra seeds only at the smallest budget */
    snprintf(text, sizeof text,
             "%sallocation = fixed\nfixed_params = 1e5, 4e5\nfixed_tokens = 2e6, 8e6\nextra_seeds = 2\n"
             "[arm a]\npreset = gpt2-2019\n",
             head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), 0);
    assert_int_equal(n, 3 + 1);
    assert_float_equal(runs[0].tokens, 2e6, 8 * 64);
    assert_int_equal(runs[2].seed, 3);
    free_plan(runs, s);
    /* too few steps: refused with the numbers */
    snprintf(text, sizeof text, "%sbudgets = 1e13\nmin_steps = 100000\n[arm a]\npreset = llama-2023\n", head);
    s = load_spec(text);
    assert_int_equal(alloc_plan(s, 257, &runs, &n, &st), -1);
    assert_non_null(strstr(st.msg, "raise the smallest budget"));
    spec_free(s);
    free(s);
}

/* [ablation] design = factorial: every subset of the switches is an arm, named in the section's
 * order; more than 5 switches or an unknown design are refused. */
static void test_factorial_ablation(void **state) {
    (void)state;
    const char *head = "[study]\nname = t\ndata = x.txt\nbudgets = 1e13\n[ablation p]\nbase = gpt2-2019\n";
    const char *sw = "switch rope = pos=rope\nswitch swiglu = act=swiglu\nswitch rms = norm=rmsnorm\nswitch nb = bias=false\n";
    char text[2048];
    snprintf(text, sizeof text, "%s%sdesign = factorial\n", head, sw);
    StudySpec *s = load_spec(text);
    assert_int_equal(s->n_arms, 16);
    const char *want[] = {"p.base", "p.full", "p+rope", "p-rope", "p+rope+swiglu", "p+rope+rms", "p+swiglu+rms",
                          "p+rope+nb", "p+swiglu+nb", "p+rms+nb"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int found = 0;
        for (int a = 0; a < s->n_arms; a++) found += !strcmp(s->arms[a].name, want[i]);
        assert_int_equal(found, 1);
    }
    for (int a = 0; a < s->n_arms; a++) /* p+rope+nb: exactly those two switches' keys */
        if (!strcmp(s->arms[a].name, "p+rope+nb")) {
            assert_int_equal(s->arms[a].n_overrides, 2);
            assert_string_equal(s->arms[a].overrides[0][0], "pos");
            assert_string_equal(s->arms[a].overrides[1][0], "bias");
        }
    spec_free(s);
    free(s);
    snprintf(text, sizeof text, "%s%s", head, sw); /* the default design: 2 + 2k arms */
    s = load_spec(text);
    assert_int_equal(s->n_arms, 10);
    spec_free(s);
    free(s);
    const char *bad[][2] = {{"switch a = act=relu\nswitch b = act=gelu\nswitch c = norm=rmsnorm\nswitch d = bias=false\n"
                             "switch e = pos=rope\nswitch f = tie_embeddings=false\ndesign = factorial\n",
                             "at most 5 switches"},
                            {"switch a = act=relu\nswitch b = act=gelu\ndesign = shapley\n", "design 'shapley'"}};
    for (size_t i = 0; i < 2; i++) {
        char path[] = "/tmp/algoprog-test-alloc-XXXXXX";
        int fd = mkstemp(path);
        snprintf(text, sizeof text, "%s%s[arm x]\npreset = gpt2-2019\n", head, bad[i][0]);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        StudySpec t;
        Status st = {0};
        assert_int_equal(spec_load(&t, path, &st), -1);
        printf("  refused: %s\n", st.msg);
        assert_non_null(strstr(st.msg, bad[i][1]));
        unlink(path);
    }
}

int main(void) {
    parallel_init(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_match_models),
        cmocka_unit_test(test_ladder),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_factorial_ablation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
