/* cmd_data.c - `algoprog corpus ...` and `algoprog tokenize ...`. */
#include "cli/cli.h"

#include "core/fileio.h"
#include "core/parallel.h"
#include "core/sha256.h"
#include "core/rng.h"
#include "core/strbuf.h"
#include "data/corpus.h"
#include "data/quality.h"
#include "data/dataset.h"
#include "data/shard.h"
#include "data/tiktoken.h"
#include "data/tokenizer.h"
#include "train/score.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* key=value options after the positional arguments; unknown keys are errors. */
typedef struct {
    const char *key;
    const char *value;
} Opt;

static int parse_opts(int argc, char **argv, const char *const *allowed, Opt *opts, int *n_opts, Status *st) {
    *n_opts = 0;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) return status_fail(st, AP_EINVAL, "argument '%s' is not of the form key=value", argv[i]);
        *eq = '\0';
        int ok = 0;
        for (int k = 0; allowed[k]; k++) ok |= !strcmp(allowed[k], argv[i]);
        if (!ok) {
            char list[256] = "";
            for (int k = 0; allowed[k]; k++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", allowed[k]);
            }
            status_fail(st, AP_EINVAL, "unknown option '%s' (allowed: %s)", argv[i], list);
            *eq = '=';
            return -1;
        }
        opts[*n_opts].key = argv[i];
        opts[(*n_opts)++].value = eq + 1;
    }
    return 0;
}

static const char *opt(const Opt *opts, int n, const char *key, const char *def) {
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].key, key)) return opts[i].value;
    return def;
}

static int opt_double(const Opt *opts, int n, const char *key, double def, double lo, double hi, double *out,
                      Status *st) {
    const char *v = opt(opts, n, key, NULL);
    if (!v) return *out = def, 0;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || x < lo || x > hi)
        return status_fail(st, AP_EINVAL, "%s=%s: need a number in [%g, %g]", key, v, lo, hi);
    *out = x;
    return 0;
}

/* ---------------------------------------------------------------- corpus */

static void print_corpus(const Corpus *c) {
    printf("corpus %s in %s\n  train:    %10llu bytes, %7llu documents, sha256 %s\n"
           "  held out: %10llu bytes, %7llu documents, sha256 %s (val_frac %.3g, split by document hash)\n",
           c->name, c->dir, (unsigned long long)c->bytes[0], (unsigned long long)c->docs[0], c->sha256[0],
           (unsigned long long)c->bytes[1], (unsigned long long)c->docs[1], c->sha256[1], c->val_frac);
    if (c->derived_from[0])
        printf("  derived from %s: noise %.3g, score %s, keep %.3g (manifest.json has the details)\n", c->derived_from,
               c->noise, c->score, c->keep);
}

const char *const cli_usage_corpus =
    "usage: algoprog corpus build NAME [val_frac=0.05]\n"
    "       algoprog corpus list\n"
    "       algoprog corpus info NAME\n"
    "       algoprog corpus filter CORPUS out=NAME [--noise P] [--score perplexity|random --keep F]\n"
    "                              [--model RUN_DIR] [seed=S] [threads=N]\n"
    "  filter: a corpus derived along a quality axis (claim C10). --noise P replaces a fraction P of the\n"
    "  training documents by shuffled-word versions of themselves (a controlled degradation); --score\n"
    "  perplexity keeps the fraction F of documents on which the reference run RUN_DIR has the lowest\n"
    "  bits per byte (random: a seeded random fraction F, the control). Noise comes first, so a degraded\n"
    "  corpus can be filtered in one command. The held-out text is copied unchanged: every corpus derived\n"
    "  from one source is evaluated on the same text. Per-document scores go to NAME/scores.tsv.\n";

/* `--key value` and `--key=value` as key=value, so both spellings work for filter. */
static int normalise_flags(int argc, char **argv, char **out, char *store, size_t store_size) {
    int n = 0;
    size_t used = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            out[n++] = argv[i];
            continue;
        }
        const char *v = strchr(a, '=') ? "" : i + 1 < argc ? argv[++i] : "";
        int w = snprintf(store + used, store_size - used, "%s%s%s", a + 2, strchr(a, '=') ? "" : "=", v);
        if (w < 0 || (size_t)w >= store_size - used) return -1;
        out[n++] = store + used;
        used += (size_t)w + 1;
    }
    return n;
}

