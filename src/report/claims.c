/* claims.c - the claim table and its verdict rules (see claims.h). */
#include "report/claims.h"

#include "fit/account.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ANY_ALLOC 0
#define NOT_KAPLAN 0

static const ClaimSpec CLAIMS[] = {
    {"C1", "Transformer beats LSTM, and the gap grows with scale", "arms lstm-2016 and gpt2-2019 (recipes/demo.ini, recipes/full.ini)",
     RULE_BEATS_AND_GROWS, 0, {"lstm-2016", NULL, NULL, NOT_KAPLAN, 0}, {"gpt2-2019", NULL, NULL, NOT_KAPLAN, 0},
     {"llama-2023", NULL, NULL, NOT_KAPLAN, 0}, NULL, "supports in part (beats; growth not detected at this scale)",
     "contradicts at this scale (the LSTM is ahead)", NULL},
    {"C2", "SwiGLU + RoPE + pre-RMSNorm + cosine + tokenizer together give < 1.5x", "arms gpt2-2019 and llama-2023 (recipes/demo.ini, recipes/full.ini)",
     RULE_BELOW, 1.5, {"gpt2-2019", NULL, NULL, NOT_KAPLAN, 0}, {"llama-2023", NULL, NULL, NOT_KAPLAN, 0}, {0}, NULL,
     NULL, NULL, "contradicts (more than 1.5x)"},
    {"C3", "Reverting one switch at a time hurts more than reverting the whole package",
     "an ablation study (one-at-a-time and leave-one-out arms)", RULE_ABLATION, 0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C4", "Chinchilla allocation beats Kaplan's, by a factor that grows with scale",
     "one preset with allocation = chinchilla and one with allocation = kaplan (recipes/full.ini: llama vs llama-kaplan)", RULE_BEATS_AND_GROWS, 0,
     {NULL, NULL, NULL, 1, 0}, {NULL, NULL, NULL, NOT_KAPLAN, 1}, {0}, NULL,
     "supports in part (better; growth not detected)", "contradicts at this scale", NULL},
    {"C5", "MoE gives 2-3x at equal active compute",
     "dense vs MoE arms (moe_experts, the deepseek-2025 preset); studies cannot size MoE arms by active parameters yet",
     RULE_ELSEWHERE,
     0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C6", "Muon gives about 2x over AdamW", "arms speedrun-2025 and a tuned AdamW speedrun-2025 (recipes/demo.ini, recipes/full.ini)",
     RULE_ABOUT, 2, {"speedrun-2025", "optimizer", "adamw", ANY_ALLOC, 0},
     {"speedrun-2025", "optimizer", "muon", ANY_ALLOC, 0}, {0}, "supports (consistent with about 2x)", NULL,
     "contradicts (no gain detected)",
     "contradicts (far more than 2x)"},
    {"C7", "MQA/GQA/MLA trade KV bytes per token against loss",
     "arms with n_kv_heads = 1, 2, ... and attention = mla; `algoprog config` gives each one's KV bytes per token",
     RULE_ELSEWHERE, 0, {0}, {0}, {0}, NULL, NULL,
     NULL, NULL},
    {"C8", "RoPE scaling / YaRN keeps quality beyond the training length",
     "evaluation at 2-8x the training context, not implemented yet", RULE_ELSEWHERE, 0, {0}, {0}, {0}, NULL, NULL,
     NULL, NULL},
    {"C9", "Optimisations have a ceiling (MFU)", "`algoprog bench` (not part of a study)", RULE_ELSEWHERE, 0, {0},
     {0}, {0}, NULL, NULL, NULL, NULL},
    {"C10", "Data quality is a compute multiplier", "one preset on the brown (high) and fortunes (low) corpora",
     RULE_ELSEWHERE, 0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C11", "Repetition: ~4 epochs are about as good as fresh data, ~16 diminish",
     "arms with max_unique_tokens at fixed compute", RULE_ELSEWHERE, 0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C12", "Distillation reaches a loss sooner", "teacher logits, not implemented yet", RULE_ELSEWHERE, 0, {0}, {0},
     {0}, NULL, NULL, NULL, NULL},
    {"C13", "An \"8-month halving\" can be an artifact of scale-dependent gains", "`algoprog account simulate` (below)",
     RULE_SIMULATION, 0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C14", "600x in 7 years is a 9-month halving; 0.5 OOM/yr; 4x/yr compounds", "`algoprog account` (below)",
     RULE_RATES, 0, {0}, {0}, {0}, NULL, NULL, NULL, NULL},
    {"C15", "Tokenizer flavours differ by 0-15% in compression", "`algoprog tokenize stats`", RULE_ELSEWHERE, 0, {0},
     {0}, {0}, NULL, NULL, NULL, NULL},
};

