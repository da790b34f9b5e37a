/* test_core.c - the core helpers every module leans on: the JSON reader (every type, escapes,
 * numbers, lookups, errors with line and column), the JSON writer (the exact byte layout our
 * files use, escaping, NaN as null, round trips) and the growable string buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/strbuf.h"

/* Parses text that must be valid; the caller frees doc. */
static const JsonValue *parse_ok(JsonDoc *doc, const char *text) {
    Status st = {0};
    int rc = json_parse(doc, text, strlen(text), "t.json", &st);
    if (rc) fprintf(stderr, "unexpected error: %s\n", st.msg);
    assert_int_equal(rc, 0);
    assert_non_null(doc->root);
    return doc->root;
}

/* Parses text[0..len) that must fail with exactly `msg`; the document must come back empty. */
static void parse_fails_n(const char *text, size_t len, const char *msg) {
    JsonDoc doc = {(JsonValue *)1, (void *)1};
    Status st = {0};
    assert_int_equal(json_parse(&doc, text, len, "t.json", &st), -1);
    assert_int_equal(st.code, AP_ECORRUPT);
    assert_string_equal(st.msg, msg);
    assert_null(doc.root);
    assert_null(doc.mem);
    json_free(&doc); /* harmless on an empty document */
}

static void parse_fails(const char *text, const char *msg) { parse_fails_n(text, strlen(text), msg); }

static void test_parse_types(void **state) {
    (void)state;
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, " {\"n\": null, \"t\": true, \"f\": false, \"i\": 42, \"x\": -1.5e3,"
                                        " \"s\": \"hi\", \"a\": [], \"o\": {}}\n");
    assert_int_equal(r->type, JSON_OBJECT);
    assert_int_equal(r->n, 8);
    assert_int_equal(json_get(r, "n")->type, JSON_NULL);
    assert_int_equal(json_get(r, "t")->type, JSON_BOOL);
    assert_int_equal(json_get(r, "t")->boolean, 1);
    assert_int_equal(json_get(r, "f")->boolean, 0);
    assert_int_equal(json_get(r, "i")->type, JSON_NUMBER);
    assert_true(json_get(r, "i")->number == 42.0);
    assert_true(json_get(r, "x")->number == -1500.0);
    const JsonValue *s = json_get(r, "s");
    assert_int_equal(s->type, JSON_STRING);
    assert_string_equal(s->string, "hi");
    assert_int_equal(s->len, 2);
    assert_string_equal(s->key, "s");
    assert_int_equal(json_get(r, "a")->type, JSON_ARRAY);
    assert_int_equal(json_get(r, "a")->n, 0);
    assert_null(json_get(r, "a")->child);
    assert_int_equal(json_get(r, "o")->type, JSON_OBJECT);
    assert_int_equal(json_get(r, "o")->n, 0);
    assert_null(r->key);
    json_free(&doc);
    assert_null(doc.root);
    assert_null(doc.mem);

    /* any value at the top, surrounded by whitespace; the text needs no terminating NUL */
    r = parse_ok(&doc, "\t\r\n 7 \n");
    assert_true(r->number == 7.0);
    json_free(&doc);
    r = parse_ok(&doc, "\"x\"");
    assert_string_equal(r->string, "x");
    json_free(&doc);
    r = parse_ok(&doc, "\"\x7f \xff\xfe\""); /* DEL is allowed raw; bytes >= 0x80 pass through unchecked */
    assert_string_equal(r->string, "\x7f \xff\xfe");
    json_free(&doc);
    r = parse_ok(&doc, "null");
    assert_int_equal(r->type, JSON_NULL);
    json_free(&doc);
    Status st = {0};
    assert_int_equal(json_parse(&doc, "[true]garbage", 6, "t.json", &st), 0);
    assert_int_equal(json_at(doc.root, 0)->boolean, 1);
    json_free(&doc);
}

