// HMAC-SHA1 over OpenSSL's SHA-1 block functions (declared deprecated in OpenSSL 3.0, still
// supported): the keyed inner and outer states are computed once per key and copied per
// message, so a message costs its own SHA-1 blocks plus one, and no allocation.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "CMeetKitCrypto.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

struct mk_hmac_sha1 {
    SHA_CTX inner;
    SHA_CTX outer;
};

mk_hmac_sha1 *mk_hmac_sha1_new(const uint8_t *key, size_t length) {
    if (length > SHA_CBLOCK) return NULL;
    mk_hmac_sha1 *h = malloc(sizeof *h);
    if (h == NULL) return NULL;
    uint8_t block[SHA_CBLOCK];
    memset(block, 0, sizeof block);
    memcpy(block, key, length);
    for (size_t i = 0; i < sizeof block; i++) block[i] ^= 0x36;
    SHA1_Init(&h->inner);
    SHA1_Update(&h->inner, block, sizeof block);
    for (size_t i = 0; i < sizeof block; i++) block[i] ^= 0x36 ^ 0x5c;
    SHA1_Init(&h->outer);
    SHA1_Update(&h->outer, block, sizeof block);
    OPENSSL_cleanse(block, sizeof block);
    return h;
}

void mk_hmac_sha1_free(mk_hmac_sha1 *key) {
    if (key == NULL) return;
    OPENSSL_cleanse(key, sizeof *key);
    free(key);
}

void mk_hmac_sha1_digest(const mk_hmac_sha1 *key, const uint8_t *data, size_t length, const uint8_t suffix[4],
                         uint8_t digest[20]) {
    SHA_CTX c = key->inner;
    uint8_t inner[SHA_DIGEST_LENGTH];
    SHA1_Update(&c, data, length);
    SHA1_Update(&c, suffix, 4);
    SHA1_Final(inner, &c);
    c = key->outer;
    SHA1_Update(&c, inner, sizeof inner);
    SHA1_Final(digest, &c);
    OPENSSL_cleanse(&c, sizeof c);
}
