/*
 * clock.c - the daemon's clocks (see clock.h).
 */
#include <stdio.h>

#include "clock.h"

long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double
clock_epoch(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void
clock_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
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

int
clock_utc_after(long long ms, char *buf, size_t size)
{
    struct timespec ts;
    long long at_ms;
    time_t secs;
    struct tm tm;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    at_ms = (long long)ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000 + ms;
    secs = (time_t)(at_ms / 1000);
    if (!gmtime_r(&secs, &tm) || (len = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm)) == 0 ||
        (size_t)snprintf(buf + len, size - len, ".%03lld+00", at_ms % 1000) >= size - len)
        return -1;
    return 0;
}

long long
clock_backoff(long long prev, long long first, long long max)
{
    if (prev <= 0)
        return first;
    return prev > max / 2 ? max : prev * 2;
}
