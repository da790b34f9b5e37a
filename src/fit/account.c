/* account.c - rates, decompositions, rate fits and the C13 simulation (see account.h). */
#include "fit/account.h"

#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rate_complete(Rate *r, Status *st) {
    if (!(r->years > 0)) return status_fail(st, AP_EINVAL, "years must be positive");
    double lnF;
    if (isfinite(r->factor)) {
        if (!(r->factor > 0)) return status_fail(st, AP_EINVAL, "the factor must be positive");
        lnF = log(r->factor);
    } else if (isfinite(r->annual)) {
        if (!(r->annual > 0)) return status_fail(st, AP_EINVAL, "the annual multiplier must be positive");
        lnF = r->years * log(r->annual);
    } else if (isfinite(r->oom_per_year)) {
        lnF = r->years * r->oom_per_year * log(10.0);
    } else if (isfinite(r->halving_months)) {
        if (r->halving_months == 0) return status_fail(st, AP_EINVAL, "a halving time cannot be 0");
        lnF = 12.0 * r->years * log(2.0) / r->halving_months;
    } else {
        return status_fail(st, AP_EINVAL, "give one of factor, annual, oom_per_year, halving_months");
    }
    r->factor = exp(lnF);
    r->annual = exp(lnF / r->years);
    r->oom_per_year = lnF / log(10.0) / r->years;
    r->halving_months = lnF != 0 ? 12.0 * r->years * log(2.0) / lnF : INFINITY;
    return 0;
}

int decompose(double total, const Factor *f, int n, Decomposition *out, Status *st) {
    if (!(total > 0)) return status_fail(st, AP_EINVAL, "the total must be positive");
    if (n > 32) return status_fail(st, AP_EINVAL, "at most 32 factors");
    memset(out, 0, sizeof *out);
    out->product = 1;
    for (int i = 0; i < n; i++) {
        if (!(f[i].factor > 0)) return status_fail(st, AP_EINVAL, "factor '%s' must be positive", f[i].name);
        out->product *= f[i].factor;
    }
    out->residual = total / out->product;
    double lt = log(total);
    for (int i = 0; i < n; i++) out->share[i] = lt != 0 ? log(f[i].factor) / lt : NAN;
    out->residual_share = lt != 0 ? log(out->residual) / lt : NAN;
    return 0;
}

static double slope(const double *x, const double *y, const int *idx, int n) {
    double mx = 0, my = 0, sxx = 0, sxy = 0;
    for (int j = 0; j < n; j++) mx += x[idx ? idx[j] : j], my += y[idx ? idx[j] : j];
    mx /= n, my /= n;
    for (int j = 0; j < n; j++) {
        int i = idx ? idx[j] : j;
        sxx += (x[i] - mx) * (x[i] - mx), sxy += (x[i] - mx) * (y[i] - my);
    }
    return sxx > 0 ? sxy / sxx : NAN;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int rate_fit(const double *year, const double *compute, int n, int n_boot, uint64_t seed, RateFit *out, Status *st) {
    memset(out, 0, sizeof *out);
    if (n < 3) return status_fail(st, AP_EINVAL, "a rate fit needs at least 3 points, got %d", n);
    double *ly = malloc((size_t)n * sizeof *ly), *boot = malloc((size_t)(n_boot > 0 ? n_boot : 1) * sizeof *boot);
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!ly || !boot || !idx) {
        free(ly), free(boot), free(idx);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (!(compute[i] > 0)) {
            free(ly), free(boot), free(idx);
            return status_fail(st, AP_EINVAL, "point %d: compute must be positive", i + 1);
        }
        ly[i] = -log10(compute[i]); /* decline of needed compute */
    }
    out->n = n;
    out->oom_per_year = slope(year, ly, NULL, n);
    Rng r;
    rng_seed(&r, seed);
    int m = 0;
    for (int b = 0; b < n_boot; b++) {
        for (int i = 0; i < n; i++) idx[i] = (int)rng_below(&r, (uint64_t)n);
        double s = slope(year, ly, idx, n);
        if (isfinite(s)) boot[m++] = s;
    }
    qsort(boot, (size_t)m, sizeof *boot, cmpd);
    out->lo = m ? boot[(int)(0.025 * (m - 1))] : NAN;
    out->hi = m ? boot[(int)(0.975 * (m - 1))] : NAN;
    double l2 = log10(2.0);
    out->halving_months = 12 * l2 / out->oom_per_year;
    out->halving_lo = out->hi > 0 ? 12 * l2 / out->hi : INFINITY; /* faster decline = shorter halving */
    out->halving_hi = out->lo > 0 ? 12 * l2 / out->lo : INFINITY;
    free(ly), free(boot), free(idx);
    return 0;
}

