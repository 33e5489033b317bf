/*
 * vmrq.h - public interface of libvmrq, the client side of the vmrq request queue.
 *
 * A client (web portal, cron job, operator tool) builds a request -- a command name from the
 * catalog plus arguments --, validates it against the catalog, and enqueues it as a row of the
 * `requests` table; vmrqd executes it.  The same catalog is written into the database by
 * vmrq_db_upgrade() so that the database refuses invalid rows from any client too, with the very
 * same messages.
 *
 * Conventions (as in libvirt):
 *  - functions returning int return 0 (or a count) on success and -1 on error; functions
 *    returning a pointer return NULL on error;
 *  - on error the reason is kept in a thread-local slot: vmrq_error_code() and
 *    vmrq_error_message() read it, and it stays until the next failing call of this thread;
 *  - every *_free() function accepts NULL;
 *  - each function says who owns what it returns.
 *
 * Thread safety: a vmrq_request belongs to one thread at a time; a PGconn likewise (libpq rule).
 */
#ifndef VMRQ_H
#define VMRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(VMRQ_BUILDING_LIBRARY)
#define VMRQ_EXPORT __attribute__((visibility("default")))
#else
#define VMRQ_EXPORT
#endif

/* ---------------------------------------------------------------- errors */

typedef enum {
    VMRQ_OK = 0,
    VMRQ_ERR_INVALID,   /* bad input: unknown command, bad argument, bad option (exit 2) */
    VMRQ_ERR_NOT_FOUND, /* no such request, user, domain or node */
    VMRQ_ERR_STATE,     /* the object is in a state that forbids the operation */
    VMRQ_ERR_TIMEOUT,   /* a wait ran out of time (the session's lock_timeout too: SQLSTATE 55P03) */
    VMRQ_ERR_DB,        /* the database failed or could not be reached */
    VMRQ_ERR_SYSTEM,    /* out of memory, poll() failure and such */
    VMRQ_ERR_LAST
} vmrq_errcode;

/* The code of this thread's last error (VMRQ_OK if none since vmrq_error_reset()). */
VMRQ_EXPORT vmrq_errcode vmrq_error_code(void);
/* This thread's last error message, one line; owned by the library, valid until this
 * thread's next libvmrq call. Never NULL ("" when there is no error). */
VMRQ_EXPORT const char *vmrq_error_message(void);
/* Forget this thread's last error. */
VMRQ_EXPORT void vmrq_error_reset(void);

/* ---------------------------------------------------------------- the catalog */

typedef enum {
    VMRQ_ARG_INT,    /* JSON integer within [min, max] */
    VMRQ_ARG_STRING, /* JSON string of min to max characters, no control character */
    VMRQ_ARG_BOOL,   /* JSON true or false */
    VMRQ_ARG_ENUM,   /* JSON string, one of `values` */
    VMRQ_ARG_TIME,   /* seconds since the epoch (integer) or a timestamp string the database parses */
    VMRQ_ARG_TYPE_LAST
} vmrq_arg_type;

typedef struct vmrq_arg {
    const char *name;
    bool mandatory;               /* Ravada's 1 (true) and 2 (false) */
    vmrq_arg_type type;
    long long min, max;           /* inclusive bounds: VMRQ_ARG_INT of the value, VMRQ_ARG_STRING
                                   * of its length in characters (code points) */
    const char *const *values;    /* VMRQ_ARG_ENUM: NULL-terminated list */
    const char *help;             /* one line for `vmrq commands` */
} vmrq_arg;

/* Priority groups, each with its own concurrency limit in vmrqd (Ravada's %COMMAND groups). */
typedef enum {
    VMRQ_CLASS_IMPORTANT, /* what a user waits for: start, shutdown, ... */
    VMRQ_CLASS_SECONDARY, /* housekeeping and refreshes */
    VMRQ_CLASS_LONG,      /* minutes of disk I/O: hibernate */
    VMRQ_CLASS_LAST
} vmrq_class;

/* Command flags. */
enum {
    VMRQ_CMD_NODUP = 1 << 0,  /* an identical pending request is returned instead of a new one */
    VMRQ_CMD_DOMAIN = 1 << 1, /* acts on one domain (id_domain or name); serialized per domain */
    VMRQ_CMD_RERUN = 1 << 2,  /* running it twice is safe: a vmrqd that dies running it, it runs again */
};

typedef struct vmrq_command {
    const char *name;
    vmrq_class cls;
    unsigned flags;                   /* VMRQ_CMD_* */
    const vmrq_arg *args;             /* terminated by an entry whose name is NULL */
    const char *const *needs_one_of;  /* NULL, or NULL-terminated: at least one must be given */
    const char *summary;              /* one line for `vmrq commands` */
} vmrq_command;

