/*
 * main.c - `vmrq`, the command-line client of the vmrq queue: global options and the table of
 * subcommands. Each subcommand lives in its own file; cli.c holds what they share.
 */
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    { "request", cli_cmd_request, "enqueue a request: vmrq request COMMAND key=value..." },
    { "list", cli_cmd_list, "list requests, newest first" },
    { "show", cli_cmd_show, "show one request" },
    { "wait", cli_cmd_wait, "wait until a request has finished" },
    { "cancel", cli_cmd_cancel, "cancel a request that has not started" },
    { "daemons", cli_cmd_daemons, "the vmrqd serving the queue: node, host, pid, heartbeat, running" },
    { "commands", cli_cmd_commands, "the catalog: commands and their arguments" },
    { "db", cli_cmd_db, "db upgrade | db status | db grant: the schema and its roles" },
    { "display", cli_cmd_display, "how to reach a running desktop: vmrq display NAME [--vv FILE]" },
    { "user", cli_cmd_user, "user add | list | set | remove" },
    { "domain", cli_cmd_domain, "domain add | list | set | set-owner | remove" },
    { "node", cli_cmd_node, "node add | list | disable | enable | remove" },
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: vmrq [-c CONNINFO] SUBCOMMAND [ARGS...]\n"
            "       vmrq -V | --version\n"
            "       vmrq -h | --help\n"
            "\n"
            "The client of the vmrq request queue for virtual machines.\n"
            "\n"
            "Subcommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(out, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out,
            "\n"
            "Database: -c CONNINFO (before or after the subcommand), else $VMRQ_DB, else libpq's\n"
            "PGHOST, PGDATABASE, ... variables. 'vmrq SUBCOMMAND --help' tells more.\n"
            "Exit status: 0 ok; 1 the request failed, was cancelled or a wait timed out, or the\n"
            "database failed; 2 bad usage or invalid input (nothing was changed).\n");
}

int
main(int argc, char **argv)
{
    int i = 1;

    /* display widths of names (tables) are counted in UTF-8, the database's encoding */
    if (!setlocale(LC_CTYPE, "") || strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("vmrq %s\n", vmrq_version());
            return CLI_OK;
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--conninfo") == 0) && i + 1 < argc) {
            cli_conninfo = argv[i + 1];
            i += 2;
            continue;
        }
        if (strncmp(argv[i], "--conninfo=", 11) == 0) {
            cli_conninfo = argv[i] + 11;
            i++;
            continue;
        }
        fprintf(stderr, "vmrq: unknown option '%s' (see 'vmrq --help')\n", argv[i]);
        return CLI_USAGE;
    }
    if (i >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    for (size_t s = 0; s < sizeof(subcommands) / sizeof(subcommands[0]); s++)
        if (strcmp(argv[i], subcommands[s].name) == 0)
            return subcommands[s].run(argc - i, argv + i);
    fprintf(stderr, "vmrq: unknown subcommand '%s' (see 'vmrq --help')\n", argv[i]);
    return CLI_USAGE;
}
