/* A Lua 5.4 host for the C core, linked with its object files, that runs one
 * Lua script (tests/core_driver.lua) and then releases everything a process
 * can: the Lua state, libcurl's globals and OpenSSL's. Run under valgrind it
 * must end with "All heap blocks were freed -- no leaks are possible", which
 * the module cannot show inside lua5.4: there libcurl and OpenSSL keep their
 * globals until exit, as a library loaded by a host must (the host or another
 * library may still use them).
 *
 *   core_driver SCRIPT [ARGS...]    exit 0 when the script ran without error */
#include <stdio.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <openssl/crypto.h>

int luaopen_audience_core(lua_State *L);

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Mirrors lua.c's global arg: arg[0] is the script, arg[1..] its arguments. */
static void set_args(lua_State *L, int argc, char **argv)
{
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
}

static int run(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fputs("core_driver: cannot create a Lua state\n", stderr);
        return 1;
    }
    luaL_openlibs(L);
    /* The objects linked in, not a core.so found on the cpath: what runs
     * under valgrind is exactly what was built from src/. */
    luaL_requiref(L, "audience.core", luaopen_audience_core, 0);
    lua_pop(L, 1);
    set_args(L, argc, argv);

    lua_pushcfunction(L, traceback);
    int rc = luaL_loadfile(L, argv[0]);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, -2);
    if (rc != LUA_OK)
        fprintf(stderr, "core_driver: %s\n", lua_tostring(L, -1));
    /* Closing runs every __gc: http handles, limiters, the mock servers'
     * sentinel that stops nginx. */
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: core_driver SCRIPT [ARGS...]\n", stderr);
        return 2;
    }
    int status = run(argc - 1, argv + 1);
    /* The core initialises libcurl once per process and never cleans up, as
     * it cannot know whether its host still uses libcurl. Here we know. */
    curl_global_cleanup();
    OPENSSL_cleanup();
    return status;
}
