// CMeetKitCrypto — HMAC-SHA1 with its keyed states computed once, for SRTP's
// AES_CM_128_HMAC_SHA1_80 tag on every received packet. OpenSSL 3.0's EVP interfaces
// allocate each time a digest or MAC context is restarted (two allocations per packet);
// SHA-1's own contexts are plain structures, copied here instead.
#ifndef CMEETKIT_CRYPTO_H
#define CMEETKIT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/// An HMAC-SHA1 key (RFC 2104) with the inner and outer hash states already past their
/// padded key blocks.
typedef struct mk_hmac_sha1 mk_hmac_sha1;

/// A key of `length` bytes (at most 64); NULL when memory runs out.
mk_hmac_sha1 *mk_hmac_sha1_new(const uint8_t *key, size_t length);

/// Frees a key (its states are wiped first).
void mk_hmac_sha1_free(mk_hmac_sha1 *key);

/// HMAC-SHA1 of `data` (`length` bytes) followed by the 4 bytes of `suffix`, into
/// `digest` (20 bytes). Allocates nothing.
void mk_hmac_sha1_digest(const mk_hmac_sha1 *key, const uint8_t *data, size_t length, const uint8_t suffix[4],
                         uint8_t digest[20]);

#endif
