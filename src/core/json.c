/* json.c - the JSON reader and writer (see json.h). */
#include "core/json.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- arena */

/* Blocks of one document, newest first; doc->mem points at the newest. */
typedef struct Block Block;
struct Block {
    Block *next;
    size_t cap, used;
    max_align_t data[]; /* max_align_t: the first allocation of a block is aligned for anything */
};

#define ARENA_MIN_BLOCK ((size_t)1024)
#define ARENA_MAX_BLOCK ((size_t)16 << 20) /* growth stops doubling here; bigger requests get their own block */

static void arena_free(Block *b) {
    while (b) {
        Block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---------------------------------------------------------------- parser */

typedef struct {
    const char *s;
    size_t len, pos;
    const char *what;
    Status *st;
    Block *mem;
    size_t first_block;
} Parser;

/* 1-based line and byte column of s[pos]. */
static void line_col(const Parser *p, size_t pos, int *line, int *col) {
    size_t ln = 1, bol = 0;
    for (size_t i = 0; i < pos && i < p->len; i++)
        if (p->s[i] == '\n') ln++, bol = i + 1;
    *line = ln > INT_MAX ? INT_MAX : (int)ln;
    *col = pos - bol + 1 > INT_MAX ? INT_MAX : (int)(pos - bol + 1);
}

__attribute__((format(printf, 3, 4))) static int fail_at(Parser *p, size_t pos, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    line_col(p, pos, &line, &col);
    return status_fail(p->st, AP_ECORRUPT, "%s: line %d, column %d: %s", p->what, line, col, msg);
}

/* What sits at pos, for "expected X, got Y". */
static const char *got(const Parser *p, size_t pos, char *buf, size_t size) {
    if (pos >= p->len) return "end of input";
    unsigned char c = (unsigned char)p->s[pos];
    if (c > 0x20 && c < 0x7f) snprintf(buf, size, "'%c'", c);
    else snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static void *alloc(Parser *p, size_t n, size_t align) {
    Block *b = p->mem;
    if (b) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->cap && n <= b->cap - at) {
            b->used = at + n;
            return (char *)b->data + at;
        }
    }
    size_t cap = b ? (b->cap < ARENA_MAX_BLOCK / 2 ? 2 * b->cap : ARENA_MAX_BLOCK) : p->first_block;
    if (cap < n) cap = n;
    Block *nb = cap <= SIZE_MAX - sizeof *nb ? malloc(sizeof *nb + cap) : NULL;
    if (!nb) {
        status_fail(p->st, AP_ENOMEM, "%s: out of memory parsing JSON", p->what);
        return NULL;
    }
    nb->next = b, nb->cap = cap, nb->used = n;
    p->mem = nb;
    return nb->data;
}

static JsonValue *new_value(Parser *p) {
    JsonValue *v = alloc(p, sizeof *v, _Alignof(JsonValue));
    if (v) memset(v, 0, sizeof *v);
    return v;
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Four hex digits at s[at..at+4) if they lie before end; -1 otherwise. */
static long hex4(const Parser *p, size_t at, size_t end) {
    if (at + 4 > end) return -1;
    long x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_digit(p->s[at + (size_t)i]);
        if (h < 0) return -1;
        x = x * 16 + h;
    }
    return x;
}

static size_t put_utf8(char *o, unsigned long cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string whose opening quote is at p->pos, decoded into the arena. */
static int parse_string(Parser *p, char **out, size_t *out_len) {
    size_t open = p->pos, end = open + 1;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail_at(p, open, "expected a closing '\"' for the string that starts here, got end of input");
    /* escapes never grow: \uXXXX is 6 bytes for at most 3, a surrogate pair 12 for 4 */
    char *buf = alloc(p, end - open, 1), *o = buf;
    if (!buf) return -1;
    size_t i = open + 1;
    while (i < end) {
        unsigned char c = (unsigned char)p->s[i];
        if (c < 0x20)
            return fail_at(p, i, "expected an escape such as \\n or \\u%04x, got the raw control byte 0x%02x in a string",
                           c, c);
        if (c != '\\') {
            *o++ = (char)c, i++;
            continue;
        }
        char e = p->s[i + 1], gb[32];
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            long cp = hex4(p, i + 2, end);
            if (cp < 0) return fail_at(p, i, "expected 4 hex digits after \\u");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(p, i, "expected a high surrogate (\\uD800-\\uDBFF) before the low surrogate \\u%04lX", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = i + 12 <= end && p->s[i + 6] == '\\' && p->s[i + 7] == 'u' ? hex4(p, i + 8, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, i, "expected a low surrogate (\\uDC00-\\uDFFF) after the high surrogate \\u%04lX", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            o += put_utf8(o, (unsigned long)cp);
            i += 4;
            break;
        }
        default:
            return fail_at(p, i + 1, "expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX) after '\\', got %s",
                           got(p, i + 1, gb, sizeof gb));
        }
        i += 2;
    }
    *o = '\0';
    *out = buf, *out_len = (size_t)(o - buf);
    p->pos = end + 1;
    return 0;
}

static int is_digit(const Parser *p, size_t at) { return at < p->len && p->s[at] >= '0' && p->s[at] <= '9'; }

static int parse_number(Parser *p, JsonValue *v) {
    size_t start = p->pos, i = p->pos;
    char gb[32];
    if (p->s[i] == '-') i++;
    if (!is_digit(p, i)) return fail_at(p, i, "expected a digit after '-', got %s", got(p, i, gb, sizeof gb));
    if (p->s[i] == '0') {
        if (is_digit(p, ++i)) return fail_at(p, i - 1, "expected no leading zero in a number (0, 0.5, 10; not 01)");
    } else {
        while (is_digit(p, i)) i++;
    }
    if (i < p->len && p->s[i] == '.') {
        if (!is_digit(p, ++i)) return fail_at(p, i, "expected a digit after '.', got %s", got(p, i, gb, sizeof gb));
        while (is_digit(p, i)) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (!is_digit(p, i)) return fail_at(p, i, "expected a digit in the exponent, got %s", got(p, i, gb, sizeof gb));
        while (is_digit(p, i)) i++;
    }
    /* the text as written, kept for exact integers beyond 2^53 (64-bit seeds) */
    size_t n = i - start;
    char *text = alloc(p, n + 1, 1);
    if (!text) return -1;
    memcpy(text, p->s + start, n);
    text[n] = '\0';
    double x = strtod(text, NULL);
    if (!isfinite(x)) return fail_at(p, start, "expected a number within the range of a double, got %.40s", text);
    v->type = JSON_NUMBER, v->number = x, v->string = text, v->len = n;
    p->pos = i;
    return 0;
}

static int parse_value(Parser *p, JsonValue *v, int depth);

/* The members or elements of the container whose bracket is at p->pos. */
static int parse_container(Parser *p, JsonValue *v, int depth) {
    int is_obj = p->s[p->pos] == '{';
    char close = is_obj ? '}' : ']', gb[32];
    if (depth >= JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "expected at most %d nested arrays and objects", JSON_MAX_DEPTH);
    v->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    JsonValue **tail = &v->child;
    for (;;) {
        JsonValue *c = new_value(p);
        if (!c) return -1;
        if (is_obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                if (v->n && p->pos < p->len && p->s[p->pos] == '}')
                    return fail_at(p, p->pos, "expected a member name after ',' (JSON has no trailing commas), got '}'");
                return fail_at(p, p->pos, "expected a member name (a string), got %s", got(p, p->pos, gb, sizeof gb));
            }
            size_t klen;
            if (parse_string(p, &c->key, &klen)) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail_at(p, p->pos, "expected ':' after the member name \"%.60s\", got %s", c->key,
                               got(p, p->pos, gb, sizeof gb));
            p->pos++;
            skip_ws(p);
        } else if (v->n && p->pos < p->len && p->s[p->pos] == ']') {
            return fail_at(p, p->pos, "expected a value after ',' (JSON has no trailing commas), got ']'");
        }
        if (parse_value(p, c, depth + 1)) return -1;
        *tail = c, tail = &c->next, v->n++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return fail_at(p, p->pos, "expected ',' or '%c' after %s, got %s", close, is_obj ? "a member" : "an element",
                       got(p, p->pos, gb, sizeof gb));
    }
}

static int literal(Parser *p, const char *word) {
    size_t n = strlen(word);
    return p->len - p->pos >= n && !memcmp(p->s + p->pos, word, n) ? (p->pos += n, 1) : 0;
}

/* One value at p->pos (whitespace already skipped) into v. */
static int parse_value(Parser *p, JsonValue *v, int depth) {
    char gb[32];
    if (p->pos >= p->len) return fail_at(p, p->pos, "expected a value, got end of input");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[': return parse_container(p, v, depth);
    case '"': v->type = JSON_STRING; return parse_string(p, &v->string, &v->len);
    case 't':
    case 'f':
        if (literal(p, c == 't' ? "true" : "false")) return v->type = JSON_BOOL, v->boolean = c == 't', 0;
        return fail_at(p, p->pos, "expected '%s'", c == 't' ? "true" : "false");
    case 'n':
        if (literal(p, "null")) return v->type = JSON_NULL, 0;
        return fail_at(p, p->pos, "expected 'null'");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
        return fail_at(p, p->pos, "expected a value (object, array, string, number, true, false or null), got %s",
                       got(p, p->pos, gb, sizeof gb));
    }
}

int json_parse(JsonDoc *doc, const char *text, size_t len, const char *what, Status *st) {
    doc->root = NULL, doc->mem = NULL;
    Parser p = {text, len, 0, what ? what : "JSON", st, NULL, 0};
    /* nodes take a few times the text they come from; later blocks double */
    p.first_block = len < ARENA_MAX_BLOCK / 4 ? 4 * len + ARENA_MIN_BLOCK : ARENA_MAX_BLOCK;
    char gb[32];
    JsonValue *root = new_value(&p);
    skip_ws(&p);
    int rc = root ? parse_value(&p, root, 0) : -1;
    if (!rc) {
        skip_ws(&p);
        if (p.pos < len) rc = fail_at(&p, p.pos, "expected the end of input after the value, got %s", got(&p, p.pos, gb, sizeof gb));
    }
    if (rc) {
        arena_free(p.mem);
        return -1;
    }
    doc->root = root, doc->mem = p.mem;
    return 0;
}

void json_free(JsonDoc *doc) {
    arena_free(doc->mem);
    doc->root = NULL, doc->mem = NULL;
}

/* ---------------------------------------------------------------- lookups */

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    const JsonValue *found = NULL;
    for (const JsonValue *c = obj->child; c; c = c->next)
        if (!strcmp(c->key, key)) found = c;
    return found;
}

