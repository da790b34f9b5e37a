/* cmd_train.c - `algoprog train | sample | config | keys`: one run, its text, its recipe. */
#include "cli/cli.h"
#include "train/curriculum.h"

#include "core/parallel.h"
#include "core/status.h"
#include "data/dataset.h"
#include "dist/dist.h"
#include "config/config.h"
#include "optim/optim.h"
#include "train/checkpoint.h"
#include "train/rundir.h"
#include "train/sample.h"
#include "train/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cli_usage_train =
    "usage: algoprog train RECIPE [key=value ...]     train a recipe (a file or a preset name)\n"
    "       algoprog train --resume DIR [key=value]   continue a run from its last checkpoint\n"
    "  RECIPE: recipes/NAME.ini, a preset name (gpt2-2019, llama-2023, ...) or a run's DIR/config.ini;\n"
    "  every recipe key can be overridden as key=value (`algoprog keys` lists them). out=DIR names the\n"
    "  run directory. SIGINT/SIGTERM checkpoint and stop (exit 130/143); --resume continues bit for bit.\n";
const char *const cli_usage_sample =
    "usage: algoprog sample DIR [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "  generates text from the checkpoint in run directory DIR\n";
const char *const cli_usage_config =
    "usage: algoprog config RECIPE [key=value ...]\n"
    "  prints the resolved recipe, parameter counts, FLOPs per step and every tensor's shape\n";
const char *const cli_usage_keys =
    "usage: algoprog keys [--markdown | --innovations]\n"
    "  lists every recipe key (switch) with its default and documentation; --innovations lists the\n"
    "  switches that carry a published origin, with it, and counts them\n";

static int load_config(Config *cfg, const char *recipe, int argc, char **argv, Status *st) {
    config_defaults(cfg);
    if (config_load_recipe(cfg, recipe, st)) return -1;
    return config_apply_args(cfg, argc, argv, st);
}

int cmd_train(int argc, char **argv) {
    Status st = {0};
    if (argc < 1) return fputs(cli_usage_train, stderr), 2;
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return fprintf(stderr, "algoprog: out of memory\n"), 1;
    tr->dp_size = dist_size(); /* under mpirun -np G: one run, data parallel over G ranks */
    tr->stop = cli_stop_flag();
    cli_catch_signals();
    int rc;
    if (!strcmp(argv[0], "--resume")) {
        if (argc < 2) {
            free(tr);
            fprintf(stderr, "algoprog: error: --resume needs a run directory\n");
            return 2;
        }
        /* threads must be set before any allocation sized by the thread count */
        int threads = 0;
        for (int i = 2; i < argc; i++)
            if (!strncmp(argv[i], "threads=", 8)) threads = atoi(argv[i] + 8);
        parallel_init(threads);
        rc = trainer_resume(tr, argv[1], argc - 2, argv + 2, &st);
    } else {
        Config cfg;
        rc = load_config(&cfg, argv[0], argc - 1, argv + 1, &st);
        if (!rc) {
            parallel_init(cfg.threads);
            rc = trainer_setup(tr, &cfg, &st);
        }
    }
    if (!rc) {
        tr->stop = cli_stop_flag(); /* setup and resume clear the trainer */
        rc = trainer_run(tr, &st);
    }
    trainer_free(tr);
    free(tr);
    if (rc) {
        int code = cli_fail(&st);
        if (dist_size() > 1 && st.code != AP_EINTERRUPTED)
            dist_abort(code); /* the other ranks would wait in a reduction forever */
        return code;
    }
    return 0;
}

static int parse_num(const char *flag, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "algoprog: error: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, val);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_sample(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_sample, stderr), 2;
    const char *dir = argv[0], *prompt = "";
    double tokens = 256, seed = 1, topk = 0;
    SampleParams sp = {1.0, 0, 1.0};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "algoprog: error: '%s' needs a value\n", f);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(f, "--prompt")) prompt = v;
        else if (!strcmp(f, "--tokens")) bad = parse_num(f, v, 1, 1e7, &tokens);
        else if (!strcmp(f, "--temperature")) bad = parse_num(f, v, 0, 100, &sp.temperature);
        else if (!strcmp(f, "--top-k")) bad = parse_num(f, v, 0, 1e9, &topk);
        else if (!strcmp(f, "--top-p")) bad = parse_num(f, v, 1e-6, 1, &sp.top_p);
        else if (!strcmp(f, "--seed")) bad = parse_num(f, v, 0, 9e15, &seed);
        else {
            fprintf(stderr, "algoprog: error: unknown option '%s' for sample\n", f);
            return 2;
        }
        if (bad) return 2;
    }
    sp.top_k = (int)topk;
    parallel_init(0);
    Status st = {0};
    char path[1200];
    Model *m = calloc(1, sizeof *m);
    Config cfg;
    if (!m) return 1;
    Tokenizer tok = {0};
    int rc = rundir_path(path, sizeof path, dir, RUNDIR_CHECKPOINT, &st);
    if (!rc) rc = checkpoint_load_model(m, &cfg, path, &st);
    if (!rc) rc = rundir_load_tokenizer(&tok, dir, &st);
    if (!rc) {
        fputs(prompt, stdout);
        rc = sample_generate(m, &tok, prompt, (int)tokens, &sp, (uint64_t)seed, stdout, &st);
        fputc('\n', stdout);
    }
    tokenizer_free(&tok);
    model_free(m);
    free(m);
    return rc ? cli_fail(&st) : 0;
}

