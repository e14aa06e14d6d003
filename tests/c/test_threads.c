/* Threads through the core: many threads calling one client across token
 * refreshes (forced by the test, not by the clock) and a close(), one
 * thread's call interrupted or timing out while the others go on, against a
 * small HTTP server in this process. Built plainly (make ctest), under
 * valgrind and with ThreadSanitizer (make ctest-tsan). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define THREADS 8
#define CALLS 40
#define MAX_CONNS 128

/* ---- the server --------------------------------------------------------- */

/* Payload {"scoped_userpool_id":"p?>~~~"}. */
#define TOKEN "eyJhbGciOiJIUzI1NiJ9.eyJzY29wZWRfdXNlcnBvb2xfaWQiOiJwPz5-fn4ifQ.sig"

static struct {
    int listen_fd;
    int port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    int conn_fds[MAX_CONNS];
    pthread_t conn_threads[MAX_CONNS];
    int conns;
    atomic_int token_fail; /* the token endpoint answers 500 */
    atomic_int token_hits, api_hits;
    atomic_int stalled; /* requests for webhook "stall": never answered */
    /* The token endpoint holds its answer while token_hold is set, and
     * answers 429 without Retry-After while token_throttle is. */
    atomic_int token_hold, token_throttle;
    /* The token it answers expires as it comes (expires_in 1e-300). */
    atomic_int token_tiny;
} srv;

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
answer(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, strlen(body));
    if (send_all(fd, head, (size_t)n) == 0)
        send_all(fd, body, strlen(body));
}

static void *
serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t r = recv(fd, buf + have, sizeof(buf) - have - 1, 0);
            if (r <= 0)
                return NULL;
            have += (size_t)r;
        }
        buf[have] = '\0';
        size_t head_len = (size_t)(end - buf) + 4;
        const char *cl = strcasestr(buf, "content-length:");
        size_t body_len = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        while (have < head_len + body_len) {
            ssize_t r = recv(fd, buf + have, sizeof(buf) - have - 1, 0);
            if (r <= 0)
                return NULL;
            have += (size_t)r;
        }
        if (strstr(buf, "get-management-token") &&
            strstr(buf, "get-management-token") < end) {
            atomic_fetch_add(&srv.token_hits, 1);
            while (atomic_load(&srv.token_hold))
                usleep(1000);
            if (atomic_load(&srv.token_throttle))
                answer(fd, 429, "{\"statusCode\":429,\"message\":\"slow\"}");
            else if (atomic_load(&srv.token_fail))
                answer(fd, 500, "{\"statusCode\":500,\"message\":\"down\"}");
            else if (atomic_load(&srv.token_tiny))
                answer(fd, 200,
                       "{\"statusCode\":200,\"data\":{\"access_token\":\"" TOKEN
                       "\",\"expires_in\":1e-300}}");
            else
                answer(fd, 200,
                       "{\"statusCode\":200,\"data\":{\"access_token\":\"" TOKEN
                       "\",\"expires_in\":3600}}");
        } else if (strstr(buf + head_len, "\"stall\"")) {
            /* Held until the client gives the connection up. */
            atomic_fetch_add(&srv.stalled, 1);
            while (recv(fd, buf, sizeof(buf), 0) > 0)
                ;
            return NULL;
        } else {
            atomic_fetch_add(&srv.api_hits, 1);
            answer(fd, 200,
                   "{\"statusCode\":200,\"message\":\"ok\","
                   "\"data\":{\"response\":{}}}");
        }
        memmove(buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
    }
}

static void *
accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_mutex_lock(&srv.mu);
        if (srv.conns == MAX_CONNS ||
            pthread_create(&srv.conn_threads[srv.conns], NULL, serve_conn,
                           (void *)(intptr_t)fd) != 0) {
            close(fd);
        } else {
            srv.conn_fds[srv.conns++] = fd;
        }
        pthread_mutex_unlock(&srv.mu);
    }
}

static int
server_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    pthread_mutex_init(&srv.mu, NULL);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv.listen_fd < 0 || bind(srv.listen_fd, (void *)&a, sizeof(a)) ||
        listen(srv.listen_fd, 64) ||
        getsockname(srv.listen_fd, (void *)&a, &len))
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.acceptor, NULL, accept_loop, NULL) ? -1 : 0;
}

