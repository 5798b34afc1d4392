/* The JSON parser: recursive descent over the buffer, one pass, reporting
 * to a sink (see json.h for what it accepts and why). */
#include "json.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "encoding.h"
#include "number.h"

struct parser {
    const char *start;
    const char *p;
    const char *end;
    size_t depth;
    size_t max_depth;
    const struct aud_json_sink *sink;
    void *ud;
    struct aud_json_error *err;
};

static int fail(struct parser *ps, const char *at, const char *reason)
{
    ps->err->offset = (size_t)(at - ps->start);
    ps->err->reason = reason;
    return -1;
}

/* A callback's refusal stops the parse at the value it was told about. */
#define SINK(ps, at, call)                                                   \
    do {                                                                     \
        const char *why_ = (call);                                           \
        if (why_ != NULL)                                                    \
            return fail((ps), (at), why_);                                   \
    } while (0)

static void skip_space(struct parser *ps)
{
    const char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* The four hex digits at s (which has at least four bytes), or -1. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = aud_hex_value((unsigned char)s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static int is_high_surrogate(long cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static int is_low_surrogate(long cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* Checks the escapes of a string from its first backslash on and finds
 * its closing quote. `open` is the opening quote, for the message. */
static int scan_escaped(struct parser *ps, const char *open, const char *c,
                        const char **close)
{
    const char *end = ps->end;
    for (;;) {
        if (c >= end)
            return fail(ps, open, "unterminated string");
        if (*c == '"')
            break;
        if (*c == '\0')
            return fail(ps, c, "NUL byte in a string");
        if (*c != '\\') {
            c++;
            continue;
        }
        if (end - c < 2)
            return fail(ps, open, "unterminated string");
        switch (c[1]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            c += 2;
            break;
        case 'u': {
            long cp = end - c >= 6 ? hex4(c + 2) : -1;
            if (cp < 0)
                return fail(ps, c, "invalid \\u escape (four hex digits expected)");
            if (is_low_surrogate(cp))
                return fail(ps, c, "lone low surrogate in a \\u escape");
            if (is_high_surrogate(cp)) {
                long lo = (end - c >= 12 && c[6] == '\\' && c[7] == 'u') ? hex4(c + 8) : -1;
                if (!is_low_surrogate(lo))
                    return fail(ps, c, "high surrogate in a \\u escape without its low half");
                c += 12;
            } else {
                c += 6;
            }
            break;
        }
        default:
            return fail(ps, c, "invalid escape in a string");
        }
    }
    *close = c;
    return 0;
}

/* The bytes that end the plain run of a string. */
static const unsigned char string_stop[256] = {[0] = 1, ['"'] = 1, ['\\'] = 1};

/* ps->p is on the opening quote; leaves it after the closing one. */
static int scan_string(struct parser *ps, const char **raw, size_t *len,
                       int *escaped)
{
    const char *open = ps->p, *end = ps->end;
    const char *s = open + 1, *c = s;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight bytes at a time: the usual word-at-a-time test for a zero byte,
     * on the word and on its XOR with '"' and '\\' repeated. Its lowest
     * flagged byte is exact (false flags only sit above a true one). */
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    while (end - c >= 8) {
        uint64_t w;
        memcpy(&w, c, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        uint64_t hit = (((w - ones) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (hit != 0) {
            c += __builtin_ctzll(hit) / 8;
            goto found;
        }
        c += 8;
    }
#endif
    while (c < end && !string_stop[(unsigned char)*c])
        c++;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
found:
#endif
    if (c >= end)
        return fail(ps, open, "unterminated string");
    *escaped = *c == '\\';
    if (*c == '\0')
        return fail(ps, c, "NUL byte in a string");
    if (*escaped && scan_escaped(ps, open, c, &c) != 0)
        return -1;
    *raw = s;
    *len = (size_t)(c - s);
    ps->p = c + 1;
    return 0;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t aud_json_unescape(const char *raw, size_t len, char *out)
{
    size_t o = 0;
    const char *c = raw, *end = raw + len;
    while (c < end) {
        const char *bs = memchr(c, '\\', (size_t)(end - c));
        size_t plain = (size_t)((bs ? bs : end) - c);
        memcpy(out + o, c, plain);
        o += plain;
        c += plain;
        if (bs == NULL || end - c < 2)
            break;
        char e = c[1];
        c += 2;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            if (end - c < 4)
                return o;
            long cp = hex4(c);
            c += 4;
            if (is_high_surrogate(cp) && end - c >= 6) {
                long lo = hex4(c + 2);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                c += 6;
            }
            o += put_utf8(out + o, (unsigned long)cp);
            break;
        }
        default: /* '"', '\\' and '/' stand for themselves */
            out[o++] = e;
            break;
        }
    }
    return o;
}

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define EXACT_FAST_PATH 1
/* Exact in a double: with a mantissa up to 2^53 one multiply or divide by
 * one of these is the correctly rounded result. */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#else
#define EXACT_FAST_PATH 0
#endif

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

#define MAX_MANTISSA_DIGITS 19

/* ps->p is on '-' or a digit. */
static int parse_number(struct parser *ps)
{
    const char *s = ps->p, *p = s, *end = ps->end;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    uint64_t m = 0;
    int digits = 0;    /* significant digits held in m */
    int truncated = 0; /* digits that did not fit in m */
    long exp10 = 0;
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(ps, p, "leading zero in a number");
    } else if (p < end && is_digit(*p)) {
        for (; p < end && is_digit(*p); p++) {
            if (digits < MAX_MANTISSA_DIGITS) {
                m = m * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                truncated = 1;
                exp10++;
            }
        }
    } else {
        return fail(ps, p, "digit expected in a number");
    }
    int integral = 1;
    if (p < end && *p == '.') {
        integral = 0;
        p++;
        if (p >= end || !is_digit(*p))
            return fail(ps, p, "digit expected after the decimal point");
        for (; p < end && is_digit(*p); p++) {
            if (digits < MAX_MANTISSA_DIGITS) {
                m = m * 10 + (uint64_t)(*p - '0');
                if (m != 0)
                    digits++;
                exp10--;
            } else {
                truncated = 1;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        long sign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            sign = *p == '-' ? -1 : 1;
            p++;
        }
        if (p >= end || !is_digit(*p))
            return fail(ps, p, "digit expected in the exponent");
        for (; p < end && is_digit(*p); p++)
            if (e < 100000) /* far past any double; keeps e bounded */
                e = e * 10 + (*p - '0');
        exp10 += sign * e;
    }
    ps->p = p;

    if (integral && !truncated) {
        if (!neg && m <= (uint64_t)INT64_MAX) {
            SINK(ps, s, ps->sink->integer(ps->ud, (long long)m));
            return 0;
        }
        if (neg && m <= (uint64_t)INT64_MAX + 1) {
            long long v = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)m;
            SINK(ps, s, ps->sink->integer(ps->ud, v));
            return 0;
        }
        /* Beyond 64 bits: converting m rounds correctly. */
        double d = (double)m;
        SINK(ps, s, ps->sink->number(ps->ud, neg ? -d : d));
        return 0;
    }
    double v;
    if (m == 0 && !truncated) {
        v = 0.0;
#if EXACT_FAST_PATH
    } else if (!truncated && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)m;
        v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
#endif
    } else {
        if (aud_num_strtod(s + neg, (size_t)(p - s - neg), &v) != 0)
            return fail(ps, s, "out of memory reading a number");
    }
    SINK(ps, s, ps->sink->number(ps->ud, neg ? -v : v));
    return 0;
}

static int literal(struct parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "a JSON value expected");
    ps->p += n;
    return 0;
}

static int parse_value(struct parser *ps);

static int enter(struct parser *ps)
{
    if (++ps->depth > ps->max_depth)
        return fail(ps, ps->p, "nesting deeper than the limit");
    return 0;
}

/* After a member of a container: 1 after a ',' (another member follows),
 * 0 after the closing byte, -1 (failed) on anything else. */
static int next_member(struct parser *ps, char close, const char *expected)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        skip_space(ps);
        return 1;
    }
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    return fail(ps, ps->p, expected);
}

static int parse_object(struct parser *ps)
{
    const char *open = ps->p;
    if (enter(ps) != 0)
        return -1;
    SINK(ps, open, ps->sink->begin_object(ps->ud));
    ps->p++;
    skip_space(ps);
    size_t n = 0;
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, ps->p, "object key (a string) expected");
            const char *at = ps->p, *raw;
            size_t len;
            int escaped;
            if (scan_string(ps, &raw, &len, &escaped) != 0)
                return -1;
            SINK(ps, at, ps->sink->key(ps->ud, raw, len, escaped));
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, ps->p, "':' expected after an object key");
            ps->p++;
            skip_space(ps);
            if (parse_value(ps) != 0)
                return -1;
            n++;
            int more = next_member(ps, '}', "',' or '}' expected in an object");
            if (more < 0)
                return -1;
            if (!more)
                break;
        }
    }
    ps->depth--;
    SINK(ps, open, ps->sink->end_object(ps->ud, n));
    return 0;
}

