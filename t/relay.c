/*
 * relay.c - a test's relay between vmrqd and PostgreSQL that can lose one answer (see relay.h).
 *
 * One thread accepts; each connection gets a thread that pumps bytes both ways with poll().
 * Recognising the claim needs one byte pattern of the frontend/backend protocol: a Bind ('B',
 * length, empty portal name) of the statement "vmrq_claim". Its answer is read message by
 * message (every message from the server is a type byte and a length, from the first byte of
 * the connection on a unix socket, where libpq asks for no SSL): the DataRows ('D') it carries,
 * then the ReadyForQuery ('Z'), which the server sends once the claim's transaction has
 * committed. An answer without rows took nothing: it is passed on whole and the relay stays
 * armed for the next claim.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
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

/* Where the server's stream is: inside the header (type, length) or the body of a message. */
struct reader {
    unsigned char hdr[5];
    size_t have;     /* bytes of hdr read */
    uint32_t left;   /* bytes of the current body still to come */
};

/* Reads buf[0..n) of the server's stream, all of it (the next chunk goes on from there). Sets
 * *rows when a DataRow begins, and returns the offset just past the end of the first
 * ReadyForQuery that ends in it, or 0 if none does. */
static size_t
read_messages(struct reader *rd, const char *buf, size_t n, bool *rows)
{
    size_t i = 0, ready = 0;

    while (i < n) {
        if (rd->have < sizeof(rd->hdr)) {
            rd->hdr[rd->have++] = (unsigned char)buf[i++];
            if (rd->have == sizeof(rd->hdr)) {
                rd->left = ((uint32_t)rd->hdr[1] << 24 | (uint32_t)rd->hdr[2] << 16 | (uint32_t)rd->hdr[3] << 8 |
                            (uint32_t)rd->hdr[4]) - 4;
                if (rd->hdr[0] == 'D')
                    *rows = true;
            }
        } else {
            size_t take = n - i < rd->left ? n - i : rd->left;
            i += take;
            rd->left -= (uint32_t)take;
        }
        if (rd->have == sizeof(rd->hdr) && rd->left == 0) {
            if (rd->hdr[0] == 'Z' && ready == 0)
                ready = i;
            rd->have = 0;
        }
    }
    return ready;
}

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
    bool cutting = false;      /* this connection's claim answer is being held back */
    bool rows = false;         /* ... and it has carried rows */
    struct reader rd = { .have = 0 };
    char buf[65536], *held = NULL; /* the answer held back so far */
    size_t nheld = 0;

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
                rows = false;
            }
            pthread_mutex_unlock(&r->lock);
            if (!send_all(server, buf, (size_t)n))
                break;
        }
        if (pfd[1].revents) {
            size_t end;
            char *more;

            if ((n = recv(server, buf, sizeof(buf), 0)) <= 0)
                break;
            end = read_messages(&rd, buf, (size_t)n, &rows);
            if (!cutting) {
                if (!send_all(client, buf, (size_t)n))
                    break;
                continue;
            }
            if (!(more = realloc(held, nheld + (size_t)n)))
                break;
            held = more;
            memcpy(held + nheld, buf, (size_t)n);
            nheld += (size_t)n;
            if (end == 0)
                continue; /* the claim has not committed yet */
            if (rows) { /* committed, with rows: drop the line, unanswered */
                pthread_mutex_lock(&r->lock);
                r->cut = true;
                pthread_mutex_unlock(&r->lock);
                break;
            }
            /* it took nothing: pass it on and wait for a claim that takes something */
            cutting = false;
            pthread_mutex_lock(&r->lock);
            r->armed = true;
            pthread_mutex_unlock(&r->lock);
            if (!send_all(client, held, nheld))
                break;
            nheld = 0;
        }
    }
    free(held);
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
        int client = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), server = -1, slot = -1;
        struct pump *p = NULL;
        pthread_t t;

        if (client < 0) {
            if (errno == EINTR)
                continue;
            break; /* shut down by t_relay_free() */
        }
        server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); /* a vmrqd forked later must not hold it open */
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
    if ((r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
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
