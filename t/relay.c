/*
 * relay.c - a test's relay between vmrqd and PostgreSQL that can lose one answer (see relay.h).
 *
 * One thread accepts; each connection gets a thread that pumps bytes both ways with poll().
 * Recognising the claim and the end of its answer needs only two byte patterns of the
 * frontend/backend protocol: a Bind ('B', length, empty portal name) of the statement
 * "vmrq_claim", and a ReadyForQuery ('Z', length 5, status), which the server sends once the
 * statement's transaction has committed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay.h"

#define MAX_PUMPS 64

struct t_relay {
    pthread_mutex_t lock;
    pthread_cond_t gone;
    char dir[64];
    char conninfo[160];
    struct sockaddr_un listen_addr, server_addr;
    int lfd;
    pthread_t acceptor;
    bool armed, cut, stopping;
    int fds[MAX_PUMPS][2]; /* the pumps' sockets, -1 when free */
    int pumps;
};

struct pump {
    struct t_relay *r;
    int slot;
};

static bool
claim_bind(const char *buf, size_t n)
{
    static const char stmt[] = "vmrq_claim"; /* with its NUL */

    for (size_t i = 0; i + 6 + sizeof(stmt) <= n; i++)
        if (buf[i] == 'B' && buf[i + 5] == '\0' && memcmp(buf + i + 6, stmt, sizeof(stmt)) == 0)
            return true;
    return false;
}

static bool
ready_for_query(const char *buf, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++)
        if (memcmp(buf + i, "Z\0\0\0\5", 5) == 0 && strchr("ITE", buf[i + 5]) && buf[i + 5])
            return true;
    return false;
}

static bool
send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

static void *
pump_main(void *arg)
{
    struct pump *p = arg;
    struct t_relay *r = p->r;
    int client = r->fds[p->slot][0], server = r->fds[p->slot][1];
    bool cutting = false; /* this connection's claim is being swallowed */
    char buf[65536];

    for (;;) {
        struct pollfd pfd[2] = { { client, POLLIN, 0 }, { server, POLLIN, 0 } };
        ssize_t n;

        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents) {
            if ((n = recv(client, buf, sizeof(buf), 0)) <= 0)
                break;
            pthread_mutex_lock(&r->lock);
            if (r->armed && claim_bind(buf, (size_t)n)) {
                r->armed = false;
                cutting = true;
            }
            pthread_mutex_unlock(&r->lock);
            if (!send_all(server, buf, (size_t)n))
                break;
        }
        if (pfd[1].revents) {
            if ((n = recv(server, buf, sizeof(buf), 0)) <= 0)
                break;
            if (cutting) {
                if (ready_for_query(buf, (size_t)n)) { /* committed: drop the line, unanswered */
                    pthread_mutex_lock(&r->lock);
                    r->cut = true;
                    pthread_mutex_unlock(&r->lock);
                    break;
                }
                continue;
            }
            if (!send_all(client, buf, (size_t)n))
                break;
        }
    }
    pthread_mutex_lock(&r->lock);
    close(client);
    close(server);
    r->fds[p->slot][0] = r->fds[p->slot][1] = -1;
    r->pumps--;
    pthread_cond_broadcast(&r->gone);
    pthread_mutex_unlock(&r->lock);
    free(p);
    return NULL;
}

static void *
accept_main(void *arg)
{
    struct t_relay *r = arg;

    for (;;) {
        int client = accept(r->lfd, NULL, NULL), server = -1, slot = -1;
        struct pump *p = NULL;
        pthread_t t;

        if (client < 0) {
            if (errno == EINTR)
                continue;
            break; /* shut down by t_relay_free() */
        }
        server = socket(AF_UNIX, SOCK_STREAM, 0);
        if (server < 0 || connect(server, (struct sockaddr *)&r->server_addr, sizeof(r->server_addr)) < 0 ||
            !(p = malloc(sizeof(*p)))) {
            goto refuse;
        }
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < MAX_PUMPS && slot < 0 && !r->stopping; i++)
            if (r->fds[i][0] < 0)
                slot = i;
        if (slot >= 0) {
            r->fds[slot][0] = client;
            r->fds[slot][1] = server;
            r->pumps++;
        }
        pthread_mutex_unlock(&r->lock);
        if (slot < 0)
            goto refuse;
        p->r = r;
        p->slot = slot;
        if (pthread_create(&t, NULL, pump_main, p) == 0) {
            pthread_detach(t);
            continue;
        }
        pthread_mutex_lock(&r->lock);
        r->fds[slot][0] = r->fds[slot][1] = -1;
        r->pumps--;
        pthread_mutex_unlock(&r->lock);
    refuse:
        free(p);
        close(client);
        if (server >= 0)
            close(server);
    }
    return NULL;
}

struct t_relay *
t_relay_start(void)
{
    const char *host = getenv("PGHOST"), *port = getenv("PGPORT");
    struct t_relay *r = calloc(1, sizeof(*r));

    if (!r || !host)
        goto fail;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->gone, NULL);
    for (int i = 0; i < MAX_PUMPS; i++)
        r->fds[i][0] = r->fds[i][1] = -1;
    snprintf(r->dir, sizeof(r->dir), "/tmp/vmrq-relay.XXXXXX");
    if (!mkdtemp(r->dir))
        goto fail;
    port = port && *port ? port : "5432";
    r->listen_addr.sun_family = r->server_addr.sun_family = AF_UNIX;
    snprintf(r->listen_addr.sun_path, sizeof(r->listen_addr.sun_path), "%s/.s.PGSQL.%s", r->dir, port);
    snprintf(r->server_addr.sun_path, sizeof(r->server_addr.sun_path), "%s/.s.PGSQL.%s", host, port);
    snprintf(r->conninfo, sizeof(r->conninfo), "host=%s port=%s", r->dir, port);
    if ((r->lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
        bind(r->lfd, (struct sockaddr *)&r->listen_addr, sizeof(r->listen_addr)) < 0 || listen(r->lfd, 16) < 0 ||
        pthread_create(&r->acceptor, NULL, accept_main, r) != 0)
        goto fail;
    return r;

fail:
    perror("t_relay_start");
    if (r && r->lfd > 0)
        close(r->lfd);
    free(r);
    return NULL;
}

const char *
t_relay_conninfo(const struct t_relay *r)
{
    return r->conninfo;
}

void
t_relay_arm(struct t_relay *r)
{
    pthread_mutex_lock(&r->lock);
    r->armed = true;
    pthread_mutex_unlock(&r->lock);
}

bool
t_relay_cut(struct t_relay *r)
{
    bool cut;

    pthread_mutex_lock(&r->lock);
    cut = r->cut;
    pthread_mutex_unlock(&r->lock);
    return cut;
}

void
t_relay_free(struct t_relay *r)
{
    if (!r)
        return;
    shutdown(r->lfd, SHUT_RDWR);
    pthread_join(r->acceptor, NULL);
    close(r->lfd);
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    for (int i = 0; i < MAX_PUMPS; i++)
        if (r->fds[i][0] >= 0) {
            shutdown(r->fds[i][0], SHUT_RDWR);
            shutdown(r->fds[i][1], SHUT_RDWR);
        }
    while (r->pumps > 0)
        pthread_cond_wait(&r->gone, &r->lock);
    pthread_mutex_unlock(&r->lock);
    unlink(r->listen_addr.sun_path);
    rmdir(r->dir);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->gone);
    free(r);
}
