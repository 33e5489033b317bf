/*
 * main.c - vmrqd, the vmrq backend daemon: it executes the requests clients enqueue.
 *
 *   vmrqd [-d] [-n] [-v] [-f FILE]
 *
 * Start-up in a fixed order (as PgBouncer and OpenBSD daemons do): options -> configuration ->
 * self-check of the handler table -> (-n: report and exit) -> daemonize -> pidfile -> signals ->
 * the main loop (daemon.c) until SIGTERM/SIGINT has drained it.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "dispatch.h"
#include "log.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: vmrqd [-d] [-n] [-v] [-f FILE]\n"
            "\n"
            "  -d        stay in the foreground, log to stderr (otherwise: daemon, syslog, pidfile)\n"
            "  -n        check the configuration and the handler table, then exit\n"
            "  -v        log debug messages too\n"
            "  -f FILE   configuration file (default %s; optional when absent)\n"
            "\n"
            "VMRQ_DB, VMRQ_LIBVIRT_URI and VMRQ_NODE override the file's database, libvirt_uri and\n"
            "node. Signals: SIGTERM/SIGINT stop taking requests and let running ones finish (a second\n"
            "one stops at once); SIGHUP reloads the configuration (keeping the old one on error).\n",
            VMRQD_DEFAULT_CONFIG);
}

static void
on_term(int sig)
{
    (void)sig;
    vmrqd_sig_term++;
}

static void
on_hup(int sig)
{
    (void)sig;
    vmrqd_sig_hup = 1;
}

static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term; /* no SA_RESTART: poll() returns EINTR and the loop looks */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* Writes our pid to `path` ("" for none); refuses if another live vmrqd holds it. */
static void
write_pidfile(const char *path)
{
    char buf[32];
    FILE *f;
    long old;

    if (!*path)
        return;
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%ld", &old) == 1 && old > 0 && old != getpid() && kill((pid_t)old, 0) == 0)
            fatalx("%s: vmrqd is already running as pid %ld", path, old);
        fclose(f);
    }
    snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (!(f = fopen(path, "w")) || fputs(buf, f) < 0 || fclose(f) != 0)
        fatal("%s", path);
}

int
main(int argc, char **argv)
{
    struct vmrqd_config cfg;
    const char *path = VMRQD_DEFAULT_CONFIG;
    bool foreground = false, check_only = false, verbose = false, explicit_path = false;
    char err[512];
    int c, status;

    while ((c = getopt(argc, argv, "dnvf:h")) != -1) {
        switch (c) {
        case 'd': foreground = true; break;
        case 'n': check_only = true; break;
        case 'v': verbose = true; break;
        case 'f': path = optarg; explicit_path = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* glibc gives each thread its own malloc arena; a few shared ones keep the resident size of
     * a daemon with many mostly idle workers small. */
    mallopt(M_ARENA_MAX, 2);
    log_init(foreground || check_only, "vmrqd");
    memset(&cfg, 0, sizeof(cfg));
    if (config_load(&cfg, path, explicit_path, err, sizeof(err)) < 0)
        fatalx("configuration: %s", err);
    log_set_level(verbose ? LOG_LEVEL_DEBUG : cfg.log_level);
    if (dispatch_check(err, sizeof(err)) < 0)
        fatalx("handler table: %s", err);
    if (check_only) {
        printf("vmrqd: configuration OK (%s)\n", access(path, R_OK) == 0 ? path : "defaults and environment");
        config_free(&cfg);
        return 0;
    }
    if (!*cfg.database && !getenv("PGHOST") && !getenv("PGDATABASE") && !getenv("PGSERVICE"))
        log_info("no database configured: using libpq's defaults");

    if (!foreground) {
        if (daemon(0, 0) < 0)
            fatal("daemon");
        log_init(false, "vmrqd");
    }
    write_pidfile(cfg.pidfile);
    install_signals();
    {
        char *pidfile = strdup(cfg.pidfile);
        status = vmrqd_run(&cfg, explicit_path || access(path, R_OK) == 0 ? path : NULL, explicit_path,
                           verbose);
        if (pidfile && *pidfile)
            unlink(pidfile);
        free(pidfile);
    }
    return status;
}
