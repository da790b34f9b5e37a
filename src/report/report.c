/* report.c - the HTML report and its data files (see report.h). */
#include "report/report.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "fit/account.h"
#include "fit/ceg.h"
#include "fit/laws.h"
#include "fit/points.h"
#include "core/strbuf.h"
#include "report/svg.h"
#include "study/registry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ARMS POINTS_MAX_ARMS
#define ABL_MAX 10

typedef struct {
    char name[64], preset[256], overrides[1024], allocation[16], lr_source[300];
    double lr;
    LawFit fit;
    int has_fit;
    Approach2Fit iso;
    int has_iso;
    int n_points;
} Arm;

typedef struct {
    int ref, cand;
    CegCurve c;
    int ok;
} Pair;

typedef struct {
    const char *id, *claim, *how;
    char result[1024];
    const char *verdict;
} Claim;

typedef struct {
    char name[48];
    int base, full;
    int n;
    char sw[ABL_MAX][48];
    int plus[ABL_MAX], minus[ABL_MAX];
    double L;          /* the common loss level */
    int extrapolated;
    /* point estimate and interval: one-at-a-time, leave-one-out, package, products, interaction */
    double single[ABL_MAX][3], loo[ABL_MAX][3], package[3], prod_single[3], prod_loo[3], interaction[3], c3[3];
} AblationResult;

typedef struct {
    char name[128], allocation[16], data[512], tokenizer[512], created[32];
    int runs_total, runs_done;
    double flops_done, seconds;
    Arm arms[MAX_ARMS];
    int n_arms;
    PointSet ps;
    Pair pairs[2 * MAX_ARMS];
    int n_pairs;
    Claim claims[16];
    int n_claims;
    AblationResult abl[4];
    int n_ablations;
} Report;

/* ---------------------------------------------------------------- loading and fitting */

