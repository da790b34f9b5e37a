/* test_registry.c - the study registry and scheduler: leases raced by two processes, files that
 * are not registries, a run that fails and is retried on resume, a stop request mid-study. */
#define _DEFAULT_SOURCE /* SA_ONSTACK */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "study/registry.h"
#include "study/scheduler.h"

#include "registry_fixture.h"

static char g_tmp[256];

static void tmp_path(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", g_tmp, name); }

/* A registry holding one study with n pending main runs (registry_fixture.h), then the checks
 * that a second start finds it and that other data is refused. */
static void make_registry_twins(const char *dir, int n, const int *twin_of) {
    Status st = {0};
    assert_int_equal(fixture_registry(dir, n, twin_of, &st), 0);
    StudySpec *s = calloc(1, sizeof *s);
    PlannedRun *runs = calloc((size_t)n, sizeof *runs);
    assert_non_null(s), assert_non_null(runs);
    fixture_study(s, runs, n, twin_of);
    Registry *r;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
    char data_a[65], data_b[65];
    snprintf(data_a, sizeof data_a, "%064d", 1);
    snprintf(data_b, sizeof data_b, "%064d", 2);
    /* a second start of the same study finds it and changes nothing */
    assert_int_equal(registry_init_study(r, s, runs, n, data_a, &st), 0);
    /* the same study on data that changed since is refused, naming both checksums */
    assert_int_equal(registry_init_study(r, s, runs, n, data_b, &st), -1);
    assert_non_null(strstr(st.msg, data_a));
    assert_non_null(strstr(st.msg, data_b));
    assert_non_null(strstr(st.msg, "changed on disk"));
    RegistryCounts k;
    assert_int_equal(registry_counts(r, &k, &st), 0);
    assert_int_equal(k.total, n);
    assert_int_equal(k.pending, n);
    registry_close(r);
    free(s->text);
    free(s);
    free(runs);
}

static void make_registry(const char *dir, int n) { make_registry_twins(dir, n, NULL); }

/* Leases runs until none is left, finishing each; writes each leased id to fd. */
static int lease_all(const char *dir, int fd) {
    Registry *r;
    Status st = {0};
    if (registry_open(&r, dir, REG_OPEN_WRITE, &st)) return 1;
    LeasedRun c;
    int got;
    while ((got = registry_lease(r, &c, &st)) == 1) {
        if (write(fd, &c.id, sizeof c.id) != sizeof c.id) return 1;
        RunFinal f = {0};
        f.val_loss = 1, f.val_bpb = 2, f.elapsed_s = 0.01;
        MetricRow m = {0, 0, 0, 0, NAN, 3, 4, 1e-3, NAN, 0, 0, NAN, NAN};
        int sweep = 0;
        struct timespec pause = {0, 1000000}; /* let the other process in */
        nanosleep(&pause, NULL);
        if (registry_finish(r, c.id, &f, &m, 1, &sweep, &st)) return 1;
        free(c.config);
    }
    registry_close(r);
    return got < 0;
}

static void test_leases_two_processes(void **state) {
    (void)state;
    char dir[300];
    tmp_path(dir, sizeof dir, "race");
    enum { N = 60 };
    make_registry(dir, N);
    int pipes[2][2];
    pid_t pid[2];
    for (int w = 0; w < 2; w++) {
        assert_int_equal(pipe(pipes[w]), 0);
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0) {
            close(pipes[w][0]);
            _exit(lease_all(dir, pipes[w][1]));
        }
        close(pipes[w][1]);
    }
    int count[N + 1] = {0}, per[2] = {0};
    for (int w = 0; w < 2; w++) {
        int id;
        while (read(pipes[w][0], &id, sizeof id) == sizeof id) {
            assert_true(id >= 1 && id <= N);
            count[id]++, per[w]++;
        }
        close(pipes[w][0]);
        int status;
        waitpid(pid[w], &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 1; i <= N; i++) assert_int_equal(count[i], 1);
    printf("  %d runs: %d leased by one process, %d by the other, none twice\n", N, per[0], per[1]);
    Registry *r;
    Status st = {0};
    RegistryCounts k;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
    assert_int_equal(registry_counts(r, &k, &st), 0);
    assert_int_equal(k.done, N);
    RunRow *rows;
    int n;
    assert_int_equal(registry_runs(r, 0, RUN_MAIN, RUN_DONE, 0, &rows, &n, &st), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < n; i++) assert_int_equal(rows[i].attempts, 1);
    registry_runs_free(rows, n);
    registry_close(r);
}

/* Leases one run and exits (or, with hold a pipe, waits until the parent closes its end). */
static pid_t lease_one_in_child(const char *dir, const int *hold) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        Registry *r;
        Status st = {0};
        LeasedRun c;
        if (registry_open(&r, dir, REG_OPEN_WRITE, &st) || registry_lease(r, &c, &st) != 1) _exit(1);
        registry_close(r);
        char b;
        if (hold) close(hold[1]);
        if (hold && read(hold[0], &b, 1) < 0) _exit(1);
        _exit(0);
    }
    return pid;
}

