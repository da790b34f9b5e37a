/* hashmap.h - open-addressing hash maps for the tokenizer and BPE trainer.
 *
 * BytesMap maps byte strings to 32-bit values (token bytes -> id, pre-token chunk -> index).
 * Keys are copied into an owned arena. U64Map maps 64-bit keys (e.g. a token pair a<<32|b) to
 * 64-bit values. Both use linear probing with power-of-two capacity and grow at 50% load. */
#ifndef AP_HASHMAP_H
#define AP_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);

typedef struct {
    uint64_t *hashes;  /* 0 = empty slot */
    uint32_t *offsets; /* key start in the arena */
    uint32_t *lens;
    uint32_t *values;
    size_t cap, count;
    unsigned char *arena;
    size_t arena_len, arena_cap;
    int failed; /* out of memory */
} BytesMap;

int bytesmap_init(BytesMap *m, size_t expected);
void bytesmap_free(BytesMap *m);
/* Returns a pointer to the stored value, or NULL if absent. */
uint32_t *bytesmap_get(const BytesMap *m, const void *key, size_t len);
/* Inserts (or finds) key; *inserted tells which. Returns the value slot, NULL on allocation failure. */
uint32_t *bytesmap_put(BytesMap *m, const void *key, size_t len, int *inserted);
/* The key of a stored entry, for iteration over slots i < cap with lens... use bytesmap_key. */
const unsigned char *bytesmap_key(const BytesMap *m, size_t slot, size_t *len);

typedef struct {
    uint64_t *keys;
    uint64_t *values;
    unsigned char *used;
    size_t cap, count;
    int failed;
} U64Map;

int u64map_init(U64Map *m, size_t expected);
void u64map_free(U64Map *m);
uint64_t *u64map_get(const U64Map *m, uint64_t key);
uint64_t *u64map_put(U64Map *m, uint64_t key, int *inserted);

#endif
