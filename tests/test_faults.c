/* test_faults.c - faults injected below the file level, as SQLite's own tests do:
 *  - out of memory at every allocation of each loader of outside input (a counting allocator
 *    linked in front of malloc: -Wl,--wrap), once failing for good and once for one call only;
 *  - write() failing with ENOSPC or EIO, and fsync() with EIO, at every call of each writer of
 *    checkpoints, shards, tokenizers, metrics and run results;
 *  - the study registry under SQLITE_FULL, SQLITE_IOERR and SQLITE_BUSY from a test VFS.
 * Each must give a clear error (naming what failed), leave the last good state intact (the old
 * file byte for byte; the registry's last committed transaction), leak nothing and leave no
 * half file. The wrappers see only calls made by algoprog's own code (and this file). */
#define _GNU_SOURCE /* RTLD_NEXT-free wrappers need nothing more; for strdup and pthread */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fileio.h"
#include "core/ini.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "data/shard.h"
#include "data/tiktoken.h"
#include "data/tokenizer.h"
#include "fit/points.h"
#include "models/model.h"
#include "optim/optim.h"
#include "study/registry.h"
#include "study/spec.h"
#include "train/checkpoint.h"
#include "train/rundir.h"

#include "registry_fixture.h"

#define CORPUS ALGOPROG_SOURCE_DIR "/tests/fuzz/corpus/"

/* ================================================================ the counting allocator */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void __real_free(void *p);

/* While armed, every allocation is counted; the fail_at-th (1-based) is refused, and with
 * `persistent` every one after it too. Live blocks are kept in an open-addressed set so a test
 * can tell what the code under test did not free. */
static struct {
    pthread_mutex_t mu;
    int armed, persistent;
    long count, fail_at, refused;
    long refused_sqlite; /* refusals SQLite may absorb (its "benign" failures: a cache it can do without) */
    int in_sqlite;
    void **live; /* LIVE_CAP slots; NULL empty, TOMB deleted */
    long n_live;
} g_mem = {.mu = PTHREAD_MUTEX_INITIALIZER};
#define LIVE_CAP (1u << 21)
#define TOMB ((void *)1)

static size_t live_slot(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (LIVE_CAP - 1); }

static void live_add(void *p) {
    size_t i = live_slot(p);
    while (g_mem.live[i] && g_mem.live[i] != TOMB) i = (i + 1) & (LIVE_CAP - 1);
    g_mem.live[i] = p, g_mem.n_live++;
    if (g_mem.n_live > (long)LIVE_CAP / 2) abort(); /* the harness itself is too small */
}

static void live_remove(void *p) {
    for (size_t i = live_slot(p); g_mem.live[i]; i = (i + 1) & (LIVE_CAP - 1))
        if (g_mem.live[i] == p) {
            g_mem.live[i] = TOMB, g_mem.n_live--;
            return;
        }
}

/* 1: refuse this allocation. */
static int alloc_refused(void) {
    if (!g_mem.armed) return 0;
    long k = ++g_mem.count;
    int refuse = g_mem.fail_at > 0 && (k == g_mem.fail_at || (g_mem.persistent && k > g_mem.fail_at));
    if (g_mem.in_sqlite) g_mem.refused_sqlite += refuse;
    else g_mem.refused += refuse;
    return refuse;
}

static void *track(void *p) {
    if (p && g_mem.armed) live_add(p);
    return p;
}

void *__wrap_malloc(size_t n) {
    pthread_mutex_lock(&g_mem.mu);
    void *p = alloc_refused() ? NULL : track(__real_malloc(n));
    pthread_mutex_unlock(&g_mem.mu);
    return p;
}
void *__wrap_calloc(size_t n, size_t size) {
    pthread_mutex_lock(&g_mem.mu);
    void *p = alloc_refused() ? NULL : track(__real_calloc(n, size));
    pthread_mutex_unlock(&g_mem.mu);
    return p;
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    pthread_mutex_lock(&g_mem.mu);
    void *p = alloc_refused() ? NULL : track(__real_aligned_alloc(align, n));
    pthread_mutex_unlock(&g_mem.mu);
    return p;
}
void *__wrap_realloc(void *old, size_t n) {
    pthread_mutex_lock(&g_mem.mu);
    void *p = NULL;
    if (!alloc_refused()) {
        p = __real_realloc(old, n);
        if (p && old && g_mem.live) live_remove(old);
        track(p);
    }
    pthread_mutex_unlock(&g_mem.mu);
    return p;
}
void __wrap_free(void *p) {
    if (!p) return;
    pthread_mutex_lock(&g_mem.mu);
    if (g_mem.live) live_remove(p);
    __real_free(p);
    pthread_mutex_unlock(&g_mem.mu);
}
char *__wrap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

