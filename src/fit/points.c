/* points.c - fit points from CSV files and study registries (see points.h). */
#include "fit/points.h"

#include "core/csv.h"
#include "core/fileio.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Grows an array of `size`-byte elements to hold one more; 0 on success. */
static int grow(void **a, int *cap, int n, size_t size) {
    if (n < *cap) return 0;
    int c = *cap ? 2 * *cap : 16;
    void *q = realloc(*a, (size_t)c * size);
    if (!q) return -1;
    *a = q, *cap = c;
    return 0;
}

static int arm_index(PointSet *ps, const char *name) {
    for (int i = 0; i < ps->n_arms; i++)
        if (!strcmp(ps->arms[i], name)) return i;
    if (grow((void **)&ps->arms, &ps->arms_cap, ps->n_arms, sizeof ps->arms[0])) return -1;
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
    if (grow((void **)&ps->group_budget, &ps->groups_cap, ps->n_groups, sizeof ps->group_budget[0])) return -1;
    ps->group_budget[ps->n_groups] = budget;
    return ps->n_groups++;
}

static int push(PointSet *ps, const FitPoint *p) {
    if (grow((void **)&ps->p, &ps->cap, ps->n, sizeof *p)) return -1;
    ps->p[ps->n++] = *p;
    return 0;
}

int points_read_csv(PointSet *ps, const char *path, Status *st) {
    return points_read_csv_axis(ps, path, COST_FLOPS, NULL, st);
}

