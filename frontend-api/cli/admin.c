/*
 * admin.c - `vmrq user`, `vmrq domain` and `vmrq node`: the rows requests refer to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_OPERATOR = 256, OPT_ADMIN, OPT_OWNER, OPT_NODE, OPT_UUID, OPT_TIMEOUT, OPT_URI,
       OPT_DISABLED, OPT_JSON };

/* SQLSTATEs that mean the operator's input was wrong: unique, check, foreign key, bad text. */
static const char *const input_states[] = { "23505", "23514", "23503", "22P02", NULL };

static const struct option user_options[] = {
    { "operator", no_argument, NULL, OPT_OPERATOR },
    { "admin", no_argument, NULL, OPT_ADMIN },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub user_sub = {
    "user",
    "usage: vmrq user add NAME [--operator] [--admin]\n"
    "       vmrq user list [--json]\n"
    "\n"
    "Users own domains; operators and admins may act on every domain.\n"
    "'add' prints the new user's id (the `uid` of requests).\n",
    user_options,
};

static const struct option domain_options[] = {
    { "owner", required_argument, NULL, OPT_OWNER },
    { "node", required_argument, NULL, OPT_NODE },
    { "uuid", required_argument, NULL, OPT_UUID },
    { "shutdown-timeout", required_argument, NULL, OPT_TIMEOUT },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub domain_sub = {
    "domain",
    "usage: vmrq domain add NAME --owner USER [--node NODE] [--uuid UUID]\n"
    "                          [--shutdown-timeout SECONDS]\n"
    "       vmrq domain list [--json]\n"
    "\n"
    "Domains are the virtual machines vmrq acts on; NAME is the hypervisor's name for it.\n"
    "USER and NODE are names or ids. 'add' prints the new domain's id (`id_domain`).\n",
    domain_options,
};

static const struct option node_options[] = {
    { "uri", required_argument, NULL, OPT_URI },
    { "disabled", no_argument, NULL, OPT_DISABLED },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static const struct cli_sub node_sub = {
    "node",
    "usage: vmrq node add NAME --uri URI [--disabled]\n"
    "       vmrq node list [--json]\n"
    "\n"
    "Nodes are hypervisor hosts (URI as libvirt takes it, e.g. qemu:///system or\n"
    "qemu+ssh://host/system); each is served by the vmrqd whose `node` setting names it.\n",
    node_options,
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

/* The verb (add, list) and the NAME for add; a usage error otherwise. */
static int
verb(const struct cli_sub *sub, int argc, char **argv, const char **name)
{
    if (optind >= argc || (strcmp(argv[optind], "add") != 0 && strcmp(argv[optind], "list") != 0))
        return cli_usage(sub, "expected 'add' or 'list'");
    if (strcmp(argv[optind], "add") == 0 && optind + 2 != argc)
        return cli_usage(sub, "expected 'add NAME'");
    if (strcmp(argv[optind], "list") == 0 && optind + 1 != argc)
        return cli_usage(sub, "unexpected argument '%s'", argv[optind + 1]);
    *name = strcmp(argv[optind], "add") == 0 ? argv[optind + 1] : NULL;
    return CLI_OK;
}

int
cli_cmd_user(int argc, char **argv)
{
    const char *params[3] = { NULL, "false", "false" };
    bool json = false;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &user_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_OPERATOR: params[1] = "true"; break;
        case OPT_ADMIN: params[2] = "true"; break;
        case OPT_JSON: json = true; break;
        }
    }
    if ((code = verb(&user_sub, argc, argv, &params[0])) != CLI_OK)
        return code;
    if (!params[0])
        return run(&user_sub, "SELECT id, name, is_operator, is_admin, created_at FROM users ORDER BY id",
                   0, NULL, json);
    return run(&user_sub,
               "INSERT INTO users (name, is_operator, is_admin) VALUES ($1, $2, $3) RETURNING id",
               3, params, false);
}

/* Looks up the id of the `table` row named (or numbered) `key`; NULL after printing why. */
static char *
lookup_id(PGconn *conn, const char *sql, const char *what, const char *key, int *code)
{
    const char *params[1] = { key };
    PGresult *res = cli_query(conn, &domain_sub, sql, 1, params, NULL, code);
    char *id = NULL;

    if (res && PQntuples(res) == 0) {
        fprintf(stderr, "vmrq: domain add: no %s '%s'\n", what, key);
        *code = CLI_USAGE;
    } else if (res) {
        id = strdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return id;
}

/* params: name, owner, node (or NULL), uuid (or NULL), shutdown timeout (or NULL). */
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
    if (!(owner = lookup_id(conn, "SELECT id FROM users WHERE name = $1 OR id::text = $1", "user",
                            params[1], &code)))
        goto cleanup;
    if (params[2] && !(node = lookup_id(conn, "SELECT id FROM nodes WHERE name = $1 OR id::text = $1",
                                        "node", params[2], &code)))
        goto cleanup;
    row[0] = params[0];
    row[1] = owner;
    row[2] = node;
    row[3] = params[3];
    row[4] = params[4];
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

int
cli_cmd_domain(int argc, char **argv)
{
    const char *params[5] = { NULL, NULL, NULL, NULL, NULL };
    long long timeout;
    bool json = false;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &domain_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_OWNER: params[1] = optarg; break;
        case OPT_NODE: params[2] = optarg; break;
        case OPT_UUID: params[3] = optarg; break;
        case OPT_TIMEOUT:
            if (!cli_parse_long(optarg, 0, INT32_MAX, &timeout))
                return cli_usage(&domain_sub, "--shutdown-timeout must be a number of seconds, not '%s'",
                                 optarg);
            params[4] = optarg;
            break;
        case OPT_JSON: json = true; break;
        }
    }
    if ((code = verb(&domain_sub, argc, argv, &params[0])) != CLI_OK)
        return code;
    if (!params[0])
        return run(&domain_sub,
                   "SELECT d.id, d.name, d.status, u.name AS owner, n.name AS node, d.uuid,"
                   "       d.shutdown_timeout, d.date_changed"
                   "  FROM domains d LEFT JOIN users u ON u.id = d.id_owner"
                   "       LEFT JOIN nodes n ON n.id = d.id_node ORDER BY d.id",
                   0, NULL, json);
    if (!params[1])
        return cli_usage(&domain_sub, "add needs --owner USER");
    return domain_add(params);
}

int
cli_cmd_node(int argc, char **argv)
{
    const char *params[3] = { NULL, NULL, "true" };
    bool json = false;
    int c, code;

    optind = 0;
    while ((c = cli_getopt(argc, argv, &node_sub)) != -1) {
        switch (c) {
        case 'h': return CLI_OK;
        case '?': return CLI_USAGE;
        case OPT_URI: params[1] = optarg; break;
        case OPT_DISABLED: params[2] = "false"; break;
        case OPT_JSON: json = true; break;
        }
    }
    if ((code = verb(&node_sub, argc, argv, &params[0])) != CLI_OK)
        return code;
    if (!params[0])
        return run(&node_sub, "SELECT id, name, uri, enabled FROM nodes ORDER BY id", 0, NULL, json);
    if (!params[1])
        return cli_usage(&node_sub, "add needs --uri URI");
    return run(&node_sub, "INSERT INTO nodes (name, uri, enabled) VALUES ($1, $2, $3) RETURNING id",
               3, params, false);
}
