/* cmd_eval.c - `algoprog eval`: a trained run's held-out loss, at its own context or beyond it
 * (claim C8), by position bucket. */
#include "cli/cli.h"

#include "core/json.h"
#include "core/parallel.h"
#include "core/strbuf.h"
#include "data/dataset.h"
#include "models/model.h"
#include "train/checkpoint.h"
#include "train/rundir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_eval =
    "usage: algoprog eval RUN_DIR [eval_context=N] [rope_scaling=none|linear|ntk|yarn] [rope_factor=S]\n"
    "         [tokens=N] [part=test|val] [threads=N] [--json]\n"
    "  The run's held-out loss in windows of eval_context tokens (default: its training context),\n"
    "  in bits per byte overall and by position: [0, C), [C, 2C), [2C, 4C), ... for the training\n"
    "  context C. Beyond C, RoPE runs may be scaled (rope_factor defaults to eval_context / C);\n"
    "  ALiBi, sinusoidal and no positions run as they are; learned positions cannot go beyond C.\n"
    "  tokens: held-out tokens to read (default 262144; 0: the whole part).\n";

#define EVAL_BUCKETS 16

/* Bucket of position t for training context C: 0 below C, then one per doubling. */
static int bucket_of(size_t t, size_t C) {
    int b = 0;
    for (size_t edge = C; t >= edge && b < EVAL_BUCKETS - 1; edge *= 2) b++;
    return b;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_eval, stderr), 2;
    const char *dir = argv[0];
    long eval_context = 0, tokens = 262144, threads = 0;
    int json = 0, part = EVAL_TEST;
    char *over[8];
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strncmp(a, "eval_context=", 13)) eval_context = strtol(a + 13, &end, 10);
        else if (!strncmp(a, "tokens=", 7)) tokens = strtol(a + 7, &end, 10);
        else if (!strncmp(a, "threads=", 8)) threads = strtol(a + 8, &end, 10);
        else if (!strcmp(a, "part=test") || !strcmp(a, "part=val")) part = a[5] == 't' ? EVAL_TEST : EVAL_VAL;
        else if ((!strncmp(a, "rope_scaling=", 13) || !strncmp(a, "rope_factor=", 12)) && n_over < 6)
            over[n_over++] = argv[i];
        else return fprintf(stderr, "algoprog: error: unknown argument '%s'\n%s", a, cli_usage_eval), 2;
        if (end && (*end || end == strchr(a, '=') + 1))
            return fprintf(stderr, "algoprog: error: '%s' is not a whole number\n", a), 2;
    }
    if (eval_context < 0 || eval_context > (1 << 20) || tokens < 0 || threads < 0)
        return fputs("algoprog: error: eval_context must be 1..1048576, tokens and threads >= 0\n", stderr), 2;
    parallel_init((int)threads);
    Status st = {0};
    char path[1200];
    if (rundir_path(path, sizeof path, dir, RUNDIR_CHECKPOINT, &st)) return cli_fail(&st);
    /* the trained recipe first, for its context and positions */
    Config cfg;
    TensorFile tf;
    TrainState ts;
    OptimMeta om;
    if (checkpoint_open(path, &tf, &cfg, &ts, &om, &st)) return cli_fail(&st);
    tensorfile_free(&tf);
    size_t C = (size_t)cfg.context, T = eval_context ? (size_t)eval_context : C;
    if (T > C && cfg.family == FAMILY_TRANSFORMER && cfg.pos == POS_LEARNED) {
        return fprintf(stderr, "algoprog: error: run '%s' has learned positions (pos=learned): it has none beyond its "
                               "training context %zu\n", dir, C), 2;
    }
    /* then the model at the evaluation context: rope_original_context = C, and a scale of T / C
     * unless one is given */
    char ctx[64], orig[64], factor[64];
    snprintf(ctx, sizeof ctx, "context=%zu", T);
    snprintf(orig, sizeof orig, "rope_original_context=%zu", C);
    snprintf(factor, sizeof factor, "rope_factor=%.17g", T > C ? (double)T / (double)C : 1.0);
    char *args[12] = {ctx, orig};
    int n_args = 2, scaled = 0, factored = 0;
    for (int i = 0; i < n_over; i++) {
        scaled |= !strncmp(over[i], "rope_scaling=", 13) && strcmp(over[i], "rope_scaling=none");
        factored |= !strncmp(over[i], "rope_factor=", 12);
    }
    if (scaled && !factored) args[n_args++] = factor;
    for (int i = 0; i < n_over; i++) args[n_args++] = over[i];
    Config ecfg;
    Model *m = calloc(1, sizeof *m);
    if (!m) return 1;
    int rc = checkpoint_load_model_as(m, &ecfg, path, n_args, args, &st);
    Dataset d = {0};
    Tokenizer *tok = &d.tok;
    if (!rc) rc = dataset_open(&d, cfg.data, cfg.tokenizer, cfg.val_frac, 0, (int)T, cfg.seed, &st);
    if (!rc) rc = model_prepare(m, 1, (int)T, &st);
    int *inputs = malloc(T * sizeof *inputs), *targets = malloc(T * sizeof *targets);
    if (!rc && (!inputs || !targets)) rc = status_fail(&st, AP_ENOMEM, "out of memory");
    double nats[EVAL_BUCKETS] = {0}, bytes[EVAL_BUCKETS] = {0}, count[EVAL_BUCKETS] = {0};
    int nb = rc ? 0 : dataset_eval_batches(&d, (EvalPart)part, 1, tokens);
    for (int k = 0; k < nb; k++) {
        uint64_t ignore = 0;
        dataset_eval_batch(&d, (EvalPart)part, k, 1, inputs, targets, &ignore, NULL);
        model_forward(m, inputs, targets, 1, (int)T, 0);
        const float *loss = model_losses(m);
        for (size_t t = 0; t < T; t++) {
            int y = targets[t];
            if (y < 0) continue;
            int b = bucket_of(t, C);
            nats[b] += loss[t], count[b] += 1;
            bytes[b] += tok->special && tok->special[y] ? 0 : (double)(tok->tok_off[y + 1] - tok->tok_off[y]);
        }
    }
    if (!rc && nb == 0) rc = status_fail(&st, AP_EINVAL, "no held-out windows of %zu tokens in '%s'", T, cfg.data);
    if (!rc) {
        double tn = 0, tb = 0;
        int last = bucket_of(T - 1, C);
        StrBuf sb = {0};
        JsonWriter w;
        jw_init(&w, &sb);
        const char *scaling = config_enum_name("rope_scaling", ecfg.rope_scaling);
        if (json) {
            jw_object_begin(&w);
            jw_key(&w, "run"), jw_string(&w, dir);
            jw_key(&w, "train_context"), jw_int(&w, (long long)C);
            jw_key(&w, "eval_context"), jw_int(&w, (long long)T);
            jw_key(&w, "rope_scaling"), jw_string(&w, scaling ? scaling : "none");
            jw_key(&w, "rope_factor"), jw_number(&w, "%.6g", ecfg.rope_factor);
            jw_key(&w, "windows"), jw_int(&w, nb);
            jw_key(&w, "buckets"), jw_array_begin(&w);
        } else {
            printf("run %s: trained at context %zu, evaluated at %zu (%s, rope_scaling %s x%.3g), %d windows of the "
                   "%s half\n",
                   dir, C, T, config_enum_name("pos", cfg.pos), scaling ? scaling : "none", ecfg.rope_factor, nb,
                   part == EVAL_TEST ? "test" : "validation");
            printf("  positions            tokens   bits/byte\n");
        }
        for (int b = 0; b <= last; b++) {
            size_t lo = b ? C << (b - 1) : 0, hi = C << b;
            if (hi > T) hi = T;
            double bpb = bytes[b] > 0 ? nats[b] / (log(2.0) * bytes[b]) : NAN;
            tn += nats[b], tb += bytes[b];
            if (json) {
                jw_object_begin(&w);
                jw_key(&w, "from"), jw_int(&w, (long long)lo);
                jw_key(&w, "to"), jw_int(&w, (long long)hi);
                jw_key(&w, "tokens"), jw_number(&w, "%.0f", count[b]);
                jw_key(&w, "bpb"), jw_number(&w, "%.9g", bpb);
                jw_object_end(&w);
            } else {
                printf("  [%6zu, %6zu) %10.0f   %9.4f\n", lo, hi, count[b], bpb);
            }
        }
        double all = tb > 0 ? tn / (log(2.0) * tb) : NAN;
        if (json) {
            jw_array_end(&w);
            jw_key(&w, "bpb"), jw_number(&w, "%.9g", all);
            jw_object_end(&w);
            fwrite(sb.s, 1, sb.len, stdout);
            fputc('\n', stdout);
        } else {
            printf("  all                          %9.4f\n", all);
        }
        sb_free(&sb);
    }
    free(inputs), free(targets);
    dataset_free(&d);
    model_free(m);
    free(m);
    return rc ? cli_fail(&st) : 0;
}
