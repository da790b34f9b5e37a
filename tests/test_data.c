/* test_data.c - tokenizers, shards and corpus splits: hand-checkable merges, exact round trips
 * (random bytes and invalid UTF-8 included), parallel = serial encoding, corrupt files caught,
 * and a document split with no overlap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/hashmap.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "data/corpus.h"
#include "data/shard.h"
#include "data/tokenizer.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/algoprog-test-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* the temporary directory goes when the tests do (they left one per run in /tmp) */
static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *tmp(const char *name) {
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static void encode(const Tokenizer *t, const void *text, size_t len, TokenList *out) {
    Encoder *e = encoder_create(t);
    Status st = {0};
    assert_non_null(e);
    assert_int_equal(encoder_encode_docs(e, text, len, out, &st), 0);
    encoder_free(e);
}

static void assert_roundtrip(const Tokenizer *t, const unsigned char *text, size_t len) {
    TokenList ids = {0};
    encode(t, text, len, &ids);
    unsigned char *back;
    size_t blen;
    Status st = {0};
    assert_int_equal(tokenizer_decode(t, ids.ids, ids.n, &back, &blen, &st), 0);
    assert_int_equal(blen, len);
    assert_memory_equal(back, text, len);
    free(back);
    tokenlist_free(&ids);
}

static void test_sha256(void **state) {
    (void)state;
    char hex[65];
    sha256_hex("abc", 3, hex); /* FIPS 180-4 example */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char million[1000];
    memset(million, 'a', sizeof million);
    Sha256 s;
    unsigned char d[32];
    sha256_init(&s);
    for (int i = 0; i < 1000; i++) sha256_update(&s, million, 1000);
    sha256_final(&s, d);
    sha256_to_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* "aaabdaaabac": pairs aa:4 ab:2 ... -> merge "aa"; then (a,b) and (aa,a) tie at 2 and the
 * smaller ids win -> "ab"; then (aa,ab) occurs twice -> "aaab". */
static void test_bpe_by_hand(void **state) {
    (void)state;
    Tokenizer t;
    Status st = {0};
    const char *text = "aaabdaaabac";
    assert_int_equal(tokenizer_train_bpe(&t, (const unsigned char *)text, strlen(text), 260, PRETOK_GPT4, "hand", 0, &st),
                     0);
    assert_int_equal(t.n_tokens, 260);
    const char *want[] = {"aa", "ab", "aaab"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tokenizer_token_len(&t, 257 + i), strlen(want[i]));
        assert_memory_equal(t.tok_bytes + t.tok_off[257 + i], want[i], strlen(want[i]));
    }
    TokenList ids = {0};
    encode(&t, text, strlen(text), &ids);
    /* aaab d aaab a c */
    uint32_t expect[] = {259, 'd', 259, 'a', 'c'};
    assert_int_equal(ids.n, 5);
    assert_memory_equal(ids.ids, expect, sizeof expect);
    tokenlist_free(&ids);
    tokenizer_free(&t);
    /* a vocabulary the text cannot fill stops early instead of inventing tokens */
    assert_int_equal(tokenizer_train_bpe(&t, (const unsigned char *)"ab", 2, 300, PRETOK_GPT4, "tiny", 0, &st), 0);
    assert_int_equal(t.n_tokens, 258);
    tokenizer_free(&t);
    assert_int_equal(tokenizer_train_bpe(&t, (const unsigned char *)"ab", 2, 100, PRETOK_GPT4, "tiny", 0, &st), -1);
    assert_non_null(strstr(st.msg, "needs 257"));
}

static unsigned char *licence_text(size_t *len) {
    char *text;
    Status st = {0};
    assert_int_equal(file_read_all("/usr/share/common-licenses/GPL-3", &text, len, 1 << 24, &st), 0);
    return (unsigned char *)text;
}

static void test_roundtrips(void **state) {
    (void)state;
    Status st = {0};
    size_t len;
    unsigned char *text = licence_text(&len);
    Tokenizer bpe, bytes;
    assert_int_equal(tokenizer_train_bpe(&bpe, text, len, 1000, PRETOK_GPT4, "gpl", 0, &st), 0);
    assert_int_equal(tokenizer_bytes(&bytes, &st), 0);
    /* random bytes: invalid UTF-8, NULs, stray separators */
    Rng r;
    rng_seed(&r, 5);
    unsigned char noise[5000];
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)rng_below(&r, 256);
    noise[100] = 0x1e, noise[101] = '\n'; /* a document separator */
    noise[200] = 0x1e;                    /* a lone record separator stays a byte */
    const char *cases[] = {"", "a", "\xff\xfe invalid \xc3\x28 utf8 \xe2\x82", "caf\xc3\xa9 \xf0\x9f\x99\x82 ok",
                           "doc one\x1e\ndoc two\x1e\n", "\x1e\n\x1e\n", "   \n\n\t  trailing spaces   "};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_roundtrip(&bpe, (const unsigned char *)cases[i], strlen(cases[i]));
        assert_roundtrip(&bytes, (const unsigned char *)cases[i], strlen(cases[i]));
    }
    assert_roundtrip(&bpe, noise, sizeof noise);
    assert_roundtrip(&bytes, noise, sizeof noise);
    assert_roundtrip(&bpe, text, len);
    /* separators become end-of-text tokens */
    TokenList ids = {0};
    encode(&bpe, "a\x1e\nb", 4, &ids);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[1], 256);
    tokenlist_free(&ids);
    /* save, load: same identity, same encoding */
    assert_int_equal(tokenizer_save(&bpe, tmp("gpl.tok"), &st), 0);
    Tokenizer back;
    assert_int_equal(tokenizer_load(&back, tmp("gpl.tok"), &st), 0);
    assert_true(back.hash == bpe.hash);
    assert_int_equal(back.n_tokens, bpe.n_tokens);
    assert_roundtrip(&back, text, len);
    tokenizer_free(&back);
    tokenizer_free(&bpe);
    tokenizer_free(&bytes);
    free(text);
}

