/* test_report.c - the report layer on planted results: one claim row per claim in id order, the
 * verdict rules on known gains, and escaping of hostile names in HTML, CSV and JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "report/claims.h"
#include "report/html.h"
#include "report/results.h"
#include "report/tables.h"
#include "train/rundir.h"

static char g_tmp[256];

typedef struct {
    const char *name, *preset;
    int optimizer;
    double gain; /* planted CEG over the law below */
    int moe_experts, n_kv_heads, mla; /* switches the claims read (0: the defaults) */
} PlantedArm;

/* Arms on one law L(C) = E + A (C g)^-alpha: arm i needs g_i times less compute than g = 1. */
static void plant(Results *r, const PlantedArm *arms, int n) {
    memset(r, 0, sizeof *r);
    snprintf(r->info.name, sizeof r->info.name, "esc<&\"'>");
    snprintf(r->info.data, sizeof r->info.data, "data</b>");
    r->info.spec = strdup("[study]\nname = </pre><script>alert(1)</script>\n");
    r->arms = calloc((size_t)n, sizeof *r->arms);
    r->runs = calloc((size_t)n * 12, sizeof *r->runs);
    Status st = {0};
    for (int a = 0; a < n; a++) {
        ResultArm *m = &r->arms[r->n_arms++];
        m->row.id = a + 1;
        snprintf(m->row.name, sizeof m->row.name, "%s", arms[a].name);
        snprintf(m->row.preset, sizeof m->row.preset, "%s", arms[a].preset);
        snprintf(m->row.allocation, sizeof m->row.allocation, "chinchilla");
        snprintf(m->row.lr_source, sizeof m->row.lr_source, "preset \"quoted\" <lr>");
        m->row.lr = 1e-3;
        config_defaults(&m->cfg);
        m->cfg.optimizer = arms[a].optimizer;
        m->cfg.vocab = 256, m->cfg.n_heads = 4;
        if (arms[a].moe_experts) m->cfg.moe_experts = arms[a].moe_experts, m->cfg.moe_top_k = 2, m->cfg.moe_d_ff = 32;
        if (arms[a].n_kv_heads) m->cfg.n_kv_heads = arms[a].n_kv_heads;
        if (arms[a].mla) m->cfg.attention = ATTN_MLA, m->cfg.pos = POS_ROPE;
        assert_int_equal(config_resolve(&m->cfg, &st), 0);
        m->has_cfg = 1;
        assert_int_equal(points_add_arm(&r->ps, m->row.name, &st), a);
        for (int i = 0; i < 6; i++)
            for (int seed = 1; seed <= 2; seed++) { /* two seeds, 0.5% apart: a noise the fits can see */
                double C = 1e10 * pow(100, i / 5.0), L = (1.0 + 30.0 * pow(C * arms[a].gain, -0.15)) * (seed == 1 ? 1.005 : 0.995);
                assert_int_equal(points_add_run(&r->ps, a, sqrt(C / 120), C / (6 * sqrt(C / 120)), C, L, C, seed, &st), 0);
                RunRow *x = &r->runs[r->n_runs++];
                x->id = r->n_runs, x->arm_id = a + 1, x->kind = RUN_MAIN, x->status = RUN_DONE, x->seed = seed;
                snprintf(x->arm, sizeof x->arm, "%s", arms[a].name);
                x->budget = x->flops = C, x->val_bpb = x->test_bpb = L, x->unigram_bpb = NAN;
                x->budget_index = i, x->config = config_to_json(&m->cfg);
                x->params_nonembedding = (long long)sqrt(C / 120);
            }
    }
    r->runs_total = r->runs_done = r->n_runs;
    FitOptions o;
    fit_options_default(&o);
    o.n_boot = 200;
    assert_int_equal(results_fit(r, &o, 0, &st), 0);
    results_ablations(r);
}

static const ClaimResult *claim(const ClaimResult *c, int n, const char *id) {
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].spec->id, id)) return &c[i];
    fail_msg("no claim %s", id);
    return NULL;
}

