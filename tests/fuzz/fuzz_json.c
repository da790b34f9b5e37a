/* Any bytes through the JSON parser; what parses is written back with the writer, parsed again
 * and must come back equal (strings up to a \u0000: the writer takes C strings), and json_get
 * must find the last member of each key. */
#include "core/json.h"
#include "fuzz.h"

#include <math.h>

static void write_value(JsonWriter *w, const JsonValue *v) {
    switch (v->type) {
    case JSON_NULL: jw_null(w); break;
    case JSON_BOOL: jw_bool(w, v->boolean); break;
    case JSON_NUMBER: jw_number(w, "%.17g", v->number); break;
    case JSON_STRING: jw_string(w, v->string); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (v->type == JSON_ARRAY) jw_array_begin(w);
        else jw_object_begin(w);
        for (const JsonValue *c = v->child; c; c = c->next) {
            if (v->type == JSON_OBJECT) jw_key(w, c->key);
            write_value(w, c);
        }
        if (v->type == JSON_ARRAY) jw_array_end(w);
        else jw_object_end(w);
        break;
    }
}

static int same(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type || (a->key && strcmp(a->key, b->key))) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->number == b->number && !signbit(a->number) == !signbit(b->number);
    case JSON_STRING: return !strcmp(a->string, b->string);
    default: break;
    }
    if (a->n != b->n) return 0;
    int n = 0;
    const JsonValue *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next, n++)
        if (!same(x, y)) return 0;
    return !x && !y && n == a->n;
}

/* json_get returns the last member with the key (checked for the first 64 members). */
static void check_lookups(const JsonValue *v) {
    int i = 0;
    for (const JsonValue *c = v->child; c; c = c->next, i++) {
        if (v->type == JSON_OBJECT && i < 64) {
            const JsonValue *last = NULL;
            for (const JsonValue *d = v->child; d; d = d->next)
                if (!strcmp(d->key, c->key)) last = d;
            if (json_get(v, c->key) != last) abort();
        }
        if (v->type == JSON_ARRAY && i < 64 && json_at(v, i) != c) abort();
        check_lookups(c);
    }
    if (i != v->n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    JsonDoc doc;
    Status st = {0};
    if (json_parse(&doc, (const char *)data, size, "fuzz.json", &st)) {
        if (doc.root || doc.mem || !st.msg[0]) abort(); /* a failure leaves nothing and says why */
        return 0;
    }
    check_lookups(doc.root);
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    write_value(&w, doc.root);
    if (b.failed || w.depth != 0) abort();
    JsonDoc again;
    if (json_parse(&again, b.s, b.len, "fuzz.json rewritten", &st)) abort();
    if (!same(doc.root, again.root)) abort();
    json_free(&again);
    json_free(&doc);
    sb_free(&b);
    return 0;
}
