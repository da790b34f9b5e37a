/* cmd_bench.c - `algoprog bench`: how fast the trainer is, as ratios measured in one run.
 *
 * Absolute times differ between machines and between minutes on a shared one, so every number
 * is put next to a reference measured moments before on the same cores: the FMA peak (widest
 * vectors the CPU has), both GEMM libraries (gemm.h), and a PyTorch CPU peer (bench/torch_peer.py) training the same model with the same
 * thread budget. Each measurement runs in its own child process: thread settings start fresh and
 * the child's peak RSS is that configuration's memory. */
#define _DEFAULT_SOURCE /* wait4: the peak RSS of one child */
#include "bench/bench.h"
#include "cli/cli.h"
#include "core/fileio.h"
#include "core/parallel.h"
#include "config/config.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "kernels/gemm.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREAD_COUNTS 4
#define MAX_GEMMS 40
#define MAX_LIBS 3
#define MAX_PRECS 2
#define MAX_KERNELS 12

typedef struct {
    const char *name;
    int vocab, d, layers, heads, context, batch, d_ff;
} BenchShape;

/* The configurations of ../shared/perf_anchors.md (and bench/torch_peer.py). */
static const BenchShape SHAPES[] = {
    {"tiny", 256, 128, 4, 4, 256, 16, 384},
    {"small", 4096, 256, 6, 8, 256, 16, 704},
    {"medium", 8192, 512, 8, 8, 512, 8, 1408},
    {"lstm", 256, 256, 2, 0, 256, 16, 0},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

typedef struct {
    const char *label;
    int M, N, K, ta, tb;
    int inner; /* called inside a parallel region, one product per thread (attention's per-head GEMMs) */
} GemmShape;

/* The first is the square reference. Then the linear layers of the small config (B*T = 4096,
 * d = 256, 4d, V) and of the medium one's MLP (d = 512); the study sizes of recipes/demo.ini and
 * full.ini (B*T = 1024-4096, d = 48-512, the byte vocabulary); attention's per-head products in
 * blocks of 64 queries over 256 keys (head dim 16 and 32); the LSTM's per-step gate products
 * (batch rows only: 16 at hidden 256 as in the lstm config, 4 at hidden 48 as in the demo study). */
static const GemmShape GEMMS[] = {
    {"square (NN)", 2048, 2048, 2048, 0, 0, 0},
    {"small x W^T (NT)", 4096, 768, 256, 0, 1, 0},
    {"small dx (NN)", 4096, 256, 1024, 0, 0, 0},
    {"small dW (TN)", 1024, 256, 4096, 1, 0, 0},
    {"small head (NT)", 4096, 4096, 256, 0, 1, 0},
    {"medium x W^T (NT)", 4096, 2048, 512, 0, 1, 0},
    {"medium dx (NN)", 4096, 512, 2048, 0, 0, 0},
    {"medium dW (TN)", 2048, 512, 4096, 1, 0, 0},
    {"d48 qkv (NT)", 1024, 144, 48, 0, 1, 0},
    {"d48 fc (NT)", 1024, 192, 48, 0, 1, 0},
    {"d48 dx (NN)", 1024, 48, 192, 0, 0, 0},
    {"d48 dW (TN)", 192, 48, 1024, 1, 0, 0},
    {"d48 head V257 (NT)", 1024, 257, 48, 0, 1, 0},
    {"d64 fc (NT)", 2048, 256, 64, 0, 1, 0},
    {"d64 dx (NN)", 2048, 64, 256, 0, 0, 0},
    {"d64 dW (TN)", 256, 64, 2048, 1, 0, 0},
    {"d128 fc (NT)", 2048, 512, 128, 0, 1, 0},
    {"d128 dx (NN)", 2048, 128, 512, 0, 0, 0},
    {"d128 dW (TN)", 512, 128, 2048, 1, 0, 0},
    {"d512 proj (NT)", 4096, 512, 512, 0, 1, 0},
    {"attn QK^T hd16 (NT)", 64, 256, 16, 0, 1, 1},
    {"attn PV hd16 (NN)", 64, 16, 256, 0, 0, 1},
    {"attn dS^T Q hd16 (TN)", 256, 16, 64, 1, 0, 1},
    {"attn QK^T hd32 (NT)", 64, 256, 32, 0, 1, 1},
    {"attn PV hd32 (NN)", 64, 32, 256, 0, 0, 1},
    {"attn dS^T Q hd32 (TN)", 256, 32, 64, 1, 0, 1},
    {"lstm B16 H256 z (NT)", 16, 1024, 256, 0, 1, 0},
    {"lstm B16 H256 dr (NN)", 16, 256, 1024, 0, 0, 0},
    {"lstm B4 H48 z (NT)", 4, 192, 48, 0, 1, 0},
    {"lstm B4 H48 dr (NN)", 4, 48, 192, 0, 0, 0},
};
static const GemmShape GEMMS_QUICK[] = {
    {"square (NN)", 512, 512, 512, 0, 0, 0},
    {"x W^T (NT)", 4096, 384, 128, 0, 1, 0},
    {"attn QK^T hd32 (NT)", 64, 256, 32, 0, 1, 1},
};

typedef struct {
    int quick, peer, gen, steps, warmup, json_only;
    int threads[MAX_THREAD_COUNTS], n_threads;
    int shape_on[N_SHAPES];
    int arch_on[2]; /* gpt2, llama */
    GemmLib train_libs[MAX_LIBS];
    int n_train_libs;
    GemmPrecision train_precs[MAX_PRECS];
    int n_train_precs;
    const char *python, *script, *json_path;
} BenchOpts;

static const char *ARCH_NAMES[2] = {"gpt2", "llama"};
static const char *ARCH_PRESETS[2] = {"gpt2-2019", "llama-2023"};

/* ------------------------------------------------------------ child processes */
enum { TASK_PEAK, TASK_GEMM, TASK_KERNELS, TASK_TRAIN };

typedef struct {
    int task, threads;
    const GemmShape *gemms;
    int n_gemms;
    GemmLib lib;
    const Config *cfg;
    int steps, warmup, gen;
    GemmPrecision prec; /* TASK_GEMM: GEMM_BF16 measures the bf16 products (lib is then unused) */
} ChildTask;

typedef struct {
    int rc;
    char msg[1024];
    BenchRate rates[MAX_GEMMS];
    BenchKernel kernels[MAX_KERNELS];
    int n_kernels;
    BenchTrain train;
} ChildOut;

static void child_work(const ChildTask *t, ChildOut *o) {
    Status st = {0};
    parallel_init(t->threads);
    switch (t->task) {
    case TASK_PEAK: o->rates[0] = bench_fma_peak(); break;
    case TASK_GEMM:
        for (int i = 0; i < t->n_gemms; i++) {
            const GemmShape *g = &t->gemms[i];
            o->rates[i] = bench_sgemm(t->lib, t->prec, g->M, g->N, g->K, g->ta, g->tb, g->inner);
        }
        break;
    case TASK_KERNELS: {
        const BenchShape *s = &SHAPES[0]; /* tiny: the shape where kernels other than GEMMs matter most */
        o->n_kernels = bench_kernels(o->kernels, MAX_KERNELS, s->batch, s->context, s->d, s->heads, s->d_ff, 4096);
        break;
    }
    case TASK_TRAIN: o->rc = bench_train(t->cfg, t->steps, t->warmup, t->gen, &o->train, &st); break;
    default: abort();
    }
    if (o->rc) snprintf(o->msg, sizeof o->msg, "%s", st.msg);
}

/* Runs the task in a fresh child process; *rss_mib is the child's peak resident set. */
static int run_child(const ChildTask *t, ChildOut *o, double *rss_mib, Status *st) {
    int fd[2];
    if (pipe(fd)) return status_fail(st, AP_EIO, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return status_fail(st, AP_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        ChildOut *mine = calloc(1, sizeof *mine);
        if (!mine) _exit(3);
        child_work(t, mine);
        const char *p = (const char *)mine;
        size_t left = sizeof *mine;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) _exit(4);
            p += w, left -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    memset(o, 0, sizeof *o);
    char *p = (char *)o;
    size_t got = 0;
    while (got < sizeof *o) {
        ssize_t r = read(fd[0], p + got, sizeof *o - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        return status_fail(st, AP_EIO, "benchmark process killed by signal %d", WTERMSIG(status));
    if (got != sizeof *o || !WIFEXITED(status) || WEXITSTATUS(status))
        return status_fail(st, AP_EIO, "benchmark process failed (exit %d)", WEXITSTATUS(status));
    if (o->rc) return status_fail(st, AP_EINVAL, "%s", o->msg);
    *rss_mib = (double)ru.ru_maxrss / 1024.0;
    return 0;
}

/* ------------------------------------------------------------ the PyTorch peer */
typedef struct {
    int ok;
    double tokens_per_s, rss_mib;
} PeerOut;

/* tokens_per_s and rss_mb of the peer's one JSON line (the last line of its output). */
static void peer_numbers(const char *out, size_t len, double *tps, double *rss) {
    *tps = *rss = NAN;
    while (len && (out[len - 1] == '\n' || out[len - 1] == '\r')) len--;
    size_t start = len;
    while (start && out[start - 1] != '\n') start--;
    JsonDoc doc;
    Status ignore;
    if (json_parse(&doc, out + start, len - start, "the PyTorch peer's output", &ignore)) return;
    *tps = json_get_number(doc.root, "tokens_per_s", NAN);
    *rss = json_get_number(doc.root, "rss_mb", NAN);
    json_free(&doc);
}

/* Runs bench/torch_peer.py with the thread setup of perf_anchors.md: OMP and OpenBLAS pools
 * both at N, passive waiting when N > 1 (their two pools otherwise spin against each other). */
static PeerOut run_peer(const BenchOpts *o, const char *config, const char *arch, int threads, int gen) {
    PeerOut out = {0, 0, 0};
    int fd[2];
    if (pipe(fd)) return out;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return out;
    if (pid == 0) {
        char nt[16], steps[16], warmup[16];
        snprintf(nt, sizeof nt, "%d", threads);
        snprintf(steps, sizeof steps, "%d", o->steps);
        snprintf(warmup, sizeof warmup, "%d", o->warmup);
        setenv("OMP_NUM_THREADS", nt, 1);
        setenv("OPENBLAS_NUM_THREADS", nt, 1);
        if (threads > 1) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        dup2(fd[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        close(fd[0]), close(fd[1]);
        char *argv[] = {(char *)o->python, (char *)o->script, "--config", (char *)config, "--arch", (char *)arch,
                        "--threads", nt, "--steps", steps, "--warmup", warmup, gen ? "--gen" : NULL, NULL};
        execv(o->python, argv);
        _exit(127);
    }
    close(fd[1]);
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof buf - 1) break;
    }
    buf[got] = 0;
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    double tps, rss;
    peer_numbers(buf, got, &tps, &rss);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && isfinite(tps) && tps > 0) {
        out.ok = 1, out.tokens_per_s = tps, out.rss_mib = isfinite(rss) ? rss : 0;
    }
    return out;
}

/* ------------------------------------------------------------ configurations */
static int set_all(Config *c, const char *const *kv, Status *st) {
    for (int i = 0; kv[i]; i += 2)
        if (config_set(c, kv[i], kv[i + 1], st)) return -1;
    return 0;
}

/* The preset of the arch with the shape's dimensions and the peer's optimiser (AdamW, clip 1), its
 * matrix products on the GEMM library and in the precision named. */
static int bench_config(Config *c, const BenchShape *s, int arch, const char *gemm, const char *precision,
                        Status *st) {
    char v[16], d[16], l[16], h[16], t[16], b[16], f[16];
    snprintf(v, sizeof v, "%d", s->vocab), snprintf(d, sizeof d, "%d", s->d), snprintf(l, sizeof l, "%d", s->layers);
    snprintf(h, sizeof h, "%d", s->heads), snprintf(t, sizeof t, "%d", s->context);
    snprintf(b, sizeof b, "%d", s->batch), snprintf(f, sizeof f, "%d", s->d_ff);
    int lstm = s->heads == 0;
    config_defaults(c);
    if (config_load_recipe(c, lstm ? "lstm-2016" : ARCH_PRESETS[arch], st)) return -1;
    const char *common[] = {"vocab", v, "d_model", d, "n_layers", l, "context", t, "batch", b,
                            "optimizer", "adamw", "lr", "3e-4", "beta1", "0.9", "beta2", "0.95",
                            "weight_decay", "0.1", "grad_clip", "1", "gemm", gemm, "precision", precision, NULL};
    const char *tf[] = {"n_heads", h, NULL};
    const char *gated[] = {"d_ff", f, NULL};
    const char *rnn[] = {"tie_embeddings", "false", NULL};
    if (set_all(c, common, st) || (!lstm && set_all(c, tf, st)) || (!lstm && arch == 1 && set_all(c, gated, st)) ||
        (lstm && set_all(c, rnn, st)))
        return -1;
    return config_resolve(c, st);
}

/* ------------------------------------------------------------ options */
static int parse_int_list(const char *s, int *out, int max, Status *st) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > 1024 || n == max)
            return status_fail(st, AP_EINVAL, "--threads wants up to %d counts like 1,2 (got '%s')", max, s);
        out[n++] = (int)x;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return status_fail(st, AP_EINVAL, "--threads: bad list '%s'", s);
    }
    return n ? n : status_fail(st, AP_EINVAL, "--threads: empty list");
}