static void mem_arm(long fail_at, int persistent) {
    pthread_mutex_lock(&g_mem.mu);
    if (!g_mem.live) g_mem.live = __real_calloc(LIVE_CAP, sizeof *g_mem.live);
    if (!g_mem.live) abort();
    memset(g_mem.live, 0, LIVE_CAP * sizeof *g_mem.live);
    g_mem.n_live = 0, g_mem.count = 0, g_mem.refused = 0, g_mem.refused_sqlite = 0;
    g_mem.fail_at = fail_at, g_mem.persistent = persistent, g_mem.armed = 1;
    pthread_mutex_unlock(&g_mem.mu);
}

static void mem_disarm(void) {
    pthread_mutex_lock(&g_mem.mu);
    g_mem.armed = 0;
    pthread_mutex_unlock(&g_mem.mu);
}

/* SQLite allocates through the same counter (sqlite3_config before its first use), so the
 * registry's loader also meets SQLITE_NOMEM at every one of SQLite's allocations. A 16-byte
 * header keeps each block's size for xSize. */
static void *sqlite_block(void *old, size_t n) {
    pthread_mutex_lock(&g_mem.mu);
    g_mem.in_sqlite = 1;
    pthread_mutex_unlock(&g_mem.mu);
    void *p = old ? __wrap_realloc(old, n) : __wrap_malloc(n);
    pthread_mutex_lock(&g_mem.mu);
    g_mem.in_sqlite = 0;
    pthread_mutex_unlock(&g_mem.mu);
    return p;
}
static void *sq_malloc(int n) {
    size_t *p = sqlite_block(NULL, (size_t)n + 16);
    if (!p) return NULL;
    p[0] = (size_t)n;
    return (char *)p + 16;
}
static void sq_free(void *p) {
    if (p) __wrap_free((char *)p - 16);
}
static int sq_size(void *p) { return p ? (int)*(size_t *)((char *)p - 16) : 0; }
static void *sq_realloc(void *p, int n) {
    if (!p) return sq_malloc(n);
    size_t *q = sqlite_block((char *)p - 16, (size_t)n + 16);
    if (!q) return NULL;
    q[0] = (size_t)n;
    return (char *)q + 16;
}
static int sq_roundup(int n) { return (n + 15) & ~15; }
static int sq_init(void *arg) { return (void)arg, SQLITE_OK; }
static void sq_shutdown(void *arg) { (void)arg; }

static void sqlite_use_counting_allocator(void) {
    static const sqlite3_mem_methods m = {sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) abort();
    /* no lookaside or page-cache pools carved out once: every allocation is a real one */
    sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
}

/* ================================================================ loaders under OOM */

/* One loader of outside input: run() loads from in (prepared unarmed), and on success frees
 * everything it loaded; it returns the loader's code and leaves the reason in st. */
typedef struct {
    const char *name, *input;
    int (*run)(const char *text, size_t len, const char *path, Status *st);
} Loader;

