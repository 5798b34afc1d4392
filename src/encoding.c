#include "encoding.h"

#include <stdint.h>

void aud_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}

int aud_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aud_hex_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                   size_t *out_len)
{
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = aud_hex_value((unsigned char)s[i]);
        int lo = aud_hex_value((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return 0;
}

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t aud_base64_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    return groups > SIZE_MAX / 4 ? SIZE_MAX : groups * 4;
}

size_t aud_base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = b64_std[(v >> 6) & 63];
        out[o++] = b64_std[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = b64_std[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

enum { B64_STD = 1, B64_URL = 2 };

/* The 6-bit value of c, or -1; *alphabets collects which alphabet's own
 * characters ('+' '/' versus '-' '_') have been seen. */
static int b64_value(unsigned char c, int *alphabets)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    switch (c) {
    case '+':
        *alphabets |= B64_STD;
        return 62;
    case '/':
        *alphabets |= B64_STD;
        return 63;
    case '-':
        *alphabets |= B64_URL;
        return 62;
    case '_':
        *alphabets |= B64_URL;
        return 63;
    default:
        return -1;
    }
}

int aud_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                      size_t *out_len)
{
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
        pad++;
    size_t m = n - pad; /* characters carrying data */
    /* Padding, when present, completes the last group of four. A lone
     * character in the last group carries only 6 of a byte's 8 bits. */
    if ((pad > 0 && n % 4 != 0) || m % 4 == 1)
        return -1;
    size_t len = m / 4 * 3 + (m % 4 == 0 ? 0 : m % 4 - 1);
    if (len > cap)
        return -1;

    int alphabets = 0;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_value((unsigned char)s[i], &alphabets);
        if (v < 0) /* also a third '=' or one before the end */
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (alphabets == (B64_STD | B64_URL))
        return -1;
    /* A partial group of 2 or 3 characters holds 12 or 18 bits for 1 or 2
     * bytes; the 4 or 2 bits left over must be zero. */
    if (m % 4 == 2) {
        if (acc & 0xF)
            return -1;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (m % 4 == 3) {
        if (acc & 0x3)
            return -1;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return 0;
}