static void
server_stop(void)
{
    shutdown(srv.listen_fd, SHUT_RDWR);
    pthread_join(srv.acceptor, NULL);
    close(srv.listen_fd);
    for (int i = 0; i < srv.conns; i++) {
        shutdown(srv.conn_fds[i], SHUT_RDWR);
        pthread_join(srv.conn_threads[i], NULL);
        close(srv.conn_fds[i]);
    }
    pthread_mutex_destroy(&srv.mu);
}

/* ---- the client side ---------------------------------------------------- */

/* max_retries < 0: the default. */
static genauth_client *
new_client_retries(double timeout, int max_retries)
{
    char host[64];
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_error err;
    genauth_error_init(&err);
    genauth_client_options_init(&o);
    snprintf(host, sizeof(host), "http://127.0.0.1:%d", srv.port);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    o.host = host;
    o.timeout = timeout;
    if (max_retries >= 0)
        o.max_retries = max_retries;
    if (genauth_client_new(&o, &c, &err) != GENAUTH_OK)
        fprintf(stderr, "client: %s\n", err.message);
    return c;
}

static genauth_client *
new_client_timeout(double timeout)
{
    return new_client_retries(timeout, -1);
}

static genauth_client *
new_client(void)
{
    return new_client_timeout(30);
}

static genauth_status
call_webhook(genauth_client *c, const char *webhook_id)
{
    genauth_trigger_webhook_req req = {webhook_id, strlen(webhook_id), NULL,
                                       NULL};
    genauth_envelope env;
    genauth_error err;
    genauth_envelope_init(&env);
    genauth_error_init(&err);
    genauth_status st = genauth_client_trigger_webhook(c, &req, &env, &err);
    if (st == GENAUTH_OK && env.status_code != 200)
        st = GENAUTH_E_DECODE;
    genauth_envelope_clear(&env);
    genauth_error_clear(&err);
    return st;
}

static genauth_status
call(genauth_client *c)
{
    return call_webhook(c, "wh1");
}

/* What the server would do to the client's token: make it due for an
 * early refresh (still valid), or expired. */
static void
age_token(genauth_client *c, int expired)
{
    pthread_mutex_lock(&c->tokens.mu);
    c->tokens.refresh_at = 0;
    if (expired)
        c->tokens.expires_at = 0;
    pthread_mutex_unlock(&c->tokens.mu);
}

typedef struct {
    genauth_client *client;
    atomic_int *calls_made;
    int closer; /* this thread closes the client midway */
    int ok, closed, other;
    int ok_after_closed;
} worker;

static void *
work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < CALLS; i++) {
        int n = atomic_fetch_add(w->calls_made, 1);
        /* Every 25th call overall ages the token, alternately due for a
         * refresh and expired. */
        if (n % 25 == 24)
            age_token(w->client, (n / 25) % 2);
        if (w->closer && i == CALLS / 2)
            genauth_client_close(w->client);
        genauth_status st = call(w->client);
        if (st == GENAUTH_OK) {
            w->ok++;
            if (w->closed)
                w->ok_after_closed++;
        } else if (st == GENAUTH_E_CLOSED) {
            w->closed++;
        } else {
            w->other++;
        }
    }
    return NULL;
}

static void
test_threads_through_refreshes_and_close(void)
{
    genauth_client *c = new_client();
    atomic_int calls_made;
    worker w[THREADS];
    pthread_t t[THREADS];
    atomic_init(&calls_made, 0);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(call(c) == GENAUTH_OK); /* the first token */
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.client = c, .calls_made = &calls_made,
                        .closer = i == 0};
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    int ok = 0, closed = 0, other = 0, ok_after_closed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
        closed += w[i].closed;
        other += w[i].other;
        ok_after_closed += w[i].ok_after_closed;
    }
    CHECK(other == 0);
    CHECK(ok_after_closed == 0); /* closed stays closed */
    CHECK(ok + closed == THREADS * CALLS);
    CHECK(w[0].closed == CALLS - CALLS / 2); /* the closer's own calls */
    CHECK(genauth_client_is_closed(c));
    /* The 25th call ages the token before the closer closes (it has made
     * CALLS / 2 calls by then, and THREADS * CALLS / 2 > 25): at least one
     * refresh followed the first fetch. */
    CHECK(genauth_client_token_fetches(c) >= 2);
    CHECK(genauth_client_token_fetch_failures(c) == 0);
    genauth_client_free(c);
}

