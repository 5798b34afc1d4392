/* Wall clock, monotonic clock and sleeping, in float seconds. */
#ifndef AUD_CLOCK_H
#define AUD_CLOCK_H

/* Each returns 0, or -1 with errno set. */
int aud_clock_now(double *out);       /* CLOCK_REALTIME, epoch seconds */
int aud_clock_monotonic(double *out); /* CLOCK_MONOTONIC */
/* seconds must be finite and >= 0; absurd values are clamped to ~68
 * years so the conversion to time_t stays defined. */
int aud_clock_sleep(double seconds);

#endif
