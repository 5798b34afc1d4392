/* Webhook signature verification (sign.c aud_webhook_verify): the received
 * header value is attacker-controlled, and so is the body.
 *
 * Input: one byte choosing the provider, then the signature, the secret and
 * the body (0xFF between them).
 *
 * Checks: an empty secret is an error; otherwise the verdict is one of the
 * four results, an absent or blank signature is "missing", and a signature
 * accepted as OK is one that aud_webhook_sign could have produced for this
 * body (the same bytes, in one of the provider's forms). The provider's own
 * signatures, in every form it uses, verify as OK. */
#include <strings.h>

#include "fuzz.h"

#include "encoding.h"
#include "sign.h"

static int verify(enum aud_webhook_provider p, const char *body, size_t body_len,
                  const char *sig, size_t sig_len, const char *secret,
                  size_t secret_len, enum aud_webhook_result *r)
{
    char err[300];
    return aud_webhook_verify(p, body, body_len, sig, sig_len, secret,
                              secret_len, r, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    enum aud_webhook_provider provider =
        fuzz_byte(&in) & 1 ? AUD_WEBHOOK_SUBSCRIBEFLOW : AUD_WEBHOOK_SYSTEME;
    size_t sig_len, secret_len, body_len;
    char *sig = fuzz_field(&in, &sig_len);
    char *secret = fuzz_field(&in, &secret_len);
    char *body = fuzz_rest(&in, &body_len);
    char err[300];

    enum aud_webhook_result r = (enum aud_webhook_result)-1;
    int rc = verify(provider, body, body_len, sig, sig_len, secret, secret_len, &r);
    if (secret_len == 0) {
        FUZZ_CHECK(rc == -1);
        goto done;
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(r == AUD_WEBHOOK_OK || r == AUD_WEBHOOK_MISSING ||
               r == AUD_WEBHOOK_MALFORMED || r == AUD_WEBHOOK_MISMATCH);
    FUZZ_CHECK(strcmp(aud_webhook_result_name(r), "unknown") != 0);

    enum aud_webhook_result absent;
    FUZZ_CHECK(verify(provider, body, body_len, NULL, 0, secret, secret_len, &absent) == 0);
    FUZZ_CHECK(absent == AUD_WEBHOOK_MISSING);

    /* Every form the provider sends must verify; the fuzzed signature is
     * OK only if it decodes to the same MAC as one of them. */
    enum aud_webhook_style styles[2] = {AUD_WEBHOOK_HEX, AUD_WEBHOOK_BASE64};
    int nstyles = provider == AUD_WEBHOOK_SUBSCRIBEFLOW ? 2 : 1;
    unsigned char mac[32];
    for (int i = 0; i < nstyles; i++) {
        char good[AUD_SIGN_TEXT_MAX];
        size_t good_len = 0;
        FUZZ_CHECK(aud_webhook_sign(provider, styles[i], body, body_len, secret,
                                    secret_len, good, &good_len, err,
                                    sizeof err) == 0);
        FUZZ_CHECK(good_len <= AUD_SIGN_TEXT_MAX);
        char *copy = fuzz_copy(good, good_len);
        enum aud_webhook_result ok;
        FUZZ_CHECK(verify(provider, body, body_len, copy, good_len, secret,
                          secret_len, &ok) == 0);
        FUZZ_CHECK(ok == AUD_WEBHOOK_OK);
        free(copy);
        if (styles[i] == AUD_WEBHOOK_HEX) {
            size_t skip = provider == AUD_WEBHOOK_SUBSCRIBEFLOW ? 7 : 0;
            size_t len = 0;
            FUZZ_CHECK(aud_hex_decode(good + skip, good_len - skip, mac,
                                      sizeof mac, &len) == 0 && len == 32);
        }
    }
    if (r == AUD_WEBHOOK_OK) {
        /* Accepted: whatever form it took, it must carry exactly the MAC. A
         * sig decoded here loosely (strip blanks, optional prefix, hex or
         * base64) has to match. */
        size_t a = 0, b = sig_len;
        while (a < b && strchr(" \t\r\n\v\f", sig[a]) != NULL && sig[a] != '\0')
            a++;
        while (b > a && strchr(" \t\r\n\v\f", sig[b - 1]) != NULL && sig[b - 1] != '\0')
            b--;
        if (b - a >= 7 && strncasecmp(sig + a, "sha256=", 7) == 0)
            a += 7;
        unsigned char got[32];
        size_t len = 0;
        int hex = aud_hex_decode(sig + a, b - a, got, sizeof got, &len) == 0;
        if (!hex)
            FUZZ_CHECK(aud_base64_decode(sig + a, b - a, got, sizeof got, &len) == 0);
        FUZZ_CHECK(len == 32 && memcmp(got, mac, 32) == 0);
    }
done:
    free(sig);
    free(secret);
    free(body);
    return 0;
}