const JsonValue *json_at(const JsonValue *arr, int i) {
    if (!arr || arr->type != JSON_ARRAY || i < 0) return NULL;
    const JsonValue *c = arr->child;
    while (c && i--) c = c->next;
    return c;
}

double json_number(const JsonValue *v, double fallback) { return v && v->type == JSON_NUMBER ? v->number : fallback; }

const char *json_string(const JsonValue *v, const char *fallback) {
    return v && v->type == JSON_STRING ? v->string : fallback;
}

int json_bool(const JsonValue *v, int fallback) { return v && v->type == JSON_BOOL ? v->boolean : fallback; }

double json_get_number(const JsonValue *obj, const char *key, double fallback) {
    return json_number(json_get(obj, key), fallback);
}

const char *json_get_string(const JsonValue *obj, const char *key, const char *fallback) {
    return json_string(json_get(obj, key), fallback);
}

/* ---------------------------------------------------------------- writer */

void jw_init(JsonWriter *w, StrBuf *out) {
    memset(w, 0, sizeof *w);
    w->out = out;
}

/* The separator before a value: none after a key, ", " between elements. */
static void before_value(JsonWriter *w) {
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0 && w->count[w->depth - 1]++) sb_putn(w->out, ", ", 2);
}

static void open_level(JsonWriter *w, char c) {
    before_value(w);
    if (w->depth == JSON_MAX_DEPTH) { /* a caller bug: no room to track the level */
        w->out->failed = 1;
        return;
    }
    sb_putc(w->out, c);
    w->count[w->depth++] = 0;
}

