/*
 * check_main.c - the test runner: applies the schema to the throwaway database once, then runs
 * every suite. Run through t/with-pg and t/with-libvirtd (make check). Subsets: CK_RUN_SUITE=queue, or tags with
 * CK_INCLUDE_TAGS / CK_EXCLUDE_TAGS ("db", "cli", "daemon"). Under valgrind or gdb: CK_FORK=no.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tutil.h"

/* A login role in each of vmrq's roles, and the conninfo of each in $VMRQ_PORTAL_DB,
 * $VMRQ_OPERATOR_DB, $VMRQ_DAEMON_DB: the vmrqd the suites start runs as vmrq_daemon only, the
 * CLI as vmrq_operator (tutil.c), and the privileges suite tries each. */
static int
login_roles(PGconn *conn, const char *info)
{
    static const char *const kinds[] = { "portal", "operator", "daemon" };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char login[32], role[32], var[32], value[1024];
        const char *params[2] = { login, role };
        PGresult *res;
        bool ok;

        snprintf(login, sizeof(login), "vmrq_t_%s", kinds[i]);
        snprintf(role, sizeof(role), "vmrq_%s", kinds[i]);
        res = PQexecParams(conn,
                           "SELECT format('CREATE ROLE %I LOGIN', $1::text), format('GRANT %I TO %I', $2::text, $1::text),"
                           "       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
                           2, NULL, params, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        if (ok && PQgetvalue(res, 0, 2)[0] == 't') {
            PGresult *c = PQexec(conn, PQgetvalue(res, 0, 0));
            ok = PQresultStatus(c) == PGRES_COMMAND_OK;
            PQclear(c);
        }
        if (ok) {
            PGresult *g = PQexec(conn, PQgetvalue(res, 0, 1));
            ok = PQresultStatus(g) == PGRES_COMMAND_OK;
            PQclear(g);
        }
        PQclear(res);
        if (!ok)
            return -1;
        snprintf(var, sizeof(var), "VMRQ_%s_DB", kinds[i]);
        for (char *p = var; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        snprintf(value, sizeof(value), "%s user=%s", info, login);
        setenv(var, value, 1);
    }
    return 0;
}

int
main(void)
{
    const char *info = getenv("VMRQ_DB");
    SRunner *sr;
    PGconn *conn;
    int failed;

    if (!info) {
        fprintf(stderr, "check_vmrq: VMRQ_DB is not set; run the tests with 'make check'\n");
        return 2;
    }
    conn = PQconnectdb(info);
    if (PQstatus(conn) != CONNECTION_OK || vmrq_db_upgrade(conn) < 0 || login_roles(conn, info) < 0) {
        fprintf(stderr, "check_vmrq: cannot prepare %s: %s%s\n", info, PQerrorMessage(conn),
                vmrq_error_message());
        PQfinish(conn);
        return 2;
    }
    PQfinish(conn);

    sr = srunner_create(catalog_suite());
    srunner_add_suite(sr, validate_suite());
    srunner_add_suite(sr, migrate_suite());
    srunner_add_suite(sr, privileges_suite());
    srunner_add_suite(sr, queue_suite());
    srunner_add_suite(sr, trigger_suite());
    srunner_add_suite(sr, differential_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, daemon_suite());
    srunner_add_suite(sr, service_suite());
    srunner_add_suite(sr, log_suite());
    srunner_add_suite(sr, domain_suite());
    srunner_add_suite(sr, bases_suite());
    srunner_add_suite(sr, display_suite());
    srunner_add_suite(sr, fleet_suite());
    srunner_add_suite(sr, chaos_suite());
    srunner_add_suite(sr, failover_suite());
    srunner_add_suite(sr, guest_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* The real-guest tier never passes silently: no tier, no pass without saying so. */
    if (getenv("VMRQ_GUEST_SKIP"))
        printf("guest: SKIPPED: %s\n", getenv("VMRQ_GUEST_SKIP"));
    else if (!getenv("VMRQ_GUEST_URI"))
        printf("guest: SKIPPED: not run under t/with-libvirtd\n");
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