static void text_col(sqlite3_stmt *q, int i, char *dst, size_t size) {
    const unsigned char *t = sqlite3_column_text(q, i);
    snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static int load(Report *r, const char *dir, Status *st) {
    Registry reg;
    if (registry_open(&reg, dir, 0, st)) return -1;
    sqlite3_stmt *q;
    sqlite3_prepare_v2(reg.db, "SELECT name, allocation, data, tokenizer, created FROM study", -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW) {
        text_col(q, 0, r->name, sizeof r->name);
        text_col(q, 1, r->allocation, sizeof r->allocation);
        text_col(q, 2, r->data, sizeof r->data);
        text_col(q, 3, r->tokenizer, sizeof r->tokenizer);
        text_col(q, 4, r->created, sizeof r->created);
    }
    sqlite3_finalize(q);
    sqlite3_prepare_v2(reg.db,
                       "SELECT count(*), sum(status='done'), sum(CASE WHEN status='done' THEN flops END),"
                       " sum(CASE WHEN status='done' AND copied_from IS NULL THEN elapsed_s END) FROM run",
                       -1, &q, NULL);
    if (sqlite3_step(q) == SQLITE_ROW) {
        r->runs_total = sqlite3_column_int(q, 0), r->runs_done = sqlite3_column_int(q, 1);
        r->flops_done = sqlite3_column_double(q, 2), r->seconds = sqlite3_column_double(q, 3);
    }
    sqlite3_finalize(q);
    sqlite3_prepare_v2(reg.db, "SELECT name, preset, overrides, allocation, lr, lr_source FROM arm ORDER BY id", -1, &q,
                       NULL);
    while (sqlite3_step(q) == SQLITE_ROW && r->n_arms < MAX_ARMS) {
        Arm *a = &r->arms[r->n_arms++];
        text_col(q, 0, a->name, sizeof a->name);
        text_col(q, 1, a->preset, sizeof a->preset);
        text_col(q, 2, a->overrides, sizeof a->overrides);
        text_col(q, 3, a->allocation, sizeof a->allocation);
        a->lr = sqlite3_column_double(q, 4);
        text_col(q, 5, a->lr_source, sizeof a->lr_source);
    }
    sqlite3_finalize(q);
    registry_close(&reg);
    return points_from_registry(&r->ps, dir, st);
}

static int arm_is(const Arm *a, const char *preset, const char *need, const char *avoid) {
    if (strcmp(a->preset, preset)) return 0;
    if (need && !strstr(a->overrides, need) && !(strstr(need, "allocation=") && !strcmp(a->allocation, need + 11)))
        return 0;
    if (avoid && (strstr(a->overrides, avoid) ||
                  (strstr(avoid, "allocation=") && !strcmp(a->allocation, avoid + 11))))
        return 0;
    return 1;
}

static int find_arm(const Report *r, const char *preset, const char *need, const char *avoid) {
    for (int i = 0; i < r->n_arms; i++)
        if (arm_is(&r->arms[i], preset, need, avoid)) return i;
    return -1;
}

static int add_pair(Report *r, int ref, int cand) {
    for (int i = 0; i < r->n_pairs; i++)
        if (r->pairs[i].ref == ref && r->pairs[i].cand == cand) return i;
    Pair *p = &r->pairs[r->n_pairs];
    p->ref = ref, p->cand = cand;
    p->ok = r->arms[ref].has_fit && r->arms[cand].has_fit &&
            ceg_compute(&r->arms[ref].fit, &r->arms[cand].fit, 6, 0.95, &p->c) == 0;
    return r->n_pairs++;
}

static void fit_all(Report *r, const ReportOptions *o) {
    FitOptions fo;
    fit_options_default(&fo);
    fo.n_boot = o->n_boot;
    fo.seed = o->seed;
    for (int a = 0; a < r->n_arms; a++) {
        FitPoint *pts;
        int n = points_of_arm(&r->ps, a, &pts);
        Arm *arm = &r->arms[a];
        arm->n_points = n;
        Status st;
        if (n >= 2 && fit_frontier(pts, n, &fo, &arm->fit, &st) == 0) arm->has_fit = 1;
        if (!strcmp(arm->allocation, "isoflop") && n >= 3 && fit_chinchilla_approach2(pts, n, &fo, &arm->iso, &st) == 0)
            arm->has_iso = 1;
        free(pts);
        if (o->verbose) fprintf(stderr, "report: fitted arm %s (%d points)\n", arm->name, n);
    }
    for (int a = 1; a < r->n_arms; a++) add_pair(r, 0, a);
}

static int find_ablations(Report *r, AblationResult *out, int max);

/* ---------------------------------------------------------------- claims */

static double middle_ceg(const CegCurve *c, double *lo, double *hi) {
    const CegLevel *v = &c->lv[c->n / 2];
    *lo = v->lo, *hi = v->hi;
    return v->ceg;
}

static void claim_pair(Report *r, Claim *c, int ref, int cand, const char *label) {
    if (ref < 0 || cand < 0) {
        snprintf(c->result, sizeof c->result, "not tested by this study: %s", c->how);
        c->verdict = "not tested";
        return;
    }
    int pi = add_pair(r, ref, cand);
    Pair *p = &r->pairs[pi];
    if (!p->ok) {
        snprintf(c->result, sizeof c->result, "%s vs %s: the two frontiers could not be compared (no shared loss range)",
                 r->arms[cand].name, r->arms[ref].name);
        c->verdict = "undecided";
        return;
    }
    double lo, hi, g = middle_ceg(&p->c, &lo, &hi);
    snprintf(c->result, sizeof c->result,
             "%s over %s: CEG %.3gx [%.3g, %.3g] at %.3f bits/byte (%s needs %.3g FLOPs); over the measured range "
             "%.3gx to %.3gx, d log CEG / d log C = %.2g [%.2g, %.2g] (%s)%s%s",
             r->arms[cand].name, r->arms[ref].name, g, lo, hi, p->c.lv[p->c.n / 2].loss, r->arms[ref].name,
             p->c.lv[p->c.n / 2].c_ref, p->c.lv[0].ceg, p->c.lv[p->c.n - 1].ceg, p->c.slope, p->c.slope_lo,
             p->c.slope_hi, p->c.trend, p->c.lv[p->c.n / 2].extrapolated ? "; extrapolated beyond the measured losses" : "",
             p->c.determined ? "" : "; a frontier rests on fewer than 4 budgets, so this is illustrative");
    (void)label;
}

static void evaluate_claims(Report *r) {
    Claim *c;
    int lstm = find_arm(r, "lstm-2016", NULL, "allocation=kaplan");
    int gpt2 = find_arm(r, "gpt2-2019", NULL, "allocation=kaplan");
    int llama = find_arm(r, "llama-2023", NULL, "allocation=kaplan");
    int run = find_arm(r, "speedrun-2025", NULL, "optimizer=");
    int run_adam = find_arm(r, "speedrun-2025", "optimizer=adamw", NULL);
    int kap = -1, chin = -1;
    for (int i = 0; i < r->n_arms && kap < 0; i++)
        if (!strcmp(r->arms[i].allocation, "kaplan")) {
            kap = i;
            chin = find_arm(r, r->arms[i].preset, NULL, "allocation=kaplan");
        }
    int transformer = gpt2 >= 0 ? gpt2 : llama;

    c = &r->claims[r->n_claims++];
    *c = (Claim){"C1", "Transformer beats LSTM, and the gap grows with scale",
                 "arms lstm-2016 and gpt2-2019 (recipes/demo.ini)", "", ""};
    claim_pair(r, c, lstm, transformer, "");
    if (lstm >= 0 && transformer >= 0) {
        Pair *p = &r->pairs[add_pair(r, lstm, transformer)];
        double lo, hi;
        middle_ceg(&p->c, &lo, &hi);
        if (!p->ok || !p->c.determined) c->verdict = "undecided";
        else if (lo > 1 && !strcmp(p->c.trend, "grows")) c->verdict = "supports";
        else if (lo > 1) c->verdict = "supports in part (beats; growth not detected at this scale)";
        else if (hi < 1) c->verdict = "contradicts at this scale (the LSTM is ahead)";
        else c->verdict = "undecided";
    }

    c = &r->claims[r->n_claims++];
    *c = (Claim){"C2", "SwiGLU + RoPE + pre-RMSNorm + cosine + tokenizer together give < 1.5x",
                 "arms gpt2-2019 and llama-2023", "", ""};
    claim_pair(r, c, gpt2, llama, "");
    if (gpt2 >= 0 && llama >= 0) {
        Pair *p = &r->pairs[add_pair(r, gpt2, llama)];
        double lo, hi;
        middle_ceg(&p->c, &lo, &hi);
        c->verdict = !p->ok || !p->c.determined ? "undecided" : hi < 1.5 ? "supports" : lo > 1.5 ? "contradicts (more than 1.5x)" : "undecided";
    }

    c = &r->claims[r->n_claims++];
    *c = (Claim){"C4", "Chinchilla allocation beats Kaplan's, by a factor that grows with scale",
                 "one preset with allocation = chinchilla and one with allocation = kaplan", "", ""};
    claim_pair(r, c, kap, chin, "");
    if (kap >= 0 && chin >= 0) {
        Pair *p = &r->pairs[add_pair(r, kap, chin)];
        double lo, hi;
        middle_ceg(&p->c, &lo, &hi);
        c->verdict = !p->ok || !p->c.determined ? "undecided"
                     : lo > 1 && !strcmp(p->c.trend, "grows") ? "supports"
                     : lo > 1 ? "supports in part (better; growth not detected)"
                     : hi < 1 ? "contradicts at this scale" : "undecided";
    }

    c = &r->claims[r->n_claims++];
    *c = (Claim){"C6", "Muon gives about 2x over AdamW", "arms speedrun-2025 and speedrun-2025 with optimizer = adamw",
                 "", ""};
    claim_pair(r, c, run_adam, run, "");
    if (run >= 0 && run_adam >= 0) {
        Pair *p = &r->pairs[add_pair(r, run_adam, run)];
        double lo, hi;
        middle_ceg(&p->c, &lo, &hi);
        c->verdict = !p->ok || !p->c.determined ? "undecided"
                     : lo > 1 && lo <= 3 && hi >= 1.5 ? "supports (consistent with about 2x)"
                     : hi < 1.3 ? "contradicts (no gain detected)" : lo > 4 ? "contradicts (far more than 2x)" : "undecided";
    }
    static const char *untested[][3] = {
        {"C3", "Reverting one switch at a time hurts more than reverting the whole package", "an ablation study (one-at-a-time and leave-one-out arms)"},
        {"C5", "MoE gives 2-3x at equal active compute", "MoE arms (deepseek-2025), not implemented yet"},
        {"C7", "MQA/GQA/MLA trade KV bytes per token against loss", "arms with n_kv_heads = 1, 2, ... (GQA and MQA are switches)"},
        {"C8", "RoPE scaling / YaRN keeps quality beyond the training length", "evaluation at 2-8x the training context, not implemented yet"},
        {"C9", "Optimisations have a ceiling (MFU)", "`algoprog bench` (not part of a study)"},
        {"C10", "Data quality is a compute multiplier", "one preset on the brown (high) and fortunes (low) corpora"},
        {"C11", "Repetition: ~4 epochs are about as good as fresh data, ~16 diminish", "arms with max_unique_tokens at fixed compute"},
        {"C12", "Distillation reaches a loss sooner", "teacher logits, not implemented yet"},
        {"C13", "An \"8-month halving\" can be an artifact of scale-dependent gains", "`algoprog account simulate` (below)"},
        {"C14", "600x in 7 years is a 9-month halving; 0.5 OOM/yr; 4x/yr compounds", "`algoprog account` (below)"},
        {"C15", "Tokenizer flavours differ by 0-15% in compression", "`algoprog tokenize stats`"},
    };
    for (size_t i = 0; i < sizeof untested / sizeof untested[0] && r->n_claims < 16; i++) {
        c = &r->claims[r->n_claims++];
        *c = (Claim){untested[i][0], untested[i][1], untested[i][2], "", "not tested by this study"};
        snprintf(c->result, sizeof c->result, "tested by: %s", untested[i][2]);
    }
    r->n_ablations = find_ablations(r, r->abl, 4);
    for (int i = 0; i < r->n_claims && r->n_ablations; i++) {
        if (strcmp(r->claims[i].id, "C3")) continue;
        const AblationResult *ab = &r->abl[0];
        snprintf(r->claims[i].result, sizeof r->claims[i].result,
                 "ablation %.47s at %.3f bits/byte: the leave-one-out gains multiply to %.3gx [%.3g, %.3g] against a whole "
                 "package of %.3gx [%.3g, %.3g] (ratio %.3g [%.3g, %.3g]); one at a time they multiply to %.3gx",
                 ab->name, ab->L, ab->prod_loo[0], ab->prod_loo[1], ab->prod_loo[2], ab->package[0], ab->package[1],
                 ab->package[2], ab->c3[0], ab->c3[1], ab->c3[2], ab->prod_single[0]);
        r->claims[i].verdict = ab->c3[1] > 1 ? "supports" : ab->c3[2] < 1 ? "contradicts" : "undecided";
    }
    /* in claim order */
    for (int i = 1; i < r->n_claims; i++)
        for (int j = i; j > 0 && atoi(r->claims[j - 1].id + 1) > atoi(r->claims[j].id + 1); j--) {
            Claim t = r->claims[j];
            r->claims[j] = r->claims[j - 1];
            r->claims[j - 1] = t;
        }
    /* the accounting claims are arithmetic: answer them here */
    for (int i = 0; i < r->n_claims; i++) {
        Status st;
        if (!strcmp(r->claims[i].id, "C14")) {
            Rate a = {600, 7, NAN, NAN, NAN}, b = {NAN, 7, 4, NAN, NAN}, d = {NAN, 1, NAN, 0.5, NAN};
            rate_complete(&a, &st), rate_complete(&b, &st), rate_complete(&d, &st);
            snprintf(r->claims[i].result, sizeof r->claims[i].result,
                     "600x in 7 years = %.2fx/year = halving every %.1f months; 0.5 OOM/year = %.2fx/year = halving "
                     "every %.1f months; 4x/year for 7 years = %.0fx",
                     a.annual, a.halving_months, d.annual, d.halving_months, b.factor);
            r->claims[i].verdict = "supports (arithmetic)";
        }
        if (!strcmp(r->claims[i].id, "C13")) {
            Simulation s;
            simulation_default(&s);
            RateFit f0, f1;
            s.frontier_share = 0;
            simulate_rate(&s, &f0, &st);
            s.frontier_share = 1;
            simulate_rate(&s, &f1, &st);
            Rate t = {NAN, 1, s.steady, NAN, NAN};
            rate_complete(&t, &st);
            snprintf(r->claims[i].result, sizeof r->claims[i].result,
                     "simulated world with a true steady halving of %.0f months and one scale-dependent innovation: a "
                     "sample of small models fits %.0f months [%.0f, %.0f], a sample of frontier models %.0f months "
                     "[%.0f, %.0f]",
                     t.halving_months, f0.halving_months, f0.halving_lo, f0.halving_hi, f1.halving_months,
                     f1.halving_lo, f1.halving_hi);
            r->claims[i].verdict = f1.halving_hi < f0.halving_lo ? "supports (simulation)" : "undecided";
        }
    }
}

/* ---------------------------------------------------------------- ablations */



static int arm_named(const Report *r, const char *name) {
    for (int i = 0; i < r->n_arms; i++)
        if (!strcmp(r->arms[i].name, name)) return i;
    return -1;
}

static double needed(const Arm *a, int b, double L) {
    const double *p = b < 0 ? NULL : a->fit.boot + (size_t)b * 3;
    double q[3] = {a->fit.p[0].value, a->fit.p[1].value, a->fit.p[2].value};
    return frontier_compute(p ? p : q, L);
}

static int cmpd(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void interval_of(double *v, int n, double out[3]) {
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > 0) v[m++] = v[i];
    qsort(v, (size_t)m, sizeof *v, cmpd);
    out[1] = m ? v[(int)(0.025 * (m - 1))] : NAN;
    out[2] = m ? v[(int)ceil(0.975 * (m - 1))] : NAN;
}

/* Gains at one loss level for every resample: a ratio C_x(L) / C_y(L) per resample b (b = -1: estimate). */
static void ablation_analyse(Report *r, AblationResult *ab) {
    int idx[2 * ABL_MAX + 2], k = 0;
    idx[k++] = ab->base, idx[k++] = ab->full;
    for (int i = 0; i < ab->n; i++) idx[k++] = ab->plus[i], idx[k++] = ab->minus[i];
    double lo = 0, hi = INFINITY, lmin = INFINITY, lmax = 0;
    for (int i = 0; i < k; i++) {
        const LawFit *f = &r->arms[idx[i]].fit;
        lo = fmax(lo, f->loss_min), hi = fmin(hi, f->loss_max);
        lmin = fmin(lmin, f->loss_min), lmax = fmax(lmax, f->loss_max);
        lo = fmax(lo, f->p[0].value * 1.001); /* above every floor */
    }
    ab->extrapolated = !(lo < hi);
    ab->L = ab->extrapolated ? fmax(lo, 0.5 * (lmin + lmax)) : 0.5 * (lo + hi);
    int nb = r->arms[ab->base].fit.n_boot;
    for (int i = 0; i < k; i++)
        if (r->arms[idx[i]].fit.n_boot < nb) nb = r->arms[idx[i]].fit.n_boot;
    double *s = malloc((size_t)(nb + 1) * (2 * ABL_MAX + 5) * sizeof *s);
    if (!s) return;
    int stride = 2 * ABL_MAX + 5;
    for (int b = -1; b < nb; b++) {
        double *row = s + (size_t)(b + 1) * stride;
        double cb = needed(&r->arms[ab->base], b, ab->L), cf = needed(&r->arms[ab->full], b, ab->L);
        double ps = 1, pl = 1;
        for (int i = 0; i < ab->n; i++) {
            row[i] = cb / needed(&r->arms[ab->plus[i]], b, ab->L);
            row[ABL_MAX + i] = needed(&r->arms[ab->minus[i]], b, ab->L) / cf;
            ps *= row[i], pl *= row[ABL_MAX + i];
        }
        double pkg = cb / cf;
        row[2 * ABL_MAX] = pkg, row[2 * ABL_MAX + 1] = ps, row[2 * ABL_MAX + 2] = pl;
        row[2 * ABL_MAX + 3] = pkg / ps, row[2 * ABL_MAX + 4] = pl / pkg;
    }
    double *col = malloc((size_t)nb * sizeof *col);
    double *dst[2 * ABL_MAX + 5];
    for (int i = 0; i < ab->n; i++) dst[i] = ab->single[i], dst[ABL_MAX + i] = ab->loo[i];
    dst[2 * ABL_MAX] = ab->package, dst[2 * ABL_MAX + 1] = ab->prod_single, dst[2 * ABL_MAX + 2] = ab->prod_loo;
    dst[2 * ABL_MAX + 3] = ab->interaction, dst[2 * ABL_MAX + 4] = ab->c3;
    for (int c = 0; c < stride && col; c++) {
        if ((c >= ab->n && c < ABL_MAX) || (c >= ABL_MAX + ab->n && c < 2 * ABL_MAX)) continue;
        dst[c][0] = s[c];
        for (int b = 0; b < nb; b++) col[b] = s[(size_t)(b + 1) * stride + c];
        interval_of(col, nb, dst[c]);
    }
    free(col);
    free(s);
}

static int find_ablations(Report *r, AblationResult *out, int max) {
    int n = 0;
    for (int i = 0; i < r->n_arms && n < max; i++) {
        const char *nm = r->arms[i].name, *dot = strstr(nm, ".base");
        if (!dot || dot[5]) continue;
        AblationResult *ab = &out[n];
        memset(ab, 0, sizeof *ab);
        snprintf(ab->name, sizeof ab->name, "%.*s", (int)(dot - nm), nm);
        char full[128];
        snprintf(full, sizeof full, "%s.full", ab->name);
        ab->base = i, ab->full = arm_named(r, full);
        if (ab->full < 0) continue;
        size_t len = strlen(ab->name);
        for (int j = 0; j < r->n_arms && ab->n < ABL_MAX; j++) {
            const char *m = r->arms[j].name;
            if (strncmp(m, ab->name, len) || m[len] != '+') continue;
            char minus[128];
            snprintf(minus, sizeof minus, "%s-%s", ab->name, m + len + 1);
            int mi = arm_named(r, minus);
            if (mi < 0) continue;
            snprintf(ab->sw[ab->n], sizeof ab->sw[0], "%s", m + len + 1);
            ab->plus[ab->n] = j, ab->minus[ab->n++] = mi;
        }
        int ok = ab->n >= 2 && r->arms[ab->base].has_fit && r->arms[ab->full].has_fit;
        for (int k = 0; k < ab->n; k++) ok = ok && r->arms[ab->plus[k]].has_fit && r->arms[ab->minus[k]].has_fit;
        if (!ok) continue;
        ablation_analyse(r, ab);
        n++;
    }
    return n;
}

static void html_ablation(StrBuf *b, const AblationResult *ab) {
    sb_puts(b, "<h3>");
    sb_html(b, ab->name);
    sb_printf(b, "</h3>\n<p>Gains at %.4f bits/byte%s: <i>one at a time</i> = base + switch over base; "
                 "<i>leave one out</i> = full package over the package without the switch.</p>\n",
              ab->L, ab->extrapolated ? " (the arms share no loss range: extrapolated)" : "");
    const char *labels[2 * ABL_MAX + 2], *colors[2 * ABL_MAX + 2];
    char names[2 * ABL_MAX + 2][80];
    double v[2 * ABL_MAX + 2], lo[2 * ABL_MAX + 2], hi[2 * ABL_MAX + 2];
    int n = 0;
    for (int i = 0; i < ab->n; i++) {
        snprintf(names[n], sizeof names[0], "+%s (one at a time)", ab->sw[i]);
        labels[n] = names[n], colors[n] = plot_color(0), v[n] = ab->single[i][0], lo[n] = ab->single[i][1],
        hi[n++] = ab->single[i][2];
        snprintf(names[n], sizeof names[0], "+%s (leave one out)", ab->sw[i]);
        labels[n] = names[n], colors[n] = plot_color(1), v[n] = ab->loo[i][0], lo[n] = ab->loo[i][1],
        hi[n++] = ab->loo[i][2];
    }
    snprintf(names[n], sizeof names[0], "whole package");
    labels[n] = names[n], colors[n] = plot_color(2), v[n] = ab->package[0], lo[n] = ab->package[1],
    hi[n++] = ab->package[2];
    char id[96];
    snprintf(id, sizeof id, "plot-ablation-%s", ab->name);
    plot_bars(b, id, "Compute-equivalent gain of each switch", "CEG (x less compute), 95% interval", labels, v, lo, hi,
              colors, n);
    sb_puts(b, "<table class=\"ablation-table\"><tr><th>switch</th><th>one at a time</th><th>leave one out</th></tr>\n");
    for (int i = 0; i < ab->n; i++) {
        sb_puts(b, "<tr><td>");
        sb_html(b, ab->sw[i]);
        sb_printf(b, "</td><td class=\"num\">%.3gx [%.3g, %.3g]</td><td class=\"num\">%.3gx [%.3g, %.3g]</td></tr>\n",
                  ab->single[i][0], ab->single[i][1], ab->single[i][2], ab->loo[i][0], ab->loo[i][1], ab->loo[i][2]);
    }
    sb_printf(b, "<tr><th>product</th><td class=\"num\">%.3gx [%.3g, %.3g]</td><td class=\"num\">%.3gx [%.3g, %.3g]</td></tr>\n"
                 "<tr><th>whole package</th><td class=\"num\" colspan=\"2\">%.3gx [%.3g, %.3g]</td></tr>\n"
                 "<tr><th>interaction (package / product of one-at-a-time)</th><td class=\"num\" colspan=\"2\">%.3g [%.3g, "
                 "%.3g]</td></tr>\n</table>\n",
              ab->prod_single[0], ab->prod_single[1], ab->prod_single[2], ab->prod_loo[0], ab->prod_loo[1],
              ab->prod_loo[2], ab->package[0], ab->package[1], ab->package[2], ab->interaction[0], ab->interaction[1],
              ab->interaction[2]);
}

/* ---------------------------------------------------------------- plots */

static void plot_loss_vs_compute(Report *r, StrBuf *b) {
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->ps.n; i++) {
        x0 = fmin(x0, r->ps.p[i].flops), x1 = fmax(x1, r->ps.p[i].flops);
        y0 = fmin(y0, r->ps.p[i].loss), y1 = fmax(y1, r->ps.p[i].loss);
    }
    if (!isfinite(x0)) return;
    Plot p;
    plot_begin(&p, b, "plot-loss", "Held-out loss against training compute", "training FLOPs (exact)",
               "held-out bits per byte", x0 / 1.5, x1 * 1.5, y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1,
               0);
    const char *names[MAX_ARMS], *colors[MAX_ARMS];
    for (int a = 0; a < r->n_arms; a++) {
        double xs[1024], ys[1024];
        int n = 0;
        for (int i = 0; i < r->ps.n && n < 1024; i++)
            if (r->ps.p[i].arm == a) xs[n] = r->ps.p[i].flops, ys[n++] = r->ps.p[i].loss;
        plot_points(&p, xs, ys, n, plot_color(a), r->arms[a].name);
        if (r->arms[a].has_fit) {
            double fx[80], fy[80], prm[3] = {r->arms[a].fit.p[0].value, r->arms[a].fit.p[1].value, r->arms[a].fit.p[2].value};
            for (int k = 0; k < 80; k++) {
                fx[k] = x0 / 1.5 * pow(2.25 * x1 / x0, k / 79.0);
                fy[k] = frontier_loss(prm, fx[k]);
            }
            plot_line(&p, fx, fy, 80, plot_color(a), !r->arms[a].fit.identified);
        }
        names[a] = r->arms[a].name, colors[a] = plot_color(a);
    }
    plot_legend(&p, names, colors, r->n_arms);
    plot_end(&p);
}

