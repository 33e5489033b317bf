/*
 * catalog.c - the request catalog: every command vmrq knows, with its arguments (Ravada's
 * %VALID_ARG: mandatory or optional, and typed), its class and its flags.
 *
 * This table is the single source of truth: the library validates against it, `vmrq db upgrade`
 * writes it into the `commands` table where the database's trigger validates against it, and
 * vmrqd checks at start-up that its handler table covers exactly these names.
 *
 * Adding a command: an entry here, then a handler in backend/, then a test in t/ (README.md,
 * "Adding a command").
 */
#include <stdint.h>
#include <string.h>

#include "vmrq.h"

#define MANDATORY true
#define OPTIONAL false

/* Argument shapes used by many commands. Ids are positive int4s, as the SQL columns are; a string
 * (a libvirt domain name, a node name) is 1 to VMRQ_STRING_MAX characters without control
 * characters. */
#define VMRQ_STRING_MAX 128
#define ARG_UID(m) { "uid", m, VMRQ_ARG_INT, 1, INT32_MAX, NULL, "id of the user asking" }
#define ARG_ID_DOMAIN { "id_domain", OPTIONAL, VMRQ_ARG_INT, 1, INT32_MAX, NULL, "id of the domain" }
#define ARG_NAME { "name", OPTIONAL, VMRQ_ARG_STRING, 1, VMRQ_STRING_MAX, NULL, "name of the domain" }
#define ARG_TIMEOUT(help) { "timeout", OPTIONAL, VMRQ_ARG_INT, 0, INT32_MAX, NULL, help }
#define ARG_END { NULL, false, 0, 0, 0, NULL, NULL }

static const char *const power_modes[] = { "acpi", "agent", "default", NULL };
#define ARG_MODE { "mode", OPTIONAL, VMRQ_ARG_ENUM, 0, 0, power_modes, \
                   "acpi (power button), agent (guest agent) or default (libvirt chooses)" }

/* Options every command accepts; they leave `args` for their own columns when enqueued. */
static const vmrq_arg common_args[] = {
    { "at", OPTIONAL, VMRQ_ARG_TIME, 0, 0, NULL, "run not before (epoch seconds or timestamp)" },
    { "after_request", OPTIONAL, VMRQ_ARG_INT, 1, INT64_MAX, NULL,
      "run after that request has finished" },
    { "after_request_ok", OPTIONAL, VMRQ_ARG_INT, 1, INT64_MAX, NULL,
      "run after that request has succeeded; fail if it fails" },
    { "retry", OPTIONAL, VMRQ_ARG_INT, 0, 1000, NULL, "times to retry a retryable failure" },
    { "priority", OPTIONAL, VMRQ_ARG_INT, INT32_MIN, INT32_MAX, NULL,
      "higher runs first (default 0)" },
    { "_force", OPTIONAL, VMRQ_ARG_BOOL, 0, 0, NULL, "enqueue even if an identical request is pending" },
    ARG_END
};

static const vmrq_arg args_none[] = { ARG_END };
static const vmrq_arg args_domain[] = { ARG_UID(MANDATORY), ARG_ID_DOMAIN, ARG_NAME, ARG_END };
static const vmrq_arg args_power[] = {
    ARG_UID(MANDATORY), ARG_ID_DOMAIN, ARG_NAME,
    ARG_TIMEOUT("seconds before a force_shutdown follows"), ARG_MODE, ARG_END
};
/* A shutdown vmrqd enqueues for a policy says which, so that the policy can make it moot: a
 * viewer coming back cancels the `unwatched` one (backend/events.c). */
