/* test_config.c - recipes: presets load, bad input gets a clear message naming the problem,
 * the text form and the recipe form (a run's config.ini) round-trip exactly; learning-rate
 * schedules have their documented shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "strict_float.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "config/config.h"
#include "optim/optim.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/algoprog-test-config-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* the temporary directory goes when the tests do (they left one per run in /tmp) */
static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Loads `text` as a recipe file; returns the status message ("" on success). */
static const char *load_text(const char *text, Config *c) {
    static Status st;
    static char path[512];
    snprintf(path, sizeof path, "%s/r.ini", tmpdir);
    Status wst;
    assert_int_equal(file_write_atomic(path, text, strlen(text), &wst), 0);
    config_defaults(c);
    status_clear(&st);
    if (config_load_recipe(c, path, &st) == 0 && config_resolve(c, &st) == 0) return "";
    return st.msg;
}

static void expect_error(const char *text, const char *fragment) {
    Config c;
    const char *msg = load_text(text, &c);
    if (!strstr(msg, fragment)) {
        printf("recipe:\n%s\nexpected an error containing '%s', got '%s'\n", text, fragment, msg);
        fail();
    }
}

static void test_presets_load(void **state) {
    (void)state;
    const char *presets[] = {"vaswani-2017", "gpt2-2019", "llama-2023", "lstm-2016", "speedrun-2025", "deepseek-2025"};
    for (int i = 0; i < 6; i++) {
        Config c;
        Status st = {0};
        config_defaults(&c);
        assert_int_equal(config_load_recipe(&c, presets[i], &st), 0);
        assert_int_equal(config_resolve(&c, &st), 0);
    }
    Config c;
    Status st = {0};
    config_defaults(&c);
    assert_int_equal(config_load_recipe(&c, "llama-2023", &st), 0);
    assert_int_equal(c.norm, NORM_RMSNORM);
    assert_int_equal(c.pos, POS_ROPE);
    assert_int_equal(c.act, ACT_SWIGLU);
    assert_int_equal(c.bias, 0);
    assert_int_equal(config_load_recipe(&c, "no-such-preset", &st), -1);
    assert_non_null(strstr(st.msg, "no recipe named 'no-such-preset'"));
}

/* The switch table names a published origin for at least 40 switches (`algoprog keys
 * --innovations`); the era's bad shapes are errors that name the key. */
