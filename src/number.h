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

#endif
