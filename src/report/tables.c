/* tables.c - the report's data files (see tables.h). */
#include "report/tables.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/strbuf.h"

#include <math.h>
#include <stdio.h>

static void write_fits(const Results *r, StrBuf *b) {
    sb_puts(b, "arm,preset,allocation,runs,plateau_runs,frontier_points,E,E_lo,E_hi,A,A_lo,A_hi,alpha,alpha_lo,alpha_hi,"
               "identified,sigma_seed,sigma_used,lack_of_fit,rejected,n_boot,a_n,a_n_lo,a_n_hi,a_kaplan,a_chinchilla,"
               "b_d,b_d_lo,b_d_hi,holdout_flops,holdout_loss,holdout_predicted,holdout_lo,holdout_hi,holdout_error,"
               "holdout_inside,notes\n");
    for (int a = 0; a < r->n_arms; a++) {
        const ResultArm *m = &r->arms[a];
        const Frontier *f = &m->fr;
        if (!f->has_law) continue;
        sb_csv(b, m->row.name);
        sb_putc(b, ',');
        sb_csv(b, m->row.preset);
        sb_printf(b, ",%s,%d,%d,%d", m->row.allocation, m->n_points, m->n_plateau, f->n);
        for (int k = 0; k < 3; k++) sb_printf(b, ",%.10g,%.10g,%.10g", f->law.p[k].value, f->law.p[k].lo, f->law.p[k].hi);
        sb_printf(b, ",%d,%.6g,%.6g,%.6g,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,", f->law.identified,
                  f->sigma_seed, f->sigma, f->lof, f->n_rejected, f->n_boot, f->a_exp.value, f->a_exp.lo,
                  f->a_exp.hi, m->a_kaplan.value, m->a_chinchilla.value, f->b_exp.value, f->b_exp.lo, f->b_exp.hi);
        const Holdout *h = &m->holdout; /* empty fields: not checked */
        if (h->k) sb_printf(b, "%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,", h->flops[0], h->observed[0], h->predicted[0], h->lo[0],
                            h->hi[0], h->error[0], h->inside[0]);
        else sb_puts(b, ",,,,,,,");
        sb_csv(b, f->notes);
        sb_putc(b, '\n');
    }
}

static void write_ceg(const Results *r, StrBuf *b) {
    sb_puts(b, "arm,reference,loss,compute_reference,ceg,ceg_lo,ceg_hi,extrapolated,method,slope,slope_lo,slope_hi,trend,"
               "determined,rho_used\n");
    for (int i = 0; i < r->n_pairs; i++) {
        const ResultPair *p = &r->pairs[i];
        if (!p->ok) continue;
        for (int k = 0; k < p->c.n; k++) {
            const CegLevel *v = &p->c.lv[k];
            sb_csv(b, r->arms[p->cand].row.name);
            sb_putc(b, ',');
            sb_csv(b, r->arms[p->ref].row.name);
            sb_printf(b, ",%.8g,%.8g,%.8g,%.8g,%.8g,%d,%s,%.6g,%.6g,%.6g,%s,%d,%.4g\n", v->loss, v->c_ref, v->ceg, v->lo,
                      v->hi, v->extrapolated, ceg_method_name(v->method), p->c.slope, p->c.slope_lo, p->c.slope_hi,
                      p->c.trend, p->c.determined, p->c.rho_used);
        }
    }
}

/* One row per switch of each measured package (and one for the whole package, switch "*"). */
static void write_ablations(const Results *r, StrBuf *b) {
    sb_puts(b, "ablation,switch,loss,extrapolated,one_at_a_time,one_at_a_time_lo,one_at_a_time_hi,leave_one_out,"
               "leave_one_out_lo,leave_one_out_hi,shapley,shapley_lo,shapley_hi\n");
    for (int i = 0; i < r->n_ablations; i++) {
        const ResultAblation *ab = &r->abl[i];
        const AblationStats *s = &ab->s;
        for (int k = 0; k <= s->n; k++) {
            const double *one = k < s->n ? s->single[k] : s->prod_single, *loo = k < s->n ? s->loo[k] : s->prod_loo;
            const double nan3[3] = {NAN, NAN, NAN}, *sh = !s->has_shapley ? nan3 : k < s->n ? s->shapley[k] : s->package;
            sb_csv(b, ab->name);
            sb_putc(b, ',');
            sb_csv(b, k < s->n ? ab->sw[k] : "*");
            sb_printf(b, ",%.8g,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", s->L, s->extrapolated, one[0], one[1],
                      one[2], loo[0], loo[1], loo[2], sh[0], sh[1], sh[2]);
        }
    }
}

