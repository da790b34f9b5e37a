/* tensorfile.h - the container of checkpoints and tensor dumps: text header + named tensors.
 *
 * Layout (little-endian; docs/FORMATS.md has it byte by byte):
 *   0   char[8]  magic "ALGOPROG"
 *   8   u32      format version (1)
 *   12  u32      kind (1 checkpoint, 2 tensor dump, 3 tokenizer)
 *   16  u64      header bytes (fixed part + text + table, padded to 64)
 *   24  u64      file bytes (everything, trailer included)
 *   32  u32      number of tensors
 *   36  u32      text bytes
 *   40  u8[24]   zero
 *   64  text     INI text ([meta] and [config] sections), not NUL-terminated
 *   ..  table    one 128-byte entry per tensor, from a 64-byte boundary:
 *                char[64] name (NUL-padded) | u32 dtype (0 f32, 1 i32, 2 u8) | u32 ndim |
 *                u64[4] shape | u64 offset | u64 nbytes | u32 crc32c of the data | u32 zero
 *   ..  data     each tensor at its offset, 64-byte aligned
 *   end-16       trailer: char[8] "ALGOEND\0" | u32 crc32c of every byte before the trailer | u32 zero
 * Readers check every size against the file length before trusting it, and both checksums. */
#ifndef AP_TENSORFILE_H
#define AP_TENSORFILE_H

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

enum { TF_KIND_CHECKPOINT = 1, TF_KIND_DUMP = 2, TF_KIND_TOKENIZER = 3 };
enum { TF_F32 = 0, TF_I32 = 1, TF_U8 = 2 };
#define TF_VERSION 1
#define TF_NAME_MAX 64

typedef struct {
    char name[TF_NAME_MAX];
    int dtype;
    int ndim;
    uint64_t shape[4];
    const void *data;
    uint64_t nbytes;
} TensorEntry;

typedef struct {
    TensorEntry *t;
    int n, cap;
    int failed; /* out of memory while adding */
} TensorList;

void tensorlist_add(TensorList *l, const char *name, int dtype, const void *data, int ndim, const uint64_t *shape);
void tensorlist_free(TensorList *l);
/* Writes atomically (temp file, fsync, rename). */
int tensorfile_write(const char *path, int kind, const char *text, const TensorList *l, Status *st);

typedef struct {
    char *buf; /* whole file */
    size_t len;
    int kind;
    char *text; /* NUL-terminated copy of the text */
    TensorEntry *t;
    int n;
} TensorFile;

int tensorfile_read(TensorFile *f, const char *path, Status *st);
const TensorEntry *tensorfile_find(const TensorFile *f, const char *name);
void tensorfile_free(TensorFile *f);

#endif