static const char *const shutdown_policies[] = { "run_timeout", "unwatched", NULL };
static const vmrq_arg args_shutdown[] = {
    ARG_UID(MANDATORY), ARG_ID_DOMAIN, ARG_NAME,
    ARG_TIMEOUT("seconds before a force_shutdown follows"), ARG_MODE,
    { "policy", OPTIONAL, VMRQ_ARG_ENUM, 0, 0, shutdown_policies,
      "the policy that asked for it: run_timeout or unwatched (vmrqd sets it)" },
    ARG_END
};
static const vmrq_arg args_shutdown_start[] = {
    ARG_UID(MANDATORY), ARG_ID_DOMAIN, ARG_NAME,
    ARG_TIMEOUT("seconds before a force_shutdown follows"), ARG_END
};
static const vmrq_arg args_refresh_vms[] = {
    ARG_UID(OPTIONAL),
    { "node", OPTIONAL, VMRQ_ARG_STRING, 1, VMRQ_STRING_MAX, NULL, "only the daemon of this node runs it (default: any)" },
    ARG_END
};
static const vmrq_arg args_cleanup[] = {
    { "older_than", OPTIONAL, VMRQ_ARG_INT, 0, INT32_MAX, NULL,
      "seconds a finished request is kept (default: vmrqd's retention)" },
    ARG_END
};

#define ARG_ID_BASE { "id_base", OPTIONAL, VMRQ_ARG_INT, 1, INT32_MAX, NULL, "id of the base" }
#define ARG_BASE { "base", OPTIONAL, VMRQ_ARG_STRING, 1, VMRQ_STRING_MAX, NULL, "name of the base" }
static const vmrq_arg args_clone[] = {
    ARG_UID(MANDATORY), ARG_ID_BASE, ARG_BASE,
    { "name", OPTIONAL, VMRQ_ARG_STRING, 1, VMRQ_STRING_MAX, NULL, "name of the new desktop (default: BASE-OWNER)" },
    { "id_owner", OPTIONAL, VMRQ_ARG_INT, 1, INT32_MAX, NULL,
      "id of its owner (default: uid; another user: operators only)" },
    { "volatile", OPTIONAL, VMRQ_ARG_BOOL, 0, 0, NULL, "removed, with its disks, as soon as it stops" },
    { "start", OPTIONAL, VMRQ_ARG_BOOL, 0, 0, NULL, "start it once it is made" },
    ARG_END
};
static const vmrq_arg args_provision[] = { ARG_UID(MANDATORY), ARG_ID_BASE, ARG_BASE, ARG_END };
static const vmrq_arg args_manage_pools[] = { ARG_UID(OPTIONAL), ARG_ID_BASE, ARG_BASE, ARG_END };

static const char *const one_domain[] = { "id_domain", "name", NULL };
static const char *const one_base[] = { "id_base", "base", NULL };

#define DOM VMRQ_CMD_DOMAIN
#define NODUP VMRQ_CMD_NODUP
#define RERUN VMRQ_CMD_RERUN
#define IMPORTANT VMRQ_CLASS_IMPORTANT
#define SECONDARY VMRQ_CLASS_SECONDARY
#define LONG VMRQ_CLASS_LONG

/*
 * The catalog. Toggles (start/shutdown, pause/resume, ...) are not NODUP: coalescing
 * "pause, resume, pause" into "pause, resume" would reverse what the user asked for. Idempotent
 * commands are, and so is force_shutdown, so that a second shutdown-with-timeout does not queue a
 * second escalation (the duplicate test ignores `at` and `timeout`).
 *
 * RERUN: running it twice is safe, so a request whose vmrqd died while running it runs again
 * (until vmrqd has died 3 times on it; vmrq_recover() in sql/functions/transitions.sql). Every
 * command here is: each command of the domain state table finds nothing to do in the state it
 * leaves (backend/handlers_domain.c: a start of a running domain does nothing; a reboot, run
 * again, reboots the guest once more, which is what was asked); shutdown_start's start and a
 * shutdown's force_shutdown are follow-ups, enqueued only with the completion, so a run cut
 * short left none behind; the refreshes, the cleanup and the no-op change nothing twice. A
 * command without it (one that charges, or sends mail) is failed when its vmrqd dies running it.
 */