static int load_ini(const char *text, size_t len, const char *path, Status *st) {
    (void)path;
    IniFile ini;
    int rc = ini_parse(&ini, text, len, "t.ini", st);
    if (!rc) ini_free(&ini);
    return rc;
}
static int load_recipe_text(const char *text, size_t len, const char *path, Status *st) {
    (void)path;
    Config c;
    config_defaults(&c);
    int rc = config_from_text(&c, text, len, "t.ini", st);
    return rc ? rc : config_resolve(&c, st);
}
static int load_recipe_json(const char *text, size_t len, const char *path, Status *st) {
    (void)len, (void)path;
    Config c;
    config_defaults(&c);
    return config_from_json(&c, text, st);
}
static int load_args(const char *text, size_t len, const char *path, Status *st) {
    (void)path;
    char *buf = __real_malloc(len + 1), *argv[64];
    memcpy(buf, text, len + 1);
    int argc = 0;
    for (char *tok = strtok(buf, "\n"); tok && argc < 64; tok = strtok(NULL, "\n")) argv[argc++] = tok;
    Config c;
    config_defaults(&c);
    int rc = config_apply_args(&c, argc, argv, st);
    if (!rc) rc = config_resolve(&c, st);
    __real_free(buf);
    return rc;
}
static int load_study(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    StudySpec *s = __real_malloc(sizeof *s);
    int rc = spec_load(s, path, st);
    if (!rc) spec_free(s);
    __real_free(s);
    return rc;
}
static int load_checkpoint(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    Model m;
    Config c;
    int rc = checkpoint_load_model(&m, &c, path, st);
    if (!rc) model_free(&m);
    return rc;
}
static int load_shard(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    Tokenizer t;
    int rc = tokenizer_bytes(&t, st);
    if (rc) return rc;
    Shard s;
    rc = shard_open(&s, path, &t, st);
    if (!rc) shard_close(&s);
    tokenizer_free(&t);
    return rc;
}
static int load_tokenizer(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    Tokenizer t;
    int rc = tokenizer_load(&t, path, st);
    if (!rc) tokenizer_free(&t);
    return rc;
}
static int load_tiktoken(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    Tokenizer t;
    int rc = tiktoken_import(&t, path, "t", st);
    if (!rc) tokenizer_free(&t);
    return rc;
}
static int load_csv(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    PointSet ps;
    int rc = points_read_csv(&ps, path, st);
    if (!rc) points_free(&ps);
    return rc;
}
static int load_json(const char *text, size_t len, const char *path, Status *st) {
    (void)path;
    JsonDoc doc;
    int rc = json_parse(&doc, text, len, "t.json", st);
    if (!rc) json_free(&doc);
    return rc;
}
/* A study registry as `study status` and `report` read it; path is its directory. */
static int load_registry(const char *text, size_t len, const char *path, Status *st) {
    (void)text, (void)len;
    Registry *r;
    int rc = registry_open(&r, path, REG_OPEN_READ, st);
    if (rc) return rc;
    StudyInfo info;
    RunRow *runs = NULL;
    int n = 0;
    rc = registry_study_info(r, &info, st);
    if (!rc) {
        study_info_free(&info);
        rc = registry_runs(r, -1, -1, -1, 1, &runs, &n, st);
    }
    if (!rc) registry_runs_free(runs, n);
    registry_close(r);
    return rc;
}

static char g_tmp[256];

static const Loader LOADERS[] = {
    {"ini", CORPUS "ini/seed-full.ini", load_ini},
    {"recipe (ini)", CORPUS "ini/seed-llama-2023.ini", load_recipe_text},
    {"recipe (json)", CORPUS "json/seed-config.json", load_recipe_json},
    {"command-line overrides", CORPUS "args/seed-muon", load_args},
    {"study file", CORPUS "study/seed-full.ini", load_study},
    {"checkpoint", CORPUS "checkpoint/seed-llama.bin", load_checkpoint},
    {"shard", CORPUS "shard/seed-bytes.bin", load_shard},
    {"tokenizer", CORPUS "tokenizer/seed-bpe300.tok", load_tokenizer},
    {"tiktoken import", CORPUS "tiktoken/seed-small.json", load_tiktoken},
    {"points csv", CORPUS "csv/seed-study.csv", load_csv},
    {"json", CORPUS "json/seed-manifest.json", load_json},
    {"registry", NULL, load_registry},
};

/* Runs a loader with allocation fail_at refused; returns its code. Fails the test on a leak,
 * or on a refused allocation that went unreported. */
static int run_refusing(const Loader *l, const char *text, size_t len, const char *path, long fail_at,
                        int persistent, long *count) {
    Status st = {0};
    mem_arm(fail_at, persistent);
    int rc = l->run(text, len, path, &st);
    mem_disarm();
    *count = g_mem.count;
    if (g_mem.n_live) {
        fprintf(stderr, "%s: %ld block(s) leaked with allocation %ld refused (rc %d: %s)\n", l->name, g_mem.n_live,
                fail_at, rc, st.msg);
        fail();
    }
    if (g_mem.refused && rc == 0) {
        fprintf(stderr, "%s: allocation %ld was refused, yet the loader reports success\n", l->name, fail_at);
        fail();
    }
    if (rc && !st.msg[0]) {
        fprintf(stderr, "%s: failed with allocation %ld refused but gave no reason\n", l->name, fail_at);
        fail();
    }
    if (rc && (g_mem.refused || g_mem.refused_sqlite) && !strstr(st.msg, "memory") && !strstr(st.msg, "cannot allocate")) {
        fprintf(stderr, "%s: allocation %ld refused, but the error does not say so: %s\n", l->name, fail_at, st.msg);
        fail();
    }
    return rc;
}