int cmd_config(int argc, char **argv) {
    if (argc < 1) return fputs(cli_usage_config, stderr), 2;
    Status st = {0};
    Config cfg;
    if (load_config(&cfg, argv[0], argc - 1, argv + 1, &st) || config_resolve(&cfg, &st)) return cli_fail(&st);
    if (cfg.vocab == 0) { /* the tokenizer decides */
        Tokenizer t;
        char tpath[700];
        if (dataset_tokenizer_path(cfg.tokenizer, tpath, sizeof tpath, &st) || tokenizer_load(&t, tpath, &st))
            return cli_fail(&st);
        cfg.vocab = t.n_tokens;
        tokenizer_free(&t);
    }
    char *text = config_to_text(&cfg, 0);
    fputs(text, stdout);
    free(text);
    Model *m = calloc(1, sizeof *m);
    Rng rng;
    rng_seed(&rng, cfg.seed);
    if (!m || model_create(m, &cfg, &rng, &st)) {
        free(m);
        return cli_fail(&st);
    }
    StepFlops f;
    double tokens;
    curriculum_mean(&cfg, &tokens, &f);
    f.optimizer = optim_step_flops(&cfg, m->ps);
    double N = (double)model_total_params(m);
    printf("# params %.0f (%zu without embeddings); per step%s: %.0f tokens, %.6g FLOPs exact (%.6g forward, %.6g "
           "optimiser), %.6g by 6ND\n",
           N, model_nonembedding_params(m), curriculum_active(&cfg) ? " (the mean over the curriculum)" : "", tokens,
           f.forward + f.backward + f.optimizer, f.forward, f.optimizer, 6.0 * N * tokens);
    if (cfg.family == FAMILY_TRANSFORMER)
        printf("# KV cache: %.0f bytes per token at inference (fp32, all %d layers; %s)\n",
               transformer_kv_bytes_per_token(&cfg), cfg.n_layers,
               cfg.attention == ATTN_MLA ? "attention=mla: the latent and the RoPE key"
               : cfg.n_kv_heads == 1      ? "MQA"
               : cfg.n_kv_heads < cfg.n_heads ? "GQA"
                                              : "MHA");
    if (cfg.moe_experts > 0) {
        double active = (double)model_active_params(&cfg);
        printf("# mixture of experts: %.0f of the %.0f parameters active per token (%.1f%%); %.6g forward FLOPs per "
               "token (%.6g by 2 x active)\n",
               active, N, 100.0 * active / N, f.forward / tokens, 2.0 * active);
    }
    for (int i = 0; i < m->ps->n; i++) {
        const ParamTensor *t = &m->ps->t[i];
        printf("# tensor %-8s (", t->name);
        for (int d = 0; d < t->ndim; d++) printf("%s%zu", d ? ", " : "", t->shape[d]);
        printf(")\n");
    }
    model_free(m);
    free(m);
    return 0;
}

int cmd_keys(int argc, char **argv) {
    int markdown = argc == 1 && !strcmp(argv[0], "--markdown"), innovations = argc == 1 && !strcmp(argv[0], "--innovations");
    if (argc > 1 || (argc == 1 && !markdown && !innovations)) return fputs(cli_usage_keys, stderr), 2;
    if (markdown) {
        config_write_markdown(stdout);
        return 0;
    }
    int n, with_origin = 0;
    const ConfigKey *k = config_keys(&n);
    for (int i = 0; i < n; i++) {
        if (!innovations) {
            printf("%-7s %-18s default %-12s %s\n", k[i].section, k[i].key, k[i].def, k[i].doc);
        } else if (k[i].origin[0]) {
            printf("%-7s %-18s %s\n", k[i].section, k[i].key, k[i].origin);
            with_origin++;
        }
    }
    if (innovations) printf("%d switches with a published origin (of %d keys)\n", with_origin, n);
    return 0;
}
