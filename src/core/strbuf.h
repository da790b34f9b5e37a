/* strbuf.h - a growable string for building HTML, SVG, CSV and JSON. Allocation failures are
 * remembered (failed = 1) and reported once at the end instead of checked at every append. */
#ifndef AP_STRBUF_H
#define AP_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} StrBuf;

void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_puts(StrBuf *b, const char *s);
/* Appends n bytes of s (which may contain NULs); the buffer stays NUL-terminated. */
void sb_putn(StrBuf *b, const char *s, size_t n);
void sb_putc(StrBuf *b, char c);
/* Appends text with &, <, >, " escaped for HTML. */
void sb_html(StrBuf *b, const char *s);
/* Appends text as one CSV field: double-quoted, quotes doubled (RFC 4180). */
void sb_csv(StrBuf *b, const char *s);
void sb_free(StrBuf *b);

#endif
