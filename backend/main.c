/*
 * main.c - vmrqd, the vmrq backend daemon: it executes the requests clients enqueue.
 *
 *   vmrqd [-dnv] [-f FILE]    vmrqd -V | --version    vmrqd -h | --help
 *
 * Start-up in a fixed order (as PgBouncer and OpenBSD daemons do): options -> configuration ->
 * self-check of the handler table -> (-n: the checks of preflight.c, report and exit) -> pidfile
 * opened and locked -> daemonize -> pid written -> signals -> the main loop (daemon.c) until
 * SIGTERM/SIGINT has drained it.
 */
#include <bsd/libutil.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "dispatch.h"
#include "log.h"
#include "preflight.h"

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: vmrqd [-dnv] [-f FILE]\n"
            "       vmrqd -V | --version\n"
            "       vmrqd -h | --help\n"
            "\n"
            "  -d        stay in the foreground and log to stderr (otherwise: daemon, syslog)\n"
            "  -n        check what a start needs (the file, the pidfile, the database, its schema,\n"
            "            the node, the hypervisor), then exit: 0 if all is well, 1 and one line\n"
            "  -v        log debug messages too\n"
            "  -f FILE   configuration file (default %s; optional when absent)\n"
            "  -V        print the version and exit\n"
            "\n"
            "The pid is written to `pidfile` when set, else to %s when vmrqd\n"
            "daemonizes; under -d, by default, nowhere. VMRQ_DB, VMRQ_LIBVIRT_URI and VMRQ_NODE\n"
            "override the file's database, libvirt_uri and node. Signals: SIGTERM/SIGINT stop\n"
            "taking requests and let running ones finish (a second one stops at once); SIGHUP\n"
            "reloads the configuration (keeping the old one on error). See vmrqd(8).\n",
            VMRQD_DEFAULT_CONFIG, VMRQD_DEFAULT_PIDFILE);
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

/* Opens and locks the pidfile (libbsd: flock, so a stale file never blocks a start and of two
 * vmrqd starting at once only one gets it); the pid is written after daemon(). NULL when there
 * is no pidfile. Exits, naming the file, when another vmrqd holds it or it cannot be opened.
 * The caller pidfile_remove()s the handle. */
static struct pidfh *
open_pidfile(const char *path)
{
    struct pidfh *pfh;
    pid_t other = 0;

    if (!path)
        return NULL;
    if (strcmp(path, VMRQD_DEFAULT_PIDFILE) == 0)
        mkdir(VMRQD_DEFAULT_PIDDIR, 0755); /* its directory, if nothing (systemd, tmpfiles) made it */
    if (!(pfh = pidfile_open(path, 0644, &other))) {
        if (errno == EEXIST)
            fatalx("pidfile %s: vmrqd is already running as pid %ld", path, (long)other);
        fatal("pidfile %s", path);
    }
    return pfh;
}

int
main(int argc, char **argv)
{
    struct vmrqd_config cfg;
    const char *path = VMRQD_DEFAULT_CONFIG;
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    bool foreground = false, check_only = false, verbose = false, explicit_path = false;
    struct pidfh *pfh;
    char err[512];
    int c, status;

    while ((c = getopt_long(argc, argv, "dnvf:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': foreground = true; break;
        case 'n': check_only = true; break;
        case 'v': verbose = true; break;
        case 'f': path = optarg; explicit_path = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("vmrqd %s\n", vmrq_version()); return 0;
        default:
            fprintf(stderr, "usage: vmrqd [-dnv] [-f FILE] (see 'vmrqd --help')\n");
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "vmrqd: unexpected argument '%s' (see 'vmrqd --help')\n", argv[optind]);
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
        if (preflight(&cfg, config_pidfile(&cfg, foreground), err, sizeof(err)) < 0)
            fatalx("%s", err);
        printf("vmrqd: configuration OK (%s); %s\n",
               access(path, R_OK) == 0 ? path : "defaults and environment", err);
        config_free(&cfg);
        return 0;
    }
    if (!*cfg.database && !getenv("PGHOST") && !getenv("PGDATABASE") && !getenv("PGSERVICE"))
        log_info("no database configured: using libpq's defaults");

    pfh = open_pidfile(config_pidfile(&cfg, foreground));
    if (!foreground) {
        if (daemon(0, 0) < 0)
            fatal("daemon");
        log_init(false, "vmrqd");
    }
    if (pfh && pidfile_write(pfh) < 0)
        fatal("pidfile %s", config_pidfile(&cfg, foreground));
    install_signals();
    status = vmrqd_run(&cfg, explicit_path || access(path, R_OK) == 0 ? path : NULL, explicit_path, verbose);
    pidfile_remove(pfh);
    return status;
}