static void test_claim_rows(void **state) {
    (void)state;
    int n_table;
    const ClaimSpec *t = claims_table(&n_table);
    assert_int_equal(n_table, 15);
    for (int i = 0; i < n_table; i++) {
        char want[16];
        snprintf(want, sizeof want, "C%d", i + 1);
        assert_string_equal(t[i].id, want);
    }
    Results r;
    const PlantedArm arms[] = {{"gpt2", "gpt2-2019", OPT_ADAMW, 1, 0, 0, 0}, {"llama", "llama-2023", OPT_ADAMW, 2.5, 0, 0, 0},
                               {"speedrun-adamw", "speedrun-2025", OPT_ADAMW, 1, 0, 0, 0},
                               {"speedrun", "speedrun-2025", OPT_MUON, 2, 0, 0, 0}};
    plant(&r, arms, 4);
    ClaimResult c[CLAIMS_MAX];
    int n = claims_evaluate(&r, c, CLAIMS_MAX);
    assert_int_equal(n, n_table);
    for (int i = 0; i < n; i++) {
        printf("  %-4s %-38s %.90s\n", c[i].spec->id, c[i].verdict, c[i].result);
        assert_ptr_equal(c[i].spec, &t[i]);
        assert_true(c[i].verdict && c[i].verdict[0] && c[i].result[0]);
    }
    /* a planted 2.5x is more than C2's 1.5x; a planted 2x is C6's "about 2x"; no LSTM arm: C1 untested */
    assert_string_equal(claim(c, n, "C2")->verdict, "contradicts (more than 1.5x)");
    assert_string_equal(claim(c, n, "C6")->verdict, "supports (consistent with about 2x)");
    assert_string_equal(claim(c, n, "C1")->verdict, "not tested");
    assert_non_null(strstr(claim(c, n, "C6")->result, "speedrun over speedrun-adamw"));
    assert_string_equal(claim(c, n, "C14")->verdict, "supports (arithmetic)");
    /* the HTML holds one row per claim */
    StrBuf b = {0};
    ReportOptions o = {200, 42, 0};
    html_render(&r, c, n, NULL, &o, &b);
    assert_false(b.failed);
    int rows = 0;
    for (const char *p = strstr(b.s, "id=\"claims-table\""); p && (p = strstr(p, "<tr class=\"v-")); p++) rows++;
    assert_int_equal(rows, n);
    sb_free(&b);
    results_free(&r);
}

/* Validated extrapolation in the report: planted laws predict their held-out budget, and a CEG is read
 * from the laws; once an arm's law misses it, that arm's CEGs are read by local interpolation and say
 * why. */
static void test_holdout_gates_law(void **state) {
    (void)state;
    Results r;
    const PlantedArm arms[] = {{"gpt2", "gpt2-2019", OPT_ADAMW, 1, 0, 0, 0}, {"llama", "llama-2023", OPT_ADAMW, 2, 0, 0, 0}};
    plant(&r, arms, 2);
    for (int a = 0; a < 2; a++) {
        const Holdout *h = &r.arms[a].holdout;
        printf("  %s: held-out budget %.3g, loss %.4f, predicted %.4f [%.4f, %.4f]\n", r.arms[a].row.name, h->flops[0],
               h->observed[0], h->predicted[0], h->lo[0], h->hi[0]);
        assert_int_equal(h->k, 1);
        assert_int_equal(h->n_inside, 1);
    }
    int k = results_pair(&r, 0, 1);
    assert_true(k >= 0 && r.pairs[k].ok);
    assert_int_equal(r.pairs[k].c.lv[0].method, CEG_LAW);
    r.arms[1].holdout.n_inside = 0, r.arms[1].holdout.inside[0] = 0; /* as if the law had missed */
    r.n_pairs = 0;
    k = results_pair(&r, 0, 1);
    assert_true(k >= 0 && r.pairs[k].ok);
    assert_int_equal(r.pairs[k].c.lv[0].method, CEG_LOCAL);
    assert_non_null(strstr(r.pairs[k].c.notes, "the law of llama missed its held-out largest budget"));
    printf("  %s\n", r.pairs[k].c.notes);
    results_free(&r);
}

