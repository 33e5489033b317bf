/*
 * clock.h - the daemon's two clocks: monotonic milliseconds for its timers, and the wall-clock
 * deadlines that pthread_cond_timedwait() takes.
 */
#ifndef VMRQD_CLOCK_H
#define VMRQD_CLOCK_H

#include <time.h>

/* Monotonic milliseconds. */
long long now_ms(void);

/* *until = now (CLOCK_REALTIME, the clock of pthread_cond_timedwait()) + ms. */
void clock_deadline(struct timespec *until, long ms);

#endif /* VMRQD_CLOCK_H */