static void test_parallel_encoding(void **state) {
    (void)state;
    Status st = {0};
    size_t len;
    unsigned char *gpl = licence_text(&len);
    Tokenizer t;
    assert_int_equal(tokenizer_train_bpe(&t, gpl, len, 2000, PRETOK_GPT4, "gpl", 0, &st), 0);
    /* ~3.5 MB: many 1 MiB pieces, cut inside documents and at separators */
    size_t big_len = 0, cap = 100 * len + 1000;
    unsigned char *big = malloc(cap);
    for (int i = 0; i < 100; i++) {
        memcpy(big + big_len, gpl, len);
        big_len += len;
        if (i % 7 == 3) big[big_len++] = 0x1e, big[big_len++] = '\n';
        if (i % 5 == 1) big[big_len++] = (unsigned char)(0x80 + i); /* invalid UTF-8 */
    }
    TokenList serial = {0}, par = {0};
    encode(&t, big, big_len, &serial);
    assert_int_equal(tokenizer_encode_parallel(&t, big, big_len, &par, &st), 0);
    assert_int_equal(serial.n, par.n);
    assert_memory_equal(serial.ids, par.ids, serial.n * sizeof(uint32_t));
    tokenlist_free(&serial);
    tokenlist_free(&par);
    tokenizer_free(&t);
    free(big);
    free(gpl);
}

