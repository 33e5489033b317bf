/*
 * clock.c - the daemon's clocks (see clock.h).
 */
#include "clock.h"

long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
clock_deadline(struct timespec *until, long ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += ms / 1000;
    until->tv_nsec += (ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}
