/*
 * domain.h - the domain layer of the handlers: a domain opened on both sides (its row in
 * `domains` and its handle in the hypervisor driver), the rights of the requesting user, and
 * keeping domains.status true.
 */
#ifndef VMRQD_DOMAIN_H
#define VMRQD_DOMAIN_H

#include "driver.h"
#include "job.h"

struct domain {
    int id;
    char name[256];
    char uuid[37];             /* "" if not known yet */
    int id_owner;              /* 0: nobody */
    int shutdown_timeout;      /* seconds, -1 if not set */
    bool node_enabled;
    char user[128];            /* the requesting user's name; "" if there is no such user */
    bool user_privileged;      /* operator or admin */
    bool is_base;              /* prepared as a base: cloned, never started */
    struct driver_dom *dom;    /* owned */
    struct dom_info info;      /* the hypervisor's view, refreshed by domain_sync() */
};

/* Opens the domain named by the job's id_domain or name: its row as the claim read it, else as
 * read now on the worker's connection, and its handle in the driver. On failure the job is failed ("no
 * domain 'X'" when the row or the hypervisor's domain is missing) and -1 returned; on success
 * close it with domain_close(). */
int domain_open(struct vmrqd_job *job, struct vmrqd_worker *w, struct domain *d);
void domain_close(struct vmrqd_worker *w, struct domain *d);

/* Whether the job's user (read by domain_open, in the same query) may `action` the domain: its
 * owner, an operator or an admin. Else the job fails with "user U is not allowed to ACTION D"
 * (or "no user N") and -1 is returned. */
int domain_authorize(struct vmrqd_job *job, const struct domain *d, const char *action);

/* The rule of every statement that writes domains.status, as SQL: an observation made at `seen`
 * (a timestamptz expression) replaces the status of the domain row `row` (its alias) only if it
 * is not older than the row's own (status_seen). The event sink, refresh_vms and the completions
 * each test it, so that none writes an older reading over a newer one; the rule itself is
 * vmrq_status_not_older() (sql/functions/domains.sql). */
#define DOMAIN_STATUS_NOT_OLDER(row, seen) "vmrq_status_not_older(" row ".status_seen, " seen ")"

/* Re-reads the hypervisor's state into d->info, to be written to domains.status (and the uuid,
 * if the row lacked it) with the job's completion. -1 on error (logged; the job is not failed
 * for it). */
int domain_sync(struct vmrqd_job *job, struct vmrqd_worker *w, struct domain *d);

#endif /* VMRQD_DOMAIN_H */
