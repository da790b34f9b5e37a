/* points.c - fit points from CSV files and study registries (see points.h). */
#include "fit/points.h"

#include "core/fileio.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int arm_index(PointSet *ps, const char *name) {
    for (int i = 0; i < ps->n_arms; i++)
        if (!strcmp(ps->arms[i], name)) return i;
    if (ps->n_arms == POINTS_MAX_ARMS) return -1;
    snprintf(ps->arms[ps->n_arms], sizeof ps->arms[0], "%s", name);
    return ps->n_arms++;
}

/* Without a budget, runs of one budget are those whose FLOPs agree to 2 significant digits. */
static double flops_budget(double flops) {
    double e = pow(10, floor(log10(flops)) - 1);
    return round(flops / e) * e;
}

static int group_index(PointSet *ps, double budget) {
    for (int i = 0; i < ps->n_groups; i++)
        if (fabs(ps->group_budget[i] / budget - 1) < 1e-9) return i;
    if (ps->n_groups == FIT_MAX_GROUPS) return -1;
    ps->group_budget[ps->n_groups] = budget;
    return ps->n_groups++;
}

static int push(PointSet *ps, const FitPoint *p) {
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 256;
        FitPoint *q = realloc(ps->p, (size_t)cap * sizeof *q);
        if (!q) return -1;
        ps->p = q, ps->cap = cap;
    }
    ps->p[ps->n++] = *p;
    return 0;
}