static void test_oom_every_allocation(void **state) {
    (void)state;
    char regdir[300];
    snprintf(regdir, sizeof regdir, "%s/registry", g_tmp);
    Status st = {0};
    assert_int_equal(fixture_registry(regdir, 6, NULL, &st), 0);
    long total = 0;
    for (size_t i = 0; i < sizeof LOADERS / sizeof *LOADERS; i++) {
        const Loader *l = &LOADERS[i];
        char *text = NULL;
        size_t len = 0;
        const char *path = l->input ? l->input : regdir;
        if (l->input && file_read_all(l->input, &text, &len, 1 << 26, &st)) fail_msg("%s", st.msg);
        long k = 0;
        if (run_refusing(l, text, len, path, 0, 0, &k)) fail_msg("%s: fails on its own input", l->name);
        for (int persistent = 0; persistent <= 1; persistent++)
            for (long n = 1; n <= k; n++) {
                long seen;
                int rc = run_refusing(l, text, len, path, n, persistent, &seen);
                /* nothing refused (a shorter path): then it must have succeeded */
                if (!g_mem.refused && !g_mem.refused_sqlite) assert_int_equal(rc, 0);
            }
        printf("  %-24s %6ld allocations, each refused in turn (once and for good)\n", l->name, k);
        total += k;
        free(text);
    }
    printf("  %ld allocations refused in all\n", 2 * total);
}

/* ================================================================ writes under ENOSPC and EIO */

ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_fsync(int fd);

typedef enum { IO_FULL, IO_EIO, IO_FSYNC } IoFault;
static const char *const IO_FAULT_NAMES[] = {"disk full (a short write, then ENOSPC)", "EIO on write",
                                             "EIO on fsync"};

/* While armed: with IO_FULL the fail_at-th write() writes half its bytes and every later one fails
 * with ENOSPC (a disk filling up); with IO_EIO that one write fails with EIO; with IO_FSYNC the
 * fail_at-th fsync() fails with EIO (the kernel lost the data it had accepted). */
static struct {
    int armed, fault;
    long writes, fsyncs, fail_at, injected;
} g_io;

ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    if (!g_io.armed || g_io.fault == IO_FSYNC) return __real_write(fd, buf, n);
    long k = ++g_io.writes;
    if (g_io.fault == IO_FULL && k >= g_io.fail_at) {
        g_io.injected++;
        if (k == g_io.fail_at && n > 1) return __real_write(fd, buf, n / 2);
        errno = ENOSPC;
        return -1;
    }
    if (g_io.fault == IO_EIO && k == g_io.fail_at) {
        g_io.injected++;
        errno = EIO;
        return -1;
    }
    return __real_write(fd, buf, n);
}

int __wrap_fsync(int fd) {
    if (g_io.armed && g_io.fault == IO_FSYNC && ++g_io.fsyncs == g_io.fail_at) {
        g_io.injected++;
        errno = EIO;
        return -1;
    }
    return __real_fsync(fd);
}

/* One writer of a run-directory file: version 0 then version 1 of its contents into dir/file. */
typedef struct {
    const char *name, *file;
    int (*write)(const char *dir, int version, Status *st);
} Writer;

static char *slurp(const char *path, size_t *len) {
    Status st = {0};
    char *s = NULL;
    if (file_read_all(path, &s, len, 1 << 28, &st)) fail_msg("%s", st.msg);
    return s;
}