/* The command named `name`, or NULL (no error is recorded). Points into a static table. */
VMRQ_EXPORT const vmrq_command *vmrq_command_lookup(const char *name);
/* Number of commands, and the i-th (0 <= i < count) in catalog order. Static storage. */
VMRQ_EXPORT size_t vmrq_command_count(void);
VMRQ_EXPORT const vmrq_command *vmrq_command_at(size_t i);
/* The argument `name` of `cmd`, including the options every command accepts
 * (at, after_request, after_request_ok, retry, priority, _force); NULL if unknown. */
VMRQ_EXPORT const vmrq_arg *vmrq_command_arg(const vmrq_command *cmd, const char *name);
/* The options every command accepts, terminated by an entry whose name is NULL. Static. */
VMRQ_EXPORT const vmrq_arg *vmrq_common_args(void);
/* The whole catalog as JSON text: an array of {name, class, flags, args, needs_one_of, summary},
 * args mapping each argument (common options included, marked "option") to {type, mandatory, min,
 * max, values, help}. This is what `vmrq db upgrade` writes into the `commands` table. The caller
 * frees the string with free(); NULL on out of memory. */
VMRQ_EXPORT char *vmrq_catalog_json(void);
/* "important", "secondary", "long"; "?" for an out-of-range value. Static. */
VMRQ_EXPORT const char *vmrq_class_name(vmrq_class cls);
/* "int", "string", "bool", "enum", "time". Static. */
VMRQ_EXPORT const char *vmrq_arg_type_name(vmrq_arg_type type);

/* ---------------------------------------------------------------- request status */

/* The life of a request (mirrors the SQL enum request_status, sql/0001_baseline.sql; its transitions:
 * sql/functions/transitions.sql). */
typedef enum {
    VMRQ_STATUS_REQUESTED, /* ready to run once at_time has passed */
    VMRQ_STATUS_WAITING,   /* waits for after_request / after_request_ok to finish */
    VMRQ_STATUS_WORKING,   /* claimed by a vmrqd, handler running */
    VMRQ_STATUS_DONE,      /* finished, success */
    VMRQ_STATUS_FAILED,    /* finished, `error` says why */
    VMRQ_STATUS_CANCELLED, /* withdrawn before it ran */
    VMRQ_STATUS_LAST
} vmrq_status;

/* The SQL name of a status ("requested", ...); "?" out of range. Static. */
VMRQ_EXPORT const char *vmrq_status_name(vmrq_status status);
/* The status named `name`, or -1 (no error recorded). */
VMRQ_EXPORT int vmrq_status_from_name(const char *name);
/* True for done, failed and cancelled. */
VMRQ_EXPORT bool vmrq_status_is_final(vmrq_status status);

/* ---------------------------------------------------------------- requests */

typedef struct vmrq_request vmrq_request;

/* A new request for `command`, with empty arguments and a fresh random uuid (libuuid).
 * NULL with VMRQ_ERR_INVALID if the command is unknown. The caller frees it. */
VMRQ_EXPORT vmrq_request *vmrq_request_new(const char *command);
VMRQ_EXPORT void vmrq_request_free(vmrq_request *req);

/* Typed setters; each replaces a previous value of `name`. They do not check the catalog:
 * vmrq_request_validate() and vmrq_request_enqueue() do. Strings are copied. */
VMRQ_EXPORT int vmrq_request_set_int(vmrq_request *req, const char *name, long long value);
VMRQ_EXPORT int vmrq_request_set_string(vmrq_request *req, const char *name, const char *value);
VMRQ_EXPORT int vmrq_request_set_bool(vmrq_request *req, const char *name, bool value);
/* Sets `name` from text as typed on a command line, converted by the catalog's type for the
 * argument (int, bool, time: a number; "yes", "off", ...); text that does not convert is kept as a
 * string so that validation names the argument and the expected type. */
VMRQ_EXPORT int vmrq_request_set_text(vmrq_request *req, const char *name, const char *text);
/* Merges the members of a JSON object (text) into the arguments. The text is read as the
 * database reads jsonb (strict JSON, UTF-8, no \u0000, numbers exact): VMRQ_ERR_INVALID, in
 * PostgreSQL's words, for text the database would refuse, or that is not a JSON object. The
 * empty name "" is a name like any other (validation refuses it as unknown). */
VMRQ_EXPORT int vmrq_request_set_json(vmrq_request *req, const char *json);
/* Sets the client-chosen uuid (idempotency key). VMRQ_ERR_INVALID if not a uuid. */
VMRQ_EXPORT int vmrq_request_set_uuid(vmrq_request *req, const char *uuid);

/* Checks the arguments against the catalog; 0 if valid, else -1 with VMRQ_ERR_INVALID and the
 * same message the database gives for the same row. */
VMRQ_EXPORT int vmrq_request_validate(const vmrq_request *req);

/* Validates, then inserts the request through the SQL function vmrq_enqueue() (one round trip).
 * If the uuid was used before, or the command is no-duplicate and an identical request is pending,
 * the existing request is returned instead: vmrq_request_id()/uuid() then name it and
 * vmrq_request_is_new() is false. Options in the arguments (at, after_request, ...) move into
 * their columns, as the database does. */
