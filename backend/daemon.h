/*
 * daemon.h - vmrqd's main loop: wake (NOTIFY, timers, finished handlers), complete, claim,
 * dispatch, recover, react to signals.
 */
#ifndef VMRQD_DAEMON_H
#define VMRQD_DAEMON_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"

/* Set by the signal handlers, read by the loop (the handlers do nothing else). */
extern volatile sig_atomic_t vmrqd_sig_term;  /* count of SIGTERM/SIGINT received */
extern volatile sig_atomic_t vmrqd_sig_hup;

/* Runs until SIGTERM/SIGINT has drained the daemon. `cfg` is owned by the loop from here on
 * (replaced on SIGHUP, freed at the end); `config_path` is re-read on SIGHUP; `verbose` (-v)
 * keeps debug logging whatever log_level says. Returns the exit status: 0 after a drain. */
int vmrqd_run(struct vmrqd_config *cfg, const char *config_path, bool config_must_exist, bool verbose);

#endif /* VMRQD_DAEMON_H */
