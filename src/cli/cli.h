/* cli.h - the command line's subcommands (one file per family) and its error convention. */
#ifndef AP_CLI_H
#define AP_CLI_H

#include "core/status.h"

/* Prints "algoprog: error: <message>" and returns the exit code: 2 for bad input, 1 otherwise. */
int cli_fail(const Status *st);
int cmd_corpus(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_account(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_tokenizers(int argc, char **argv);

#endif
