/* The event-driven engine (evloop.c) against a small HTTP server on
 * loopback, driven by a poll() loop through its hooks the way an event loop
 * would: many calls at once, one token fetch for all of them, a retry after
 * a 401, a GET endpoint, bad input refused before a token fetch, a call
 * waiting for a token bounded by its own deadline, a cancelled call whose
 * connection is closed, an idle engine that the loop never hears from (its
 * kept connections watched for reading only, no timer armed), a kept
 * connection the server closes unwatched at its first event, throttled
 * calls sent again after their wait (resting on the one timer), closed or
 * cancelled while they rest, a done callback that forks (the child gives
 * the parent's calls up, the parent's go on). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define TOKEN "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZWRfdXNlcnBvb2xfaWQiOiJwb29sMSJ9.c2ln"

/* ---- the server: a thread per connection, keep-alive ------------------- */

static pthread_mutex_t server_mu = PTHREAD_MUTEX_INITIALIZER;
static int token_requests, calls_served, conns_closed, refuse_next;
static int gets_served;
/* The next calls answered HTTP 429 with "Retry-After: throttle_after". */
static int throttle_next, throttle_after;
/* How long the server sleeps before a token answer, and before a refusal. */
static int token_delay_ms, refuse_delay_ms;
/* The server closes a connection this long after answering a request whose
 * body says "bye" (a keep-alive timeout, as servers have). */
#define BYE_CLOSE_MS 100

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
        /* Searched within the head only (buf is not NUL-terminated). */
        char saved = buf[head - 1];
        buf[head - 1] = '\0';
        char *cl = strcasestr(buf, "Content-Length:");
        buf[head - 1] = saved;
        if (cl && cl < end)
            body_len = strtoul(cl + 15, NULL, 10);
        while (have < head + body_len) {
            ssize_t n = read(fd, buf + have, sizeof(buf) - have);
            if (n <= 0)
                goto closed;
            have += (size_t)n;
        }
        const char *answer;
        int status = 200, retry_after = -1;
        int slow = memmem(buf + head, body_len, "slow", 4) != NULL;
        int bye = memmem(buf + head, body_len, "bye", 3) != NULL;
        int delay_ms = 0;
        pthread_mutex_lock(&server_mu);
        if (strncmp(buf, "POST /api/v3/get-management-token", 33) == 0) {
            token_requests++;
            delay_ms = token_delay_ms;
            answer = "{\"statusCode\":200,\"data\":{\"access_token\":\"" TOKEN
                     "\",\"expires_in\":7200}}";
        } else if (throttle_next > 0) {
            throttle_next--;
            status = 429;
            retry_after = throttle_after;
            answer = "{\"statusCode\":429,\"message\":\"slow down\"}";
        } else if (refuse_next > 0) {
            refuse_next--;
            delay_ms = refuse_delay_ms;
            answer = "{\"statusCode\":401,\"message\":\"token expired\"}";
        } else {
            calls_served++;
            gets_served += strncmp(buf, "GET ", 4) == 0;
            answer = "{\"statusCode\":200,\"message\":\"ok\",\"data\":"
                     "{\"response\":{\"n\":1}}}";
        }
        pthread_mutex_unlock(&server_mu);
        if (slow)
            usleep(300 * 1000);
        if (bye) /* the answer is surely waited for */
            usleep(50 * 1000);
        if (delay_ms)
            usleep((useconds_t)delay_ms * 1000);
        char out[1024], extra[64] = "";
        if (retry_after >= 0)
            snprintf(extra, sizeof(extra), "Retry-After: %d\r\n",
                     retry_after);
        int len = snprintf(out, sizeof(out),
                           "HTTP/1.1 %d X\r\nContent-Type: application/json"
                           "\r\n%sContent-Length: %zu\r\n\r\n%s",
                           status, extra, strlen(answer), answer);
        if (write(fd, out, (size_t)len) != len)
            goto closed;
        if (bye) {
            usleep(BYE_CLOSE_MS * 1000);
            goto closed;
        }
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

