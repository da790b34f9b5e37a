/* cmd_eval.c - `algoprog eval`: a trained run's held-out loss, at its own context or beyond it
 * (claim C8), by position bucket. */
#include "cli/cli.h"

#include "core/json.h"
#include "core/parallel.h"
#include "core/strbuf.h"
#include "data/dataset.h"
#include "models/model.h"
#include "kernels/ops.h"
#include "train/checkpoint.h"
#include "train/ctxeval.h"
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
    /* the trained model at its own context, then rebuilt at the evaluation context */
    Config cfg;
    Model *m = calloc(1, sizeof *m);
    if (!m) return 1;
    int rc = checkpoint_load_model(m, &cfg, path, &st);
    int scaling = ROPE_SCALE_NONE;
    double factor = 0;
    for (int i = 0; !rc && i < n_over; i++) {
        Config probe = cfg; /* the key's own parser and range checks */
        rc = config_apply_args(&probe, 1, &over[i], &st);
        if (!rc && !strncmp(over[i], "rope_scaling=", 13)) scaling = probe.rope_scaling;
        if (!rc && !strncmp(over[i], "rope_factor=", 12)) factor = probe.rope_factor;
    }
    if (!rc && scaling != ROPE_SCALE_NONE && cfg.pos != POS_ROPE && cfg.attention != ATTN_MLA)
        rc = status_fail(&st, AP_EINVAL, "rope_scaling scales RoPE: it needs pos=rope (run '%s' has pos=%s)", dir,
                         config_enum_name("pos", cfg.pos));
    size_t C = (size_t)cfg.context, T = eval_context ? (size_t)eval_context : C;
    ContextEval ce;
    if (!rc) rc = ctxeval_run(&cfg, m->ps, (int)T, scaling, factor, (EvalPart)part, tokens, &ce, &st);
    model_free(m);
    free(m);
    if (rc) return cli_fail(&st);
    const char *scale_name = config_enum_name("rope_scaling", ce.scaling);
    StrBuf sb = {0};
    JsonWriter w;
    jw_init(&w, &sb);
    if (json) {
        jw_object_begin(&w);
        jw_key(&w, "run"), jw_string(&w, dir);
        jw_key(&w, "train_context"), jw_int(&w, (long long)C);
        jw_key(&w, "eval_context"), jw_int(&w, (long long)T);
        jw_key(&w, "rope_scaling"), jw_string(&w, scale_name ? scale_name : "none");
        jw_key(&w, "rope_factor"), jw_number(&w, "%.6g", ce.factor);
        jw_key(&w, "windows"), jw_int(&w, ce.windows);
        jw_key(&w, "buckets"), jw_array_begin(&w);
    } else {
        printf("run %s: trained at context %zu, evaluated at %zu (%s, rope_scaling %s x%.3g), %d windows of the "
               "%s half\n",
               dir, C, T, config_enum_name("pos", cfg.pos), scale_name ? scale_name : "none", ce.factor, ce.windows,
               part == EVAL_TEST ? "test" : "validation");
        printf("  positions            tokens   bits/byte\n");
    }
    for (int b = 0; b < ce.n_buckets; b++) {
        size_t lo = b ? C << (b - 1) : 0, hi = C << b;
        if (hi > T) hi = T;
        if (json) {
            jw_object_begin(&w);
            jw_key(&w, "from"), jw_int(&w, (long long)lo);
            jw_key(&w, "to"), jw_int(&w, (long long)hi);
            jw_key(&w, "tokens"), jw_number(&w, "%.0f", ce.bucket_tokens[b]);
            jw_key(&w, "bpb"), jw_number(&w, "%.9g", ce.bucket_bpb[b]);
            jw_object_end(&w);
        } else {
            printf("  [%6zu, %6zu) %10.0f   %9.4f\n", lo, hi, ce.bucket_tokens[b], ce.bucket_bpb[b]);
        }
    }
    if (json) {
        jw_array_end(&w);
        jw_key(&w, "bpb"), jw_number(&w, "%.9g", ce.bpb);
        jw_key(&w, "bpb_beyond"), jw_number(&w, "%.9g", ce.bpb_beyond);
        jw_object_end(&w);
        fwrite(sb.s, 1, sb.len, stdout);
        fputc('\n', stdout);
    } else {
        printf("  all                          %9.4f\n", ce.bpb);
        if (T > C) printf("  past the training context    %9.4f\n", ce.bpb_beyond);
    }
    sb_free(&sb);
    return 0;
}