static void *
call_ok(void *arg)
{
    intptr_t bad = 0;
    for (int i = 0; i < 10; i++)
        bad += call(arg) != GENAUTH_OK;
    return (void *)bad;
}

static void
test_failed_early_refresh_reaches_no_caller(void)
{
    genauth_client *c = new_client();
    pthread_t t[THREADS];
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(call(c) == GENAUTH_OK);
    CHECK(genauth_client_token_fetches(c) == 1);
    int hits = atomic_load(&srv.token_hits);
    atomic_store(&srv.token_fail, 1);
    double start = genauth_now();
    age_token(c, 0); /* due for a refresh, still valid */
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, call_ok, c) == 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        CHECK(bad == NULL); /* every call went on with the cached token */
    }
    int asked = atomic_load(&srv.token_hits) - hits;
    CHECK(asked >= 1);
    /* One attempt per GENAUTH_TOKEN_RETRY_INTERVAL at most. */
    CHECK(asked <= 1 + (int)((genauth_now() - start) /
                             GENAUTH_TOKEN_RETRY_INTERVAL));
    CHECK(genauth_client_token_fetch_failures(c) == (unsigned long)asked);
    CHECK(genauth_client_token_fetches(c) == 1);

    /* Expired: now the failure is the call's. */
    age_token(c, 1);
    CHECK(call(c) == GENAUTH_E_AUTH);
    atomic_store(&srv.token_fail, 0);
    CHECK(call(c) == GENAUTH_OK);
    CHECK(genauth_client_token_fetches(c) == 2);
    genauth_client_free(c);
}

/* The interrupt check says stop on the thread that set this only. */
static _Thread_local int stop_this_thread;

static int
stop_marked_thread(void *userdata)
{
    (void)userdata;
    return stop_this_thread;
}

typedef struct {
    genauth_client *client;
    int interrupt; /* 1: interrupted; 0: left to time out */
    genauth_status st;
    double took;
} staller;

static void *
stall(void *arg)
{
    staller *s = arg;
    stop_this_thread = s->interrupt;
    double start = genauth_now();
    s->st = call_webhook(s->client, "stall");
    s->took = genauth_now() - start;
    return NULL;
}

static void *
call_many(void *arg)
{
    intptr_t bad = 0;
    for (int i = 0; i < CALLS; i++)
        bad += call(arg) != GENAUTH_OK;
    return (void *)bad;
}

/* One thread's transfer never gets its answer and ends (interrupted, or at
 * its timeout, a timer any thread may run) while other threads keep calling
 * the same client: theirs all succeed, and it ends with its own error, in
 * time. */
static void
test_one_stalled_call_among_busy_threads(int interrupt)
{
    genauth_client *c = new_client_timeout(interrupt ? 30 : 1);
    pthread_t t[THREADS], st;
    staller s;
    CHECK(c != NULL);
    if (!c)
        return;
    genauth_client_set_interrupt(c, stop_marked_thread, NULL);
    CHECK(call(c) == GENAUTH_OK); /* the token */
    int stalled = atomic_load(&srv.stalled);
    s = (staller){.client = c, .interrupt = interrupt};
    CHECK(pthread_create(&st, NULL, stall, &s) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, call_many, c) == 0);
    for (int i = 0; i < THREADS; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        CHECK(bad == NULL);
    }
    pthread_join(st, NULL);
    CHECK(s.st == (interrupt ? GENAUTH_E_INTERRUPTED : GENAUTH_E_TIMEOUT));
    CHECK(s.took < 10.0); /* asked every 0.1 s; the timeout is 1 s */
    CHECK(atomic_load(&srv.stalled) == stalled + 1);
    /* Its connection was closed, not pooled: the next calls go on. */
    CHECK(call(c) == GENAUTH_OK);
    genauth_client_free(c);
}

