/*
 * log.c - stderr or syslog logging for vmrqd (see log.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static bool to_stderr = true;
static volatile enum log_level max_level = LOG_LEVEL_INFO;

void
log_init(bool foreground, const char *ident)
{
    to_stderr = foreground;
    if (!foreground)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(enum log_level level)
{
    max_level = level;
}

enum log_level
log_get_level(void)
{
    return max_level;
}

int
log_level_from_name(const char *name)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };

    for (int i = 0; i < 4; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static void
vlog(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    static const char *const tag[] = { "error", "warning", "info", "debug" };
    char msg[2048];
    int n;

    if (level > max_level)
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (errstr && n >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", errstr);
    if (to_stderr) {
        struct timespec ts;
        struct tm tm;
        char when[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld vmrqd %s: %s\n", when, ts.tv_nsec / 1000000, tag[level], msg);
    } else {
        syslog(prio[level], "%s", msg);
    }
}

#define DEFINE_LOG(name, level, with_errno)                        \
    void name(const char *fmt, ...)                                \
    {                                                              \
        const char *e = with_errno ? strerror(errno) : NULL;       \
        va_list ap;                                                \
        va_start(ap, fmt);                                         \
        vlog(level, e, fmt, ap);                                   \
        va_end(ap);                                                \
    }

DEFINE_LOG(log_warn, LOG_LEVEL_WARNING, 1)
DEFINE_LOG(log_warnx, LOG_LEVEL_WARNING, 0)
DEFINE_LOG(log_info, LOG_LEVEL_INFO, 0)
DEFINE_LOG(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
    const char *e = strerror(errno);
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LEVEL_ERROR, e, fmt, ap);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LEVEL_ERROR, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
