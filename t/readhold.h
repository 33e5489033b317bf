/*
 * readhold.h - a test's hold on the reads of one file: a copy that stops half-way on cue.
 *
 * With fanotify's permission events (FAN_ACCESS_PERM) every read of the file waits for the
 * test's answer. The first reads of a named program pass, the next are held, so the reader
 * blocks in read() with part of the file copied, however fast or loaded the machine is; until
 * the test lets them all go. Reads by any other program always pass. Needs CAP_SYS_ADMIN.
 */
#ifndef VMRQ_T_READHOLD_H
#define VMRQ_T_READHOLD_H

#include <stdbool.h>

struct t_readhold;

/* Watches the reads of `path`: those of processes whose name (/proc/PID/comm) is `comm` pass
 * until `allow` have, then wait. NULL with errno set on failure (EPERM: not CAP_SYS_ADMIN).
 * Free with t_readhold_free(). */
struct t_readhold *t_readhold_start(const char *path, const char *comm, int allow);

/* Waits up to timeout_ms for a read of `comm` to be held; true once one is. */
bool t_readhold_wait(struct t_readhold *h, int timeout_ms);

/* Lets the held reads and every later one pass, stops watching and frees h. If the test
 * process ends first, the kernel lets them pass: a failed test never leaves a reader stuck. */
void t_readhold_free(struct t_readhold *h);

#endif /* VMRQ_T_READHOLD_H */
