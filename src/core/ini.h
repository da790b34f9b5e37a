/* ini.h - a small, strict INI reader.
 *
 * Grammar: `[section]` headers, `key = value` lines, comments starting with '#' or ';' (whole
 * lines, or after whitespace at the end of a value), blank lines. Keys and values are trimmed;
 * a value may be wrapped in double quotes to keep leading/trailing spaces or a '#'.
 * Anything else (a line without '=', an empty key, an unclosed header, a NUL byte, a line over
 * INI_MAX_LINE bytes) is an error naming the file and line. Meaning (which keys exist) is the
 * caller's business: this module only turns text into (section, key, value, line) entries. */
#ifndef AP_INI_H
#define AP_INI_H

#include "core/status.h"

#define INI_MAX_LINE 4096
#define INI_MAX_NAME 64

typedef struct {
    char section[INI_MAX_NAME];
    char key[INI_MAX_NAME];
    char *value; /* owned */
    int line;
} IniEntry;

typedef struct {
    IniEntry *entries;
    int n, cap;
    char path[512]; /* for messages */
} IniFile;

/* Parses text (len bytes, need not be NUL-terminated). `name` is used in error messages. */
int ini_parse(IniFile *ini, const char *text, size_t len, const char *name, Status *st);
/* Reads and parses a file. */
int ini_load(IniFile *ini, const char *path, Status *st);
void ini_free(IniFile *ini);

#endif