static void test_nested(void **state) {
    (void)state;
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, "{\"a\": [1, {\"b\": [true, null, \"c\"]}, []], \"d\": {\"e\": {\"f\": 2}}}");
    const JsonValue *a = json_get(r, "a");
    assert_int_equal(a->n, 3);
    assert_true(json_number(json_at(a, 0), 0) == 1.0);
    const JsonValue *b = json_get(json_at(a, 1), "b");
    assert_int_equal(b->type, JSON_ARRAY);
    assert_int_equal(b->n, 3);
    assert_int_equal(json_at(b, 0)->type, JSON_BOOL);
    assert_int_equal(json_at(b, 1)->type, JSON_NULL);
    assert_string_equal(json_string(json_at(b, 2), NULL), "c");
    assert_null(json_at(b, 3));
    assert_int_equal(json_at(a, 2)->type, JSON_ARRAY);
    assert_true(json_get_number(json_get(json_get(r, "d"), "e"), "f", 0) == 2.0);
    /* siblings in order through child/next */
    const char *keys[] = {"a", "d"};
    int i = 0;
    for (const JsonValue *c = r->child; c; c = c->next, i++) assert_string_equal(c->key, keys[i]);
    assert_int_equal(i, 2);
    json_free(&doc);

    /* exactly JSON_MAX_DEPTH levels parse */
    char deep[2 * JSON_MAX_DEPTH + 1];
    memset(deep, '[', JSON_MAX_DEPTH), memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    deep[2 * JSON_MAX_DEPTH] = '\0';
    r = parse_ok(&doc, deep);
    int depth = 0;
    for (const JsonValue *v = r; v; v = v->child) depth++;
    assert_int_equal(depth, JSON_MAX_DEPTH);
    json_free(&doc);
}

static void test_escapes(void **state) {
    (void)state;
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u0041\\u00e9\\u20AC \\ud83d\\ude00 "
                                        "\\u0000x caf\xc3\xa9\"");
    static const char want[] = "q\" b\\ s/ \b\f\n\r\t A\xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80 \0x caf\xc3\xa9";
    assert_int_equal(r->len, sizeof want - 1);
    assert_memory_equal(r->string, want, sizeof want);
    assert_int_equal(strlen(r->string), (const char *)memchr(want, 0, sizeof want) - want); /* ends at \u0000 */
    json_free(&doc);
    /* keys decode the same way */
    r = parse_ok(&doc, "{\"k\\u00e9\\n\": 1}");
    assert_string_equal(r->child->key, "k\xc3\xa9\n");
    assert_true(json_get_number(r, "k\xc3\xa9\n", 0) == 1.0);
    json_free(&doc);
}

static void test_numbers(void **state) {
    (void)state;
    static const struct {
        const char *text;
        double want;
    } cases[] = {
        {"0", 0.0},           {"-0", -0.0},          {"1e3", 1000.0},        {"1E+3", 1000.0},
        {"2.5e-3", 0.0025},   {"-12.75", -12.75},    {"0.5", 0.5},           {"10", 10.0},
        {"-0.0e0", -0.0},     {"1e-400", 0.0},       {"123456789012", 123456789012.0},
        {"1.7976931348623157e308", 1.7976931348623157e308},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        JsonDoc doc;
        const JsonValue *r = parse_ok(&doc, cases[i].text);
        assert_int_equal(r->type, JSON_NUMBER);
        assert_true(r->number == cases[i].want);
        assert_int_equal(!!signbit(r->number), !!signbit(cases[i].want));
        assert_string_equal(r->string, cases[i].text); /* the text as written */
        json_free(&doc);
    }
    /* 2^64 - 1 is not a double, but its text is kept exactly */
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, "{\"seed\": 18446744073709551615}");
    const JsonValue *seed = json_get(r, "seed");
    assert_string_equal(seed->string, "18446744073709551615");
    assert_int_equal(seed->len, 20);
    assert_int_equal(strtoull(seed->string, NULL, 10), UINT64_MAX);
    assert_null(json_string(seed, NULL)); /* a number is not a string to typed reads */
    json_free(&doc);
    parse_fails("1e400", "t.json: line 1, column 1: expected a number within the range of a double, got 1e400");
    parse_fails("-", "t.json: line 1, column 2: expected a digit after '-', got end of input");
    parse_fails("-a", "t.json: line 1, column 2: expected a digit after '-', got 'a'");
    parse_fails("1.", "t.json: line 1, column 3: expected a digit after '.', got end of input");
    parse_fails("1.e5", "t.json: line 1, column 3: expected a digit after '.', got 'e'");
    parse_fails("1e+", "t.json: line 1, column 4: expected a digit in the exponent, got end of input");
    parse_fails(".5", "t.json: line 1, column 1: expected a value (object, array, string, number, true, false or null), "
                      "got '.'");
    parse_fails("+1", "t.json: line 1, column 1: expected a value (object, array, string, number, true, false or null), "
                      "got '+'");
}