static int corpus_filter(int argc, char **argv) {
    Status st = {0};
    char *args[32], store[4096];
    int n_args = argc <= 32 ? normalise_flags(argc, argv, args, store, sizeof store) : -1;
    if (n_args < 1) return fputs(cli_usage_corpus, stderr), 2;
    static const char *const allowed[] = {"out", "noise", "score", "keep", "model", "seed", "threads", NULL};
    Opt opts[16];
    int n;
    double noise, keep, seed, threads;
    if (n_args - 1 > 16 || parse_opts(n_args - 1, args + 1, allowed, opts, &n, &st) ||
        opt_double(opts, n, "noise", 0, 0, 1, &noise, &st) || opt_double(opts, n, "keep", 1, 1e-6, 1, &keep, &st) ||
        opt_double(opts, n, "seed", 1, 0, 9007199254740992.0, &seed, &st) ||
        opt_double(opts, n, "threads", 0, 0, 4096, &threads, &st))
        return cli_fail(&st);
    const char *out = opt(opts, n, "out", NULL), *score = opt(opts, n, "score", "none"),
               *model = opt(opts, n, "model", NULL);
    if (!out) return fputs("algoprog: error: corpus filter needs out=NAME (the derived corpus)\n", stderr), 2;
    if (strcmp(score, "none") && strcmp(score, "perplexity") && strcmp(score, "random"))
        return fprintf(stderr, "algoprog: error: --score %s: use perplexity or random\n", score), 2;
    if (!strcmp(score, "perplexity") != !!model)
        return fputs("algoprog: error: --score perplexity and --model RUN_DIR go together (the run scores the "
                     "documents)\n", stderr), 2;
    if (!strcmp(score, "none") && keep < 1)
        return fputs("algoprog: error: --keep needs --score perplexity or random (what to keep by)\n", stderr), 2;
    if (!strcmp(score, "none") && noise == 0)
        return fputs("algoprog: error: nothing to do: give --noise P, or --score with --keep F\n", stderr), 2;
    if (model) {
        char ck[800];
        snprintf(ck, sizeof ck, "%s/checkpoint.bin", model);
        if (!file_exists(ck))
            return fprintf(stderr, "algoprog: error: --model %s: no trained run there (no checkpoint.bin)\n", model), 2;
    }
    parallel_init((int)threads);
    Corpus src, dst;
    if (corpus_open(&src, args[0], dataset_data_dir(), &st)) return cli_fail(&st);
    char path[700];
    snprintf(path, sizeof path, "%s/train.txt", src.dir);
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, (size_t)1 << 36, &st)) return cli_fail(&st);
    Derivation how = {.noise = noise, .keep = keep, .seed = (uint64_t)seed, .threshold = NAN};
    snprintf(how.source, sizeof how.source, "%s", src.name);
    sha256_hex(text, len, how.source_sha256);
    if (strcmp(how.source_sha256, src.sha256[0])) {
        free(text);
        status_fail(&st, AP_ECORRUPT, "%s no longer matches its manifest: rebuild corpus '%s'", path, src.name);
        return cli_fail(&st);
    }
    snprintf(how.score, sizeof how.score, "%s", strcmp(score, "none") ? score : "");
    DocSpan *spans = NULL;
    size_t nd = 0;
    unsigned char *noised = NULL, *keep_mark = NULL;
    size_t *bytes = NULL;
    double *scores = NULL;
    int rc = quality_docs((const unsigned char *)text, len, &spans, &nd, &st);
    if (!rc) {
        noised = calloc(nd ? nd : 1, 1), keep_mark = malloc(nd ? nd : 1);
        bytes = malloc((nd ? nd : 1) * sizeof *bytes), scores = malloc((nd ? nd : 1) * sizeof *scores);
        if (!noised || !keep_mark || !bytes || !scores) rc = status_fail(&st, AP_ENOMEM, "out of memory");
    }
    how.docs_in = nd;
    /* noise first: the chosen documents shuffled in place (same bytes, so the spans hold) */
    if (!rc && noise > 0) {
        quality_choose(nd, noise, how.seed, noised);
        unsigned char *tmp = malloc(CORPUS_MAX_DOC + 1);
        for (size_t i = 0; i < nd && !rc; i++) {
            if (!noised[i]) continue;
            unsigned char *doc = (unsigned char *)text + spans[i].off, *buf = tmp;
            if (spans[i].len > CORPUS_MAX_DOC) buf = malloc(spans[i].len);
            if (!buf) {
                rc = status_fail(&st, AP_ENOMEM, "out of memory");
                break;
            }
            quality_shuffle_words(doc, spans[i].len, how.seed * 0x9e3779b97f4a7c15ull + i, buf);
            memcpy(doc, buf, spans[i].len);
            if (buf != tmp) free(buf);
            how.docs_noised++;
        }
        free(tmp);
    }
    for (size_t i = 0; i < nd; i++) bytes[i] = spans[i].len, keep_mark[i] = 1;
    if (!rc && !strcmp(score, "perplexity")) {
        ScoreInfo info;
        snprintf(how.model, sizeof how.model, "%s", model);
        rc = score_documents(model, (const unsigned char *)text, len, nd, bytes, scores, &info, 1, &st);
        if (!rc) printf("scored %zu documents (%zu tokens) with %s (%s) in %.1f s\n", nd, info.tokens, model,
                        info.model, info.seconds);
    } else if (!rc && !strcmp(score, "random")) {
        Rng r;
        rng_seed(&r, how.seed ^ 0x5c0e5c0e5c0eull);
        for (size_t i = 0; i < nd; i++) scores[i] = rng_uniform_double(&r);
    }
    if (!rc && how.score[0]) how.threshold = quality_keep_lowest(scores, nd, keep, keep_mark);
    for (size_t i = 0; i < nd; i++) how.docs_kept += keep_mark[i];
    if (!rc)
        rc = quality_write_corpus(&dst, &src, out, dataset_data_dir(), (const unsigned char *)text, spans, nd,
                                  keep_mark, &how, &st);
    if (!rc) { /* the scores beside the corpus, for inspection: which documents went, and why */
        StrBuf sb = {0};
        sb_printf(&sb, "document\tbytes\tnoised\tscore\tkept\n");
        for (size_t i = 0; i < nd; i++)
            sb_printf(&sb, "%zu\t%zu\t%d\t%.6g\t%d\n", i, bytes[i], noised[i], how.score[0] ? scores[i] : NAN,
                      keep_mark[i]);
        snprintf(path, sizeof path, "%s/scores.tsv", dst.dir);
        rc = sb.failed ? status_fail(&st, AP_ENOMEM, "out of memory") : file_write_atomic(path, sb.s, sb.len, &st);
        sb_free(&sb);
    }
    if (!rc) {
        printf("corpus %s from %s: %llu of %zu documents kept (%llu noised), %llu of %llu bytes", dst.name, src.name,
               (unsigned long long)how.docs_kept, nd, (unsigned long long)how.docs_noised,
               (unsigned long long)dst.bytes[0], (unsigned long long)src.bytes[0]);
        if (how.score[0]) printf("; %s score threshold %.4g", how.score, how.threshold);
        printf("\n  held out: unchanged (%llu documents, sha256 %s)\n  in %s\n", (unsigned long long)dst.docs[1],
               dst.sha256[1], dst.dir);
    }
    free(text), free(spans), free(noised), free(keep_mark), free(bytes), free(scores);
    return rc ? cli_fail(&st) : 0;
}

