/*
 * config.h - vmrqd's configuration: a table of keys (config.c) read from a `key = value` file,
 * with VMRQ_DB, VMRQ_LIBVIRT_URI and VMRQ_NODE overriding the file.
 */
#ifndef VMRQD_CONFIG_H
#define VMRQD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "vmrq.h"

#define VMRQD_DEFAULT_CONFIG "/etc/vmrq/vmrqd.conf"
/* Where a daemonized vmrqd writes its pid unless `pidfile` says otherwise (created if missing). */
#define VMRQD_DEFAULT_PIDDIR "/run/vmrq"
#define VMRQD_DEFAULT_PIDFILE VMRQD_DEFAULT_PIDDIR "/vmrqd.pid"

struct vmrqd_config {
    char *database;         /* libpq conninfo */
    char *libvirt_uri;      /* hypervisor; "": the node's (nodes.uri, ctl_check_start()) */
    char *node;             /* the node this daemon serves (default: the host name) */
    int workers;            /* handler threads */
    int claim_batch;        /* requests claimed at once for the handlers that run inline */
    int lanes;              /* helper lanes draining inline backlogs (lanes.h) */
    int limit[VMRQ_CLASS_LAST]; /* concurrent handlers per class */
    int claim_ahead;        /* claimed per class: its limit times 1 + this (pool.c queues them) */
    long long handler_deadline_ms;      /* classes important and secondary */
    long long handler_deadline_long_ms; /* class long (prepare_base copies whole disks) */
    char *storage_pool;     /* the libvirt storage pool of bases' and clones' volumes */
    int display_password_always; /* 1: every display gets a fresh password before each start */
    int log_level;          /* enum log_level */
    char *pidfile;          /* "": the default (config_pidfile()); "none": never */
    long long retention_ms; /* cleanup deletes finished requests older than this */
    long long lease_ms;     /* a daemon silent this long is dead; its claims are taken back */
    long long retry_backoff_ms;
    long long poll_interval_ms;    /* safety net against a lost notification */
    long long cleanup_interval_ms; /* how often vmrqd enqueues `cleanup` (0: never) */
    long long refresh_interval_ms; /* how often vmrqd enqueues refresh_vms for its node (0: never) */
    long long pool_interval_ms; /* how often vmrqd enqueues manage_pools for its bases with a pool (0: never) */
    long long drain_timeout_ms;    /* SIGTERM: how long running handlers may take to finish */
};

/* Reads `path` over the defaults, then the environment. A missing file is an error only when
 * `must_exist` (vmrqd -f). On error returns -1 with a one-line reason in err ("FILE:LINE: ...")
 * and leaves *cfg untouched. On success *cfg is replaced (the old strings freed). */
int config_load(struct vmrqd_config *cfg, const char *path, bool must_exist, char *err, size_t errlen);

/* Copies into `next` the keys that cannot change without a restart from `cur`, naming each one
 * that differed in a warning. */
void config_keep_fixed(struct vmrqd_config *next, const struct vmrqd_config *cur);

/* The pidfile to write: `pidfile` when set, VMRQD_DEFAULT_PIDFILE for a daemon (not
 * `foreground`), NULL for none ("none", or the default under -d). Points into cfg. */
const char *config_pidfile(const struct vmrqd_config *cfg, bool foreground);

/* Frees the strings of cfg (not cfg itself). */
void config_free(struct vmrqd_config *cfg);

/* The name of the i-th key (NULL past the end), for tests and documentation checks. */
const char *config_key_name(size_t i);

#endif /* VMRQD_CONFIG_H */