/* A checkpoint of the seed model, its parameters shifted by version. */
static int write_checkpoint(const char *dir, int version, Status *st) {
    Model m;
    Config c;
    Optimizer o;
    if (checkpoint_load_model(&m, &c, CORPUS "checkpoint/seed-llama.bin", st)) return -1;
    int rc = optim_create(&o, &c, m.ps, st);
    if (!rc) {
        m.ps->data[0] += (float)version;
        TrainState ts = {.step = 10 + version, .lr_scale = 1};
        char path[400];
        snprintf(path, sizeof path, "%s/%s", dir, RUNDIR_CHECKPOINT);
        rc = checkpoint_save(path, &c, m.ps, &o, &ts, NULL, st);
        optim_free(&o);
    }
    model_free(&m);
    return rc;
}
static int write_shard(const char *dir, int version, Status *st) {
    Tokenizer t;
    if (tokenizer_bytes(&t, st)) return -1;
    uint32_t ids[3000];
    for (int i = 0; i < 3000; i++) ids[i] = (uint32_t)((i * 7 + version) % 256);
    char path[400];
    snprintf(path, sizeof path, "%s/shard.bin", dir);
    int rc = shard_write(path, &t, ids, 3000, 3000, 1, 42, st);
    tokenizer_free(&t);
    return rc;
}
static int write_tokenizer(const char *dir, int version, Status *st) {
    Tokenizer t;
    if (tokenizer_load(&t, version ? CORPUS "tokenizer/seed-bpe300.tok" : "bytes", st)) return -1;
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, RUNDIR_TOKENIZER);
    int rc = tokenizer_save(&t, path, st);
    tokenizer_free(&t);
    return rc;
}
static int write_metric(const char *dir, int version, Status *st) {
    MetricRow m = {.step = 100 * version, .tokens = 1e4, .flops = 1e9, .train_loss = 3.5 - version, .val_loss = 3.6};
    return rundir_append_metric(dir, &m, st);
}
static int write_final(const char *dir, int version, Status *st) {
    RunFinal f = {.step = 100 + version, .val_loss = 3.0, .test_loss = 3.1, .test_bpb = 1.2, .params = 5008};
    return rundir_write_final(dir, &f, st);
}

static const Writer WRITERS[] = {
    {"checkpoint", RUNDIR_CHECKPOINT, write_checkpoint}, {"shard", "shard.bin", write_shard},
    {"tokenizer", RUNDIR_TOKENIZER, write_tokenizer},    {"metrics line", RUNDIR_METRICS, write_metric},
    {"final.json", RUNDIR_FINAL, write_final},
};

/* No "*.tmp" left behind in dir. */
static void assert_no_temp_files(const char *dir, const char *what) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) fail_msg("%s: left %s/%s behind", what, dir, e->d_name);
    }
    closedir(d);
}

static void test_write_faults(void **state) {
    (void)state;
    long total = 0;
    for (size_t i = 0; i < sizeof WRITERS / sizeof *WRITERS; i++) {
        const Writer *w = &WRITERS[i];
        char dir[300], count_dir[300], path[400];
        snprintf(dir, sizeof dir, "%s/io-%zu", g_tmp, i);
        snprintf(count_dir, sizeof count_dir, "%s/io-count-%zu", g_tmp, i);
        snprintf(path, sizeof path, "%s/%s", dir, w->file);
        Status st = {0};
        assert_int_equal(dir_create(dir, &st), 0);
        assert_int_equal(dir_create(count_dir, &st), 0);
        if (w->write(dir, 0, &st) || w->write(count_dir, 0, &st)) fail_msg("%s: %s", w->name, st.msg);
        size_t good_len;
        char *good = slurp(path, &good_len);
        /* how many write() and fsync() calls a clean second version takes */
        memset(&g_io, 0, sizeof g_io);
        g_io.armed = 1, g_io.fault = IO_EIO;
        if (w->write(count_dir, 1, &st)) fail_msg("%s: %s", w->name, st.msg);
        long n_writes = g_io.writes;
        g_io.armed = 0, g_io.fault = IO_FSYNC, g_io.fsyncs = 0;
        g_io.armed = 1;
        assert_int_equal(w->write(count_dir, 1, &st), 0);
        long n_fsyncs = g_io.fsyncs;
        g_io.armed = 0;
        long injected = 0;
        for (int fault = IO_FULL; fault <= IO_FSYNC; fault++) {
            /* the file's own fsync comes first; the directory's after the rename is advisory */
            long calls = fault == IO_FSYNC ? (n_fsyncs > 0) : n_writes;
            for (long n = 1; n <= calls; n++) {
                memset(&g_io, 0, sizeof g_io);
                g_io.armed = 1, g_io.fault = fault, g_io.fail_at = n;
                st.msg[0] = '\0';
                int rc = w->write(dir, 1, &st);
                g_io.armed = 0;
                const char *want = fault == IO_FULL ? strerror(ENOSPC) : strerror(EIO);
                if (rc == 0 || !strstr(st.msg, want) || !strstr(st.msg, dir))
                    fail_msg("%s, %s at call %ld: rc %d, message '%s'", w->name, IO_FAULT_NAMES[fault], n, rc, st.msg);
                size_t len;
                char *now = slurp(path, &len);
                if (len != good_len || memcmp(now, good, len))
                    fail_msg("%s, %s at call %ld: the last good file changed", w->name, IO_FAULT_NAMES[fault], n);
                free(now);
                assert_no_temp_files(dir, w->name);
                injected++;
            }
        }
        printf("  %-14s %3ld write() calls and %ld fsync(): %ld faults, each a clear error, old file intact\n",
               w->name, n_writes, n_fsyncs, injected);
        total += injected;
        free(good);
    }
    printf("  %ld I/O faults injected in all\n", total);
}