static void test_switches(void **state) {
    (void)state;
    int n, with_origin = 0;
    const ConfigKey *k = config_keys(&n);
    for (int i = 0; i < n; i++) with_origin += k[i].origin[0] != '\0';
    assert_true(with_origin >= 40);
    const struct {
        const char *args[3], *message;
    } bad[] = {
        {{"moe_experts=4", "moe_top_k=5"}, "moe_top_k=5 is more than moe_experts=4"},
        {{"attention=mla", "kv_lora_rank=999"}, "kv_lora_rank=999 is more than d_model"},
        {{"attention=mla", "rope_head_dim=3"}, "rope_head_dim=3"},
        {{"attention=mla", "pos=learned"}, "set pos=rope"},
        {{"mtp_depth=16", "context=8"}, "mtp_depth=16 needs a context"},
        {{"parallel_block=true", "norm_position=post"}, "parallel_block needs norm_position=pre"},
        {{"mup_base_width=32", "init=xavier"}, "use init=normal or gpt2"},
        {{"mup_base_width=32", "optimizer=sgd"}, "not sgd"},
        {{"batch_warmup=0.1", "batch_start=999"}, "batch_start=999: the ramp must start below batch"},
        {{"seq_warmup=0.1", "seq_start=4096"}, "seq_start=4096: the warmup must start below context"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Config c;
        Status st = {0};
        config_defaults(&c);
        assert_int_equal(config_load_recipe(&c, "llama-2023", &st), 0);
        assert_int_equal(config_apply_args(&c, 2, (char **)bad[i].args, &st), 0);
        assert_int_equal(config_resolve(&c, &st), -1);
        if (!strstr(st.msg, bad[i].message)) fail_msg("'%s' does not say '%s'", st.msg, bad[i].message);
    }
}

static void test_bad_recipes(void **state) {
    (void)state;
    expect_error("[optim]\nlrr = 1e-3\n", "unknown key 'lrr' (did you mean 'lr'?)");
    expect_error("[model]\nn_layers = abc\n", "key 'n_layers': 'abc' is not an integer");
    expect_error("[model]\nnorm = batchnorm\n", "'batchnorm' is not one of layernorm|rmsnorm");
    expect_error("[model]\nd_model = 0\n", "key 'd_model': 0 is out of range");
    expect_error("[optim]\nlr = nan\n", "'nan' is not a finite number");
    expect_error("[model]\nqk_norm = maybe\n", "'maybe' is not a boolean");
    expect_error("[model]\nd_model = 130\nn_heads = 4\n", "d_model=130 is not divisible by n_heads=4");
    expect_error("[model]\nn_heads = 4\nn_kv_heads = 3\n", "n_kv_heads=3 must divide n_heads=4");
    expect_error("[model]\nd_model = 12\nn_heads = 4\npos = rope\n", "pos=rope needs an even head dim");
    expect_error("[optim]\nd_model = 64\n", "key 'd_model' belongs in section [model], not [optim]");
    expect_error("[model]\nd_model = 64\nd_model = 32\n", "key 'd_model' repeats line 2");
    expect_error("[model]\nd_model 64\n", ":2: expected 'key = value'");
    expect_error("[model\n", "section header without ']'");
    expect_error("[model]\nn_layers = 64\ncontext = 65536\n[train]\nbatch = 4096\n", "GB of activations");
    expect_error("[train]\nbatch = 8\nbase = gpt2-2019\n", "'base' must be the first key");
}

static void test_base_and_args(void **state) {
    (void)state;
    Config c;
    const char *msg = load_text("base = llama-2023\n[model]\nd_model = 64\n", &c);
    assert_string_equal(msg, "");
    assert_int_equal(c.d_model, 64);
    assert_int_equal(c.norm, NORM_RMSNORM); /* from the base */
    Status st = {0};
    char *args[] = {"model.n_layers=3", "lr=0.5", "seed=18446744073709551615"};
    assert_int_equal(config_apply_args(&c, 3, args, &st), 0);
    assert_int_equal(c.n_layers, 3);
    assert_true(c.lr == 0.5);
    assert_true(c.seed == UINT64_MAX);
    char *bad[] = {"lr"};
    assert_int_equal(config_apply_args(&c, 1, bad, &st), -1);
    assert_non_null(strstr(st.msg, "not of the form key=value"));
    char *bad2[] = {"optim.d_model=3"};
    assert_int_equal(config_apply_args(&c, 1, bad2, &st), -1);
}

static void test_text_roundtrip(void **state) {
    (void)state;
    Config a, b;
    Status st = {0};
    config_defaults(&a);
    assert_int_equal(config_load_recipe(&a, "vaswani-2017", &st), 0);
    char *args[] = {"lr=0.1234567890123", "data=/tmp/has space #and hash.txt", "seed=42"};
    assert_int_equal(config_apply_args(&a, 3, args, &st), 0);
    char *text = config_to_text(&a, 0);
    config_defaults(&b);
    assert_int_equal(config_from_text(&b, text, strlen(text), "roundtrip", &st), 0);
    assert_memory_equal(&a, &b, sizeof a);
    free(text);
}

/* A run's config.ini (config_to_recipe) is a recipe: loading it gives the same resolved config. */
static void test_recipe_roundtrip(void **state) {
    (void)state;
    Config a, b;
    Status st = {0};
    config_defaults(&a);
    assert_int_equal(config_load_recipe(&a, "speedrun-2025", &st), 0);
    char *args[] = {"lr=0.1234567890123", "data=/tmp/has space #and hash.txt", "seed=18446744073709551615"};
    assert_int_equal(config_apply_args(&a, 3, args, &st), 0);
    assert_int_equal(config_resolve(&a, &st), 0);
    char *text = config_to_recipe(&a);
    assert_non_null(strstr(text, "[model]\nfamily = "));
    assert_non_null(strstr(text, "\n[optim]\n"));
    assert_non_null(strstr(text, "\n[train]\n"));
    assert_string_equal(load_text(text, &b), "");
    assert_memory_equal(&a, &b, sizeof a);
    free(text);
}

static void test_schedules(void **state) {
    (void)state;
    Config c;
    config_defaults(&c);
    c.lr = 1.0, c.steps = 100, c.warmup = 10, c.min_lr_frac = 0.1;
    c.schedule = SCHED_COSINE;
    assert_float_equal(schedule_lr(&c, 0), 0.1, 1e-12);  /* warmup: (step+1)/warmup */
    assert_float_equal(schedule_lr(&c, 9), 1.0, 1e-12);
    assert_float_equal(schedule_lr(&c, 10), 1.0, 1e-12); /* peak right after warmup */
    assert_float_equal(schedule_lr(&c, 55), 0.55, 1e-12); /* half-way: mean of peak and floor */
    assert_float_equal(schedule_lr(&c, 100), 0.1, 1e-12);
    c.schedule = SCHED_LINEAR;
    assert_float_equal(schedule_lr(&c, 55), 0.55, 1e-12);
    c.schedule = SCHED_CONSTANT;
    assert_float_equal(schedule_lr(&c, 99), 1.0, 1e-12);
    c.schedule = SCHED_INVSQRT;
    assert_float_equal(schedule_lr(&c, 39), sqrt(10.0) / sqrt(40.0), 1e-12);
    c.schedule = SCHED_WSD, c.decay_frac = 0.2;
    assert_float_equal(schedule_lr(&c, 79), 1.0, 1e-12); /* stable until the last 20 steps */
    assert_float_equal(schedule_lr(&c, 90), 0.55, 1e-12);
    assert_true(schedule_lr(&c, 99) < 0.2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_load),  cmocka_unit_test(test_switches),
        cmocka_unit_test(test_bad_recipes),
        cmocka_unit_test(test_base_and_args), cmocka_unit_test(test_text_roundtrip),
        cmocka_unit_test(test_recipe_roundtrip),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