int cmd_corpus(int argc, char **argv) {
    Status st = {0};
    const char *usage = cli_usage_corpus;
    if (argc < 1) return fputs(usage, stderr), 2;
    const char *data_dir = dataset_data_dir();
    if (!strcmp(argv[0], "list")) {
        char names[512];
        corpus_recipe_names(names, sizeof names);
        printf("recipes (%s): %s\n", corpus_recipe_dir(), names);
        for (char *tok = strtok(names, " "); tok; tok = strtok(NULL, " ")) {
            Corpus c;
            Status ignore;
            if (corpus_open(&c, tok, data_dir, &ignore) == 0)
                printf("  %-10s built: %llu + %llu bytes (train + held out)\n", tok,
                       (unsigned long long)c.bytes[0], (unsigned long long)c.bytes[1]);
            else
                printf("  %-10s not built (algoprog corpus build %s)\n", tok, tok);
        }
        return 0;
    }
    if (argc < 2) return fputs(usage, stderr), 2;
    if (!strcmp(argv[0], "filter")) return corpus_filter(argc - 1, argv + 1);
    Corpus c;
    if (!strcmp(argv[0], "info")) {
        if (corpus_open(&c, argv[1], data_dir, &st)) return cli_fail(&st);
        print_corpus(&c);
        return 0;
    }
    if (strcmp(argv[0], "build")) return fputs(usage, stderr), 2;
    static const char *const allowed[] = {"val_frac", NULL};
    Opt opts[8];
    int n;
    double val_frac;
    if (argc - 2 > 8 || parse_opts(argc - 2, argv + 2, allowed, opts, &n, &st) ||
        opt_double(opts, n, "val_frac", 0.05, 1e-4, 0.49, &val_frac, &st))
        return cli_fail(&st);
    double t0 = time_now();
    if (corpus_build(&c, argv[1], data_dir, val_frac, &st)) return cli_fail(&st);
    print_corpus(&c);
    printf("built in %.1f s\n", time_now() - t0);
    return 0;
}

