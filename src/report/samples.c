/* samples.c - text from each arm's largest model (see samples.h). */
#include "report/samples.h"

#include "study/worker.h"
#include "train/checkpoint.h"
#include "train/rundir.h"
#include "train/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

/* A byte-level model writes any bytes: the page gets valid UTF-8, invalid bytes and control
 * characters other than newline and tab shown as U+FFFD. */
static char *clean_utf8(const char *in) {
    size_t n = strlen(in);
    char *out = malloc(3 * n + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        int len = utf8_len(p);
        if (len == 1 && *p < 0x20 && *p != '\n' && *p != '\t') len = 0;
        if (len) {
            memcpy(w, p, (size_t)len), w += len, p += len;
        } else {
            memcpy(w, "\xef\xbf\xbd", 3), w += 3, p++;
        }
    }
    *w = '\0';
    return out;
}

/* Generates into a malloc'ed string (the sampler writes to a FILE). */
static char *generate(const char *run_dir, Status *st) {
    char path[1300];
    if (rundir_path(path, sizeof path, run_dir, RUNDIR_CHECKPOINT, st)) return NULL;
    Model *m = calloc(1, sizeof *m);
    Tokenizer tok = {0};
    Config cfg;
    char *text = NULL;
    size_t len = 0;
    if (!m) {
        status_fail(st, AP_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = checkpoint_load_model(m, &cfg, path, st);
    if (!rc) rc = rundir_load_tokenizer(&tok, run_dir, st);
    FILE *f = rc ? NULL : open_memstream(&text, &len);
    if (!rc && !f) rc = status_fail(st, AP_ENOMEM, "out of memory");
    if (!rc) {
        SampleParams sp = {SAMPLE_TEMPERATURE, 0, 1.0};
        fputs(SAMPLE_PROMPT, f);
        rc = sample_generate(m, &tok, SAMPLE_PROMPT, SAMPLE_TOKENS, &sp, 1, f, st);
    }
    if (f) fclose(f);
    tokenizer_free(&tok);
    model_free(m);
    free(m);
    if (rc) {
        free(text);
        return NULL;
    }
    char *clean = clean_utf8(text);
    free(text);
    if (!clean) status_fail(st, AP_ENOMEM, "out of memory");
    return clean;
}

void samples_generate(const Results *r, const char *dir, ArmSample *samples) {
    for (int a = 0; a < r->n_arms; a++) {
        ArmSample *s = &samples[a];
        memset(s, 0, sizeof *s);
        s->arm = a;
        const RunRow *kept = NULL;
        for (int i = 0; i < r->n_runs; i++) {
            const RunRow *x = &r->runs[i];
            if (x->arm_id == r->arms[a].row.id && x->keep && x->status == RUN_DONE) kept = x;
        }
        if (!kept) {
            snprintf(s->why, sizeof s->why, "no finished run kept its checkpoint");
            continue;
        }
        /* a run that shares its twin's result has no directory of its own: sample the twin */
        int id = kept->copied_from ? kept->copied_from : kept->id;
        const char *arm = kept->arm;
        for (int i = 0; i < r->n_runs; i++)
            if (r->runs[i].id == id) arm = r->runs[i].arm;
        char run_dir[1100];
        Status st = {0};
        s->run_id = id;
        if (worker_run_dir(run_dir, sizeof run_dir, dir, id, arm, &st) == 0) s->text = generate(run_dir, &st);
        if (!s->text) snprintf(s->why, sizeof s->why, "%.250s", st.msg);
    }
}

void samples_free(ArmSample *samples, int n) {
    for (int i = 0; i < n; i++) free(samples[i].text);
}