/* C6's equivalence band [1.33, 3] on planted Muon gains: inside, below, above, and no gain. */
static void test_about_band(void **state) {
    (void)state;
    const struct {
        double gain;
        const char *verdict;
    } cases[] = {{2.0, "supports (consistent with about 2x)"},
                 {1.2, "contradicts (a gain, but less than about 2x)"},
                 {4.5, "contradicts (far more than 2x)"},
                 {0.8, "contradicts (no gain detected)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"speedrun-adamw", "speedrun-2025", OPT_ADAMW, 1, 0, 0, 0},
                                   {"speedrun", "speedrun-2025", OPT_MUON, cases[i].gain, 0, 0, 0}};
        plant(&r, arms, 2);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        printf("  planted %.2gx: %s | %.120s\n", cases[i].gain, claim(c, n, "C6")->verdict, claim(c, n, "C6")->result);
        assert_string_equal(claim(c, n, "C6")->verdict, cases[i].verdict);
        results_free(&r);
    }
}

/* C5 reads a dense arm and an MoE arm of the same preset (a gain of 2-3x in the band [1.63, 3.67])
 * and reports both arms' parameters and memory; an arm of another preset is not its reference. */
static void test_moe_claim(void **state) {
    (void)state;
    const struct {
        double gain;
        const char *verdict;
    } cases[] = {{2.5, "supports (consistent with 2-3x)"},
                 {1.25, "contradicts (a gain, but less than 2-3x)"},
                 {0.7, "contradicts (no gain detected at this scale)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"gpt2", "gpt2-2019", OPT_ADAMW, 0.5, 0, 0, 0},
                                   {"dense", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"moe", "llama-2023", OPT_ADAMW, cases[i].gain, 8, 0, 0}};
        plant(&r, arms, 3);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c5 = claim(c, n, "C5");
        printf("  planted %.2gx: %s | %.300s\n", cases[i].gain, c5->verdict, c5->result);
        assert_string_equal(c5->verdict, cases[i].verdict);
        assert_non_null(strstr(c5->result, "moe over dense"));
        assert_non_null(strstr(c5->result, "active per token"));
        results_free(&r);
    }
}

/* C11: arms of one preset seeing their data 1, 4 and 16 times, on Muennighoff et al.'s law with a
 * planted R*: their 15.4 (4 epochs worth 0.93 of fresh data, 16 worth 0.66) supports; R* = 1 (4
 * epochs already cost) and R* = 1000 (16 epochs as good as fresh) contradict. */
static void test_repetition_claim(void **state) {
    (void)state;
    const struct {
        double rstar;
        const char *verdict;
        double misfit; /* the 16-epoch arm's losses off the law by this factor */
    } cases[] = {{15.4, "supports", 1}, {1, "contradicts (4 epochs already cost)", 1},
                 {1000, "contradicts (16 epochs do not diminish)", 1},
                 {15.4, "undecided (the law does not fit these runs)", 1.15}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"fresh", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"x4", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"x16", "llama-2023", OPT_ADAMW, 1, 0, 0, 0}};
        plant(&r, arms, 3);
        const double epochs[] = {1, 4, 16};
        Status st = {0};
        Rng rng;
        rng_seed(&rng, 3);
        points_free(&r.ps);
        for (int a = 0; a < 3; a++) {
            r.arms[a].cfg.data_epochs = epochs[a];
            assert_int_equal(points_add_arm(&r.ps, r.arms[a].row.name, &st), a);
            for (int k = 0; k < 5; k++)
                for (int j = 0; j < 3; j++)
                    for (int seed = 1; seed <= 2; seed++) {
                        double N = 1e7 * pow(10, k / 2.0), D = 20 * N * pow(3.0, j - 1);
                        double Dp = D * muennighoff_effective_fraction(epochs[a], cases[i].rstar);
                        double L = (1.87 + 521 / pow(N, 0.35) + 1488 / pow(Dp, 0.353)) * exp(0.003 * rng_normal(&rng));
                        if (a == 2) L *= cases[i].misfit;
                        assert_int_equal(points_add_run(&r.ps, a, N, D, 6 * N * D, L, 6 * N * D, seed, &st), 0);
                        r.ps.p[r.ps.n - 1].epochs = epochs[a];
                    }
        }
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c11 = claim(c, n, "C11");
        printf("  planted R* = %g (misfit %g): %s | %.400s\n", cases[i].rstar, cases[i].misfit, c11->verdict,
               c11->result);
        assert_string_equal(c11->verdict, cases[i].verdict);
        assert_non_null(strstr(c11->result, "R* = "));
        results_free(&r);
    }
}

