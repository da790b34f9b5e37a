/* tensorfile.c - write and validate the tensor container (see tensorfile.h). */
#include "core/tensorfile.h"

#include "core/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'A', 'L', 'G', 'O', 'P', 'R', 'O', 'G'};
static const char END_MAGIC[8] = {'A', 'L', 'G', 'O', 'E', 'N', 'D', '\0'};
#define FIXED_BYTES 64
#define ENTRY_BYTES 128
#define TRAILER_BYTES 16
#define MAX_TENSORS 100000
#define MAX_TEXT (16u << 20)

static size_t align64(size_t x) { return (x + 63) / 64 * 64; }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static size_t dtype_size(int dtype) { return dtype == TF_F32 || dtype == TF_I32 ? 4 : dtype == TF_U8 ? 1 : 0; }

void tensorlist_add(TensorList *l, const char *name, int dtype, const void *data, int ndim, const uint64_t *shape) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        TensorEntry *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            l->failed = 1;
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    TensorEntry *e = &l->t[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = dtype;
    e->ndim = ndim;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        n *= shape[i];
    }
    e->data = data;
    e->nbytes = n * dtype_size(dtype);
}

void tensorlist_free(TensorList *l) {
    free(l->t);
    memset(l, 0, sizeof *l);
}

int tensorfile_write(const char *path, int kind, const char *text, const TensorList *l, Status *st) {
    if (l->failed) return status_fail(st, AP_ENOMEM, "out of memory listing tensors for '%s'", path);
    size_t text_len = strlen(text);
    size_t table_off = align64(FIXED_BYTES + text_len);
    size_t header = align64(table_off + (size_t)l->n * ENTRY_BYTES);
    size_t off = header;
    unsigned char *head = calloc(1, header);
    if (!head) return status_fail(st, AP_ENOMEM, "out of memory writing '%s'", path);
    for (int i = 0; i < l->n; i++) {
        unsigned char *e = head + table_off + (size_t)i * ENTRY_BYTES;
        memcpy(e, l->t[i].name, strnlen(l->t[i].name, TF_NAME_MAX - 1));
        put32(e + 64, (uint32_t)l->t[i].dtype);
        put32(e + 68, (uint32_t)l->t[i].ndim);
        for (int d = 0; d < 4; d++) put64(e + 72 + 8 * d, d < l->t[i].ndim ? l->t[i].shape[d] : 0);
        put64(e + 104, off);
        put64(e + 112, l->t[i].nbytes);
        put32(e + 120, crc32c_update(0, l->t[i].data, l->t[i].nbytes));
        off = align64(off + l->t[i].nbytes);
    }
    size_t file_bytes = off + TRAILER_BYTES;
    memcpy(head, MAGIC, 8);
    put32(head + 8, TF_VERSION);
    put32(head + 12, (uint32_t)kind);
    put64(head + 16, header);
    put64(head + 24, file_bytes);
    put32(head + 32, (uint32_t)l->n);
    put32(head + 36, (uint32_t)text_len);
    memcpy(head + FIXED_BYTES, text, text_len);

    AtomicFile af;
    if (atomic_open(&af, path, st)) {
        free(head);
        return -1;
    }
    int rc = atomic_write(&af, head, header, st);
    free(head);
    for (int i = 0; i < l->n && !rc; i++) {
        rc = atomic_write(&af, l->t[i].data, l->t[i].nbytes, st);
        if (!rc) rc = atomic_pad(&af, 64, st);
    }
    if (!rc) {
        unsigned char trailer[TRAILER_BYTES] = {0};
        memcpy(trailer, END_MAGIC, 8);
        put32(trailer + 8, af.crc);
        rc = atomic_write(&af, trailer, TRAILER_BYTES, st);
    }
    if (rc) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, st);
}

