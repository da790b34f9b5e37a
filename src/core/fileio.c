/* fileio.c - whole-file reads, atomic writes, locks, CRC32C (see fileio.h). */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

int file_read_all(const char *path, char **out, size_t *len, size_t max_bytes, Status *st) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return status_errno(st, errno, "cannot open '%s'", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return status_errno(st, e, "cannot stat '%s'", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return status_fail(st, AP_EINVAL, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return status_fail(st, AP_EINVAL, "'%s' is %lld bytes, more than the %zu allowed here", path,
                           (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return status_fail(st, AP_ENOMEM, "out of memory reading '%s' (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return status_errno(st, e, "cannot read '%s'", path);
        }
        if (r == 0) break; /* file shrank while reading */
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

int dir_create(const char *path, Status *st) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return status_fail(st, AP_EINVAL, "path too long: '%s'", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return status_errno(st, errno, "cannot create directory '%s'", buf);
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return status_errno(st, errno, "cannot create directory '%s'", buf);
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) return status_fail(st, AP_EIO, "'%s' is not a directory", buf);
    return 0;
}

int atomic_open(AtomicFile *af, const char *path, Status *st) {
    memset(af, 0, sizeof *af);
    af->fd = -1;
    if (snprintf(af->path, sizeof af->path, "%s", path) >= (int)sizeof af->path)
        return status_fail(st, AP_EINVAL, "path too long: '%s'", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp", path);
    af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (af->fd < 0) return status_errno(st, errno, "cannot create '%s'", af->tmp);
    return 0;
}

int atomic_write(AtomicFile *af, const void *data, size_t len, Status *st) {
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(af->fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return status_errno(st, errno, "cannot write '%s'", af->tmp);
        p += w;
        left -= (size_t)w;
    }
    af->crc = crc32c_update(af->crc, data, len);
    af->written += len;
    return 0;
}

int atomic_pad(AtomicFile *af, size_t align, Status *st) {
    static const char zeros[256];
    size_t rem = (size_t)(af->written % align);
    if (rem == 0) return 0;
    size_t need = align - rem;
    while (need > 0) {
        size_t n = need < sizeof zeros ? need : sizeof zeros;
        if (atomic_write(af, zeros, n, st)) return -1;
        need -= n;
    }
    return 0;
}

static void fsync_parent_dir(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    int dfd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int atomic_commit(AtomicFile *af, Status *st) {
    if (fsync(af->fd) != 0) {
        int e = errno;
        atomic_abort(af);
        return status_errno(st, e, "cannot sync '%s'", af->tmp);
    }
    if (close(af->fd) != 0) {
        int e = errno;
        af->fd = -1;
        atomic_abort(af);
        return status_errno(st, e, "cannot close '%s'", af->tmp);
    }
    af->fd = -1;
    if (rename(af->tmp, af->path) != 0) {
        int e = errno;
        atomic_abort(af);
        return status_errno(st, e, "cannot rename '%s' to '%s'", af->tmp, af->path);
    }
    fsync_parent_dir(af->path);
    return 0;
}

void atomic_abort(AtomicFile *af) {
    if (af->fd >= 0) close(af->fd);
    af->fd = -1;
    if (af->tmp[0]) unlink(af->tmp);
}

int file_write_atomic(const char *path, const void *data, size_t len, Status *st) {
    AtomicFile af;
    if (atomic_open(&af, path, st)) return -1;
    if (atomic_write(&af, data, len, st)) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af, st);
}

/* CRC32C: hardware instruction when the build targets SSE4.2, else a slice-by-8 table. */
#if defined(__SSE4_2__) && defined(__x86_64__)
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}
#else
static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = 1;
}

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len) {
    /* The table is a pure function of constants: a racy double init writes the same values. */
    if (!crc_ready) crc_init();
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
            crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return ~c;
}
#endif

int file_lock(const char *lock_path, const char *what, const char *advice, int *fd, Status *st) {
    int f = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return status_errno(st, errno, "cannot open the lock of %s", what);
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(f, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(f);
        if (e != EWOULDBLOCK) return status_errno(st, e, "cannot lock %s", what);
        return status_fail(st, AP_EINVAL, "%s is in use by process %s%s", what, pid[0] ? pid : "(unknown)", advice);
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    int written = ftruncate(f, 0) == 0 && pwrite(f, line, (size_t)len, 0) == len;
    (void)written; /* the pid is for messages only: the flock is the lock */
    *fd = f;
    return 0;
}

int file_lock_wait(const char *lock_path, const char *what, int *fd, Status *st) {
    int f = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0) return status_errno(st, errno, "cannot open the lock of %s", what);
    int rc;
    while ((rc = flock(f, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        int e = errno;
        close(f);
        return status_errno(st, e, "cannot lock %s", what);
    }
    *fd = f;
    return 0;
}

void file_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing drops the flock */
}
