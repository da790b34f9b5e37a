/* fileio.h - files that are read whole, written atomically, checksummed and locked.
 *
 * Every file algoprog writes goes through AtomicFile: data goes to "<path>.tmp", is fsync'ed,
 * then renamed over <path> and the directory is fsync'ed. A crash or a full disk at any moment
 * leaves either the old file or the new one, never a torn mix; the old file stays in place
 * until the new one is complete. */
#ifndef AP_FILEIO_H
#define AP_FILEIO_H

/* Fuzz builds (make fuzz) skip checksum comparisons so the fuzzer can reach the parsing behind
 * them; the checksums themselves are tested in the normal builds. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define AP_FUZZING 1
#else
#define AP_FUZZING 0
#endif

#include "core/status.h"

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. Fails if larger than max_bytes. */
int file_read_all(const char *path, char **out, size_t *len, size_t max_bytes, Status *st);
/* Writes a whole buffer atomically. */
int file_write_atomic(const char *path, const void *data, size_t len, Status *st);
int file_exists(const char *path);
/* mkdir -p */
int dir_create(const char *path, Status *st);

typedef struct {
    int fd;
    char path[1024];
    char tmp[1040];
    uint64_t written;
    uint32_t crc; /* running CRC32C of everything written */
} AtomicFile;

int atomic_open(AtomicFile *af, const char *path, Status *st);
int atomic_write(AtomicFile *af, const void *data, size_t len, Status *st);
/* Writes zero bytes until the file offset is a multiple of `align`. */
int atomic_pad(AtomicFile *af, size_t align, Status *st);
/* fsync, close, rename over the final path, fsync the directory. */
int atomic_commit(AtomicFile *af, Status *st);
/* Closes and removes the temporary file; safe to call after a failed write. */
void atomic_abort(AtomicFile *af);

/* Takes an exclusive flock on lock_path (created if missing; it then holds our pid) into *fd.
 * Held by another process: fails (AP_EINVAL) with "<what> is in use by process <pid><advice>".
 * The kernel drops a flock when its holder dies, so a killed holder's lock is never stale. */
int file_lock(const char *lock_path, const char *what, const char *advice, int *fd, Status *st);
/* The same lock, waiting for another holder to release it (work that one process does for all,
 * such as encoding a corpus's shard). */
int file_lock_wait(const char *lock_path, const char *what, int *fd, Status *st);
void file_unlock(int fd);

/* CRC32C (Castagnoli), the checksum of checkpoints and shards. crc32c_update(0, p, n) starts. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

#endif
