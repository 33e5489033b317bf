/*
 * rss_floor.c - the resident memory any vmrqd must pay before it does anything: a process that
 * opens one libvirt connection and one libpq connection, as vmrqd does first, and nothing
 * else. make bench prints it next to vmrqd's own figure, so that the RSS target can be read
 * against what the libraries alone take.
 *
 *   vmrq-rss-floor LIBVIRT_URI      (the database: $VMRQ_DB, else libpq's PG* variables)
 *
 * Prints "VMRSS_KIB RSSANON_KIB" on stdout; exits 1 (with a message on stderr) if either
 * connection fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <libvirt/libvirt.h>

static long
status_kib(const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kib = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return kib;
}

int
main(int argc, char **argv)
{
    virConnectPtr virt;
    PGconn *pg;
    int ret = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: vmrq-rss-floor LIBVIRT_URI\n");
        return 2;
    }
    if (!(virt = virConnectOpen(argv[1]))) {
        fprintf(stderr, "vmrq-rss-floor: cannot open %s\n", argv[1]);
        return 1;
    }
    pg = PQconnectdb(getenv("VMRQ_DB") ? getenv("VMRQ_DB") : "");
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "vmrq-rss-floor: %s", PQerrorMessage(pg));
        goto cleanup;
    }
    printf("%ld %ld\n", status_kib("VmRSS"), status_kib("RssAnon"));
    ret = 0;

cleanup:
    PQfinish(pg);
    virConnectClose(virt);
    return ret;
}