/* An engine and its one timer; the hooks' userdata. */
typedef struct {
    genauth_evloop *ev;
    double timer_due[2]; /* GENAUTH_EV_SOON, _LATER; -1: not armed */
    int timer_calls;     /* to the timer hook */
} engine;

#define MAX_ENGINES 8
static engine engines[MAX_ENGINES];

#define MAX_FDS 256
static struct {
    int fd, events;
    const engine *owner;
} watched[MAX_FDS];
static int nwatched;
/* Socket events the loop handed to engines, all told. */
static int deliveries;

/* Also checks that the engine knows what is watched, and tells only
 * changes; and that a forked child's engine unwatches only a socket whose
 * descriptor it closed first (the loop's unwatching must fail there rather
 * than touch an epoll set shared with the parent). */
static void
hook_watch(void *userdata, int fd, int events, int was)
{
    const engine *e = userdata;
    CHECK(events != was);
    if (e->ev && genauth_evloop_forked(e->ev))
        CHECK(!events && fcntl(fd, F_GETFD) == -1 && errno == EBADF);
    for (int i = 0; i < nwatched; i++) {
        if (watched[i].fd != fd)
            continue;
        CHECK(watched[i].owner == userdata);
        CHECK(watched[i].events == was);
        if (events)
            watched[i].events = events;
        else
            watched[i] = watched[--nwatched];
        return;
    }
    CHECK(was == 0);
    if (events && nwatched < MAX_FDS) {
        watched[nwatched].fd = fd;
        watched[nwatched].owner = userdata;
        watched[nwatched++].events = events;
    }
}

static void
hook_timer(void *userdata, int which, long ms)
{
    engine *e = userdata;
    CHECK(which == GENAUTH_EV_SOON || which == GENAUTH_EV_LATER);
    if (which != GENAUTH_EV_SOON && which != GENAUTH_EV_LATER)
        return;
    CHECK(which == GENAUTH_EV_LATER || ms <= 0);
    e->timer_calls++;
    e->timer_due[which] = ms < 0 ? -1 : genauth_now() + ms / 1000.0;
}

static engine *
engine_of(const genauth_evloop *ev)
{
    for (int i = 0; i < MAX_ENGINES; i++) {
        if (engines[i].ev == ev)
            return &engines[i];
    }
    CHECK(!"an engine made by engine_new");
    return &engines[0];
}

/* An engine on `c` with the hooks above, or NULL. */
static genauth_evloop *
engine_new(genauth_client *c)
{
    engine *e = engine_of(NULL);
    genauth_evloop_hooks hooks = {hook_watch, hook_timer, e};
    genauth_error err;
    genauth_error_init(&err);
    e->timer_due[0] = e->timer_due[1] = -1;
    CHECK(genauth_evloop_new(c, &hooks, &e->ev, &err) == GENAUTH_OK);
    return e->ev;
}

static int
watched_count(const engine *e)
{
    int n = 0;
    for (int i = 0; i < nwatched; i++)
        n += watched[i].owner == e;
    return n;
}

/* The sockets `ev` has the loop watch. */
static int
watched_by(const genauth_evloop *ev)
{
    return watched_count(engine_of(ev));
}

/* Frees the engine, which leaves nothing watched and no timer armed. */
static void
engine_free(genauth_evloop *ev)
{
    engine *e = engine_of(ev);
    genauth_evloop_free(ev);
    CHECK(watched_count(e) == 0);
    CHECK(e->timer_due[0] < 0 && e->timer_due[1] < 0);
    e->ev = NULL;
}

/* An idle engine the loop would never hear from: what it watches is kept
 * connections, for reading only (not writing, which an idle socket always
 * is), none of them ready, and no timer armed. */
static int
idle_quiet(const genauth_evloop *ev)
{
    const engine *e = engine_of(ev);
    int quiet = e->timer_due[0] < 0 && e->timer_due[1] < 0;
    for (int i = 0; i < nwatched; i++) {
        if (watched[i].owner != e)
            continue;
        struct pollfd p = {watched[i].fd, POLLIN, 0};
        quiet = quiet && watched[i].events == GENAUTH_EV_READ &&
                poll(&p, 1, 0) == 0;
    }
    return quiet;
}

