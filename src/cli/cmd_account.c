/* cmd_account.c - `algoprog account`: progress-rate arithmetic (claims C13, C14). */
#include "cli/cli.h"

#include "core/csv.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "fit/account.h"

#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_account =
    "usage: algoprog account rate years=Y (factor=F | annual=M | oom_per_year=R | halving_months=H)\n"
    "       algoprog account decompose total=F years=Y NAME=FACTOR ...   (e.g. hardware=6 data=8)\n"
    "       algoprog account fit POINTS.csv      columns year, compute (to reach a fixed result)\n"
    "       algoprog account simulate [steady=1.25 gain0=2 slope=0.15 compute_growth=4 frontier_share=...]\n"
    "       algoprog account seeds               the seed essays' numbers, converted\n"
    "       algoprog account compose SOURCE... ARM=YEAR ... [at=C] [year0=Y] [year1=Y] [compute_growth=G]\n"
    "                [draws=N] [seed=S] [--json]\n"
    "         measured CEGs (SOURCE: a study directory with a report, or its report/ceg.csv) of innovations\n"
    "         adopted in the stated years, composed into progress per year with 95% intervals; each gain at the\n"
    "         level nearest compute C (default: the largest measured level with both bounds); with\n"
    "         compute_growth=G also extrapolated along each gain's scale trend to G^(year1 - year0) times the\n"
    "         compute measured (claim C13). An arm in several sources is named DIR:ARM.\n";

static int kv(const char *arg, char *key, size_t ksize, double *val) {
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= ksize) return -1;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    char *end;
    errno = 0;
    *val = strtod(eq + 1, &end);
    return errno || end == eq + 1 || *end || !isfinite(*val) ? -2 : 0;
}

static void print_rate(const char *label, const Rate *r) {
    printf("%-44s %10.4gx over %4.1f years = %6.3fx/year = %6.3f OOM/year = halving every %5.1f months\n", label,
           r->factor, r->years, r->annual, r->oom_per_year, r->halving_months);
}

static int rate_of(double years, double factor, double annual, double oom, double halving, Rate *r, Status *st) {
    *r = (Rate){factor, years, annual, oom, halving};
    return rate_complete(r, st);
}

/* The seed essays' headline rates (C14), converted; `seeds` and `compose` print them. */
static void print_seed_headlines(Status *st) {
    Rate r;
    rate_of(7, 600, NAN, NAN, NAN, &r, st), print_rate("nanochat vs GPT-2: 600x in 7 years", &r);
    rate_of(7, NAN, 4, NAN, NAN, &r, st), print_rate("\"4x/year\" compounded over 7 years", &r);
    rate_of(11, NAN, NAN, 0.5, NAN, &r, st), print_rate("0.5 OOM/year over 2012-2023", &r);
}

/* ---------------------------------------------------------------- compose */

typedef struct {
    ComposeGain g;
    char arm[64], label[160], source[512];
    double loss;
    int extrapolated;
} CegRow;

