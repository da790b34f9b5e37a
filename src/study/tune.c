/* tune.c - the learning-rate sweep policy (see tune.h). */
#include "study/tune.h"

#include "config/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MULTS 64

/* One multiplier at one sweep budget: mean validation bits per byte over its seeds. */
typedef struct {
    double mult, score;
    int n;
} Cell;

typedef struct {
    int budget_index;
    double n_params;      /* N of the sweep's model at this budget */
    Cell cell[MAX_MULTS]; /* sorted by multiplier */
    int n_cells;
    int best;             /* index of the lowest score */
    double opt;           /* refined multiplier */
    int at_edge;
} SweepBudget;

static int same_mult(double a, double b) { return fabs(a / b - 1) < 1e-9; }

static int cell_order(const void *a, const void *b) {
    const Cell *x = a, *y = b;
    return (x->mult > y->mult) - (x->mult < y->mult);
}

/* Groups the finished sweep runs by budget and multiplier. */
static int collect(const RunRow *runs, int n, SweepBudget *sb, int max_budgets) {
    int nb = 0;
    for (int i = 0; i < n; i++) {
        const RunRow *x = &runs[i];
        int b = 0;
        while (b < nb && sb[b].budget_index != x->budget_index) b++;
        if (b == nb) {
            if (nb == max_budgets) continue;
            memset(&sb[nb], 0, sizeof sb[nb]);
            sb[nb].budget_index = x->budget_index;
            sb[nb].n_params = (double)x->params_nonembedding;
            nb++;
        }
        SweepBudget *s = &sb[b];
        int c = 0;
        while (c < s->n_cells && !same_mult(s->cell[c].mult, x->lr_mult)) c++;
        if (c == s->n_cells) {
            if (c == MAX_MULTS) continue;
            s->cell[s->n_cells++] = (Cell){x->lr_mult, 0, 0};
        }
        /* a diverged seed makes the multiplier infinitely bad */
        s->cell[c].score += x->status == RUN_DONE && isfinite(x->val_bpb) ? x->val_bpb : INFINITY;
        s->cell[c].n++;
    }
    for (int b = 0; b < nb; b++) {
        SweepBudget *s = &sb[b];
        for (int c = 0; c < s->n_cells; c++) s->cell[c].score /= s->cell[c].n;
        qsort(s->cell, (size_t)s->n_cells, sizeof s->cell[0], cell_order);
        s->best = 0;
        for (int c = 1; c < s->n_cells; c++)
            if (s->cell[c].score < s->cell[s->best].score) s->best = c;
    }
    /* by model size, smallest first */
    for (int i = 1; i < nb; i++)
        for (int j = i; j > 0 && sb[j - 1].n_params > sb[j].n_params; j--) {
            SweepBudget t = sb[j];
            sb[j] = sb[j - 1];
            sb[j - 1] = t;
        }
    return nb;
}

/* The vertex of the parabola through the best multiplier and its neighbours (log scale), kept
 * between the neighbours; the best grid point itself at an edge or when a neighbour diverged. */
static double refine(const SweepBudget *s) {
    int k = s->best;
    if (k == 0 || k == s->n_cells - 1) return s->cell[k].mult;
    double x0 = log(s->cell[k - 1].mult), x1 = log(s->cell[k].mult), x2 = log(s->cell[k + 1].mult);
    double y0 = s->cell[k - 1].score, y1 = s->cell[k].score, y2 = s->cell[k + 1].score;
    if (!isfinite(y0) || !isfinite(y2)) return s->cell[k].mult;
    double d1 = (y1 - y0) / (x1 - x0), d2 = (y2 - y1) / (x2 - x1), curv = (d2 - d1) / (x2 - x0);
    if (!(curv > 0)) return s->cell[k].mult;
    double xv = 0.5 * (x0 + x1) - d1 / (2 * curv);
    return exp(fmin(fmax(xv, x0), x2));
}

static double meta_num(Registry *r, const char *key, double fallback) {
    char buf[64];
    Status ignore;
    return registry_meta(r, key, buf, sizeof buf, &ignore) == 1 ? atof(buf) : fallback;
}

/* A run's config with the learning rate (and Muon's AdamW rate) scaled by mult; malloc'ed JSON. */
static char *scaled_config(const char *json, double mult, Status *st) {
    Config c;
    config_defaults(&c);
    if (config_from_json(&c, json, st)) return NULL;
    c.lr *= mult;
    c.adam_lr *= mult;
    char *out = config_to_json(&c);
    if (!out) status_fail(st, AP_ENOMEM, "out of memory");
    return out;
}

/* Grows budget s's grid by two multipliers past its best edge, for every seed. */
static int grow(Registry *r, const RunRow *runs, int n, const SweepBudget *s, double factor, Status *st) {
    int up = s->best == s->n_cells - 1;
    double edge = s->cell[s->best].mult;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) { /* one template per seed: the run at the edge */
        const RunRow *t = &runs[i];
        if (t->budget_index != s->budget_index || !same_mult(t->lr_mult, edge)) continue;
        double mult[2];
        char *cfg[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            mult[k] = edge * pow(factor, up ? k + 1 : -(k + 1));
            cfg[k] = scaled_config(t->config, mult[k] / t->lr_mult, st);
            if (!cfg[k]) rc = -1;
        }
        if (!rc) rc = registry_add_runs(r, t->id, mult, cfg, 2, st);
        free(cfg[0]), free(cfg[1]);
    }
    return rc;
}

/* The rate law of a settled sweep: m(N) = m0 (N / n0)^slope. */
typedef struct {
    double m0, n0, slope;
    int clamped;
} RateLaw;

static double law_mult(const RateLaw *l, double n) { return l->m0 * pow(n / l->n0, l->slope); }

