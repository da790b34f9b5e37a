/* json.h - the one JSON reader and writer every module uses.
 *
 * Reader: json_parse builds a small tree (RFC 8259: objects, arrays, strings with every escape
 * including \u surrogate pairs, numbers, true/false/null) from a buffer, with errors naming the
 * line and column. Lookups never fail loudly: json_get on a missing key, or json_number on a
 * string, return NULL or the caller's fallback, so callers decide what "absent" means.
 * Writer: JsonWriter appends to a StrBuf with commas, ": " and escaping handled, in the layout
 * our files already use ({"a": 1, "b": "x"}); numbers take a printf format so files keep their
 * precision, and NaN or infinity become null (JSON has no such numbers).
 * Not a streaming parser and not for untrusted multi-gigabyte input: files we read are at most
 * a few megabytes (metrics lines, configs, manifests, rank tables' metadata).
 * Strict RFC 8259 except one leniency: bytes >= 0x80 in strings pass through unchecked, so paths
 * in any encoding survive a write and a read. Lone surrogates (\uD800 alone) and numbers beyond
 * the range of a double are rejected. */
#ifndef AP_JSON_H
#define AP_JSON_H

#include "core/status.h"
#include "core/strbuf.h"

#include <stddef.h>

typedef enum { JSON_NULL = 0, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
struct JsonValue {
    JsonType type;
    int boolean;        /* JSON_BOOL */
    double number;      /* JSON_NUMBER */
    char *string;       /* JSON_STRING: decoded UTF-8, NUL-terminated (may contain \0 via \u0000: use len);
                           JSON_NUMBER: the number's text as written (exact 64-bit integers, e.g. seeds) */
    size_t len;         /* bytes in string */
    char *key;          /* the member's key when this value sits in an object, else NULL */
    JsonValue *child;   /* JSON_ARRAY / JSON_OBJECT: first element or member */
    JsonValue *next;    /* next sibling */
    int n;              /* JSON_ARRAY / JSON_OBJECT: number of children */
};

typedef struct {
    JsonValue *root;
    void *mem; /* every node and string lives here; freed by json_free */
} JsonDoc;

/* Parses text[0..len) (one value, surrounding whitespace allowed; text needs no NUL). `what` names
 * the input in errors ("metrics.jsonl line 3: line 1, column 17: expected ',' or '}', got 'x'").
 * On failure doc is empty (json_free is then a no-op) and st says line, column and why. */
int json_parse(JsonDoc *doc, const char *text, size_t len, const char *what, Status *st);
void json_free(JsonDoc *doc);

/* Member `key` of an object (the last one if repeated), or NULL (also when obj is not an object). */
const JsonValue *json_get(const JsonValue *obj, const char *key);
/* Element i of an array, or NULL. Walks from the first: loop over child/next for long arrays. */
const JsonValue *json_at(const JsonValue *arr, int i);
/* Typed reads with a fallback for absent values, nulls and other types. */
double json_number(const JsonValue *v, double fallback);
const char *json_string(const JsonValue *v, const char *fallback);
int json_bool(const JsonValue *v, int fallback);
/* Shorthands: json_number(json_get(obj, key), fallback), and so on. */
double json_get_number(const JsonValue *obj, const char *key, double fallback);
const char *json_get_string(const JsonValue *obj, const char *key, const char *fallback);

/* Deepest nesting of arrays and objects the parser accepts and the writer tracks. */
#define JSON_MAX_DEPTH 32

/* Misuse (deeper than JSON_MAX_DEPTH, closing what is not open, a key without a value) marks
 * out->failed, the same flag an allocation failure sets: check it once at the end. */

typedef struct {
    StrBuf *out;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written so far at each open level */
    int after_key;             /* a key was written; its value comes next */
} JsonWriter;

void jw_init(JsonWriter *w, StrBuf *out);
void jw_object_begin(JsonWriter *w);
void jw_object_end(JsonWriter *w);
void jw_array_begin(JsonWriter *w);
void jw_array_end(JsonWriter *w);
/* The key of the next member (escaped). */
void jw_key(JsonWriter *w, const char *key);
void jw_string(JsonWriter *w, const char *s); /* NULL writes null */
/* A number with a printf format for one double ("%.17g", "%.9g"); non-finite values write null. */
void jw_number(JsonWriter *w, const char *fmt, double v);
void jw_int(JsonWriter *w, long long v);
void jw_bool(JsonWriter *w, int v);
void jw_null(JsonWriter *w);
/* Text already in JSON form (a nested document we wrote ourselves), inserted as one value. */
void jw_raw(JsonWriter *w, const char *json);
/* Appends s to b with JSON string escaping (no surrounding quotes): \" \\ \n \r \t \b \f, other
 * control bytes as \u00xx; everything else, bytes >= 0x80 included, as is. */
void json_escape(StrBuf *b, const char *s);

#endif
