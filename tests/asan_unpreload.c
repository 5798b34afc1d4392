/* Preloaded after the ASan runtime into the Lua interpreter that runs the
 * specs. The specs start nginx, sh, mktemp, openssl and kill; inheriting
 * LD_PRELOAD would put the sanitizer runtime (and its leak check at exit)
 * into those uninstrumented programs, whose own leaks are not ours and
 * whose reports would land in the mock servers' logs, not in this run.
 * By the time a constructor runs the loader has read LD_PRELOAD, so
 * removing it affects only the processes started from here on. */
#include <stdlib.h>

void aud_asan_unpreload(void) __attribute__((constructor));

void aud_asan_unpreload(void)
{
    unsetenv("LD_PRELOAD");
}