static void describe(char *buf, size_t size, const SweepBudget *sb, int nb, const RateLaw *law, double base_lr) {
    size_t len = 0;
    buf[0] = '\0';
    for (int b = 0; b < nb && len < size; b++) {
        const SweepBudget *s = &sb[b];
        len += (size_t)snprintf(buf + len, size - len, "%ssweep at N=%.3g: x%.3g best (%.4f bits/byte)%s",
                                b ? "; " : "", s->n_params, s->opt, s->cell[s->best].score,
                                s->at_edge ? ", at the edge of the grid after every extension" : "");
    }
    if (len < size && nb > 1)
        snprintf(buf + len, size - len, "; lr = %.3g (N / %.3g)^%.2f%s", base_lr * law->m0, law->n0, law->slope,
                 law->clamped ? " (slope clamped)" : "");
    else if (len < size)
        snprintf(buf + len, size - len, "; lr = %.3g at every size", base_lr * law->m0);
}

/* Releases the blocked runs of every arm the sweep tunes, each at the rate of its own N. */
static int release(Registry *r, int leader, const RateLaw *law, const char *source, Status *st) {
    int arms[STUDY_MAX_ARMS];
    int n_arms = registry_tune_group(r, leader, arms, STUDY_MAX_ARMS, st);
    if (n_arms < 0) return -1;
    ArmTuning tuning[STUDY_MAX_ARMS];
    RunRelease *rel = NULL;
    RunRow *blocked[STUDY_MAX_ARMS] = {0};
    int n_blocked[STUDY_MAX_ARMS] = {0}, total = 0, rc = 0;
    for (int a = 0; a < n_arms && !rc; a++) {
        rc = registry_runs(r, arms[a], RUN_MAIN, RUN_BLOCKED, 1, &blocked[a], &n_blocked[a], st);
        total += n_blocked[a];
    }
    if (!rc && !(rel = calloc((size_t)(total ? total : 1), sizeof *rel))) rc = status_fail(st, AP_ENOMEM, "out of memory");
    int k = 0;
    for (int a = 0; a < n_arms && !rc; a++) {
        double smallest = INFINITY;
        for (int i = 0; i < n_blocked[a] && !rc; i++) {
            const RunRow *x = &blocked[a][i];
            double m = law_mult(law, (double)x->params_nonembedding);
            smallest = fmin(smallest, (double)x->params_nonembedding);
            rel[k] = (RunRelease){x->id, scaled_config(x->config, m, st), m};
            if (!rel[k++].config) rc = -1;
        }
        tuning[a] = (ArmTuning){arms[a], isfinite(smallest) ? law_mult(law, smallest) : law->m0, source};
    }
    if (!rc) rc = registry_settle(r, tuning, n_arms, rel, k, st);
    for (int i = 0; i < k; i++) free((char *)rel[i].config);
    free(rel);
    for (int a = 0; a < n_arms; a++) registry_runs_free(blocked[a], n_blocked[a]);
    return rc;
}

int tune_settle_arm(Registry *r, int arm_id, Status *st) {
    RunRow *runs = NULL;
    int n = 0;
    if (registry_runs(r, arm_id, RUN_LR_SWEEP, -1, 1, &runs, &n, st)) return -1;
    int open_runs = 0; /* a failed sweep run (diverged, say) is finished: its rate scores as infinitely bad */
    for (int i = 0; i < n; i++) open_runs += runs[i].status != RUN_DONE && runs[i].status != RUN_FAILED;
    if (n == 0 || open_runs) {
        registry_runs_free(runs, n);
        return 0;
    }
    double factor = meta_num(r, "lr_sweep_factor", 2), points = meta_num(r, "lr_sweep", 5);
    int extend = (int)meta_num(r, "lr_sweep_extend", 0);
    SweepBudget sb[2];
    int nb = collect(runs, n, sb, 2), rc = 0, grown = 0;
    for (int b = 0; b < nb && !rc; b++) {
        SweepBudget *s = &sb[b];
        int edge = s->best == 0 || s->best == s->n_cells - 1;
        int extensions = (s->n_cells - (int)points) / 2;
        if (edge && s->n_cells > 1 && extensions < extend) {
            rc = grow(r, runs, n, s, factor, st);
            grown = 1;
            continue;
        }
        s->at_edge = edge && s->n_cells > 1;
        s->opt = refine(s);
    }
    if (rc || grown || nb == 0) { /* a grown grid is settled when its new runs finish */
        registry_runs_free(runs, n);
        return rc;
    }
    RateLaw law = {sb[0].opt, sb[0].n_params, 0, 0};
    if (nb == 2 && sb[1].n_params > sb[0].n_params) {
        double slope = log(sb[1].opt / sb[0].opt) / log(sb[1].n_params / sb[0].n_params);
        law.slope = fmin(fmax(slope, TUNE_SLOPE_MIN), TUNE_SLOPE_MAX);
        law.clamped = law.slope != slope;
    }
    /* the preset's rate: a sweep run's rate divided by its multiplier */
    Config c;
    config_defaults(&c);
    double base_lr = config_from_json(&c, runs[0].config, st) ? NAN : c.lr / runs[0].lr_mult;
    char source[512];
    describe(source, sizeof source, sb, nb, &law, base_lr);
    registry_runs_free(runs, n);
    return release(r, arm_id, &law, source, st);
}

int tune_settle_pending(Registry *r, Status *st) {
    int ids[STUDY_MAX_ARMS];
    int n = registry_arms_to_settle(r, ids, STUDY_MAX_ARMS, st);
    for (int i = 0; i < n; i++)
        if (tune_settle_arm(r, ids[i], st)) return -1;
    return n < 0 ? -1 : 0;
}
