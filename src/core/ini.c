/* ini.c - strict INI reader (see ini.h). */
#include "core/ini.h"

#include "core/fileio.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    *e = '\0';
    return s;
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.' || *s == ' '))
            return 0;
    return 1;
}

static int add_entry(IniFile *ini, const char *section, const char *key, const char *value, int line,
                     Status *st) {
    if (ini->n == ini->cap) {
        int cap = ini->cap ? ini->cap * 2 : 32;
        IniEntry *e = realloc(ini->entries, (size_t)cap * sizeof *e);
        if (!e) return status_fail(st, AP_ENOMEM, "out of memory reading %s", ini->path);
        ini->entries = e;
        ini->cap = cap;
    }
    IniEntry *e = &ini->entries[ini->n];
    memset(e, 0, sizeof *e);
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = strdup(value);
    if (!e->value) return status_fail(st, AP_ENOMEM, "out of memory reading %s", ini->path);
    e->line = line;
    ini->n++;
    return 0;
}

int ini_parse(IniFile *ini, const char *text, size_t len, const char *name, Status *st) {
    memset(ini, 0, sizeof *ini);
    snprintf(ini->path, sizeof ini->path, "%s", name);
    char section[INI_MAX_NAME] = "";
    char buf[INI_MAX_LINE + 2];
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        size_t start = pos;
        while (pos < len && text[pos] != '\n') {
            if (text[pos] == '\0') {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: NUL byte in text (not an INI file?)", name, line);
            }
            pos++;
        }
        size_t n = pos - start;
        if (pos < len) pos++; /* skip '\n' */
        if (n > INI_MAX_LINE) {
            ini_free(ini);
            return status_fail(st, AP_EINVAL, "%s:%d: line longer than %d bytes", name, line, INI_MAX_LINE);
        }
        memcpy(buf, text + start, n);
        buf[n] = '\0';
        char *s = trim(buf);
        if (*s == '\0' || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: section header without ']'", name, line);
            }
            *close = '\0';
            char *rest = trim(close + 1);
            if (*rest && *rest != '#' && *rest != ';') {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: text after section header", name, line);
            }
            char *sec = trim(s + 1);
            if (!valid_name(sec) || strlen(sec) >= INI_MAX_NAME) {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: bad section name '%s'", name, line, sec);
            }
            snprintf(section, sizeof section, "%s", sec);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            ini_free(ini);
            return status_fail(st, AP_EINVAL, "%s:%d: expected 'key = value', got '%.60s'", name, line, s);
        }
        *eq = '\0';
        char *key = trim(s);
        char *val = trim(eq + 1);
        if (!valid_name(key) || strlen(key) >= INI_MAX_NAME) {
            ini_free(ini);
            return status_fail(st, AP_EINVAL, "%s:%d: bad key '%.60s'", name, line, key);
        }
        if (*val == '"') {
            char *endq = strchr(val + 1, '"');
            if (!endq) {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: unterminated quoted value", name, line);
            }
            char *rest = trim(endq + 1);
            if (*rest && *rest != '#' && *rest != ';') {
                ini_free(ini);
                return status_fail(st, AP_EINVAL, "%s:%d: text after quoted value", name, line);
            }
            *endq = '\0';
            val++;
        } else {
            /* An inline comment starts at whitespace followed by '#' or ';'. */
            for (char *c = val; *c; c++) {
                if ((*c == '#' || *c == ';') && c > val && (c[-1] == ' ' || c[-1] == '\t')) {
                    *c = '\0';
                    val = trim(val);
                    break;
                }
            }
        }
        if (add_entry(ini, section, key, val, line, st)) {
            ini_free(ini);
            return -1;
        }
    }
    return 0;
}

int ini_load(IniFile *ini, const char *path, Status *st) {
    size_t len;
    char *text = NULL;
    if (file_read_all(path, &text, &len, (size_t)1 << 24, st)) return -1;
    int rc = ini_parse(ini, text, len, path, st);
    free(text);
    return rc;
}

void ini_free(IniFile *ini) {
    for (int i = 0; i < ini->n; i++) free(ini->entries[i].value);
    free(ini->entries);
    ini->entries = NULL;
    ini->n = ini->cap = 0;
}
