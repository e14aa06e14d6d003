/* Loaded with LD_PRELOAD by first_call_phases.py: the moment of each
 * socket-level step a process takes (close, socketpair, socket, connect,
 * send, recv), kept for the last EVENTS of them and written at exit to the
 * file BENCH_PHASES_OUT names, one "seconds kind fd result" line each (a
 * socketpair's result is its second end).
 * libcurl makes these calls itself (send and recv, not sendto and
 * recvfrom), so they mark the same steps in the C loop and in genauth_c.
 * Recording one is a clock read and a store: well under a microsecond. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENTS 512

struct event {
    struct timespec at;
    const char *kind;
    int fd;
    long result;
};
/* The last EVENTS events; and, apart, the last few socketpairs (multi
 * handles made), which thousands of calls would push out of the first. */
static struct event events[EVENTS], pairs[EVENTS];
static unsigned long recorded, recorded_pairs;

static void
record_in(struct event *ring, unsigned long *n, const char *kind, int fd,
          long result)
{
    struct event *e = &ring[(*n)++ % EVENTS];
    clock_gettime(CLOCK_MONOTONIC, &e->at);
    e->kind = kind;
    e->fd = fd;
    e->result = result;
}

static void
record(const char *kind, int fd, long result)
{
    record_in(events, &recorded, kind, fd, result);
}

/* The next definition of `name` after this library's (libc's). */
static void *
next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort();
    return f;
}

int
close(int fd)
{
    static int (*real)(int);
    if (!real)
        real = next("close");
    int r = real(fd);
    record("close", fd, r);
    return r;
}

int
socketpair(int domain, int type, int protocol, int sv[2])
{
    static int (*real)(int, int, int, int *);
    if (!real)
        real = next("socketpair");
    int r = real(domain, type, protocol, sv);
    if (r == 0)
        record_in(pairs, &recorded_pairs, "socketpair", sv[0], sv[1]);
    return r;
}

int
socket(int domain, int type, int protocol)
{
    static int (*real)(int, int, int);
    if (!real)
        real = next("socket");
    int r = real(domain, type, protocol);
    if (domain == AF_INET || domain == AF_INET6)
        record("socket", r, r);
    return r;
}

int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real)
        real = next("connect");
    int r = real(fd, addr, len);
    record("connect", fd, r);
    return r;
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
    static ssize_t (*real)(int, const void *, size_t, int);
    if (!real)
        real = next("send");
    record("send", fd, (long)len); /* before: the request leaves in it */
    return real(fd, buf, len, flags);
}

ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
    static ssize_t (*real)(int, void *, size_t, int);
    if (!real)
        real = next("recv");
    ssize_t r = real(fd, buf, len, flags);
    record("recv", fd, (long)r);
    return r;
}

static void
write_ring(FILE *out, const struct event *ring, unsigned long n)
{
    for (unsigned long i = n > EVENTS ? n - EVENTS : 0; i < n; i++) {
        const struct event *e = &ring[i % EVENTS];
        fprintf(out, "%ld.%09ld %s %d %ld\n", (long)e->at.tv_sec,
                e->at.tv_nsec, e->kind, e->fd, e->result);
    }
}

/* In time order once sorted (first_call_phases.py does). */
__attribute__((destructor)) static void
write_events(void)
{
    const char *path = getenv("BENCH_PHASES_OUT");
    FILE *out = path ? fopen(path, "w") : NULL;
    if (!out)
        return;
    write_ring(out, events, recorded);
    write_ring(out, pairs, recorded_pairs);
    fclose(out);
}