static void test_lookups(void **state) {
    (void)state;
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, "{\"n\": 1.5, \"s\": \"x\", \"b\": true, \"z\": null, \"a\": [10, 20]}");
    assert_null(json_get(r, "missing"));
    assert_null(json_get(NULL, "n"));
    assert_null(json_get(json_get(r, "a"), "n")); /* not an object */
    assert_true(json_get_number(r, "n", -1) == 1.5);
    assert_true(json_get_number(r, "missing", -1) == -1.0);
    assert_true(json_get_number(r, "s", -2) == -2.0); /* a string is not a number */
    assert_true(json_get_number(r, "z", -3) == -3.0); /* nor is null */
    assert_true(isnan(json_get_number(r, "b", NAN)));
    assert_string_equal(json_get_string(r, "s", "fb"), "x");
    assert_string_equal(json_get_string(r, "n", "fb"), "fb");
    assert_string_equal(json_get_string(r, "missing", "fb"), "fb");
    assert_null(json_get_string(r, "z", NULL));
    assert_int_equal(json_bool(json_get(r, "b"), 0), 1);
    assert_int_equal(json_bool(json_get(r, "n"), 7), 7);
    assert_int_equal(json_bool(NULL, -1), -1);
    assert_true(json_number(NULL, 4) == 4.0);
    assert_string_equal(json_string(NULL, "none"), "none");
    const JsonValue *a = json_get(r, "a");
    assert_true(json_number(json_at(a, 1), 0) == 20.0);
    assert_null(json_at(a, 2));
    assert_null(json_at(a, -1));
    assert_null(json_at(r, 0)); /* an object is not an array */
    assert_null(json_at(NULL, 0));
    json_free(&doc);
}

static void test_duplicate_keys(void **state) {
    (void)state;
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, "{\"a\": 1, \"b\": 5, \"a\": 2, \"a\": \"three\"}");
    assert_int_equal(r->n, 4); /* every member is kept, in order */
    assert_string_equal(json_get_string(r, "a", NULL), "three");
    assert_true(json_get_number(r, "a", -1) == -1.0); /* the last one is a string */
    json_free(&doc);
    r = parse_ok(&doc, "{\"a\": 1, \"a\": 2}");
    assert_true(json_get_number(r, "a", -1) == 2.0);
    json_free(&doc);
}

