/*
 * tjob.h - running one request's handler inside a test, as vmrqd would, for the suites that
 * drive handlers on an in-process driver (check_domain.c, check_display.c), and the driver's
 * side of what they did.
 */
#ifndef VMRQ_TJOB_H
#define VMRQ_TJOB_H

#include "driver.h"
#include "job.h"

/* Enqueues `command` with `json` (vmrq_request()), marks it claimed by daemon `daemon_id` and
 * runs its handler on `worker`; the outcome is not written yet: the job is the caller's, to pass
 * to claim_complete() and job_free(). */
struct vmrqd_job *t_job_run_unwritten(struct vmrqd_worker *worker, int daemon_id, const char *command,
                                      const char *json);
/* t_job_run_unwritten(), then the outcome recorded as vmrqd does (follow-ups included) and the
 * job freed. Returns the request's id. */
long long t_job_run(struct vmrqd_worker *worker, int daemon_id, const char *command, const char *json);
/* The state of domain `name` as `drv`'s hypervisor says it, spelt as domains.status does
 * (static); fails the test if the domain cannot be read. */
const char *t_hv_status(struct driver *drv, const char *name);

#endif /* VMRQ_TJOB_H */
