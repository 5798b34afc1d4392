#include "sign.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "encoding.h"

/* Longest decimal unsigned long long (2^64 - 1) is 20 digits. */
#define DECIMAL_MAX 20

static const char SHA256_PREFIX[] = "sha256=";
#define SHA256_PREFIX_LEN (sizeof SHA256_PREFIX - 1)

/* By hand rather than printf: the text is signed, so it must not depend
 * on the C library or locale in any way. */
static size_t format_decimal(unsigned long long v, char out[DECIMAL_MAX])
{
    char tmp[DECIMAL_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int aud_sign_input(struct aud_buf *out, const char *url, size_t url_len,
                   const char *body, size_t body_len,
                   unsigned long long timestamp)
{
    char ts[DECIMAL_MAX];
    size_t ts_len = format_decimal(timestamp, ts);
    if (aud_buf_append(out, url, url_len) != 0 ||
        aud_buf_append(out, body, body_len) != 0 ||
        aud_buf_append(out, ts, ts_len) != 0)
        return -1;
    return 0;
}

int aud_sign_creamailer(int version, const char *secret, size_t secret_len,
                        const char *url, size_t url_len, const char *body,
                        size_t body_len, unsigned long long timestamp,
                        char out[AUD_SIGN_TEXT_MAX], size_t *out_len,
                        char *err, size_t errlen)
{
    if (version != 1 && version != 2) {
        snprintf(err, errlen, "unknown signature version %d", version);
        return -1;
    }
    if (secret_len == 0) {
        snprintf(err, errlen, "empty secret");
        return -1;
    }
    struct aud_buf input;
    aud_buf_init(&input);
    if (aud_sign_input(&input, url, url_len, body, body_len, timestamp) != 0) {
        aud_buf_free(&input);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* An empty input leaves data NULL; hash functions want a pointer. */
    const char *in = input.data ? input.data : "";
    unsigned char mac[AUD_SHA256_LEN];
    size_t mac_len;
    int rc;
    if (version == 1) {
        /* The secret goes in as a second part, so it is never copied into
         * a heap buffer that could outlive this call in freed memory. */
        struct aud_span parts[2] = {{in, input.len}, {secret, secret_len}};
        rc = aud_sha1(parts, 2, mac, err, errlen);
        mac_len = AUD_SHA1_LEN;
    } else {
        rc = aud_hmac_sha256(secret, secret_len, in, input.len, mac, err, errlen);
        mac_len = AUD_SHA256_LEN;
    }
    aud_buf_free(&input);
    if (rc != 0)
        return -1;
    aud_hex(mac, mac_len, out);
    *out_len = 2 * mac_len;
    return 0;
}

int aud_webhook_sign(enum aud_webhook_provider provider,
                     enum aud_webhook_style style, const char *body,
                     size_t body_len, const char *secret, size_t secret_len,
                     char out[AUD_SIGN_TEXT_MAX], size_t *out_len, char *err,
                     size_t errlen)
{
    if (secret_len == 0) {
        snprintf(err, errlen, "empty secret");
        return -1;
    }
    if (provider == AUD_WEBHOOK_SYSTEME && style != AUD_WEBHOOK_HEX) {
        snprintf(err, errlen, "systeme signatures are hex only");
        return -1;
    }
    unsigned char mac[AUD_SHA256_LEN];
    if (aud_hmac_sha256(secret, secret_len, body ? body : "", body_len, mac,
                        err, errlen) != 0)
        return -1;
    size_t n = 0;
    if (style == AUD_WEBHOOK_BASE64) {
        n = aud_base64_encode(mac, sizeof mac, out);
    } else {
        if (provider == AUD_WEBHOOK_SUBSCRIBEFLOW) {
            memcpy(out, SHA256_PREFIX, SHA256_PREFIX_LEN);
            n = SHA256_PREFIX_LEN;
        }
        aud_hex(mac, sizeof mac, out + n);
        n += 2 * sizeof mac;
    }
    *out_len = n;
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

static int has_sha256_prefix(const char *s, size_t n)
{
    if (n < SHA256_PREFIX_LEN)
        return 0;
    for (size_t i = 0; i < SHA256_PREFIX_LEN; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != SHA256_PREFIX[i])
            return 0;
    }
    return 1;
}

/* Decodes a trimmed, non-empty signature into got; 0 or -1 (malformed).
 * Systeme sends bare hex; "sha256=" is tolerated for proxies that
 * normalise signature headers. SubscribeFlow sends "sha256=<hex>" or bare
 * base64; bare hex is not one of its formats. */
static int decode_signature(enum aud_webhook_provider provider, const char *s,
                            size_t n, unsigned char got[AUD_SHA256_LEN])
{
    size_t len = 0;
    int rc;
    if (has_sha256_prefix(s, n))
        rc = aud_hex_decode(s + SHA256_PREFIX_LEN, n - SHA256_PREFIX_LEN, got,
                            AUD_SHA256_LEN, &len);
    else if (provider == AUD_WEBHOOK_SYSTEME)
        rc = aud_hex_decode(s, n, got, AUD_SHA256_LEN, &len);
    else
        rc = aud_base64_decode(s, n, got, AUD_SHA256_LEN, &len);
    return rc == 0 && len == AUD_SHA256_LEN ? 0 : -1;
}

int aud_webhook_verify(enum aud_webhook_provider provider, const char *body,
                       size_t body_len, const char *sig, size_t sig_len,
                       const char *secret, size_t secret_len,
                       enum aud_webhook_result *result, char *err,
                       size_t errlen)
{
    if (secret_len == 0) {
        snprintf(err, errlen, "empty secret");
        return -1;
    }
    if (sig == NULL)
        sig_len = 0;
    while (sig_len > 0 && is_space(sig[0])) {
        sig++;
        sig_len--;
    }
    while (sig_len > 0 && is_space(sig[sig_len - 1]))
        sig_len--;
    if (sig_len == 0) {
        *result = AUD_WEBHOOK_MISSING;
        return 0;
    }
    /* The received value is public, so parsing it may branch freely;
     * only the comparison with the expected MAC must not. */
    unsigned char got[AUD_SHA256_LEN];
    if (decode_signature(provider, sig, sig_len, got) != 0) {
        *result = AUD_WEBHOOK_MALFORMED;
        return 0;
    }
    unsigned char expected[AUD_SHA256_LEN];
    if (aud_hmac_sha256(secret, secret_len, body ? body : "", body_len,
                        expected, err, errlen) != 0)
        return -1;
    int same = CRYPTO_memcmp(expected, got, sizeof expected) == 0;
    /* The expected MAC is a valid signature for this body: do not leave it
     * on the stack for a later bug to disclose. */
    OPENSSL_cleanse(expected, sizeof expected);
    *result = same ? AUD_WEBHOOK_OK : AUD_WEBHOOK_MISMATCH;
    return 0;
}

const char *aud_webhook_result_name(enum aud_webhook_result r)
{
    switch (r) {
    case AUD_WEBHOOK_OK:
        return "ok";
    case AUD_WEBHOOK_MISSING:
        return "missing_signature";
    case AUD_WEBHOOK_MALFORMED:
        return "malformed_signature";
    case AUD_WEBHOOK_MISMATCH:
        return "mismatch";
    }
    return "unknown";
}
