/* hashmap.c - open-addressing hash maps (see hashmap.h). */
#include "core/hashmap.h"

#include <stdlib.h>
#include <string.h>

/* A 64-bit multiply-mix hash over 8-byte words (in the spirit of wyhash/xxh3, written here):
 * fast on short keys, which is what pre-tokens and token strings are. */
static inline uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)(a ^ 0xa0761d6478bd642fULL) * (b ^ 0xe7037ed1a0b428dbULL);
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h, w);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = mix(h, w ^ ((uint64_t)len << 56));
    return h ? h : 1; /* 0 marks an empty slot */
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int bytesmap_init(BytesMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->hashes = calloc(m->cap, sizeof *m->hashes);
    m->offsets = malloc(m->cap * sizeof *m->offsets);
    m->lens = malloc(m->cap * sizeof *m->lens);
    m->values = malloc(m->cap * sizeof *m->values);
    m->arena_cap = 4096;
    m->arena = malloc(m->arena_cap);
    if (!m->hashes || !m->offsets || !m->lens || !m->values || !m->arena) {
        bytesmap_free(m);
        return -1;
    }
    return 0;
}

void bytesmap_free(BytesMap *m) {
    free(m->hashes);
    free(m->offsets);
    free(m->lens);
    free(m->values);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t bytes_find(const BytesMap *m, uint64_t h, const void *key, size_t len) {
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->hashes[i]) {
        if (m->hashes[i] == h && m->lens[i] == len && !memcmp(m->arena + m->offsets[i], key, len)) return i;
        i = (i + 1) & mask;
    }
    return i;
}

uint32_t *bytesmap_get(const BytesMap *m, const void *key, size_t len) {
    if (!m->cap) return NULL;
    uint64_t h = hash_bytes(key, len, 0);
    size_t i = bytes_find(m, h, key, len);
    return m->hashes[i] ? &m->values[i] : NULL;
}

static int bytes_grow(BytesMap *m) {
    BytesMap n = *m;
    n.cap = m->cap * 2;
    n.hashes = calloc(n.cap, sizeof *n.hashes);
    n.offsets = malloc(n.cap * sizeof *n.offsets);
    n.lens = malloc(n.cap * sizeof *n.lens);
    n.values = malloc(n.cap * sizeof *n.values);
    if (!n.hashes || !n.offsets || !n.lens || !n.values) {
        free(n.hashes), free(n.offsets), free(n.lens), free(n.values);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->hashes[i]) continue;
        size_t j = (size_t)m->hashes[i] & (n.cap - 1);
        while (n.hashes[j]) j = (j + 1) & (n.cap - 1);
        n.hashes[j] = m->hashes[i];
        n.offsets[j] = m->offsets[i];
        n.lens[j] = m->lens[i];
        n.values[j] = m->values[i];
    }
    free(m->hashes), free(m->offsets), free(m->lens), free(m->values);
    *m = n;
    return 0;
}

uint32_t *bytesmap_put(BytesMap *m, const void *key, size_t len, int *inserted) {
    uint64_t h = hash_bytes(key, len, 0);
    size_t i = bytes_find(m, h, key, len);
    if (m->hashes[i]) {
        if (inserted) *inserted = 0;
        return &m->values[i];
    }
    if ((m->count + 1) * 2 > m->cap) {
        if (bytes_grow(m)) return m->failed = 1, NULL;
        i = bytes_find(m, h, key, len);
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap * 2 + len;
        if (cap > UINT32_MAX) return m->failed = 1, NULL;
        unsigned char *a = realloc(m->arena, cap);
        if (!a) return m->failed = 1, NULL;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, key, len);
    m->hashes[i] = h;
    m->offsets[i] = (uint32_t)m->arena_len;
    m->lens[i] = (uint32_t)len;
    m->values[i] = 0;
    m->arena_len += len;
    m->count++;
    if (inserted) *inserted = 1;
    return &m->values[i];
}

const unsigned char *bytesmap_key(const BytesMap *m, size_t slot, size_t *len) {
    if (slot >= m->cap || !m->hashes[slot]) return NULL;
    *len = m->lens[slot];
    return m->arena + m->offsets[slot];
}

int u64map_init(U64Map *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->values = malloc(m->cap * sizeof *m->values);
    m->used = calloc(m->cap, 1);
    if (!m->keys || !m->values || !m->used) {
        u64map_free(m);
        return -1;
    }
    return 0;
}

void u64map_free(U64Map *m) {
    free(m->keys);
    free(m->values);
    free(m->used);
    memset(m, 0, sizeof *m);
}

static inline size_t u64_slot(uint64_t key, size_t mask) { return (size_t)(mix(key, 0x9e3779b97f4a7c15ULL)) & mask; }

uint64_t *u64map_get(const U64Map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = u64_slot(key, mask);
    while (m->used[i]) {
        if (m->keys[i] == key) return &m->values[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

uint64_t *u64map_put(U64Map *m, uint64_t key, int *inserted) {
    uint64_t *v = u64map_get(m, key);
    if (v) {
        if (inserted) *inserted = 0;
        return v;
    }
    if ((m->count + 1) * 2 > m->cap) {
        U64Map n;
        if (u64map_init(&n, m->cap)) return m->failed = 1, NULL;
        for (size_t i = 0; i < m->cap; i++)
            if (m->used[i]) *u64map_put(&n, m->keys[i], NULL) = m->values[i];
        u64map_free(m);
        *m = n;
    }
    size_t mask = m->cap - 1, i = u64_slot(key, mask);
    while (m->used[i]) i = (i + 1) & mask;
    m->used[i] = 1;
    m->keys[i] = key;
    m->values[i] = 0;
    m->count++;
    if (inserted) *inserted = 1;
    return &m->values[i];
}
