/*
 * dispatch.h - the handler table (command name -> handler) and the dispatch pipeline:
 * look up -> re-validate the arguments -> (admission by class happens at claim time) ->
 * run the handler, timed -> the outcome goes back to the main loop for recording.
 */
#ifndef VMRQD_DISPATCH_H
#define VMRQD_DISPATCH_H

#include <stddef.h>

#include "job.h"

typedef void (*vmrqd_handler_fn)(struct vmrqd_job *job, struct vmrqd_worker *worker);

struct vmrqd_handler {
    const char *name;  /* a catalog command */
    vmrqd_handler_fn run;
    bool inline_ok;    /* never blocks (no I/O): runs on the main loop, claimed in large batches */
};

/* Whether the handler of `command` runs inline (on the main loop or a lane). */
bool dispatch_runs_inline(const char *command);

/* The start-up self-check: every catalog command has a handler and every handler a catalog
 * entry. 0 if so, else -1 with the first mismatch in err. */
int dispatch_check(char *err, size_t errlen);

/* Looks up the job's command and handler and re-validates its arguments against the catalog.
 * 0 if it may run; else -1 with the job failed (job_fail) and nothing to run. */
int dispatch_prepare(struct vmrqd_job *job);

/* Runs the job's handler on a worker thread and measures it. */
void dispatch_run(struct vmrqd_job *job, struct vmrqd_worker *worker);

/* An inline job, here and now, on the main loop or a lane (`where`: NULL or "lane 0", for the
 * log): prepared, run on `worker` (the inline handlers' context) and its outcome logged (see
 * job_log_outcome()). The outcome is the caller's to write. */
void dispatch_inline(struct vmrqd_job *job, struct vmrqd_worker *worker, const char *where, long long backoff_ms);

#endif /* VMRQD_DISPATCH_H */