int points_read_csv_axis(PointSet *ps, const char *path, int axis, const char *const *rename, Status *st) {
    memset(ps, 0, sizeof *ps);
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, 1 << 28, st)) return -1;
    char *cur = text, *f[256];
    int line = 1, next_line = 1; /* the record's first line, and the line after it */
    int nf = csv_record(&cur, f, 256, &next_line);
    if (nf <= 0) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: no header row", path);
    }
    enum { ARM, PARAMS, PARAMS_NE, TOKENS, FLOPS, LOSS, TBPB, BPB, VLOSS, BUDGET, KIND, STATUS, SEED, EPOCHS,
           SECONDS, ELAPSED, KV, MEMORY, NCOL };
    static const char *names[NCOL] = {"arm",     "params", "params_nonembedding", "tokens", "flops", "loss",
                                      "test_bpb", "val_bpb", "val_loss",          "budget", "kind",  "status",
                                      "seed",    "epochs", "seconds",             "elapsed_s", "kv_bytes", "memory"};
    int col[NCOL], n_header = nf;
    char header[256][64]; /* the header's names, for --col and messages about a row */
    for (int k = 0; k < NCOL; k++) col[k] = -1;
    for (int i = 0; i < nf; i++) {
        char *h = f[i];
        while (isspace((unsigned char)*h)) h++;
        snprintf(header[i], sizeof header[i], "%s", h);
        for (int k = 0; k < NCOL; k++)
            if (!strcasecmp(h, names[k])) col[k] = i;
        if (!strcasecmp(h, "N")) col[PARAMS] = i;
        if (!strcasecmp(h, "D")) col[TOKENS] = i;
        if (!strcasecmp(h, "C") || !strcasecmp(h, "compute")) col[FLOPS] = i;
    }
    /* the user's names for columns: NAME=HEADER picks that header's column as NAME */
    for (int r = 0; rename && rename[r]; r++) {
        const char *eq = strchr(rename[r], '=');
        size_t nl = eq ? (size_t)(eq - rename[r]) : 0;
        int k = 0, i = 0;
        while (eq && k < NCOL && (strlen(names[k]) != nl || strncmp(names[k], rename[r], nl))) k++;
        while (eq && i < nf && strcmp(header[i], eq + 1)) i++;
        if (!eq || k == NCOL || k == KIND || k == STATUS) {
            free(text);
            return status_fail(st, AP_EINVAL, "--col %s: say NAME=HEADER with NAME one of arm, params, tokens, flops, "
                               "loss, budget, seed, epochs, seconds, kv_bytes, memory", rename[r]);
        }
        if (i == nf) {
            free(text);
            return status_fail(st, AP_EINVAL, "--col %s: %s has no column '%s'", rename[r], path, eq + 1);
        }
        col[k] = i;
        if (k == PARAMS) col[PARAMS_NE] = -1; /* the user's choice wins over the preferences below */
        if (k == TBPB || k == BPB || k == VLOSS) col[LOSS] = -1, col[TBPB] = k == TBPB ? i : -1;
        if (k == SECONDS) col[ELAPSED] = -1;
    }
    /* test_bpb before val_bpb: a study's runs.csv then fits what `fit DIR` and the report fit */
    int lcol = col[LOSS] >= 0 ? col[LOSS] : col[TBPB] >= 0 ? col[TBPB] : col[BPB] >= 0 ? col[BPB] : col[VLOSS];
    int ncol = col[PARAMS_NE] >= 0 ? col[PARAMS_NE] : col[PARAMS];
    if (lcol < 0) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: no loss column (loss, test_bpb, val_bpb or val_loss; --col loss=HEADER "
                           "names another)", path);
    }
    if (col[FLOPS] < 0 && (ncol < 0 || col[TOKENS] < 0)) {
        free(text);
        return status_fail(st, AP_EINVAL, "%s: need a flops column, or params and tokens (--col flops=HEADER names "
                           "another)", path);
    }
    int derived_c = 0, derived_d = 0, rc = 0;
    while (*cur && !rc) {
        line = next_line;
        nf = csv_record(&cur, f, 256, &next_line);
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
        for (int k = 0; k < 4 && !rc; k++) {
            if (cols[k] < 0) continue;
            if (cols[k] >= nf) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: %d fields where the header has %d (column '%s' missing)",
                                 path, line, nf, n_header, header[cols[k]]);
                break;
            }
            char *end;
            double v = strtod(f[cols[k]], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[cols[k]] || *end || !isfinite(v) || v <= 0)
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a positive number", path, line,
                                 cols[k] + 1, header[cols[k]], f[cols[k]]);
            *dst[k] = v;
        }
        if (rc) break;
        if (isnan(p.flops) && p.params > 0 && p.tokens > 0) p.flops = 6 * p.params * p.tokens, derived_c = 1;
        if (isnan(p.tokens) && p.params > 0 && p.flops > 0) p.tokens = p.flops / (6 * p.params), derived_d = 1;
        p.arm = arm_index(ps, col[ARM] >= 0 && col[ARM] < nf ? f[col[ARM]] : "all");
        double budget = 0;
        if (col[BUDGET] >= 0 && col[BUDGET] < nf && f[col[BUDGET]][0]) {
            char *end;
            budget = strtod(f[col[BUDGET]], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[col[BUDGET]] || *end || !isfinite(budget) || budget < 0) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a number >= 0", path, line,
                                 col[BUDGET] + 1, header[col[BUDGET]], f[col[BUDGET]]);
                break;
            }
        }
        p.group = group_index(ps, budget > 0 ? budget : flops_budget(p.flops));
        if (col[SEED] >= 0 && col[SEED] < nf && f[col[SEED]][0]) {
            char *end;
            long v = strtol(f[col[SEED]], &end, 10);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[col[SEED]] || *end || v < 0 || v > 1000000000) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a whole number >= 0", path, line,
                                 col[SEED] + 1, header[col[SEED]], f[col[SEED]]);
                break;
            }
            p.seed = (int)v;
        }
        /* the cost axis' value, when the file has its column (checked when the axis is used) */
        int ccol = axis == COST_SECONDS ? (col[SECONDS] >= 0 ? col[SECONDS] : col[ELAPSED])
                   : axis == COST_PARAMS ? col[PARAMS] : axis == COST_KV_BYTES ? col[KV] : axis == COST_MEMORY ? col[MEMORY] : -1;
        if (axis != COST_FLOPS && ccol < 0) {
            rc = status_fail(st, AP_EINVAL, "%s: no column for the cost axis %s (%s)", path, cost_axis_names[axis],
                             axis == COST_SECONDS ? "seconds or elapsed_s" : cost_axis_names[axis]);
            break;
        }
        double cost = 0;
        if (ccol >= 0 && ccol < nf) {
            char *end;
            cost = strtod(f[ccol], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[ccol] || *end || !isfinite(cost) || cost <= 0) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a positive number", path, line,
                                 ccol + 1, header[ccol], f[ccol]);
                break;
            }
        }
        if (col[EPOCHS] >= 0 && col[EPOCHS] < nf && f[col[EPOCHS]][0]) {
            char *end;
            double v = strtod(f[col[EPOCHS]], &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == f[col[EPOCHS]] || *end || !(v >= 1) || !isfinite(v)) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a number >= 1", path, line,
                                 col[EPOCHS] + 1, header[col[EPOCHS]], f[col[EPOCHS]]);
                break;
            }
            p.epochs = v;
        }
        if (p.arm < 0 || p.group < 0) {
            rc = status_fail(st, AP_ENOMEM, "out of memory");
            break;
        }
        if (push(ps, &p)) rc = status_fail(st, AP_ENOMEM, "out of memory");
        else if (axis != COST_FLOPS) rc = points_set_cost(ps, ps->n - 1, cost, st);
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

