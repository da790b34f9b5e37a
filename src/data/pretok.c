/* pretok.c - PCRE2 pre-tokeniser (see pretok.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/pretok.h"

#include <pcre2.h>
#include <stdlib.h>

struct Pretok {
    pcre2_code *code;
    int jit;
};

struct PretokMatch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *stack;
};

int pretok_compile(Pretok **out, const char *pattern, Status *st) {
    *out = NULL;
    Pretok *p = calloc(1, sizeof *p);
    if (!p) return status_fail(st, AP_ENOMEM, "out of memory compiling the pre-tokeniser");
    int err;
    PCRE2_SIZE off;
    p->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        free(p);
        return status_fail(st, AP_EINVAL, "pre-tokenisation pattern, at offset %zu: %s", (size_t)off, (char *)msg);
    }
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    *out = p;
    return 0;
}

void pretok_free(Pretok *p) {
    if (!p) return;
    pcre2_code_free(p->code);
    free(p);
}

PretokMatch *pretok_match_create(const Pretok *p) {
    PretokMatch *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->md = pcre2_match_data_create_from_pattern(p->code, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    /* long runs of whitespace or letters need more than the default 32 KiB JIT stack */
    m->stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!m->md || !m->mctx || !m->stack) {
        pretok_match_free(m);
        return NULL;
    }
    pcre2_jit_stack_assign(m->mctx, NULL, m->stack);
    return m;
}

void pretok_match_free(PretokMatch *m) {
    if (!m) return;
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->stack);
    free(m);
}

int pretok_split(const Pretok *p, PretokMatch *m, const unsigned char *text, size_t len, pretok_emit_fn emit,
                 void *ctx, Status *st) {
    size_t pos = 0;
    while (pos < len) {
        int rc = p->jit ? pcre2_jit_match(p->code, text, len, pos, 0, m->md, m->mctx)
                        : pcre2_match(p->code, text, len, pos, 0, m->md, m->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            emit(text + pos, len - pos, ctx); /* unmatched tail (invalid UTF-8 or nothing the pattern takes) */
            return 0;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return status_fail(st, AP_EINTERNAL, "pre-tokeniser failed at byte %zu: %s", pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t s = ov[0], e = ov[1];
        if (s > pos) emit(text + pos, s - pos, ctx); /* a gap of bytes the pattern skipped */
        if (e > s) {
            emit(text + s, e - s, ctx);
            pos = e;
        } else { /* an empty match cannot advance: pass one byte through as a gap */
            if (s >= len) return 0;
            emit(text + s, 1, ctx);
            pos = s + 1;
        }
    }
    return 0;
}