/* A run leased by a process that died while the study waits (an orphaned rank of a killed mpirun)
 * goes back to pending; one held by a live process stays running. */
static void test_release_dead_holders(void **state) {
    (void)state;
    char dir[300];
    tmp_path(dir, sizeof dir, "dead");
    make_registry(dir, 3);
    int hold[2], status;
    assert_int_equal(pipe(hold), 0);
    pid_t alive = lease_one_in_child(dir, hold), dead = -1;
    /* the live holder has its run before the second child leases */
    Registry *r;
    Status st = {0};
    RegistryCounts k;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(registry_counts(r, &k, &st), 0);
        if (k.running == 1) break;
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
    assert_int_equal(k.running, 1);
    dead = lease_one_in_child(dir, NULL);
    waitpid(dead, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(registry_counts(r, &k, &st), 0);
    assert_int_equal(k.running, 2);
    assert_int_equal(registry_release_dead(r, &st), 1);
    assert_int_equal(registry_counts(r, &k, &st), 0);
    assert_int_equal(k.running, 1);
    assert_int_equal(k.pending, 2);
    assert_int_equal(registry_release_dead(r, &st), 0); /* nothing left to release */
    close(hold[1]);
    close(hold[0]);
    waitpid(alive, &status, 0);
    assert_int_equal(registry_release_dead(r, &st), 1); /* now its holder is gone too */
    registry_close(r);
}

static void test_twins_train_once(void **state) {
    (void)state;
    char dir[300];
    tmp_path(dir, sizeof dir, "twins");
    const int twin_of[3] = {2, -1, -1}; /* run 1 is run 3's twin; the largest budget (run 3) leases first */
    make_registry_twins(dir, 3, twin_of);
    Registry *r;
    Status st = {0};
    assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
    LeasedRun a, b, c;
    assert_int_equal(registry_lease(r, &a, &st), 1);
    assert_int_equal(a.id, 3);
    assert_int_equal(registry_lease(r, &b, &st), 1); /* run 1 waits while its twin trains */
    assert_int_equal(b.id, 2);
    assert_int_equal(registry_lease(r, &c, &st), 0);
    RunFinal f = {0};
    f.val_bpb = 2.5, f.test_bpb = 2.6, f.val_loss = f.test_loss = 1.7, f.unigram_bpb = 4.4;
    MetricRow m = {0, 0, 0, 0, NAN, 1.7, 2.5, 1e-3, NAN, 0, 0, NAN, NAN};
    int sweep;
    assert_int_equal(registry_finish(r, 3, &f, &m, 1, &sweep, &st), 0);
    assert_int_equal(registry_lease(r, &c, &st), 0); /* the twin took run 3's result instead */
    RunRow x;
    assert_int_equal(registry_run(r, 1, &x, &st), 0);
    assert_int_equal(x.status, RUN_DONE);
    assert_int_equal(x.copied_from, 3);
    assert_true(x.test_bpb == 2.6 && x.unigram_bpb == 4.4);
    free(a.config), free(b.config);
    registry_close(r);
}

static void test_upgrade_in_place(void **state) {
    (void)state;
    char dir[300], path[400];
    tmp_path(dir, sizeof dir, "older");
    make_registry(dir, 4);
    snprintf(path, sizeof path, "%s/registry.db", dir);
    sqlite3 *db; /* make it a version 2 registry: no test_bpb_se column */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE run DROP COLUMN test_bpb_se; UPDATE meta SET value='2' WHERE"
                                      " key='schema_version'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    Registry *r;
    Status st = {0};
    RunRow *rows;
    int n;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0); /* even a reader upgrades it */
    assert_int_equal(registry_runs(r, 0, -1, -1, 0, &rows, &n, &st), 0);
    assert_int_equal(n, 4);
    assert_true(isnan(rows[0].test_bpb_se));
    registry_runs_free(rows, n);
    registry_close(r);
    char version[16];
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
    assert_int_equal(registry_meta(r, "schema_version", version, sizeof version, &st), 1);
    assert_int_equal(atoi(version), REGISTRY_SCHEMA_VERSION);
    registry_close(r);
}

