/*
 * check_main.c - the test runner: applies the schema to the throwaway database once, then runs
 * every suite. Run through t/with-pg and t/with-libvirtd (make check). Subsets: CK_RUN_SUITE=queue, or tags with
 * CK_INCLUDE_TAGS / CK_EXCLUDE_TAGS ("db", "cli", "daemon"). Under valgrind or gdb: CK_FORK=no.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tutil.h"

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
    if (PQstatus(conn) != CONNECTION_OK || vmrq_db_upgrade(conn) < 0) {
        fprintf(stderr, "check_vmrq: cannot prepare %s: %s%s\n", info, PQerrorMessage(conn),
                vmrq_error_message());
        PQfinish(conn);
        return 2;
    }
    PQfinish(conn);

    sr = srunner_create(catalog_suite());
    srunner_add_suite(sr, validate_suite());
    srunner_add_suite(sr, migrate_suite());
    srunner_add_suite(sr, queue_suite());
    srunner_add_suite(sr, trigger_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, daemon_suite());
    srunner_add_suite(sr, service_suite());
    srunner_add_suite(sr, log_suite());
    srunner_add_suite(sr, domain_suite());
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
