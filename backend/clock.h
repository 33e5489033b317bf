/*
 * clock.h - the daemon's two clocks: monotonic milliseconds for its timers; the wall clock for
 * the deadlines that pthread_cond_timedwait() takes and for times written into requests.
 */
#ifndef VMRQD_CLOCK_H
#define VMRQD_CLOCK_H

#include <time.h>

/* Monotonic milliseconds. */
long long now_ms(void);

/* The wall clock in epoch seconds (microseconds kept): when an event arrived, when a domain's
 * state was read. */
double clock_epoch(void);

/* The next pause of a retry loop: `first` after a success (prev 0), then doubling up to `max`. */
long long clock_backoff(long long prev, long long first, long long max);

/* Sleeps `ms` milliseconds (an interrupted sleep ends early). */
void clock_sleep_ms(long ms);

/* *until = now (CLOCK_REALTIME, the clock of pthread_cond_timedwait()) + ms. */
void clock_deadline(struct timespec *until, long ms);

/* Writes into buf the UTC timestamp of now (CLOCK_REALTIME) + ms, rounded up to the millisecond
 * ("2026-11-22 06:50:01.124+00", which the `at` option takes): never earlier than asked, as
 * whole epoch seconds would be by up to a second. Returns 0, or -1 if size is too small. */
int clock_utc_after(long long ms, char *buf, size_t size);

#endif /* VMRQD_CLOCK_H */