static int parse_array(struct parser *ps)
{
    const char *open = ps->p;
    if (enter(ps) != 0)
        return -1;
    SINK(ps, open, ps->sink->begin_array(ps->ud));
    ps->p++;
    skip_space(ps);
    size_t n = 0;
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            if (parse_value(ps) != 0)
                return -1;
            n++;
            int more = next_member(ps, ']', "',' or ']' expected in an array");
            if (more < 0)
                return -1;
            if (!more)
                break;
        }
    }
    ps->depth--;
    SINK(ps, open, ps->sink->end_array(ps->ud, n));
    return 0;
}

/* ps->p is on the value's first byte (whitespace already skipped). */
static int parse_value(struct parser *ps)
{
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "a JSON value expected");
    const char *at = ps->p;
    switch (*at) {
    case '{':
        return parse_object(ps);
    case '[':
        return parse_array(ps);
    case '"': {
        const char *raw;
        size_t len;
        int escaped;
        if (scan_string(ps, &raw, &len, &escaped) != 0)
            return -1;
        SINK(ps, at, ps->sink->string(ps->ud, raw, len, escaped));
        return 0;
    }
    case 't':
        if (literal(ps, "true", 4) != 0)
            return -1;
        SINK(ps, at, ps->sink->boolean(ps->ud, 1));
        return 0;
    case 'f':
        if (literal(ps, "false", 5) != 0)
            return -1;
        SINK(ps, at, ps->sink->boolean(ps->ud, 0));
        return 0;
    case 'n':
        if (literal(ps, "null", 4) != 0)
            return -1;
        SINK(ps, at, ps->sink->null(ps->ud));
        return 0;
    default:
        if (*at == '-' || is_digit(*at))
            return parse_number(ps);
        return fail(ps, at, "a JSON value expected");
    }
}

int aud_json_parse(const char *text, size_t len, const struct aud_json_limits *lim,
                   const struct aud_json_sink *sink, void *ud,
                   struct aud_json_error *err)
{
    struct parser ps;
    ps.start = text;
    ps.p = text;
    ps.end = text + len;
    ps.depth = 0;
    ps.max_depth = lim->max_depth;
    if (ps.max_depth > AUD_JSON_DEPTH_CAP)
        ps.max_depth = AUD_JSON_DEPTH_CAP;
    ps.sink = sink;
    ps.ud = ud;
    ps.err = err;
    if (len > lim->max_bytes) {
        err->offset = lim->max_bytes;
        err->reason = "text longer than the limit";
        return -1;
    }
    skip_space(&ps);
    if (parse_value(&ps) != 0)
        return -1;
    skip_space(&ps);
    if (ps.p != ps.end)
        return fail(&ps, ps.p, "unexpected text after the JSON value");
    return 0;
}
