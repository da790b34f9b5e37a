/* cli.c - what the subcommands share: error messages, exit codes and the stop flag. */
#define _DEFAULT_SOURCE /* SA_ONSTACK */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

/* The one signal-written variable: the CLI owns it and lends it to the library as a pointer. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig) {
    if (!g_stop) g_stop = sig;
}

void cli_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_ONSTACK; /* on the stacks parallel_init gives each thread: see parallel.h */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

const volatile sig_atomic_t *cli_stop_flag(void) { return &g_stop; }

int cli_is_help(const char *arg) { return arg && (!strcmp(arg, "--help") || !strcmp(arg, "-h")); }

int cli_fail(const Status *st) {
    if (st->code == AP_EINTERRUPTED) {
        fprintf(stderr, "algoprog: stopped: %s\n", st->msg);
        return 128 + (g_stop ? (int)g_stop : SIGINT);
    }
    fprintf(stderr, "algoprog: error: %s\n", st->msg);
    return st->code == AP_EINVAL ? 2 : 1;
}
