/* The benchmark's floor: the cost of the requests themselves. One reused libcurl
 * easy handle, options set once, each body decoded with lua-cjson (required from C
 * through a Lua 5.4 state, as the Lua contenders decode it). Nothing else.
 *
 *   floor get  URL N [CA_FILE]   N GETs of URL over one kept-alive connection
 *   floor page BASE              walks BASE?limit=100&order=asc[&startingAfter=ID]
 *                                until hasMore is false, as `each` does
 *
 * Environment: BENCH_API_KEY (the X-API-Key header), BENCH_USER_AGENT.
 *
 * Prints "elapsed=SECONDS count=N" (N: requests for get, items for page). The time
 * covers the requests only, not process start-up. Built by `make bench`. */
#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct buf {
    char *data;
    size_t len, cap;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "floor: %s: %s\n", what, detail);
    exit(1);
}

/* One request: perform, check the status, decode the body (the value is left on the
 * Lua stack). */
static void fetch(CURL *curl, struct buf *body, lua_State *L, int decode)
{
    body->len = 0;
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        die("curl_easy_perform", curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        die("unexpected status", body->len ? body->data : "");
    lua_pushvalue(L, decode);
    lua_pushlstring(L, body->data, body->len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        die("cjson.decode", lua_tostring(L, -1));
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "page") != 0) ||
        (strcmp(argv[1], "get") == 0 && argc < 4)) {
        fprintf(stderr, "usage: floor get URL N [CA_FILE] | floor page BASE\n");
        return 2;
    }
    int paging = strcmp(argv[1], "page") == 0;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init", "failed");
    lua_State *L = luaL_newstate();
    if (L == NULL)
        die("luaL_newstate", "out of memory");
    luaL_openlibs(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        die("require \"cjson\"", lua_tostring(L, -1));
    lua_getfield(L, -1, "decode");
    int decode = lua_gettop(L);

    CURL *curl = curl_easy_init();
    if (curl == NULL)
        die("curl_easy_init", "failed");
    struct buf body = {NULL, 0, 0};
    /* The same request as audience sends: its key, Accept, User-Agent and
     * Accept-Encoding headers (bench/run.lua passes the key and audience's
     * User-Agent string). */
    const char *key = getenv("BENCH_API_KEY");
    const char *agent = getenv("BENCH_USER_AGENT");
    char key_line[512];
    snprintf(key_line, sizeof key_line, "X-API-Key: %s", key ? key : "k");
    struct curl_slist *headers = curl_slist_append(NULL, key_line);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (agent != NULL)
        curl_easy_setopt(curl, CURLOPT_USERAGENT, agent);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *)&body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (!paging && argc > 4)
        curl_easy_setopt(curl, CURLOPT_CAINFO, argv[4]);

    long count = 0;
    double started = now();
    if (!paging) {
        long n = strtol(argv[3], NULL, 10);
        curl_easy_setopt(curl, CURLOPT_URL, argv[2]);
        for (long i = 0; i < n; i++) {
            fetch(curl, &body, L, decode);
            lua_pop(L, 1);
            count++;
        }
    } else {
        char url[4096];
        long long after = -1;
        int more = 1;
        while (more) {
            if (after < 0)
                snprintf(url, sizeof url, "%s?limit=100&order=asc", argv[2]);
            else
                snprintf(url, sizeof url, "%s?limit=100&order=asc&startingAfter=%lld",
                         argv[2], after);
            curl_easy_setopt(curl, CURLOPT_URL, url);
            fetch(curl, &body, L, decode);
            lua_getfield(L, -1, "items");
            size_t n = lua_rawlen(L, -1);
            count += (long)n;
            lua_getfield(L, -2, "hasMore");
            more = lua_toboolean(L, -1) && n > 0;
            lua_pop(L, 1);
            if (more) {
                lua_rawgeti(L, -1, (lua_Integer)n);
                lua_getfield(L, -1, "id");
                after = (long long)lua_tonumber(L, -1);
                lua_pop(L, 2);
            }
            lua_pop(L, 2);
        }
    }
    double elapsed = now() - started;
    printf("elapsed=%.6f count=%ld\n", elapsed, count);

    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(body.data);
    lua_close(L);
    curl_global_cleanup();
    return 0;
}