static void plot_ceg(Report *r, StrBuf *b) {
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    int any = 0;
    for (int i = 0; i < r->n_pairs; i++) {
        if (!r->pairs[i].ok || r->pairs[i].ref != 0) continue;
        for (int k = 0; k < r->pairs[i].c.n; k++) {
            const CegLevel *v = &r->pairs[i].c.lv[k];
            if (!isfinite(v->c_ref) || !(v->ceg > 0)) continue;
            x0 = fmin(x0, v->c_ref), x1 = fmax(x1, v->c_ref);
            y0 = fmin(y0, isfinite(v->lo) && v->lo > 0 ? v->lo : v->ceg);
            y1 = fmax(y1, isfinite(v->hi) ? v->hi : v->ceg);
            any = 1;
        }
    }
    if (!any) return;
    y0 = fmax(fmin(y0, 0.8), 1e-3), y1 = fmin(fmax(y1, 1.25), 1e4);
    char title[160];
    snprintf(title, sizeof title, "Compute-equivalent gain over %s", r->arms[0].name);
    Plot p;
    char xl[128];
    snprintf(xl, sizeof xl, "FLOPs %s needs to reach the loss", r->arms[0].name);
    plot_begin(&p, b, "plot-ceg", title, xl, "CEG (x less compute), 95% band", x0 / 1.5, x1 * 1.5, y0 / 1.2, y1 * 1.2, 1, 1);
    plot_hline(&p, 1.0, "#444", "no gain");
    const char *names[MAX_ARMS], *colors[MAX_ARMS];
    int nn = 0;
    for (int i = 0; i < r->n_pairs; i++) {
        const Pair *pr = &r->pairs[i];
        if (!pr->ok || pr->ref != 0) continue;
        double xs[CEG_MAX_LEVELS], ys[CEG_MAX_LEVELS], lo[CEG_MAX_LEVELS], hi[CEG_MAX_LEVELS];
        for (int k = 0; k < pr->c.n; k++) {
            xs[k] = pr->c.lv[k].c_ref, ys[k] = pr->c.lv[k].ceg;
            lo[k] = isfinite(pr->c.lv[k].lo) ? pr->c.lv[k].lo : y0;
            hi[k] = isfinite(pr->c.lv[k].hi) ? pr->c.lv[k].hi : y1;
        }
        const char *col = plot_color(pr->cand);
        plot_band(&p, xs, lo, hi, pr->c.n, col);
        plot_line(&p, xs, ys, pr->c.n, col, !pr->c.determined);
        plot_points(&p, xs, ys, pr->c.n, col, r->arms[pr->cand].name);
        names[nn] = r->arms[pr->cand].name, colors[nn++] = col;
    }
    plot_legend(&p, names, colors, nn);
    plot_end(&p);
}

