/* Lua bindings of the digests (crypto.c) and of request and webhook
 * signatures (sign.c). Messages name arguments, never their values: any
 * of them may be a secret. */
#include <math.h>
#include <string.h>

#include "crypto.h"
#include "encoding.h"
#include "lua_common.h"
#include "sign.h"

/* OpenSSL reasons are short; this only bounds snprintf. */
#define ERR_LEN 300

static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char digest[AUD_SHA256_LEN];
    char hex[2 * AUD_SHA256_LEN];
    char err[ERR_LEN];
    if (aud_sha256(s, len, digest, err, sizeof err) != 0)
        return aud_l_crypto_fail(L, err);
    aud_hex(digest, sizeof digest, hex);
    lua_pushlstring(L, hex, sizeof hex);
    return 1;
}

/* A secret that is empty signs nothing: every caller could forge it. */
static const char *check_secret(lua_State *L, int arg, size_t *len)
{
    const char *s = aud_l_check_string(L, arg, "secret", len);
    if (*len == 0)
        luaL_argerror(L, arg, "secret must not be empty");
    return s;
}

/* Integral and >= 0, as a number (no string coercion: "1e9" would sign
 * as 1000000000, surprising whoever built the request). */
static unsigned long long check_timestamp(lua_State *L, int arg)
{
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "timestamp must be a number, got %s",
                                              luaL_typename(L, arg)));
#if AUD_LUA54
    if (lua_isinteger(L, arg)) {
        lua_Integer i = lua_tointeger(L, arg);
        if (i < 0)
            luaL_argerror(L, arg, "timestamp must be an integer >= 0");
        return (unsigned long long)i;
    }
#endif
    double d = (double)lua_tonumber(L, arg);
    if (!(d >= 0) || d != floor(d) || d >= 18446744073709551616.0)
        luaL_argerror(L, arg, "timestamp must be an integer >= 0");
    return (unsigned long long)d;
}

static int check_version(lua_State *L, int arg)
{
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "version must be a number, got %s",
                                              luaL_typename(L, arg)));
    double v = (double)lua_tonumber(L, arg);
    if (v != 1 && v != 2)
        luaL_argerror(L, arg, "version must be 1 or 2");
    return (int)v;
}

static int l_sign_creamailer(lua_State *L)
{
    int version = check_version(L, 1);
    size_t secret_len, url_len, body_len = 0;
    const char *secret = check_secret(L, 2, &secret_len);
    const char *url = aud_l_check_string(L, 3, "url", &url_len);
    if (url_len == 0)
        return luaL_argerror(L, 3, "url must not be empty");
    const char *body = NULL;
    if (!lua_isnoneornil(L, 4))
        body = aud_l_check_string(L, 4, "body", &body_len);
    unsigned long long timestamp = check_timestamp(L, 5);

    char out[AUD_SIGN_TEXT_MAX];
    size_t out_len;
    char err[ERR_LEN];
    if (aud_sign_creamailer(version, secret, secret_len, url, url_len, body,
                            body_len, timestamp, out, &out_len, err,
                            sizeof err) != 0)
        return aud_l_crypto_fail(L, err);
    lua_pushlstring(L, out, out_len);
    return 1;
}

/* Whole-string match: strcmp would take "systeme\0x" for "systeme". */
static int same_text(const char *s, size_t n, const char *literal)
{
    return n == strlen(literal) && memcmp(s, literal, n) == 0;
}

/* A webhook signature format, named as a provider description names it (its
 * webhook.signature), or by the provider that format was first made for. */
static enum aud_webhook_provider check_provider(lua_State *L, int arg)
{
    size_t n;
    const char *p = aud_l_check_string(L, arg, "provider", &n);
    if (same_text(p, n, "hex") || same_text(p, n, "systeme"))
        return AUD_WEBHOOK_SYSTEME;
    if (same_text(p, n, "sha256-hex-or-base64") ||
        same_text(p, n, "subscribeflow"))
        return AUD_WEBHOOK_SUBSCRIBEFLOW;
    luaL_argerror(L, arg, "provider (a signature format) must be \"hex\" or "
                          "\"sha256-hex-or-base64\"");
    return AUD_WEBHOOK_SYSTEME; /* not reached */
}

static enum aud_webhook_style check_style(lua_State *L, int arg,
                                          enum aud_webhook_provider provider)
{
    if (lua_isnoneornil(L, arg))
        return AUD_WEBHOOK_HEX;
    size_t n;
    const char *s = aud_l_check_string(L, arg, "style", &n);
    if (same_text(s, n, "hex"))
        return AUD_WEBHOOK_HEX;
    if (same_text(s, n, "base64")) {
        if (provider != AUD_WEBHOOK_SUBSCRIBEFLOW)
            luaL_argerror(L, arg,
                          "style \"base64\" is only for \"sha256-hex-or-base64\"");
        return AUD_WEBHOOK_BASE64;
    }
    luaL_argerror(L, arg, "style must be \"hex\" or \"base64\"");
    return AUD_WEBHOOK_HEX; /* not reached */
}

static int l_webhook_sign(lua_State *L)
{
    enum aud_webhook_provider provider = check_provider(L, 1);
    size_t body_len, secret_len;
    const char *body = aud_l_check_string(L, 2, "body", &body_len);
    const char *secret = check_secret(L, 3, &secret_len);
    enum aud_webhook_style style = check_style(L, 4, provider);

    char out[AUD_SIGN_TEXT_MAX];
    size_t out_len;
    char err[ERR_LEN];
    if (aud_webhook_sign(provider, style, body, body_len, secret, secret_len,
                         out, &out_len, err, sizeof err) != 0)
        return aud_l_crypto_fail(L, err);
    lua_pushlstring(L, out, out_len);
    return 1;
}

static int l_webhook_verify(lua_State *L)
{
    enum aud_webhook_provider provider = check_provider(L, 1);
    size_t body_len, sig_len = 0, secret_len;
    const char *body = aud_l_check_string(L, 2, "body", &body_len);
    const char *sig = NULL;
    if (!lua_isnoneornil(L, 3)) {
        if (lua_type(L, 3) != LUA_TSTRING)
            return luaL_argerror(L, 3, lua_pushfstring(L, "signature must be a string or nil, got %s",
                                                       luaL_typename(L, 3)));
        sig = lua_tolstring(L, 3, &sig_len);
    }
    const char *secret = check_secret(L, 4, &secret_len);

    enum aud_webhook_result result;
    char err[ERR_LEN];
    if (aud_webhook_verify(provider, body, body_len, sig, sig_len, secret,
                           secret_len, &result, err, sizeof err) != 0)
        return aud_l_crypto_fail(L, err);
    if (result == AUD_WEBHOOK_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, aud_webhook_result_name(result));
    return 2;
}

void aud_l_open_sign(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"sha256_hex", l_sha256_hex},
        {"sign_creamailer", l_sign_creamailer},
        {"webhook_sign", l_webhook_sign},
        {"webhook_verify", l_webhook_verify},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
}
