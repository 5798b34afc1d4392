/* A JSON text parser (RFC 8259) that knows nothing of Lua: it reads the
 * buffer once and reports what it finds to a sink, which builds whatever
 * values it likes (lua_json.c builds Lua tables; fuzz/fuzz_json.c builds a
 * canonical text). No allocation happens here except a rare heap copy of
 * an over-long number for strtod, freed before the sink hears of it.
 *
 * What it accepts, and how that compares with lua-cjson 2.1.0 (the
 * decoder it replaces), by design:
 *
 * - Numbers follow the JSON grammar strictly. Without a fraction or an
 *   exponent a number is an integer: reported through `integer` when it
 *   fits in 64 bits, otherwise as a double. With either it is a double
 *   ("1.0" stays a float, "-0.0" keeps its sign). Doubles are correctly
 *   rounded and never depend on LC_NUMERIC. cjson's extensions are
 *   refused: NaN, Infinity, hexadecimal, leading zeros ("01"), a leading
 *   '+', "1." and ".5". A magnitude beyond the double range gives an
 *   infinity, as strtod (and cjson) do.
 * - Strings: bytes other than '"', '\\' and NUL are taken as they are,
 *   invalid UTF-8 and raw control characters included, exactly as cjson
 *   takes them: the bytes of the text are the bytes of the value. A raw
 *   NUL byte is an error (cjson, which scans up to a NUL, refuses it too;
 *   outside strings cjson would silently ignore what follows a NUL, this
 *   parser refuses it as text after the value).
 *   Escapes are the eight of RFC 8259 and \u with four hex digits, written as UTF-8; a
 *   surrogate pair is one code point, and a lone or reversed surrogate is
 *   an error, as in cjson. "\u0000" gives a NUL byte.
 * - Whitespace is space, tab, LF and CR. One value of any type may stand
 *   at the top; anything after it but whitespace is an error.
 * - Duplicate object keys: the sink hears every member in order (the Lua
 *   builder keeps the last, as cjson does).
 * - Limits: nesting deeper than max_depth containers and texts longer
 *   than max_bytes are refused.
 *
 * Errors name the byte: offset is 0-based (the first byte is 0) and points
 * at the byte where the text stopped making sense. */
#ifndef AUD_JSON_H
#define AUD_JSON_H

#include <stddef.h>

/* Bounds what callers may ask for: the parser recurses once per level,
 * and the Lua builder keeps a frame per level. */
#define AUD_JSON_DEPTH_CAP 1000

/* Each callback returns NULL to go on, or a static message that stops the
 * parse (reported with the offset of the value it concerns). `raw` points
 * into the text: the bytes between the quotes, still escaped when
 * `escaped` is set (aud_json_unescape turns them into the value). */
struct aud_json_sink {
    const char *(*begin_object)(void *ud);
    const char *(*end_object)(void *ud, size_t members);
    const char *(*begin_array)(void *ud);
    const char *(*end_array)(void *ud, size_t items);
    const char *(*key)(void *ud, const char *raw, size_t len, int escaped);
    const char *(*string)(void *ud, const char *raw, size_t len, int escaped);
    const char *(*integer)(void *ud, long long v);
    const char *(*number)(void *ud, double v);
    const char *(*boolean)(void *ud, int v);
    const char *(*null)(void *ud);
};

struct aud_json_limits {
    size_t max_depth; /* 1 .. AUD_JSON_DEPTH_CAP */
    size_t max_bytes;
};

struct aud_json_error {
    size_t offset;      /* 0-based byte offset */
    const char *reason; /* static text */
};

/* Returns 0 when the whole text was one valid JSON value and every
 * callback went on; -1 with err filled otherwise. */
int aud_json_parse(const char *text, size_t len, const struct aud_json_limits *lim,
                   const struct aud_json_sink *sink, void *ud,
                   struct aud_json_error *err);

/* The value of a string the parser reported as escaped: writes it to out,
 * which must hold len bytes (a value is never longer than its escaped
 * form), and returns its length. Only for raw text the parser accepted. */
size_t aud_json_unescape(const char *raw, size_t len, char *out);

#endif
