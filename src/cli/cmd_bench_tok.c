/* cmd_bench_tok.c - `algoprog bench --tokenizers`: encode speed of the imported tiktoken
 * encodings (and any other tokenizer) against tiktoken itself (npm package, WASM, one thread),
 * on the same text, with one thread and with every core. */
#define _DEFAULT_SOURCE /* popen */
#include "cli/cli.h"

#include "core/fileio.h"
#include "core/json.h"
#include "core/parallel.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Best of `runs` encodings of text with `threads` threads, in MB/s; the token count in *n_ids. */
static double encode_rate(const Tokenizer *t, const char *text, size_t len, int threads, size_t *n_ids, Status *st) {
    parallel_init(threads);
    double best = 0.0;
    for (int r = 0; r < 3; r++) {
        TokenList ids = {0};
        double t0 = time_now();
        if (tokenizer_encode_parallel(t, (const unsigned char *)text, len, &ids, st)) return -1.0;
        double dt = time_now() - t0;
        *n_ids = ids.n;
        tokenlist_free(&ids);
        if (len / 1e6 / dt > best) best = len / 1e6 / dt;
    }
    return best;
}

/* tiktoken's MB/s from bench/tiktoken_peer.cjs, or NAN when node or the package is missing. */
static double tiktoken_rate(const char *name, const char *text_path) {
    char pkg[700], cmd[2400], buf[512] = "";
    snprintf(pkg, sizeof pkg, "%s/npm", dataset_data_dir());
    snprintf(cmd, sizeof cmd, "node '%s/bench/tiktoken_peer.cjs' '%s' '%s' '%s' --time 2>/dev/null", ALGOPROG_SOURCE_DIR,
             pkg, name, text_path);
    FILE *p = popen(cmd, "r");
    if (!p) return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    if (pclose(p) != 0) return NAN;
    JsonDoc doc;
    Status ignore;
    if (json_parse(&doc, buf, n, "tiktoken_peer.cjs output", &ignore)) return NAN;
    double rate = json_get_number(doc.root, "mb_per_s", NAN);
    json_free(&doc);
    return rate;
}

int bench_tokenizers(int argc, char **argv) {
    Status st = {0};
    const char *text_path = NULL, *json_path = NULL, *names = "gpt2,cl100k_base,o200k_base";
    for (int i = 0; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--tokenizers")) continue;
        if (!val || (strcmp(argv[i], "--text") && strcmp(argv[i], "--json") && strcmp(argv[i], "--names"))) {
            fprintf(stderr, "algoprog: error: bench --tokenizers takes [--names A,B] [--text FILE] [--json FILE], not '%s'\n",
                    argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--text")) text_path = val;
        else if (!strcmp(argv[i], "--json")) json_path = val;
        else names = val;
        i++;
    }
    /* the text: a corpus's held-out text if one is built (real prose), else the tiktoken fixture */
    static char path[800];
    if (!text_path) {
        const char *corpora[] = {"pd-prose", "austen", "brown", NULL};
        for (int i = 0; corpora[i] && !text_path; i++) {
            snprintf(path, sizeof path, "%s/%s/train.txt", dataset_data_dir(), corpora[i]);
            if (file_exists(path)) text_path = path;
        }
        if (!text_path) text_path = ALGOPROG_SOURCE_DIR "/tests/fixtures/tiktoken/mixed.txt";
    }
    char *text;
    size_t len;
    if (file_read_all(text_path, &text, &len, (size_t)1 << 32, &st)) return cli_fail(&st);
    int cores = parallel_cores();
    printf("tokenizer encode speed on %s (%.1f MB), best of 3; tiktoken = npm tiktoken (WASM) under node, 1 thread\n",
           text_path, len / 1e6);
    printf("%-16s %9s %12s %12s %12s %9s\n", "tokenizer", "bytes/tok", "ours 1T MB/s", "ours MB/s", "tiktoken", "1T ratio");
    StrBuf js = {0};
    JsonWriter w;
    jw_init(&w, &js);
    jw_object_begin(&w);
    jw_key(&w, "text"), jw_string(&w, text_path);
    jw_key(&w, "bytes"), jw_int(&w, (long long)len);
    jw_key(&w, "cores"), jw_int(&w, cores);
    jw_key(&w, "tokenizers"), jw_array_begin(&w);
    char list[512];
    snprintf(list, sizeof list, "%s", names);
    int rc = 0;
    for (char *save, *name = strtok_r(list, ",", &save); name && !rc; name = strtok_r(NULL, ",", &save)) {
        char tpath[700];
        Tokenizer t;
        if (dataset_tokenizer_path(name, tpath, sizeof tpath, &st) || tokenizer_load(&t, tpath, &st)) {
            status_wrap(&st, "bench --tokenizers (import it: algoprog tokenize import tiktoken:%s)", name);
            rc = -1;
            break;
        }
        size_t n_ids = 0;
        double one = encode_rate(&t, text, len, 1, &n_ids, &st);
        double all = one >= 0 ? encode_rate(&t, text, len, cores, &n_ids, &st) : -1;
        tokenizer_free(&t);
        if (one < 0 || all < 0) {
            rc = -1;
            break;
        }
        double tk = tiktoken_rate(name, text_path);
        printf("%-16s %9.3f %12.1f %12.1f %12.1f %8.2fx\n", name, n_ids ? (double)len / n_ids : 0.0, one, all, tk, one / tk);
        jw_object_begin(&w);
        jw_key(&w, "name"), jw_string(&w, name);
        jw_key(&w, "bytes_per_token"), jw_number(&w, "%.4f", n_ids ? (double)len / n_ids : 0.0);
        jw_key(&w, "mb_per_s_1t"), jw_number(&w, "%.2f", one);
        jw_key(&w, "mb_per_s_all"), jw_number(&w, "%.2f", all);
        jw_key(&w, "tiktoken_mb_per_s"), jw_number(&w, "%.2f", isfinite(tk) ? tk : -1.0); /* -1: not measured */
        jw_object_end(&w);
    }
    free(text);
    jw_array_end(&w);
    jw_object_end(&w);
    sb_putc(&js, '\n');
    if (!rc && js.failed) rc = status_fail(&st, AP_ENOMEM, "out of memory");
    if (!rc && json_path) rc = file_write_atomic(json_path, js.s, js.len, &st);
    sb_free(&js);
    return rc ? cli_fail(&st) : 0;
}