typedef struct {
    int ended, ok, statuses[GENAUTH_E_CRYPTO + 1];
    int order; /* when the last call of this tally ended, counted from 1 */
    unsigned retries; /* the last call's stats */
    char message[GENAUTH_ERRMSG_SIZE];
} tally;

static int ends_so_far;

/* A trigger-webhook request for `id`; the caller frees .params. */
static genauth_request
trigger(const char *id)
{
    genauth_request req = {GENAUTH_OP_TRIGGER_WEBHOOK, cJSON_CreateObject()};
    CHECK(req.params != NULL);
    CHECK(cJSON_AddStringToObject((cJSON *)req.params, "webhookId", id) !=
          NULL);
    return req;
}

static void
on_done(void *userdata, genauth_status st, const genauth_envelope *resp,
        const genauth_error *err)
{
    tally *t = userdata;
    t->ended++;
    t->order = ++ends_so_far;
    t->statuses[st]++;
    t->retries = st == GENAUTH_OK ? resp->stats.retries : err->stats.retries;
    if (st != GENAUTH_OK)
        snprintf(t->message, sizeof(t->message), "%s", err->message);
    if (st == GENAUTH_OK && resp->has_status_code &&
        resp->status_code == 200 && resp->response)
        t->ok++;
}

/* Runs the loop until `want` calls of `t` ended, or until the monotonic
 * time `give_up`. */
static void
run_loop(genauth_evloop *ev, tally *t, int want, double give_up)
{
    engine *e = engine_of(ev);
    while (t->ended < want && genauth_now() < give_up) {
        struct pollfd p[MAX_FDS];
        int n = 0;
        for (int i = 0; i < nwatched; i++) {
            if (watched[i].owner != e)
                continue;
            p[n].fd = watched[i].fd;
            p[n].events = (short)(((watched[i].events & GENAUTH_EV_READ)
                                       ? POLLIN
                                       : 0) |
                                  ((watched[i].events & GENAUTH_EV_WRITE)
                                       ? POLLOUT
                                       : 0));
            p[n++].revents = 0;
        }
        int wait_ms = 200;
        for (int w = 0; w < 2; w++) {
            if (e->timer_due[w] < 0)
                continue;
            double left = (e->timer_due[w] - genauth_now()) * 1000;
            int ms = left < 0 ? 0 : (int)left + 1;
            if (ms < wait_ms)
                wait_ms = ms;
        }
        double until_end = (give_up - genauth_now()) * 1000;
        if (until_end < wait_ms)
            wait_ms = until_end < 0 ? 0 : (int)until_end + 1;
        int r = poll(p, (nfds_t)n, wait_ms);
        if (r > 0) {
            for (int i = 0; i < n; i++) {
                int ev_mask = ((p[i].revents & (POLLIN | POLLHUP | POLLERR))
                                   ? GENAUTH_EV_READ
                                   : 0) |
                              ((p[i].revents & POLLOUT) ? GENAUTH_EV_WRITE : 0);
                if (ev_mask) {
                    deliveries++;
                    genauth_evloop_socket_ready(ev, p[i].fd, ev_mask);
                }
            }
        }
        for (int w = 0; w < 2; w++) {
            if (e->timer_due[w] >= 0 && genauth_now() >= e->timer_due[w]) {
                e->timer_due[w] = -1;
                genauth_evloop_timer_fired(ev, w);
            }
        }
    }
}

/* Until `want` calls of `t` ended (or 10 s passed). */
static void
run_until(genauth_evloop *ev, tally *t, int want)
{
    run_loop(ev, t, want, genauth_now() + 10);
}

static void
run_until_time(genauth_evloop *ev, tally *t, double until)
{
    run_loop(ev, t, 1, until);
}