static void expect_refused(const char *dir, StatusCode code, const char *fragment) {
    Registry *r = NULL;
    Status st = {0};
    for (int mode = REG_OPEN_READ; mode <= REG_OPEN_CREATE; mode++) {
        int rc = registry_open(&r, dir, (RegistryMode)mode, &st);
        printf("  mode %d: %s\n", mode, st.msg);
        assert_int_equal(rc, -1);
        assert_null(r);
        assert_int_equal(st.code, code);
        assert_non_null(strstr(st.msg, fragment));
        assert_null(strchr(st.msg, '\n'));
    }
}

static void test_foreign_and_damaged_files(void **state) {
    (void)state;
    char dir[300], path[400];
    /* not SQLite at all */
    tmp_path(dir, sizeof dir, "garbage");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/registry.db", dir);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7 + 3);
    Status st = {0};
    assert_int_equal(file_write_atomic(path, junk, sizeof junk, &st), 0);
    expect_refused(dir, AP_ECORRUPT, "not a study registry");
    /* a real registry cut short */
    tmp_path(dir, sizeof dir, "truncated");
    make_registry(dir, 30);
    snprintf(path, sizeof path, "%s/registry.db", dir);
    char *text;
    size_t len;
    assert_int_equal(file_read_all(path, &text, &len, 1 << 26, &st), 0);
    char wal[420];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal); /* the pages live in the main file only after a checkpoint; drop the log too */
    assert_int_equal(file_write_atomic(path, text, len > 1500 ? 1500 : len / 2, &st), 0);
    free(text);
    Registry *r = NULL;
    int rc = registry_open(&r, dir, REG_OPEN_WRITE, &st);
    if (rc == 0) { /* SQLite may open a cut file lazily: the first real read must fail cleanly */
        RunRow *rows;
        int n;
        rc = registry_runs(r, 0, -1, -1, 1, &rows, &n, &st);
        if (!rc) registry_runs_free(rows, n);
        registry_close(r);
    }
    printf("  truncated: %s\n", st.msg);
    assert_int_equal(rc, -1);
    assert_true(st.code == AP_ECORRUPT || st.code == AP_EINVAL);
    /* another program's SQLite database */
    tmp_path(dir, sizeof dir, "foreign");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/registry.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE photos (id INTEGER, name TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(dir, AP_EINVAL, "not an algoprog study registry");
    /* nothing there */
    tmp_path(dir, sizeof dir, "missing");
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), -1);
    assert_non_null(strstr(st.msg, "no study registry"));
}

/* ---------------------------------------------------------------- the scheduler, with real runs */

static const char *WORDS[] = {"the", "of", "and", "a", "to", "in", "is", "was", "he", "for", "it", "with", "as",
                              "his", "on", "be", "at", "by", "had", "not", "are", "but", "from", "or", "have", "an",
                              "they", "which", "one", "you", "were", "her", "all", "she", "there", "would", "their"};

static void write_text(const char *path) {
    Rng rng;
    rng_seed(&rng, 99);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int d = 0; d < 80; d++) {
        for (int w = 0; w < 120; w++) {
            int k = (int)(rng_next(&rng) % (sizeof WORDS / sizeof WORDS[0]));
            fprintf(f, "%s%s", WORDS[k], w % 11 == 10 ? ". " : " ");
        }
        fprintf(f, "\n\n");
    }
    fclose(f);
}

static void write_study(const char *path, const char *data) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[study]\nname = sched\ndata = %s\ntokenizer = bytes\nbudgets = 6e9, 8e9, 1e10\nseeds = 1\n"
               "allocation = chinchilla\ntokens_per_param = 0.25\nisoflop_points = 1\ncontext = 32\nbatch = 8\n"
               "eval_tokens = 1024\nfinal_eval_tokens = 2048\nmin_steps = 10\n[arm gpt2]\npreset = gpt2-2019\n",
            data);
    fclose(f);
}

/* The loss each run is judged by, in id order (NaN when not done). */
static int losses(const char *dir, double *out, int max) {
    Registry *r;
    Status st = {0};
    RunRow *rows;
    int n;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
    assert_int_equal(registry_runs(r, 0, -1, -1, 0, &rows, &n, &st), 0);
    /* the loss each run is judged by: main runs evaluate only the test half at the end, sweeps the validation half */
    for (int i = 0; i < n && i < max; i++)
        out[i] = rows[i].status != RUN_DONE ? NAN : rows[i].kind == RUN_MAIN ? rows[i].test_bpb : rows[i].val_bpb;
    registry_runs_free(rows, n);
    registry_close(r);
    return n;
}