/* ================================================================ the registry under SQLite faults */

/* A VFS in front of the default one ("unix") that fails the fail_at-th call of one kind: xWrite
 * with SQLITE_FULL (and every write after it: a full disk) or SQLITE_IOERR_WRITE, xRead with
 * SQLITE_IOERR_READ, xSync with SQLITE_IOERR_FSYNC; or answers SQLITE_BUSY to the first `busy`
 * exclusive lock requests (another process holding the database). */
typedef enum { SQ_FULL, SQ_IOERR_WRITE, SQ_IOERR_READ, SQ_IOERR_FSYNC, SQ_N_FAULTS } SqFault;
static const char *const SQ_FAULT_NAMES[] = {"SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_READ",
                                             "SQLITE_IOERR_FSYNC"};
static struct {
    sqlite3_vfs vfs, *real;
    int armed, fault;
    long calls[SQ_N_FAULTS], fail_at, injected;
    long busy; /* exclusive lock requests still to refuse (-1: all) */
} g_sq;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real; /* the real VFS's file, right after this struct */
} FaultFile;
#define REAL(f) (((FaultFile *)(f))->real)

/* 1: inject the armed fault now, counting a call of kind k (a read or a sync). */
static int sq_inject(int k) {
    if (!g_sq.armed) return 0;
    int hit = ++g_sq.calls[k] == g_sq.fail_at && g_sq.fault == k;
    g_sq.injected += hit;
    return hit;
}
static int sq_busy(void) {
    if (!g_sq.busy) return 0;
    if (g_sq.busy > 0) g_sq.busy--;
    return 1;
}

static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off) {
    return sq_inject(SQ_IOERR_READ) ? SQLITE_IOERR_READ : REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
/* A write is a call of both write kinds: the n-th write is the same call for either fault. */
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off) {
    if (g_sq.armed) {
        long k = g_sq.calls[SQ_IOERR_WRITE] = ++g_sq.calls[SQ_FULL];
        if (g_sq.fault == SQ_FULL && k >= g_sq.fail_at) return g_sq.injected++, SQLITE_FULL;
        if (g_sq.fault == SQ_IOERR_WRITE && k == g_sq.fail_at) return g_sq.injected++, SQLITE_IOERR_WRITE;
    }
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size) { return REAL(f)->pMethods->xTruncate(REAL(f), size); }
static int ff_sync(sqlite3_file *f, int flags) {
    return sq_inject(SQ_IOERR_FSYNC) ? SQLITE_IOERR_FSYNC : REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *size) { return REAL(f)->pMethods->xFileSize(REAL(f), size); }
static int ff_lock(sqlite3_file *f, int lock) {
    if (lock >= SQLITE_LOCK_RESERVED && sq_busy()) return SQLITE_BUSY;
    return REAL(f)->pMethods->xLock(REAL(f), lock);
}
static int ff_unlock(sqlite3_file *f, int lock) { return REAL(f)->pMethods->xUnlock(REAL(f), lock); }
static int ff_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int ff_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **p) {
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, p);
}
/* In WAL mode a writer's lock is an exclusive lock on the shared-memory index. */
static int ff_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    if ((flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) && sq_busy()) return SQLITE_BUSY;
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p) {
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, p);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), off, p); }

static const sqlite3_io_methods FAULT_IO = {3,           ff_close,  ff_read,     ff_write,      ff_truncate,
                                            ff_sync,     ff_size,   ff_lock,     ff_unlock,     ff_reserved,
                                            ff_control,  ff_sector, ff_device,   ff_shm_map,    ff_shm_lock,
                                            ff_shm_barrier, ff_shm_unmap, ff_fetch, ff_unfetch};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    (void)vfs;
    FaultFile *ff = (FaultFile *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = g_sq.real->xOpen(g_sq.real, name, ff->real, flags, out_flags);
    f->pMethods = ff->real->pMethods ? &FAULT_IO : NULL;
    return rc;
}
static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync) {
    (void)vfs;
    return g_sq.real->xDelete(g_sq.real, name, sync);
}
static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return g_sq.real->xAccess(g_sq.real, name, flags, out);
}
static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
    (void)vfs;
    return g_sq.real->xFullPathname(g_sq.real, name, n, out);
}