VMRQ_EXPORT int vmrq_request_enqueue(PGconn *conn, vmrq_request *req);

/* Enqueues `n` requests in one statement (one round trip, one transaction): each is validated
 * here first, and by the database's trigger as any row is; the first invalid one fails the call
 * with "request K of N: MESSAGE" (VMRQ_ERR_INVALID) and nothing is enqueued. As with
 * vmrq_request_enqueue(), a request whose uuid exists, or whose no-duplicate twin is pending
 * (in the database or earlier in the batch), names the existing request (is_new false). Large
 * batches are the caller's to split (10,000 rows per call is a good size). */
VMRQ_EXPORT int vmrq_request_enqueue_batch(PGconn *conn, vmrq_request *const *reqs, size_t n);

/* Reads request `id` back. NULL with VMRQ_ERR_NOT_FOUND if there is none. The caller frees it. */
VMRQ_EXPORT vmrq_request *vmrq_request_fetch(PGconn *conn, long long id);

/* Waits until request `id` is done, failed or cancelled, for at most `timeout_ms` milliseconds
 * (negative: no limit), LISTENing on the channel vmrq_done (payloads: "ID STATUS" pairs separated
 * by commas, e.g. "42 done,43 failed"); the connection must not be inside a
 * transaction, and is left UNLISTENed from vmrq_done. Stores the final status in *status.
 * -1 with VMRQ_ERR_TIMEOUT when time runs out, VMRQ_ERR_NOT_FOUND if there is no such request. */
VMRQ_EXPORT int vmrq_request_wait(PGconn *conn, long long id, int timeout_ms, vmrq_status *status);

/* Called with a request's progress, from 0 to 1 (requests.progress, written by a long handler
 * such as prepare_base), each time it has changed. */
typedef void (*vmrq_progress_fn)(void *opaque, long long id, double done);
/* vmrq_request_wait(), reading the progress once a second and calling `fn` (not NULL) with it
 * when it changed. */
VMRQ_EXPORT int vmrq_request_wait_progress(PGconn *conn, long long id, int timeout_ms, vmrq_status *status,
                                           vmrq_progress_fn fn, void *opaque);

/* Cancels request `id` if it is still pending (requested or waiting), via SQL vmrq_cancel().
 * VMRQ_ERR_NOT_FOUND if there is no such request, VMRQ_ERR_STATE if it is working or finished. */
VMRQ_EXPORT int vmrq_request_cancel(PGconn *conn, long long id);

/* Accessors. Strings are owned by the request and live as long as it. A request built with
 * vmrq_request_new() has id 0 until enqueued; its status is VMRQ_STATUS_REQUESTED. */
VMRQ_EXPORT long long vmrq_request_id(const vmrq_request *req);
VMRQ_EXPORT const char *vmrq_request_uuid(const vmrq_request *req);
VMRQ_EXPORT const char *vmrq_request_command(const vmrq_request *req);
VMRQ_EXPORT vmrq_status vmrq_request_status(const vmrq_request *req);
VMRQ_EXPORT bool vmrq_request_is_new(const vmrq_request *req);
/* The arguments as compact JSON text; owned by the request, valid until it changes. */
VMRQ_EXPORT const char *vmrq_request_args_json(const vmrq_request *req);
/* Set by vmrq_request_fetch() only; NULL when the column is NULL. */
VMRQ_EXPORT const char *vmrq_request_error(const vmrq_request *req);
VMRQ_EXPORT const char *vmrq_request_output_json(const vmrq_request *req);

/* ---------------------------------------------------------------- schema */

/* Brings the database's schema to this build's, in one transaction under an advisory lock (safe
 * to run concurrently and repeatedly): applies the migrations not yet recorded in
 * schema_migrations, re-creates the functions, triggers and views if any source changed (and
 * drops the vmrq_* functions the sources no longer define), then writes this build's catalog
 * into `commands`. On an up-to-date database it changes nothing. Returns the number of
 * migrations applied; -1 on error (nothing changed), VMRQ_ERR_STATE when the database was made
 * or upgraded by another build. Run it as the schema's owner. */
VMRQ_EXPORT int vmrq_db_upgrade(PGconn *conn);

/* 0 if the database's schema is exactly this build's (what vmrqd needs to start); else -1, with
 * VMRQ_ERR_STATE and one line saying what differs and what to run (no schema, behind, ahead, its
 * functions another build's), or VMRQ_ERR_DB if it could not be read. */
VMRQ_EXPORT int vmrq_db_check(PGconn *conn);

/* Number of migrations this build knows, and the name of the i-th ("0001_baseline"). Static. */
VMRQ_EXPORT size_t vmrq_db_migration_count(void);
VMRQ_EXPORT const char *vmrq_db_migration_name(size_t i);
/* Highest migration version applied to the database (0 if none, -1 on error). */
VMRQ_EXPORT int vmrq_db_version(PGconn *conn);

/* ---------------------------------------------------------------- misc */

/* "0.1.0". Static. */
VMRQ_EXPORT const char *vmrq_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VMRQ_H */
