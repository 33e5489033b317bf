/*
 * notify.h - what vmrqd tells systemd when it runs as a Type=notify service: ready once
 * connected and registered, a STATUS= line an operator sees in `systemctl status`, the watchdog
 * fed while the loop turns, stopping. Every call is a no-op outside systemd (no NOTIFY_SOCKET).
 */
#ifndef VMRQD_NOTIFY_H
#define VMRQD_NOTIFY_H

/* READY=1 (the first time only) with STATUS "daemon ID of node 'NODE': taking requests". */
void notify_ready(int daemon, const char *node);
/* STATUS=<the formatted text>, e.g. "waiting for the database: ...". */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1 with STATUS "stopping: N running requests finish". */
void notify_stopping(int running);
/* Feeds the watchdog (WatchdogSec=) if half its interval has passed since the last time, and
 * returns `timeout_ms` (a poll() timeout, -1: none) shortened so that the loop wakes in time to
 * feed it again. */
int notify_alive(int timeout_ms);

#endif /* VMRQD_NOTIFY_H */
