/* The event-driven engine (evloop.c) against a small HTTP server on
 * loopback, driven by a poll() loop through its hooks the way an event loop
 * would: many calls at once, one token fetch for all of them, a retry after
 * a 401, a cancelled call whose connection is closed, nothing left watched
 * and no timer armed once idle. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define TOKEN "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZWRfdXNlcnBvb2xfaWQiOiJwb29sMSJ9.c2ln"

/* ---- the server: a thread per connection, keep-alive ------------------- */

static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static int token_requests, calls_served, conns_closed, refuse_next;

static void *
serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                goto closed;
            have += (size_t)n;
        }
        size_t head = (size_t)(end - buf) + 4, body_len = 0;
        char *cl = strcasestr(buf, "Content-Length:");
        if (cl && cl < end)
            body_len = strtoul(cl + 15, NULL, 10);
        while (have < head + body_len) {
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                goto closed;
            have += (size_t)n;
        }
        const char *answer;
        int slow = memmem(buf + head, body_len, "slow", 4) != NULL;
        pthread_mutex_lock(&server_mu);
        if (strncmp(buf, "POST /api/v3/get-management-token", 33) == 0) {
            token_requests++;
            answer = "{\"statusCode\":200,\"data\":{\"access_token\":\"" TOKEN
                     "\",\"expires_in\":7200}}";
        } else if (refuse_next > 0) {
            refuse_next--;
            answer = "{\"statusCode\":401,\"message\":\"token expired\"}";
        } else {
            calls_served++;
            answer = "{\"statusCode\":200,\"message\":\"ok\",\"data\":"
                     "{\"response\":{\"n\":1}}}";
        }
        pthread_mutex_unlock(&server_mu);
        if (slow)
            usleep(300 * 1000);
        char out[1024];
        int len = snprintf(out, sizeof(out),
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json"
                           "\r\nContent-Length: %zu\r\n\r\n%s",
                           strlen(answer), answer);
        if (write(fd, out, (size_t)len) != len)
            goto closed;
        memmove(buf, buf + head + body_len, have - head - body_len);
        have -= head + body_len;
    }
closed:
    pthread_mutex_lock(&server_mu);
    conns_closed++;
    pthread_mutex_unlock(&server_mu);
    close(fd);
    return NULL;
}

static void *
accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static int
server_start(void)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(lfd, 128) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    pthread_t t;
    pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)lfd);
    pthread_detach(t);
    return ntohs(a.sin_port);
}

/* ---- the "event loop": poll() over what the hooks asked for ------------- */

#define MAX_FDS 256
static struct {
    int fd, events;
} watched[MAX_FDS];
static int nwatched;
static long timer_ms = -1; /* as last armed */
static double timer_due = -1;

static void
hook_watch(void *userdata, int fd, int events)
{
    (void)userdata;
    for (int i = 0; i < nwatched; i++) {
        if (watched[i].fd != fd)
            continue;
        if (events)
            watched[i].events = events;
        else
            watched[i] = watched[--nwatched];
        return;
    }
    if (events && nwatched < MAX_FDS) {
        watched[nwatched].fd = fd;
        watched[nwatched++].events = events;
    }
}

static void
hook_timer(void *userdata, long ms)
{
    (void)userdata;
    timer_ms = ms;
    timer_due = ms < 0 ? -1 : genauth_now() + ms / 1000.0;
}

typedef struct {
    int ended, ok, statuses[GENAUTH_E_CLOSED + 1];
    long last_status_code;
} tally;

static void
on_done(void *userdata, genauth_status st, const genauth_envelope *resp,
        const genauth_error *err)
{
    tally *t = userdata;
    (void)err;
    t->ended++;
    t->statuses[st]++;
    if (st == GENAUTH_OK) {
        t->last_status_code = resp->status_code;
        if (resp->has_status_code && resp->status_code == 200 && resp->response)
            t->ok++;
    }
}

/* Runs the loop until `want` calls of `t` ended (or 10 s passed). */
static void
run_until(genauth_evloop *ev, tally *t, int want)
{
    double give_up = genauth_now() + 10;
    while (t->ended < want && genauth_now() < give_up) {
        struct pollfd p[MAX_FDS];
        int n = nwatched;
        for (int i = 0; i < n; i++) {
            p[i].fd = watched[i].fd;
            p[i].events = (short)(((watched[i].events & GENAUTH_EV_READ)
                                       ? POLLIN
                                       : 0) |
                                  ((watched[i].events & GENAUTH_EV_WRITE)
                                       ? POLLOUT
                                       : 0));
            p[i].revents = 0;
        }
        int wait_ms = 200;
        if (timer_due >= 0) {
            double left = (timer_due - genauth_now()) * 1000;
            wait_ms = left < 0 ? 0 : (int)left + 1;
        }
        int r = poll(p, (nfds_t)n, wait_ms);
        if (r > 0) {
            for (int i = 0; i < n; i++) {
                int ev_mask = ((p[i].revents & (POLLIN | POLLHUP | POLLERR))
                                   ? GENAUTH_EV_READ
                                   : 0) |
                              ((p[i].revents & POLLOUT) ? GENAUTH_EV_WRITE : 0);
                if (ev_mask)
                    genauth_evloop_socket_ready(ev, p[i].fd, ev_mask);
            }
        }
        if (timer_due >= 0 && genauth_now() >= timer_due) {
            timer_due = -1;
            genauth_evloop_timer_fired(ev);
        }
    }
}

