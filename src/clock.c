#include "clock.h"

#include "store.h"

#include <errno.h>
#include <math.h>
#include <time.h>

static int read_clock(clockid_t id, double *out)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        return -1;
    *out = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return 0;
}

int aud_clock_now(double *out)
{
    return read_clock(CLOCK_REALTIME, out);
}

int aud_clock_monotonic(double *out)
{
    return read_clock(CLOCK_MONOTONIC, out);
}

int aud_clock_sleep(double seconds)
{
    if (!(seconds >= 0)) {
        errno = EINVAL;
        return -1;
    }
    if (seconds > 2147483647.0)
        seconds = 2147483647.0;
    double whole = floor(seconds);
    struct timespec req, rem;
    req.tv_sec = (time_t)whole;
    req.tv_nsec = (long)((seconds - whole) * 1e9);
    if (req.tv_nsec > 999999999L)
        req.tv_nsec = 999999999L;
    /* A signal handler (nginx, a debugger) must not cut the sleep short:
     * callers sleep because a server told them to wait. */
    while (nanosleep(&req, &rem) != 0) {
        if (errno != EINTR)
            return -1;
        req = rem;
    }
    return 0;
}

int aud_store_fill_now(struct aud_rl_step *st)
{
    return isnan(st->now) ? aud_clock_now(&st->now) : 0;
}