/* ---- a batch's completion callback ------------------------------------- */

typedef struct {
    genauth_batch_item *items;
    size_t stop_after; /* stop the batch once told of this many, or 0 */
    size_t told, ok;
    size_t order[4];
} batch_seen;

/* Takes each outcome as its call ends: the item is cleared here. */
static int
take_outcome(void *userdata, size_t index)
{
    batch_seen *s = userdata;
    genauth_batch_item *it = &s->items[index];
    if (s->told < 4)
        s->order[s->told] = index;
    s->told++;
    s->ok += it->status == GENAUTH_OK && it->resp.has_status_code &&
             it->resp.status_code == 200;
    genauth_batch_item_clear(it);
    return s->stop_after && s->told >= s->stop_after;
}

/* genauth_client_batch as genauth.h promises it to a C caller: without a
 * callback every item keeps its outcome; with one, it is told of each call
 * once and may clear the item; one that returns nonzero stops the batch
 * (GENAUTH_E_INTERRUPTED for the calls in flight, of which it is not
 * told). Requests as trees and as written bodies alike. */
static void
test_batch_done_callback(void)
{
    genauth_client *c = new_client();
    cJSON *tree = cJSON_Parse("{\"webhookId\":\"wh1\"}");
    cJSON *written = cJSON_CreateRaw("{\"webhookId\":\"wh1\"}");
    cJSON *stall = cJSON_CreateRaw("{\"webhookId\":\"stall\"}");
    genauth_batch_item items[4];
    genauth_error err;
    genauth_status st;

    genauth_error_init(&err);
    CHECK(c && tree && written && stall);
    if (!c || !tree || !written || !stall)
        goto done;
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 4; i++) {
        items[i].req.op = GENAUTH_OP_TRIGGER_WEBHOOK;
        items[i].req.params = i % 2 ? written : tree;
    }
    st = genauth_client_batch(c, items, 4, 2, NULL, NULL, &err);
    CHECK(st == GENAUTH_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(items[i].status == GENAUTH_OK && items[i].resp.status_code == 200);
        genauth_batch_item_clear(&items[i]);
    }

    batch_seen s = {.items = items};
    st = genauth_client_batch(c, items, 4, 2, take_outcome, &s, &err);
    CHECK(st == GENAUTH_OK);
    CHECK(s.told == 4 && s.ok == 4);
    unsigned seen = 0;
    for (size_t i = 0; i < 4 && i < s.told; i++)
        seen |= 1u << s.order[i];
    CHECK(seen == 0xf); /* each once */
    for (int i = 0; i < 4; i++)
        CHECK(items[i].resp.doc == NULL && items[i].err == NULL);

    /* The first call ends; the two held by the server are in flight. */
    items[1].req.params = stall;
    items[2].req.params = stall;
    s = (batch_seen){.items = items, .stop_after = 1};
    st = genauth_client_batch(c, items, 3, 3, take_outcome, &s, &err);
    CHECK(st == GENAUTH_E_INTERRUPTED);
    CHECK(s.told == 1 && s.ok == 1 && s.order[0] == 0);
    CHECK(items[1].status == GENAUTH_E_INTERRUPTED &&
          items[2].status == GENAUTH_E_INTERRUPTED);
    for (int i = 0; i < 3; i++)
        genauth_batch_item_clear(&items[i]);
    genauth_error_clear(&err);
    CHECK(call(c) == GENAUTH_OK); /* the client goes on */
done:
    cJSON_Delete(stall);
    cJSON_Delete(written);
    cJSON_Delete(tree);
    genauth_client_free(c);
}

/* ---- fork() while other threads are inside the client ----------------- */

typedef struct {
    genauth_client *client;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int holding, release;
} lock_holder;

/* Takes the client's locks, as threads in the middle of calls have them,
 * and keeps them until told to let go. */