/* C12: a distilled arm ahead of its plain twin at every level (supports) or behind (contradicts);
 * the text counts the teacher's forward FLOPs too, from the teacher's recipe in its run directory. */
static void test_distill_claim(void **state) {
    (void)state;
    char teacher[300], path[340];
    snprintf(teacher, sizeof teacher, "%s/teacher", g_tmp);
    snprintf(path, sizeof path, "%s/config.ini", teacher);
    assert_int_equal(mkdir(teacher, 0755), 0);
    Config t;
    Status st = {0};
    config_defaults(&t);
    assert_int_equal(config_load_recipe(&t, "llama-2023", &st), 0);
    t.vocab = 256, t.d_model = 64, t.n_layers = 2, t.n_heads = 4;
    assert_int_equal(config_resolve(&t, &st), 0);
    char *text = config_to_recipe(&t);
    assert_int_equal(file_write_atomic(path, text, strlen(text), &st), 0);
    free(text);
    const struct {
        double gain;
        const char *verdict;
    } cases[] = {{2, "supports"}, {0.5, "contradicts (the distilled arm is behind)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"plain", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"distilled", "llama-2023", OPT_ADAMW, cases[i].gain, 0, 0, 0}};
        plant(&r, arms, 2);
        snprintf(r.arms[1].cfg.teacher, sizeof r.arms[1].cfg.teacher, "%s", teacher);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c12 = claim(c, n, "C12");
        printf("  planted %.2gx: %s | %.400s\n", cases[i].gain, c12->verdict, c12->result);
        assert_string_equal(c12->verdict, cases[i].verdict);
        assert_non_null(strstr(c12->result, "distilled over plain"));
        assert_non_null(strstr(c12->result, "counting the teacher's forward FLOPs too"));
        assert_null(strstr(c12->result, "not comparable"));
        results_free(&r);
    }
}

/* C7: MQA behind MHA, GQA or MLA ahead of MQA (supports); MQA level with MHA (undecided); MQA ahead
 * (contradicts); no MQA arm (not tested). The report draws loss against KV bytes. */
static void test_kv_claim(void **state) {
    (void)state;
    const struct {
        double mqa, gqa, mla;
        const char *verdict;
    } cases[] = {{0.6, 0.9, 1.0, "supports"},
                 {0.6, 0.6, 0.6, "supports in part (MQA loses; no win-back detected)"},
                 {0.6, 0.4, 0.4, "contradicts in part (MQA loses; GQA and MLA do worse still)"},
                 {1.0, 1.0, 1.0, "undecided"},
                 {1.6, 1.0, 1.0, "contradicts (MQA is not behind MHA at this scale)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"mha", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"mqa", "llama-2023", OPT_ADAMW, cases[i].mqa, 0, 1, 0},
                                   {"gqa", "llama-2023", OPT_ADAMW, cases[i].gqa, 0, 2, 0},
                                   {"mla", "llama-2023", OPT_ADAMW, cases[i].mla, 0, 0, 1}};
        plant(&r, arms, 4);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c7 = claim(c, n, "C7");
        printf("  planted %.2g %.2g %.2g: %s | %.400s\n", cases[i].mqa, cases[i].gqa, cases[i].mla, c7->verdict,
               c7->result);
        assert_string_equal(c7->verdict, cases[i].verdict);
        assert_int_equal(c7->kv_arm[KV_MHA], 0);
        assert_int_equal(c7->kv_arm[KV_MQA], 1);
        assert_int_equal(c7->kv_arm[KV_GQA], 2);
        assert_int_equal(c7->kv_arm[KV_MLA], 3);
        if (i == 0) { /* the KV bytes in the text and the plot in the report */
            assert_non_null(strstr(c7->result, "KV bytes per token"));
            StrBuf b = {0};
            ReportOptions o = {200, 42, 0};
            html_render(&r, c, n, NULL, &o, &b);
            assert_false(b.failed);
            assert_non_null(strstr(b.s, "id=\"plot-kv\""));
            assert_non_null(strstr(b.s, "id=\"costs-table\""));
            sb_free(&b);
        }
        results_free(&r);
    }
    Results r; /* without an MQA arm */
    const PlantedArm arms[] = {{"mha", "llama-2023", OPT_ADAMW, 1, 0, 0, 0}, {"gqa", "llama-2023", OPT_ADAMW, 1, 0, 2, 0}};
    plant(&r, arms, 2);
    ClaimResult c[CLAIMS_MAX];
    int n = claims_evaluate(&r, c, CLAIMS_MAX);
    assert_string_equal(claim(c, n, "C7")->verdict, "not tested");
    results_free(&r);
}

static void test_escaping(void **state) {
    (void)state;
    Results r;
    const PlantedArm arms[] = {{"a\"b,c", "gpt2-2019", OPT_ADAMW, 1, 0, 0, 0}, {"<script>x</script>", "llama-2023", OPT_ADAMW, 1.2, 0, 0, 0},
                               {"back\\slash\ttab", "lstm-2016", OPT_ADAM, 0.7, 0, 0, 0}};
    plant(&r, arms, 3);
    ClaimResult c[CLAIMS_MAX];
    int n = claims_evaluate(&r, c, CLAIMS_MAX);
    StrBuf b = {0};
    ReportOptions o = {200, 42, 0};
    html_render(&r, c, n, NULL, &o, &b);
    assert_null(strstr(b.s, "<script>"));
    assert_null(strstr(b.s, "data</b>"));
    assert_non_null(strstr(b.s, "&lt;script&gt;x&lt;/script&gt;"));
    assert_non_null(strstr(b.s, "esc&lt;&amp;&quot;'&gt;"));
    sb_free(&b);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/report", g_tmp);
    Status st = {0};
    assert_int_equal(dir_create(dir, &st), 0);
    assert_int_equal(tables_write(&r, c, n, dir, &st), 0);
    char path[400], *text;
    size_t len;
    /* report.json parses and gives the names back exactly */
    snprintf(path, sizeof path, "%s/report.json", dir);
    assert_int_equal(file_read_all(path, &text, &len, 1 << 20, &st), 0);
    JsonDoc doc;
    assert_int_equal(json_parse(&doc, text, len, path, &st), 0);
    const JsonValue *a = json_get(doc.root, "arms");
    assert_int_equal(a->n, 3);
    assert_string_equal(json_get_string(json_at(a, 0), "name", ""), "a\"b,c");
    assert_string_equal(json_get_string(json_at(a, 2), "name", ""), "back\\slash\ttab");
    assert_string_equal(json_get_string(doc.root, "study", ""), "esc<&\"'>");
    assert_int_equal(json_get(doc.root, "claims")->n, n);
    json_free(&doc);
    free(text);
    /* CSV: quotes doubled inside quoted fields; the claim with quotes in its text stays one field */
    snprintf(path, sizeof path, "%s/fits.csv", dir);
    assert_int_equal(file_read_all(path, &text, &len, 1 << 20, &st), 0);
    assert_non_null(strstr(text, "\n\"a\"\"b,c\",\"gpt2-2019\",chinchilla,12,0,6,"));
    free(text);
    snprintf(path, sizeof path, "%s/claims.csv", dir);
    assert_int_equal(file_read_all(path, &text, &len, 1 << 20, &st), 0);
    assert_non_null(strstr(text, "\nC13,\"An \"\"8-month halving\"\" can be"));
    free(text);
    results_free(&r);
}

/* A corpus manifest as `corpus build` (derived_from NULL) or `corpus filter` would write it. */
static void write_manifest(const char *dir, const char *name, const char *derived_from, double noise,
                           const char *score, double keep) {
    char path[400], text[1024];
    Status st = {0};
    assert_int_equal(dir_create(dir, &st), 0);
    int n = snprintf(text, sizeof text,
                     "{\"name\": \"%s\", \"docs_train\": 10, \"docs_val\": 2, \"bytes_train\": 100, \"bytes_val\": 20, "
                     "\"sha256_train\": \"%s\", \"sha256_val\": \"ab\"",
                     name, name);
    if (derived_from)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      ", \"derived\": {\"source\": \"%s\", \"noise\": %g, \"score\": \"%s\", \"keep\": %g}", derived_from,
                      noise, score, keep);
    snprintf(text + n, sizeof text - (size_t)n, "}");
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    assert_int_equal(file_write_atomic(path, text, strlen(text), &st), 0);
}

