/* status.c - error reporting (see status.h). */
#include "core/status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int status_fail(Status *st, StatusCode code, const char *fmt, ...) {
    if (!st) return -1;
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int status_errno(Status *st, int err, const char *fmt, ...) {
    if (!st) return -1;
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    StatusCode code = AP_EIO;
    if (err == ENOSPC || err == EFBIG || err == EDQUOT) code = AP_ENOSPC;
    if (err == ENOMEM) code = AP_ENOMEM;
    st->code = code;
    snprintf(st->msg, sizeof st->msg, "%s: %s", what, strerror(err));
    return -1;
}

int status_wrap(Status *st, const char *fmt, ...) {
    if (!st) return -1;
    char old[sizeof st->msg];
    memcpy(old, st->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->msg, sizeof st->msg, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof st->msg - 3) return -1;
    size_t len = (size_t)n;
    memcpy(st->msg + len, ": ", 2);
    len += 2;
    size_t room = sizeof st->msg - 1 - len, olen = strlen(old);
    if (olen > room) olen = room;
    memcpy(st->msg + len, old, olen);
    st->msg[len + olen] = '\0';
    return -1;
}

void status_clear(Status *st) {
    if (!st) return;
    st->code = AP_OK;
    st->msg[0] = '\0';
}

const char *status_code_name(StatusCode code) {
    switch (code) {
    case AP_OK: return "ok";
    case AP_EINVAL: return "invalid input";
    case AP_EIO: return "I/O error";
    case AP_ENOSPC: return "no space left";
    case AP_ENOMEM: return "out of memory";
    case AP_ECORRUPT: return "corrupt file";
    case AP_ENUMERIC: return "numerical error";
    case AP_EINTERNAL: return "internal error";
    case AP_EINTERRUPTED: return "interrupted";
    }
    return "unknown";
}