const ClaimSpec *claims_table(int *n) {
    *n = (int)(sizeof CLAIMS / sizeof CLAIMS[0]);
    return CLAIMS;
}

static int arm_matches(const ResultArm *a, const ArmSelector *s, const ResultArm *ref) {
    if (s->preset && strcmp(a->row.preset, s->preset)) return 0;
    if (s->same_preset && (!ref || strcmp(a->row.preset, ref->row.preset))) return 0;
    if ((s->kaplan == 1) != !strcmp(a->row.allocation, "kaplan")) return 0;
    if (s->key) {
        const ConfigKey *k = config_key_find(s->key);
        char v[CONFIG_PATH_MAX];
        if (!k || !a->has_cfg) return 0;
        config_get(&a->cfg, k, v, sizeof v);
        if (strcmp(v, s->value)) return 0;
    }
    return 1;
}

int claims_select(const Results *r, const ArmSelector *sel, int ref) {
    if (!sel->preset && !sel->key && !sel->kaplan && !sel->same_preset) return -1; /* an empty selector */
    for (int i = 0; i < r->n_arms; i++)
        if (i != ref && arm_matches(&r->arms[i], sel, ref >= 0 ? &r->arms[ref] : NULL)) return i;
    return -1;
}

/* A level's interval decides something only when both bounds are finite. */
static int finite_interval(const CegLevel *v) { return isfinite(v->lo) && isfinite(v->hi) && v->lo > 0; }

/* The level a single-number rule reads: the middle of the levels both arms measured. */
static const CegLevel *middle_measured(const CegCurve *c) {
    int idx[CEG_MAX_LEVELS], m = 0;
    for (int k = 0; k < c->n; k++)
        if (!c->lv[k].extrapolated) idx[m++] = k;
    return m ? &c->lv[idx[m / 2]] : NULL;
}

/* A comparison of two arms: the measured CEG and the rule's verdict (docs/CLAIMS.md, "Verdict rules"). */
static void judge_pair(Results *r, const ClaimSpec *s, ClaimResult *c) {
    int ref = claims_select(r, &s->ref, -1);
    int cand = ref < 0 ? -1 : claims_select(r, &s->cand, ref);
    if (ref >= 0 && cand < 0) cand = claims_select(r, &s->cand_alt, ref);
    if (ref < 0 || cand < 0) {
        snprintf(c->result, sizeof c->result, "not tested by this study: %s", s->how);
        c->verdict = "not tested";
        return;
    }
    c->pair = results_pair(r, ref, cand);
    const ResultPair *p = c->pair < 0 ? NULL : &r->pairs[c->pair];
    const char *A = r->arms[ref].row.name, *B = r->arms[cand].row.name;
    if (!p || !p->ok) {
        snprintf(c->result, sizeof c->result, "%s vs %s: the frontiers could not be compared (%.200s)", B, A,
                 p ? p->why : "out of memory");
        c->verdict = "undecided";
        return;
    }
    const CegCurve *cv = &p->c;
    const CegLevel *m = middle_measured(cv);
    int beats = 0, behind = 0, measured = 0;
    for (int k = 0; k < cv->n; k++) {
        const CegLevel *v = &cv->lv[k];
        if (v->extrapolated) continue;
        measured++;
        beats += finite_interval(v) && v->lo > 1;
        behind += finite_interval(v) && v->hi < 1;
    }
    if (!m) {
        snprintf(c->result, sizeof c->result, "%s vs %s: no loss that both frontiers reached (only extrapolated levels)",
                 B, A);
        c->verdict = "undecided";
        return;
    }
    snprintf(c->result, sizeof c->result,
             "%s over %s: CEG %.3gx [%.3g, %.3g] at %.3f bits/byte (%s needs %.3g FLOPs; %s); over the levels both "
             "reached %.3gx to %.3gx, d log CEG / d log C = %.2g [%.2g, %.2g] (%s); CEG > 1 decided at %d of %d levels%s",
             B, A, m->ceg, m->lo, m->hi, m->loss, A, m->c_ref, ceg_method_name(m->method), cv->lv[0].ceg,
             cv->lv[cv->n - 1].ceg, cv->slope, cv->slope_lo, cv->slope_hi, cv->trend, beats, measured,
             cv->determined ? "" : "; a frontier rests on fewer than 4 budgets, so this is illustrative");
    double lo = m->lo, hi = m->hi, x = s->x;
    c->verdict = "undecided";
    if (!cv->determined) return;
    switch (s->rule) {
    case RULE_BEATS_AND_GROWS:
        if (beats >= 2 && !strcmp(cv->trend, "grows")) c->verdict = "supports";
        else if (beats >= 2 && !strcmp(cv->trend, "shrinks")) c->verdict = "contradicts in part (ahead, but the gap shrinks)";
        else if (beats >= 2) c->verdict = s->v_partial;
        else if (behind >= 2) c->verdict = s->v_low;
        break;
    case RULE_BELOW:
        if (!finite_interval(m)) break;
        if (hi < x) c->verdict = "supports";
        else if (lo > x) c->verdict = s->v_high;
        break;
    case RULE_ABOUT: /* an equivalence band [x/1.5, 1.5x] must hold the whole interval */
        if (!finite_interval(m)) break;
        if (lo >= x / 1.5 && hi <= 1.5 * x) c->verdict = s->v_supports;
        else if (hi < x / 1.5 && hi < 1) c->verdict = s->v_low;
        else if (hi < x / 1.5) c->verdict = "contradicts (a gain, but less than about 2x)";
        else if (lo > 1.5 * x) c->verdict = s->v_high;
        else if (lo > 1) c->verdict = "undecided (a gain, its size not pinned to about 2x)";
        break;
    default: break;
    }
}