/* C10: a noised corpus behind its source and a filtered one ahead (supports); one of the two
 * (supports in part, naming which); noise ahead (contradicts); nothing decided (undecided). */
static void test_quality_claim(void **state) {
    (void)state;
    char raw[300], noisy[300], ppl[300], rnd[300];
    snprintf(raw, sizeof raw, "%s/q", g_tmp);
    snprintf(noisy, sizeof noisy, "%s/q-noisy", g_tmp);
    snprintf(ppl, sizeof ppl, "%s/q-ppl", g_tmp);
    snprintf(rnd, sizeof rnd, "%s/q-rand", g_tmp);
    write_manifest(raw, "q", NULL, 0, "", 1);
    write_manifest(noisy, "q-noisy", "q", 0.5, "none", 1);
    write_manifest(ppl, "q-ppl", "q", 0, "perplexity", 0.5);
    write_manifest(rnd, "q-rand", "q", 0, "random", 0.5);
    const struct {
        double noisy, ppl, rnd;
        const char *verdict;
    } cases[] = {{0.5, 2, 0.5, "supports"},
                 {0.5, 1, 2, "supports in part (worse data costs compute; no gain from filtering detected)"},
                 {1, 2, 1, "supports in part (filtering saves compute; no cost of noise detected)"},
                 {2, 2, 1, "contradicts (a change of data quality moved the loss the other way)"},
                 {1, 1, 0.5, "undecided"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"raw", "llama-2023", OPT_ADAMW, 1, 0, 0, 0},
                                   {"noisy", "llama-2023", OPT_ADAMW, cases[i].noisy, 0, 0, 0},
                                   {"ppl", "llama-2023", OPT_ADAMW, cases[i].ppl, 0, 0, 0},
                                   {"rand", "llama-2023", OPT_ADAMW, cases[i].rnd, 0, 0, 0}};
        plant(&r, arms, 4);
        const char *data[] = {raw, noisy, ppl, rnd};
        for (int a = 0; a < 4; a++) snprintf(r.arms[a].cfg.data, sizeof r.arms[a].cfg.data, "%s", data[a]);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c10 = claim(c, n, "C10");
        printf("  planted %.2g %.2g %.2g: %s | %.400s\n", cases[i].noisy, cases[i].ppl, cases[i].rnd, c10->verdict,
               c10->result);
        assert_string_equal(c10->verdict, cases[i].verdict);
        assert_non_null(strstr(c10->result, "noisy over raw"));
        assert_non_null(strstr(c10->result, "rand over raw"));
        assert_non_null(strstr(c10->result, "(random control)"));
        results_free(&r);
    }
    Results r; /* arms on corpora not derived from one another */
    const PlantedArm arms[] = {{"raw", "llama-2023", OPT_ADAMW, 1, 0, 0, 0}, {"other", "llama-2023", OPT_ADAMW, 2, 0, 0, 0}};
    plant(&r, arms, 2);
    snprintf(r.arms[0].cfg.data, sizeof r.arms[0].cfg.data, "%s", raw);
    ClaimResult c[CLAIMS_MAX];
    int n = claims_evaluate(&r, c, CLAIMS_MAX);
    assert_string_equal(claim(c, n, "C10")->verdict, "not tested");
    results_free(&r);
}