static void *
hold_locks(void *arg)
{
    lock_holder *h = arg;
    genauth_client *c = h->client;
    pthread_mutex_lock(&c->pool_mu);
    pthread_mutex_lock(&c->tokens.mu);
    pthread_mutex_lock(&c->batch_mu);
    pthread_mutex_lock(&c->share_mu[CURL_LOCK_DATA_DNS]);
    pthread_mutex_lock(&h->mu);
    h->holding = 1;
    pthread_cond_broadcast(&h->cond);
    while (!h->release)
        pthread_cond_wait(&h->cond, &h->mu);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&c->share_mu[CURL_LOCK_DATA_DNS]);
    pthread_mutex_unlock(&c->batch_mu);
    pthread_mutex_unlock(&c->tokens.mu);
    pthread_mutex_unlock(&c->pool_mu);
    return NULL;
}

/* What a forked child forgets of the client: the parent's connection and
 * share handle, leaked there on purpose (genauth_conn_abandon), kept
 * reachable from here because valgrind checks the child's memory too and
 * would fail it for that leak. */
static void *volatile parents_handles[2];

static void
watch_nothing(void *userdata, int fd, int events, int was)
{
    (void)userdata, (void)fd, (void)events, (void)was;
}

static void
time_nothing(void *userdata, int which, long ms)
{
    (void)userdata, (void)which, (void)ms;
}

static void
ended(void *userdata, genauth_status st, const genauth_envelope *resp,
      const genauth_error *err)
{
    (void)st, (void)resp, (void)err;
    *(int *)userdata = 1;
}

/* An event loop's engine, made in the child, starts a call with `c` (it
 * asks the token cache first) and is closed before the call goes out,
 * ending it. 1 when the call started and ended so. */
static int
engine_call(genauth_client *c)
{
    genauth_evloop_hooks hooks = {watch_nothing, time_nothing, NULL};
    genauth_evloop *ev = NULL;
    genauth_evcall *evcall = NULL;
    genauth_error err;
    int done = 0;
    genauth_request req = {GENAUTH_OP_GET_WEBHOOK_EVENT_LIST, NULL};
    genauth_error_init(&err);
    int ok = genauth_evloop_new(c, &hooks, &ev, &err) == GENAUTH_OK &&
             genauth_evloop_start(ev, &req, NULL, ended, &done, &evcall,
                                  &err) == GENAUTH_OK;
    genauth_evloop_free(ev);
    genauth_error_clear(&err);
    return ok && done;
}

/* Forks a child that makes `calls` calls with `c` and closes it (with
 * none, only frees it: a process that never used the client it inherited),
 * while the parent's other threads stay as the caller left them; with
 * `calls` -1, the child's first use of `c` is an event loop's call
 * (engine_call). 1 when the child did so; 0 when a call failed or the child
 * was stuck (on a lock it inherited, say: SIGALRM ends it, or the parent
 * after 30 s). */
static int
child_uses_client(genauth_client *c, int calls)
{
    int status = -1;
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        alarm(20);
        parents_handles[0] = c->idle;
        parents_handles[1] = c->share;
        if (calls < 0)
            ok = engine_call(c);
        for (int i = 0; i < calls; i++)
            ok = ok && call(c) == GENAUTH_OK;
        if (calls)
            genauth_client_close(c);
        genauth_client_free(c);
        _exit(ok ? 0 : 1);
    }
    if (pid < 0)
        return 0;
    for (int i = 0; i < 3000; i++) { /* 30 s at most */
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 0;
}

/* The child of a fork() made while another thread held every lock of the
 * client (which that thread never lets go of there) makes calls and closes
 * the client: its first use adopts the client, taking none of those locks
 * first. It used to wait for ever on the pool's lock. */
static void
test_fork_while_another_thread_holds_the_clients_locks(void)
{
    genauth_client *c = new_client();
    lock_holder h = {.client = c};
    pthread_t t;

    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(call(c) == GENAUTH_OK); /* a token and a kept connection */
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cond, NULL);
    CHECK(pthread_create(&t, NULL, hold_locks, &h) == 0);
    pthread_mutex_lock(&h.mu);
    while (!h.holding)
        pthread_cond_wait(&h.cond, &h.mu);
    pthread_mutex_unlock(&h.mu);

    CHECK(child_uses_client(c, 2));
    CHECK(child_uses_client(c, 0));
    CHECK(child_uses_client(c, -1));

    pthread_mutex_lock(&h.mu);
    h.release = 1;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
    CHECK(call(c) == GENAUTH_OK); /* the parent's client goes on */
    pthread_cond_destroy(&h.cond);
    pthread_mutex_destroy(&h.mu);
    genauth_client_free(c);
}