static void
test_many_calls_one_token(genauth_client *c, genauth_evloop *ev)
{
    genauth_request req = trigger("hook-1");
    genauth_evcall *calls[40];
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    int timer_calls = engine_of(ev)->timer_calls;
    for (int i = 0; i < 40; i++)
        CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &calls[i], &err) ==
              GENAUTH_OK);
    CHECK(genauth_evloop_calls(ev) == 40);
    /* The timer is armed once (for the token fetch, at once); the later
     * starts find it armed early enough. */
    CHECK(engine_of(ev)->timer_calls == timer_calls + 1);
    CHECK(t.ended == 0); /* never from inside start */
    run_until(ev, &t, 40);
    CHECK(t.ended == 40);
    CHECK(t.ok == 40);
    CHECK(token_requests == 1);
    CHECK(genauth_client_token_fetches(c) == 1);
    CHECK(genauth_evloop_calls(ev) == 0);
    /* Idle: nothing the loop would hear of (the timer cancelled, or fired:
     * the hook's timer is one-shot, and libcurl does not cancel a spent
     * one). */
    CHECK(idle_quiet(ev));
    cJSON_Delete((cJSON *)req.params);
}

static void
test_retry_after_401(genauth_client *c, genauth_evloop *ev)
{
    genauth_request req = trigger("hook-2");
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    pthread_mutex_lock(&server_mu);
    refuse_next = 1;
    pthread_mutex_unlock(&server_mu);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    CHECK(token_requests == 2); /* the refused token was replaced once */
    CHECK(genauth_client_token_fetches(c) == 2);
    cJSON_Delete((cJSON *)req.params);
}

static void
test_get_endpoint(genauth_evloop *ev)
{
    cJSON *params = cJSON_CreateObject();
    genauth_request req = {GENAUTH_OP_LIST_WEBHOOKS, params};
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    CHECK(params && cJSON_AddNumberToObject(params, "page", 2));
    int gets_before = gets_served;
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.statuses[GENAUTH_OK] == 1);
    CHECK(gets_served == gets_before + 1);
    cJSON_Delete(params);
}

/* Bad input is refused when the call starts, before a token is fetched. */
static void
test_bad_input_sends_nothing(genauth_client *c, genauth_evloop *ev)
{
    genauth_request req = trigger("hook-4");
    genauth_evcall *call = NULL;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    genauth_token_invalidate(c, c->tokens.generation);
    CHECK(cJSON_AddNumberToObject((cJSON *)req.params, "bogus", 1) != NULL);
    int tokens_before = token_requests;
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_E_INVALID);
    CHECK(strstr(err.message, "bogus") != NULL);
    CHECK(call == NULL);
    cJSON_DeleteItemFromObject((cJSON *)req.params, "webhookId");
    cJSON_DeleteItemFromObject((cJSON *)req.params, "bogus");
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_E_INVALID);
    CHECK(strstr(err.message, "webhookId") != NULL);
    genauth_request unknown = {GENAUTH_OP_COUNT, NULL};
    CHECK(genauth_evloop_start(ev, &unknown, NULL, on_done, &t, &call, &err) ==
          GENAUTH_E_INVALID);
    CHECK(genauth_evloop_calls(ev) == 0);
    CHECK(token_requests == tokens_before);
    CHECK(t.ended == 0);
    cJSON_Delete((cJSON *)req.params);
}

/* A call retried after a 401 joins a token fetch that a later call started
 * (bounded by that call's later deadline): it still ends by its own. */
