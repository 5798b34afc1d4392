/* Request signing for the Creamailer API and webhook signatures (Systeme.io,
 * SubscribeFlow). No Lua in here; secrets never reach an error message. */
#ifndef AUD_SIGN_H
#define AUD_SIGN_H

#include <stddef.h>

#include "buf.h"

/* Room for any signature text below: "sha256=" and 64 hex digits. */
#define AUD_SIGN_TEXT_MAX 72

/* Creamailer's signing input: url .. body .. timestamp in decimal, with
 * url exactly as requested (scheme, host, path, query) and body the exact
 * bytes sent (NULL with body_len 0 for none). Appended to out, which the
 * caller owns. Returns 0, or -1 when memory is exhausted. */
int aud_sign_input(struct aud_buf *out, const char *url, size_t url_len,
                   const char *body, size_t body_len,
                   unsigned long long timestamp);

/* Version 1: hex sha1(input .. secret); version 2: hex
 * HMAC-SHA256(secret, input). Writes the lowercase hex (40 or 64 bytes, no
 * NUL) into out and its length into *out_len. Returns 0, or -1 with a
 * message in err (bad version, empty secret, no memory, OpenSSL failure). */
int aud_sign_creamailer(int version, const char *secret, size_t secret_len,
                        const char *url, size_t url_len, const char *body,
                        size_t body_len, unsigned long long timestamp,
                        char out[AUD_SIGN_TEXT_MAX], size_t *out_len,
                        char *err, size_t errlen);

enum aud_webhook_provider {
    AUD_WEBHOOK_SYSTEME,       /* X-Webhook-Signature: <hex> */
    AUD_WEBHOOK_SUBSCRIBEFLOW, /* "sha256=<hex>" or base64 */
};

enum aud_webhook_style {
    AUD_WEBHOOK_HEX,    /* systeme: hex; subscribeflow: "sha256=" hex */
    AUD_WEBHOOK_BASE64, /* subscribeflow only: padded standard base64 */
};

enum aud_webhook_result {
    AUD_WEBHOOK_OK,
    AUD_WEBHOOK_MISSING,   /* empty or only whitespace */
    AUD_WEBHOOK_MALFORMED, /* not in the provider's formats, or not 32 bytes */
    AUD_WEBHOOK_MISMATCH,
};

/* The header value provider would send for body: HMAC-SHA256(secret, body)
 * in the form style selects. Returns 0, or -1 with a message in err (empty
 * secret, a style the provider does not use, OpenSSL failure). */
int aud_webhook_sign(enum aud_webhook_provider provider,
                     enum aud_webhook_style style, const char *body,
                     size_t body_len, const char *secret, size_t secret_len,
                     char out[AUD_SIGN_TEXT_MAX], size_t *out_len, char *err,
                     size_t errlen);

/* Checks sig (a received header value; NULL means absent) against
 * HMAC-SHA256(secret, body), comparing the decoded bytes in constant time.
 * Returns 0 with the verdict in *result, or -1 with a message in err
 * (empty secret, OpenSSL failure). */
int aud_webhook_verify(enum aud_webhook_provider provider, const char *body,
                       size_t body_len, const char *sig, size_t sig_len,
                       const char *secret, size_t secret_len,
                       enum aud_webhook_result *result, char *err,
                       size_t errlen);

/* "missing_signature", "malformed_signature", "mismatch" or "ok". */
const char *aud_webhook_result_name(enum aud_webhook_result r);

#endif