typedef struct {
    genauth_client *client;
    int waiting, release; /* under client->tokens.mu */
} token_waiter;

/* Waits on the token cache's condition variable, as a call waiting for
 * another thread's token fetch does, until told to stop. */
static void *
wait_for_token(void *arg)
{
    token_waiter *w = arg;
    genauth_token_cache *t = &w->client->tokens;
    pthread_mutex_lock(&t->mu);
    w->waiting = 1;
    while (!w->release)
        pthread_cond_wait(&t->changed, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* The child of a fork() made while another thread waited for a token fetch
 * makes calls (fetching a token) and frees the client, or only frees it:
 * the waiter the condition variable counts is not in the child, and glibc's
 * pthread_cond_destroy waited for it for ever unless the child made the
 * variable afresh. */
static void
test_fork_while_another_thread_waits_for_a_token(void)
{
    genauth_client *c = new_client();
    token_waiter w = {.client = c};
    pthread_t t;
    int waiting = 0;

    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(call(c) == GENAUTH_OK);
    age_token(c, 1); /* the child's call fetches */
    CHECK(pthread_create(&t, NULL, wait_for_token, &w) == 0);
    for (int i = 0; !waiting && i < 1000; i++) {
        pthread_mutex_lock(&c->tokens.mu);
        waiting = w.waiting; /* then inside pthread_cond_wait */
        pthread_mutex_unlock(&c->tokens.mu);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK(waiting);
    /* Time to block in the kernel, where glibc counts it. */
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);

    CHECK(child_uses_client(c, 2));
    CHECK(child_uses_client(c, 0));

    pthread_mutex_lock(&c->tokens.mu);
    w.release = 1;
    pthread_cond_broadcast(&c->tokens.changed);
    pthread_mutex_unlock(&c->tokens.mu);
    pthread_join(t, NULL);
    CHECK(call(c) == GENAUTH_OK);
    genauth_client_free(c);
}

/* ---- genauth_global_init from many threads ---------------------------- */

static void *
global_init_again(void *arg)
{
    genauth_error err;
    genauth_error_init(&err);
    *(genauth_status *)arg = genauth_global_init(&err);
    genauth_error_clear(&err);
    return NULL;
}

/* Each interpreter that imports the module initialises the core, two with
 * a GIL each at the same time: every call succeeds (ThreadSanitizer sees
 * them all), and the work is done once: a fork counts one generation, not
 * one per call (a fork handler registered by each). */
static void
test_global_init_from_many_threads_is_done_once(void)
{
    enum { N = 8 };
    pthread_t threads[N];
    genauth_status got[N];
    int started = 0, status = -1;

    for (int i = 0; i < N; i++)
        if (pthread_create(&threads[i], NULL, global_init_again, &got[i]) ==
            0)
            started++;
        else
            break;
    CHECK(started == N);
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        CHECK(got[i] == GENAUTH_OK);
    }
    unsigned long before = genauth_fork_generation();
    pid_t pid = fork();
    if (pid == 0)
        _exit(genauth_fork_generation() == before + 1 ? 0 : 1);
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- a batch's call that waited for another thread's fetch ------------- */

/* The client's interrupt check, which a call waiting for another thread's
 * token fetch asks as it waits: on this (the test's) thread, that is where
 * it is, and the held fetch may answer. */
static pthread_t waiting_thread;

static int
release_when_it_waits(void *userdata)
{
    (void)userdata;
    if (pthread_equal(pthread_self(), waiting_thread))
        atomic_store(&srv.token_hold, 0);
    return 0;
}

static atomic_int single_call_ended;

static void *
single_call(void *arg)
{
    call((genauth_client *)arg);
    atomic_store(&single_call_ended, 1);
    return NULL;
}

/* Starts a call on thread *t whose token fetch the server holds until this
 * thread's next call waits for it. Returns once that fetch has reached the
 * server (or the call failed before: the caller's checks then say so). */
static void
start_held_fetch(genauth_client *c, pthread_t *t)
{
    waiting_thread = pthread_self();
    genauth_client_set_interrupt(c, release_when_it_waits, NULL);
    atomic_store(&srv.token_hits, 0);
    atomic_store(&single_call_ended, 0);
    atomic_store(&srv.token_hold, 1);
    CHECK(pthread_create(t, NULL, single_call, c) == 0);
    while (atomic_load(&srv.token_hits) == 0 &&
           !atomic_load(&single_call_ended))
        usleep(1000);
}

/* A batch's call that waited for a fetch another thread made shares its
 * failure, as a single call that waited does, whatever retry.c makes of it
 * (here a 429 without Retry-After: the call's retry, with max_retries=0
 * none): it does not ask the endpoint again at once. It asked again: the
 * check for a batch's queued calls (a failure for good only) replaced the
 * one for calls that waited. */
static void
test_a_batch_call_that_waited_for_a_fetch_shares_its_failure(void)
{
    genauth_client *c = new_client_retries(30, 0);
    genauth_error err;
    genauth_batch_item item;
    pthread_t t;
    cJSON *params = cJSON_Parse("{\"webhookId\":\"wh1\"}");

    genauth_error_init(&err);
    CHECK(c && params);
    if (!c || !params)
        goto done;
    atomic_store(&srv.token_throttle, 1);
    start_held_fetch(c, &t);
    memset(&item, 0, sizeof(item));
    item.req.op = GENAUTH_OP_TRIGGER_WEBHOOK;
    item.req.params = params;
    CHECK(genauth_client_batch(c, &item, 1, 1, NULL, NULL, &err) ==
          GENAUTH_OK);
    pthread_join(t, NULL);
    CHECK(atomic_load(&srv.token_hold) == 0); /* the batch's call waited */
    CHECK(item.status == GENAUTH_E_AUTH);
    CHECK(atomic_load(&srv.token_hits) == 1);
    genauth_batch_item_clear(&item);
done:
    atomic_store(&srv.token_hold, 0);
    atomic_store(&srv.token_throttle, 0);
    cJSON_Delete(params);
    genauth_client_free(c);
}

/* ---- a token that expires as it comes --------------------------------- */

/* A call that waited for another thread's fetch shares its outcome, also a
 * token whose expires_in (1e-300 s) it outlived as it came: it sends that
 * token, as the fetching call does and as the calls an event loop queued
 * behind its fetch do, rather than fetching one of its own. It fetched. */
static void
test_a_waiter_shares_a_token_expiring_as_it_comes(void)
{
    genauth_client *c = new_client();
    pthread_t t;

    CHECK(c != NULL);
    if (!c)
        return;
    atomic_store(&srv.token_tiny, 1);
    start_held_fetch(c, &t);
    CHECK(call(c) == GENAUTH_OK);
    pthread_join(t, NULL);
    CHECK(atomic_load(&srv.token_hold) == 0); /* this call waited */
    CHECK(atomic_load(&srv.token_hits) == 1);
    CHECK(genauth_client_token_fetches(c) == 1);
    atomic_store(&srv.token_hold, 0);
    atomic_store(&srv.token_tiny, 0);
    genauth_client_free(c);
}

int
main(void)
{
    genauth_error err;
    genauth_error_init(&err);
    if (genauth_global_init(&err) != GENAUTH_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_global_init_from_many_threads_is_done_once();
    if (server_start() != 0) {
        perror("test_threads: server");
        return 1;
    }
    test_threads_through_refreshes_and_close();
    test_failed_early_refresh_reaches_no_caller();
    test_one_stalled_call_among_busy_threads(1);
    test_one_stalled_call_among_busy_threads(0);
    test_batch_done_callback();
    test_a_batch_call_that_waited_for_a_fetch_shares_its_failure();
    test_a_waiter_shares_a_token_expiring_as_it_comes();
    test_fork_while_another_thread_holds_the_clients_locks();
    test_fork_while_another_thread_waits_for_a_token();
    server_stop();
    curl_global_cleanup();
    return check_summary("test_threads");
}