static const vmrq_command catalog[] = {
    /* name            class      flags                args                 needs_one_of  summary */
    { "ping_backend",   IMPORTANT, RERUN,               args_none,           NULL,
      "no-op: proves the backend is alive (health checks, benchmarks)" },
    { "start",          IMPORTANT, DOM | RERUN,         args_domain,         one_domain,
      "start a domain" },
    { "shutdown",       IMPORTANT, DOM | RERUN,         args_shutdown,       one_domain,
      "shut a domain down politely; force it after `timeout` seconds" },
    { "force_shutdown", IMPORTANT, DOM | NODUP | RERUN, args_domain,         one_domain,
      "power a domain off at once" },
    { "reboot",         IMPORTANT, DOM | RERUN,         args_power,          one_domain,
      "reboot a domain politely" },
    { "force_reboot",   IMPORTANT, DOM | RERUN,         args_domain,         one_domain,
      "reset a domain at once" },
    { "pause",          IMPORTANT, DOM | RERUN,         args_domain,         one_domain,
      "suspend a running domain in memory" },
    { "resume",         IMPORTANT, DOM | RERUN,         args_domain,         one_domain,
      "resume a paused domain" },
    { "hibernate",      LONG,      DOM | RERUN,         args_domain,         one_domain,
      "save a domain's memory to disk and stop it (managed save)" },
    { "shutdown_start", IMPORTANT, DOM | RERUN,         args_shutdown_start, one_domain,
      "shut a domain down (forced after `timeout`), then start it" },
    { "refresh_vms",    SECONDARY, NODUP | RERUN,       args_refresh_vms,    NULL,
      "bring the domains table in line with the hypervisor" },
    { "refresh_machine", SECONDARY, DOM | NODUP | RERUN, args_domain,        one_domain,
      "bring one domain's row in line with the hypervisor" },
    { "set_time",       SECONDARY, DOM | NODUP | RERUN, args_domain,         one_domain,
      "set the guest clock from the host (guest agent)" },
    { "ping_agent",     IMPORTANT, DOM | RERUN,         args_domain,         one_domain,
      "ask the guest agent whether it answers (it reports the guest's clock)" },
    { "cleanup",        SECONDARY, NODUP | RERUN,       args_cleanup,        NULL,
      "delete finished requests and domain events older than the retention" },
    /* not RERUN: a copy a dead vmrqd left half made would be taken for the base */
    { "prepare_base",   LONG,      DOM,                 args_domain,         one_domain,
      "make a shut-off desktop a base: its disks copied into read-only base volumes (operators)" },
    { "remove_base",    SECONDARY, DOM | RERUN,         args_domain,         one_domain,
      "make a base an ordinary desktop again, its base volumes deleted (no clones left; operators)" },
    { "clone",          IMPORTANT, RERUN,               args_clone,          one_base,
      "a new desktop from a base, each disk an overlay on the base's volume" },
    { "remove_domain",  SECONDARY, DOM | NODUP | RERUN, args_domain,         one_domain,
      "stop, undefine and delete a desktop and its own disks (owner or operator)" },
    { "provision",      IMPORTANT, RERUN,               args_provision,      one_base,
      "the user's clone of a base, started: made first if she has none, or a free one of its pool" },
    { "manage_pools",   SECONDARY, NODUP | RERUN,       args_manage_pools,   one_base,
      "keep a base's pool: pool_clones clones made, pool_start of the free ones running" },
};

#define CATALOG_SIZE (sizeof(catalog) / sizeof(catalog[0]))

const vmrq_command *
vmrq_command_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < CATALOG_SIZE; i++)
        if (strcmp(catalog[i].name, name) == 0)
            return &catalog[i];
    return NULL;
}

size_t
vmrq_command_count(void)
{
    return CATALOG_SIZE;
}

const vmrq_command *
vmrq_command_at(size_t i)
{
    return i < CATALOG_SIZE ? &catalog[i] : NULL;
}

const vmrq_arg *
vmrq_common_args(void)
{
    return common_args;
}

const vmrq_arg *
vmrq_command_arg(const vmrq_command *cmd, const char *name)
{
    const vmrq_arg *a;

    for (a = cmd->args; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    for (a = common_args; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const char *
vmrq_class_name(vmrq_class cls)
{
    static const char *const names[VMRQ_CLASS_LAST] = { "important", "secondary", "long" };

    return (unsigned)cls < VMRQ_CLASS_LAST ? names[cls] : "?";
}

const char *
vmrq_arg_type_name(vmrq_arg_type type)
{
    static const char *const names[VMRQ_ARG_TYPE_LAST] = { "int", "string", "bool", "enum", "time" };

    return (unsigned)type < VMRQ_ARG_TYPE_LAST ? names[type] : "?";
}
