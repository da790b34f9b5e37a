/* html.c - the report page, one function per section (see html.h). */
#include "report/html.h"

#include "core/parallel.h"
#include "fit/account.h"
#include "report/plots.h"
#include "report/samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *CSS =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222;line-height:1.45}h1{font-size:1.7em}h2{margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "vertical-align:top}th{background:#f3f3f3;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".meta{color:#555}.v-supports{background:#e6f4ea}.v-contradicts{background:#fce8e6}.v-undecided{background:#fef7e0}"
    ".v-not{color:#777}svg.plot{display:block;margin:1em 0;max-width:100%;height:auto}.note{color:#666;font-size:.9em}"
    "pre.sample{white-space:pre-wrap;margin:0;font-size:.85em}";

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

/* "<td>text</td>" with the text escaped. */
static void td(StrBuf *b, const char *text) {
    sb_puts(b, "<td>");
    sb_html(b, text);
    sb_puts(b, "</td>");
}

static void section_header(const Results *r, const ReportOptions *o, StrBuf *b) {
    char cpu[256], now[32];
    cpu_name(cpu, sizeof cpu);
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", gmtime_r(&t, &tm));
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>algoprog report: ");
    sb_html(b, r->info.name);
    sb_printf(b, "</title><style>%s</style></head><body>\n<h1>algoprog report: ", CSS);
    sb_html(b, r->info.name);
    sb_puts(b, "</h1>\n<p class=\"meta\">");
    sb_printf(b, "%d of %d runs done, %.3g training FLOPs in %.1f minutes of training; data <b>", r->runs_done,
              r->runs_total, r->flops_done, r->seconds / 60);
    sb_html(b, r->info.data);
    sb_puts(b, "</b>, tokenizer <b>");
    sb_html(b, r->info.tokenizer);
    sb_puts(b, "</b>, allocation <b>");
    sb_html(b, r->info.allocation);
    sb_printf(b, "</b>; study created %s, report made %s on %d cores (", r->info.created, now, parallel_cores());
    sb_html(b, cpu);
    sb_printf(b, "). Intervals are 95%% parametric bootstraps of the frontiers, paired by budget and seed (%d "
                 "resamples, seed %llu; docs/FITTING.md).</p>\n",
              o->n_boot, o->seed);
    if (r->runs_done < r->runs_total)
        sb_puts(b, "<p><b>The study is not finished: everything below uses the runs done so far.</b></p>\n");
}