static void test_errors(void **state) {
    (void)state;
    const char *value = "expected a value (object, array, string, number, true, false or null), got ";
    char msg[512];
    /* truncated input */
    parse_fails("", "t.json: line 1, column 1: expected a value, got end of input");
    parse_fails("   \n  ", "t.json: line 2, column 3: expected a value, got end of input");
    parse_fails("{\"a\": 1", "t.json: line 1, column 8: expected ',' or '}' after a member, got end of input");
    parse_fails("{\"a\": ", "t.json: line 1, column 7: expected a value, got end of input");
    parse_fails("{\"a\"", "t.json: line 1, column 5: expected ':' after the member name \"a\", got end of input");
    parse_fails("{", "t.json: line 1, column 2: expected a member name (a string), got end of input");
    parse_fails("[1, 2", "t.json: line 1, column 6: expected ',' or ']' after an element, got end of input");
    parse_fails("[1,", "t.json: line 1, column 4: expected a value, got end of input");
    parse_fails("tru", "t.json: line 1, column 1: expected 'true'");
    parse_fails("nul", "t.json: line 1, column 1: expected 'null'");
    parse_fails("fals", "t.json: line 1, column 1: expected 'false'");
    /* trailing commas */
    parse_fails("{\"a\": 1,}",
                "t.json: line 1, column 9: expected a member name after ',' (JSON has no trailing commas), got '}'");
    parse_fails("[1, 2,]", "t.json: line 1, column 7: expected a value after ',' (JSON has no trailing commas), got ']'");
    parse_fails("[,]", (snprintf(msg, sizeof msg, "t.json: line 1, column 2: %s','", value), msg));
    parse_fails("{,}", "t.json: line 1, column 2: expected a member name (a string), got ','");
    /* bad escapes */
    parse_fails("\"a\\x\"", "t.json: line 1, column 4: expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX) "
                            "after '\\', got 'x'");
    parse_fails("\"\\u12G4\"", "t.json: line 1, column 2: expected 4 hex digits after \\u");
    parse_fails("\"\\u12\"", "t.json: line 1, column 2: expected 4 hex digits after \\u");
    parse_fails("\"ab\\ud83d\"",
                "t.json: line 1, column 4: expected a low surrogate (\\uDC00-\\uDFFF) after the high surrogate \\uD83D");
    parse_fails("\"\\ud83d\\u0041\"",
                "t.json: line 1, column 2: expected a low surrogate (\\uDC00-\\uDFFF) after the high surrogate \\uD83D");
    parse_fails("\"\\ude00\"",
                "t.json: line 1, column 2: expected a high surrogate (\\uD800-\\uDBFF) before the low surrogate \\uDE00");
    /* unterminated strings, reported where they start */
    parse_fails("{\"a\": \"abc", "t.json: line 1, column 7: expected a closing '\"' for the string that starts here, "
                                 "got end of input");
    parse_fails("\"abc\\\"", "t.json: line 1, column 1: expected a closing '\"' for the string that starts here, "
                             "got end of input");
    parse_fails("{\"ab", "t.json: line 1, column 2: expected a closing '\"' for the string that starts here, "
                         "got end of input");
    /* raw control characters inside strings */
    parse_fails("[\"a\tb\"]", "t.json: line 1, column 4: expected an escape such as \\n or \\u0009, got the raw "
                              "control byte 0x09 in a string");
    parse_fails("\"line\nbreak\"", "t.json: line 1, column 6: expected an escape such as \\n or \\u000a, got the raw "
                                   "control byte 0x0a in a string");
    parse_fails_n("\"a\0b\"", 5, "t.json: line 1, column 3: expected an escape such as \\n or \\u0000, got the raw "
                                 "control byte 0x00 in a string");
    parse_fails("\"\x1f\"", "t.json: line 1, column 2: expected an escape such as \\n or \\u001f, got the raw "
                           "control byte 0x1f in a string");
    /* leading zeros */
    parse_fails("[01]", "t.json: line 1, column 2: expected no leading zero in a number (0, 0.5, 10; not 01)");
    parse_fails("-007", "t.json: line 1, column 2: expected no leading zero in a number (0, 0.5, 10; not 01)");
    /* too deep */
    char deep[JSON_MAX_DEPTH + 2];
    memset(deep, '[', JSON_MAX_DEPTH + 1);
    deep[JSON_MAX_DEPTH + 1] = '\0';
    parse_fails(deep, "t.json: line 1, column 33: expected at most 32 nested arrays and objects");
    char deep_obj[16 * (JSON_MAX_DEPTH + 1) + 1] = "";
    for (int i = 0; i <= JSON_MAX_DEPTH; i++) strcat(deep_obj, "{\"k\": ");
    parse_fails(deep_obj, "t.json: line 1, column 193: expected at most 32 nested arrays and objects");
    /* trailing garbage */
    parse_fails("{} x", "t.json: line 1, column 4: expected the end of input after the value, got 'x'");
    parse_fails("1 2", "t.json: line 1, column 3: expected the end of input after the value, got '2'");
    parse_fails("[1]]", "t.json: line 1, column 4: expected the end of input after the value, got ']'");
    parse_fails("\xef\xbb\xbf{}", (snprintf(msg, sizeof msg, "t.json: line 1, column 1: %sbyte 0xef", value), msg));
    /* lines and columns count from 1, across lines */
    parse_fails("{\n  \"a\": 1,\n  \"b\" 2\n}", "t.json: line 3, column 7: expected ':' after the member name \"b\", got '2'");
    parse_fails("[1,\n2\n,\n\n   x]", (snprintf(msg, sizeof msg, "t.json: line 5, column 4: %s'x'", value), msg));
    parse_fails("{\"a\": 1 \"b\": 2}", "t.json: line 1, column 9: expected ',' or '}' after a member, got '\"'");
    parse_fails("{1: 2}", "t.json: line 1, column 2: expected a member name (a string), got '1'");
    parse_fails("'a'", (snprintf(msg, sizeof msg, "t.json: line 1, column 1: %s'''", value), msg));
    parse_fails("[1] // c", "t.json: line 1, column 5: expected the end of input after the value, got '/'");

    /* `what` defaults to JSON */
    JsonDoc doc;
    Status st = {0};
    assert_int_equal(json_parse(&doc, "[", 1, NULL, &st), -1);
    assert_string_equal(st.msg, "JSON: line 1, column 2: expected a value, got end of input");
}

