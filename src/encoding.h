/* Hex and base64 text forms of bytes. The decoders parse untrusted input
 * (webhook signature headers), so they are strict and bounded, and have
 * no dependency beyond libc: a fuzz target can link this file alone. */
#ifndef AUD_ENCODING_H
#define AUD_ENCODING_H

#include <stddef.h>

/* The value of one hex digit of either case, or -1. Explicit ranges rather
 * than isxdigit: that follows the locale. */
int aud_hex_value(unsigned char c);

/* Lowercase hex of n bytes into out, which must hold 2n bytes (no NUL). */
void aud_hex(const unsigned char *in, size_t n, char *out);

/* Decodes n hex digits of either case into out (room for cap bytes).
 * Returns 0 and the byte count in *out_len, or -1 on an odd length, a
 * non-hex byte, or a result over cap bytes. */
int aud_hex_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                   size_t *out_len);

/* Length of the padded standard base64 of n bytes; SIZE_MAX on overflow. */
size_t aud_base64_len(size_t n);
/* Standard base64 (RFC 4648 section 4) with '=' padding into out, which
 * must hold aud_base64_len(n) bytes (no NUL); returns the length. */
size_t aud_base64_encode(const unsigned char *in, size_t n, char *out);

/* Decodes base64 in the standard or the URL-safe alphabet (RFC 4648
 * sections 4 and 5, one alphabet per input), with or without '=' padding,
 * into out (room for cap bytes). Rejects whitespace, mixed alphabets,
 * misplaced or wrong padding, an impossible length, and non-zero unused
 * bits in the last character, so each byte string has exactly one
 * accepted encoding per alphabet and padding choice. Returns 0 and the
 * byte count in *out_len, or -1. */
int aud_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap,
                      size_t *out_len);

#endif
