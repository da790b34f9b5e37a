/* cli.h - the command line: one file per family of subcommands, and the conventions they share.
 *
 * Library calls return a Status; only this layer turns it into a message and an exit code:
 *   0 success, 1 failure (I/O, memory, a run that failed), 2 bad input or usage,
 *   128 + signal when stopped by SIGINT (130) or SIGTERM (143) after saving state.
 * The stop flag is the CLI's: cli_catch_signals installs handlers that set it, and the library
 * functions that run long (training, studies) receive a pointer to it and return
 * AP_EINTERRUPTED once they have checkpointed or released their work. */
#ifndef AP_CLI_H
#define AP_CLI_H

#include "core/status.h"

#include <signal.h>

/* Prints "algoprog: error: <message>" (or the interruption note) and returns the exit code. */
int cli_fail(const Status *st);
/* Installs SIGINT/SIGTERM handlers that set the stop flag to the signal's number (first one wins). */
void cli_catch_signals(void);
const volatile sig_atomic_t *cli_stop_flag(void);
/* 1 when the argument asks for help (--help, -h). */
int cli_is_help(const char *arg);

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_corpus(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_account(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_tokenizers(int argc, char **argv);
int bench_study(int argc, char **argv);

/* Each subcommand's usage text (printed on --help to stdout, on misuse to stderr). */
extern const char *const cli_usage_train, *const cli_usage_sample, *const cli_usage_eval, *const cli_usage_config, *const cli_usage_keys,
    *const cli_usage_corpus, *const cli_usage_tokenize, *const cli_usage_study, *const cli_usage_fit,
    *const cli_usage_account, *const cli_usage_report, *const cli_usage_bench;

#endif