/* The writer's output so far, as a string. */
static const char *text_of(const StrBuf *b) {
    assert_int_equal(b->failed, 0);
    return b->s;
}

static void test_writer_layout(void **state) {
    (void)state;
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "a"), jw_int(&w, 1);
    jw_key(&w, "b"), jw_array_begin(&w), jw_int(&w, 1), jw_int(&w, -2), jw_array_end(&w);
    jw_key(&w, "c"), jw_object_begin(&w);
    jw_key(&w, "d"), jw_string(&w, "x");
    jw_key(&w, "e"), jw_array_begin(&w), jw_array_end(&w);
    jw_key(&w, "f"), jw_object_begin(&w), jw_object_end(&w);
    jw_object_end(&w);
    jw_key(&w, "g"), jw_null(&w);
    jw_key(&w, "h"), jw_bool(&w, 1);
    jw_key(&w, "i"), jw_bool(&w, 0);
    jw_key(&w, "j"), jw_number(&w, "%.3f", 2.0 / 3.0);
    jw_key(&w, "k"), jw_number(&w, "%.17g", 0.1);
    jw_key(&w, "l"), jw_number(&w, "%.6g", 1.2e14);
    jw_key(&w, "m"), jw_raw(&w, "{\"nested\": [1]}");
    jw_key(&w, "n"), jw_string(&w, NULL);
    jw_key(&w, "o"), jw_int(&w, INT64_MIN);
    jw_key(&w, "p"), jw_array_begin(&w), jw_object_begin(&w), jw_object_end(&w), jw_array_begin(&w), jw_array_end(&w),
        jw_string(&w, ""), jw_array_end(&w);
    jw_object_end(&w);
    assert_int_equal(w.depth, 0);
    assert_string_equal(text_of(&b), "{\"a\": 1, \"b\": [1, -2], \"c\": {\"d\": \"x\", \"e\": [], \"f\": {}}, \"g\": null, "
                                     "\"h\": true, \"i\": false, \"j\": 0.667, \"k\": 0.10000000000000001, "
                                     "\"l\": 1.2e+14, \"m\": {\"nested\": [1]}, \"n\": null, "
                                     "\"o\": -9223372036854775808, \"p\": [{}, [], \"\"]}");
    assert_int_equal(b.len, strlen(b.s));
    sb_free(&b);

    /* a top-level array; non-finite numbers become null */
    jw_init(&w, &b);
    jw_array_begin(&w);
    jw_number(&w, "%.9g", NAN), jw_number(&w, "%.9g", INFINITY), jw_number(&w, "%.9g", -INFINITY);
    jw_number(&w, "%.9g", -0.0), jw_number(&w, "%.0f", 1e20);
    jw_array_end(&w);
    assert_string_equal(text_of(&b), "[null, null, null, -0, 100000000000000000000]");
    sb_free(&b);
}

