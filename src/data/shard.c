/* shard.c - write and map token shards (see shard.h). */
#include "data/shard.h"

#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SHARD_MAGIC[8] = {'A', 'P', 'S', 'H', 'A', 'R', 'D', '\0'};
#define SHARD_HEADER 64

int shard_write(const char *path, const Tokenizer *t, const uint32_t *ids, size_t n, uint64_t n_bytes, uint64_t n_docs,
                uint64_t text_hash, Status *st) {
    int width = t->n_tokens <= 65536 ? 2 : 4;
    size_t data_len = n * (size_t)width;
    unsigned char *data = malloc(data_len ? data_len : 1);
    if (!data) return status_fail(st, AP_ENOMEM, "out of memory writing '%s'", path);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < width; b++) data[i * (size_t)width + (size_t)b] = (unsigned char)(ids[i] >> (8 * b));
    unsigned char h[SHARD_HEADER] = {0};
    uint32_t version = 1, w = (uint32_t)width, crc = crc32c_update(0, data, data_len), hb = SHARD_HEADER;
    uint64_t nt = n;
    memcpy(h, SHARD_MAGIC, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &w, 4);
    memcpy(h + 16, &nt, 8);
    memcpy(h + 24, &n_bytes, 8);
    memcpy(h + 32, &n_docs, 8);
    memcpy(h + 40, &t->hash, 8);
    memcpy(h + 48, &text_hash, 8);
    memcpy(h + 56, &crc, 4);
    memcpy(h + 60, &hb, 4);
    AtomicFile af;
    int rc = atomic_open(&af, path, st);
    if (!rc) rc = atomic_write(&af, h, sizeof h, st);
    if (!rc) rc = atomic_write(&af, data, data_len, st);
    free(data);
    if (rc) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, st);
}

int shard_open(Shard *s, const char *path, const Tokenizer *t, Status *st) {
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return status_errno(st, errno, "cannot open shard '%s'", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return status_errno(st, e, "cannot stat '%s'", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < SHARD_HEADER) {
        close(fd);
        return status_fail(st, AP_ECORRUPT, "shard '%s' is %zu bytes: truncated or not a shard", path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return status_errno(st, errno, "cannot map '%s'", path);
    const unsigned char *h = map;
    s->map = map;
    s->map_len = len;
    uint32_t version, width, crc, hb;
    memcpy(&version, h + 8, 4);
    memcpy(&width, h + 12, 4);
    memcpy(&s->n_tokens, h + 16, 8);
    memcpy(&s->n_bytes, h + 24, 8);
    memcpy(&s->n_docs, h + 32, 8);
    memcpy(&s->tokenizer_hash, h + 40, 8);
    memcpy(&s->text_hash, h + 48, 8);
    memcpy(&crc, h + 56, 4);
    memcpy(&hb, h + 60, 4);
    const char *why = NULL;
    if (memcmp(h, SHARD_MAGIC, 8)) why = "not a token shard (bad magic)";
    else if (version != 1) why = "unknown shard version";
    else if ((width != 2 && width != 4) || hb != SHARD_HEADER) why = "malformed header";
    else if (s->n_tokens > (len - SHARD_HEADER) / width || SHARD_HEADER + s->n_tokens * width != len)
        why = "size does not match its token count (truncated?)";
    else if (!AP_FUZZING && crc32c_update(0, h + SHARD_HEADER, len - SHARD_HEADER) != crc)
        why = "checksum mismatch (corrupted)";
    if (why) {
        shard_close(s);
        return status_fail(st, AP_ECORRUPT, "shard '%s': %s", path, why);
    }
    s->width = (int)width;
    s->tokens = h + SHARD_HEADER;
    if (t) {
        if (s->tokenizer_hash != t->hash) {
            shard_close(s);
            return status_fail(st, AP_EINVAL, "shard '%s' was made with another tokenizer than '%s'", path, t->name);
        }
        for (uint64_t i = 0; i < s->n_tokens; i++)
            if (shard_token(s, i) >= (uint32_t)t->n_tokens) {
                shard_close(s);
                return status_fail(st, AP_ECORRUPT, "shard '%s': token %llu is outside the vocabulary", path,
                                   (unsigned long long)i);
            }
    }
    return 0;
}

void shard_close(Shard *s) {
    if (s->map) munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}
