/* corpus.c - build, split and open corpora (see corpus.h). */
#include "data/corpus.h"

#include "core/fileio.h"
#include "core/hashmap.h"
#include "core/ini.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "data/tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *corpus_recipe_dir(void) {
    const char *env = getenv("ALGOPROG_CORPORA");
    return env && env[0] ? env : ALGOPROG_SOURCE_DIR "/scripts/corpora";
}

void corpus_recipe_names(char *buf, size_t size) {
    buf[0] = '\0';
    DIR *d = opendir(corpus_recipe_dir());
    if (!d) return;
    char names[64][64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (len > 3 && len < 60 && !strcmp(e->d_name + len - 3, ".sh") && strcmp(e->d_name, "lib.sh")) {
            memcpy(names[n], e->d_name, len - 3);
            names[n++][len - 3] = '\0';
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of names */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[64];
            memcpy(tmp, names[j], 64), memcpy(names[j], names[j - 1], 64), memcpy(names[j - 1], tmp, 64);
        }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? " " : "", names[i]);
    }
}

static int buf_append(Buffer *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Where to cut a long document: the last blank line within the limit, else the last newline,
 * else the limit itself (never inside a UTF-8 sequence). */
static size_t cut_point(const unsigned char *p, size_t n) {
    size_t lim = n < CORPUS_MAX_DOC ? n : CORPUS_MAX_DOC;
    if (n <= CORPUS_MAX_DOC) return n;
    for (size_t i = lim; i > lim / 2; i--)
        if (p[i - 1] == '\n' && i >= 2 && p[i - 2] == '\n') return i;
    for (size_t i = lim; i > lim / 2; i--)
        if (p[i - 1] == '\n') return i;
    size_t i = lim;
    while (i > 1 && (p[i] & 0xC0) == 0x80) i--;
    return i;
}

int corpus_split(const unsigned char *text, size_t len, double val_frac, Buffer out[2], uint64_t docs[2],
                 Status *st) {
    memset(out, 0, 2 * sizeof *out);
    docs[0] = docs[1] = 0;
    uint64_t threshold = (uint64_t)(val_frac * 1e6);
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && !(text[end] == 0x1e && end + 1 < len && text[end + 1] == '\n')) end++;
        size_t next = end < len ? end + TOK_DOC_SEPARATOR_LEN : len;
        /* one source document, possibly cut into pieces of at most CORPUS_MAX_DOC bytes */
        while (pos < end) {
            size_t cut = pos + cut_point(text + pos, end - pos);
            int side = hash_bytes(text + pos, cut - pos, 0x5eed) % 1000000 < threshold;
            if (buf_append(&out[side], text + pos, cut - pos) ||
                buf_append(&out[side], TOK_DOC_SEPARATOR, TOK_DOC_SEPARATOR_LEN)) {
                free(out[0].data), free(out[1].data);
                return status_fail(st, AP_ENOMEM, "out of memory splitting the corpus");
            }
            docs[side]++;
            pos = cut;
        }
        pos = next;
    }
    return 0;
}

uint64_t utf8_invalid_bytes(const unsigned char *p, size_t n) {
    uint64_t bad = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0 || i + k > n || (k >= 2 && c < 0xC2) || (c == 0xE0 && k == 3 && i + 1 < n && p[i + 1] < 0xA0) ||
            (c == 0xF0 && k == 4 && i + 1 < n && p[i + 1] < 0x90) || c > 0xF4) {
            bad++, i++;
            continue;
        }
        size_t j = 1;
        while (j < k && (p[i + j] & 0xC0) == 0x80) j++;
        if (j < k) {
            bad++, i++;
            continue;
        }
        i += k;
    }
    return bad;
}

/* [{"package": "pkg", "version": "1.2"}, ...] of the recipe's packages, as dpkg reports them now. */
static void package_versions(const char *packages, StrBuf *out) {
    char list[1024];
    snprintf(list, sizeof list, "%s", packages);
    JsonWriter w;
    jw_init(&w, out);
    jw_array_begin(&w);
    for (char *tok = strtok(list, " "); tok; tok = strtok(NULL, " ")) {
        char version[128] = "";
        if (strncmp(tok, "npm:", 4)) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Version}' '%s' 2>/dev/null", tok);
            FILE *p = popen(cmd, "r");
            if (p) {
                if (!fgets(version, sizeof version, p)) version[0] = '\0';
                pclose(p);
            }
        }
        jw_object_begin(&w);
        jw_key(&w, "package"), jw_string(&w, tok);
        jw_key(&w, "version"), jw_string(&w, version[0] ? version : "?");
        jw_object_end(&w);
    }
    jw_array_end(&w);
}

