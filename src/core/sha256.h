/* sha256.h - SHA-256 (FIPS 180-4), for corpus manifests and content identities. */
#ifndef AP_SHA256_H
#define AP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, unsigned char out[32]);
/* Lower-case hex of the digest of data (65 bytes with the NUL). */
void sha256_hex(const void *data, size_t len, char hex[65]);
void sha256_to_hex(const unsigned char digest[32], char hex[65]);

#endif