static void
test_waiting_call_keeps_its_deadline(genauth_client *c)
{
    genauth_request req = trigger("hook-5");
    genauth_client_options opts;
    genauth_client *short_c = NULL;
    genauth_evloop *ev = NULL;
    genauth_evcall *early, *late;
    genauth_error err;
    tally te = {0}, tl = {0};

    genauth_error_init(&err);
    genauth_client_options_init(&opts);
    opts.access_key_id = "ak";
    opts.access_key_secret = "sk";
    opts.host = genauth_client_base_url(c);
    opts.timeout = 2;
    CHECK(genauth_client_new(&opts, &short_c, &err) == GENAUTH_OK);
    ev = engine_new(short_c);
    if (!ev)
        return;
    /* A token first, so that the early call goes out at once. */
    tally warm = {0};
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &warm, &early, &err) ==
          GENAUTH_OK);
    run_until(ev, &warm, 1);
    CHECK(warm.ok == 1);

    pthread_mutex_lock(&server_mu);
    refuse_next = 1;
    refuse_delay_ms = 1000; /* the early call's 401 comes at +1 s */
    token_delay_ms = 4000;  /* the fetch outlives every deadline here */
    pthread_mutex_unlock(&server_mu);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &te, &early, &err) ==
          GENAUTH_OK);
    tally none = {0};
    run_until_time(ev, &none, genauth_now() + 0.5);
    /* At +0.5 s the token is gone: the late call starts the fetch, bounded
     * by its deadline (+2.5 s); the early call joins it at +1 s. */
    genauth_token_invalidate(short_c, short_c->tokens.generation);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &tl, &late, &err) ==
          GENAUTH_OK);
    run_until(ev, &te, 1);
    run_until(ev, &tl, 1);
    CHECK(te.statuses[GENAUTH_E_TIMEOUT] == 1);
    CHECK(strstr(te.message, "waiting for a management token") != NULL);
    CHECK(tl.statuses[GENAUTH_E_TIMEOUT] == 1);
    CHECK(te.order < tl.order);
    pthread_mutex_lock(&server_mu);
    refuse_delay_ms = token_delay_ms = 0;
    pthread_mutex_unlock(&server_mu);
    engine_free(ev);
    genauth_client_free(short_c);
    cJSON_Delete((cJSON *)req.params);
}

static void
test_cancel_mid_flight(genauth_evloop *ev)
{
    genauth_request slow = trigger("slow");
    genauth_request fast = trigger("hook-3");
    genauth_evcall *victim, *other;
    genauth_error err;
    tally t = {0}, never = {0};

    genauth_error_init(&err);
    pthread_mutex_lock(&server_mu);
    int closed_before = conns_closed;
    pthread_mutex_unlock(&server_mu);
    CHECK(genauth_evloop_start(ev, &slow, NULL, on_done, &never, &victim, &err) ==
          GENAUTH_OK);
    /* Run until the request is surely sent (the server sleeps on it). */
    double until = genauth_now() + 0.1;
    while (genauth_now() < until) {
        tally none = {0};
        CHECK(genauth_evloop_start(ev, &fast, NULL, on_done, &none, &other, &err) ==
              GENAUTH_OK);
        run_until(ev, &none, 1);
    }
    genauth_evloop_cancel(ev, victim);
    CHECK(genauth_evloop_calls(ev) == 0);
    /* Its socket is closed, and no longer watched. */
    CHECK(idle_quiet(ev));
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
    CHECK(genauth_evloop_start(ev, &fast, NULL, on_done, &t, &other, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    CHECK(never.ended == 0);
    cJSON_Delete((cJSON *)slow.params);
    cJSON_Delete((cJSON *)fast.params);
}

static void
test_close_ends_calls(genauth_client *c)
{
    genauth_request req = trigger("slow");
    genauth_evloop *ev = NULL;
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    ev = engine_new(c);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    genauth_evloop_close(ev);
    CHECK(t.ended == 1);
    CHECK(t.statuses[GENAUTH_E_CLOSED] == 1);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_E_CLOSED);
    CHECK(watched_by(ev) == 0);
    engine_free(ev);
    cJSON_Delete((cJSON *)req.params);
}

static void
set_throttle(int next, int after)
{
    pthread_mutex_lock(&server_mu);
    throttle_next = next;
    throttle_after = after;
    pthread_mutex_unlock(&server_mu);
}

/* Two 429s (Retry-After: 0): sent a third time, once each wait is over. */
static void
test_throttled_call_sent_again(genauth_evloop *ev)
{
    genauth_request req = trigger("hook-3");
    genauth_evcall *call;
    genauth_error err;
    tally t = {0};

    genauth_error_init(&err);
    set_throttle(2, 0);
    int served = calls_served;
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    CHECK(t.retries == 2);
    CHECK(calls_served == served + 1);
    CHECK(throttle_next == 0);
    CHECK(genauth_evloop_calls(ev) == 0);
    CHECK(idle_quiet(ev));
    cJSON_Delete((cJSON *)req.params);
}

/* A call resting for its retry (Retry-After: 3) is cancelled, another is
 * ended by close: nothing is left (valgrind checks the memory). */
static void
test_resting_calls_cancelled_and_closed(genauth_client *c)
{
    genauth_request req = trigger("hook-4");
    genauth_evloop *ev = NULL;
    genauth_evcall *a, *b;
    genauth_error err;
    tally ta = {0}, tb = {0};

    genauth_error_init(&err);
    ev = engine_new(c);
    set_throttle(2, 3);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &ta, &a, &err) ==
          GENAUTH_OK);
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &tb, &b, &err) ==
          GENAUTH_OK);
    /* Until both 429s are in: the timer then waits about 3 s. */
    double give_up = genauth_now() + 10;
    while (throttle_next > 0 && genauth_now() < give_up)
        run_until_time(ev, &ta, genauth_now() + 0.05);
    run_until_time(ev, &ta, genauth_now() + 0.3);
    CHECK(ta.ended == 0 && tb.ended == 0);
    CHECK(genauth_evloop_calls(ev) == 2);
    CHECK(engine_of(ev)->timer_due[GENAUTH_EV_LATER] >= 0);
    genauth_evloop_cancel(ev, a);
    CHECK(genauth_evloop_calls(ev) == 1);
    genauth_evloop_close(ev);
    CHECK(ta.ended == 0);
    CHECK(tb.statuses[GENAUTH_E_CLOSED] == 1);
    CHECK(tb.retries == 1);
    engine_free(ev);
    set_throttle(0, 0);
    cJSON_Delete((cJSON *)req.params);
}