/* comma-separated names from `names`, marking on[i] */
static int parse_names(const char *opt, const char *s, const char *const *names, int n, int *on, Status *st) {
    memset(on, 0, (size_t)n * sizeof *on);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(tok, names[i])) on[i] = found = 1;
        if (!found) {
            char all[128] = "";
            for (int i = 0; i < n; i++) strcat(strcat(all, i ? "," : ""), names[i]);
            return status_fail(st, AP_EINVAL, "%s: unknown name '%s' (choose from %s)", opt, tok, all);
        }
    }
    return 0;
}

const char *const cli_usage_bench =
    "usage: algoprog bench [--quick] [--configs tiny,small,medium,lstm] [--archs gpt2,llama]\n"
    "                      [--threads 1,2] [--steps N] [--warmup N] [--no-peer] [--no-gen]\n"
    "                      [--gemm auto,onednn,openblas] [--precision fp32,bf16] [--python PATH]\n"
    "                      [--peer-script PATH] [--json FILE]\n"
    "Measures the FMA peak (widest vectors), both GEMM libraries, the kernels and training/generation\n"
    "throughput, and runs the PyTorch peer (bench/torch_peer.py) on the same configs and threads for ratios.\n"
    "--gemm: the GEMM libraries training is measured with, one row each (default auto).\n"
    "--precision: the precisions of the matrix products training is measured with (default fp32), one row\n"
    "       per library and precision; bf16 needs oneDNN and AVX512-BF16 or AMX (the recipe key `precision`).\n"
    "--quick: the tiny configs, 3 steps, small GEMMs (a smoke run of a minute or two).\n"
    "       algoprog bench --tokenizers [--names gpt2,cl100k_base,o200k_base] [--text FILE] [--json FILE]\n"
    "encode MB/s of tokenizers (1 thread, all cores) against tiktoken (npm, WASM) on the same text.\n"
    "       algoprog bench --study DIR\n"
    "where a study's time went (its runs' own clocks: products, attention, element-wise, evaluations,\n"
    "checkpoints, set-up, registry, idle) and its throughput as a share of this machine's FMA peak.\n";