static void corrupt_byte(const char *path, long offset) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void test_shards(void **state) {
    (void)state;
    Status st = {0};
    Tokenizer bytes, other;
    assert_int_equal(tokenizer_bytes(&bytes, &st), 0);
    assert_int_equal(tokenizer_train_bpe(&other, (const unsigned char *)"abcabc", 6, 258, PRETOK_GPT4, "o", 0, &st), 0);
    uint32_t ids[] = {'h', 'i', 256, 'x'};
    assert_int_equal(shard_write(tmp("s.bin"), &bytes, ids, 4, 3, 2, 0x1234, &st), 0);
    Shard s;
    assert_int_equal(shard_open(&s, tmp("s.bin"), &bytes, &st), 0);
    assert_int_equal(s.n_tokens, 4);
    assert_int_equal(s.width, 2);
    assert_int_equal(shard_token(&s, 2), 256);
    assert_true(s.text_hash == 0x1234);
    shard_close(&s);
    assert_int_equal(shard_open(&s, tmp("s.bin"), &other, &st), -1);
    assert_non_null(strstr(st.msg, "another tokenizer"));
    corrupt_byte(tmp("s.bin"), -1);
    assert_int_equal(shard_open(&s, tmp("s.bin"), &bytes, &st), -1);
    assert_non_null(strstr(st.msg, "checksum mismatch"));
    assert_int_equal(file_write_atomic(tmp("t.bin"), "APSHARD\0garbage", 15, &st), 0);
    assert_int_equal(shard_open(&s, tmp("t.bin"), &bytes, &st), -1);
    assert_non_null(strstr(st.msg, "truncated"));
    /* a tokenizer file cut short is refused */
    assert_int_equal(tokenizer_save(&other, tmp("o.tok"), &st), 0);
    char *blob;
    size_t len;
    assert_int_equal(file_read_all(tmp("o.tok"), &blob, &len, 1 << 20, &st), 0);
    assert_int_equal(file_write_atomic(tmp("o.tok"), blob, len - 20, &st), 0);
    free(blob);
    Tokenizer back;
    assert_int_equal(tokenizer_load(&back, tmp("o.tok"), &st), -1);
    tokenizer_free(&bytes);
    tokenizer_free(&other);
}

static void test_corpus_split(void **state) {
    (void)state;
    /* 400 documents of varied length, 20 of them duplicated, one longer than 64 KiB */
    size_t cap = 1 << 22, len = 0;
    unsigned char *text = malloc(cap);
    Rng r;
    rng_seed(&r, 9);
    for (int d = 0; d < 420; d++) {
        int src = d < 400 ? d : d - 400; /* the last 20 repeat the first 20 */
        size_t n = src == 7 ? 150000 : 200 + (size_t)(src * 37 % 3000);
        for (size_t i = 0; i < n; i++) text[len++] = (unsigned char)("abcdefgh \n"[(src * 31 + i * (i % 7 == 0 ? 3 : 1)) % 10]);
        text[len++] = 0x1e, text[len++] = '\n';
    }
    Buffer parts[2];
    uint64_t docs[2];
    Status st = {0};
    assert_int_equal(corpus_split(text, len, 0.1, parts, docs, &st), 0);
    /* every byte accounted for; each side made of whole documents of at most 64 KiB */
    assert_int_equal(parts[0].len + parts[1].len, len + 2 * (docs[0] + docs[1] - 420));
    assert_true(docs[1] > 10 && docs[1] < 80);
    /* no held-out document appears in training */
    BytesMap train;
    assert_int_equal(bytesmap_init(&train, 1024), 0);
    size_t pos = 0;
    while (pos < parts[0].len) {
        unsigned char *e = memchr(parts[0].data + pos, 0x1e, parts[0].len - pos);
        assert_true((size_t)(e - parts[0].data - pos) <= CORPUS_MAX_DOC);
        bytesmap_put(&train, parts[0].data + pos, (size_t)(e - parts[0].data) - pos, NULL);
        pos = (size_t)(e - parts[0].data) + 2;
    }
    pos = 0;
    while (pos < parts[1].len) {
        unsigned char *e = memchr(parts[1].data + pos, 0x1e, parts[1].len - pos);
        assert_null(bytesmap_get(&train, parts[1].data + pos, (size_t)(e - parts[1].data) - pos));
        pos = (size_t)(e - parts[1].data) + 2;
    }
    /* deterministic */
    Buffer again[2];
    uint64_t docs2[2];
    assert_int_equal(corpus_split(text, len, 0.1, again, docs2, &st), 0);
    assert_int_equal(again[1].len, parts[1].len);
    assert_memory_equal(again[1].data, parts[1].data, parts[1].len);
    bytesmap_free(&train);
    for (int s = 0; s < 2; s++) free(parts[s].data), free(again[s].data);
    free(text);
}

int main(void) {
    parallel_init(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),        cmocka_unit_test(test_bpe_by_hand),
        cmocka_unit_test(test_roundtrips),    cmocka_unit_test(test_parallel_encoding),
        cmocka_unit_test(test_shards),        cmocka_unit_test(test_corpus_split),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