const char *const cost_axis_names[COST_AXES] = {"flops", "seconds", "params", "kv_bytes", "memory"};

int cost_axis_parse(const char *name) {
    for (int k = 0; k < COST_AXES; k++)
        if (!strcmp(name, cost_axis_names[k])) return k;
    return -1;
}

static int same_config(const FitPoint *a, const FitPoint *b) {
    return a->arm == b->arm && fabs(a->params / b->params - 1) < 1e-9 && fabs(a->tokens / b->tokens - 1) < 1e-9;
}

int points_set_cost(PointSet *ps, int i, double cost, Status *st) {
    if (ps->cost_cap < ps->cap) {
        double *c = realloc(ps->cost, (size_t)ps->cap * sizeof *c);
        if (!c) return status_fail(st, AP_ENOMEM, "out of memory");
        for (int k = ps->cost_cap; k < ps->cap; k++) c[k] = 0;
        ps->cost = c, ps->cost_cap = ps->cap;
    }
    ps->cost[i] = cost;
    return 0;
}

int points_cost_axis(PointSet *ps, int axis, Status *st) {
    if (axis == COST_FLOPS) return 0;
    int n = ps->n, m = 0;
    for (int i = 0; i < n; i++)
        if (!ps->cost || !(ps->cost[i] > 0) || !isfinite(ps->cost[i]))
            return status_fail(st, AP_EINVAL, "point %d (arm %s): no %s to put it on that cost axis", i + 1,
                               ps->arms[ps->p[i].arm], cost_axis_names[axis]);
    /* configurations: the first point of each, its mean cost and mean ln loss over seeds */
    int *cfg = malloc((size_t)(n > 0 ? n : 1) * sizeof *cfg), *rep = malloc((size_t)(n > 0 ? n : 1) * sizeof *rep);
    double *cost = calloc((size_t)(n > 0 ? n : 1), sizeof *cost), *ll = calloc((size_t)(n > 0 ? n : 1), sizeof *ll);
    int *cnt = calloc((size_t)(n > 0 ? n : 1), sizeof *cnt), *keep = calloc((size_t)(n > 0 ? n : 1), sizeof *keep);
    if (!cfg || !rep || !cost || !ll || !cnt || !keep) {
        free(cfg), free(rep), free(cost), free(ll), free(cnt), free(keep);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int c = 0;
        while (c < m && !same_config(&ps->p[rep[c]], &ps->p[i])) c++;
        if (c == m) rep[m++] = i;
        cfg[i] = c, cost[c] += ps->cost[i], ll[c] += log(ps->p[i].loss), cnt[c]++;
    }
    for (int c = 0; c < m; c++) cost[c] /= cnt[c], ll[c] /= cnt[c];
    /* the front: no configuration of the arm at most as costly has a lower mean loss */
    for (int c = 0; c < m; c++) {
        keep[c] = 1;
        for (int d = 0; d < m && keep[c]; d++)
            if (d != c && ps->p[rep[d]].arm == ps->p[rep[c]].arm && cost[d] <= cost[c] && ll[d] < ll[c] &&
                !(cost[d] == cost[c] && ll[d] == ll[c]))
                keep[c] = 0;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!keep[cfg[i]]) continue;
        FitPoint q = ps->p[i];
        q.flops = cost[cfg[i]];
        q.group = cfg[i];
        ps->cost[k] = q.flops;
        ps->p[k++] = q;
    }
    ps->n = k;
    ps->n_groups = 0; /* the groups are the configurations now; budget values no longer apply */
    free(cfg), free(rep), free(cost), free(ll), free(cnt), free(keep);
    return 0;
}

int points_add_arm(PointSet *ps, const char *arm, Status *st) {
    int a = arm_index(ps, arm);
    if (a < 0) return status_fail(st, AP_ENOMEM, "out of memory");
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
    if (p.group < 0) return status_fail(st, AP_ENOMEM, "out of memory");
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
    free(ps->p), free(ps->arms), free(ps->group_budget), free(ps->cost);
    ps->p = NULL, ps->arms = NULL, ps->group_budget = NULL, ps->cost = NULL;
    ps->n = ps->cap = ps->n_arms = ps->arms_cap = ps->n_groups = ps->groups_cap = ps->cost_cap = 0;
}