/* C8: each planted run's final.json holds its test loss at 2x and 4x its context under the four
 * scalings, rise[multiple][scaling] above its own, with a little run-to-run spread. */
static void plant_context(Results *r, const char *dir, const double rise[2][4]) {
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    for (int a = 0; a < r->n_arms; a++) {
        snprintf(r->arms[a].cfg.eval_contexts, sizeof r->arms[a].cfg.eval_contexts, "2,4");
        r->arms[a].cfg.pos = POS_ROPE;
    }
    Status st = {0};
    for (int i = 0; i < r->n_runs; i++) {
        const RunRow *x = &r->runs[i];
        char run[2048];
        snprintf(run, sizeof run, "%s/runs/%d-%s", dir, x->id, x->arm);
        assert_int_equal(dir_create(run, &st), 0);
        RunFinal f = {0};
        f.test_bpb = x->test_bpb, f.seed = (uint64_t)x->seed;
        double spread = 0.004 * (x->seed == 1 ? 1 : -1) + 0.002 * (x->budget_index % 3 - 1);
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < 4; k++)
                f.ctx[f.n_ctx++] = (RunContextEval){2 << m, k, 2 << m, x->test_bpb * (1 + rise[m][k] + spread), NAN};
        assert_int_equal(rundir_write_final(run, &f, &st), 0);
    }
}