/* manifest.json, one member a line for people reading it; corpus_open parses it back. */
static int write_manifest(const Corpus *c, const char *recipe_ini, uint64_t invalid, Status *st) {
    IniFile ini;
    Status ist;
    StrBuf desc = {0}, licence = {0}, sources = {0}, text = {0};
    char packages[1024] = "";
    if (ini_load(&ini, recipe_ini, &ist) == 0) {
        for (int i = 0; i < ini.n; i++) {
            const char *k = ini.entries[i].key, *v = ini.entries[i].value;
            if (!strcmp(k, "description")) sb_free(&desc), json_escape(&desc, v);
            if (!strcmp(k, "licence")) sb_free(&licence), json_escape(&licence, v);
            if (!strcmp(k, "packages")) snprintf(packages, sizeof packages, "%s", v);
        }
        ini_free(&ini);
    }
    package_versions(packages, &sources);
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    /* the name needs no escaping: corpus_build allows [a-z0-9_-] only */
    sb_printf(&text,
              "{\n  \"name\": \"%s\",\n  \"description\": \"%s\",\n  \"licence\": \"%s\",\n"
              "  \"sources\": %s,\n  \"built\": \"%s\",\n"
              "  \"split\": \"by document: held out when hash(document) mod 1e6 < val_frac * 1e6\",\n"
              "  \"val_frac\": %.6g,\n  \"docs_train\": %llu,\n  \"docs_val\": %llu,\n"
              "  \"bytes_train\": %llu,\n  \"bytes_val\": %llu,\n  \"sha256_train\": \"%s\",\n"
              "  \"sha256_val\": \"%s\",\n  \"invalid_utf8_bytes\": %llu,\n"
              "  \"files\": {\"train\": \"train.txt\", \"val\": \"val.txt\", \"document_separator\": \"\\u001e\\n\"}\n}\n",
              c->name, desc.s ? desc.s : "", licence.s ? licence.s : "", sources.s ? sources.s : "[]", when, c->val_frac,
              (unsigned long long)c->docs[0], (unsigned long long)c->docs[1], (unsigned long long)c->bytes[0],
              (unsigned long long)c->bytes[1], c->sha256[0], c->sha256[1], (unsigned long long)invalid);
    int rc;
    if (desc.failed || licence.failed || sources.failed || text.failed) {
        rc = status_fail(st, AP_ENOMEM, "out of memory writing the corpus manifest");
    } else {
        char path[600];
        snprintf(path, sizeof path, "%s/manifest.json", c->dir);
        rc = file_write_atomic(path, text.s, text.len, st);
    }
    sb_free(&desc), sb_free(&licence), sb_free(&sources), sb_free(&text);
    return rc;
}

int corpus_build(Corpus *c, const char *name, const char *data_dir, double val_frac, Status *st) {
    memset(c, 0, sizeof *c);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return status_fail(st, AP_EINVAL, "corpus name '%s': use lower-case letters, digits, '-' and '_'", name);
    char script[600], recipe_ini[600], names[512];
    snprintf(script, sizeof script, "%s/%s.sh", corpus_recipe_dir(), name);
    snprintf(recipe_ini, sizeof recipe_ini, "%s/%s.ini", corpus_recipe_dir(), name);
    if (!file_exists(script)) {
        corpus_recipe_names(names, sizeof names);
        return status_fail(st, AP_EINVAL, "no corpus recipe '%s' (available: %s)", name, names[0] ? names : "none");
    }
    if (val_frac <= 0 || val_frac >= 0.5) return status_fail(st, AP_EINVAL, "val_frac=%g: need 0 < val_frac < 0.5", val_frac);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->dir, sizeof c->dir, "%s/%s", data_dir, name);
    c->val_frac = val_frac;
    if (dir_create(c->dir, st)) return -1;
    char raw[700];
    snprintf(raw, sizeof raw, "%s/raw.txt", c->dir);
    pid_t pid = fork();
    if (pid < 0) return status_errno(st, errno, "cannot start the recipe");
    if (pid == 0) {
        execlp("bash", "bash", script, raw, (char *)NULL);
        _exit(127);
    }
    int wst;
    while (waitpid(pid, &wst, 0) < 0)
        if (errno != EINTR) return status_errno(st, errno, "waiting for the recipe");
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        return status_fail(st, AP_EIO, "corpus recipe %s failed (%s %d); see its messages above", script,
                           WIFEXITED(wst) ? "exit status" : "signal", WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
    char *text;
    size_t len;
    if (file_read_all(raw, &text, &len, (size_t)1 << 34, st)) return -1;
    if (len == 0) {
        free(text);
        return status_fail(st, AP_EINVAL, "corpus recipe '%s' produced no text", name);
    }
    Buffer parts[2];
    int rc = corpus_split((const unsigned char *)text, len, val_frac, parts, c->docs, st);
    uint64_t invalid = rc ? 0 : utf8_invalid_bytes((const unsigned char *)text, len);
    free(text);
    if (rc) return -1;
    if (c->docs[0] == 0 || c->docs[1] == 0) {
        free(parts[0].data), free(parts[1].data);
        return status_fail(st, AP_EINVAL, "corpus '%s' has %llu documents: too few to hold any out", name,
                           (unsigned long long)(c->docs[0] + c->docs[1]));
    }
    static const char *files[2] = {"train.txt", "val.txt"};
    for (int s = 0; s < 2 && !rc; s++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", c->dir, files[s]);
        c->bytes[s] = parts[s].len - c->docs[s] * TOK_DOC_SEPARATOR_LEN;
        sha256_hex(parts[s].data, parts[s].len, c->sha256[s]);
        rc = file_write_atomic(path, parts[s].data, parts[s].len, st);
    }
    free(parts[0].data), free(parts[1].data);
    if (!rc) rc = write_manifest(c, recipe_ini, invalid, st);
    if (!rc) unlink(raw);
    return rc;
}