static void plot_isoflop(Report *r, StrBuf *b, int a) {
    const Arm *arm = &r->arms[a];
    double x0 = INFINITY, x1 = 0, y0 = INFINITY, y1 = 0;
    for (int i = 0; i < r->ps.n; i++)
        if (r->ps.p[i].arm == a) {
            x0 = fmin(x0, r->ps.p[i].params), x1 = fmax(x1, r->ps.p[i].params);
            y0 = fmin(y0, r->ps.p[i].loss), y1 = fmax(y1, r->ps.p[i].loss);
        }
    char title[160], id[96];
    snprintf(title, sizeof title, "IsoFLOP profiles of %s (Chinchilla approach 2)", arm->name);
    snprintf(id, sizeof id, "plot-isoflop-%d", a);
    Plot p;
    plot_begin(&p, b, id, title, "parameters N (non-embedding)", "held-out bits per byte", x0 / 1.5, x1 * 1.5,
               y0 - 0.05 * (y1 - y0 + 0.1), y1 + 0.05 * (y1 - y0 + 0.1), 1, 0);
    const char *names[FIT_MAX_GROUPS], *colors[FIT_MAX_GROUPS];
    char labels[FIT_MAX_GROUPS][32];
    int ng = 0;
    for (int g = 0; g < arm->iso.n_groups && ng < 8; g++) {
        double xs[512], ys[512];
        int n = 0;
        for (int i = 0; i < r->ps.n && n < 512; i++)
            if (r->ps.p[i].arm == a && r->ps.p[i].group == g) xs[n] = r->ps.p[i].params, ys[n++] = r->ps.p[i].loss;
        if (!n) continue;
        const char *col = plot_color(ng);
        plot_points(&p, xs, ys, n, col, "budget");
        if (arm->iso.g[g].c2 > 0) {
            double fx[60], fy[60];
            for (int k = 0; k < 60; k++) {
                fx[k] = x0 / 1.3 * pow(1.69 * x1 / x0, k / 59.0);
                double lx = log(fx[k]);
                fy[k] = arm->iso.g[g].c0 + arm->iso.g[g].c1 * lx + arm->iso.g[g].c2 * lx * lx;
            }
            plot_line(&p, fx, fy, 60, col, !arm->iso.g[g].ok);
        }
        snprintf(labels[ng], sizeof labels[ng], "%.2g FLOPs", arm->iso.g[g].budget);
        names[ng] = labels[ng], colors[ng] = col, ng++;
    }
    plot_legend(&p, names, colors, ng);
    plot_end(&p);
}