/* Appends the rows of one ceg.csv (a study directory's report/ceg.csv, or the file itself). */
static int read_ceg_rows(const char *source, CegRow **rows, int *n, int *cap, Status *st) {
    char path[1100], base[160];
    snprintf(path, sizeof path, "%s", source);
    struct stat sb;
    if (stat(source, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(path, sizeof path, "%s/report/ceg.csv", source);
        if (!file_exists(path))
            return status_fail(st, AP_EINVAL, "%s has no report/ceg.csv: run `algoprog report %s` first", source, source);
    }
    const char *b = source + strlen(source);
    while (b > source && b[-1] == '/') b--;
    const char *e = b;
    while (b > source && b[-1] != '/') b--;
    snprintf(base, sizeof base, "%.*s", (int)(e - b), b);
    char *text, *f[64];
    size_t len;
    if (file_read_all(path, &text, &len, 1 << 26, st)) return -1;
    enum { ARM, REF, LOSS, CREF, CEG, LO, HI, EXTRA, SLOPE, SLO, SHI, NC };
    static const char *names[NC] = {"arm", "reference", "loss", "compute_reference", "ceg", "ceg_lo",
                                    "ceg_hi", "extrapolated", "slope", "slope_lo", "slope_hi"};
    int col[NC], line = 1, next = 1, rc = 0;
    char *cur = text;
    int nf = csv_record(&cur, f, 64, &next);
    for (int k = 0; k < NC; k++) {
        col[k] = -1;
        for (int i = 0; i < nf; i++)
            if (!strcmp(f[i], names[k])) col[k] = i;
        if (col[k] < 0 && k != SLOPE && k != SLO && k != SHI && k != EXTRA)
            rc = status_fail(st, AP_EINVAL, "%s: no column '%s' (is it a report's ceg.csv?)", path, names[k]);
    }
    while (!rc && *cur) {
        line = next;
        nf = csv_record(&cur, f, 64, &next);
        if (nf == 0) continue;
        if (nf < 0 || nf <= col[HI] || nf <= col[CEG]) {
            rc = status_fail(st, AP_EINVAL, "%s:%d: malformed row", path, line);
            break;
        }
        if (*n == *cap) {
            int c = *cap ? 2 * *cap : 64;
            CegRow *q = realloc(*rows, (size_t)c * sizeof *q);
            if (!q) {
                rc = status_fail(st, AP_ENOMEM, "out of memory");
                break;
            }
            *rows = q, *cap = c;
        }
        CegRow *r = &(*rows)[*n];
        memset(r, 0, sizeof *r);
        double v[NC] = {0};
        for (int k = LOSS; k < NC; k++) {
            v[k] = NAN;
            if (col[k] < 0 || col[k] >= nf) continue;
            char *end;
            v[k] = strtod(f[col[k]], &end);
            if (end == f[col[k]] || *end) {
                rc = status_fail(st, AP_EINVAL, "%s:%d: column %d '%s': '%s' is not a number", path, line, col[k] + 1,
                                 names[k], f[col[k]]);
                break;
            }
        }
        if (rc) break;
        snprintf(r->arm, sizeof r->arm, "%s", f[col[ARM]]);
        snprintf(r->g.name, sizeof r->g.name, "%s", f[col[ARM]]);
        snprintf(r->label, sizeof r->label, "%.80s:%.63s", base, f[col[ARM]]);
        snprintf(r->source, sizeof r->source, "%s", source);
        r->loss = v[LOSS], r->g.compute = v[CREF], r->g.gain = v[CEG], r->g.lo = v[LO], r->g.hi = v[HI];
        r->g.slope = v[SLOPE], r->g.slope_lo = v[SLO], r->g.slope_hi = v[SHI];
        r->extrapolated = isfinite(v[EXTRA]) && v[EXTRA] != 0;
        (*n)++;
    }
    free(text);
    return rc;
}

static void print_triple(const char *fmt, const double *v) {
    printf(fmt, v[0]);
    printf(" [");
    printf(fmt, v[1]);
    printf(", ");
    printf(fmt, v[2]);
    printf("]");
}

/* "total T [lo, hi] = A/year = R OOM/year = halving every H months", each with its interval. */
static void print_composed(const double *total, const double *annual, const double *oom, const double *halving) {
    printf("total ");
    print_triple("%.3gx", total);
    printf(" = ");
    print_triple("%.3gx", annual);
    printf("/year = ");
    print_triple("%.3f", oom);
    printf(" OOM/year = halving every ");
    print_triple("%.1f", halving);
    printf(" months\n");
}

static void json_triple(JsonWriter *w, const char *key, const double *v) {
    jw_key(w, key), jw_array_begin(w);
    for (int k = 0; k < 3; k++)
        if (isfinite(v[k])) jw_number(w, "%.6g", v[k]);
        else jw_raw(w, "null");
    jw_array_end(w);
}

static int account_compose_cmd(int argc, char **argv) {
    Status st = {0};
    ComposeOptions o = {NAN, NAN, NAN, 20000, 42};
    double at = NAN, growth = NAN;
    int json = 0, n_rows = 0, cap = 0, n_pick = 0, rc = 0;
    CegRow *rows = NULL;
    struct {
        const char *key;
        double year;
    } pick[64];
    for (int i = 0; i < argc && !rc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (!eq) {
            rc = read_ceg_rows(argv[i], &rows, &n_rows, &cap, &st);
            continue;
        }
        char key[128];
        double v;
        if (kv(argv[i], key, sizeof key, &v)) {
            free(rows);
            return fprintf(stderr, "algoprog: error: bad argument '%s' (ARM=YEAR or key=number)\n", argv[i]), 2;
        }
        if (!strcmp(key, "at")) at = v;
        else if (!strcmp(key, "year0")) o.year0 = v;
        else if (!strcmp(key, "year1")) o.year1 = v;
        else if (!strcmp(key, "compute_growth")) growth = v;
        else if (!strcmp(key, "draws")) o.draws = (int)v;
        else if (!strcmp(key, "seed")) o.seed = (uint64_t)v;
        else if (n_pick < 64) pick[n_pick].key = argv[i], pick[n_pick++].year = v;
    }
    if (rc) {
        free(rows);
        return cli_fail(&st);
    }
    if (!n_rows || !n_pick) {
        free(rows);
        return fprintf(stderr, "algoprog: error: compose needs a SOURCE with CEGs and ARM=YEAR for each innovation\n%s",
                       cli_usage_account), 2;
    }
    if (o.draws < 100 || o.draws > 10000000 || (isfinite(growth) && !(growth > 0))) {
        free(rows);
        return fputs("algoprog: error: draws must be 100..1e7 and compute_growth positive\n", stderr), 2;
    }
    ComposeGain g[64];
    const CegRow *chosen[64];
    double y0 = INFINITY, y1 = -INFINITY;
    for (int p = 0; p < n_pick && !rc; p++) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(pick[p].key, '=') - pick[p].key), pick[p].key);
        /* the arm's rows: by plain name when one source has it, else by DIR:ARM */
        const char *src = NULL;
        int ambiguous = 0, best = -1;
        for (int i = 0; i < n_rows; i++) {
            int match = !strcmp(rows[i].label, name) || !strcmp(rows[i].arm, name);
            if (!match) continue;
            if (src && strcmp(src, rows[i].source)) ambiguous = 1;
            src = rows[i].source;
        }
        if (ambiguous) {
            rc = status_fail(&st, AP_EINVAL, "arm '%s' is in several sources: name it DIR:%s", name, name);
            break;
        }
        for (int i = 0; i < n_rows; i++) {
            const CegRow *r = &rows[i];
            if (strcmp(r->label, name) && strcmp(r->arm, name)) continue;
            int good = !r->extrapolated && r->g.lo > 0 && isfinite(r->g.hi);
            if (best < 0) best = i;
            else if (isfinite(at)) {
                if (fabs(log(r->g.compute / at)) < fabs(log(rows[best].g.compute / at))) best = i;
            } else {
                const CegRow *b = &rows[best];
                int bgood = !b->extrapolated && b->g.lo > 0 && isfinite(b->g.hi);
                if ((good && !bgood) || (good == bgood && r->g.compute > b->g.compute)) best = i;
            }
        }
        if (best < 0) {
            char avail[512] = "";
            for (int i = 0; i < n_rows; i++)
                if (!strstr(avail, rows[i].label) && strlen(avail) + strlen(rows[i].label) + 3 < sizeof avail)
                    strcat(strcat(avail, avail[0] ? ", " : ""), rows[i].label);
            rc = status_fail(&st, AP_EINVAL, "no CEG for arm '%s'; the sources have: %s", name, avail);
            break;
        }
        chosen[p] = &rows[best];
        g[p] = rows[best].g;
        snprintf(g[p].name, sizeof g[p].name, "%.63s", name);
        g[p].year = pick[p].year;
        y0 = fmin(y0, g[p].year), y1 = fmax(y1, g[p].year);
    }
    if (!rc) {
        if (!isfinite(o.year0)) o.year0 = y0;
        if (!isfinite(o.year1)) o.year1 = y1;
        o.scale_up = isfinite(growth) ? pow(growth, o.year1 - o.year0) : NAN;
    }
    ComposeResult res;
    if (rc || account_compose(g, n_pick, &o, &res, &st)) {
        free(rows);
        return cli_fail(&st);
    }
    if (json) {
        StrBuf b = {0};
        JsonWriter w;
        jw_init(&w, &b);
        jw_object_begin(&w);
        jw_key(&w, "year0"), jw_number(&w, "%.6g", o.year0);
        jw_key(&w, "year1"), jw_number(&w, "%.6g", o.year1);
        jw_key(&w, "draws"), jw_int(&w, o.draws);
        jw_key(&w, "gains"), jw_array_begin(&w);
        for (int p = 0; p < n_pick; p++) {
            jw_object_begin(&w);
            jw_key(&w, "arm"), jw_string(&w, g[p].name);
            jw_key(&w, "source"), jw_string(&w, chosen[p]->source);
            jw_key(&w, "year"), jw_number(&w, "%.6g", g[p].year);
            double t[3] = {g[p].gain, g[p].lo > 0 ? g[p].lo : NAN, g[p].hi};
            json_triple(&w, "ceg", t);
            jw_key(&w, "compute"), jw_number(&w, "%.6g", g[p].compute);
            jw_key(&w, "loss"), jw_number(&w, "%.6g", chosen[p]->loss);
            double sl[3] = {g[p].slope, g[p].slope_lo, g[p].slope_hi};
            json_triple(&w, "slope", sl);
            jw_key(&w, "counted"), jw_bool(&w, g[p].year >= o.year0 && g[p].year <= o.year1);
            jw_object_end(&w);
        }
        jw_array_end(&w);
        json_triple(&w, "total", res.total), json_triple(&w, "annual", res.annual);
        json_triple(&w, "oom_per_year", res.oom), json_triple(&w, "halving_months", res.halving);
        jw_key(&w, "scale_up"), isfinite(o.scale_up) ? jw_number(&w, "%.6g", o.scale_up) : jw_raw(&w, "null");
        json_triple(&w, "total_extrapolated", res.total_x), json_triple(&w, "annual_extrapolated", res.annual_x);
        json_triple(&w, "oom_per_year_extrapolated", res.oom_x);
        json_triple(&w, "halving_months_extrapolated", res.halving_x);
        jw_key(&w, "unbounded"), jw_string(&w, res.unbounded);
        jw_object_end(&w);
        if (b.failed) fputs("algoprog: error: out of memory writing JSON\n", stderr);
        else printf("%s\n", b.s);
        sb_free(&b);
        free(rows);
        return 0;
    }
    printf("%d measured gain%s adopted %g-%g (%g years), composed with %d draws; 95%% intervals\n", res.used,
           res.used == 1 ? "" : "s", o.year0, o.year1, res.years, o.draws);
    printf("  %-22s %7s %-24s %10s %8s  %-24s\n", "innovation (arm)", "adopted", "CEG [95%]", "at C", "loss",
           "scale trend d ln CEG/d ln C");
    for (int p = 0; p < n_pick; p++) {
        char ceg[64], sl[64];
        snprintf(ceg, sizeof ceg, "%.3gx [%.3g, %.3g]", g[p].gain, g[p].lo, g[p].hi);
        snprintf(sl, sizeof sl, "%.3g [%.3g, %.3g]", g[p].slope, g[p].slope_lo, g[p].slope_hi);
        printf("  %-22s %7g %-24s %10.3g %8.4f  %-24s%s\n", g[p].name, g[p].year, ceg, g[p].compute, chosen[p]->loss, sl,
               g[p].year >= o.year0 && g[p].year <= o.year1 ? "" : "  (outside the period)");
    }
    printf("at the scale measured: ");
    print_composed(res.total, res.annual, res.oom, res.halving);
    if (isfinite(o.scale_up)) {
        printf("extrapolated to %.3gx the compute measured (compute_growth %g/year over %g years), along each gain's\n"
               "scale trend -- an extrapolation, not a measurement: ",
               o.scale_up, growth, res.years);
        print_composed(res.total_x, res.annual_x, res.oom_x, res.halving_x);
    }
    if (res.unbounded[0]) printf("unbounded: %s -- the composed interval is open on that side\n", res.unbounded);
    printf("\nnext to the seed essays' headline numbers (C14):\n");
    print_seed_headlines(&st);
    free(rows);
    return 0;
}