/* ---------------------------------------------------------------- tokenize */

static int load_tokenizer(Tokenizer *t, const char *name, Status *st) {
    char path[700];
    if (dataset_tokenizer_path(name, path, sizeof path, st)) return -1;
    return tokenizer_load(t, path, st);
}

/* Training text: a corpus's train split (never its held-out text), or a file. */
static int read_training_text(const char *what, char **text, size_t *len, char *label, size_t label_size,
                              Status *st) {
    Corpus c;
    Status ignore;
    if (!file_exists(what) && corpus_open(&c, what, dataset_data_dir(), &ignore) == 0) {
        char path[700];
        snprintf(path, sizeof path, "%s/train.txt", c.dir);
        snprintf(label, label_size, "%s", c.name);
        return file_read_all(path, text, len, (size_t)1 << 36, st);
    }
    const char *base = strrchr(what, '/') ? strrchr(what, '/') + 1 : what;
    snprintf(label, label_size, "%.*s", (int)strcspn(base, "."), base);
    return file_read_all(what, text, len, (size_t)1 << 36, st);
}

static int tokenize_train(int argc, char **argv) {
    Status st = {0};
    if (argc < 1) return fputs("usage: algoprog tokenize train CORPUS|FILE vocab=N [out=FILE.tok]\n", stderr), 2;
    static const char *const allowed[] = {"vocab", "out", "name", NULL};
    Opt opts[8];
    int n;
    double vocab;
    if (argc - 1 > 8 || parse_opts(argc - 1, argv + 1, allowed, opts, &n, &st) ||
        opt_double(opts, n, "vocab", 4096, 257, 1 << 22, &vocab, &st))
        return cli_fail(&st);
    char *text;
    size_t len;
    char label[128], name[160], out[800];
    if (read_training_text(argv[0], &text, &len, label, sizeof label, &st)) return cli_fail(&st);
    snprintf(name, sizeof name, "%s", opt(opts, n, "name", ""));
    if (!name[0]) snprintf(name, sizeof name, "bpe%d-%s", (int)vocab, label);
    snprintf(out, sizeof out, "%s", opt(opts, n, "out", ""));
    if (!out[0]) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/tokenizers", dataset_data_dir());
        if (dir_create(dir, &st)) return free(text), cli_fail(&st);
        snprintf(out, sizeof out, "%s/%s.tok", dir, name);
    }
    Tokenizer t;
    double t0 = time_now();
    int rc = tokenizer_train_bpe(&t, (const unsigned char *)text, len, (int)vocab, PRETOK_GPT4, name, 1, &st);
    double dt = time_now() - t0;
    free(text);
    if (rc) return cli_fail(&st);
    rc = tokenizer_save(&t, out, &st);
    if (!rc) printf("trained %s: %d tokens from %.1f MB in %.1f s -> %s\n", name, t.n_tokens, len / 1e6, dt, out);
    tokenizer_free(&t);
    return rc ? cli_fail(&st) : 0;
}