static void section_claims(const ClaimResult *c, int n, StrBuf *b) {
    sb_puts(b, "<h2 id=\"claims\">Claims</h2>\n<p>Each verdict is computed from this study's runs. A compute-equivalent "
               "gain (CEG) of B over A at a loss is how many times less compute B's fitted frontier needs to reach "
               "it.</p>\n<table id=\"claims-table\"><tr><th>id</th><th>claim</th><th>what this study measured</th>"
               "<th>verdict</th></tr>\n");
    for (int i = 0; i < n; i++) {
        sb_printf(b, "<tr class=\"%s\"><td>%s</td>", claims_verdict_class(c[i].verdict), c[i].spec->id);
        td(b, c[i].spec->text);
        td(b, c[i].result);
        td(b, c[i].verdict);
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table>\n");
}

static void section_ceg(const Results *r, StrBuf *b) {
    sb_puts(b, "<h2 id=\"ceg\">Compute-equivalent gains</h2>\n<p>Against the first arm, at losses both frontiers "
               "reached (a level beyond either arm's measured frontier is marked <i>extrapolated</i> and decides no "
               "verdict). <i>law</i>: from the two fitted laws; <i>local</i>: interpolated between an arm's frontier "
               "points where its law does not identify the floor E. Bands: 95% intervals.</p>\n");
    plot_ceg_vs_compute(r, b);
    sb_puts(b, "<table id=\"ceg-table\"><tr><th>arm</th><th>over</th><th>loss (bits/byte)</th><th>reference FLOPs</th>"
               "<th>CEG [95%]</th><th>method</th><th>trend with scale</th></tr>\n");
    for (int i = 0; i < r->n_pairs; i++) {
        const ResultPair *p = &r->pairs[i];
        if (!p->ok) {
            sb_puts(b, "<tr>");
            td(b, r->arms[p->cand].row.name);
            td(b, r->arms[p->ref].row.name);
            sb_puts(b, "<td colspan=\"5\">not comparable: ");
            sb_html(b, p->why);
            sb_puts(b, "</td></tr>\n");
            continue;
        }
        for (int k = 0; k < p->c.n; k++) {
            const CegLevel *v = &p->c.lv[k];
            sb_puts(b, "<tr>");
            td(b, r->arms[p->cand].row.name);
            td(b, r->arms[p->ref].row.name);
            sb_printf(b, "<td class=\"num\">%.4f</td><td class=\"num\">%.3g</td><td class=\"num\">%.3gx [%.3g, %.3g]%s</td>"
                         "<td>%s</td>",
                      v->loss, v->c_ref, v->ceg, v->lo, v->hi, v->extrapolated ? " (extrapolated)" : "",
                      ceg_method_name(v->method));
            if (k == 0) {
                sb_printf(b, "<td rowspan=\"%d\">slope %.3g [%.3g, %.3g]: %s%s. Seed correlation used %.2g",
                          p->c.n, p->c.slope, p->c.slope_lo, p->c.slope_hi, p->c.trend,
                          p->c.determined ? "" : " (a frontier rests on too few budgets)", p->c.rho_used);
                if (p->c.notes[0]) {
                    sb_puts(b, "; ");
                    sb_html(b, p->c.notes);
                }
                sb_puts(b, "</td>");
            }
            sb_puts(b, "</tr>\n");
        }
    }
    sb_puts(b, "</table>\n");
}

/* Costs beyond training FLOPs, where a study has arms that differ in them: parameters a token does
 * not use (experts) and the KV cache decoding keeps (attention kinds). */
/* An axis' CEG is decided when its interval lies on one side of 1: +1 a gain, -1 a loss, 0 neither. */
static int axis_sign(const ResultArm *m, int axis) {
    if (!m->axis[axis].ok) return 0;
    return m->axis[axis].lo > 1 ? 1 : m->axis[axis].hi < 1 ? -1 : 0;
}

static void section_cost_axes(const Results *r, StrBuf *b) {
    if (r->n_arms < 2) return;
    sb_puts(b, "<h2 id=\"cost-axes\">Gains on other cost axes</h2>\n<p>The CEG of each arm over the first when the "
               "cost is not training FLOPs: wall-clock seconds of training on this machine (runs that shared it with "
               "other workers are slower), every parameter (what serving holds), KV-cache bytes per token (what "
               "decoding keeps), training memory. On each axis an arm's frontier is its Pareto front (each "
               "configuration's runs averaged over seeds); the CEG is read at the middle of the losses both arms "
               "reach there, with its 95% interval. <b>disagree</b>: decided gains on one axis and decided losses on "
               "another. <code>algoprog fit DIR --cost AXIS</code> gives every level.</p>\n"
               "<table id=\"cost-axes-table\"><tr><th>arm</th>");
    for (int k = 0; k < COST_AXES; k++) sb_printf(b, "<th>%s</th>", cost_axis_names[k]);
    sb_puts(b, "<th>axes</th></tr>\n");
    for (int a = 1; a < r->n_arms; a++) {
        const ResultArm *m = &r->arms[a];
        int pos = 0, neg = 0;
        sb_puts(b, "<tr>");
        td(b, m->row.name);
        for (int k = 0; k < COST_AXES; k++) {
            if (!m->axis[k].ok) {
                sb_puts(b, "<td title=\"");
                sb_html(b, m->axis[k].why);
                sb_puts(b, "\">n/a</td>");
                continue;
            }
            int sg = axis_sign(m, k);
            pos += sg > 0, neg += sg < 0;
            sb_printf(b, "<td class=\"num\" title=\"at loss %.4f\">%.3gx [%.3g, %.3g]</td>", m->axis[k].loss, m->axis[k].ceg,
                      m->axis[k].lo, m->axis[k].hi);
        }
        sb_printf(b, "<td>%s</td></tr>\n", pos && neg ? "<b>disagree</b>" : pos ? "gains" : neg ? "losses" : "undecided");
    }
    sb_puts(b, "</table>\n");
}

static void section_costs(const Results *r, const ClaimResult *claims, int n_claims, StrBuf *b) {
    int nb = results_n_budgets(r), experts = 0;
    double kv_min = INFINITY, kv_max = 0;
    for (int a = 0; a < r->n_arms && nb > 0; a++) {
        ArmCost c;
        if (results_arm_cost(r, a, nb - 1, &c)) continue;
        experts |= c.params > c.active;
        if (c.kv_bytes > 0) kv_min = fmin(kv_min, c.kv_bytes), kv_max = fmax(kv_max, c.kv_bytes);
    }
    if (!experts && !(kv_max > kv_min)) return;
    sb_puts(b, "<h2 id=\"costs\">Parameters, memory and KV cache</h2>\n<p>CEGs count training FLOPs; these are the "
               "other costs, for each arm's best measured size (lowest mean test loss over seeds) at the largest "
               "budget. <i>Active</i>: parameters one token goes through (a mixture of experts holds more than it "
               "uses). <i>KV cache</i>: bytes a decoded token leaves for the later ones (fp32, all layers). "
               "<i>Training memory</i>: parameters, gradients, optimiser state and activations at the study's batch "
               "and context.</p>\n<table id=\"costs-table\"><tr><th>arm</th><th>FLOPs</th><th>test bits/byte</th>"
               "<th>parameters</th><th>active</th><th>KV cache bytes/token</th><th>training memory (MB)</th></tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        ArmCost c;
        if (results_arm_cost(r, a, nb - 1, &c)) continue;
        sb_puts(b, "<tr>");
        td(b, r->arms[a].row.name);
        sb_printf(b, "<td class=\"num\">%.3g</td><td class=\"num\">%.4f</td><td class=\"num\">%.0f</td>"
                     "<td class=\"num\">%.0f</td><td class=\"num\">%.0f</td><td class=\"num\">%.1f</td></tr>\n",
                  c.flops, c.loss, c.params, c.active, c.kv_bytes, c.memory / 1e6);
    }
    sb_puts(b, "</table>\n");
    for (int i = 0; i < n_claims; i++)
        if (claims[i].spec->rule == RULE_KV_TRADE && claims[i].kv_arm[KV_MHA] >= 0) {
            sb_puts(b, "<p>Claim C7's arms: test loss against the KV cache per token at each budget (dashed: one "
                       "budget's arms). Lower and further left is better.</p>\n");
            plot_loss_vs_kv(r, b, claims[i].kv_arm, KV_KINDS);
        }
}

static void section_ablation(const ResultAblation *ab, StrBuf *b) {
    const AblationStats *s = &ab->s;
    sb_puts(b, "<h3>");
    sb_html(b, ab->name);
    sb_printf(b, "</h3>\n<p>Gains at %.4f bits/byte%s: <i>one at a time</i> = base + switch over base; "
                 "<i>leave one out</i> = full package over the package without the switch.</p>\n",
              s->L, s->extrapolated ? " (the arms share no loss range: extrapolated)" : "");
    plot_ablation(ab, b);
    int sh = s->has_shapley, cols = sh ? 3 : 2;
    if (sh)
        sb_puts(b, "<p><i>Shapley share</i> = the switch's gain averaged over every order of adding the switches "
                   "(every subset is an arm); the shares multiply to the whole package.</p>\n");
    sb_printf(b, "<table class=\"ablation-table\"><tr><th>switch</th><th>one at a time</th><th>leave one out</th>%s</tr>\n",
              sh ? "<th>Shapley share</th>" : "");
    for (int i = 0; i < s->n; i++) {
        sb_puts(b, "<tr>");
        td(b, ab->sw[i]);
        sb_printf(b, "<td class=\"num\">%.3gx [%.3g, %.3g]</td><td class=\"num\">%.3gx [%.3g, %.3g]</td>", s->single[i][0],
                  s->single[i][1], s->single[i][2], s->loo[i][0], s->loo[i][1], s->loo[i][2]);
        if (sh) sb_printf(b, "<td class=\"num\">%.3gx [%.3g, %.3g]</td>", s->shapley[i][0], s->shapley[i][1], s->shapley[i][2]);
        sb_puts(b, "</tr>\n");
    }
    sb_printf(b, "<tr><th>product</th><td class=\"num\">%.3gx [%.3g, %.3g]</td><td class=\"num\">%.3gx [%.3g, %.3g]</td>%s</tr>\n"
                 "<tr><th>whole package</th><td class=\"num\" colspan=\"%d\">%.3gx [%.3g, %.3g]</td></tr>\n"
                 "<tr><th>interaction (package / product of one-at-a-time)</th><td class=\"num\" colspan=\"%d\">%.3g [%.3g, "
                 "%.3g]</td></tr>\n</table>\n",
              s->prod_single[0], s->prod_single[1], s->prod_single[2], s->prod_loo[0], s->prod_loo[1], s->prod_loo[2],
              sh ? "<td class=\"num\">= whole package</td>" : "", cols, s->package[0], s->package[1], s->package[2], cols,
              s->interaction[0], s->interaction[1], s->interaction[2]);
}

static void section_isoflop(const Results *r, StrBuf *b) {
    int iso = 0;
    for (int a = 0; a < r->n_arms; a++) {
        const Frontier *f = &r->arms[a].fr;
        int profiled = 0;
        for (int k = 0; k < f->n; k++) profiled |= f->pt[k].n_sizes >= 3;
        if (!profiled) continue;
        if (!iso++)
            sb_puts(b, "<h2 id=\"isoflop\">IsoFLOP profiles</h2>\n<p>Each budget trains several sizes; a parabola of "
                       "loss in log N per seed gives the budget's optimum (diamond) when it lies inside the sizes tried, "
                       "else the best run stands in (dashed curve) and the frontier there is only an upper bound.</p>\n");
        plot_isoflop(r, b, a);
    }
}

static void fmt_param(char *buf, size_t size, const FitParam *p) {
    snprintf(buf, size, "%.4g [%.3g, %.3g]%s", p->value, p->lo, p->hi, p->identified ? "" : " *");
}

static void fmt_exponent(char *buf, size_t size, const FitParam *p) {
    if (isfinite(p->value)) snprintf(buf, size, "%.3f [%.3f, %.3f]%s", p->value, p->lo, p->hi, p->identified ? "" : " *");
    else snprintf(buf, size, "-");
}

static void section_fits(const Results *r, StrBuf *b) {
    sb_puts(b, "<h2 id=\"fits\">Frontiers</h2>\n<p>One point per budget: the mean over seeds of each seed's IsoFLOP "
               "optimum; the law L(C) = E + A C<sup>-&alpha;</sup> through them. Noise: the seed-to-seed spread of one "
               "seed's frontier log loss, this arm's own and the pooled value the intervals use (inflated where the "
               "law misfits). N*(C) &prop; C<sup>a</sup> with N counted three ways: ours (no embeddings, no head), "
               "Kaplan's (no embeddings), Chinchilla's (all parameters).</p>\n"
               "<table id=\"fits-table\"><tr><th>arm</th><th>runs</th><th>points (interior)</th><th>E</th><th>A</th>"
               "<th>&alpha;</th><th>seed spread (own / used)</th><th>a: ours, Kaplan, Chinchilla</th><th>b (D*)</th>"
               "<th>notes</th></tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        const ResultArm *m = &r->arms[a];
        const Frontier *f = &m->fr;
        int interior = 0;
        for (int k = 0; k < f->n; k++) interior += f->pt[k].n_interior > 0;
        sb_puts(b, "<tr>");
        td(b, m->row.name);
        sb_printf(b, "<td class=\"num\">%d%s</td><td class=\"num\">%d (%d)</td>", m->n_points,
                  m->n_plateau ? " +" : "", f->n, interior);
        if (!f->has_law) {
            sb_puts(b, "<td colspan=\"7\">no law (fewer than 2 frontier points)</td>");
        } else {
            char e[96], A[96], al[96], sa[64], aa[3][64], bd[64];
            fmt_param(e, sizeof e, &f->law.p[0]), fmt_param(A, sizeof A, &f->law.p[1]);
            fmt_param(al, sizeof al, &f->law.p[2]);
            snprintf(sa, sizeof sa, "%.2f%% / %.2f%%", 100 * f->sigma_seed, 100 * f->sigma);
            fmt_exponent(aa[0], sizeof aa[0], &f->a_exp), fmt_exponent(aa[1], sizeof aa[1], &m->a_kaplan);
            fmt_exponent(aa[2], sizeof aa[2], &m->a_chinchilla), fmt_exponent(bd, sizeof bd, &f->b_exp);
            sb_printf(b, "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                         "<td class=\"num\">%s; %s; %s</td><td class=\"num\">%s</td>",
                      e, A, al, sa, aa[0], aa[1], aa[2], bd);
            td(b, f->notes);
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table>\n<p class=\"note\">* not identified by these runs: the interval shows the data do not pin it "
               "down. + some runs sat on the unigram plateau and are left out (runs table).</p>\n");
    sb_puts(b, "<h3 id=\"approaches\">N*(C) &prop; C<sup>a</sup>, three ways</h3>\n<p>The frontier's vertices (above), "
               "Chinchilla's approach 2 (a parabola per budget, its vertex, a line through them) and approach 3 (L(N, D) = "
               "E + A/N<sup>&alpha;</sup> + B/D<sup>&beta;</sup> over every run, a = &beta;/(&alpha;+&beta;)). A parabola is "
               "not the profile, so approach 2 is biased where the sizes sit lopsidedly around the optimum: its bias on "
               "this very design is approach 2 run on approach 3's noise-free losses at these runs, minus approach 3's "
               "a; <b>flagged</b> when it exceeds a tenth of a or a quarter of a's interval.</p>\n"
               "<table id=\"approaches-table\"><tr><th>arm</th><th>frontier vertices</th><th>approach 2</th>"
               "<th>design bias</th><th>approach 2 corrected</th><th>approach 3</th></tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        const ResultArm *m = &r->arms[a];
        char fv[64], a2[64], a3[64];
        sb_puts(b, "<tr>");
        td(b, m->row.name);
        fmt_exponent(fv, sizeof fv, &m->fr.a_exp);
        if (!m->has_a23) {
            sb_printf(b, "<td class=\"num\">%s</td><td colspan=\"4\">", fv);
            sb_html(b, m->a23_why[0] ? m->a23_why : "not fitted");
            sb_puts(b, "</td></tr>\n");
            continue;
        }
        fmt_exponent(a2, sizeof a2, &m->a2), fmt_exponent(a3, sizeof a3, &m->a3);
        sb_printf(b, "<td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%+.3f%s</td>"
                     "<td class=\"num\">%.3f</td><td class=\"num\">%s</td></tr>\n",
                  fv, a2, m->a2_bias, m->a2_flagged ? " <b>flagged</b>" : "", m->a2.value - m->a2_bias, a3);
    }
    sb_puts(b, "</table>\n");
    sb_puts(b, "<h3 id=\"holdout\">Validated extrapolation</h3>\n<p>Each arm's law fitted again without its largest "
               "budget, and asked to predict it: a law that cannot predict its own next budget should not carry a "
               "verdict by extrapolation. The 95% prediction interval holds the refitted law's uncertainty and the "
               "point's own seed noise.</p>\n<table id=\"holdout-table\"><tr><th>arm</th><th>held-out budget (FLOPs)"
               "</th><th>frontier loss</th><th>predicted [95%]</th><th>error</th><th>check</th></tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        const Holdout *h = &r->arms[a].holdout;
        sb_puts(b, "<tr>");
        td(b, r->arms[a].row.name);
        if (!h->k) {
            sb_puts(b, "<td colspan=\"5\">not checked: ");
            sb_html(b, h->why[0] ? h->why : "no frontier");
            sb_puts(b, "</td></tr>\n");
            continue;
        }
        sb_printf(b, "<td class=\"num\">%.3g</td><td class=\"num\">%.4f</td><td class=\"num\">%.4f [%.4f, %.4f]</td>"
                     "<td class=\"num\">%+.2f%%</td><td>%s%s%s</td></tr>\n",
                  h->flops[0], h->observed[0], h->predicted[0], h->lo[0], h->hi[0], 100 * h->error[0],
                  h->inside[0] ? "predicted" : "<b>missed</b>", h->why[0] ? "; " : "", h->why);
    }
    sb_puts(b, "</table>\n");
    if (isfinite(r->eval_se)) {
        double pooled = r->n_arms ? r->arms[0].fr.sigma0 : NAN;
        sb_printf(b, "<p>Evaluation noise: the test loss of a run has a standard error of %.2f%% (median over runs, "
                     "evaluation windows as the unit), against a seed-to-seed spread of %.2f%%: the seeds, not the "
                     "text evaluated, set the intervals%s.</p>\n",
                  100 * r->eval_se, 100 * pooled,
                  isfinite(pooled) && r->eval_se > pooled ? " (here the text's own noise is the larger: evaluate more tokens)"
                                                          : "");
    }
}

static void section_samples(const Results *r, const ArmSample *samples, StrBuf *b) {
    if (!samples) return;
    sb_printf(b, "<h2 id=\"samples\">Samples</h2>\n<p>Each arm's largest model (its largest budget, the profile's "
                 "middle size, seed 1) continues the prompt \"%s\" for %d tokens at temperature %.1f (sampling seed "
                 "1).</p>\n<table id=\"samples-table\"><tr><th>arm</th><th>run</th><th>text</th></tr>\n",
              SAMPLE_PROMPT, SAMPLE_TOKENS, SAMPLE_TEMPERATURE);
    for (int a = 0; a < r->n_arms; a++) {
        sb_puts(b, "<tr>");
        td(b, r->arms[a].row.name);
        if (samples[a].text) {
            sb_printf(b, "<td class=\"num\">%d</td><td><pre class=\"sample\">", samples[a].run_id);
            sb_html(b, samples[a].text);
            sb_puts(b, "</pre></td>");
        } else {
            sb_puts(b, "<td></td>");
            td(b, samples[a].why);
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table>\n");
}

/* The runs table's order: arm, budget, model, seed. */
static int runs_order(const void *x, const void *y) {
    const RunRow *a = *(const RunRow *const *)x, *b = *(const RunRow *const *)y;
    if (a->arm_id != b->arm_id) return a->arm_id < b->arm_id ? -1 : 1;
    if (a->budget != b->budget) return a->budget < b->budget ? -1 : 1;
    if (a->point != b->point) return a->point < b->point ? -1 : 1;
    if (a->seed != b->seed) return a->seed < b->seed ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static void section_runs(const Results *r, StrBuf *b) {
    sb_puts(b, "<h2 id=\"runs\">Runs</h2>\n<p>Finished main runs and their loss on the test half of the held-out "
               "text (the learning-rate sweeps chose by the validation half). <i>plateau</i>: within the margin of a "
               "unigram model of the held-out text, left out of the frontier.</p>\n<table id=\"runs-table\"><tr><th>arm</th><th>budget</th><th>seed</th>"
               "<th>N</th><th>width x layers</th><th>tokens</th><th>tokens/N</th><th>FLOPs</th><th>lr x</th>"
               "<th>test bits/byte</th><th></th></tr>\n");
    const RunRow **rows = malloc((size_t)(r->n_runs ? r->n_runs : 1) * sizeof *rows);
    int n = 0;
    for (int i = 0; rows && i < r->n_runs; i++)
        if (r->runs[i].kind == RUN_MAIN && r->runs[i].status == RUN_DONE) rows[n++] = &r->runs[i];
    if (rows) qsort(rows, (size_t)n, sizeof *rows, runs_order);
    for (int i = 0; i < n; i++) {
        const RunRow *x = rows[i];
        int flat = isfinite(x->unigram_bpb) && x->test_bpb >= x->unigram_bpb * (1 - r->plateau_margin);
        char note[64] = "";
        if (flat) snprintf(note, sizeof note, "plateau (unigram %.3f)", x->unigram_bpb);
        else if (x->copied_from) snprintf(note, sizeof note, "= run %d", x->copied_from);
        sb_puts(b, "<tr>");
        td(b, x->arm);
        sb_printf(b, "<td class=\"num\">%.3g</td><td class=\"num\">%d</td><td class=\"num\">%lld</td>"
                     "<td class=\"num\">%d x %d</td><td class=\"num\">%.3g</td><td class=\"num\">%.1f</td>"
                     "<td class=\"num\">%.4g</td><td class=\"num\">%.3g</td><td class=\"num\">%.4f</td>"
                     "<td>%s</td></tr>\n",
                  x->budget, x->seed, x->params_nonembedding, x->d_model, x->n_layers, x->tokens,
                  x->params_nonembedding ? x->tokens / (double)x->params_nonembedding : NAN, x->flops, x->lr_mult,
                  x->test_bpb, note);
    }
    free(rows);
    sb_puts(b, "</table>\n");
}

static void section_methods(const Results *r, StrBuf *b) {
    sb_puts(b, "<h2 id=\"methods\">Methods</h2>\n<table id=\"arms-table\"><tr><th>arm</th><th>preset</th>"
               "<th>overrides</th><th>allocation</th><th>learning rate (smallest run)</th><th>how it was chosen</th>"
               "</tr>\n");
    for (int a = 0; a < r->n_arms; a++) {
        const ArmRow *m = &r->arms[a].row;
        sb_puts(b, "<tr>");
        td(b, m->name);
        td(b, m->preset);
        td(b, m->overrides[0] ? m->overrides : "-");
        td(b, m->allocation);
        sb_printf(b, "<td class=\"num\">%.4g</td>", m->lr);
        td(b, m->lr_source);
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table>\n<h3>How the numbers are made</h3>\n<ul>");
    /* the arithmetic the runs used, as recorded in their configs (auto is recorded only where oneDNN ran it) */
    static const char *const LIB[] = {"oneDNN (gemm = auto)", "oneDNN", "OpenBLAS"}, *const PREC[] = {"fp32", "bf16"};
    int seen[3][2] = {{0}}, any = 0;
    for (int a = 0; a < r->n_arms; a++)
        if (r->arms[a].has_cfg) {
            const Config *c = &r->arms[a].cfg;
            if (c->gemm >= 0 && c->gemm < 3 && c->precision >= 0 && c->precision < 2) seen[c->gemm][c->precision] = 1;
        }
    for (int l = 0; l < 3; l++)
        for (int p = 0; p < 2; p++)
            if (seen[l][p]) sb_printf(b, "%s%s, %s", any++ ? "; " : "<li><b>Arithmetic</b>: matrix products on ", LIB[l], PREC[p]);
    if (any)
        sb_puts(b, " (fp32 accumulation; every other operation in fp32). Libraries differ by rounding only: the golden "
                   "and reference tests hold both to the same kernels.</li>");
    sb_puts(b,
            "<li><b>Compute</b>: every run records its exact parameter count, tokens and FLOPs (matmul-class FLOPs as "
            "executed, plus Muon's orthogonalisation; docs/ARCHITECTURE.md). N excludes the embeddings and the output "
            "head, tied or not, for every arm.</li>"
            "<li><b>Allocation</b>: each budget trains an IsoFLOP profile of sizes about &radic;2 apart around the "
            "allocation rule's choice (docs/STUDIES.md); a Kaplan arm trains the one size its rule picks.</li>"
            "<li><b>Loss</b>: bits per byte on the test half of the held-out text; learning rates were chosen on the "
            "validation half, and sweep runs are never frontier points.</li>"
            "<li><b>Frontier</b>: per budget, the mean over seeds of each seed's profile optimum; the law "
            "L(C) = E + A C<sup>-&alpha;</sup> through those points (Huber loss on log residuals, L-BFGS from a grid "
            "of starts).</li>"
            "<li><b>Intervals</b>: a parametric bootstrap: each resample puts the frontier points at the law's values "
            "plus noise with the seed-to-seed spread pooled from the seed replicates (its own uncertainty drawn too, "
            "inflated where the law misfits), and refits; the two arms of a comparison are resampled together, their "
            "noise correlated as their seeds are. On planted studies shaped like this design, nominal 95% intervals "
            "covered the truth 97% of the time (docs/FITTING.md).</li>"
            "<li><b>CEG</b>: C<sub>A</sub>(L) / C<sub>B</sub>(L) at losses both frontiers reached; from the laws where "
            "both identify their floor E, else interpolated between frontier points (local). A level beyond either "
            "arm's frontier is extrapolated and decides nothing.</li></ul>\n"
            "<h3>Verdict rules</h3>\n<ul>"
            "<li>A verdict needs both frontiers determined (4 or more budgets, noise estimated) and reads only loss "
            "levels both arms reached; an interval with an infinite bound is undecided.</li>"
            "<li><i>B beats A</i> (C1, C4): CEG &gt; 1 decided (lower bound &gt; 1) at 2 or more levels. <i>The gap "
            "grows with scale</i>: also the slope of log CEG against log compute has an interval above 0. Beats "
            "without detected growth: supports in part; A ahead at 2 or more levels: contradicts.</li>"
            "<li><i>Less than x</i> (C2, x = 1.5): the interval at the middle level lies below x (supports) or above "
            "it (contradicts).</li>"
            "<li><i>About x</i> (C6, x = 2): the interval at the middle level lies inside the equivalence band "
            "[x/1.5, 1.5x] = [1.33, 3] (supports); entirely outside it (contradicts); a gain whose size the interval "
            "does not pin down is reported as a direction only (undecided).</li>"
            "<li><i>Reverting one at a time hurts more than the package</i> (C3): the product of the leave-one-out "
            "gains over the whole package's gain, interval above 1.</li></ul>\n"
            "<details><summary>The study file</summary><pre>");
    sb_html(b, r->info.spec ? r->info.spec : "");
    sb_puts(b, "</pre></details>\n");
}

static void section_accounting(StrBuf *b) {
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
        Status st;
        rate_complete(&rt, &st);
        sb_printf(b, "<tr><td>%s</td><td class=\"num\">%.4gx</td><td class=\"num\">%.0f</td><td class=\"num\">%.3gx</td>"
                     "<td class=\"num\">%.3f</td><td class=\"num\">%.1f months</td></tr>\n",
                  rows[i].what, rt.factor, rt.years, rt.annual, rt.oom_per_year, rt.halving_months);
    }
    sb_puts(b, "</table>\n<p>600x = 6 (hardware) x 5 (algorithms) x 2.5 (optimisations) x 8 (data): shares of the log "
               "28%, 25%, 14%, 33% (<code>algoprog account decompose</code>).</p>\n");
}

void html_render(const Results *r, const ClaimResult *claims, int n_claims, const ArmSample *samples,
                 const ReportOptions *o, StrBuf *b) {
    section_header(r, o, b);
    section_claims(claims, n_claims, b);
    sb_puts(b, "<h2 id=\"loss\">Loss against compute</h2>\n<p>Dots: finished runs (test bits per byte at their end; "
               "hollow: on the unigram plateau, left out). Diamonds: each budget's frontier point. Lines: the laws "
               "L(C) = E + A C<sup>-&alpha;</sup> through them; dashed where a parameter is not identified.</p>\n");
    plot_loss_vs_compute(r, b);
    section_ceg(r, b);
    section_costs(r, claims, n_claims, b);
    section_cost_axes(r, b);
    if (r->n_ablations) {
        sb_puts(b, "<h2 id=\"ablations\">Ablations</h2>\n");
        for (int i = 0; i < r->n_ablations; i++) section_ablation(&r->abl[i], b);
    }
    section_isoflop(r, b);
    section_fits(r, b);
    section_samples(r, samples, b);
    section_runs(r, b);
    section_methods(r, b);
    section_accounting(b);
    sb_puts(b, "<p class=\"note\">Tables as data: runs.csv (from <code>algoprog study export</code>), fits.csv, "
               "ceg.csv, claims.csv, report.json.</p>\n</body></html>\n");
}