int cmd_account(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_account, stderr), 2;
    Status st = {0};
    const char *what = argv[0];
    if (!strcmp(what, "compose")) return account_compose_cmd(argc - 1, argv + 1);
    if (!strcmp(what, "seeds")) {
        Rate r;
        printf("The seed essays' numbers, converted exactly (C14):\n");
        print_seed_headlines(&st);
        rate_of(11, NAN, NAN, NAN, 8, &r, &st), print_rate("an 8-month halving over 2012-2023", &r);
        rate_of(1, NAN, 1.68, NAN, NAN, &r, &st), print_rate("1.68x/year (Amodei's 2020 figure)", &r);
        rate_of(1, NAN, 3, NAN, NAN, &r, &st), print_rate("3x/year (price-performance, open models)", &r);
        Factor f[] = {{"hardware (FLOP/$)", 6}, {"learning algorithms", 5}, {"optimisations", 2.5}, {"data", 8}};
        Decomposition d;
        decompose(600, f, 4, &d, &st);
        printf("\n600x = 6 (hardware) x 5 (algorithms) x 2.5 (optimisations) x 8 (data) = %.0fx; residual %.3fx\n",
               d.product, d.residual);
        for (int i = 0; i < 4; i++) printf("  %-22s %5.1fx  %4.0f%% of the log\n", f[i].name, f[i].factor, 100 * d.share[i]);
        return 0;
    }
    if (!strcmp(what, "rate")) {
        double years = NAN, vals[4] = {NAN, NAN, NAN, NAN};
        static const char *keys[4] = {"factor", "annual", "oom_per_year", "halving_months"};
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            int ok = 0;
            if (!strcmp(key, "years")) years = v, ok = 1;
            for (int k = 0; k < 4; k++)
                if (!strcmp(key, keys[k])) vals[k] = v, ok = 1;
            if (!ok) return fprintf(stderr, "algoprog: error: unknown key '%s'\n%s", key, cli_usage_account), 2;
        }
        Rate r;
        if (rate_of(years, vals[0], vals[1], vals[2], vals[3], &r, &st)) return cli_fail(&st);
        print_rate("", &r);
        return 0;
    }
    if (!strcmp(what, "decompose")) {
        double total = NAN, years = NAN;
        Factor f[32] = {{"", 0}};
        int n = 0;
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            if (!strcmp(key, "total")) total = v;
            else if (!strcmp(key, "years")) years = v;
            else if (n < 32) snprintf(f[n].name, sizeof f[n].name, "%s", key), f[n++].factor = v;
        }
        Decomposition d;
        if (decompose(total, f, n, &d, &st)) return cli_fail(&st);
        printf("total %.4gx = product of factors %.4gx x residual %.4gx\n", total, d.product, d.residual);
        for (int i = 0; i < n; i++) {
            printf("  %-20s %8.3gx  %5.1f%% of the log", f[i].name, f[i].factor, 100 * d.share[i]);
            if (isfinite(years)) {
                Rate r;
                rate_of(years, f[i].factor, NAN, NAN, NAN, &r, &st);
                printf("  (%.3fx/year)", r.annual);
            }
            printf("\n");
        }
        printf("  %-20s %8.3gx  %5.1f%% of the log (unexplained)\n", "residual", d.residual, 100 * d.residual_share);
        if (isfinite(years)) {
            Rate r;
            rate_of(years, total, NAN, NAN, NAN, &r, &st);
            print_rate("total", &r);
        }
        return 0;
    }
    if (!strcmp(what, "fit")) {
        if (argc < 2) return fputs(cli_usage_account, stderr), 2;
        char *text;
        size_t len;
        if (file_read_all(argv[1], &text, &len, 1 << 26, &st)) return cli_fail(&st);
        double *yr = malloc(len * sizeof *yr), *c = malloc(len * sizeof *c);
        int n = 0, line = 0, yc = -1, cc = -1;
        for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
            line++;
            if (line == 1) { /* header */
                int col = 0;
                for (char *h = l; h; col++) {
                    char *comma = strchr(h, ',');
                    size_t hl = comma ? (size_t)(comma - h) : strlen(h);
                    if (hl == 4 && !strncmp(h, "year", 4)) yc = col;
                    if (hl == 7 && !strncmp(h, "compute", 7)) cc = col;
                    h = comma ? comma + 1 : NULL;
                }
                continue;
            }
            double v[64];
            int col = 0;
            for (char *p = l; p && col < 64; col++) {
                v[col] = strtod(p, NULL);
                p = strchr(p, ',');
                if (p) p++;
            }
            if (yc < 0 || cc < 0 || yc >= col || cc >= col) break;
            yr[n] = v[yc], c[n++] = v[cc];
        }
        free(text);
        RateFit f;
        int rc = yc < 0 || cc < 0 ? status_fail(&st, AP_EINVAL, "%s: need columns 'year' and 'compute'", argv[1])
                                  : rate_fit(yr, c, n, 2000, 42, &f, &st);
        free(yr), free(c);
        if (rc) return cli_fail(&st);
        printf("%d points: needed compute falls %.3f OOM/year [%.3f, %.3f] = halving every %.1f months [%.1f, %.1f]\n", f.n,
               f.oom_per_year, f.lo, f.hi, f.halving_months, f.halving_lo, f.halving_hi);
        return 0;
    }
    if (!strcmp(what, "simulate")) {
        Simulation s;
        simulation_default(&s);
        int share_given = 0;
        for (int i = 1; i < argc; i++) {
            char key[64];
            double v;
            if (kv(argv[i], key, sizeof key, &v)) return fprintf(stderr, "algoprog: error: bad argument '%s'\n", argv[i]), 2;
            if (!strcmp(key, "steady")) s.steady = v;
            else if (!strcmp(key, "gain0")) s.gain0 = v;
            else if (!strcmp(key, "slope")) s.slope = v;
            else if (!strcmp(key, "compute_growth")) s.compute_growth = v;
            else if (!strcmp(key, "frontier_share")) s.frontier_share = v, share_given = 1;
            else if (!strcmp(key, "switch_year")) s.switch_year = v;
            else if (!strcmp(key, "seed")) s.seed = (uint64_t)v;
            else return fprintf(stderr, "algoprog: error: unknown key '%s'\n%s", key, cli_usage_account), 2;
        }
        Rate truth;
        rate_of(1, NAN, s.steady, NAN, NAN, &truth, &st);
        printf("world: steady progress %.3gx/year (a true halving time of %.1f months) plus one innovation in %.0f whose\n"
               "gain is %.3gx at the small scale and grows as C^%.3g; frontier compute grows %.3gx/year (C13)\n\n",
               s.steady, truth.halving_months, s.switch_year, s.gain0, s.slope, s.compute_growth);
        printf("%-26s %-34s\n", "models at the frontier", "fitted halving time (95% CI)");
        double shares[] = {0, 0.25, 0.5, 0.75, 1.0};
        for (int i = 0; i < (share_given ? 1 : 5); i++) {
            if (!share_given) s.frontier_share = shares[i];
            RateFit f;
            if (simulate_rate(&s, &f, &st)) return cli_fail(&st);
            printf("%-26.0f %.1f months [%.1f, %.1f]\n", 100 * s.frontier_share, f.halving_months, f.halving_lo,
                   f.halving_hi);
        }
        printf("\nThe same world gives different \"halving times\" depending on which scales the sample holds.\n");
        return 0;
    }
    return fputs(cli_usage_account, stderr), 2;
}
