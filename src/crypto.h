/* Randomness and digests via OpenSSL (RAND_bytes, EVP). */
#ifndef AUD_CRYPTO_H
#define AUD_CRYPTO_H

#include <stddef.h>

#define AUD_SHA256_LEN 32

/* Each returns 0, or -1 after writing OpenSSL's reason into err. */
int aud_random_bytes(unsigned char *buf, size_t n, char *err, size_t errlen);
/* Uniform in [0, 1) with 53 random bits. */
int aud_random_unit(double *out, char *err, size_t errlen);
int aud_sha256(const void *data, size_t len,
               unsigned char digest[AUD_SHA256_LEN], char *err, size_t errlen);

/* Lowercase hex of n bytes into out, which must hold 2n bytes (no NUL). */
void aud_hex(const unsigned char *in, size_t n, char *out);

#endif