int tensorfile_read(TensorFile *f, const char *path, Status *st) {
    memset(f, 0, sizeof *f);
    if (file_read_all(path, &f->buf, &f->len, (size_t)1 << 40, st)) return -1;
    const unsigned char *b = (const unsigned char *)f->buf;
    size_t len = f->len;
#define BAD(...)                                                                                                     \
    do {                                                                                                             \
        status_fail(st, AP_ECORRUPT, __VA_ARGS__);                                                                   \
        status_wrap(st, "'%s'", path);                                                                               \
        tensorfile_free(f);                                                                                          \
        return -1;                                                                                                   \
    } while (0)
    if (len < FIXED_BYTES + TRAILER_BYTES || memcmp(b, MAGIC, 8)) BAD("not an algoprog tensor file (bad magic)");
    uint32_t version = get32(b + 8);
    if (version != TF_VERSION) BAD("format version %u, this build reads version %d", version, TF_VERSION);
    f->kind = (int)get32(b + 12);
    uint64_t header = get64(b + 16), file_bytes = get64(b + 24);
    uint32_t n = get32(b + 32), text_len = get32(b + 36);
    if (file_bytes != len)
        BAD("file is %zu bytes but its header says %llu (truncated or appended to)", len,
            (unsigned long long)file_bytes);
    if (memcmp(b + len - TRAILER_BYTES, END_MAGIC, 8)) BAD("missing end marker (truncated?)");
    if (!AP_FUZZING && crc32c_update(0, b, len - TRAILER_BYTES) != get32(b + len - 8))
        BAD("checksum mismatch (corrupted)");
    if (n > MAX_TENSORS || text_len > MAX_TEXT) BAD("implausible header (%u tensors, %u text bytes)", n, text_len);
    size_t table_off = align64(FIXED_BYTES + (size_t)text_len);
    if (header != align64(table_off + (size_t)n * ENTRY_BYTES) || header > len - TRAILER_BYTES)
        BAD("header size %llu does not match its contents", (unsigned long long)header);
    f->text = malloc((size_t)text_len + 1);
    f->t = calloc(n ? n : 1, sizeof *f->t);
    if (!f->text || !f->t) {
        tensorfile_free(f);
        return status_fail(st, AP_ENOMEM, "out of memory reading '%s'", path);
    }
    memcpy(f->text, b + FIXED_BYTES, text_len);
    f->text[text_len] = '\0';
    if (strlen(f->text) != text_len) BAD("NUL byte inside the header text");
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *e = b + table_off + (size_t)i * ENTRY_BYTES;
        TensorEntry *t = &f->t[i];
        if (memchr(e, 0, TF_NAME_MAX) == NULL) BAD("tensor %u: name not terminated", i);
        memcpy(t->name, e, TF_NAME_MAX);
        t->dtype = (int)get32(e + 64);
        t->ndim = (int)get32(e + 68);
        if (!dtype_size(t->dtype)) BAD("tensor '%s': unknown dtype %d", t->name, t->dtype);
        if (t->ndim < 0 || t->ndim > 4) BAD("tensor '%s': %d dimensions", t->name, t->ndim);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = get64(e + 72 + 8 * d);
            if (t->shape[d] == 0 || t->shape[d] > len || count > len / t->shape[d])
                BAD("tensor '%s': implausible shape", t->name);
            count *= t->shape[d];
        }
        uint64_t off = get64(e + 104);
        t->nbytes = get64(e + 112);
        if (t->nbytes != count * dtype_size(t->dtype)) BAD("tensor '%s': size does not match its shape", t->name);
        if (off < header || off % 64 || off > len - TRAILER_BYTES || t->nbytes > len - TRAILER_BYTES - off)
            BAD("tensor '%s': data lies outside the file", t->name);
        t->data = b + off;
        if (!AP_FUZZING && crc32c_update(0, t->data, t->nbytes) != get32(e + 120))
            BAD("tensor '%s': checksum mismatch", t->name);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(f->t[j].name, t->name)) BAD("tensor '%s' appears twice", t->name);
    }
    f->n = (int)n;
#undef BAD
    return 0;
}

const TensorEntry *tensorfile_find(const TensorFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

void tensorfile_free(TensorFile *f) {
    free(f->buf);
    free(f->text);
    free(f->t);
    memset(f, 0, sizeof *f);
}
