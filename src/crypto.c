#include "crypto.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Drains the thread's OpenSSL error queue into err: libcurl shares that
 * queue and would otherwise report our stale error on its next TLS call. */
static void take_error(const char *what, char *err, size_t errlen)
{
    unsigned long code = ERR_get_error();
    char reason[256] = "unknown error";
    if (code != 0)
        ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    if (errlen > 0)
        snprintf(err, errlen, "%s failed: %s", what, reason);
}

int aud_random_bytes(unsigned char *buf, size_t n, char *err, size_t errlen)
{
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(buf, chunk) != 1) {
            take_error("RAND_bytes", err, errlen);
            return -1;
        }
        buf += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

int aud_random_unit(double *out, char *err, size_t errlen)
{
    unsigned char b[8];
    if (aud_random_bytes(b, sizeof b, err, errlen) != 0)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < sizeof b; i++)
        x = (x << 8) | b[i];
    /* The top 53 bits fill a double's mantissa exactly, so the result is
     * uniform on a 2^-53 grid and never reaches 1. */
    *out = (double)(x >> 11) * (1.0 / 9007199254740992.0);
    return 0;
}

int aud_sha256(const void *data, size_t len,
               unsigned char digest[AUD_SHA256_LEN], char *err, size_t errlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        take_error("EVP_MD_CTX_new", err, errlen);
        return -1;
    }
    unsigned int out_len = 0;
    int rc = -1;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        take_error("EVP_DigestInit_ex", err, errlen);
    else if (EVP_DigestUpdate(ctx, data, len) != 1)
        take_error("EVP_DigestUpdate", err, errlen);
    else if (EVP_DigestFinal_ex(ctx, digest, &out_len) != 1)
        take_error("EVP_DigestFinal_ex", err, errlen);
    else if (out_len != AUD_SHA256_LEN)
        snprintf(err, errlen, "sha256 produced %u bytes", out_len);
    else
        rc = 0;
    EVP_MD_CTX_free(ctx);
    return rc;
}

void aud_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}
