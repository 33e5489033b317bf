/*
 * config.c - the configuration table of vmrqd, after PgBouncer's: each key's name, type, place,
 * flags and default in one row; parsing of the `key = value` file; environment overrides.
 * Every key is documented in etc/vmrqd.conf.example (a test checks that the two agree).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

enum cfg_type { CFG_STRING, CFG_INT, CFG_DURATION, CFG_LOGLEVEL };

/* CFG_FIXED: a reload cannot change it (the process would have to be rebuilt around it). The
 * database is one: each of vmrqd's connections (loop, lanes, workers, event sink) holds claims
 * or outcomes of requests of that database, and its row in `daemons` lives there. */
#define CFG_FIXED 1u

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset;
    unsigned flags;
    const char *def;
    const char *env;   /* environment variable that overrides the file, or NULL */
    long long min, max; /* CFG_INT, CFG_DURATION (ms) */
};

#define OFF(field) offsetof(struct vmrqd_config, field)
#define DAY (86400LL * 1000)

static const struct cfg_key keys[] = {
    /* name               type          place                         flags      default           env                 min  max */
    { "database",         CFG_STRING,   OFF(database),                CFG_FIXED, "",               "VMRQ_DB",          0, 0 },
    { "libvirt_uri",      CFG_STRING,   OFF(libvirt_uri),             CFG_FIXED, "",               "VMRQ_LIBVIRT_URI", 0, 0 },
    { "node",             CFG_STRING,   OFF(node),                    CFG_FIXED, "",               "VMRQ_NODE",        0, 0 },
    { "workers",          CFG_INT,      OFF(workers),                 CFG_FIXED, "8",              NULL,               1, 256 },
    { "claim_batch",      CFG_INT,      OFF(claim_batch),             0,         "1000",           NULL,               1, 100000 },
    { "lanes",            CFG_INT,      OFF(lanes),                   CFG_FIXED, "2",              NULL,               0, 16 },
    { "limit_important",  CFG_INT,      OFF(limit[VMRQ_CLASS_IMPORTANT]), 0,     "8",              NULL,               0, 256 },
    { "limit_secondary",  CFG_INT,      OFF(limit[VMRQ_CLASS_SECONDARY]), 0,     "2",              NULL,               0, 256 },
    { "limit_long",       CFG_INT,      OFF(limit[VMRQ_CLASS_LONG]),  0,         "1",              NULL,               0, 256 },
    { "claim_ahead",      CFG_INT,      OFF(claim_ahead),             0,         "3",              NULL,               0, 16 },
    { "handler_deadline", CFG_DURATION, OFF(handler_deadline_ms),     0,         "5m",             NULL,               10, DAY },
    { "handler_deadline_long", CFG_DURATION, OFF(handler_deadline_long_ms), 0,   "2h",             NULL,               10, 7 * DAY },
    { "storage_pool",     CFG_STRING,   OFF(storage_pool),            CFG_FIXED, "default",        NULL,               0, 0 },
    { "display_password_always", CFG_INT, OFF(display_password_always), CFG_FIXED, "0",          NULL,               0, 1 },
    { "log_level",        CFG_LOGLEVEL, OFF(log_level),               0,         "info",           NULL,               0, 0 },
    { "pidfile",          CFG_STRING,   OFF(pidfile),                 CFG_FIXED, "",               NULL,               0, 0 },
    { "retention",        CFG_DURATION, OFF(retention_ms),            0,         "7d",             NULL,               0, 3650 * DAY },
    { "lease",            CFG_DURATION, OFF(lease_ms),                0,         "30s",            NULL,               300, DAY },
    { "retry_backoff",    CFG_DURATION, OFF(retry_backoff_ms),        0,         "5s",             NULL,               1, DAY },
    { "poll_interval",    CFG_DURATION, OFF(poll_interval_ms),        0,         "30s",            NULL,               10, DAY },
    { "cleanup_interval", CFG_DURATION, OFF(cleanup_interval_ms),     0,         "1h",             NULL,               0, 365 * DAY },
    { "refresh_interval", CFG_DURATION, OFF(refresh_interval_ms),     0,         "10m",            NULL,               0, 365 * DAY },
    { "pool_interval",    CFG_DURATION, OFF(pool_interval_ms),        0,         "1m",             NULL,               0, 365 * DAY },
    { "drain_timeout",    CFG_DURATION, OFF(drain_timeout_ms),        0,         "60s",            NULL,               0, DAY },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

const char *
config_key_name(size_t i)
{
    return i < NKEYS ? keys[i].name : NULL;
}

/* "90", "90s", "250ms", "5m", "2h", "7d" -> milliseconds; false if not of that form. */
static bool
parse_duration(const char *text, long long *ms)
{
    static const struct { const char *suffix; long long ms; } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 }, { "", 1000 },
    };
    char *end;
    long long n;

    if (!isdigit((unsigned char)*text))
        return false;
    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno)
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return false;
            *ms = n * units[i].ms;
            return true;
        }
    return false;
}