/* Splits one CSV record (RFC 4180 quotes) into fields; returns the count or -1. */
static int csv_fields(char **cursor, char **fields, int max) {
    char *p = *cursor, *w = p;
    int n = 0;
    if (!*p) return 0;
    fields[n++] = w;
    int quoted = 0;
    while (*p) {
        if (quoted) {
            if (*p == '"' && p[1] == '"') *w++ = '"', p += 2;
            else if (*p == '"') quoted = 0, p++;
            else *w++ = *p++;
        } else if (*p == '"') {
            quoted = 1, p++;
        } else if (*p == ',') {
            *w++ = '\0', p++;
            if (n == max) return -1;
            fields[n++] = w;
        } else if (*p == '\n' || *p == '\r') {
            while (*p == '\r' || *p == '\n') p++;
            break;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    *cursor = p;
    return quoted ? -1 : n;
}

int points_read_csv(PointSet *ps, const char *path, Status *st) {
    memset(ps, 0, sizeof *ps);
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, 1 << 28, st)) return -1;
    char *cur = text, *f[256];
    int nf = csv_fields(&cur, f, 256);
    if (nf <= 0) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: no header row", path);
    }
    enum { ARM, PARAMS, PARAMS_NE, TOKENS, FLOPS, LOSS, BPB, VLOSS, BUDGET, KIND, STATUS, SEED, EPOCHS, NCOL };
    static const char *names[NCOL] = {"arm", "params", "params_nonembedding", "tokens", "flops", "loss",
                                      "val_bpb", "val_loss", "budget", "kind", "status", "seed", "epochs"};
    int col[NCOL];
    for (int k = 0; k < NCOL; k++) col[k] = -1;
    for (int i = 0; i < nf; i++) {
        char *h = f[i];
        while (isspace((unsigned char)*h)) h++;
        for (int k = 0; k < NCOL; k++)
            if (!strcasecmp(h, names[k])) col[k] = i;
        if (!strcasecmp(h, "N")) col[PARAMS] = i;
        if (!strcasecmp(h, "D")) col[TOKENS] = i;
        if (!strcasecmp(h, "C") || !strcasecmp(h, "compute")) col[FLOPS] = i;
    }
    int lcol = col[LOSS] >= 0 ? col[LOSS] : col[BPB] >= 0 ? col[BPB] : col[VLOSS];
    int ncol = col[PARAMS_NE] >= 0 ? col[PARAMS_NE] : col[PARAMS];
    if (lcol < 0) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: no loss column (loss, val_bpb or val_loss)", path);
    }
    if (col[FLOPS] < 0 && (ncol < 0 || col[TOKENS] < 0)) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: need a flops column, or params and tokens", path);
    }
    int line = 1, derived_c = 0, derived_d = 0, rc = 0;
    while (*cur && !rc) {
        line++;
        nf = csv_fields(&cur, f, 256);
        if (nf == 0) continue;
        if (nf < 0) {
            rc = status_fail(st, AP_EINVAL, "%s:%d: malformed CSV (unclosed quote or too many columns)", path, line);
            break;
        }
        if (col[KIND] >= 0 && col[KIND] < nf && strcmp(f[col[KIND]], "main")) continue;
        if (col[STATUS] >= 0 && col[STATUS] < nf && strcmp(f[col[STATUS]], "done")) continue;
        FitPoint p = {NAN, NAN, NAN, NAN, 0, -1, 0, 1};
        double *dst[4] = {&p.params, &p.tokens, &p.flops, &p.loss};
        int cols[4] = {ncol, col[TOKENS], col[FLOPS], lcol};
        for (int k = 0; k < 4; k++) {
            if (cols[k] < 0) continue;
            if (cols[k] >= nf) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: fewer fields than the header", path, line);
                break;
            }
            char *end;
            double v = strtod(f[cols[k]], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[cols[k]] || *end || !isfinite(v) || v <= 0) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: '%s' is not a positive number (column %s)", path, line,
                                 f[cols[k]], k == 3 ? "loss" : names[k == 0 ? PARAMS : k == 1 ? TOKENS : FLOPS]);
                break;
            }
            *dst[k] = v;
        }
        if (rc) break;
        if (isnan(p.flops) && p.params > 0 && p.tokens > 0) p.flops = 6 * p.params * p.tokens, derived_c = 1;
        if (isnan(p.tokens) && p.params > 0 && p.flops > 0) p.tokens = p.flops / (6 * p.params), derived_d = 1;
        p.arm = arm_index(ps, col[ARM] >= 0 && col[ARM] < nf ? f[col[ARM]] : "all");
        double budget = col[BUDGET] >= 0 && col[BUDGET] < nf ? atof(f[col[BUDGET]]) : 0;
        p.group = group_index(ps, budget > 0 ? budget : flops_budget(p.flops));
        if (col[SEED] >= 0 && col[SEED] < nf && f[col[SEED]][0]) {
            char *end;
            long v = strtol(f[col[SEED]], &end, 10);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[col[SEED]] || *end || v < 0 || v > 1000000000) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: seed '%s' is not a whole number >= 0", path, line, f[col[SEED]]);
                break;
            }
            p.seed = (int)v;
        }
        if (col[EPOCHS] >= 0 && col[EPOCHS] < nf && f[col[EPOCHS]][0]) {
            char *end;
            double v = strtod(f[col[EPOCHS]], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[col[EPOCHS]] || *end || !(v >= 1) || !isfinite(v)) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: epochs '%s' is not a number >= 1", path, line, f[col[EPOCHS]]);
                break;
            }
            p.epochs = v;
        }
        if (p.arm < 0 || p.group < 0) {
            rc = status_fail(st, AP_EINVAL, "%s: more than %d arms or %d budgets", path, POINTS_MAX_ARMS, FIT_MAX_GROUPS);
            break;
        }
        if (push(ps, &p)) rc = status_fail(st, AP_ENOMEM, "out of memory");
    }
    free(text);
    if (!rc && ps->n == 0) rc = status_fail(st, AP_EINVAL, "%s: no data rows", path);
    if (rc) {
        points_free(ps);
        return -1;
    }
    snprintf(ps->notes, sizeof ps->notes, "%s%s", derived_c ? "flops taken as 6ND where missing. " : "",
             derived_d ? "tokens taken as C/(6N) where missing." : "");
    return 0;
}

int points_add_arm(PointSet *ps, const char *arm, Status *st) {
    int a = arm_index(ps, arm);
    if (a < 0) return status_fail(st, AP_EINVAL, "more than %d arms", POINTS_MAX_ARMS);
    return a;
}

int points_add(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
               Status *st) {
    return points_add_run(ps, arm, params, tokens, flops, loss, budget, 0, st);
}

int points_add_run(PointSet *ps, int arm, double params, double tokens, double flops, double loss, double budget,
                   int seed, Status *st) {
    FitPoint p = {params, tokens, flops, loss, arm, group_index(ps, budget > 0 ? budget : flops_budget(flops)),
                  seed < 0 ? 0 : seed, 1};
    if (p.group < 0) return status_fail(st, AP_EINVAL, "more than %d budgets", FIT_MAX_GROUPS);
    if (push(ps, &p)) return status_fail(st, AP_ENOMEM, "out of memory");
    return 0;
}

int points_of_arm(const PointSet *ps, int arm, FitPoint **out) {
    int n = 0;
    *out = malloc((size_t)(ps->n ? ps->n : 1) * sizeof **out);
    if (!*out) return -1;
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].arm == arm) (*out)[n++] = ps->p[i];
    return n;
}

void points_free(PointSet *ps) {
    free(ps->p);
    ps->p = NULL;
    ps->n = ps->cap = 0;
}