static int tokenize_encode(int argc, char **argv) {
    Status st = {0};
    if (argc < 1) return fputs("usage: algoprog tokenize encode FILE tokenizer=TOK out=SHARD\n", stderr), 2;
    static const char *const allowed[] = {"tokenizer", "out", NULL};
    Opt opts[4];
    int n;
    if (argc - 1 > 4 || parse_opts(argc - 1, argv + 1, allowed, opts, &n, &st)) return cli_fail(&st);
    const char *out = opt(opts, n, "out", NULL);
    if (!out) return fputs("algoprog: error: tokenize encode needs out=SHARD\n", stderr), 2;
    Tokenizer t;
    if (load_tokenizer(&t, opt(opts, n, "tokenizer", "bytes"), &st)) return cli_fail(&st);
    char *text;
    size_t len;
    if (file_read_all(argv[0], &text, &len, (size_t)1 << 36, &st)) {
        tokenizer_free(&t);
        return cli_fail(&st);
    }
    TokenList ids = {0};
    double t0 = time_now();
    int rc = tokenizer_encode_parallel(&t, (const unsigned char *)text, len, &ids, &st);
    double dt = time_now() - t0;
    if (!rc) {
        uint64_t docs = 0, bytes = 0;
        for (size_t i = 0; i < ids.n; i++) {
            docs += ids.ids[i] == (uint32_t)t.eot;
            bytes += tokenizer_byte_count(&t, (int)ids.ids[i]);
        }
        unsigned char d[32];
        Sha256 sh;
        sha256_init(&sh);
        sha256_update(&sh, text, len);
        sha256_final(&sh, d);
        uint64_t text_hash;
        memcpy(&text_hash, d, 8);
        rc = shard_write(out, &t, ids.ids, ids.n, bytes, docs ? docs : 1, text_hash, &st);
        if (!rc)
            printf("%s: %zu bytes -> %zu tokens (%.3f bytes/token) with %s in %.2f s (%.1f MB/s, %d threads) -> %s\n",
                   argv[0], len, ids.n, ids.n ? (double)len / ids.n : 0.0, t.name, dt, len / 1e6 / dt,
                   parallel_threads(), out);
    }
    free(text);
    tokenlist_free(&ids);
    tokenizer_free(&t);
    return rc ? cli_fail(&st) : 0;
}

static int tokenize_decode(int argc, char **argv) {
    Status st = {0};
    if (argc < 1) return fputs("usage: algoprog tokenize decode SHARD tokenizer=TOK out=FILE\n", stderr), 2;
    static const char *const allowed[] = {"tokenizer", "out", NULL};
    Opt opts[4];
    int n;
    if (argc - 1 > 4 || parse_opts(argc - 1, argv + 1, allowed, opts, &n, &st)) return cli_fail(&st);
    const char *out = opt(opts, n, "out", NULL);
    if (!out) return fputs("algoprog: error: tokenize decode needs out=FILE\n", stderr), 2;
    Tokenizer t;
    if (load_tokenizer(&t, opt(opts, n, "tokenizer", "bytes"), &st)) return cli_fail(&st);
    Shard s;
    int rc = shard_open(&s, argv[0], &t, &st);
    if (!rc) {
        uint32_t *ids = malloc((s.n_tokens ? s.n_tokens : 1) * sizeof *ids);
        unsigned char *bytes = NULL;
        size_t len = 0;
        if (!ids) rc = status_fail(&st, AP_ENOMEM, "out of memory");
        for (uint64_t i = 0; !rc && i < s.n_tokens; i++) ids[i] = shard_token(&s, i);
        if (!rc) rc = tokenizer_decode(&t, ids, s.n_tokens, &bytes, &len, &st);
        if (!rc) rc = file_write_atomic(out, bytes, len, &st);
        if (!rc) printf("%s: %llu tokens -> %zu bytes -> %s\n", argv[0], (unsigned long long)s.n_tokens, len, out);
        free(ids);
        free(bytes);
        shard_close(&s);
    }
    tokenizer_free(&t);
    return rc ? cli_fail(&st) : 0;
}