static int parse_opts(BenchOpts *o, int argc, char **argv, Status *st) {
    memset(o, 0, sizeof *o);
    o->peer = o->gen = 1, o->steps = 10, o->warmup = 2;
    o->python = "/usr/bin/python3", o->script = ALGOPROG_SOURCE_DIR "/bench/torch_peer.py";
    int cores = parallel_cores();
    o->threads[o->n_threads++] = 1;
    if (cores > 1) o->threads[o->n_threads++] = cores;
    for (int i = 0; i < N_SHAPES; i++) o->shape_on[i] = 1;
    o->arch_on[0] = o->arch_on[1] = 1;
    o->train_libs[o->n_train_libs++] = GEMM_AUTO;
    o->train_precs[o->n_train_precs++] = GEMM_FP32;
    int steps_set = 0;
    const char *shape_names[N_SHAPES];
    for (int i = 0; i < N_SHAPES; i++) shape_names[i] = SHAPES[i].name;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--configs") || !strcmp(a, "--archs") || !strcmp(a, "--threads") || !strcmp(a, "--gemm") ||
                    !strcmp(a, "--precision") || !strcmp(a, "--steps") || !strcmp(a, "--warmup") || !strcmp(a, "--python") ||
                    !strcmp(a, "--peer-script") || !strcmp(a, "--json");
        if (takes && !val) return status_fail(st, AP_EINVAL, "%s needs a value", a);
        if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--no-peer")) {
            o->peer = 0;
        } else if (!strcmp(a, "--no-gen")) {
            o->gen = 0;
        } else if (!strcmp(a, "--configs")) {
            if (parse_names(a, val, shape_names, N_SHAPES, o->shape_on, st)) return -1;
        } else if (!strcmp(a, "--archs")) {
            if (parse_names(a, val, ARCH_NAMES, 2, o->arch_on, st)) return -1;
        } else if (!strcmp(a, "--gemm")) {
            static const char *const lib_names[MAX_LIBS] = {"auto", "onednn", "openblas"};
            int on[MAX_LIBS];
            if (parse_names(a, val, lib_names, MAX_LIBS, on, st)) return -1;
            o->n_train_libs = 0;
            for (int l = 0; l < MAX_LIBS; l++)
                if (on[l]) o->train_libs[o->n_train_libs++] = (GemmLib)l; /* gemm.h's order */
            if (on[GEMM_ONEDNN] && !gemm_have_onednn())
                return status_fail(st, AP_EINVAL, "--gemm onednn: this build has no oneDNN (install libdnnl-dev)");
        } else if (!strcmp(a, "--precision")) {
            static const char *const prec_names[MAX_PRECS] = {"fp32", "bf16"};
            int on[MAX_PRECS];
            if (parse_names(a, val, prec_names, MAX_PRECS, on, st)) return -1;
            o->n_train_precs = 0;
            for (int p = 0; p < MAX_PRECS; p++)
                if (on[p]) o->train_precs[o->n_train_precs++] = (GemmPrecision)p; /* gemm.h's order */
            Status why;
            if (on[GEMM_BF16] && !gemm_bf16_available() && gemm_set_precision(GEMM_BF16, &why))
                return status_fail(st, AP_EINVAL, "--precision bf16: %s", why.msg);
        } else if (!strcmp(a, "--threads")) {
            if ((o->n_threads = parse_int_list(val, o->threads, MAX_THREAD_COUNTS, st)) < 0) return -1;
        } else if (!strcmp(a, "--steps") || !strcmp(a, "--warmup")) {
            char *end;
            long x = strtol(val, &end, 10);
            int is_steps = a[2] == 's';
            if (*end || x < (is_steps ? 1 : 0) || x > 100000)
                return status_fail(st, AP_EINVAL, "%s wants a whole number %s (got '%s')", a,
                                   is_steps ? ">= 1" : ">= 0", val);
            if (is_steps) o->steps = (int)x, steps_set = 1;
            else o->warmup = (int)x;
        } else if (!strcmp(a, "--python")) {
            o->python = val;
        } else if (!strcmp(a, "--peer-script")) {
            o->script = val;
        } else if (!strcmp(a, "--json")) {
            o->json_path = val;
        } else {
            return status_fail(st, AP_EINVAL, "unknown bench option '%s'\n%s", a, cli_usage_bench);
        }
        i += takes;
    }
    if (o->quick) {
        if (!steps_set) o->steps = 3;
        for (int i = 1; i < N_SHAPES; i++) o->shape_on[i] = 0; /* tiny only */
    }
    if (o->peer && access(o->script, R_OK))
        return status_fail(st, AP_EINVAL, "PyTorch peer script %s not found (give --peer-script, or --no-peer)",
                           o->script);
    return 0;
}