/* Makes the faulty VFS the default, so registry_open uses it. */
static void sqlite_install_fault_vfs(void) {
    g_sq.real = sqlite3_vfs_find(NULL);
    if (!g_sq.real) abort();
    g_sq.vfs = *g_sq.real;
    g_sq.vfs.zName = "faulty";
    g_sq.vfs.szOsFile = (int)sizeof(FaultFile) + g_sq.real->szOsFile;
    g_sq.vfs.xOpen = fv_open, g_sq.vfs.xDelete = fv_delete, g_sq.vfs.xAccess = fv_access;
    g_sq.vfs.xFullPathname = fv_full_pathname;
    if (sqlite3_vfs_register(&g_sq.vfs, 1) != SQLITE_OK) abort();
}

/* Every row of every table of DIR/registry.db as text, read through the real VFS. */
static char *registry_dump(const char *dir) {
    char path[400];
    snprintf(path, sizeof path, "%s/" REGISTRY_FILE, dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, g_sq.real->zName) != SQLITE_OK) fail_msg("%s", path);
    StrBuf b = {0};
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    if (strcmp((const char *)sqlite3_column_text(q, 0), "ok")) fail_msg("%s: %s", path, sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    static const char *const TABLES[] = {"meta", "study", "arm", "run", "metric"};
    for (size_t t = 0; t < sizeof TABLES / sizeof *TABLES; t++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY rowid", TABLES[t]);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        while (sqlite3_step(q) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(q); c++) {
                const unsigned char *v = sqlite3_column_text(q, c);
                sb_printf(&b, "%s|", v ? (const char *)v : "NULL");
            }
            sb_putc(&b, '\n');
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    assert_false(b.failed);
    return b.s;
}

/* One registry verb, from a registry with runs 1 and 2 leased (this process) and the rest pending. */
typedef struct {
    const char *name;
    int (*run)(Registry *r, Status *st);
} RegistryVerb;

static int verb_lease(Registry *r, Status *st) {
    LeasedRun c;
    int got = registry_lease(r, &c, st);
    if (got == 1) free(c.config);
    return got == 1 ? 0 : got == 0 ? status_fail(st, AP_EINVAL, "nothing to lease") : -1;
}
static int verb_finish(Registry *r, Status *st) {
    RunFinal f = {.step = 10, .val_loss = 3.0, .test_loss = 3.1, .test_bpb = 1.2, .params = 100};
    MetricRow m[3] = {{.step = 0, .val_loss = 5}, {.step = 5, .val_loss = 4}, {.step = 10, .val_loss = 3}};
    int sweep;
    return registry_finish(r, 1, &f, m, 3, &sweep, st);
}
static int verb_progress(Registry *r, Status *st) { return registry_progress(r, 2, 5e8, 3.5, st); }
static int verb_fail(Registry *r, Status *st) { return registry_fail(r, 2, "diverged", st); }
static int verb_release(Registry *r, Status *st) { return registry_release(r, 1, st); }
static int verb_recover(Registry *r, Status *st) { return registry_recover(r, st) < 0 ? -1 : 0; }

static const RegistryVerb VERBS[] = {
    {"lease", verb_lease}, {"finish", verb_finish}, {"progress", verb_progress},
    {"fail", verb_fail},   {"release", verb_release}, {"recover", verb_recover},
};

/* A fresh copy of the prepared registry in dir (the template is closed: one file, no WAL). */
static void registry_copy(const char *from, const char *dir) {
    char src[400], dst[400], side[420];
    snprintf(src, sizeof src, "%s/" REGISTRY_FILE, from);
    snprintf(dst, sizeof dst, "%s/" REGISTRY_FILE, dir);
    Status st = {0};
    assert_int_equal(dir_create(dir, &st), 0);
    snprintf(side, sizeof side, "%s-wal", dst), unlink(side);
    snprintf(side, sizeof side, "%s-shm", dst), unlink(side);
    size_t len;
    char *db = slurp(src, &len);
    assert_int_equal(file_write_atomic(dst, db, len, &st), 0);
    free(db);
}

