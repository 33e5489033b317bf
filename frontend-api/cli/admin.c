/*
 * admin.c - `vmrq user`, `vmrq domain`, `vmrq node` (the rows requests refer to: add, list,
 * remove, and a domain's owner, a node's maintenance) and `vmrq daemons` (who serves the queue).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

enum { OPT_OPERATOR = 256, OPT_ADMIN, OPT_OWNER, OPT_OWNER_ID, OPT_NODE, OPT_UUID, OPT_TIMEOUT, OPT_URI,
       OPT_DISABLED, OPT_JSON, OPT_FORCE, OPT_ALL, OPT_CONFLICTS };

/* SQLSTATEs that mean the operator's input was wrong: unique, check, foreign key, bad text. */
static const char *const input_states[] = { "23505", "23514", "23503", "22P02", NULL };

/* The statuses of a request that has not finished. */
#define PENDING "('requested', 'waiting', 'working')"

static const struct option user_options[] = {
    { "operator", no_argument, NULL, OPT_OPERATOR },
    { "admin", no_argument, NULL, OPT_ADMIN },
    { "force", no_argument, NULL, OPT_FORCE },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub user_sub = {
    "user",
    "usage: vmrq user add NAME [--operator] [--admin]\n"
    "       vmrq user list [--json]\n"
    "       vmrq user set NAME start_limit=N|none\n"
    "       vmrq user remove NAME [--force]\n"
    "\n"
    "Users own domains; operators and admins may act on every domain.\n"
    "'add' prints the new user's id (the `uid` of requests). 'remove' refuses a user who owns\n"
    "domains, or has requests pending (--force cancels those that have not started).\n"
    "'set' sets start_limit: how many desktops the user may run at once (operators and admins\n"
    "are exempt; none: no limit).\n"
    "A name: 1 to 100 characters, no control characters, no space at either end.\n",
    user_options,
};

static const struct option domain_options[] = {
    { "owner", required_argument, NULL, OPT_OWNER },
    { "owner-id", required_argument, NULL, OPT_OWNER_ID },
    { "node", required_argument, NULL, OPT_NODE },
    { "uuid", required_argument, NULL, OPT_UUID },
    { "shutdown-timeout", required_argument, NULL, OPT_TIMEOUT },
    { "conflicts", no_argument, NULL, OPT_CONFLICTS },
    { "force", no_argument, NULL, OPT_FORCE },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub domain_sub = {
    "domain",
    "usage: vmrq domain add NAME --owner USER|--owner-id UID [--node NODE] [--uuid UUID]\n"
    "                          [--shutdown-timeout SECONDS]\n"
    "       vmrq domain list [--conflicts] [--json]\n"
    "       vmrq domain set NAME key=value...\n"
    "       vmrq domain set-owner NAME --owner USER|--owner-id UID\n"
    "       vmrq domain remove NAME [--force]\n"
    "\n"
    "Domains are the virtual machines vmrq acts on; NAME is the hypervisor's name for it.\n"
    "--owner takes a user's name, --owner-id its id; NODE is a node's name or id. 'add' prints\n"
    "the new domain's id (`id_domain`). 'remove' refuses a domain with requests pending\n"
    "(--force cancels those that have not started); its hypervisor's machine is not touched.\n"
    "'set' keys (seconds, or none): shutdown_disconnected (a shutdown follows that long after\n"
    "the viewer leaves, or after a start nobody connects to), run_timeout (a shutdown follows\n"
    "that long after a start), shutdown_timeout.\n"
    "'list --conflicts': the hypervisors' domains no vmrqd adopted (found by refresh_vms), their\n"
    "name being another node's domain's or one vmrq cannot hold: node, name, uuid, the node that\n"
    "holds the name, why.\n",
    domain_options,
};

static const struct option node_options[] = {
    { "uri", required_argument, NULL, OPT_URI },
    { "disabled", no_argument, NULL, OPT_DISABLED },
    { "force", no_argument, NULL, OPT_FORCE },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub node_sub = {
    "node",
    "usage: vmrq node add NAME --uri URI [--disabled]\n"
    "       vmrq node list [--json]\n"
    "       vmrq node disable NAME | vmrq node enable NAME\n"
    "       vmrq node remove NAME [--force]\n"
    "\n"
    "Nodes are hypervisor hosts (URI as libvirt takes it, DRIVER[+TRANSPORT]://[HOST]/PATH:\n"
    "qemu:///system, qemu+ssh://host/system); each is served by the vmrqd whose `node` setting\n"
    "names it, which opens URI unless its libvirt_uri says otherwise.\n"
    "A disabled node (maintenance) refuses domain requests. 'remove' refuses a node that still\n"
    "has domains, or requests pending (--force cancels those that have not started).\n",
    node_options,
};

static const struct option daemons_options[] = {
    { "all", no_argument, NULL, OPT_ALL },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub daemons_sub = {
    "daemons",
    "usage: vmrq daemons [--all] [--json]\n"
    "\n"
    "The vmrqd that serve the queue: node, host, pid, version, seconds since the last\n"
    "heartbeat (a live one beats every third of its lease), requests running. --all also\n"
    "lists those that stopped.\n",
    daemons_options,
};

/* Runs `sql`; for an INSERT ... RETURNING id prints the id, else prints the rows. */
static int
run(const struct cli_sub *sub, const char *sql, int n, const char *const *params, bool json)
{
    PGconn *conn = cli_connect();
    PGresult *res;
    int code = CLI_OK;

    if (!conn)
        return CLI_FAIL;
    res = cli_query(conn, sub, sql, n, params, input_states, &code);
    if (res && strncmp(sql, "INSERT", 6) == 0)
        printf("%s\n", PQgetvalue(res, 0, 0));
    else if (res && json)
        cli_print_json(res, false);
    else if (res)
        cli_print_table(res, NULL);
    PQclear(res);
    PQfinish(conn);
    return code;
}

/* The verb at argv[optind], one of `verbs` (NULL-terminated); *name is the NAME after it, which
 * every verb but "list" takes. A usage error otherwise. */
static int
verb(const struct cli_sub *sub, int argc, char **argv, const char *const *verbs, const char **which,
     const char **name)
{
    const char *const *v = verbs;

    for (; optind < argc && *v && strcmp(argv[optind], *v) != 0; v++)
        ;
    if (optind >= argc || !*v)
        return cli_usage(sub, "expected %s", sub == &node_sub ? "'add', 'list', 'disable', 'enable' or 'remove'"
                                             : sub == &domain_sub ? "'add', 'list', 'set', 'set-owner' or 'remove'"
                                                                  : "'add', 'list', 'set' or 'remove'");
    *which = *v;
    if (strcmp(*v, "list") == 0) {
        if (optind + 1 != argc)
            return cli_usage(sub, "unexpected argument '%s'", argv[optind + 1]);
        *name = NULL;
        return CLI_OK;
    }
    if (optind + 2 != argc)
        return cli_usage(sub, "expected '%s NAME'", *v);
    *name = argv[optind + 1];
    return CLI_OK;
}

/* The id (a new string, the caller frees it) of the row `sql` finds for `key`; NULL after
 * printing "no WHAT 'KEY'" (*code CLI_USAGE) or a database error. */
static char *
lookup_id(PGconn *conn, const struct cli_sub *sub, const char *verb_name, const char *sql, const char *what,
          const char *key, int *code)
{
    const char *params[1] = { key };
    PGresult *res = cli_query(conn, sub, sql, 1, params, input_states, code);
    char *id = NULL;

    if (res && PQntuples(res) == 0) {
        fprintf(stderr, "vmrq %s %s: no %s '%s'\n", sub->name, verb_name, what, key);
        *code = CLI_USAGE;
    } else if (res) {
        id = strdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return id;
}

/* The owner's id from --owner NAME or --owner-id UID (exactly one); NULL after printing why. */
static char *
owner_id(PGconn *conn, const char *verb_name, const char *name, const char *id, int *code)
{
    if (name)
        return lookup_id(conn, &domain_sub, verb_name, "SELECT id FROM users WHERE name = $1", "user", name, code);
    return lookup_id(conn, &domain_sub, verb_name, "SELECT id FROM users WHERE id = $1::int", "user with id", id,
                     code);
}

/* One statement of a removal's transaction; false (printed, *code set) on error. */
static bool
step(PGconn *conn, const struct cli_sub *sub, const char *sql, int n, const char *const *params, int *code,
     PGresult **out)
{
    PGresult *res = cli_query(conn, sub, sql, n, params, input_states, code);

    if (!res)
        return false;
    if (out)
        *out = res;
    else
        PQclear(res);
    return true;
}

/* What a removal must check and do, per table. */
struct removal {
    const struct cli_sub *sub;
    const char *what;       /* "user" */
    const char *find;       /* $1 name -> id, locking the row */
    const char *blockers;   /* $1 id -> a count of rows that forbid the removal, or NULL */
    const char *blocked;    /* how to say them: "owns" (N domains), and what to do: "give ..." */
    const char *unblock;
    const char *pending;    /* $1 id, $2 name -> count of working, count of not started */
    const char *cancel;     /* $1 id, $2 name, $3 reason -> cancels those not started */
    const char *remove;     /* $1 id */
};

static const struct removal user_removal = {
    &user_sub, "user", "SELECT id FROM users WHERE name = $1 FOR UPDATE",
    "SELECT count(*) FROM domains WHERE id_owner = $1::int",
    "owns", "give them another owner first ('vmrq domain set-owner')",
    "SELECT count(*) FILTER (WHERE status = 'working'), count(*) FILTER (WHERE status <> 'working')"
    "  FROM requests WHERE uid = $1::int AND status IN " PENDING " AND $2::text IS NOT NULL",
    "SELECT count(vmrq_cancel(id, $3)) FROM requests"
    " WHERE uid = $1::int AND status IN ('requested', 'waiting') AND $2::text IS NOT NULL",
    "DELETE FROM users WHERE id = $1::int",
};

static const struct removal domain_removal = {
    &domain_sub, "domain", "SELECT id FROM domains WHERE name = $1 FOR UPDATE", NULL, NULL, NULL,
    "SELECT count(*) FILTER (WHERE status = 'working'), count(*) FILTER (WHERE status <> 'working')"
    "  FROM requests WHERE id_domain = $1::int AND status IN " PENDING " AND $2::text IS NOT NULL",
    "SELECT count(vmrq_cancel(id, $3)) FROM requests"
    " WHERE id_domain = $1::int AND status IN ('requested', 'waiting') AND $2::text IS NOT NULL",
    "DELETE FROM domains WHERE id = $1::int",
};

static const struct removal node_removal = {
    &node_sub, "node", "SELECT id FROM nodes WHERE name = $1 FOR UPDATE",
    "SELECT count(*) FROM domains WHERE id_node = $1::int",
    "still has", "remove them first ('vmrq domain remove')",
    "SELECT count(*) FILTER (WHERE status = 'working'), count(*) FILTER (WHERE status <> 'working')"
    "  FROM requests WHERE args->>'node' = $2 AND status IN " PENDING " AND $1::int IS NOT NULL",
    "SELECT count(vmrq_cancel(id, $3)) FROM requests"
    " WHERE args->>'node' = $2 AND status IN ('requested', 'waiting') AND $1::int IS NOT NULL",
    "DELETE FROM nodes WHERE id = $1::int",
};

/* Removes the row `name` in one transaction: refused (nothing changed) if something depends on
 * it, or requests of it are pending; with `force` those not started are cancelled first (a
 * running one still refuses: it would finish on a row that is gone). */
static int
remove_row(const struct removal *r, const char *name, bool force)
{
    PGconn *conn = cli_connect();
    PGresult *res = NULL;
    char *id = NULL, reason[200];
    const char *params[3] = { NULL, name, reason };
    long long working, waiting, n;
    int code = CLI_OK;

    if (!conn)
        return CLI_FAIL;
    snprintf(reason, sizeof(reason), "%s '%s' removed", r->what, name);
    if (!step(conn, r->sub, "BEGIN", 0, NULL, &code, NULL) ||
        !(id = lookup_id(conn, r->sub, "remove", r->find, r->what, name, &code)))
        goto cleanup;
    params[0] = id;
    if (r->blockers) {
        if (!step(conn, r->sub, r->blockers, 1, params, &code, &res))
            goto cleanup;
        if ((n = strtoll(PQgetvalue(res, 0, 0), NULL, 10)) > 0) {
            fprintf(stderr, "vmrq %s remove: %s '%s' %s %lld domain%s: %s\n", r->sub->name, r->what, name,
                    r->blocked, n, n == 1 ? "" : "s", r->unblock);
            code = CLI_FAIL;
            goto cleanup;
        }
        PQclear(res);
        res = NULL;
    }
    if (!step(conn, r->sub, r->pending, 2, params, &code, &res))
        goto cleanup;
    working = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    waiting = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    res = NULL;
    if (working > 0 || (waiting > 0 && !force)) {
        fprintf(stderr, "vmrq %s remove: %s '%s' has %lld request%s %s: %s\n", r->sub->name, r->what, name,
                working ? working : waiting, (working ? working : waiting) == 1 ? "" : "s",
                working ? "running" : "pending", working ? "try again once they have finished"
                                                         : "cancel them, or --force to cancel them and remove it");
        code = CLI_FAIL;
        goto cleanup;
    }
    if (waiting > 0 && !step(conn, r->sub, r->cancel, 3, params, &code, NULL))
        goto cleanup;
    if (!step(conn, r->sub, r->remove, 1, params, &code, NULL) || !step(conn, r->sub, "COMMIT", 0, NULL, &code, NULL))
        goto cleanup;
    if (waiting > 0)
        printf("cancelled %lld pending request%s\n", waiting, waiting == 1 ? "" : "s");

cleanup:
    PQclear(res);
    free(id);
    PQfinish(conn); /* an open transaction ends with the connection: nothing changed */
    return code;
}

int
cli_cmd_user(int argc, char **argv)
{
    static const char *const verbs[] = { "add", "list", "remove", NULL };
    const char *params[3] = { NULL, "false", "false" }, *which;
    bool json = false, force = false;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &user_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_OPERATOR: params[1] = "true"; break;
        case OPT_ADMIN: params[2] = "true"; break;
        case OPT_FORCE: force = true; break;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind + 1 < argc && strcmp(argv[optind], "set") == 0)
        return cli_set(&user_sub, "users", argv[optind + 1], argc - optind - 2, argv + optind + 2);
    if ((code = verb(&user_sub, argc, argv, verbs, &which, &params[0])) != CLI_OK)
        return code;
    if (strcmp(which, "list") == 0)
        return run(&user_sub, "SELECT id, name, is_operator, is_admin, created_at FROM users ORDER BY id",
                   0, NULL, json);
    if (strcmp(which, "remove") == 0)
        return remove_row(&user_removal, params[0], force);
    if ((code = cli_check_name(&user_sub, "user", params[0])) != CLI_OK)
        return code;
    return run(&user_sub,
               "INSERT INTO users (name, is_operator, is_admin) VALUES ($1, $2, $3) RETURNING id",
               3, params, false);
}

/* params: name, owner name, owner id, node (or NULL), uuid (or NULL), shutdown timeout (or
 * NULL). */
static int
domain_add(const char **params)
{
    PGconn *conn = cli_connect();
    char *owner = NULL, *node = NULL;
    const char *row[5];
    PGresult *res = NULL;
    int code = CLI_OK;

    if (!conn)
        return CLI_FAIL;
    if (!(owner = owner_id(conn, "add", params[1], params[2], &code)))
        goto cleanup;
    if (params[3] && !(node = lookup_id(conn, &domain_sub, "add", "SELECT id FROM nodes WHERE name = $1 OR id::text = $1",
                                        "node", params[3], &code)))
        goto cleanup;
    row[0] = params[0];
    row[1] = owner;
    row[2] = node;
    row[3] = params[4];
    row[4] = params[5];
    res = cli_query(conn, &domain_sub,
                    "INSERT INTO domains (name, id_owner, id_node, uuid, shutdown_timeout)"
                    " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    5, row, input_states, &code);
    if (res)
        printf("%s\n", PQgetvalue(res, 0, 0));

cleanup:
    PQclear(res);
    free(owner);
    free(node);
    PQfinish(conn);
    return code;
}

/* vmrq domain set-owner NAME: params as domain_add's. */
static int
domain_set_owner(const char **params)
{
    PGconn *conn = cli_connect();
    const char *row[2] = { params[0], NULL };
    char *owner = NULL;
    PGresult *res = NULL;
    int code = CLI_OK;

    if (!conn)
        return CLI_FAIL;
    if (!(owner = owner_id(conn, "set-owner", params[1], params[2], &code)))
        goto cleanup;
    row[1] = owner;
    res = cli_query(conn, &domain_sub, "UPDATE domains SET id_owner = $2, date_changed = now() WHERE name = $1",
                    2, row, input_states, &code);
    if (res && strcmp(PQcmdTuples(res), "1") != 0) {
        fprintf(stderr, "vmrq domain set-owner: no domain '%s'\n", params[0]);
        code = CLI_USAGE;
    }

cleanup:
    PQclear(res);
    free(owner);
    PQfinish(conn);
    return code;
}

int
cli_cmd_domain(int argc, char **argv)
{
    static const char *const verbs[] = { "add", "list", "set-owner", "remove", NULL };
    const char *params[6] = { NULL, NULL, NULL, NULL, NULL, NULL }, *which;
    long long number;
    bool json = false, force = false, conflicts = false;
    uuid_t uu;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &domain_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_OWNER: params[1] = optarg; break;
        case OPT_OWNER_ID:
            if (!cli_parse_long(optarg, 1, INT32_MAX, &number))
                return cli_usage(&domain_sub, "--owner-id takes a user's id, not '%s' (a name: --owner)", optarg);
            params[2] = optarg;
            break;
        case OPT_NODE: params[3] = optarg; break;
        case OPT_UUID:
            if (uuid_parse(optarg, uu) < 0)
                return cli_usage(&domain_sub, "--uuid: '%s' is not a uuid", optarg);
            params[4] = optarg;
            break;
        case OPT_TIMEOUT:
            if (!cli_parse_long(optarg, 0, INT32_MAX, &number))
                return cli_usage(&domain_sub, "--shutdown-timeout must be a number of seconds, not '%s'",
                                 optarg);
            params[5] = optarg;
            break;
        case OPT_CONFLICTS: conflicts = true; break;
        case OPT_FORCE: force = true; break;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind + 1 < argc && strcmp(argv[optind], "set") == 0)
        return cli_set(&domain_sub, "domains", argv[optind + 1], argc - optind - 2, argv + optind + 2);
    if ((code = verb(&domain_sub, argc, argv, verbs, &which, &params[0])) != CLI_OK)
        return code;
    if (conflicts && strcmp(which, "list") != 0)
        return cli_usage(&domain_sub, "--conflicts goes with 'list', not '%s'", which);
    if (conflicts)
        return run(&domain_sub,
                   "SELECT n.name AS node, c.name, c.uuid, o.name AS held_by,"
                   "       CASE WHEN vmrq_name_ok(c.name) THEN 'name taken' ELSE 'name vmrq cannot hold' END AS why,"
                   "       c.first_seen, c.last_seen"
                   "  FROM domain_conflicts c JOIN nodes n ON n.id = c.id_node"
                   "       LEFT JOIN domains d ON d.name = c.name LEFT JOIN nodes o ON o.id = d.id_node"
                   " ORDER BY n.name, c.name",
                   0, NULL, json);
    if (strcmp(which, "list") == 0)
        return run(&domain_sub,
                   "SELECT d.id, d.name, d.status, u.name AS owner, n.name AS node, d.uuid,"
                   "       d.shutdown_timeout, d.date_changed"
                   "  FROM domains d LEFT JOIN users u ON u.id = d.id_owner"
                   "       LEFT JOIN nodes n ON n.id = d.id_node ORDER BY d.id",
                   0, NULL, json);
    if (strcmp(which, "remove") == 0)
        return remove_row(&domain_removal, params[0], force);
    if (params[1] && params[2])
        return cli_usage(&domain_sub, "--owner and --owner-id name the same thing: give one");
    if (!params[1] && !params[2])
        return cli_usage(&domain_sub, "%s needs --owner USER or --owner-id UID", which);
    if (strcmp(which, "set-owner") == 0)
        return domain_set_owner(params);
    if ((code = cli_check_name(&domain_sub, "domain", params[0])) != CLI_OK)
        return code;
    return domain_add(params);
}

/* What is wrong with uri as a libvirt connection URI, or NULL: DRIVER[+TRANSPORT]://, an
 * optional [USER@]HOST[:PORT], then a PATH that begins with '/' (qemu:///system,
 * qemu+ssh://root@kvm2:22/system?keyfile=..., test:///default), no space or control character.
 * The syntax only: whether the driver exists is for vmrqd -n to find out. */
static const char *
uri_problem(const char *uri)
{
    static const char *const transports[] = { "tls", "tcp", "unix", "ssh", "libssh", "libssh2", "ext", NULL };
    const char *p = uri, *t, *host, *path;
    size_t len;
    bool known = false;

    for (const char *q = uri; *q; q++)
        if (iscntrl((unsigned char)*q) || *q == ' ')
            return "it holds a space or a control character";
    if (!isalpha((unsigned char)*p))
        return "it must begin with the driver's name";
    while (isalnum((unsigned char)*p))
        p++;
    if (*p == '+') {
        t = ++p;
        while (isalnum((unsigned char)*p))
            p++;
        len = (size_t)(p - t);
        for (int i = 0; transports[i]; i++)
            known = known || (strlen(transports[i]) == len && strncmp(transports[i], t, len) == 0);
        if (!known)
            return "the transport after '+' is none of tls, tcp, unix, ssh, libssh, libssh2, ext";
    }
    if (strncmp(p, "://", 3) != 0)
        return "the driver must be followed by '://'";
    host = p + 3;
    if (!(path = strchr(host, '/')))
        return "it has no path (qemu:///system: the path is /system)";
    for (const char *q = host; q < path; q++) {
        if (*q == ':') {
            if (q + 1 == path)
                return "the port after ':' is empty";
            for (const char *r = q + 1; r < path; r++)
                if (!isdigit((unsigned char)*r))
                    return "the port after ':' must be a number";
            break;
        }
        if (!isalnum((unsigned char)*q) && !strchr("-._@[]%~", *q))
            return "the host holds a character a host name cannot";
    }
    return NULL;
}

int
cli_cmd_node(int argc, char **argv)
{
    static const char *const verbs[] = { "add", "list", "disable", "enable", "remove", NULL };
    const char *params[3] = { NULL, NULL, "true" }, *which, *why;
    bool json = false, force = false;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &node_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_URI: params[1] = optarg; break;
        case OPT_DISABLED: params[2] = "false"; break;
        case OPT_FORCE: force = true; break;
        case OPT_JSON: json = true; break;
        }
    }
    if ((code = verb(&node_sub, argc, argv, verbs, &which, &params[0])) != CLI_OK)
        return code;
    if (strcmp(which, "list") == 0)
        return run(&node_sub, "SELECT id, name, uri, enabled FROM nodes ORDER BY id", 0, NULL, json);
    if (strcmp(which, "remove") == 0)
        return remove_row(&node_removal, params[0], force);
    if (strcmp(which, "disable") == 0 || strcmp(which, "enable") == 0) {
        const char *row[2] = { params[0], strcmp(which, "enable") == 0 ? "true" : "false" };
        PGconn *conn = cli_connect();
        PGresult *res;

        if (!conn)
            return CLI_FAIL;
        code = CLI_OK;
        res = cli_query(conn, &node_sub, "UPDATE nodes SET enabled = $2 WHERE name = $1", 2, row, input_states,
                        &code);
        if (res && strcmp(PQcmdTuples(res), "1") != 0) {
            fprintf(stderr, "vmrq node %s: no node '%s'\n", which, params[0]);
            code = CLI_USAGE;
        }
        PQclear(res);
        PQfinish(conn);
        return code;
    }
    if ((code = cli_check_name(&node_sub, "node", params[0])) != CLI_OK)
        return code;
    if (!params[1] || !*params[1])
        return cli_usage(&node_sub, "add needs --uri URI");
    if ((why = uri_problem(params[1])))
        return cli_usage(&node_sub, "--uri '%s' is not a libvirt URI (DRIVER[+TRANSPORT]://[HOST]/PATH,"
                         " e.g. qemu:///system): %s", params[1], why);
    return run(&node_sub, "INSERT INTO nodes (name, uri, enabled) VALUES ($1, $2, $3) RETURNING id",
               3, params, false);
}

int
cli_cmd_daemons(int argc, char **argv)
{
    const char *params[1] = { "false" };
    bool json = false;
    int c;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &daemons_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_ALL: params[0] = "true"; break;
        case OPT_JSON: json = true; break;
        }
    }
    if (optind != argc)
        return cli_usage(&daemons_sub, "unexpected argument '%s'", argv[optind]);
    return run(&daemons_sub,
               "SELECT d.id, d.node, d.hostname AS host, d.pid, d.version,"
               "       extract(epoch FROM now() - d.heartbeat_at)::bigint AS heartbeat_age_s,"
               "       (SELECT count(*) FROM requests r WHERE r.id_daemon = d.id AND r.status = 'working')"
               "         AS running,"
               "       d.started_at, d.stopped_at"
               "  FROM daemons d WHERE $1::boolean OR d.stopped_at IS NULL ORDER BY d.id",
               1, params, json);
}
