/*
 * readhold.c - a test's hold on the reads of one file (see readhold.h).
 *
 * One thread reads the fanotify group's events. Each event is a read about to happen, with a
 * file descriptor of its own that the answer (FAN_ALLOW) names; a read that is held keeps its
 * event's descriptor in `held` until t_readhold_free() answers it. The thread polls the group
 * and a pipe, which t_readhold_free() closes to stop it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

#include "readhold.h"

#define MAX_HELD 64 /* qemu-img convert reads with up to 8 coroutines at once */

struct t_readhold {
    int fan, stop[2], allow, passed, nheld;
    int held[MAX_HELD];
    char comm[16];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static void
answer(int fan, int fd)
{
    struct fanotify_response r = { .fd = fd, .response = FAN_ALLOW };

    if (write(fan, &r, sizeof(r)) != sizeof(r))
        perror("readhold: fanotify answer");
    close(fd);
}

/* Whether process pid is named comm. */
static bool
named(int pid, const char *comm)
{
    char path[64], name[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    if (!(f = fopen(path, "r")))
        return false;
    if (!fgets(name, sizeof(name), f))
        name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    return strcmp(name, comm) == 0;
}

static void *
readhold_run(void *arg)
{
    struct t_readhold *h = arg;
    struct pollfd pfd[2] = { { h->fan, POLLIN, 0 }, { h->stop[0], POLLIN, 0 } };
    char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));

    while (poll(pfd, 2, -1) >= 0 || errno == EINTR) {
        const struct fanotify_event_metadata *m = (const void *)buf;
        ssize_t len;

        if (pfd[1].revents)
            break;
        if (!(pfd[0].revents & POLLIN) || (len = read(h->fan, buf, sizeof(buf))) <= 0)
            continue;
        for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
            bool hold = false;

            if (m->vers != FANOTIFY_METADATA_VERSION || m->fd < 0)
                continue;
            if ((m->mask & FAN_ACCESS_PERM) && named(m->pid, h->comm)) {
                pthread_mutex_lock(&h->lock);
                if (h->passed < h->allow)
                    h->passed++;
                else if (h->nheld < MAX_HELD) {
                    h->held[h->nheld++] = m->fd;
                    hold = true;
                    pthread_cond_broadcast(&h->changed);
                }
                pthread_mutex_unlock(&h->lock);
            }
            if (!hold)
                answer(h->fan, m->fd);
        }
    }
    return NULL;
}

struct t_readhold *
t_readhold_start(const char *path, const char *comm, int allow)
{
    struct t_readhold *h = calloc(1, sizeof(*h));
    int err;

    if (!h)
        return NULL;
    h->fan = h->stop[0] = h->stop[1] = -1;
    h->allow = allow;
    snprintf(h->comm, sizeof(h->comm), "%s", comm);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    if ((h->fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE)) < 0 ||
        fanotify_mark(h->fan, FAN_MARK_ADD, FAN_ACCESS_PERM, AT_FDCWD, path) < 0 || pipe(h->stop) < 0 ||
        (errno = pthread_create(&h->thread, NULL, readhold_run, h)) != 0) {
        err = errno;
        if (h->fan >= 0)
            close(h->fan);
        if (h->stop[0] >= 0) {
            close(h->stop[0]);
            close(h->stop[1]);
        }
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->changed);
        free(h);
        errno = err;
        return NULL;
    }
    return h;
}

bool
t_readhold_wait(struct t_readhold *h, int timeout_ms)
{
    struct timespec until;
    bool held;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->lock);
    while (h->nheld == 0 && pthread_cond_timedwait(&h->changed, &h->lock, &until) == 0)
        ;
    held = h->nheld > 0;
    pthread_mutex_unlock(&h->lock);
    return held;
}

void
t_readhold_free(struct t_readhold *h)
{
    if (!h)
        return;
    close(h->stop[1]);
    pthread_join(h->thread, NULL);
    for (int i = 0; i < h->nheld; i++)
        answer(h->fan, h->held[i]);
    close(h->fan); /* the kernel allows whatever was read meanwhile */
    close(h->stop[0]);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->changed);
    free(h);
}
