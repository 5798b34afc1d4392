#include "crypto.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

/* Digest of the concatenated parts, which must produce exactly len bytes. */
static int digest_parts(const EVP_MD *md, const char *name,
                        const struct aud_span *parts, size_t nparts,
                        unsigned char *digest, unsigned int len, char *err,
                        size_t errlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        take_error("EVP_MD_CTX_new", err, errlen);
        return -1;
    }
    unsigned int out_len = 0;
    int rc = -1;
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        take_error("EVP_DigestInit_ex", err, errlen);
        goto done;
    }
    for (size_t i = 0; i < nparts; i++) {
        if (EVP_DigestUpdate(ctx, parts[i].data, parts[i].len) != 1) {
            take_error("EVP_DigestUpdate", err, errlen);
            goto done;
        }
    }
    if (EVP_DigestFinal_ex(ctx, digest, &out_len) != 1)
        take_error("EVP_DigestFinal_ex", err, errlen);
    else if (out_len != len)
        snprintf(err, errlen, "%s produced %u bytes", name, out_len);
    else
        rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int aud_sha256(const void *data, size_t len,
               unsigned char digest[AUD_SHA256_LEN], char *err, size_t errlen)
{
    struct aud_span part = {data, len};
    return digest_parts(EVP_sha256(), "sha256", &part, 1, digest,
                        AUD_SHA256_LEN, err, errlen);
}

int aud_sha1(const struct aud_span *parts, size_t nparts,
             unsigned char digest[AUD_SHA1_LEN], char *err, size_t errlen)
{
    return digest_parts(EVP_sha1(), "sha1", parts, nparts, digest,
                        AUD_SHA1_LEN, err, errlen);
}

int aud_hmac_sha256(const void *key, size_t key_len, const void *msg,
                    size_t msg_len, unsigned char mac[AUD_SHA256_LEN],
                    char *err, size_t errlen)
{
    if (key_len > INT_MAX) {
        snprintf(err, errlen, "HMAC key too long");
        return -1;
    }
    /* Never a NULL key: OpenSSL gives NULL special meanings (HMAC_Init_ex:
     * "keep the previous key"), while an empty key is just a short key. */
    static const unsigned char no_key[1] = {0};
    unsigned int out_len = 0;
    if (HMAC(EVP_sha256(), key_len ? key : no_key, (int)key_len, msg, msg_len,
             mac, &out_len) == NULL) {
        take_error("HMAC", err, errlen);
        return -1;
    }
    if (out_len != AUD_SHA256_LEN) {
        snprintf(err, errlen, "HMAC-SHA256 produced %u bytes", out_len);
        return -1;
    }
    return 0;
}
