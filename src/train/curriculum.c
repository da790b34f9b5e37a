/* curriculum.c - batch-size ramp, sequence-length warmup, attention-window warmup (curriculum.h). */
#include "train/curriculum.h"

#include <math.h>

int curriculum_active(const Config *c) { return c->batch_warmup > 0 || c->seq_warmup > 0 || c->window_warmup > 0; }

/* start + (end - start) * (progress through the warmup), rounded up to a multiple of `unit`;
 * `end` itself once the warmup is over or the rounding reaches it. */
static int grow(int start, int end, double f, double frac, int unit) {
    if (!(frac > 0)) return end;
    double g = f / frac;
    if (g >= 1.0) return end;
    int v = (int)ceil((start + (end - start) * (g > 0 ? g : 0.0)) / unit) * unit;
    return v >= end ? end : v < unit ? unit : v;
}

StepShape curriculum_at(const Config *c, double f) {
    StepShape s = {c->batch, c->context, c->window};
    s.batch = grow(c->batch_start, c->batch, f, c->batch_warmup, c->batch_start > 0 ? c->batch_start : 1);
    s.context = grow(c->seq_start, c->context, f, c->seq_warmup, 8);
    if (c->window_warmup > 0) {
        int end = c->window ? c->window : c->context;
        int w = grow(c->window_start, end, f, c->window_warmup, 16);
        s.window = w >= end ? c->window : w;
    }
    return s;
}

StepShape curriculum_step(const Config *c, long step) {
    return curriculum_at(c, c->steps > 0 ? (double)step / c->steps : 1.0);
}

StepFlops curriculum_step_flops(const Config *c, StepShape s) {
    Config k = *c;
    k.window = s.window;
    k.window_warmup = k.batch_warmup = k.seq_warmup = 0;
    return model_step_flops(&k, s.batch, s.context);
}

void curriculum_mean(const Config *c, double *tokens, StepFlops *flops) {
    StepFlops mean = {0};
    double tok = 0;
    int n = curriculum_active(c) ? 256 : 1;
    for (int k = 0; k < n; k++) {
        StepShape s = curriculum_at(c, n == 1 ? 1.0 : (k + 0.5) / n);
        StepFlops f = curriculum_step_flops(c, s);
        mean.forward += f.forward / n, mean.backward += f.backward / n;
        tok += (double)s.batch * s.context / n;
    }
    if (tokens) *tokens = tok;
    if (flops) *flops = mean;
}

void curriculum_totals(const Config *c, double *tokens, double *flops) {
    double tok = 0, fl = 0;
    StepShape last = {0, 0, -1};
    StepFlops f = {0};
    for (long k = 0; k < c->steps; k++) {
        StepShape s = curriculum_step(c, k);
        if (s.batch != last.batch || s.context != last.context || s.window != last.window)
            f = curriculum_step_flops(c, s), last = s; /* shapes change rarely: count each once */
        tok += (double)s.batch * s.context;
        fl += f.forward + f.backward;
    }
    if (tokens) *tokens = tok;
    if (flops) *flops = fl;
}