static void write_claims(const ClaimResult *c, int n, StrBuf *b) {
    sb_puts(b, "id,claim,verdict,result\n");
    for (int i = 0; i < n; i++) {
        sb_printf(b, "%s,", c[i].spec->id);
        sb_csv(b, c[i].spec->text);
        sb_putc(b, ',');
        sb_csv(b, c[i].verdict);
        sb_putc(b, ',');
        sb_csv(b, c[i].result);
        sb_putc(b, '\n');
    }
}

/* An interval bound, or -1 where the data give none (JSON has no infinity). */
static double bound(double v) { return isfinite(v) ? v : -1; }

static void write_json(const Results *r, const ClaimResult *c, int n, StrBuf *b) {
    JsonWriter w;
    jw_init(&w, b);
    jw_object_begin(&w);
    jw_key(&w, "study"), jw_string(&w, r->info.name);
    jw_key(&w, "runs_done"), jw_int(&w, r->runs_done);
    jw_key(&w, "runs_total"), jw_int(&w, r->runs_total);
    jw_key(&w, "flops"), jw_number(&w, "%.8g", r->flops_done);
    jw_key(&w, "arms"), jw_array_begin(&w);
    for (int a = 0; a < r->n_arms; a++) {
        const ResultArm *m = &r->arms[a];
        jw_object_begin(&w);
        jw_key(&w, "name"), jw_string(&w, m->row.name);
        jw_key(&w, "preset"), jw_string(&w, m->row.preset);
        jw_key(&w, "allocation"), jw_string(&w, m->row.allocation);
        jw_key(&w, "lr"), jw_number(&w, "%.6g", m->row.lr);
        jw_key(&w, "points"), jw_int(&w, m->n_points);
        jw_key(&w, "plateau_runs"), jw_int(&w, m->n_plateau);
        const Frontier *f = &m->fr;
        if (f->has_law) {
            static const char *name[3] = {"E", "A", "alpha"};
            for (int k = 0; k < 3; k++) {
                char key[16];
                jw_key(&w, name[k]), jw_number(&w, "%.8g", f->law.p[k].value);
                snprintf(key, sizeof key, "%s_lo", name[k]);
                jw_key(&w, key), jw_number(&w, "%.8g", bound(f->law.p[k].lo));
                snprintf(key, sizeof key, "%s_hi", name[k]);
                jw_key(&w, key), jw_number(&w, "%.8g", bound(f->law.p[k].hi));
            }
            jw_key(&w, "identified"), jw_bool(&w, f->law.identified);
            jw_key(&w, "sigma_seed"), jw_number(&w, "%.6g", f->sigma_seed);
            jw_key(&w, "sigma_used"), jw_number(&w, "%.6g", f->sigma);
        }
        jw_key(&w, "frontier"), jw_array_begin(&w);
        for (int k = 0; k < f->n; k++) {
            const FrontierPoint *q = &f->pt[k];
            jw_object_begin(&w);
            jw_key(&w, "flops"), jw_number(&w, "%.8g", q->flops);
            jw_key(&w, "loss"), jw_number(&w, "%.8g", q->loss);
            jw_key(&w, "seeds"), jw_int(&w, q->n_seeds);
            jw_key(&w, "sizes"), jw_int(&w, q->n_sizes);
            jw_key(&w, "interior"), jw_int(&w, q->n_interior);
            jw_key(&w, "n_opt"), jw_number(&w, "%.6g", q->n_opt);
            jw_key(&w, "d_opt"), jw_number(&w, "%.6g", q->d_opt);
            jw_object_end(&w);
        }
        jw_array_end(&w);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_key(&w, "claims"), jw_array_begin(&w);
    for (int i = 0; i < n; i++) {
        jw_object_begin(&w);
        jw_key(&w, "id"), jw_string(&w, c[i].spec->id);
        jw_key(&w, "verdict"), jw_string(&w, c[i].verdict);
        jw_key(&w, "result"), jw_string(&w, c[i].result);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_object_end(&w);
    sb_putc(b, '\n');
}

int tables_write(const Results *r, const ClaimResult *claims, int n_claims, const char *dir, Status *st) {
    StrBuf fits = {0}, ceg = {0}, cl = {0}, json = {0}, abl = {0};
    write_fits(r, &fits);
    write_ablations(r, &abl);
    write_ceg(r, &ceg);
    write_claims(claims, n_claims, &cl);
    write_json(r, claims, n_claims, &json);
    const struct {
        const char *name;
        StrBuf *b;
    } files[] = {{"fits.csv", &fits}, {"ceg.csv", &ceg}, {"claims.csv", &cl}, {"report.json", &json},
                   {"ablations.csv", &abl}};
    int rc = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0] && !rc; i++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        rc = files[i].b->failed ? status_fail(st, AP_ENOMEM, "out of memory writing the report")
                                : file_write_atomic(path, files[i].b->s, files[i].b->len, st);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) sb_free(files[i].b);
    return rc;
}