static void close_level(JsonWriter *w, char c) {
    if (w->depth == 0 || w->after_key) { /* a caller bug: nothing open, or a key without a value */
        w->out->failed = 1;
        return;
    }
    w->depth--;
    sb_putc(w->out, c);
}

void jw_object_begin(JsonWriter *w) { open_level(w, '{'); }
void jw_object_end(JsonWriter *w) { close_level(w, '}'); }
void jw_array_begin(JsonWriter *w) { open_level(w, '['); }
void jw_array_end(JsonWriter *w) { close_level(w, ']'); }

void jw_key(JsonWriter *w, const char *key) {
    if (w->depth > 0 && w->count[w->depth - 1]++) sb_putn(w->out, ", ", 2);
    sb_putc(w->out, '"');
    json_escape(w->out, key);
    sb_putn(w->out, "\": ", 3);
    w->after_key = 1;
}

void jw_string(JsonWriter *w, const char *s) {
    before_value(w);
    if (!s) {
        sb_putn(w->out, "null", 4);
        return;
    }
    sb_putc(w->out, '"');
    json_escape(w->out, s);
    sb_putc(w->out, '"');
}

void jw_number(JsonWriter *w, const char *fmt, double v) {
    before_value(w);
    if (!isfinite(v)) sb_putn(w->out, "null", 4);
    else sb_printf(w->out, fmt, v);
}

void jw_int(JsonWriter *w, long long v) {
    before_value(w);
    sb_printf(w->out, "%lld", v);
}

void jw_bool(JsonWriter *w, int v) {
    before_value(w);
    if (v) sb_putn(w->out, "true", 4);
    else sb_putn(w->out, "false", 5);
}

void jw_null(JsonWriter *w) {
    before_value(w);
    sb_putn(w->out, "null", 4);
}

void jw_raw(JsonWriter *w, const char *json) {
    before_value(w);
    sb_puts(w->out, json);
}

void json_escape(StrBuf *b, const char *s) {
    const char *run = s; /* bytes not yet copied that need no escape */
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_putn(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"': sb_putn(b, "\\\"", 2); break;
        case '\\': sb_putn(b, "\\\\", 2); break;
        case '\n': sb_putn(b, "\\n", 2); break;
        case '\r': sb_putn(b, "\\r", 2); break;
        case '\t': sb_putn(b, "\\t", 2); break;
        case '\b': sb_putn(b, "\\b", 2); break;
        case '\f': sb_putn(b, "\\f", 2); break;
        default: sb_printf(b, "\\u%04x", c);
        }
    }
    sb_putn(b, run, (size_t)(s - run));
}
