/* gradcheck.h - finite-difference gradient checking shared by the op and model tests.
 *
 * A test wraps its forward in a closure that returns a scalar loss (double). For a tensor x with
 * analytic gradient g, gradcheck_tensor perturbs sampled entries by +-eps, takes the central
 * difference of the loss and compares:  |g - fd| <= atol + rtol * max(|g|, |fd|).
 * Every mismatch is printed with its index; the worst relative error is always printed. */
#ifndef AP_GRADCHECK_H
#define AP_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef double (*gc_loss_fn)(void *ctx);

typedef struct {
    double eps, atol, rtol;
    int max_samples; /* entries checked per tensor (spread evenly); 0 = all */
} GradcheckOpts;

static inline int gradcheck_tensor(const char *what, float *x, const float *g, size_t n, gc_loss_fn loss, void *ctx,
                                   GradcheckOpts o) {
    size_t step = 1;
    if (o.max_samples > 0 && n > (size_t)o.max_samples) step = n / (size_t)o.max_samples;
    int bad = 0;
    double worst = 0.0, max_g = 0.0;
    size_t checked = 0;
    for (size_t i = (step > 1 ? step / 2 : 0); i < n; i += step) {
        float keep = x[i];
        x[i] = keep + (float)o.eps;
        double lp = loss(ctx);
        x[i] = keep - (float)o.eps;
        double lm = loss(ctx);
        x[i] = keep;
        /* use the actually representable perturbation */
        double h = (double)(keep + (float)o.eps) - (double)(keep - (float)o.eps);
        double fd = (lp - lm) / h, an = g[i];
        double diff = fabs(fd - an), scale = fmax(fabs(fd), fabs(an));
        if (scale > max_g) max_g = scale;
        double rel = diff / (scale + 1e-12);
        if (scale > 10 * o.atol && rel > worst) worst = rel; /* relative error where it means something */
        if (!(diff <= o.atol + o.rtol * scale)) { /* a NaN on either side fails too */
            if (bad < 5) printf("  %s[%zu]: analytic %.6g vs numeric %.6g\n", what, i, an, fd);
            bad++;
        }
        checked++;
    }
    printf("  %-18s %6zu checked, max |grad| %.3g, worst rel err %.2e%s\n", what, checked, max_g, worst,
           bad ? "  FAIL" : "");
    /* a gradient that is zero everywhere would make the check vacuous */
    if (max_g == 0.0) {
        printf("  %s: every gradient is zero - the check would prove nothing\n", what);
        return 1;
    }
    return bad;
}

/* Deterministic pseudo-random fill for test inputs. */
static inline void gc_fill(float *x, size_t n, unsigned seed, float scale) {
    unsigned long long s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u1 = ((s >> 11) + 0.5) / 9007199254740992.0;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u2 = ((s >> 11) + 0.5) / 9007199254740992.0;
        x[i] = scale * (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

#endif
