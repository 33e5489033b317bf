/*
 * rss_floor.c - the resident memory any vmrqd must pay before it does anything: a process that
 * opens one libvirt connection and one libpq connection, as vmrqd does first, and nothing
 * else. make bench reads its RSS (/proc/PID/status) and prints it next to vmrqd's own figure,
 * so that the RSS target can be read against what the libraries alone take.
 *
 *   vmrq-rss-floor LIBVIRT_URI      (the database: $VMRQ_DB, else libpq's PG* variables)
 *
 * Prints "ready PID" on stdout once both connections are open, then waits for SIGTERM and
 * closes them. Exits 1 (with a message on stderr) if either connection fails.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libvirt/libvirt.h>

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int
main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_term };
    sigset_t term, old;
    virConnectPtr virt;
    PGconn *pg;
    int ret = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: vmrq-rss-floor LIBVIRT_URI\n");
        return 2;
    }
    /* SIGTERM stays blocked but for sigsuspend(): it cannot slip in before the wait */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    sigaction(SIGTERM, &sa, NULL);
    if (!(virt = virConnectOpen(argv[1]))) {
        fprintf(stderr, "vmrq-rss-floor: cannot open %s\n", argv[1]);
        return 1;
    }
    pg = PQconnectdb(getenv("VMRQ_DB") ? getenv("VMRQ_DB") : "");
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "vmrq-rss-floor: %s", PQerrorMessage(pg));
        goto cleanup;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (!stop)
        sigsuspend(&old);
    ret = 0;

cleanup:
    PQfinish(pg);
    virConnectClose(virt);
    return ret;
}