/* A whole non-negative number of the manifest into *out; -1 when absent or not one. */
static int manifest_u64(const JsonValue *m, const char *key, uint64_t *out) {
    const JsonValue *v = json_get(m, key);
    if (!v || v->type != JSON_NUMBER || v->string[0] == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->string, &end, 10); /* the text: all 64 bits */
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

static int manifest_str(const JsonValue *m, const char *key, char *out, size_t size) {
    const JsonValue *v = json_get(m, key);
    if (!v || v->type != JSON_STRING || v->len >= size || strlen(v->string) != v->len) return -1;
    memcpy(out, v->string, v->len + 1);
    return 0;
}

int corpus_open(Corpus *c, const char *name_or_dir, const char *data_dir, Status *st) {
    memset(c, 0, sizeof *c);
    char manifest[700];
    snprintf(c->dir, sizeof c->dir, "%s", name_or_dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", c->dir);
    if (!file_exists(manifest) && !strchr(name_or_dir, '/')) {
        snprintf(c->dir, sizeof c->dir, "%s/%s", data_dir, name_or_dir);
        snprintf(manifest, sizeof manifest, "%s/manifest.json", c->dir);
    }
    if (!file_exists(manifest))
        return status_fail(st, AP_EINVAL, "no corpus '%s' (no %s); build it with `algoprog corpus build %s`",
                           name_or_dir, manifest, name_or_dir);
    char *text;
    size_t len;
    if (file_read_all(manifest, &text, &len, 1 << 20, st)) return -1;
    JsonDoc doc;
    int rc = json_parse(&doc, text, len, manifest, st);
    free(text);
    if (rc) return -1;
    const JsonValue *m = doc.root;
    const char *bad = m->type != JSON_OBJECT                                              ? "an object"
                      : manifest_str(m, "name", c->name, sizeof c->name)                  ? "\"name\""
                      : manifest_u64(m, "docs_train", &c->docs[0])                        ? "\"docs_train\""
                      : manifest_u64(m, "docs_val", &c->docs[1])                          ? "\"docs_val\""
                      : manifest_u64(m, "bytes_train", &c->bytes[0])                      ? "\"bytes_train\""
                      : manifest_u64(m, "bytes_val", &c->bytes[1])                        ? "\"bytes_val\""
                      : manifest_str(m, "sha256_train", c->sha256[0], sizeof c->sha256[0]) ? "\"sha256_train\""
                      : manifest_str(m, "sha256_val", c->sha256[1], sizeof c->sha256[1])   ? "\"sha256_val\""
                                                                                           : NULL;
    c->val_frac = json_get_number(m, "val_frac", 0);
    const JsonValue *d = json_get(m, "derived");
    c->keep = 1;
    if (d && d->type == JSON_OBJECT) {
        if (manifest_str(d, "source", c->derived_from, sizeof c->derived_from) ||
            manifest_str(d, "score", c->score, sizeof c->score))
            bad = "\"derived\" with \"source\" and \"score\"";
        c->noise = json_get_number(d, "noise", 0);
        c->keep = json_get_number(d, "keep", 1);
    }
    json_free(&doc);
    if (bad) return status_fail(st, AP_ECORRUPT, "corpus manifest %s is incomplete: expected %s", manifest, bad);
    return 0;
}