void simulation_default(Simulation *s) {
    s->year0 = 2012, s->year1 = 2023, s->switch_year = 2017;
    s->steady = 1.25;         /* scale-independent tweaks: 1.25x per year */
    s->gain0 = 2.0;           /* the innovation's gain at the small scale c0 ... */
    s->slope = 0.15;          /* ... growing as C^0.15 with scale (an exponent difference) */
    s->c0 = 1e15;
    s->compute_growth = 4.0;  /* the frontier's compute per year */
    s->frontier_share = 0.5;
    s->per_year = 20;
    s->seed = 1;
}

int simulate_rate(const Simulation *s, RateFit *out, Status *st) {
    if (!(s->year1 > s->year0) || s->per_year < 1 || s->frontier_share < 0 || s->frontier_share > 1)
        return status_fail(st, AP_EINVAL, "simulation: need year1 > year0, per_year >= 1, 0 <= frontier_share <= 1");
    int years = (int)(s->year1 - s->year0) + 1, n = years * s->per_year;
    double *yr = malloc((size_t)n * sizeof *yr), *need = malloc((size_t)n * sizeof *need);
    if (!yr || !need) {
        free(yr), free(need);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    Rng r;
    rng_seed(&r, s->seed);
    int k = 0;
    for (int y = 0; y < years; y++)
        for (int i = 0; i < s->per_year; i++) {
            double year = s->year0 + y;
            int frontier = rng_uniform_double(&r) < s->frontier_share;
            /* the scale the model was trained at: the small scale, or that year's frontier */
            double C = frontier ? s->c0 * pow(s->compute_growth, y) : s->c0;
            double eff = pow(s->steady, y);
            if (year >= s->switch_year) eff *= s->gain0 * pow(C / s->c0, s->slope);
            /* the compute a year-0 recipe would need for this model's result, relative: 1 / eff,
             * with 10% measurement noise */
            yr[k] = year;
            need[k++] = exp(0.1 * rng_normal(&r)) / eff;
        }
    int rc = rate_fit(yr, need, n, 1000, s->seed, out, st);
    free(yr), free(need);
    return rc;
}

/* ---------------------------------------------------------------- composing measured gains */

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Total, annual rate, OOM per year and halving months of ln(total) = lt over `years`. */
static void rates_of(double lt, double years, double *total, double *annual, double *oom, double *halving) {
    *total = exp(lt), *annual = exp(lt / years), *oom = lt / log(10) / years;
    *halving = lt > 0 ? 12 * years * log(2) / lt : INFINITY;
}

/* Fills [est, lo, hi] of the four rates from draws of ln(total), sorted in place. */
static void rates_interval(double lt, double *d, int nd, double years, int lo_open, int hi_open, double total[3],
                           double annual[3], double oom[3], double halving[3]) {
    qsort(d, (size_t)nd, sizeof *d, cmp_dbl);
    double q[2] = {d[(int)(0.025 * (nd - 1))], d[(int)(0.975 * (nd - 1))]};
    if (lo_open) q[0] = -INFINITY;
    if (hi_open) q[1] = INFINITY;
    rates_of(lt, years, &total[0], &annual[0], &oom[0], &halving[0]);
    for (int k = 0; k < 2; k++) { /* the halving time falls as the total grows */
        double h;
        rates_of(q[k], years, &total[1 + k], &annual[1 + k], &oom[1 + k], &h);
        halving[2 - k] = h;
    }
    if (lo_open) total[1] = annual[1] = 0, oom[1] = -INFINITY, halving[2] = INFINITY;
    if (hi_open) halving[1] = 0;
}

int account_compose(const ComposeGain *g, int n, const ComposeOptions *o, ComposeResult *out, Status *st) {
    memset(out, 0, sizeof *out);
    out->years = o->year1 - o->year0;
    if (!(out->years > 0)) return status_fail(st, AP_EINVAL, "the period must have year1 > year0 (got %g..%g)",
                                              o->year0, o->year1);
    int draws = o->draws > 0 ? o->draws : 20000, lo_open = 0, hi_open = 0, extra = isfinite(o->scale_up);
    if (extra && !(o->scale_up > 0)) return status_fail(st, AP_EINVAL, "the scale-up must be positive");
    double lt = 0, ltx = 0, *d = malloc((size_t)draws * sizeof *d), *dx = malloc((size_t)draws * sizeof *dx);
    if (!d || !dx) {
        free(d), free(dx);
        return status_fail(st, AP_ENOMEM, "out of memory");
    }
    for (int b = 0; b < draws; b++) d[b] = dx[b] = 0;
    Rng r;
    rng_seed(&r, o->seed ? o->seed : 42);
    for (int i = 0; i < n; i++) {
        const ComposeGain *x = &g[i];
        if (x->year < o->year0 || x->year > o->year1) continue;
        if (!(x->gain > 0) || !isfinite(x->gain)) {
            free(d), free(dx);
            return status_fail(st, AP_EINVAL, "%s: no finite gain to compose (%g)", x->name, x->gain);
        }
        out->used++;
        int lo_ok = x->lo > 0 && isfinite(x->lo), hi_ok = isfinite(x->hi) && x->hi > 0;
        double l = log(x->gain), up = hi_ok ? log(x->hi) - l : NAN, down = lo_ok ? l - log(x->lo) : NAN;
        double sd = fmax(isfinite(up) ? up : 0, isfinite(down) ? down : 0) / 1.96;
        if (!lo_ok || !hi_ok) {
            size_t k = strlen(out->unbounded);
            snprintf(out->unbounded + k, sizeof out->unbounded - k, "%s%s (%s)", k ? ", " : "", x->name,
                     !lo_ok && !hi_ok ? "both sides" : !lo_ok ? "below" : "above");
        }
        lo_open |= !lo_ok, hi_open |= !hi_ok;
        double s = isfinite(x->slope) ? x->slope : 0;
        double ssd = isfinite(x->slope_lo) && isfinite(x->slope_hi) ? (x->slope_hi - x->slope_lo) / (2 * 1.96) : 0;
        double lu = extra ? log(o->scale_up) : 0;
        lt += l, ltx += l + s * lu;
        for (int b = 0; b < draws; b++) {
            double z = l + sd * rng_normal(&r);
            d[b] += z;
            dx[b] += z + (s + ssd * rng_normal(&r)) * lu;
        }
    }
    if (!out->used) {
        free(d), free(dx);
        return status_fail(st, AP_EINVAL, "no gain was adopted between %g and %g", o->year0, o->year1);
    }
    rates_interval(lt, d, draws, out->years, lo_open, hi_open, out->total, out->annual, out->oom, out->halving);
    if (extra)
        rates_interval(ltx, dx, draws, out->years, lo_open, hi_open, out->total_x, out->annual_x, out->oom_x,
                       out->halving_x);
    else
        for (int k = 0; k < 3; k++) out->total_x[k] = out->annual_x[k] = out->oom_x[k] = out->halving_x[k] = NAN;
    free(d), free(dx);
    return 0;
}
