/* Hex and base64 decoding (encoding.c), which parse webhook signature
 * headers, and the encoders they must invert.
 *
 * Input: one byte of output room (0..63, or 255 for "enough"), one byte
 * choosing the decoder, then the text.
 *
 * Checks: a decoder never writes past the room it is given and never
 * reports more bytes than that. What it accepts is canonical: encoding the
 * bytes again gives the input back (hex in lower case; base64 in the
 * standard alphabet with padding, after mapping a URL-safe input to it).
 * Encoding any bytes and decoding them returns them. */
#include "fuzz.h"

#include "encoding.h"

static void check_hex(const char *s, size_t n, size_t cap)
{
    unsigned char *out = (unsigned char *)fuzz_alloc(cap);
    size_t len = SIZE_MAX;
    if (aud_hex_decode(s, n, out, cap, &len) == 0) {
        FUZZ_CHECK(len <= cap && len * 2 == n);
        char *again = fuzz_alloc(2 * len);
        aud_hex(out, len, again);
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c >= 'A' && c <= 'F')
                c = (char)(c - 'A' + 'a');
            FUZZ_CHECK(again[i] == c);
        }
        free(again);
    } else {
        FUZZ_CHECK(len == SIZE_MAX);
    }
    free(out);
}

static void check_base64(const char *s, size_t n, size_t cap)
{
    unsigned char *out = (unsigned char *)fuzz_alloc(cap);
    size_t len = SIZE_MAX;
    if (aud_base64_decode(s, n, out, cap, &len) == 0) {
        FUZZ_CHECK(len <= cap);
        size_t elen = aud_base64_len(len);
        char *again = fuzz_alloc(elen);
        FUZZ_CHECK(aud_base64_encode(out, len, again) == elen);
        /* The input, in the standard alphabet and padded. */
        FUZZ_CHECK(elen >= n && elen - n <= 2);
        for (size_t i = 0; i < elen; i++) {
            char c = i < n ? s[i] : '=';
            if (c == '-')
                c = '+';
            else if (c == '_')
                c = '/';
            FUZZ_CHECK(again[i] == c);
        }
        free(again);
    } else {
        FUZZ_CHECK(len == SIZE_MAX);
    }
    free(out);
}

/* The input itself as bytes: encode, then decode with exactly enough room. */
static void check_round_trip(const unsigned char *b, size_t n)
{
    char *hex = fuzz_alloc(2 * n);
    aud_hex(b, n, hex);
    unsigned char *back = (unsigned char *)fuzz_alloc(n);
    size_t len = 0;
    FUZZ_CHECK(aud_hex_decode(hex, 2 * n, back, n, &len) == 0 && len == n);
    FUZZ_CHECK(n == 0 || memcmp(back, b, n) == 0);
    free(hex);

    size_t elen = aud_base64_len(n);
    char *b64 = fuzz_alloc(elen);
    FUZZ_CHECK(aud_base64_encode(b, n, b64) == elen);
    FUZZ_CHECK(aud_base64_decode(b64, elen, back, n, &len) == 0 && len == n);
    FUZZ_CHECK(n == 0 || memcmp(back, b, n) == 0);
    /* Unpadded, as some senders strip it. */
    size_t unpadded = elen;
    while (unpadded > 0 && b64[unpadded - 1] == '=')
        unpadded--;
    FUZZ_CHECK(aud_base64_decode(b64, unpadded, back, n, &len) == 0 && len == n);
    FUZZ_CHECK(n == 0 || memcmp(back, b, n) == 0);
    /* One byte short of room must fail, not overflow. */
    if (n > 0)
        FUZZ_CHECK(aud_base64_decode(b64, elen, back, n - 1, &len) != 0);
    free(b64);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t room = fuzz_byte(&in);
    uint8_t which = fuzz_byte(&in);
    size_t n;
    char *s = fuzz_rest(&in, &n);
    size_t cap = room == 255 ? n : room % 64;

    if (which & 1)
        check_base64(s, n, cap);
    else
        check_hex(s, n, cap);
    check_round_trip((const unsigned char *)s, n);
    free(s);
    return 0;
}
