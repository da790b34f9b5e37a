/* layout.h - carving many float arrays out of one allocation.
 *
 * A model lists its arrays once as a table of (pointer slot, float count); the same table gives
 * the size to allocate (mem NULL) and then points every slot into the allocation, so the memory
 * estimate and the allocation cannot disagree. Arrays are carved in table order, each starting
 * on a 16-float (64-byte, one cache line) boundary; an empty array gets NULL. */
#ifndef AP_LAYOUT_H
#define AP_LAYOUT_H

#include <stddef.h>

typedef struct {
    float **slot;
    size_t n; /* floats; 0: the array does not exist */
} LayoutSlot;

/* Returns the floats the table needs; with mem non-NULL, also points every slot into mem. */
static inline size_t layout_carve(const LayoutSlot *table, size_t n_slots, float *mem) {
    size_t off = 0;
    for (size_t i = 0; i < n_slots; i++) {
        if (mem) *table[i].slot = table[i].n ? mem + off : NULL;
        off += (table[i].n + 15) / 16 * 16;
    }
    return off;
}

#endif
