/*
 * log.h - vmrqd's logging, after OpenBSD daemons' log.c: stderr in the foreground (-d), syslog
 * otherwise. log_warn and fatal append strerror(errno); the *x variants do not. Thread-safe.
 * Each message is one line: control characters are escaped (\n, \t, \xNN). A message that
 * comes again at once (same level, same text) is said once, then counted: when another message
 * comes, at exit, and every 10 s while it keeps coming, "TEXT (repeated N times in T s)".
 */
#ifndef VMRQD_LOG_H
#define VMRQD_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Starts logging to stderr (foreground) or syslog as `ident`. */
void log_init(bool foreground, const char *ident);
/* Messages above `level` are dropped. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* The level named "error", "warning", "info" or "debug"; -1 if none. */
int log_level_from_name(const char *name);

/* Says what is still counted (log_init registers it with atexit()). */
void log_flush(void);
/* How long a repeated message is only counted before the count is said (tests). */
void log_set_repeat_window(long long ms);
/* A libpq notice processor (PQsetNoticeProcessor): the server's notices and the errors libpq
 * reports outside a query ("FATAL:  terminating connection ...") as "database: ..." lines of
 * the matching level. `arg` is unused. */
void log_libpq_notice(void *arg, const char *message);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* VMRQD_LOG_H */
