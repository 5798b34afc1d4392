/* Creamailer request signing (sign.c): the signing input url .. body ..
 * timestamp, and the v1/v2 signatures built on it.
 *
 * Input: 8 bytes of timestamp, one byte choosing a prefix already in the
 * output buffer, then url, secret and body fields (0xFF between them).
 *
 * Checks: aud_sign_input appends exactly url, body and the timestamp in
 * plain decimal to whatever the buffer held, and leaves the buffer usable.
 * aud_sign_creamailer gives 40 (v1) or 64 (v2) lowercase hex digits, equal
 * to the digest of that input computed here through crypto.c, and refuses
 * an empty secret. */
#include <inttypes.h>

#include "fuzz.h"

#include "buf.h"
#include "crypto.h"
#include "encoding.h"
#include "sign.h"

static void check_input(const char *prefix, size_t prefix_len, const char *url,
                        size_t url_len, const char *body, size_t body_len,
                        unsigned long long ts)
{
    struct aud_buf b;
    aud_buf_init(&b);
    FUZZ_CHECK(aud_buf_append(&b, prefix, prefix_len) == 0);
    FUZZ_CHECK(aud_sign_input(&b, url, url_len, body, body_len, ts) == 0);

    char digits[24];
    int dn = snprintf(digits, sizeof digits, "%llu", ts);
    FUZZ_CHECK(dn > 0 && (size_t)dn < sizeof digits);
    FUZZ_CHECK(b.len == prefix_len + url_len + body_len + (size_t)dn);
    size_t o = 0;
    FUZZ_CHECK(prefix_len == 0 || memcmp(b.data, prefix, prefix_len) == 0);
    o += prefix_len;
    FUZZ_CHECK(url_len == 0 || memcmp(b.data + o, url, url_len) == 0);
    o += url_len;
    FUZZ_CHECK(body_len == 0 || memcmp(b.data + o, body, body_len) == 0);
    o += body_len;
    FUZZ_CHECK(memcmp(b.data + o, digits, (size_t)dn) == 0);
    aud_buf_free(&b);
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void check_signatures(const char *url, size_t url_len, const char *body,
                             size_t body_len, const char *secret,
                             size_t secret_len, unsigned long long ts)
{
    struct aud_buf input;
    aud_buf_init(&input);
    FUZZ_CHECK(aud_sign_input(&input, url, url_len, body, body_len, ts) == 0);
    const char *in = input.data ? input.data : "";
    char err[300];

    for (int version = 1; version <= 2; version++) {
        char out[AUD_SIGN_TEXT_MAX];
        size_t out_len = 0;
        int rc = aud_sign_creamailer(version, secret, secret_len, url, url_len,
                                     body, body_len, ts, out, &out_len, err,
                                     sizeof err);
        if (secret_len == 0) {
            FUZZ_CHECK(rc == -1);
            continue;
        }
        FUZZ_CHECK(rc == 0);
        unsigned char mac[AUD_SHA256_LEN];
        size_t mac_len;
        if (version == 1) {
            struct aud_span parts[2] = {{in, input.len}, {secret, secret_len}};
            FUZZ_CHECK(aud_sha1(parts, 2, mac, err, sizeof err) == 0);
            mac_len = AUD_SHA1_LEN;
        } else {
            FUZZ_CHECK(aud_hmac_sha256(secret, secret_len, in, input.len, mac,
                                       err, sizeof err) == 0);
            mac_len = AUD_SHA256_LEN;
        }
        char hex[2 * AUD_SHA256_LEN];
        aud_hex(mac, mac_len, hex);
        FUZZ_CHECK(out_len == 2 * mac_len);
        FUZZ_CHECK(is_lower_hex(out, out_len));
        FUZZ_CHECK(memcmp(out, hex, out_len) == 0);
    }
    aud_buf_free(&input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"", "x", "https://api.cmfile.net"};
    struct fuzz_in in = {data, size};
    unsigned long long ts = fuzz_u64(&in);
    const char *prefix = prefixes[fuzz_byte(&in) % 3];
    size_t url_len, secret_len, body_len;
    char *url = fuzz_field(&in, &url_len);
    char *secret = fuzz_field(&in, &secret_len);
    char *body = fuzz_rest(&in, &body_len);
    /* The binding passes NULL for an absent body. */
    const char *body_arg = body_len ? body : NULL;

    check_input(prefix, strlen(prefix), url, url_len, body_arg, body_len, ts);
    check_signatures(url, url_len, body_arg, body_len, secret, secret_len, ts);

    free(url);
    free(secret);
    free(body);
    return 0;
}
