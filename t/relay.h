/*
 * relay.h - a test's relay between vmrqd and PostgreSQL that can lose one answer.
 *
 * It listens on a unix socket of its own and passes every connection through to the test's
 * server, byte for byte. Once armed, the first claim of vmrqd (a Bind of the prepared statement
 * "vmrq_claim") whose answer carries rows is cut after the server has committed it (its
 * ReadyForQuery) and before the client has seen a byte of the answer: the one failure that
 * leaves requests claimed by a daemon that never received them. A claim that took nothing is
 * passed on whole, and the relay waits for the next.
 */
#ifndef VMRQ_T_RELAY_H
#define VMRQ_T_RELAY_H

#include <stdbool.h>

struct t_relay;

/* Starts a relay to the server of $PGHOST/$PGPORT; NULL on failure. t_relay_conninfo() is a
 * conninfo that goes through it (owned by the relay). Free with t_relay_free(), which stops
 * accepting; connections already passed through end when their ends close. */
struct t_relay *t_relay_start(void);
const char *t_relay_conninfo(const struct t_relay *r);

/* Arms the relay to cut the next claim's answer; t_relay_cut() tells whether it has. */
void t_relay_arm(struct t_relay *r);
bool t_relay_cut(struct t_relay *r);

void t_relay_free(struct t_relay *r);

#endif /* VMRQ_T_RELAY_H */