/* ---------------------------------------------------------------- tables and files */

static void fmt_param(char *buf, size_t size, const FitParam *p) {
    snprintf(buf, size, "%.4g [%.3g, %.3g]%s", p->value, p->lo, p->hi, p->identified ? "" : " *");
}

static int write_files(Report *r, const char *rdir, Status *st) {
    StrBuf fits = {0}, ceg = {0}, claims = {0}, json = {0};
    sb_puts(&fits, "arm,preset,allocation,points,E,E_lo,E_hi,A,A_lo,A_hi,alpha,alpha_lo,alpha_hi,identified,notes\n");
    for (int a = 0; a < r->n_arms; a++) {
        const Arm *m = &r->arms[a];
        if (!m->has_fit) continue;
        sb_printf(&fits, "\"%s\",\"%s\",%s,%d", m->name, m->preset, m->allocation, m->n_points);
        for (int k = 0; k < 3; k++) sb_printf(&fits, ",%.10g,%.10g,%.10g", m->fit.p[k].value, m->fit.p[k].lo, m->fit.p[k].hi);
        sb_printf(&fits, ",%d,\"%s\"\n", m->fit.identified, m->fit.notes);
    }
    sb_puts(&ceg, "arm,reference,loss,compute_reference,ceg,ceg_lo,ceg_hi,extrapolated,slope,slope_lo,slope_hi,trend,determined\n");
    for (int i = 0; i < r->n_pairs; i++) {
        const Pair *p = &r->pairs[i];
        if (!p->ok) continue;
        for (int k = 0; k < p->c.n; k++)
            sb_printf(&ceg, "\"%s\",\"%s\",%.8g,%.8g,%.8g,%.8g,%.8g,%d,%.6g,%.6g,%.6g,%s,%d\n", r->arms[p->cand].name,
                      r->arms[p->ref].name, p->c.lv[k].loss, p->c.lv[k].c_ref, p->c.lv[k].ceg, p->c.lv[k].lo,
                      p->c.lv[k].hi, p->c.lv[k].extrapolated, p->c.slope, p->c.slope_lo, p->c.slope_hi, p->c.trend,
                      p->c.determined);
    }
    sb_puts(&claims, "id,claim,verdict,result\n");
    for (int i = 0; i < r->n_claims; i++)
        sb_printf(&claims, "%s,\"%s\",\"%s\",\"%s\"\n", r->claims[i].id, r->claims[i].claim, r->claims[i].verdict,
                  r->claims[i].result);
    sb_printf(&json, "{\"study\": \"%s\", \"runs_done\": %d, \"runs_total\": %d, \"flops\": %.8g, \"arms\": [", r->name,
              r->runs_done, r->runs_total, r->flops_done);
    for (int a = 0; a < r->n_arms; a++) {
        const Arm *m = &r->arms[a];
        sb_printf(&json, "%s{\"name\": \"%s\", \"preset\": \"%s\", \"allocation\": \"%s\", \"lr\": %.6g, \"points\": %d", a ? ", " : "",
                  m->name, m->preset, m->allocation, m->lr, m->n_points);
        if (m->has_fit) {
            static const char *nm[3] = {"E", "A", "alpha"};
            for (int k = 0; k < 3; k++)
                sb_printf(&json, ", \"%s\": %.8g, \"%s_lo\": %.8g, \"%s_hi\": %.8g", nm[k], m->fit.p[k].value, nm[k],
                          isfinite(m->fit.p[k].lo) ? m->fit.p[k].lo : -1, nm[k],
                          isfinite(m->fit.p[k].hi) ? m->fit.p[k].hi : -1);
            sb_printf(&json, ", \"identified\": %s", m->fit.identified ? "true" : "false");
        }
        sb_puts(&json, "}");
    }
    sb_puts(&json, "], \"claims\": [");
    for (int i = 0; i < r->n_claims; i++) {
        sb_printf(&json, "%s{\"id\": \"%s\", \"verdict\": \"%s\", \"result\": \"", i ? ", " : "", r->claims[i].id,
                  r->claims[i].verdict);
        for (const char *c = r->claims[i].result; *c; c++) sb_printf(&json, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        sb_puts(&json, "\"}");
    }
    sb_puts(&json, "]}\n");
    int rc = fits.failed || ceg.failed || claims.failed || json.failed
                 ? status_fail(st, AP_ENOMEM, "out of memory writing the report")
                 : 0;
    char path[1300];
    const struct {
        const char *name;
        StrBuf *b;
    } files[] = {{"fits.csv", &fits}, {"ceg.csv", &ceg}, {"claims.csv", &claims}, {"report.json", &json}};
    for (size_t i = 0; i < 4 && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", rdir, files[i].name);
        rc = file_write_atomic(path, files[i].b->s, files[i].b->len, st);
    }
    sb_free(&fits), sb_free(&ceg), sb_free(&claims), sb_free(&json);
    return rc;
}

static void cpu_name(char *buf, size_t size) {
    snprintf(buf, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, size, "%s", c + 2);
                buf[strcspn(buf, "\n")] = '\0';
            }
            break;
        }
    fclose(f);
}

