/* Randomness, digests and HMAC via OpenSSL (RAND_bytes, EVP, HMAC). */
#ifndef AUD_CRYPTO_H
#define AUD_CRYPTO_H

#include <stddef.h>

#define AUD_SHA1_LEN 20
#define AUD_SHA256_LEN 32

/* One piece of a message that is digested as the concatenation of its
 * pieces, so callers need not copy secrets into a joined buffer. */
struct aud_span {
    const void *data;
    size_t len;
};

/* Each returns 0, or -1 after writing OpenSSL's reason into err. */
int aud_random_bytes(unsigned char *buf, size_t n, char *err, size_t errlen);
/* Uniform in [0, 1) with 53 random bits. */
int aud_random_unit(double *out, char *err, size_t errlen);
int aud_sha256(const void *data, size_t len,
               unsigned char digest[AUD_SHA256_LEN], char *err, size_t errlen);
int aud_sha1(const struct aud_span *parts, size_t nparts,
             unsigned char digest[AUD_SHA1_LEN], char *err, size_t errlen);
/* key may be empty; it must be at most INT_MAX bytes (OpenSSL's limit). */
int aud_hmac_sha256(const void *key, size_t key_len, const void *msg,
                    size_t msg_len, unsigned char mac[AUD_SHA256_LEN],
                    char *err, size_t errlen);

#endif
