/*
 * log.h - vmrqd's logging, after OpenBSD daemons' log.c: stderr in the foreground (-d), syslog
 * otherwise. log_warn and fatal append strerror(errno); the *x variants do not. Thread-safe.
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

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* VMRQD_LOG_H */