static void
test_many_calls_one_token(genauth_client *c, genauth_evloop *ev)
{
    genauth_trigger_webhook_req req = {"hook-1", 6, NULL, NULL};
    genauth_evcall *calls[40];
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    for (int i = 0; i < 40; i++)
        CHECK(genauth_evloop_start(ev, &req, on_done, &t, &calls[i], &err) ==
              GENAUTH_OK);
    CHECK(genauth_evloop_calls(ev) == 40);
    CHECK(t.ended == 0); /* never from inside start */
    run_until(ev, &t, 40);
    CHECK(t.ended == 40);
    CHECK(t.ok == 40);
    CHECK(token_requests == 1);
    CHECK(genauth_client_token_fetches(c) == 1);
    CHECK(genauth_evloop_calls(ev) == 0);
    /* Idle: no socket watched, no timer armed. */
    CHECK(nwatched == 0);
    CHECK(timer_ms == -1);
}

static void
test_retry_after_401(genauth_client *c, genauth_evloop *ev)
{
    genauth_trigger_webhook_req req = {"hook-2", 6, NULL, NULL};
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    pthread_mutex_lock(&server_mu);
    refuse_next = 1;
    pthread_mutex_unlock(&server_mu);
    CHECK(genauth_evloop_start(ev, &req, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    CHECK(token_requests == 2); /* the refused token was replaced once */
    CHECK(genauth_client_token_fetches(c) == 2);
}

static void
test_cancel_mid_flight(genauth_evloop *ev)
{
    genauth_trigger_webhook_req slow = {"slow", 4, NULL, NULL};
    genauth_trigger_webhook_req fast = {"hook-3", 6, NULL, NULL};
    genauth_evcall *victim, *other;
    genauth_error err;
    tally t = {0}, never = {0};

    genauth_error_init(&err);
    pthread_mutex_lock(&server_mu);
    int closed_before = conns_closed;
    pthread_mutex_unlock(&server_mu);
    CHECK(genauth_evloop_start(ev, &slow, on_done, &never, &victim, &err) ==
          GENAUTH_OK);
    /* Run until the request is surely sent (the server sleeps on it). */
    double until = genauth_now() + 0.1;
    while (genauth_now() < until) {
        tally none = {0};
        CHECK(genauth_evloop_start(ev, &fast, on_done, &none, &other, &err) ==
              GENAUTH_OK);
        run_until(ev, &none, 1);
    }
    genauth_evloop_cancel(ev, victim);
    CHECK(genauth_evloop_calls(ev) == 0);
    CHECK(nwatched == 0);
    /* The server sees the cancelled request's connection close. */
    double give_up = genauth_now() + 5;
    int closed_now = closed_before;
    while (closed_now == closed_before && genauth_now() < give_up) {
        usleep(10 * 1000);
        pthread_mutex_lock(&server_mu);
        closed_now = conns_closed;
        pthread_mutex_unlock(&server_mu);
    }
    CHECK(closed_now == closed_before + 1);
    /* And the engine goes on. */
    CHECK(genauth_evloop_start(ev, &fast, on_done, &t, &other, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    CHECK(never.ended == 0);
}

static void
test_close_ends_calls(genauth_client *c)
{
    genauth_trigger_webhook_req req = {"slow", 4, NULL, NULL};
    genauth_evloop_hooks hooks = {hook_watch, hook_timer, NULL};
    genauth_evloop *ev = NULL;
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    CHECK(genauth_evloop_new(c, &hooks, &ev, &err) == GENAUTH_OK);
    CHECK(genauth_evloop_start(ev, &req, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    genauth_evloop_close(ev);
    CHECK(t.ended == 1);
    CHECK(t.statuses[GENAUTH_E_CLOSED] == 1);
    CHECK(genauth_evloop_start(ev, &req, on_done, &t, &call, &err) ==
          GENAUTH_E_CLOSED);
    genauth_evloop_free(ev);
    CHECK(nwatched == 0);
}

int
main(void)
{
    genauth_error err;
    genauth_client_options opts;
    genauth_client *c = NULL;
    genauth_evloop *ev = NULL;
    char host[64];

    genauth_error_init(&err);
    CHECK(genauth_global_init(&err) == GENAUTH_OK);
    /* An event loop's thread must never wait for DNS. */
    CHECK(genauth_curl_async_dns());
    int port = server_start();
    CHECK(port > 0);
    snprintf(host, sizeof(host), "http://127.0.0.1:%d", port);
    genauth_client_options_init(&opts);
    opts.access_key_id = "ak";
    opts.access_key_secret = "sk";
    opts.host = host;
    opts.timeout = 5;
    CHECK(genauth_client_new(&opts, &c, &err) == GENAUTH_OK);
    genauth_evloop_hooks hooks = {hook_watch, hook_timer, NULL};
    CHECK(genauth_evloop_new(c, &hooks, &ev, &err) == GENAUTH_OK);
    if (c && ev) {
        test_many_calls_one_token(c, ev);
        test_retry_after_401(c, ev);
        test_cancel_mid_flight(ev);
        test_close_ends_calls(c);
    }
    genauth_evloop_free(ev);
    genauth_client_free(c);
    curl_global_cleanup();
    return check_summary("test_evloop");
}
