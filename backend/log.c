/*
 * log.c - stderr or syslog logging for vmrqd (see log.h): each message escaped to one line,
 * a message repeated at once said once and then counted, libpq's notices taken in.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "clock.h"
#include "log.h"

static bool to_stderr = true;
static volatile enum log_level max_level = LOG_LEVEL_INFO;

/* The last message said, and how often it came again since (under lock). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char last[2048];
static enum log_level last_level;
static long repeats;
static long long said_ms, seen_ms, window_ms = 10000;

static void
emit(enum log_level level, const char *msg)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    static const char *const tag[] = { "error", "warning", "info", "debug" };

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

/* Says how often the last message came again, if it did (lock held). */
static void
flush_repeats(void)
{
    char msg[sizeof(last) + 64];

    if (repeats == 0)
        return;
    snprintf(msg, sizeof(msg), "%s (repeated %ld time%s in %lld s)", last, repeats, repeats == 1 ? "" : "s",
             (seen_ms - said_ms + 500) / 1000);
    emit(last_level, msg);
    repeats = 0;
}

void
log_flush(void)
{
    pthread_mutex_lock(&lock);
    flush_repeats();
    pthread_mutex_unlock(&lock);
}

void
log_init(bool foreground, const char *ident)
{
    static bool registered;

    log_flush();
    to_stderr = foreground;
    if (!foreground)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    if (!registered)
        registered = atexit(log_flush) == 0;
}

void
log_set_repeat_window(long long ms)
{
    window_ms = ms;
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

/* Copies text into out (size bytes) with control characters escaped (\n, \t, \xNN), so that
 * a name or a server's message never starts a line of its own or drives a terminal. */
static void
escape(const char *text, char *out, size_t size)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p && o + 5 < size; p++) {
        if (*p == '\n' || *p == '\t') {
            out[o++] = '\\';
            out[o++] = *p == '\n' ? 'n' : 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
}

static void
vlog(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
    char raw[2048], msg[sizeof(last)];
    long long now;
    int n;

    if (level > max_level)
        return;
    n = vsnprintf(raw, sizeof(raw), fmt, ap);
    if (errstr && n >= 0 && (size_t)n < sizeof(raw))
        snprintf(raw + n, sizeof(raw) - (size_t)n, ": %s", errstr);
    escape(raw, msg, sizeof(msg));
    pthread_mutex_lock(&lock);
    now = now_ms();
    if (level == last_level && strcmp(msg, last) == 0) {
        repeats++;
        seen_ms = now;
        if (now - said_ms >= window_ms) { /* a message that keeps coming is counted out loud */
            flush_repeats();
            said_ms = now;
        }
    } else {
        flush_repeats();
        emit(level, msg);
        memcpy(last, msg, sizeof(last));
        last_level = level;
        said_ms = seen_ms = now;
    }
    pthread_mutex_unlock(&lock);
}

void
log_libpq_notice(void *arg, const char *message)
{
    static const struct { const char *prefix; enum log_level level; } sev[] = {
        { "PANIC:", LOG_LEVEL_ERROR }, { "FATAL:", LOG_LEVEL_WARNING }, { "ERROR:", LOG_LEVEL_WARNING },
        { "WARNING:", LOG_LEVEL_WARNING }, { "NOTICE:", LOG_LEVEL_INFO }, { "INFO:", LOG_LEVEL_INFO },
        { "LOG:", LOG_LEVEL_INFO }, { "DEBUG:", LOG_LEVEL_DEBUG },
    };
    enum log_level level = LOG_LEVEL_WARNING;
    char text[1024];
    size_t len;

    (void)arg;
    snprintf(text, sizeof(text), "%s", message);
    len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    for (size_t i = 0; i < sizeof(sev) / sizeof(sev[0]); i++)
        if (strncmp(text, sev[i].prefix, strlen(sev[i].prefix)) == 0) {
            level = sev[i].level;
            break;
        }
    if (level == LOG_LEVEL_WARNING)
        log_warnx("database: %s", text);
    else if (level == LOG_LEVEL_ERROR)
        log_error("database: %s", text);
    else if (level == LOG_LEVEL_INFO)
        log_info("database: %s", text);
    else
        log_debug("database: %s", text);
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

DEFINE_LOG(log_error, LOG_LEVEL_ERROR, 0)
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
