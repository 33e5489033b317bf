/*
 * notify.c - vmrqd and systemd (see notify.h), through libsystemd's sd_notify(). Only the main
 * loop's thread calls these.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

static bool ready_sent;
static int watchdog_ms = -1;   /* -1: not asked yet; 0: no watchdog */
static long long last_feed_ms;

void
notify_ready(int daemon, const char *node)
{
    if (sd_notifyf(0, "%sSTATUS=daemon %d of node '%s': taking requests", ready_sent ? "" : "READY=1\n",
                   daemon, node) > 0)
        ready_sent = true;
}

void
notify_status(const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", text);
}

void
notify_stopping(int running)
{
    sd_notifyf(0, "STOPPING=1\nSTATUS=stopping: %d running request%s finish%s", running,
               running == 1 ? "" : "s", running == 1 ? "es" : "");
}

int
notify_alive(int timeout_ms)
{
    long long now = now_ms(), half;
    uint64_t usec = 0;

    if (watchdog_ms < 0) {
        watchdog_ms = sd_watchdog_enabled(0, &usec) > 0 ? (int)(usec / 1000) : 0;
        if (watchdog_ms > 0)
            log_debug("systemd watchdog: fed every %d ms", watchdog_ms / 2);
    }
    if (watchdog_ms <= 0)
        return timeout_ms;
    half = watchdog_ms / 2;
    if (now - last_feed_ms >= half) {
        sd_notify(0, "WATCHDOG=1");
        last_feed_ms = now;
    }
    if (timeout_ms < 0 || timeout_ms > last_feed_ms + half - now)
        timeout_ms = (int)(last_feed_ms + half - now);
    return timeout_ms < 0 ? 0 : timeout_ms;
}