static void test_resume_after_failed_run(void **state) {
    (void)state;
    char data[300], spec[300], ref[300], dir[300], ck[600], runs_dir[400];
    tmp_path(data, sizeof data, "words.txt");
    tmp_path(spec, sizeof spec, "sched.ini");
    write_text(data);
    write_study(spec, data);
    StudyOptions o = {.workers = 1, .threads = 1, .quiet = 1};
    Status st = {0};
    tmp_path(ref, sizeof ref, "sched_ref");
    assert_int_equal(study_run(spec, ref, &o, &st), 0);
    double want[8], have[8];
    assert_int_equal(losses(ref, want, 8), 3);
    /* run 2 finds a damaged checkpoint in its directory: that run fails, the others finish */
    tmp_path(dir, sizeof dir, "sched_fail");
    snprintf(runs_dir, sizeof runs_dir, "%s/runs/2-gpt2", dir);
    assert_int_equal(dir_create(runs_dir, &st), 0);
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", runs_dir);
    assert_int_equal(file_write_atomic(ck, "APCKgarbage", 11, &st), 0);
    assert_int_equal(study_run(spec, dir, &o, &st), 1);
    assert_int_equal(losses(dir, have, 8), 3);
    assert_true(isnan(have[1]));
    assert_true(have[0] == want[0] && have[2] == want[2]);
    Registry *r;
    RunRow x;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
    assert_int_equal(registry_run(r, 2, &x, &st), 0);
    registry_close(r);
    assert_int_equal(x.status, RUN_FAILED);
    /* the damage repaired, the same command retries only the failed run */
    unlink(ck);
    assert_int_equal(study_run(spec, dir, &o, &st), 0);
    assert_int_equal(losses(dir, have, 8), 3);
    for (int i = 0; i < 3; i++) assert_true(have[i] == want[i]);
    assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
    for (int id = 1; id <= 3; id++) {
        assert_int_equal(registry_run(r, id, &x, &st), 0);
        assert_int_equal(x.attempts, id == 2 ? 2 : 1);
    }
    registry_close(r);
}

static volatile sig_atomic_t g_stop;
static void on_alarm(int sig) { g_stop = sig; }

static void test_stop_and_continue(void **state) {
    (void)state;
    char spec[300], ref[300], dir[300];
    tmp_path(spec, sizeof spec, "sched.ini");
    tmp_path(ref, sizeof ref, "sched_ref");
    tmp_path(dir, sizeof dir, "sched_stop");
    double want[8], have[8];
    assert_int_equal(losses(ref, want, 8), 3);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_ONSTACK; /* like the CLI's handlers: see parallel.h (oneDNN and signals) */
    sigaction(SIGALRM, &sa, NULL);
    StudyOptions o = {.workers = 1, .threads = 1, .quiet = 1, .stop = &g_stop};
    Status st = {0};
    int stops = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        g_stop = 0;
        struct itimerval t = {{0, 0}, {0, 150000 + 100000 * attempt}};
        setitimer(ITIMER_REAL, &t, NULL);
        int rc = study_run(spec, dir, &o, &st);
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        if (rc == 0) break;
        assert_int_equal(rc, -1);
        assert_int_equal(st.code, AP_EINTERRUPTED);
        stops++;
        /* nothing is left running: the run in training was checkpointed and given back */
        Registry *r;
        RegistryCounts k;
        assert_int_equal(registry_open(&r, dir, REG_OPEN_READ, &st), 0);
        assert_int_equal(registry_counts(r, &k, &st), 0);
        registry_close(r);
        assert_int_equal(k.running, 0);
    }
    printf("  stopped %d times, then finished\n", stops);
    assert_true(stops >= 1);
    assert_int_equal(losses(dir, have, 8), 3);
    for (int i = 0; i < 3; i++) assert_true(have[i] == want[i]);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/algoprog_test_registry_XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    parallel_init(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leases_two_processes),
        cmocka_unit_test(test_twins_train_once),
        cmocka_unit_test(test_release_dead_holders),
        cmocka_unit_test(test_upgrade_in_place),
        cmocka_unit_test(test_foreign_and_damaged_files),
        cmocka_unit_test(test_resume_after_failed_run),
        cmocka_unit_test(test_stop_and_continue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (rc == 0 && system(cmd) != 0) return 1;
    return rc;
}
