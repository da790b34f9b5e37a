/* ctxeval.h - held-out loss at a context other than the one a model was trained at (claim C8).
 *
 * The model is rebuilt at context T from the trained parameters (positions are not parameters
 * for RoPE, ALiBi, sinusoidal or no positions, so the shapes hold) with a RoPE scaling applied
 * (rope_original_context = the training context C, factor s, default T / C), and reads the held-out
 * text in windows of T tokens. The loss is reported overall and by position bucket, [0, C), [C, 2C),
 * [2C, 4C), ...: how a model does beyond its training length is the loss past C. Learned
 * positions have nothing past C and are refused. `algoprog eval` prints it; a run with
 * eval_contexts evaluates itself at the end and writes it into final.json. */
#ifndef AP_CTXEVAL_H
#define AP_CTXEVAL_H

#include "config/config.h"
#include "core/params.h"
#include "core/status.h"
#include "data/dataset.h"

#define CTXEVAL_BUCKETS 16

typedef struct {
    int train_context, context; /* C and T */
    int scaling;                /* RopeScaleKind; RoPE only */
    double factor;              /* its s */
    int windows;                /* held-out windows of T tokens read */
    int n_buckets;
    double bucket_tokens[CTXEVAL_BUCKETS], bucket_bpb[CTXEVAL_BUCKETS];
    double bpb;        /* over every position */
    double bpb_beyond; /* over positions >= C (NaN when T <= C) */
} ContextEval;

/* Whether a model of recipe cfg can be evaluated at context T: 0, or -1 with a message. */
int ctxeval_check(const Config *cfg, int T, Status *st);
/* Evaluates the parameters params of a model of recipe cfg (as trained) at context T with RoPE
 * scaling `scaling` and factor (<= 0: T / C), on tokens held-out tokens of part (0: the whole part).
 * A run trained with a scaling (a context-extension fine-tune) keeps it under ROPE_SCALE_NONE, its
 * factor counted from its rope_original_context and never below the trained one. */
int ctxeval_run(const Config *cfg, const ParamSet *params, int T, int scaling, double factor, EvalPart part,
                long tokens, ContextEval *out, Status *st);
/* The scalings worth comparing for cfg: none, linear, ntk and yarn for RoPE; none otherwise. */
int ctxeval_scalings(const Config *cfg, int *out);

#endif
