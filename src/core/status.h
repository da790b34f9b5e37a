/* status.h - error reporting for library functions.
 *
 * Library functions that can fail on bad input or on the environment (files, memory, disk)
 * return 0 on success and -1 on failure, filling a Status with a code and a message that
 * names what was wrong and where. Only src/cli turns a Status into an exit code.
 * assert()/abort() are reserved for our own bugs (broken invariants), never for input. */
#ifndef AP_STATUS_H
#define AP_STATUS_H

#include <stddef.h>

typedef enum {
    AP_OK = 0,
    AP_EINVAL,   /* bad argument, config key or value */
    AP_EIO,      /* file system error */
    AP_ENOSPC,   /* disk full (or file size limit) */
    AP_ENOMEM,   /* allocation failed */
    AP_ECORRUPT, /* malformed, truncated or foreign file; checksum mismatch */
    AP_ENUMERIC, /* NaN/Inf during training */
    AP_EINTERNAL,
    AP_EINTERRUPTED /* stopped on request (SIGINT/SIGTERM): state saved, the same command continues */
} StatusCode;

typedef struct {
    StatusCode code;
    char msg[1024];
} Status;

/* Sets code and message; returns -1 so callers can `return status_fail(...)`. */
int status_fail(Status *st, StatusCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails with a message built from errno (AP_ENOSPC for ENOSPC/EFBIG/EDQUOT, else AP_EIO). */
int status_errno(Status *st, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends context to an existing message: "while loading X: <old message>". */
int status_wrap(Status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void status_clear(Status *st);
const char *status_code_name(StatusCode code);

#endif