static void judge_ablation(const Results *r, const ClaimSpec *s, ClaimResult *c) {
    if (!r->n_ablations) {
        snprintf(c->result, sizeof c->result, "tested by: %s", s->how);
        c->verdict = "not tested by this study";
        return;
    }
    const ResultAblation *ab = &r->abl[0];
    const AblationStats *x = &ab->s;
    snprintf(c->result, sizeof c->result,
             "ablation %.47s at %.3f bits/byte: the leave-one-out gains multiply to %.3gx [%.3g, %.3g] against a whole "
             "package of %.3gx [%.3g, %.3g] (ratio %.3g [%.3g, %.3g]); one at a time they multiply to %.3gx",
             ab->name, x->L, x->prod_loo[0], x->prod_loo[1], x->prod_loo[2], x->package[0], x->package[1],
             x->package[2], x->c3[0], x->c3[1], x->c3[2], x->prod_single[0]);
    c->verdict = x->c3[1] > 1 ? "supports" : x->c3[2] < 1 ? "contradicts" : "undecided";
}

static void judge_rates(ClaimResult *c) {
    Status st;
    Rate a = {600, 7, NAN, NAN, NAN}, b = {NAN, 7, 4, NAN, NAN}, d = {NAN, 1, NAN, 0.5, NAN};
    rate_complete(&a, &st), rate_complete(&b, &st), rate_complete(&d, &st);
    snprintf(c->result, sizeof c->result,
             "600x in 7 years = %.2fx/year = halving every %.1f months; 0.5 OOM/year = %.2fx/year = halving every "
             "%.1f months; 4x/year for 7 years = %.0fx",
             a.annual, a.halving_months, d.annual, d.halving_months, b.factor);
    c->verdict = "supports (arithmetic)";
}

static void judge_simulation(ClaimResult *c) {
    Status st;
    Simulation s;
    simulation_default(&s);
    RateFit f0, f1;
    s.frontier_share = 0;
    simulate_rate(&s, &f0, &st);
    s.frontier_share = 1;
    simulate_rate(&s, &f1, &st);
    Rate t = {NAN, 1, s.steady, NAN, NAN};
    rate_complete(&t, &st);
    snprintf(c->result, sizeof c->result,
             "simulated world with a true steady halving of %.0f months and one scale-dependent innovation: a sample "
             "of small models fits %.0f months [%.0f, %.0f], a sample of frontier models %.0f months [%.0f, %.0f]",
             t.halving_months, f0.halving_months, f0.halving_lo, f0.halving_hi, f1.halving_months, f1.halving_lo,
             f1.halving_hi);
    c->verdict = f1.halving_hi < f0.halving_lo ? "supports (simulation)" : "undecided";
}

int claims_evaluate(Results *r, ClaimResult *out, int max) {
    int n;
    const ClaimSpec *t = claims_table(&n);
    if (n > max) n = max;
    for (int i = 0; i < n; i++) {
        ClaimResult *c = &out[i];
        memset(c, 0, sizeof *c);
        c->spec = &t[i];
        c->pair = -1;
        switch (t[i].rule) {
        case RULE_BEATS_AND_GROWS:
        case RULE_BELOW:
        case RULE_ABOUT: judge_pair(r, &t[i], c); break;
        case RULE_ABLATION: judge_ablation(r, &t[i], c); break;
        case RULE_RATES: judge_rates(c); break;
        case RULE_SIMULATION: judge_simulation(c); break;
        case RULE_ELSEWHERE:
            snprintf(c->result, sizeof c->result, "tested by: %s", t[i].how);
            c->verdict = "not tested by this study";
            break;
        }
    }
    return n;
}

const char *claims_verdict_class(const char *v) {
    if (!strncmp(v, "supports", 8)) return "v-supports";
    if (!strncmp(v, "contradicts", 11)) return "v-contradicts";
    if (!strncmp(v, "not tested", 10)) return "v-not";
    return "v-undecided";
}