static void test_writer_escaping(void **state) {
    (void)state;
    StrBuf b = {0};
    json_escape(&b, "a\"b\\c/d\n\r\t\b\f\x01\x1f\x7f caf\xc3\xa9 \xff");
    assert_string_equal(text_of(&b), "a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0001\\u001f\x7f caf\xc3\xa9 \xff");
    sb_free(&b);
    json_escape(&b, "");
    assert_int_equal(b.len, 0);
    sb_free(&b);
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "k\"ey\n"), jw_string(&w, "v\x1e");
    jw_object_end(&w);
    assert_string_equal(text_of(&b), "{\"k\\\"ey\\n\": \"v\\u001e\"}");
    sb_free(&b);
}

static void test_writer_misuse(void **state) {
    (void)state;
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_array_end(&w); /* nothing open */
    assert_int_equal(b.failed, 1);
    sb_free(&b);
    jw_init(&w, &b);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) jw_array_begin(&w);
    assert_int_equal(b.failed, 0);
    jw_array_begin(&w); /* one level too deep */
    assert_int_equal(b.failed, 1);
    sb_free(&b);
    jw_init(&w, &b);
    jw_object_begin(&w), jw_key(&w, "k"), jw_object_end(&w); /* a key without a value */
    assert_int_equal(b.failed, 1);
    sb_free(&b);
}

/* Writes -> parses -> compares: every value survives exactly. */
static void test_roundtrip(void **state) {
    (void)state;
    static const double nums[] = {0.1, -0.0, 1e-300, 123456789.123, 6.02214076e23, -2.5, 4503599627370497.0, 5e-324};
    static const char *strs[] = {"", "plain", "q\"b\\s/", "\n\r\t\b\f\x01\x1e\x1f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"};
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_object_begin(&w);
    jw_key(&w, "nums"), jw_array_begin(&w);
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) jw_number(&w, "%.17g", nums[i]);
    jw_array_end(&w);
    jw_key(&w, "strs"), jw_array_begin(&w);
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) jw_string(&w, strs[i]);
    jw_array_end(&w);
    jw_key(&w, "int"), jw_int(&w, -42);
    jw_key(&w, "deep"), jw_object_begin(&w), jw_key(&w, "t"), jw_bool(&w, 1), jw_key(&w, "nil"), jw_null(&w);
    jw_object_end(&w);
    jw_key(&w, strs[3]), jw_string(&w, "weird key");
    jw_object_end(&w);
    assert_int_equal(b.failed, 0);

    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, b.s);
    const JsonValue *n = json_get(r, "nums");
    assert_int_equal(n->n, (int)(sizeof nums / sizeof *nums));
    for (int i = 0; i < n->n; i++) {
        double v = json_number(json_at(n, i), NAN);
        assert_true(v == nums[i]);
        assert_int_equal(!!signbit(v), !!signbit(nums[i]));
    }
    const JsonValue *s = json_get(r, "strs");
    assert_int_equal(s->n, (int)(sizeof strs / sizeof *strs));
    for (int i = 0; i < s->n; i++) {
        assert_string_equal(json_string(json_at(s, i), NULL), strs[i]);
        assert_int_equal(json_at(s, i)->len, strlen(strs[i]));
    }
    assert_true(json_get_number(r, "int", 0) == -42.0);
    assert_int_equal(json_bool(json_get(json_get(r, "deep"), "t"), 0), 1);
    assert_int_equal(json_get(json_get(r, "deep"), "nil")->type, JSON_NULL);
    assert_string_equal(json_get_string(r, strs[3], NULL), "weird key");
    json_free(&doc);
    sb_free(&b);
}