static const char *CSS =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}h1{font-size:1.7em}h2{margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "vertical-align:top}th{background:#f3f3f3;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".meta{color:#555}.v-supports{background:#e6f4ea}.v-contradicts{background:#fce8e6}.v-undecided{background:#fef7e0}"
    ".v-not{color:#777}svg.plot{display:block;margin:1em 0;max-width:100%;height:auto}.note{color:#666;font-size:.9em}";

static const char *verdict_class(const char *v) {
    if (!strncmp(v, "supports", 8)) return "v-supports";
    if (!strncmp(v, "contradicts", 11)) return "v-contradicts";
    if (!strncmp(v, "not tested", 10)) return "v-not";
    return "v-undecided";
}

static void html(Report *r, StrBuf *b, const char *dir, const ReportOptions *o) {
    char cpu[256], now[32];
    cpu_name(cpu, sizeof cpu);
    time_t t = time(NULL);
    strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>algoprog report: ");
    sb_html(b, r->name);
    sb_printf(b, "</title><style>%s</style></head><body>\n<h1>algoprog report: ", CSS);
    sb_html(b, r->name);
    sb_puts(b, "</h1>\n<p class=\"meta\">");
    sb_printf(b, "%d of %d runs done, %.3g training FLOPs in %.1f minutes of training; data <b>", r->runs_done,
              r->runs_total, r->flops_done, r->seconds / 60);
    sb_html(b, r->data);
    sb_puts(b, "</b>, tokenizer <b>");
    sb_html(b, r->tokenizer);
    sb_printf(b, "</b>, allocation <b>%s</b>; study created %s, report made %s on %d cores (", r->allocation,
              r->created, now, parallel_cores());
    sb_html(b, cpu);
    sb_printf(b, "). Intervals are 95%% percentile bootstraps over runs (%d resamples, seed %llu).</p>\n", o->n_boot,
              o->seed);
    if (r->runs_done < r->runs_total)
        sb_puts(b, "<p><b>The study is not finished: everything below uses the runs done so far.</b></p>\n");

    sb_puts(b, "<h2 id=\"claims\">Claims</h2>\n<p>Each verdict is computed from this study's runs. A compute-equivalent "
               "gain (CEG) of B over A at a loss is how many times less compute B's fitted frontier needs to reach "
               "it.</p>\n<table id=\"claims-table\"><tr><th>id</th><th>claim</th><th>what this study measured</th>"
               "<th>verdict</th></tr>\n");
    for (int i = 0; i < r->n_claims; i++) {
        const Claim *c = &r->claims[i];
        sb_printf(b, "<tr class=\"%s\"><td>%s</td><td>", verdict_class(c->verdict), c->id);
        sb_html(b, c->claim);
        sb_puts(b, "</td><td>");
        sb_html(b, c->result);
        sb_puts(b, "</td><td>");
        sb_html(b, c->verdict);
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "</table>\n");

    sb_puts(b, "<h2 id=\"loss\">Loss against compute</h2>\n<p>Each point is a finished run (held-out bits per byte at its "
               "end). Lines are fitted frontiers L(C) = E + A C<sup>-&alpha;</sup>; dashed where a parameter is not "
               "identified.</p>\n");
    plot_loss_vs_compute(r, b);
    sb_puts(b, "<h2 id=\"ceg\">Compute-equivalent gains</h2>\n<p>Against the first arm, at losses both arms reached "
               "(levels beyond the measured range are flagged in the table). Bands: 95% bootstrap intervals.</p>\n");
    plot_ceg(r, b);
    sb_puts(b, "<table id=\"ceg-table\"><tr><th>arm</th><th>over</th><th>loss (bits/byte)</th><th>reference FLOPs</th>"
               "<th>CEG [95%]</th><th>trend with scale</th></tr>\n");
    for (int i = 0; i < r->n_pairs; i++) {
        const Pair *p = &r->pairs[i];
        if (!p->ok) continue;
        for (int k = 0; k < p->c.n; k++) {
            sb_puts(b, "<tr><td>");
            sb_html(b, r->arms[p->cand].name);
            sb_puts(b, "</td><td>");
            sb_html(b, r->arms[p->ref].name);
            sb_printf(b, "</td><td class=\"num\">%.4f</td><td class=\"num\">%.3g</td><td class=\"num\">%.3gx [%.3g, %.3g]%s</td>",
                      p->c.lv[k].loss, p->c.lv[k].c_ref, p->c.lv[k].ceg, p->c.lv[k].lo, p->c.lv[k].hi,
                      p->c.lv[k].extrapolated ? " (extrapolated)" : "");
            if (k == 0)
                sb_printf(b, "<td rowspan=\"%d\">slope %.3g [%.3g, %.3g]: %s%s</td>", p->c.n, p->c.slope, p->c.slope_lo,
                          p->c.slope_hi, p->c.trend, p->c.determined ? "" : " (a frontier rests on too few budgets)");
            sb_puts(b, "</tr>\n");
        }
    }
    sb_puts(b, "</table>\n");
    if (r->n_ablations) {
        sb_puts(b, "<h2 id=\"ablations\">Ablations</h2>\n");
        for (int i = 0; i < r->n_ablations; i++) html_ablation(b, &r->abl[i]);
    }
    int iso = 0;
    for (int a = 0; a < r->n_arms; a++)
        if (r->arms[a].has_iso) {
            if (!iso++) sb_puts(b, "<h2 id=\"isoflop\">IsoFLOP profiles</h2>\n");
            plot_isoflop(r, b, a);
            sb_printf(b, "<p>N* &prop; C<sup>a</sup> with a = %.3f [%.3f, %.3f]; D* &prop; C<sup>b</sup> with b = %.3f "
                         "[%.3f, %.3f]. ",
                      r->arms[a].iso.a.value, r->arms[a].iso.a.lo, r->arms[a].iso.a.hi, r->arms[a].iso.b.value,
                      r->arms[a].iso.b.lo, r->arms[a].iso.b.hi);
            sb_html(b, r->arms[a].iso.notes);
            sb_puts(b, "</p>\n");
        }

    sb_puts(b, "<h2 id=\"fits\">Fits</h2>\n<table id=\"fits-table\"><tr><th>arm</th><th>runs</th><th>E</th><th>A</th>"
               "<th>&alpha;</th><th>rmse of log loss</th><th>notes</th></tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        const Arm *m = &r->arms[a];
        char e[96], A[96], al[96];
        if (!m->has_fit) {
            sb_printf(b, "<tr><td>%s</td><td class=\"num\">%d</td><td colspan=\"5\">no fit (fewer than 2 runs)</td></tr>\n",
                      m->name, m->n_points);
            continue;
        }
        fmt_param(e, sizeof e, &m->fit.p[0]), fmt_param(A, sizeof A, &m->fit.p[1]), fmt_param(al, sizeof al, &m->fit.p[2]);
        sb_puts(b, "<tr><td>");
        sb_html(b, m->name);
        sb_printf(b, "</td><td class=\"num\">%d</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                     "<td class=\"num\">%.4f</td><td>",
                  m->n_points, e, A, al, m->fit.rmse_log);
        sb_html(b, m->fit.notes);
        sb_puts(b, "</td></tr>\n");
    }
    sb_puts(b, "</table>\n<p class=\"note\">* not identified by these runs: the interval or a bound shows the data do "
               "not pin it down.</p>\n");

    sb_puts(b, "<h2 id=\"runs\">Runs</h2>\n<table id=\"runs-table\"><tr><th>arm</th><th>budget</th><th>seed</th>"
               "<th>N (non-emb.)</th><th>width x layers</th><th>tokens</th><th>FLOPs</th><th>bits/byte</th></tr>\n");
    Registry reg;
    Status st;
    if (registry_open(&reg, dir, 0, &st) == 0) {
        sqlite3_stmt *q;
        sqlite3_prepare_v2(reg.db,
                           "SELECT arm.name, budget, seed, params_nonembedding, d_model, n_layers, tokens, flops, val_bpb"
                           " FROM run JOIN arm ON arm.id=arm_id WHERE kind='main' AND status='done'"
                           " ORDER BY arm.id, budget, point, seed",
                           -1, &q, NULL);
        while (sqlite3_step(q) == SQLITE_ROW) {
            sb_puts(b, "<tr><td>");
            sb_html(b, (const char *)sqlite3_column_text(q, 0));
            sb_printf(b, "</td><td class=\"num\">%.3g</td><td class=\"num\">%d</td><td class=\"num\">%lld</td>"
                         "<td class=\"num\">%d x %d</td><td class=\"num\">%.3g</td><td class=\"num\">%.4g</td>"
                         "<td class=\"num\">%.4f</td></tr>\n",
                      sqlite3_column_double(q, 1), sqlite3_column_int(q, 2), (long long)sqlite3_column_int64(q, 3),
                      sqlite3_column_int(q, 4), sqlite3_column_int(q, 5), sqlite3_column_double(q, 6),
                      sqlite3_column_double(q, 7), sqlite3_column_double(q, 8));
        }
        sqlite3_finalize(q);
        sb_puts(b, "</table>\n<h2 id=\"methods\">Methods</h2>\n<table id=\"arms-table\"><tr><th>arm</th><th>preset</th>"
                   "<th>overrides</th><th>allocation</th><th>learning rate</th><th>how it was chosen</th></tr>\n");
        for (int a = 0; a < r->n_arms; a++) {
            const Arm *m = &r->arms[a];
            sb_puts(b, "<tr><td>");
            sb_html(b, m->name);
            sb_puts(b, "</td><td>");
            sb_html(b, m->preset);
            sb_puts(b, "</td><td>");
            sb_html(b, m->overrides[0] ? m->overrides : "-");
            sb_printf(b, "</td><td>%s</td><td class=\"num\">%.4g</td><td>", m->allocation, m->lr);
            sb_html(b, m->lr_source);
            sb_puts(b, "</td></tr>\n");
        }
        sb_puts(b, "</table>\n<p>Every run records its exact parameter count, tokens and FLOPs (matmul-class FLOPs "
                   "as executed, plus Muon's orthogonalisation; docs/ARCHITECTURE.md). Shapes come from the size "
                   "ladder of docs/STUDIES.md. Loss is held-out bits per byte on the corpus's held-out documents. "
                   "Frontiers are fitted with a Huber loss (&delta; = 10<sup>-3</sup>) on log residuals by L-BFGS from "
                   "a grid of starting points; intervals resample runs with replacement.</p>\n<details><summary>The "
                   "study file</summary><pre>");
        sqlite3_prepare_v2(reg.db, "SELECT spec FROM study", -1, &q, NULL);
        if (sqlite3_step(q) == SQLITE_ROW) sb_html(b, (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        sb_puts(b, "</pre></details>\n");
        registry_close(&reg);
    }

    sb_puts(b, "<h2 id=\"accounting\">Accounting</h2>\n<p>The seeds' headline numbers, converted exactly "
               "(<code>algoprog account seeds</code>):</p>\n<table id=\"accounting-table\"><tr><th>statement</th>"
               "<th>factor</th><th>years</th><th>per year</th><th>OOM per year</th><th>halving time</th></tr>\n");
    const struct {
        const char *what;
        double factor, years, annual, oom, halving;
    } rows[] = {{"nanochat vs GPT-2: 600x in 7 years", 600, 7, NAN, NAN, NAN},
                {"4x/year, compounded over 7 years", NAN, 7, 4, NAN, NAN},
                {"0.5 OOM/year, 2012-2023", NAN, 11, NAN, 0.5, NAN},
                {"an 8-month halving, 2012-2023", NAN, 11, NAN, NAN, 8},
                {"1.68x/year (Amodei's 2020 figure)", NAN, 1, 1.68, NAN, NAN}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        Rate rt = {rows[i].factor, rows[i].years, rows[i].annual, rows[i].oom, rows[i].halving};
        rate_complete(&rt, &st);
        sb_printf(b, "<tr><td>%s</td><td class=\"num\">%.4gx</td><td class=\"num\">%.0f</td><td class=\"num\">%.3gx</td>"
                     "<td class=\"num\">%.3f</td><td class=\"num\">%.1f months</td></tr>\n",
                  rows[i].what, rt.factor, rt.years, rt.annual, rt.oom_per_year, rt.halving_months);
    }
    sb_puts(b, "</table>\n<p>600x = 6 (hardware) x 5 (algorithms) x 2.5 (optimisations) x 8 (data): shares of the log "
               "28%, 25%, 14%, 33% (<code>algoprog account decompose</code>).</p>\n");
    sb_puts(b, "<p class=\"note\">Tables as data: runs.csv (from <code>algoprog study export</code>), fits.csv, "
               "ceg.csv, claims.csv, report.json.</p>\n</body></html>\n");
}

int report_write(const char *dir, const ReportOptions *o, Status *st) {
    Report *r = calloc(1, sizeof *r);
    if (!r) return status_fail(st, AP_ENOMEM, "out of memory");
    if (load(r, dir, st)) {
        free(r);
        return -1;
    }
    fit_all(r, o);
    evaluate_claims(r);
    char rdir[1100], path[1200];
    snprintf(rdir, sizeof rdir, "%s/report", dir);
    int rc = dir_create(rdir, st);
    StrBuf b = {0};
    if (!rc) {
        html(r, &b, dir, o);
        snprintf(path, sizeof path, "%s/index.html", rdir);
        rc = b.failed ? status_fail(st, AP_ENOMEM, "out of memory building the report")
                      : file_write_atomic(path, b.s, b.len, st);
    }
    if (!rc) rc = write_files(r, rdir, st);
    sb_free(&b);
    for (int a = 0; a < r->n_arms; a++)
        if (r->arms[a].has_fit) law_fit_free(&r->arms[a].fit);
    points_free(&r->ps);
    free(r);
    return rc;
}