/* Bytes per token of each tokenizer on each corpus's held-out text (claim C15). */
static int tokenize_stats(int argc, char **argv) {
    Status st = {0};
    static const char *const allowed[] = {"corpus", "tokenizer", NULL};
    Opt opts[4];
    int n;
    if (argc > 4 || parse_opts(argc, argv, allowed, opts, &n, &st)) return cli_fail(&st);
    char corpora[1024] = "", toks[2048] = "bytes";
    snprintf(corpora, sizeof corpora, "%s", opt(opts, n, "corpus", ""));
    if (!corpora[0]) { /* every built corpus */
        char names[512];
        corpus_recipe_names(names, sizeof names);
        for (char *tok = strtok(names, " "); tok; tok = strtok(NULL, " ")) {
            Corpus c;
            Status ignore;
            if (corpus_open(&c, tok, dataset_data_dir(), &ignore) == 0) {
                size_t l = strlen(corpora);
                snprintf(corpora + l, sizeof corpora - l, "%s%s", l ? "," : "", tok);
            }
        }
    }
    if (opt(opts, n, "tokenizer", NULL)) {
        snprintf(toks, sizeof toks, "%s", opt(opts, n, "tokenizer", ""));
    } else { /* bytes and every tokenizer under data/tokenizers */
        char dir[600];
        snprintf(dir, sizeof dir, "%s/tokenizers", dataset_data_dir());
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t l = strlen(e->d_name), tl = strlen(toks);
            if (l > 4 && !strcmp(e->d_name + l - 4, ".tok"))
                snprintf(toks + tl, sizeof toks - tl, ",%.*s", (int)(l - 4), e->d_name);
        }
        if (d) closedir(d);
    }
    if (!corpora[0]) return fputs("algoprog: error: no corpus built (algoprog corpus build austen)\n", stderr), 2;
    printf("bytes per token on each corpus's held-out text (higher = more compression)\n%-24s", "tokenizer");
    char clist[1024];
    snprintf(clist, sizeof clist, "%s", corpora);
    for (char *c = strtok(clist, ","); c; c = strtok(NULL, ",")) printf(" %12s", c);
    printf("\n");
    char tlist[2048];
    snprintf(tlist, sizeof tlist, "%s", toks);
    char *tsave, *csave;
    int rc = 0;
    for (char *tn = strtok_r(tlist, ",", &tsave); tn && !rc; tn = strtok_r(NULL, ",", &tsave)) {
        Tokenizer t;
        if (load_tokenizer(&t, tn, &st)) return cli_fail(&st);
        printf("%-24s", t.name);
        snprintf(clist, sizeof clist, "%s", corpora);
        for (char *cn = strtok_r(clist, ",", &csave); cn && !rc; cn = strtok_r(NULL, ",", &csave)) {
            Corpus c;
            char path[700], *text;
            size_t len;
            rc = corpus_open(&c, cn, dataset_data_dir(), &st);
            snprintf(path, sizeof path, "%s/val.txt", c.dir);
            if (!rc) rc = file_read_all(path, &text, &len, (size_t)1 << 36, &st);
            if (rc) break;
            TokenList ids = {0};
            rc = tokenizer_encode_parallel(&t, (const unsigned char *)text, len, &ids, &st);
            uint64_t bytes = 0;
            for (size_t i = 0; i < ids.n; i++) bytes += tokenizer_byte_count(&t, (int)ids.ids[i]);
            if (!rc) printf(" %12.3f", ids.n ? (double)bytes / (double)ids.n : 0.0);
            fflush(stdout);
            tokenlist_free(&ids);
            free(text);
        }
        printf("\n");
        tokenizer_free(&t);
    }
    return rc ? cli_fail(&st) : 0;
}

/* `tokenize import tiktoken:NAME`: the rank file from the npm package `tiktoken`, installed under
 * DATA/npm when missing (npm is the only way this machine reaches it). */