/* A big document spans several arena blocks. */
static void test_large_document(void **state) {
    (void)state;
    StrBuf b = {0};
    JsonWriter w;
    jw_init(&w, &b);
    jw_array_begin(&w);
    for (int i = 0; i < 100000; i++) {
        jw_object_begin(&w);
        jw_key(&w, "i"), jw_int(&w, i);
        jw_key(&w, "s"), jw_string(&w, "some text to fill the arena");
        jw_object_end(&w);
    }
    jw_array_end(&w);
    JsonDoc doc;
    const JsonValue *r = parse_ok(&doc, b.s);
    assert_int_equal(r->n, 100000);
    long long sum = 0;
    int k = 0;
    for (const JsonValue *c = r->child; c; c = c->next, k++) {
        assert_true(json_get_number(c, "i", -1) == (double)k);
        sum += (long long)json_get_number(c, "i", 0);
    }
    assert_int_equal(sum, 100000LL * 99999 / 2);
    assert_string_equal(json_get_string(json_at(r, 99999), "s", ""), "some text to fill the arena");
    json_free(&doc);
    sb_free(&b);
}

static void test_strbuf(void **state) {
    (void)state;
    StrBuf b = {0};
    for (int i = 0; i < 10000; i++) sb_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.failed, 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap > 10000);
    assert_int_equal(b.s[10000], '\0');
    assert_int_equal(b.s[9999], 'a' + 9999 % 26);
    assert_int_equal(strlen(b.s), 10000);
    sb_free(&b);
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    sb_putn(&b, "ab\0cd", 5); /* NULs inside count */
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.s, "ab\0cd", 6);
    sb_putn(&b, "xyz", 0);
    assert_int_equal(b.len, 5);
    sb_putn(&b, "xyz", 2);
    assert_memory_equal(b.s, "ab\0cdxy", 8);
    sb_free(&b);

    sb_puts(&b, "n=");
    sb_printf(&b, "%d, %s", 42, "ok");
    sb_putc(&b, '!');
    sb_html(&b, " <a href=\"x\">&</a>");
    assert_string_equal(b.s, "n=42, ok! &lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    sb_free(&b);

    /* growth through one big printf and a big putn */
    char big[20001];
    memset(big, 'z', 20000), big[20000] = '\0';
    sb_printf(&b, "[%s]", big);
    sb_putn(&b, big, 20000);
    assert_int_equal(b.len, 40002);
    assert_int_equal(b.s[0], '[');
    assert_int_equal(b.s[20001], ']');
    assert_int_equal(b.s[40001], 'z');
    assert_int_equal(b.s[40002], '\0');
    sb_free(&b);

    /* a failed buffer ignores appends */
    b.failed = 1;
    sb_puts(&b, "x"), sb_putc(&b, 'y'), sb_putn(&b, "z", 1), sb_printf(&b, "%d", 1);
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    sb_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_types),     cmocka_unit_test(test_nested),
        cmocka_unit_test(test_escapes),         cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_lookups),         cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_writer_layout),
        cmocka_unit_test(test_writer_escaping), cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_large_document),
        cmocka_unit_test(test_strbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