/* Sets key k of cfg from text; on error writes why into err. */
static int
set_key(struct vmrqd_config *cfg, const struct cfg_key *k, const char *text, char *err, size_t errlen)
{
    void *place = (char *)cfg + k->offset;
    long long n;
    char *end, *copy;
    int level;

    switch (k->type) {
    case CFG_STRING:
        if (!(copy = strdup(text))) {
            snprintf(err, errlen, "%s: out of memory", k->name);
            return -1;
        }
        free(*(char **)place);
        *(char **)place = copy;
        return 0;
    case CFG_INT:
        errno = 0;
        n = strtoll(text, &end, 10);
        if (!*text || *end || errno || n < k->min || n > k->max) {
            snprintf(err, errlen, "%s must be a whole number from %lld to %lld, not '%s'", k->name, k->min,
                     k->max, text);
            return -1;
        }
        *(int *)place = (int)n;
        return 0;
    case CFG_DURATION:
        if (!parse_duration(text, &n) || n < k->min || n > k->max) {
            snprintf(err, errlen, "%s must be a duration such as 90s, 250ms, 5m, 2h or 7d"
                     " (from %lld ms), not '%s'", k->name, k->min, text);
            return -1;
        }
        *(long long *)place = n;
        return 0;
    case CFG_LOGLEVEL:
        if ((level = log_level_from_name(text)) < 0) {
            snprintf(err, errlen, "%s must be error, warning, info or debug, not '%s'", k->name, text);
            return -1;
        }
        *(int *)place = level;
        return 0;
    }
    return -1;
}

static const struct cfg_key *
find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static char *
trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Reads the file's lines into cfg. 1 read, 0 absent, -1 error. */
static int
read_file(struct vmrqd_config *cfg, const char *path, char *err, size_t errlen)
{
    char line[4096], why[512];
    FILE *f = fopen(path, "r");
    int lineno = 0, ret = 1;

    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *key, *value, *eq;
        const struct cfg_key *k;
        size_t vlen;

        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        if (!(eq = strchr(key, '='))) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            goto fail;
        }
        *eq = '\0';
        key = trim(key);
        value = trim(eq + 1);
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (!(k = find_key(key))) {
            snprintf(err, errlen, "%s:%d: unknown key '%s'", path, lineno, key);
            goto fail;
        }
        if (set_key(cfg, k, value, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            goto fail;
        }
    }
    fclose(f);
    return ret;

fail:
    fclose(f);
    return -1;
}

int
config_load(struct vmrqd_config *cfg, const char *path, bool must_exist, char *err, size_t errlen)
{
    struct vmrqd_config next;
    char why[512], host[256];
    int r;

    memset(&next, 0, sizeof(next));
    for (size_t i = 0; i < NKEYS; i++)
        if (set_key(&next, &keys[i], keys[i].def, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "default of %s", why);
            goto fail;
        }
    if (path) {
        if ((r = read_file(&next, path, err, errlen)) < 0)
            goto fail;
        if (r == 0 && must_exist) {
            snprintf(err, errlen, "%s: no such file", path);
            goto fail;
        }
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const char *v = keys[i].env ? getenv(keys[i].env) : NULL;
        if (v && set_key(&next, &keys[i], v, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "environment %s: %s", keys[i].env, why);
            goto fail;
        }
    }
    if (!*next.node) {
        if (gethostname(host, sizeof(host)) < 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if (set_key(&next, find_key("node"), host, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s", why);
            goto fail;
        }
    }
    config_free(cfg);
    *cfg = next;
    return 0;

fail:
    config_free(&next);
    return -1;
}

void
config_keep_fixed(struct vmrqd_config *next, const struct vmrqd_config *cur)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        void *to = (char *)next + k->offset;
        const void *from = (const char *)cur + k->offset;
        bool differ;

        if (!(k->flags & CFG_FIXED))
            continue;
        if (k->type == CFG_STRING) {
            differ = strcmp(*(char *const *)to, *(char *const *)from) != 0;
            if (differ) {
                char *copy = strdup(*(char *const *)from);
                if (copy) {
                    free(*(char **)to);
                    *(char **)to = copy;
                }
            }
        } else {
            differ = *(int *)to != *(const int *)from;
            *(int *)to = *(const int *)from;
        }
        if (differ)
            log_warnx("reload: %s cannot change while vmrqd runs; restart it to apply", k->name);
    }
}

const char *
config_pidfile(const struct vmrqd_config *cfg, bool foreground)
{
    if (strcmp(cfg->pidfile, "none") == 0)
        return NULL;
    if (*cfg->pidfile)
        return cfg->pidfile;
    return foreground ? NULL : VMRQD_DEFAULT_PIDFILE;
}

void
config_free(struct vmrqd_config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == CFG_STRING) {
            char **s = (char **)((char *)cfg + keys[i].offset);
            free(*s);
            *s = NULL;
        }
}