static void test_registry_faults(void **state) {
    (void)state;
    char tmpl[300], dir[300];
    snprintf(tmpl, sizeof tmpl, "%s/reg-template", g_tmp);
    snprintf(dir, sizeof dir, "%s/reg", g_tmp);
    Status st = {0};
    assert_int_equal(fixture_registry(tmpl, 6, NULL, &st), 0);
    Registry *r;
    assert_int_equal(registry_open(&r, tmpl, REG_OPEN_WRITE, &st), 0);
    assert_int_equal(verb_lease(r, &st), 0);
    assert_int_equal(verb_lease(r, &st), 0);
    registry_close(r);
    long total = 0;
    for (size_t v = 0; v < sizeof VERBS / sizeof *VERBS; v++) {
        const RegistryVerb *verb = &VERBS[v];
        /* how many calls of each kind the verb makes when nothing fails */
        registry_copy(tmpl, dir);
        assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
        memset(g_sq.calls, 0, sizeof g_sq.calls);
        g_sq.armed = 1, g_sq.fault = -1;
        if (verb->run(r, &st)) fail_msg("%s: %s", verb->name, st.msg);
        g_sq.armed = 0;
        registry_close(r);
        long calls[SQ_N_FAULTS];
        memcpy(calls, g_sq.calls, sizeof calls);
        long injected = 0, applied = 0;
        for (int fault = 0; fault < SQ_N_FAULTS; fault++)
            for (long n = 1; n <= calls[fault]; n++) {
                registry_copy(tmpl, dir);
                char *before = registry_dump(dir);
                assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
                memset(g_sq.calls, 0, sizeof g_sq.calls);
                g_sq.armed = 1, g_sq.fault = fault, g_sq.fail_at = n, g_sq.injected = 0;
                st.msg[0] = '\0';
                int rc = verb->run(r, &st);
                g_sq.armed = 0;
                registry_close(r);
                char *after = registry_dump(dir); /* integrity_check is "ok" */
                if (rc) {
                    /* the transaction did not happen, and the error says what went wrong */
                    const char *want = fault == SQ_FULL ? "no space left" : "disk I/O error";
                    if (strcmp(before, after) || !strstr(st.msg, want) || !strstr(st.msg, dir))
                        fail_msg("%s under %s at call %ld: '%s' (%s)", verb->name, SQ_FAULT_NAMES[fault], n, st.msg,
                                 strcmp(before, after) ? "the registry changed" : "unclear message");
                } else {
                    /* a fault SQLite absorbed (in a cache, or after the commit): the verb took effect */
                    if (!strcmp(before, after)) fail_msg("%s under %s at call %ld: success, nothing recorded", verb->name,
                                                         SQ_FAULT_NAMES[fault], n);
                    applied++;
                }
                injected += g_sq.injected > 0;
                free(before), free(after);
            }
        printf("  %-9s %2ld writes, %2ld reads, %ld syncs: %3ld faults injected; %ld absorbed by SQLite, the rest "
               "a clear error with the registry unchanged\n",
               verb->name, calls[SQ_FULL], calls[SQ_IOERR_READ], calls[SQ_IOERR_FSYNC], injected, applied);
        total += injected;
    }
    printf("  %ld SQLite faults injected in all\n", total);
}

/* Another process holding the write lock: a brief hold is waited out, a long one is an error
 * that says so, and the registry is unchanged. */
static void test_registry_busy(void **state) {
    (void)state;
    char tmpl[300], dir[300];
    snprintf(tmpl, sizeof tmpl, "%s/busy-template", g_tmp);
    snprintf(dir, sizeof dir, "%s/busy", g_tmp);
    Status st = {0};
    assert_int_equal(fixture_registry(tmpl, 3, NULL, &st), 0);
    registry_copy(tmpl, dir);
    Registry *r;
    assert_int_equal(registry_open(&r, dir, REG_OPEN_WRITE, &st), 0);
    g_sq.busy = 5; /* the first five lock requests find the lock taken */
    assert_int_equal(verb_lease(r, &st), 0);
    assert_int_equal(g_sq.busy, 0);
    char *before = registry_dump(dir);
    registry_set_busy_timeout(r, 300);
    g_sq.busy = -1; /* held for good */
    assert_int_equal(verb_lease(r, &st), -1);
    g_sq.busy = 0;
    assert_non_null(strstr(st.msg, "another process held the database for over 0.3 s"));
    printf("  held for good: %s\n", st.msg);
    registry_close(r);
    char *after = registry_dump(dir);
    assert_string_equal(before, after);
    free(before), free(after);
}

/* ================================================================ tests */

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/algoprog-faults-XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    sqlite_use_counting_allocator();
    sqlite_install_fault_vfs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_every_allocation),
        cmocka_unit_test(test_write_faults),
        cmocka_unit_test(test_registry_faults),
        cmocka_unit_test(test_registry_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