/* A kept connection that the server closes while idle: the loop hears of
 * it once (the close), then no more; the next call goes out on a new
 * connection. */
static void
test_kept_connection_closed_by_the_server(genauth_client *c)
{
    genauth_request bye = trigger("bye");
    genauth_request req = trigger("hook-6");
    genauth_evloop *ev = engine_new(c);
    genauth_evcall *call;
    genauth_error err;
    tally t = {0}, t2 = {0}, none = {0};

    genauth_error_init(&err);
    if (!ev)
        return;
    CHECK(genauth_evloop_start(ev, &bye, NULL, on_done, &t, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t, 1);
    CHECK(t.ok == 1);
    /* The answer came after a wait: its connection is kept, and stays
     * watched for reading, quiet. */
    CHECK(watched_by(ev) == 1);
    CHECK(idle_quiet(ev));
    /* A bad fd is nobody's: it must not take a free slot of the table for
     * its own (valgrind saw that slot's unset fields read). */
    for (int i = 0; i < 40; i++)
        genauth_evloop_socket_ready(ev, -1, GENAUTH_EV_READ);
    CHECK(watched_by(ev) == 1);
    pthread_mutex_lock(&server_mu);
    int closed_before = conns_closed;
    pthread_mutex_unlock(&server_mu);
    int delivered = deliveries;
    run_until_time(ev, &none, genauth_now() + 4 * BYE_CLOSE_MS / 1000.0);
    pthread_mutex_lock(&server_mu);
    CHECK(conns_closed == closed_before + 1);
    pthread_mutex_unlock(&server_mu);
    CHECK(deliveries == delivered + 1);
    CHECK(watched_by(ev) == 0);
    CHECK(idle_quiet(ev));
    CHECK(genauth_evloop_start(ev, &req, NULL, on_done, &t2, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &t2, 1);
    CHECK(t2.ok == 1);
    engine_free(ev);
    cJSON_Delete((cJSON *)bye.params);
    cJSON_Delete((cJSON *)req.params);
}

/* ---- fork() in a done callback --------------------------------------- */

static genauth_client *fork_client;
static const engine *fork_engine;
static pid_t fork_pid = -1;
/* In the child: the sockets the engine had the loop watch at the fork. */
static int fork_fds[MAX_FDS], fork_nfds;
/* In the child: the client's share handle, which the child's adoption of
 * the client leaves to the parent (kept reachable here, as test_threads
 * does, because valgrind checks the child's memory too). */
static void *volatile parents_share;

static void
on_done_fork(void *userdata, genauth_status st, const genauth_envelope *resp,
             const genauth_error *err)
{
    on_done(userdata, st, resp, err);
    fork_nfds = 0;
    for (int i = 0; i < nwatched; i++) {
        if (watched[i].owner == fork_engine)
            fork_fds[fork_nfds++] = watched[i].fd;
    }
    fork_pid = fork();
    if (fork_pid == 0)
        parents_share = fork_client->share;
}

/* A call's done callback forks while three calls wait for their answers
 * (the server sleeps on "slow"). In the child, as the callback returns,
 * the engine gives up: the three end with GENAUTH_E_TRANSPORT saying that
 * the process forked, the sockets are unwatched once closed there, no
 * timer is left, later starts fail the same way, and nothing is sent. The
 * parent's calls get their answers and its engine goes on. */
static void
test_fork_in_a_done_callback(genauth_client *c)
{
    genauth_request slow = trigger("slow");
    genauth_request fast = trigger("hook-7");
    genauth_evloop *ev = engine_new(c);
    genauth_evcall *call;
    genauth_error err;
    tally warm = {0}, ts = {0}, tf = {0}, after = {0};
    int status = -1;

    genauth_error_init(&err);
    if (!ev)
        return;
    fork_engine = engine_of(ev);
    fork_client = c;
    CHECK(genauth_evloop_start(ev, &fast, NULL, on_done, &warm, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &warm, 1); /* a token and a kept connection */
    CHECK(warm.ok == 1);
    int served = calls_served;
    for (int i = 0; i < 3; i++)
        CHECK(genauth_evloop_start(ev, &slow, NULL, on_done, &ts, &call, &err) ==
              GENAUTH_OK);
    CHECK(genauth_evloop_start(ev, &fast, NULL, on_done_fork, &tf, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &tf, 1);
    CHECK(tf.ok == 1);
    if (fork_pid == 0) {
        int ok = ts.ended == 3 && ts.statuses[GENAUTH_E_TRANSPORT] == 3 &&
                 strstr(ts.message, "forked") != NULL &&
                 genauth_evloop_calls(ev) == 0 && watched_by(ev) == 0 &&
                 fork_engine->timer_due[0] < 0 &&
                 fork_engine->timer_due[1] < 0;
        for (int i = 0; i < fork_nfds; i++)
            ok = ok && fcntl(fork_fds[i], F_GETFD) == -1 && errno == EBADF;
        ok = ok && fork_nfds > 0 &&
             genauth_evloop_start(ev, &fast, NULL, on_done, &after, &call, &err) ==
                 GENAUTH_E_TRANSPORT &&
             strstr(err.message, "forked") != NULL && after.ended == 0;
        _exit(ok && check_failed == 0 ? 0 : 1);
    }
    CHECK(fork_pid > 0);
    run_until(ev, &ts, 3);
    CHECK(ts.ok == 3);
    for (int i = 0; fork_pid > 0 && i < 3000; i++) { /* 30 s at most */
        if (waitpid(fork_pid, &status, WNOHANG) == fork_pid)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (fork_pid > 0 && status == -1) {
        kill(fork_pid, SIGKILL);
        waitpid(fork_pid, &status, 0);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(genauth_evloop_start(ev, &fast, NULL, on_done, &after, &call, &err) ==
          GENAUTH_OK);
    run_until(ev, &after, 1);
    CHECK(after.ok == 1);
    CHECK(calls_served == served + 5); /* the parent's: 3 slow, 2 fast */
    engine_free(ev);
    cJSON_Delete((cJSON *)slow.params);
    cJSON_Delete((cJSON *)fast.params);
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
    ev = c ? engine_new(c) : NULL;
    if (c && ev) {
        test_many_calls_one_token(c, ev);
        test_retry_after_401(c, ev);
        test_get_endpoint(ev);
        test_bad_input_sends_nothing(c, ev);
        test_cancel_mid_flight(ev);
        test_close_ends_calls(c);
        test_waiting_call_keeps_its_deadline(c);
        test_throttled_call_sent_again(ev);
        test_resting_calls_cancelled_and_closed(c);
        test_kept_connection_closed_by_the_server(c);
        test_fork_in_a_done_callback(c);
    }
    if (ev)
        engine_free(ev);
    genauth_client_free(c);
    curl_global_cleanup();
    return check_summary("test_evloop");
}