/* C8: YaRN within 5% at 2x and 4x and ahead of no scaling (supports); within at 2x only (in part);
 * 10% up at 2x, or behind no scaling (contradicts); no eval_contexts (not tested). */
static void test_context_claim(void **state) {
    (void)state;
    const struct {
        double rise[2][4]; /* [2x, 4x][none, linear, ntk, yarn] */
        const char *verdict;
    } cases[] = {{{{0.3, 0.2, 0.05, 0.01}, {0.8, 0.5, 0.2, 0.02}}, "supports"},
                 {{{0.3, 0.2, 0.05, 0.01}, {0.8, 0.5, 0.2, 0.10}}, "supports in part (at 2x; YaRN loses more than 5% at 4x)"},
                 {{{0.3, 0.2, 0.05, 0.10}, {0.8, 0.5, 0.2, 0.20}}, "contradicts (YaRN loses more than 5% at 2x)"},
                 {{{0.01, 0.2, 0.05, 0.03}, {0.02, 0.5, 0.2, 0.04}}, "contradicts (YaRN does worse than no scaling at 2x)"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Results r;
        const PlantedArm arms[] = {{"rope", "llama-2023", OPT_ADAMW, 1, 0, 0, 0}};
        plant(&r, arms, 1);
        char dir[300];
        snprintf(dir, sizeof dir, "%s/c8-%zu", g_tmp, i);
        plant_context(&r, dir, cases[i].rise);
        ClaimResult c[CLAIMS_MAX];
        int n = claims_evaluate(&r, c, CLAIMS_MAX);
        const ClaimResult *c8 = claim(c, n, "C8");
        printf("  case %zu: %s | %.400s\n", i, c8->verdict, c8->result);
        assert_string_equal(c8->verdict, cases[i].verdict);
        assert_non_null(strstr(c8->result, "rope (pos=rope, 12 runs): at 2x none"));
        results_free(&r);
    }
    Results r; /* no run evaluated past its context */
    const PlantedArm arms[] = {{"rope", "llama-2023", OPT_ADAMW, 1, 0, 0, 0}};
    plant(&r, arms, 1);
    ClaimResult c[CLAIMS_MAX];
    int n = claims_evaluate(&r, c, CLAIMS_MAX);
    assert_string_equal(claim(c, n, "C8")->verdict, "not tested");
    results_free(&r);
}

/* Shapley shares of a planted factorial package of 4 switches: with multiplying gains each share
 * is the switch's own gain; with a synergy s between the first two they split it, sqrt(s) each;
 * either way the shares multiply to the package. Written to ablations.csv and the HTML table. */
static void test_shapley(void **state) {
    (void)state;
    const double g[4] = {1.8, 1.25, 1.0, 0.8}, synergy[2] = {1, 1.5};
    const char *sw[4] = {"rope", "swiglu", "rmsnorm", "bias"};
    for (int c = 0; c < 2; c++) {
        char names[16][64];
        PlantedArm arms[16];
        int n = 0;
        for (int m = 0; m < 16; m++) {
            int bits = __builtin_popcount((unsigned)m);
            if (m == 0) snprintf(names[n], 64, "pkg.base");
            else if (m == 15) snprintf(names[n], 64, "pkg.full");
            else if (bits == 1) snprintf(names[n], 64, "pkg+%s", sw[__builtin_ctz((unsigned)m)]);
            else if (bits == 3) snprintf(names[n], 64, "pkg-%s", sw[__builtin_ctz((unsigned)(15 & ~m))]);
            else snprintf(names[n], 64, "pkg+%s+%s", sw[__builtin_ctz((unsigned)m)], sw[31 - __builtin_clz((unsigned)m)]);
            double gain = (m & 3) == 3 ? synergy[c] : 1;
            for (int k = 0; k < 4; k++) gain *= m & (1 << k) ? g[k] : 1;
            arms[n] = (PlantedArm){names[n], "gpt2-2019", OPT_ADAMW, gain, 0, 0, 0};
            n++;
        }
        /* the package's arms in the order a study makes them: base, full, then +S and -S by switch */
        PlantedArm ordered[16];
        int o = 0, used[16] = {0};
        for (int pass = 0; pass < 3; pass++)
            for (int k = 0; k < 4 || (pass != 1 && k < 1); k++)
                for (int i = 0; i < 16; i++) {
                    const char *nm = arms[i].name;
                    char plus[64], minus[64];
                    snprintf(plus, 64, "pkg+%s", sw[k < 4 ? k : 0]), snprintf(minus, 64, "pkg-%s", sw[k < 4 ? k : 0]);
                    int take = pass == 0 ? (!strcmp(nm, "pkg.base") || !strcmp(nm, "pkg.full"))
                               : pass == 1 ? (!strcmp(nm, plus) || !strcmp(nm, minus))
                                           : 1;
                    if (!used[i] && take) ordered[o++] = arms[i], used[i] = 1;
                }
        assert_int_equal(o, 16);
        Results r;
        plant(&r, ordered, 16);
        assert_int_equal(r.n_ablations, 1);
        const AblationStats *st = &r.abl[0].s;
        assert_int_equal(st->n, 4);
        assert_true(st->has_shapley);
        double prod = 1;
        for (int k = 0; k < 4; k++) {
            double want = g[k] * (k < 2 ? sqrt(synergy[c]) : 1);
            printf("  synergy %.2g, %s: Shapley %.3gx [%.3g, %.3g] (planted %.3g), one at a time %.3gx, leave one out "
                   "%.3gx\n", synergy[c], r.abl[0].sw[k], st->shapley[k][0], st->shapley[k][1], st->shapley[k][2], want,
                   st->single[k][0], st->loo[k][0]);
            assert_string_equal(r.abl[0].sw[k], sw[k]);
            assert_true(fabs(st->shapley[k][0] / want - 1) < 0.08);
            assert_true(st->shapley[k][1] <= st->shapley[k][0] && st->shapley[k][0] <= st->shapley[k][2]);
            prod *= st->shapley[k][0];
        }
        assert_true(fabs(prod / st->package[0] - 1) < 1e-9); /* efficiency: the shares make up the package */
        char dir[300];
        snprintf(dir, sizeof dir, "%s/shapley-%d", g_tmp, c);
        Status s = {0};
        assert_int_equal(dir_create(dir, &s), 0);
        ClaimResult cl[CLAIMS_MAX];
        int nc = claims_evaluate(&r, cl, CLAIMS_MAX);
        assert_int_equal(tables_write(&r, cl, nc, dir, &s), 0);
        char path[400], *text;
        size_t len;
        snprintf(path, sizeof path, "%s/ablations.csv", dir);
        assert_int_equal(file_read_all(path, &text, &len, 1 << 20, &s), 0);
        assert_non_null(strstr(text, "ablation,switch,loss,extrapolated,one_at_a_time"));
        assert_non_null(strstr(text, "\n\"pkg\",\"rope\","));
        assert_non_null(strstr(text, "\n\"pkg\",\"*\","));
        free(text);
        StrBuf b = {0};
        ReportOptions ro = {200, 42, 0};
        html_render(&r, cl, nc, NULL, &ro, &b);
        assert_non_null(strstr(b.s, "<th>Shapley share</th>"));
        sb_free(&b);
        results_free(&r);
    }
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/algoprog_test_report_XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_rows),
        cmocka_unit_test(test_about_band),
        cmocka_unit_test(test_moe_claim),
        cmocka_unit_test(test_kv_claim), cmocka_unit_test(test_repetition_claim), cmocka_unit_test(test_distill_claim),
        cmocka_unit_test(test_quality_claim), cmocka_unit_test(test_context_claim), cmocka_unit_test(test_shapley),
        cmocka_unit_test(test_holdout_gates_law),
        cmocka_unit_test(test_escaping),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (rc == 0 && system(cmd) != 0) return 1;
    return rc;
}
