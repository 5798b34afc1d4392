/* Locale-independent number parsing and formatting for header values and
 * query strings. strtod/printf follow LC_NUMERIC, which a host program
 * (nginx modules, GUI toolkits) may have changed; these never do. */
#ifndef AUD_NUMBER_H
#define AUD_NUMBER_H

#include <stddef.h>

/* Accepts optional SP/HTAB, digits, optionally '.' and digits, optional
 * SP/HTAB; nothing else (no sign, exponent, hex, "inf"). Returns 1 and
 * stores the value (possibly +inf for absurdly long digit runs), or 0. */
int aud_num_parse_decimal(const char *s, size_t n, double *out);

/* Query-string form of a number: integral values below 2^63 in magnitude
 * as plain integers, others as %.17g with a '.' decimal point. Returns the
 * length written (NUL-terminated, cap >= 32 suffices), or 0 when x is NaN
 * or infinite. */
size_t aud_num_format(double x, char *out, size_t cap);
size_t aud_num_format_integer(long long v, char *out, size_t cap);

/* strtod of the n bytes at s (no NUL needed) in the "C" locale, whatever
 * LC_NUMERIC says, for text already checked to be a JSON number without
 * its sign. Returns 0, or -1 when memory runs out. */
int aud_num_strtod(const char *s, size_t n, double *out);

/* JSON text of a finite double, locale-independent: the shortest of %.14g
 * to %.17g that reads back as the same double (so what reads well stays
 * short, and nothing is lost). Returns the length (cap >= 32 suffices) or
 * 0 for NaN and infinities. */
size_t aud_num_format_json(double x, char *out, size_t cap);

#endif