/* ------------------------------------------------------------ the run */
static void progress(const char *what) {
    if (isatty(2)) fprintf(stderr, "\r\033[K  measuring %s ...", what);
}
static void progress_done(void) {
    if (isatty(2)) fprintf(stderr, "\r\033[K");
}

typedef struct {
    double sum_log, n;
} GeoMean;

static void geo_add(GeoMean *g, double r) {
    if (r > 0 && isfinite(r)) g->sum_log += log(r), g->n++;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizers")) return bench_tokenizers(argc, argv);
        if (!strcmp(argv[i], "--study")) return bench_study(argc, argv);
    }
    Status st = {0};
    BenchOpts o;
    if (parse_opts(&o, argc, argv, &st)) return cli_fail(&st);
    StrBuf js = {0};
    JsonWriter w;
    jw_init(&w, &js);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    const char *wait = getenv("OMP_WAIT_POLICY");
    char libs_desc[160];
    gemm_describe(libs_desc, sizeof libs_desc);
    printf("algoprog bench, %s: %d cores; GEMMs: %s; OMP_WAIT_POLICY=%s\n", date, parallel_cores(), libs_desc,
           wait ? wait : "(unset)");
    jw_object_begin(&w);
    jw_key(&w, "date"), jw_string(&w, date);
    jw_key(&w, "cores"), jw_int(&w, parallel_cores());
    jw_key(&w, "openblas"), jw_string(&w, openblas_get_config());
    jw_key(&w, "openblas_core"), jw_string(&w, openblas_get_corename());
    jw_key(&w, "gemm_libs"), jw_string(&w, libs_desc);
    jw_key(&w, "steps"), jw_int(&w, o.steps);
    jw_key(&w, "warmup"), jw_int(&w, o.warmup);
    jw_key(&w, "quick"), jw_bool(&w, o.quick);

    /* 1. peak and both GEMM libraries per thread count, and oneDNN's bf16 products where the CPU has them */
    double peak[MAX_THREAD_COUNTS] = {0}, gemm_peak[MAX_THREAD_COUNTS] = {0};
    const GemmShape *gemms = o.quick ? GEMMS_QUICK : GEMMS;
    int n_gemms = o.quick ? (int)(sizeof GEMMS_QUICK / sizeof *GEMMS_QUICK) : (int)(sizeof GEMMS / sizeof *GEMMS);
    /* columns: the fp32 libraries, then bf16 (libs[] is unused for that one) */
    GemmLib libs[3] = {GEMM_OPENBLAS, GEMM_ONEDNN, GEMM_ONEDNN};
    int n_libs = gemm_have_onednn() ? 2 : 1, n_cols = n_libs + gemm_bf16_available();
    ChildOut *co = calloc(1, sizeof *co);
    if (!co) return fprintf(stderr, "algoprog: out of memory\n"), 1;
    ChildOut *gemm_out = calloc(MAX_THREAD_COUNTS * 3, sizeof *gemm_out); /* [thread][column] */
    double rss;
    int rc = gemm_out ? 0 : status_fail(&st, AP_ENOMEM, "out of memory");
    jw_key(&w, "peak_isa"), jw_string(&w, bench_fma_isa());
    jw_key(&w, "peak"), jw_array_begin(&w);
    for (int ti = 0; ti < o.n_threads && !rc; ti++) {
        progress("the FMA peak");
        ChildTask t = {TASK_PEAK, o.threads[ti], NULL, 0, GEMM_AUTO, NULL, 0, 0, 0, GEMM_FP32};
        rc = run_child(&t, co, &rss, &st);
        peak[ti] = co->rates[0].best;
        jw_object_begin(&w);
        jw_key(&w, "threads"), jw_int(&w, o.threads[ti]);
        jw_key(&w, "best"), jw_number(&w, "%.2f", co->rates[0].best);
        jw_key(&w, "median"), jw_number(&w, "%.2f", co->rates[0].median);
        jw_object_end(&w);
        for (int li = 0; li < n_cols && !rc; li++) {
            char what[64];
            GemmPrecision prec = li < n_libs ? GEMM_FP32 : GEMM_BF16;
            snprintf(what, sizeof what, "%s GEMMs, %d thread(s)", li < n_libs ? gemm_lib_name(libs[li]) : "bf16",
                     o.threads[ti]);
            progress(what);
            ChildTask g = {TASK_GEMM, o.threads[ti], gemms, n_gemms, libs[li], NULL, 0, 0, 0, prec};
            rc = run_child(&g, &gemm_out[ti * 3 + li], &rss, &st);
            /* the best fp32 library's square product: what a GEMM-only fp32 step could reach */
            if (li < n_libs && gemm_out[ti * 3 + li].rates[0].best > gemm_peak[ti])
                gemm_peak[ti] = gemm_out[ti * 3 + li].rates[0].best;
        }
    }
    progress_done();
    jw_array_end(&w);
    StrBuf bf16_js = {0}; /* the bf16 rows, written after the fp32 ones as their own array */
    JsonWriter bw;
    jw_init(&bw, &bf16_js);
    jw_array_begin(&bw);
    jw_key(&w, "sgemm"), jw_array_begin(&w);
    if (!rc) {
        printf("\nfp32 FMA peak (%s FMAs, %d chains per thread) and GEMMs: GFLOP/s best over 7 repeats of >= 0.1 s\n",
               bench_fma_isa(), 12);
        int group = 14 * n_cols - 2; /* one thread count's columns: 12 characters per library, 2 between */
        printf("%-22s %16s", "", "");
        for (int ti = 0; ti < o.n_threads; ti++) {
            char head[32];
            snprintf(head, sizeof head, "%d thread%s", o.threads[ti], o.threads[ti] > 1 ? "s" : "");
            printf(" | %-*s", group, head);
        }
        printf("\n%-22s %16s", "", "M x N x K");
        for (int ti = 0; ti < o.n_threads; ti++)
            for (int li = 0; li < n_cols; li++)
                printf("%s%-12s", li ? "  " : " | ", li < n_libs ? gemm_lib_name(libs[li]) : "bf16");
        printf("\n%-22s %16s", "FMA loop (peak)", "");
        for (int ti = 0; ti < o.n_threads; ti++) printf(" | %6.1f%*s", peak[ti], group - 6, "");
        printf("\n");
        double above_peak = 0.0; /* the largest fp32 product rate as a fraction of the peak */
        for (int gi = 0; gi < n_gemms; gi++) {
            const GemmShape *g = &gemms[gi];
            char dims[32];
            snprintf(dims, sizeof dims, "%dx%dx%d", g->M, g->N, g->K);
            printf("%-22s %16s", g->label, dims);
            GemmLib pick = gemm_auto_pick((size_t)g->M, (size_t)g->N, (size_t)g->K, g->inner);
            int in_bf16 = gemm_bf16_applies((size_t)g->M, (size_t)g->N, (size_t)g->K);
            for (int ti = 0; ti < o.n_threads; ti++) {
                for (int li = 0; li < n_cols; li++) {
                    BenchRate r = gemm_out[ti * 3 + li].rates[gi];
                    int star = li < n_libs ? n_libs > 1 && libs[li] == pick : in_bf16;
                    printf("%s%6.1f %3.0f%%%c", li ? "  " : " | ", r.best, 100 * r.best / peak[ti], star ? '*' : ' ');
                    if (li == n_libs) { /* bf16 */
                        jw_object_begin(&bw);
                        jw_key(&bw, "shape"), jw_string(&bw, g->label);
                        jw_key(&bw, "M"), jw_int(&bw, g->M);
                        jw_key(&bw, "N"), jw_int(&bw, g->N);
                        jw_key(&bw, "K"), jw_int(&bw, g->K);
                        jw_key(&bw, "ta"), jw_int(&bw, g->ta);
                        jw_key(&bw, "tb"), jw_int(&bw, g->tb);
                        jw_key(&bw, "inner"), jw_bool(&bw, g->inner);
                        jw_key(&bw, "threads"), jw_int(&bw, o.threads[ti]);
                        jw_key(&bw, "best"), jw_number(&bw, "%.2f", r.best);
                        jw_key(&bw, "median"), jw_number(&bw, "%.2f", r.median);
                        jw_key(&bw, "in_bf16"), jw_bool(&bw, in_bf16);
                        jw_object_end(&bw);
                        continue;
                    }
                    if (r.best / peak[ti] > above_peak) above_peak = r.best / peak[ti];
                    jw_object_begin(&w);
                    jw_key(&w, "shape"), jw_string(&w, g->label);
                    jw_key(&w, "lib"), jw_string(&w, gemm_lib_name(libs[li]));
                    jw_key(&w, "M"), jw_int(&w, g->M);
                    jw_key(&w, "N"), jw_int(&w, g->N);
                    jw_key(&w, "K"), jw_int(&w, g->K);
                    jw_key(&w, "ta"), jw_int(&w, g->ta);
                    jw_key(&w, "tb"), jw_int(&w, g->tb);
                    jw_key(&w, "inner"), jw_bool(&w, g->inner);
                    jw_key(&w, "threads"), jw_int(&w, o.threads[ti]);
                    jw_key(&w, "best"), jw_number(&w, "%.2f", r.best);
                    jw_key(&w, "median"), jw_number(&w, "%.2f", r.median);
                    jw_key(&w, "pct_peak"), jw_number(&w, "%.2f", 100 * r.best / peak[ti]);
                    jw_key(&w, "auto_pick"), jw_bool(&w, libs[li] == pick);
                    jw_object_end(&w);
                }
            }
            printf("\n");
        }
        printf("(%% = of the fp32 FMA peak at that thread count; * = what gemm=auto runs; attn rows: one product per "
               "thread at once, as inside the attention kernel)\n");
        /* a product cannot beat the FMA loop: when one does, the loop was measured while something else ran */
        if (above_peak > 1.1)
            printf("warning: an fp32 product measured at %.0f%% of the FMA peak: the peak was measured while another "
                   "process used the cores; every %% here is suspect (run again on a quiet machine)\n",
                   100 * above_peak);
        if (n_cols > n_libs)
            printf("(bf16: oneDNN's matmul on inputs rounded to bf16, fp32 accumulation; * = run in bf16 under "
                   "precision=bf16: M*N*K >= %.0f and M*N/(M+N) >= %.0f)\n",
                   GEMM_BF16_MIN_WORK, GEMM_BF16_MIN_REUSE);
    }
    free(gemm_out);
    jw_array_end(&bw);

    /* 2. kernels at the tiny shape, all threads */
    jw_array_end(&w);
    jw_key(&w, "bf16_gemm"), jw_raw(&w, bf16_js.s ? bf16_js.s : "[]");
    sb_free(&bf16_js);
    jw_key(&w, "kernels"), jw_array_begin(&w);
    if (!rc) {
        int tmax = o.threads[o.n_threads - 1];
        progress("kernels");
        ChildTask t = {TASK_KERNELS, tmax, NULL, 0, GEMM_AUTO, NULL, 0, 0, 0, GEMM_FP32};
        rc = run_child(&t, co, &rss, &st);
        progress_done();
        if (!rc) {
            const BenchShape *s = &SHAPES[0];
            printf("\nkernels at the tiny shape (B %d, T %d, d %d, %d heads, d_ff %d, V 4096 for the loss), %d "
                   "thread%s, ms median\n",
                   s->batch, s->context, s->d, s->heads, s->d_ff, tmax, tmax > 1 ? "s" : "");
            printf("  %-26s %9s %9s\n", "kernel", "forward", "backward");
            for (int k = 0; k < co->n_kernels; k++) {
                printf("  %-26s %9.2f %9.2f\n", co->kernels[k].name, co->kernels[k].fwd_ms, co->kernels[k].bwd_ms);
                jw_object_begin(&w);
                jw_key(&w, "kernel"), jw_string(&w, co->kernels[k].name);
                jw_key(&w, "threads"), jw_int(&w, tmax);
                jw_key(&w, "fwd_ms"), jw_number(&w, "%.4f", co->kernels[k].fwd_ms);
                jw_key(&w, "bwd_ms"), jw_number(&w, "%.4f", co->kernels[k].bwd_ms);
                jw_object_end(&w);
            }
        }
    }

    /* 3. training and generation against the peer, per GEMM library and precision asked for */
    jw_array_end(&w);
    jw_key(&w, "train"), jw_array_begin(&w);
    GeoMean geo_train[MAX_THREAD_COUNTS][MAX_LIBS][MAX_PRECS], geo_gen[MAX_THREAD_COUNTS][MAX_LIBS][MAX_PRECS];
    memset(geo_train, 0, sizeof geo_train), memset(geo_gen, 0, sizeof geo_gen);
    int peer_ok = o.peer;
    if (!rc) {
        printf("\ntraining: tokens/s = B*T / median step over %d steps (after %d warm-up), AdamW + clip, random "
               "tokens; %%peak = exact-FLOP MFU against the FMA peak\n",
               o.steps, o.warmup);
        printf("%-7s %-6s %3s %-8s %-4s %7s %8s %9s %8s %6s %7s %6s %9s %6s %6s", "config", "arch", "thr", "gemm",
               "prec", "params", "MFLOP/tok", "tok/s", "GFLOP/s", "%peak", "%sgemm", "MiB", "torch", "MiB", "ratio");
        if (o.gen) printf(" %8s %8s %6s", "gen t/s", "torch", "ratio");
        printf("\n");
    }
    for (int si = 0; si < N_SHAPES && !rc; si++) {
        if (!o.shape_on[si]) continue;
        const BenchShape *s = &SHAPES[si];
        for (int arch = 0; arch < 2 && !rc; arch++) {
            int lstm = s->heads == 0;
            if (lstm ? arch > 0 : !o.arch_on[arch]) continue;
            const char *arch_name = lstm ? "lstm" : ARCH_NAMES[arch];
            /* the medium config takes ~10 s a step on one core: fewer steps unless asked */
            int steps = (!strcmp(s->name, "medium") && o.steps > 5) ? 5 : o.steps;
            for (int ti = 0; ti < o.n_threads && !rc; ti++) {
                char what[96];
                /* the peer does not depend on our GEMM library: once per config and thread count */
                PeerOut pt = {0, 0, 0}, pg = {0, 0, 0};
                if (peer_ok) {
                    snprintf(what, sizeof what, "%s %s, %d thread(s) in PyTorch", s->name, arch_name, o.threads[ti]);
                    progress(what);
                    BenchOpts po = o;
                    po.steps = steps;
                    pt = run_peer(&po, s->name, arch_name, o.threads[ti], 0);
                    if (!pt.ok) {
                        progress_done();
                        fprintf(stderr,
                                "algoprog: the PyTorch peer failed; continuing without it. To see why, run:\n"
                                "  OMP_NUM_THREADS=%d %s %s --config %s --arch %s --threads %d --steps 1\n",
                                o.threads[ti], o.python, o.script, s->name, arch_name, o.threads[ti]);
                        peer_ok = 0;
                    } else if (o.gen) {
                        pg = run_peer(&po, s->name, arch_name, o.threads[ti], 1);
                    }
                }
                for (int lp = 0; lp < o.n_train_libs * o.n_train_precs && !rc; lp++) {
                    int li = lp / o.n_train_precs, pi = lp % o.n_train_precs;
                    const char *lib_name = gemm_lib_name(o.train_libs[li]);
                    const char *prec_name = gemm_precision_name(o.train_precs[pi]);
                    Config cfg;
                    if ((rc = bench_config(&cfg, s, arch, lib_name, prec_name, &st))) break;
                    snprintf(what, sizeof what, "%s %s, %d thread(s), %s, %s", s->name, arch_name, o.threads[ti],
                             lib_name, prec_name);
                    progress(what);
                    ChildTask t = {TASK_TRAIN, o.threads[ti], NULL, 0, GEMM_AUTO, &cfg, steps, o.warmup, o.gen ? 255 : 0,
                                   GEMM_FP32};
                    if ((rc = run_child(&t, co, &rss, &st))) break;
                    progress_done();
                    BenchTrain *r = &co->train;
                    double gflops = r->flops_per_token * r->tokens_per_s * 1e-9;
                    double ratio = pt.ok ? r->tokens_per_s / pt.tokens_per_s : NAN;
                    double gratio = pg.ok ? r->gen_tokens_per_s / pg.tokens_per_s : NAN;
                    geo_add(&geo_train[ti][li][pi], ratio), geo_add(&geo_gen[ti][li][pi], gratio);
                    printf("%-7s %-6s %3d %-8s %-4s %6.2fM %8.1f %9.0f %8.1f %5.1f%% %6.1f%% %6.0f", s->name, arch_name,
                           o.threads[ti], lib_name, prec_name, r->params * 1e-6, r->flops_per_token * 1e-6, r->tokens_per_s,
                           gflops, 100 * gflops / peak[ti], 100 * gflops / gemm_peak[ti], rss);
                    if (pt.ok) printf(" %9.0f %6.0f %5.2fx", pt.tokens_per_s, pt.rss_mib, ratio);
                    else printf(" %9s %6s %6s", "-", "-", "-");
                    if (o.gen && pg.ok) printf(" %8.0f %8.0f %5.2fx", r->gen_tokens_per_s, pg.tokens_per_s, gratio);
                    else if (o.gen) printf(" %8.0f %8s %6s", r->gen_tokens_per_s, "-", "-");
                    printf("\n");
                    fflush(stdout);
                    jw_object_begin(&w);
                    jw_key(&w, "config"), jw_string(&w, s->name);
                    jw_key(&w, "arch"), jw_string(&w, arch_name);
                    jw_key(&w, "threads"), jw_int(&w, o.threads[ti]);
                    jw_key(&w, "gemm"), jw_string(&w, lib_name);
                    jw_key(&w, "precision"), jw_string(&w, prec_name);
                    jw_key(&w, "steps"), jw_int(&w, steps);
                    jw_key(&w, "params"), jw_number(&w, "%.0f", r->params);
                    jw_key(&w, "nonemb_params"), jw_number(&w, "%.0f", r->nonemb_params);
                    jw_key(&w, "flops_per_token"), jw_number(&w, "%.0f", r->flops_per_token);
                    jw_key(&w, "flops_per_token_palm"), jw_number(&w, "%.0f", r->flops_per_token_palm);
                    jw_key(&w, "tokens_per_s"), jw_number(&w, "%.1f", r->tokens_per_s);
                    jw_key(&w, "tokens_per_s_best"), jw_number(&w, "%.1f", r->tokens_per_s_best);
                    jw_key(&w, "gflops"), jw_number(&w, "%.2f", gflops);
                    jw_key(&w, "pct_peak"), jw_number(&w, "%.2f", 100 * gflops / peak[ti]);
                    jw_key(&w, "pct_sgemm"), jw_number(&w, "%.2f", 100 * gflops / gemm_peak[ti]);
                    jw_key(&w, "rss_mib"), jw_number(&w, "%.1f", rss);
                    jw_key(&w, "gen_tokens_per_s"), jw_number(&w, "%.1f", r->gen_tokens_per_s);
                    if (pt.ok) {
                        jw_key(&w, "torch_tokens_per_s"), jw_number(&w, "%.1f", pt.tokens_per_s);
                        jw_key(&w, "torch_rss_mib"), jw_number(&w, "%.1f", pt.rss_mib);
                        jw_key(&w, "ratio"), jw_number(&w, "%.4f", ratio);
                    }
                    if (pg.ok) {
                        jw_key(&w, "torch_gen_tokens_per_s"), jw_number(&w, "%.1f", pg.tokens_per_s);
                        jw_key(&w, "gen_ratio"), jw_number(&w, "%.4f", gratio);
                    }
                    jw_object_end(&w);
                }
            }
        }
    }
    jw_array_end(&w);
    jw_key(&w, "summary"), jw_array_begin(&w);
    if (!rc && o.peer) {
        printf("\nalgoprog / PyTorch, geometric mean over the configs above:\n");
        for (int ti = 0; ti < o.n_threads; ti++)
            for (int lp = 0; lp < o.n_train_libs * o.n_train_precs; lp++) {
                int li = lp / o.n_train_precs, pi = lp % o.n_train_precs;
                GeoMean *a = &geo_train[ti][li][pi], *b = &geo_gen[ti][li][pi];
                double gt = a->n ? exp(a->sum_log / a->n) : NAN, gg = b->n ? exp(b->sum_log / b->n) : NAN;
                const char *lib_name = gemm_lib_name(o.train_libs[li]);
                const char *prec_name = gemm_precision_name(o.train_precs[pi]);
                printf("  %d thread%s, gemm=%s, precision=%s: training %.2fx", o.threads[ti],
                       o.threads[ti] > 1 ? "s" : " ", lib_name, prec_name, gt);
                if (o.gen) printf(", generation %.2fx", gg);
                printf("\n");
                jw_object_begin(&w);
                jw_key(&w, "threads"), jw_int(&w, o.threads[ti]);
                jw_key(&w, "gemm"), jw_string(&w, lib_name);
                jw_key(&w, "precision"), jw_string(&w, prec_name);
                if (isfinite(gt)) jw_key(&w, "train_ratio"), jw_number(&w, "%.4f", gt);
                if (isfinite(gg)) jw_key(&w, "gen_ratio"), jw_number(&w, "%.4f", gg);
                jw_object_end(&w);
            }
        printf("(noise: repeats at 2 threads differ by up to ~15%% on this machine kind; see perf_anchors.md)\n");
    }
    jw_array_end(&w);
    jw_object_end(&w);
    sb_putc(&js, '\n');
    free(co);
    if (!rc && js.failed) rc = status_fail(&st, AP_ENOMEM, "out of memory");
    if (!rc && o.json_path) {
        rc = file_write_atomic(o.json_path, js.s, js.len, &st);
        if (!rc) printf("\nwrote %s\n", o.json_path);
    }
    sb_free(&js);
    return rc ? cli_fail(&st) : 0;
}