static int tokenize_import(int argc, char **argv) {
    Status st = {0};
    if (argc < 1 || strncmp(argv[0], "tiktoken:", 9))
        return fputs("usage: algoprog tokenize import tiktoken:NAME [out=FILE.tok]\n"
                     "       NAME: gpt2, r50k_base, p50k_base, p50k_edit, cl100k_base, o200k_base\n",
                     stderr),
               2;
    const char *name = argv[0] + 9;
    if (!tiktoken_known(name)) {
        fprintf(stderr, "algoprog: error: unknown tiktoken encoding '%s' (gpt2, r50k_base, p50k_base, p50k_edit, "
                        "cl100k_base, o200k_base)\n", name);
        return 2;
    }
    static const char *const allowed[] = {"out", NULL};
    Opt opts[2];
    int n;
    if (argc - 1 > 2 || parse_opts(argc - 1, argv + 1, allowed, opts, &n, &st)) return cli_fail(&st);
    const char *data = dataset_data_dir();
    char prefix[700], json[900], out[900];
    snprintf(prefix, sizeof prefix, "%s/npm", data);
    snprintf(json, sizeof json, "%s/node_modules/tiktoken/encoders/%s.json", prefix, name);
    if (!file_exists(json)) {
        if (system("command -v npm >/dev/null 2>&1") != 0) {
            fprintf(stderr, "algoprog: error: %s is missing and npm is not installed: `apt install npm`, or put the npm "
                            "package tiktoken under %s/node_modules/\n", json, prefix);
            return 1;
        }
        if (dir_create(prefix, &st)) return cli_fail(&st);
        char cmd[1600];
        snprintf(cmd, sizeof cmd, "npm install --prefix '%s' --no-audit --no-fund --silent tiktoken", prefix);
        fprintf(stderr, "tokenize import: installing the npm package tiktoken: %s\n", cmd);
        if (system(cmd) != 0 || !file_exists(json)) {
            fprintf(stderr, "algoprog: error: `%s` did not provide %s\n", cmd, json);
            return 1;
        }
    }
    snprintf(out, sizeof out, "%s/tokenizers/%s.tok", data, name);
    const char *dest = opt(opts, n, "out", out);
    if (!opt(opts, n, "out", NULL)) {
        char dir[800];
        snprintf(dir, sizeof dir, "%s/tokenizers", data);
        if (dir_create(dir, &st)) return cli_fail(&st);
    }
    Tokenizer t;
    double t0 = time_now();
    if (tiktoken_import(&t, json, name, &st)) return cli_fail(&st);
    int rc = tokenizer_save(&t, dest, &st), specials = 0, reserved = 0;
    for (int i = 0; i < t.n_tokens; i++)
        if (t.special[i]) specials++, reserved += !strncmp(t.special_names[i], "<|reserved_", 11);
    if (!rc)
        printf("tiktoken:%s -> %s: %d ids (%d ordinary tokens, %d specials, %d reserved ids), pattern %.60s%s (%.1f s)\n",
               name, dest, t.n_tokens, t.n_tokens - specials, specials - reserved, reserved, t.pattern,
               strlen(t.pattern) > 60 ? "..." : "", time_now() - t0);
    tokenizer_free(&t);
    return rc ? cli_fail(&st) : 0;
}

const char *const cli_usage_tokenize =
    "usage: algoprog tokenize train CORPUS|FILE vocab=N [out=FILE.tok] [name=NAME]\n"
    "       algoprog tokenize encode FILE tokenizer=TOK out=SHARD\n"
    "       algoprog tokenize decode SHARD tokenizer=TOK out=FILE\n"
    "       algoprog tokenize stats [corpus=A,B] [tokenizer=bytes,T2]\n"
    "       algoprog tokenize import tiktoken:NAME [out=FILE.tok]   gpt2, cl100k_base, o200k_base...\n";

int cmd_tokenize(int argc, char **argv) {
    const char *usage = cli_usage_tokenize;
    if (argc < 1) return fputs(usage, stderr), 2;
    parallel_init(0);
    if (!strcmp(argv[0], "train")) return tokenize_train(argc - 1, argv + 1);
    if (!strcmp(argv[0], "encode")) return tokenize_encode(argc - 1, argv + 1);
    if (!strcmp(argv[0], "decode")) return tokenize_decode(argc - 1, argv + 1);
    if (!strcmp(argv[0], "stats")) return tokenize_stats(argc - 1, argv + 1);
    if (!strcmp(argv[0], "import")) return tokenize_import(argc - 1, argv + 1);
    return fputs(usage, stderr), 2;
}
