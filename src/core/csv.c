/* csv.c - CSV records (see csv.h). */
#include "core/csv.h"

/* Splits one CSV record (RFC 4180 quotes) into fields; returns the count or -1. *lines grows by the
 * line breaks passed (blank lines and breaks inside quotes included). */
int csv_record(char **cursor, char **fields, int max, int *lines) {
    char *p = *cursor, *w = p;
    int n = 0;
    if (!*p) return 0;
    fields[n++] = w;
    int quoted = 0;
    while (*p) {
        if (quoted) {
            if (*p == '"' && p[1] == '"') *w++ = '"', p += 2;
            else if (*p == '"') quoted = 0, p++;
            else *lines += *p == '\n', *w++ = *p++;
        } else if (*p == '"') {
            quoted = 1, p++;
        } else if (*p == ',') {
            *w++ = '\0', p++;
            if (n == max) return -1;
            fields[n++] = w;
        } else if (*p == '\n' || *p == '\r') {
            while (*p == '\r' || *p == '\n') *lines += *p++ == '\n';
            break;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    *cursor = p;
    return quoted ? -1 : n;
}
