/* Calls driven by the caller's event loop: one libcurl multi handle in its
 * socket mode (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION forwarded to the
 * caller's hooks, curl_multi_socket_action when the loop says a socket or
 * the timer is due). A call goes through request.c's steps (internal.h),
 * as a batch's does (batch.c); the token is fetched as one more transfer
 * on the same multi handle, once for every call that waits for it, so
 * nothing here ever blocks. A call that retry.c sends again (nothing was
 * sent, or throttled) rests until its retry time, kept by the same timer:
 * no sleeping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Which of ev's lists a call is on. */
enum { ON_CALLS, ON_WAITING, ON_RESTING };

/* Whether this process is a child forked since the engine was made; if so
 * the engine gives up, once (give_up). */
static int forked(genauth_evloop *ev);

/* One socket libcurl told of. `loop`: what the hook watches it for;
 * `curl`: what libcurl wants (0 once it said CURL_POLL_REMOVE). A kept-alive
 * connection's socket stays watched for reading between its transfers
 * (`loop` READ, `curl` 0): the next transfer on it costs the event loop no
 * registration, and an idle connection still wakes it only if the server
 * sends something, which is its close. */
typedef struct {
    int fd; /* -1: a free slot */
    unsigned char loop, curl;
    /* Which socket fd was when libcurl told of it, so that a child forked
     * since closes only that one (give_up). */
    genauth_file_id id;
} ev_sock;

struct genauth_evcall {
    genauth_evloop *ev;
    genauth_request req;             /* borrowed from the caller */
    genauth_conn *conn;              /* while in the multi handle */
    double started;
    double deadline;
    unsigned long generation;
    int attempt;                     /* 1 after the retry for a 401 */
    int retries;                     /* retry.c's */
    double not_before;               /* while resting: its retry time */
    /* A batch's call: genauth_token_mark_now().completed when it was
     * queued. */
    int queued;
    unsigned long token_queued;
    /* Resting because no file descriptor was free: it goes out again when
     * another transfer ends (its connection then reusable, or closed), or
     * at its deadline, to time out. */
    int fd_wait;
    int where;                       /* ON_CALLS, ... */
    int added;                       /* conn's handle is in ev->multi */
    genauth_evcall_done_fn done;
    void *userdata;
    genauth_evcall *prev, *next;     /* the list `where` names */
};

struct genauth_evloop {
    genauth_client *client;
    CURLM *multi;
    genauth_kept kept;               /* multi's connections */
    genauth_evloop_hooks hooks;
    genauth_evcall *calls;           /* in flight */
    genauth_evcall *waiting;         /* for the token, oldest first */
    genauth_evcall *waiting_tail;
    genauth_evcall *resting;         /* until their retry time */
    size_t fd_waiting;               /* resting calls with fd_wait set */
    size_t count;                    /* calls started, not yet ended */
    size_t transfers;                /* easy handles in `multi` */
    genauth_conn *token_conn;        /* the token fetch in flight, or NULL */
    int token_added;
    double token_started;
    genauth_conn *idle;              /* handles kept for the next calls */
    size_t idle_count;
    /* The timers serve libcurl (curl_at: when it wants it, or -1), the
     * calls waiting for the token, each bounded by its own deadline, and
     * the resting calls' retry times. GENAUTH_EV_SOON runs what is due now
     * (a transfer just added); GENAUTH_EV_LATER waits for the earliest
     * time wanted later, and outlives the SOON ones between transfers: it
     * is moved only to an earlier time. A timer that fires early runs
     * libcurl's timeouts for nothing, and the earliest time then wanted is
     * armed again. */
    double curl_at;
    int soon_armed;
    double later_at;                 /* what LATER is armed for, or -1 */
    /* The sockets the hook watches, and what libcurl wants of each. */
    ev_sock *socks;                  /* open addressing, fd -1: free */
    size_t socks_cap;                /* a power of 2, or 0 */
    size_t socks_used;
    int closed;
    /* genauth_fork_generation() when the engine was made; given_up once a
     * child forked since has left everything to the parent (give_up). */
    unsigned long generation;
    int given_up;
    /* Then: the parent's multi handle and handles, never used, closed or
     * freed here; listed rather than dropped, so that what libcurl holds
     * for them stays reachable (for valgrind, a debugger). */
    CURLM *parents_multi;
    genauth_conn *parents;
};

int
genauth_curl_async_dns(void)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    return info && (info->features & CURL_VERSION_ASYNCHDNS) != 0;
}

/* ---- the sockets watched --------------------------------------------- */

/* ev->socks: open addressing on the fd (fds are small and dense, so the fd
 * is its own hash), linear probing, deletion by backward shift. */
static ev_sock *
sock_find(const genauth_evloop *ev, int fd)
{
    /* Free slots hold fd -1: a negative fd is never in the table. */
    if (!ev->socks_cap || fd < 0)
        return NULL;
    size_t mask = ev->socks_cap - 1;
    for (size_t i = (size_t)fd & mask;; i = (i + 1) & mask) {
        if (ev->socks[i].fd == fd)
            return &ev->socks[i];
        if (ev->socks[i].fd < 0)
            return NULL;
    }
}

/* A new entry for fd (not in the table), or NULL when out of memory. */
static ev_sock *
sock_add(genauth_evloop *ev, int fd)
{
    if ((ev->socks_used + 1) * 2 > ev->socks_cap) {
        size_t cap = ev->socks_cap ? ev->socks_cap * 2 : 16;
        ev_sock *old = ev->socks, *socks = malloc(cap * sizeof(*socks));
        if (!socks)
            return NULL;
        for (size_t i = 0; i < cap; i++)
            socks[i] = (ev_sock){.fd = -1};
        for (size_t i = 0; i < ev->socks_cap; i++) {
            if (old[i].fd < 0)
                continue;
            size_t j = (size_t)old[i].fd & (cap - 1);
            while (socks[j].fd >= 0)
                j = (j + 1) & (cap - 1);
            socks[j] = old[i];
        }
        free(old);
        ev->socks = socks;
        ev->socks_cap = cap;
    }
    size_t mask = ev->socks_cap - 1, i = (size_t)fd & mask;
    while (ev->socks[i].fd >= 0)
        i = (i + 1) & mask;
    ev_sock *s = &ev->socks[i];
    s->fd = fd;
    s->loop = s->curl = 0;
    s->id = genauth_file_id_of(fd);
    ev->socks_used++;
    return s;
}

static void
sock_del(genauth_evloop *ev, ev_sock *s)
{
    size_t mask = ev->socks_cap - 1, hole = (size_t)(s - ev->socks);
    ev->socks[hole].fd = -1;
    ev->socks_used--;
    /* Moves back the entries after the hole that probed past it. */
    for (size_t i = (hole + 1) & mask; ev->socks[i].fd >= 0;
         i = (i + 1) & mask) {
        size_t home = (size_t)ev->socks[i].fd & mask;
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            ev->socks[hole] = ev->socks[i];
            ev->socks[i].fd = -1;
            hole = i;
        }
    }
}

/* The hook watches s->fd for `events` from now on; an entry that neither
 * the loop nor libcurl needs is dropped. */
static void
sock_watch(genauth_evloop *ev, ev_sock *s, int events)
{
    int fd = s->fd, was = s->loop;
    s->loop = (unsigned char)events;
    if (!events && !s->curl)
        sock_del(ev, s);
    if (was != events)
        ev->hooks.watch(ev->hooks.userdata, fd, events, was);
}

/* Whether fd is the socket of the connection that `easy`'s transfer kept:
 * one whose close libcurl tells through on_close. (Its resolver's socket
 * pair, also watched while a name resolves, is closed without telling.) */
static int
kept_connection(CURL *easy, curl_socket_t fd)
{
    curl_socket_t active = CURL_SOCKET_BAD;
    return curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &active) ==
               CURLE_OK &&
           active == fd;
}

/* ---- libcurl's hooks, forwarded ---------------------------------------- */

static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)socketp;
    genauth_evloop *ev = userp;
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= GENAUTH_EV_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= GENAUTH_EV_WRITE;
    ev_sock *s = sock_find(ev, (int)fd);
    if (!s && !events)
        return 0;
    if (!s && !(s = sock_add(ev, (int)fd))) {
        /* No memory for the table: nothing can be watched. libcurl then
         * fails every transfer of the handle (each call raises), rather
         * than leaving any to wait for an event that cannot come. */
        return -1;
    }
    s->curl = (unsigned char)events;
    /* The transfer ended and its connection is kept: it stays watched for
     * reading (never for writing, which an idle socket always is). */
    if (!events && (s->loop & GENAUTH_EV_READ) && kept_connection(easy, fd))
        events = GENAUTH_EV_READ;
    sock_watch(ev, s, events);
    /* The hook ran caller code (the loop's own, or a signal handler run by
     * it) that may have forked. In the child libcurl must stop here, in the
     * middle of its action, rather than go on to the next transfer due,
     * which would send on a connection of the parent's: -1 makes it return
     * at once (libcurl 7.84 and later; the engine gives up as it returns). */
    return genauth_forked_since(ev->generation) ? -1 : 0;
}

/* CURLOPT_CLOSESOCKETFUNCTION of every handle here: a kept socket stops
 * being watched before its fd is closed (and may be reused). */
static int
on_close(void *clientp, curl_socket_t fd)
{
    genauth_evloop *ev = clientp;
    ev_sock *s = sock_find(ev, (int)fd);
    if (s) {
        s->curl = 0;
        sock_watch(ev, s, 0);
    }
    return close(fd);
}

/* The hook's timers, for `at` (monotonic seconds; -1: nothing wanted).
 * What is armed earlier is kept (see later_at). */
static void
want_timer(genauth_evloop *ev, double at)
{
    if (at < 0) {
        if (ev->soon_armed) {
            ev->soon_armed = 0;
            ev->hooks.timer(ev->hooks.userdata, GENAUTH_EV_SOON, -1);
        }
        if (ev->later_at >= 0) {
            ev->later_at = -1;
            ev->hooks.timer(ev->hooks.userdata, GENAUTH_EV_LATER, -1);
        }
        return;
    }
    double left = ceil((at - genauth_now()) * 1000.0);
    if (left <= 0) {
        if (!ev->soon_armed) {
            ev->soon_armed = 1;
            ev->hooks.timer(ev->hooks.userdata, GENAUTH_EV_SOON, 0);
        }
        return;
    }
    /* SOON fires first, and what is wanted then is armed then. */
    if (ev->soon_armed || (ev->later_at >= 0 && ev->later_at <= at))
        return;
    ev->later_at = at;
    ev->hooks.timer(ev->hooks.userdata, GENAUTH_EV_LATER, (long)left);
}

/* The earliest of libcurl's timer, the deadlines of the calls waiting for
 * the token (a call retried after a 401 may join a fetch that a later call
 * started, bounded by that call's later deadline) and the resting calls'
 * retry times. */
static void
arm_timer(genauth_evloop *ev)
{
    double at = ev->curl_at;

    for (const genauth_evcall *w = ev->waiting; w; w = w->next) {
        if (at < 0 || w->deadline < at)
            at = w->deadline;
    }
    for (const genauth_evcall *r = ev->resting; r; r = r->next) {
        if (at < 0 || r->not_before < at)
            at = r->not_before;
    }
    want_timer(ev, at);
}

static int
on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    genauth_evloop *ev = userp;
    ev->curl_at = timeout_ms < 0 ? -1 : genauth_now() + timeout_ms / 1000.0;
    if (ev->waiting || ev->resting)
        arm_timer(ev);
    else
        want_timer(ev, ev->curl_at);
    return 0;
}

/* ---- handles ----------------------------------------------------------- */

/* A handle for one transfer: a kept one, or a new one. Its connection lives
 * in ev->multi's cache, not in the handle, so any handle will do. */
static genauth_conn *
conn_take(genauth_evloop *ev, genauth_error *err)
{
    genauth_conn *conn = ev->idle;
    if (conn) {
        ev->idle = conn->next;
        ev->idle_count--;
        conn->next = NULL;
        return conn;
    }
    conn = genauth_conn_new(ev->client, err);
    if (conn &&
        (curl_easy_setopt(conn->easy, CURLOPT_CLOSESOCKETFUNCTION, on_close) !=
             CURLE_OK ||
         curl_easy_setopt(conn->easy, CURLOPT_CLOSESOCKETDATA, ev) !=
             CURLE_OK)) {
        genauth_conn_free(conn);
        genauth_error_set(err, GENAUTH_E_TRANSPORT,
                          "libcurl refused CURLOPT_CLOSESOCKETFUNCTION");
        return NULL;
    }
    return conn;
}

static void
conn_give(genauth_evloop *ev, genauth_conn *conn)
{
    if (ev->closed || ev->idle_count >= GENAUTH_EV_MAX_CONNECTIONS) {
        genauth_conn_free(conn);
        return;
    }
    genauth_conn_shed(conn);
    conn->next = ev->idle;
    ev->idle = conn;
    ev->idle_count++;
}

/* *added says whether conn's handle is in ev->multi. */
static CURLMcode
add_transfer(genauth_evloop *ev, genauth_conn *conn, int *added)
{
    conn->kept = &ev->kept;
    CURLMcode mc = curl_multi_add_handle(ev->multi, conn->easy);
    if (mc == CURLM_OK) {
        ev->transfers++;
        *added = 1;
    }
    return mc;
}

/* One turn of libcurl's: curl_multi_socket_action, for fd or the timer
 * (CURL_SOCKET_TIMEOUT). */
static void
act(genauth_evloop *ev, curl_socket_t fd, int flags)
{
    int running = 0;
    genauth_kept_turn(&ev->kept);
    curl_multi_socket_action(ev->multi, fd, flags, &running);
}

static void
remove_transfer(genauth_evloop *ev, genauth_conn *conn, int *added)
{
    if (!*added)
        return;
    curl_multi_remove_handle(ev->multi, conn->easy);
    ev->transfers--;
    *added = 0;
}

/* A transfer has ended on conn: its connection noted (genauth_kept), and
 * 1 if it was stopped before sending on a stale one and is in flight again
 * on a new one. If it cannot be added again, *result says so. */
static int
run_again_if_stale(genauth_evloop *ev, genauth_conn *conn, CURLcode *result)
{
    genauth_conn_note_kept(conn);
    if (!genauth_conn_rerun_stale(conn, *result))
        return 0;
    /* Still counted in ev->transfers and its call's `added`: its done
     * handler takes it off as it would any ended transfer. */
    curl_multi_remove_handle(ev->multi, conn->easy);
    if (curl_multi_add_handle(ev->multi, conn->easy) == CURLM_OK)
        return 1;
    *result = CURLE_OUT_OF_MEMORY;
    return 0;
}

/* libcurl disarms its timer only when it runs and finds nothing to do; a
 * transfer removed by hand leaves it armed, and the loop would wake once
 * for nothing. With no transfer left, let it find that out now: after a
 * timeout action libcurl tells the timer it still has, if any. */
static void
settle(genauth_evloop *ev)
{
    if (ev->transfers == 0 && ev->multi && ev->curl_at >= 0) {
        ev->curl_at = -1;
        act(ev, CURL_SOCKET_TIMEOUT, 0);
        if (!forked(ev)) /* a hook forked in there: the child gave up */
            arm_timer(ev);
    }
}

/* ---- the lists ---------------------------------------------------------- */

static genauth_evcall **
list_of(genauth_evloop *ev, int where)
{
    return where == ON_WAITING   ? &ev->waiting
           : where == ON_RESTING ? &ev->resting
                                 : &ev->calls;
}

/* Onto ev->calls or ev->resting (unordered lists). */
static void
link_call(genauth_evloop *ev, genauth_evcall *call, int where)
{
    genauth_evcall **head = list_of(ev, where);
    call->where = where;
    call->prev = NULL;
    call->next = *head;
    if (*head)
        (*head)->prev = call;
    *head = call;
}

/* Off its list; it counts as on ev->calls until linked elsewhere. */
static void
unlink_call(genauth_evloop *ev, genauth_evcall *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        *list_of(ev, call->where) = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else if (call->where == ON_WAITING)
        ev->waiting_tail = call->prev;
    if (call->fd_wait) {
        call->fd_wait = 0;
        ev->fd_waiting--;
    }
    call->where = ON_CALLS;
    call->prev = call->next = NULL;
}

static void
queue_call(genauth_evloop *ev, genauth_evcall *call)
{
    call->where = ON_WAITING;
    call->next = NULL;
    call->prev = ev->waiting_tail;
    if (ev->waiting_tail)
        ev->waiting_tail->next = call;
    else
        ev->waiting = call;
    ev->waiting_tail = call;
}

/* Takes the call out of libcurl and the lists, its handle kept for reuse,
 * and frees it. A transfer removed before it ended has its connection
 * closed by libcurl (an HTTP/1 connection in mid-request cannot be reused). */
static void
drop_call(genauth_evloop *ev, genauth_evcall *call)
{
    if (call->conn) {
        remove_transfer(ev, call->conn, &call->added);
        conn_give(ev, call->conn);
        call->conn = NULL;
    }
    unlink_call(ev, call);
    ev->count--;
    free(call);
}

/* The call ended: its figures recorded, its callback, then it is gone.
 * `resp`: NULL unless st is GENAUTH_OK. */
static void
end_call(genauth_evloop *ev, genauth_evcall *call, genauth_status st,
         genauth_envelope *resp, genauth_error *err)
{
    genauth_call_record(resp, err, call->started,
                        (unsigned)(call->attempt + call->retries));
    genauth_evcall_done_fn done = call->done;
    void *userdata = call->userdata;
    drop_call(ev, call);
    done(userdata, st, resp, err);
    /* The callback (the call's log line) may have forked: a child gives up
     * here, and the caller's loop over calls stops at ev->closed. */
    forked(ev);
}

/* Ends every call of the engine with `err`. A callback may start calls
 * meanwhile (the engine is closed then: they fail to start). */
static void
end_all(genauth_evloop *ev, genauth_status st, genauth_error *err)
{
    while (ev->calls || ev->waiting || ev->resting) {
        genauth_evcall *call = ev->calls     ? ev->calls
                               : ev->waiting ? ev->waiting
                                             : ev->resting;
        end_call(ev, call, st, NULL, err);
    }
}

/* ---- fork() ---------------------------------------------------------------
 *
 * Caller code runs while calls wait: a task of the loop, a log handler (a
 * call's line, the token fetch's), a signal handler. If it forks, the child
 * holds a copy of the engine whose every part is the parent's, in use
 * there: the multi handle, its connections, the sockets the loop watches.
 * Worse, the child's event loop, if it goes on, watches them through the
 * parent's own epoll set (asyncio's selector after fork()): it would wake
 * for the parent's answers, and what it registers or unregisters there
 * changes the parent's set. The engine checks wherever it runs again
 * (each entry from the loop or the caller, each done callback's return),
 * and a child gives up everything at once (give_up). */

/* Ends the engine's calls, in a child forked since it was made, with
 * genauth_client_check_fork's error (which adopts the client there: its
 * pool and locks made afresh). */
static void
end_forked(genauth_evloop *ev)
{
    genauth_error err;
    genauth_error_init(&err);
    genauth_status st =
        genauth_client_check_fork(ev->client, ev->generation, &err);
    end_all(ev, st, &err);
    genauth_error_clear(&err);
}

/* Whether s->fd is still the socket libcurl told of: not one that the
 * process closed and opened anew since the fork. */
static int
sock_unchanged(const ev_sock *s)
{
    return genauth_file_id_is(s->fd, &s->id);
}

/* A handle of the parent's (a child forked since the engine was made):
 * abandoned, and listed in ev->parents. */
static void
leave_to_parent(genauth_evloop *ev, genauth_conn *conn)
{
    if (!conn)
        return;
    genauth_conn_abandon(conn);
    conn->next = ev->parents;
    ev->parents = conn;
}

/* In a child forked since the engine was made: everything is left to the
 * parent, and every call ends (end_forked). Nothing is removed
 * from the multi handle or cleaned up: libcurl would close the parent's
 * connections (a TLS one with a close_notify on the wire), or read from
 * them. The loop must forget the sockets, but unwatching one still open
 * here (EPOLL_CTL_DEL) would take it out of the parent's epoll set too: the
 * child's descriptor is closed first (the parent's keeps the connection
 * open, so no FIN is sent), after which the loop's unwatching fails
 * (EBADF) without touching anything of the parent's. */
static void
give_up(genauth_evloop *ev)
{
    ev->given_up = ev->closed = 1;
    for (int where = ON_CALLS; where <= ON_RESTING; where++) {
        for (genauth_evcall *c = *list_of(ev, where); c; c = c->next) {
            leave_to_parent(ev, c->conn);
            c->conn = NULL;
            c->added = 0;
        }
    }
    leave_to_parent(ev, ev->token_conn);
    ev->token_conn = NULL;
    ev->token_added = 0;
    while (ev->idle) {
        genauth_conn *next = ev->idle->next;
        leave_to_parent(ev, ev->idle);
        ev->idle = next;
    }
    ev->idle_count = 0;
    ev->parents_multi = ev->multi;
    ev->multi = NULL;
    ev->transfers = 0;
    for (size_t i = 0; i < ev->socks_cap; i++) {
        const ev_sock *s = &ev->socks[i];
        if (s->fd < 0 || !s->loop || !sock_unchanged(s))
            continue;
        /* On Linux the descriptor is gone whatever close() returns. */
        (void)close(s->fd);
        ev->hooks.watch(ev->hooks.userdata, s->fd, 0, s->loop);
    }
    free(ev->socks);
    ev->socks = NULL;
    ev->socks_cap = ev->socks_used = 0;
    want_timer(ev, -1);
    end_forked(ev);
}

static int
forked(genauth_evloop *ev)
{
    if (!genauth_forked_since(ev->generation))
        return 0;
    /* Once; and an engine closed before the fork holds nothing. */
    if (ev->multi)
        give_up(ev);
    return 1;
}

/* ---- the token ----------------------------------------------------------- */

/* Starts the token fetch, bounded by `deadline` (the first waiting call's,
 * or for an `early` refresh, which no call waits for, half the time the
 * call that started it has left, as in the sync client). */
static genauth_status
token_start(genauth_evloop *ev, double deadline, int early,
            genauth_error *err)
{
    genauth_client *c = ev->client;
    genauth_conn *conn = conn_take(ev, err);
    genauth_status st;

    if (!conn)
        return err->status;
    genauth_token_begin(c);
    ev->token_started = genauth_now();
    if (early)
        deadline = ev->token_started + (deadline - ev->token_started) / 2;
    genauth_call_plan plan = {
        .is_get = 0,
        .url = c->token_url,
        .headers = c->token_headers,
    };
    st = genauth_token_request_load(c, conn, err);
    if (st == GENAUTH_OK)
        st = genauth_conn_setup(conn, &plan, deadline, err);
    if (st == GENAUTH_OK) {
        curl_easy_setopt(conn->easy, CURLOPT_PRIVATE, NULL);
        if (add_transfer(ev, conn, &ev->token_added) != CURLM_OK)
            st = genauth_error_set(err, GENAUTH_E_NOMEM,
                                   "could not start the transfer");
    }
    if (st != GENAUTH_OK) {
        /* The request buffer may hold the secret. */
        genauth_token_accept(c, conn, st, 0, 0, err);
        conn_give(ev, conn);
        return st;
    }
    ev->token_conn = conn;
    return GENAUTH_OK;
}

static genauth_status launch(genauth_evloop *ev, genauth_evcall *call,
                             genauth_error *err);

/* The call waits for its retry time (`until`) on ev->resting. */
static void
rest_call(genauth_evloop *ev, genauth_evcall *call, double until)
{
    unlink_call(ev, call);
    call->not_before = until;
    link_call(ev, call, ON_RESTING);
    want_timer(ev, until);
}

/* The call goes out now, or waits for the token fetch (started if none is
 * in flight). Past the refresh point a valid token still serves: the call
 * goes out with it while one early refresh runs, whose failure reaches no
 * caller (token.c's rules). `starting`: genauth_evloop_start's call, whose
 * failure here fails the start rather than ending the call. */
static genauth_status
submit(genauth_evloop *ev, genauth_evcall *call, int starting,
       genauth_error *err)
{
    genauth_client *c = ev->client;
    genauth_token_need need = c->auth == GENAUTH_AUTH_TOKEN
                                  ? genauth_token_check(c)
                                  : GENAUTH_TOKEN_USE;
    double asked_until = 0, until = 0;
    int throttled = 0;
    if (need == GENAUTH_TOKEN_WAIT && !ev->token_conn &&
        ((throttled = genauth_token_throttled(c, &asked_until, err)) ||
         (call->queued &&
          genauth_token_failed_since(c, call->token_queued, err)))) {
        /* token.c's rules: the call shares the throttled fetch's refusal,
         * and its retry waits for the time that fetch's answer named; a
         * batch's call shares the failure of a fetch that ended since it
         * was queued and will not be retried. */
        if (throttled &&
            genauth_retry_plan_asked(c, GENAUTH_RETRY_THROTTLED,
                                     call->retries, call->deadline,
                                     asked_until - genauth_now(), &until)) {
            genauth_error_clear(err);
            call->retries++;
            rest_call(ev, call, until);
            return GENAUTH_OK;
        }
        if (starting) {
            /* It ends as a call that waited for that fetch does, through
             * its callback (its log line, a batch's result): at the loop's
             * next turn, where submit finds the same. */
            genauth_error_clear(err);
            rest_call(ev, call, genauth_now());
            return GENAUTH_OK;
        }
        return err->status;
    }
    if (need != GENAUTH_TOKEN_USE && !ev->token_conn) {
        int early = need == GENAUTH_TOKEN_USE_AND_REFRESH;
        if (token_start(ev, call->deadline, early, err) != GENAUTH_OK) {
            if (!early)
                return err->status;
            genauth_error_clear(err);
        }
    }
    if (need == GENAUTH_TOKEN_WAIT) {
        unlink_call(ev, call);
        queue_call(ev, call);
        want_timer(ev, call->deadline);
        return GENAUTH_OK;
    }
    return launch(ev, call, err);
}

/* Authenticates, encodes and adds the call's transfer to the multi handle:
 * genauth_call_prepare finds the token in the cache. */
static genauth_status
launch(genauth_evloop *ev, genauth_evcall *call, genauth_error *err)
{
    genauth_client *c = ev->client;
    genauth_call_plan plan;
    genauth_status st;

    if (!call->conn && !(call->conn = conn_take(ev, err)))
        return err->status;
    st = genauth_call_prepare(c, call->conn, &call->req, call->deadline, 0,
                              NULL, &plan, err);
    call->generation = plan.generation;
    if (st == GENAUTH_OK)
        st = genauth_conn_setup(call->conn, &plan, call->deadline, err);
    if (st != GENAUTH_OK)
        goto fail;
    curl_easy_setopt(call->conn->easy, CURLOPT_PRIVATE, call);
    if (add_transfer(ev, call->conn, &call->added) != CURLM_OK) {
        st = genauth_error_set(err, GENAUTH_E_NOMEM,
                               "could not start the transfer");
        goto fail;
    }
    return GENAUTH_OK;
fail:
    conn_give(ev, call->conn);
    call->conn = NULL;
    return st;
}

/* The token fetch ended: the waiting calls go out with the new token (or
 * the old one, still valid, after a failed early refresh), or all end
 * with the fetch's error. */
static void
token_done(genauth_evloop *ev, CURLcode result)
{
    genauth_conn *conn = ev->token_conn;
    genauth_error err;
    long http_status = 0;
    genauth_status st;

    genauth_error_init(&err);
    remove_transfer(ev, conn, &ev->token_added);
    ev->token_conn = NULL;
    st = genauth_conn_finish(conn, result, &http_status, &err);
    st = genauth_token_accept(ev->client, conn, st, http_status,
                              ev->token_started, &err);
    /* Its log line's handler may have forked: a child leaves the handle to
     * the parent, and the waiting calls ended as the engine gave up. */
    if (forked(ev)) {
        leave_to_parent(ev, conn);
        genauth_error_clear(&err);
        return;
    }
    /* retry.c: a fetch that sent nothing, or was throttled, is each
     * waiting call's retry: it rests until its wait is over, then asks
     * for the token anew. The handle is kept meanwhile: the wait reads
     * the answer's Retry-After. */
    genauth_retry_kind kind =
        st == GENAUTH_OK ? GENAUTH_RETRY_NO
                         : genauth_retry_classify(conn, st, &err, http_status,
                                                  NULL);
    if (kind == GENAUTH_RETRY_NO) {
        conn_give(ev, conn);
        conn = NULL;
    }

    /* The queue as it is now: a call that a callback starts meanwhile
     * queues behind a fetch of its own. */
    genauth_evcall *call = ev->waiting;
    ev->waiting = ev->waiting_tail = NULL;
    while (call) {
        genauth_evcall *next = call->next;
        double until = 0;
        link_call(ev, call, ON_CALLS);
        if (ev->given_up) {
            /* An earlier call's callback forked: in the child, the rest
             * end as the engine's other calls did. */
            end_forked(ev);
        } else if (st != GENAUTH_OK &&
            genauth_token_check(ev->client) ==
                GENAUTH_TOKEN_WAIT) {
            if (conn && !ev->closed &&
                genauth_retry_plan(ev->client, conn, kind, call->retries,
                                   call->deadline, &until)) {
                call->retries++;
                rest_call(ev, call, until);
            } else if (st == GENAUTH_E_TIMEOUT && !ev->closed &&
                       genauth_now() < call->deadline) {
                /* The fetch ran out of the time of the call that started
                 * it (token_start): one that came later, with time left,
                 * asks anew (the first of them starts that fetch), as a
                 * thread does (token.c), rather than end with the other
                 * call's timeout. */
                genauth_error own;
                genauth_error_init(&own);
                if (submit(ev, call, 0, &own) != GENAUTH_OK)
                    end_call(ev, call, own.status, NULL, &own);
                genauth_error_clear(&own);
            } else {
                end_call(ev, call, st, NULL, &err);
            }
        } else {
            genauth_error own;
            genauth_error_init(&own);
            if (launch(ev, call, &own) != GENAUTH_OK)
                end_call(ev, call, own.status, NULL, &own);
            genauth_error_clear(&own);
        }
        call = next;
    }
    if (conn && forked(ev))
        leave_to_parent(ev, conn); /* a callback forked meanwhile */
    else if (conn)
        conn_give(ev, conn);
    genauth_error_clear(&err);
}

/* ---- a call's end ------------------------------------------------------ */

/* Up to `n` of the calls waiting for a file descriptor go out again at the
 * loop's next turn: n transfers ended, each leaving its connection for
 * reuse or its descriptor free. The longest waiting first: ev->resting is
 * linked at its head, so from its tail. */
static void
wake_fd_waiting(genauth_evloop *ev, size_t n)
{
    genauth_evcall *r = ev->resting;
    int woken = 0;
    while (r && r->next)
        r = r->next;
    for (; r && n > 0 && ev->fd_waiting; r = r->prev) {
        if (!r->fd_wait)
            continue;
        r->fd_wait = 0;
        ev->fd_waiting--;
        r->not_before = 0;
        n--;
        woken = 1;
    }
    if (woken)
        want_timer(ev, 0);
}

/* A transfer ended. Returns 1 when it found no file descriptor free and
 * the call waits for one (the transfer freed nothing), else 0. */
static int
call_done(genauth_evloop *ev, genauth_evcall *call, CURLcode result)
{
    genauth_client *c = ev->client;
    genauth_envelope resp;
    genauth_error err;
    long http_status = 0;
    genauth_status st;
    int fd_wait = 0;

    genauth_envelope_init(&resp);
    genauth_error_init(&err);
    remove_transfer(ev, call->conn, &call->added);
    if (ev->transfers > 0 && genauth_conn_out_of_fds(call->conn, result)) {
        /* Nothing was sent, and this engine's other transfers hold
         * descriptors that will come free: fewer calls in flight rather
         * than failed ones, as in a batch (batch.c). */
        conn_give(ev, call->conn);
        call->conn = NULL;
        rest_call(ev, call, call->deadline);
        call->fd_wait = 1;
        ev->fd_waiting++;
        fd_wait = 1;
        goto done;
    }
    st = genauth_conn_finish(call->conn, result, &http_status, &err);
    if (st == GENAUTH_OK)
        st = genauth_call_read(c, call->conn, http_status, &resp, &err);
    if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) &&
        genauth_call_should_retry(c, call->attempt, http_status,
                                  st == GENAUTH_OK ? &resp : NULL)) {
        genauth_envelope_clear(&resp);
        genauth_error_clear(&err);
        genauth_token_invalidate(c, call->generation);
        call->attempt++;
        st = submit(ev, call, 0, &err);
        if (st == GENAUTH_OK)
            goto done; /* in flight again */
    } else {
        /* retry.c: sent nothing, or throttled: it rests until its retry
         * time, then goes out again (signed anew). */
        double until = 0;
        genauth_retry_kind kind = genauth_retry_classify(
            call->conn, st, &err, http_status, st == GENAUTH_OK ? &resp : NULL);
        int again = genauth_retry_plan(c, call->conn, kind, call->retries,
                                       call->deadline, &until);
        /* Its transfer has left the multi handle: keep the handle. */
        conn_give(ev, call->conn);
        call->conn = NULL;
        if (again) {
            call->retries++;
            rest_call(ev, call, until);
            goto done;
        }
    }
    end_call(ev, call, st, st == GENAUTH_OK ? &resp : NULL, &err);
done:
    genauth_envelope_clear(&resp);
    genauth_error_clear(&err);
    return fd_wait;
}

/* Reads what libcurl finished and ends (or retries) those calls. */
static void
drain(genauth_evloop *ev)
{
    CURLMsg *msg;
    int left = 0;
    size_t freed = 0;
    /* Closed: a done callback forked, and the child gave up. */
    while (!ev->closed && (msg = curl_multi_info_read(ev->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        int is_token = ev->token_conn && easy == ev->token_conn->easy;
        genauth_evcall *call = NULL;
        if (!is_token)
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
        genauth_conn *conn = is_token ? ev->token_conn
                             : call   ? call->conn
                                      : NULL;
        if (conn && run_again_if_stale(ev, conn, &result))
            continue;
        freed++;
        if (is_token) {
            token_done(ev, result);
            continue;
        }
        if (call && call_done(ev, call, result))
            freed--;
    }
    if (freed && ev->fd_waiting && !ev->closed)
        wake_fd_waiting(ev, freed);
    settle(ev);
}

/* ---- the API ------------------------------------------------------------ */

genauth_status
genauth_evloop_new(genauth_client *client, const genauth_evloop_hooks *hooks,
                   genauth_evloop **out, genauth_error *err)
{
    genauth_evloop *ev = NULL;
    CURLMcode mc = CURLM_OK;

    *out = NULL;
    if (!hooks || !hooks->watch || !hooks->timer)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "hooks: watch and timer are required");
    /* In a child forked since the client was last used, the engine's
     * first call takes the token cache's lock (genauth_token_check), which
     * a thread of the parent may have held at the fork: the client is
     * adopted first, as a single call's first step does. */
    genauth_client_adopt_if_forked(client);
    ev = calloc(1, sizeof(*ev));
    if (!ev || !(ev->multi = curl_multi_init()))
        goto nomem;
    ev->client = client;
    ev->hooks = *hooks;
    ev->curl_at = ev->later_at = -1;
    ev->generation = genauth_fork_generation();
#define MSET(opt, val) \
    if (mc == CURLM_OK) \
    mc = curl_multi_setopt(ev->multi, opt, val)
    MSET(CURLMOPT_SOCKETFUNCTION, on_socket);
    MSET(CURLMOPT_SOCKETDATA, ev);
    MSET(CURLMOPT_TIMERFUNCTION, on_timer);
    MSET(CURLMOPT_TIMERDATA, ev);
    /* More calls than this wait in libcurl's queue (within their timeout)
     * instead of each opening a connection. */
    MSET(CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)GENAUTH_EV_MAX_CONNECTIONS);
    MSET(CURLMOPT_MAXCONNECTS, (long)GENAUTH_EV_MAX_CONNECTIONS);
#undef MSET
    if (mc != CURLM_OK) {
        genauth_error_set(err, GENAUTH_E_TRANSPORT, "libcurl: %s",
                          curl_multi_strerror(mc));
        goto fail;
    }
    *out = ev;
    return GENAUTH_OK;
nomem:
    genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
fail:
    if (ev && ev->multi)
        curl_multi_cleanup(ev->multi);
    free(ev);
    return err->status;
}

void
genauth_evloop_close(genauth_evloop *ev)
{
    genauth_error err;

    /* In a child forked since the engine was made, nothing of the parent's
     * is closed: the engine gives up instead. */
    if (!ev || ev->closed || forked(ev))
        return;
    ev->closed = 1;
    genauth_error_init(&err);
    genauth_error_set(&err, GENAUTH_E_CLOSED, "the client is closed");
    end_all(ev, GENAUTH_E_CLOSED, &err);
    if (ev->given_up)
        goto done; /* a callback forked: the child gave up the rest */
    if (ev->token_conn) {
        remove_transfer(ev, ev->token_conn, &ev->token_added);
        genauth_token_accept(ev->client, ev->token_conn, GENAUTH_E_CLOSED, 0,
                             0, &err);
        genauth_conn_free(ev->token_conn);
        ev->token_conn = NULL;
    }
    while (ev->idle) {
        genauth_conn *next = ev->idle->next;
        genauth_conn_free(ev->idle);
        ev->idle = next;
    }
    ev->idle_count = 0;
    /* Closes the cached connections (on_close unwatches them first). */
    curl_multi_cleanup(ev->multi);
    ev->multi = NULL;
    genauth_kept_clear(&ev->kept);
    /* What libcurl closed without telling (a resolver's socket pair). */
    for (size_t i = 0; i < ev->socks_cap; i++) {
        if (ev->socks[i].fd >= 0 && ev->socks[i].loop)
            ev->hooks.watch(ev->hooks.userdata, ev->socks[i].fd, 0,
                            ev->socks[i].loop);
    }
    free(ev->socks);
    ev->socks = NULL;
    ev->socks_cap = ev->socks_used = 0;
    want_timer(ev, -1);
done:
    genauth_error_clear(&err);
}

void
genauth_evloop_free(genauth_evloop *ev)
{
    if (!ev)
        return;
    genauth_evloop_close(ev);
    free(ev);
}

void
genauth_evloop_socket_ready(genauth_evloop *ev, int fd, int events)
{
    int flags = 0;
    if (ev->closed || forked(ev))
        return;
    ev_sock *s = sock_find(ev, fd);
    if (s && !s->curl) {
        /* A kept connection with no transfer is readable: the server closed
         * it (or spoke out of turn). It is checked before it is reused
         * (libcurl, and before_send in transport.c); until then the loop
         * need not hear of it again. */
        sock_watch(ev, s, 0);
        return;
    }
    if (events & GENAUTH_EV_READ)
        flags |= CURL_CSELECT_IN;
    if (events & GENAUTH_EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    act(ev, (curl_socket_t)fd, flags);
    /* A hook forked in there (on_socket): the child gives up now, before
     * reading what libcurl finished for the parent. */
    if (!forked(ev))
        drain(ev);
}

/* Ends the calls whose deadline passed while they waited for the token. */
static void
expire_waiting(genauth_evloop *ev)
{
    double now = genauth_now();
    genauth_evcall *call = ev->waiting;
    genauth_error err;

    genauth_error_init(&err);
    while (call) {
        genauth_evcall *next = call->next;
        if (call->deadline <= now) {
            genauth_error_timeout(&err, "waiting for a management token");
            genauth_error_name_url(&err, ev->client->token_url);
            end_call(ev, call, GENAUTH_E_TIMEOUT, NULL, &err);
        }
        /* A callback forked: the child ended every call (next too). */
        call = ev->closed ? NULL : next;
    }
    genauth_error_clear(&err);
}

/* The resting calls whose retry time has come go out again. */
static void
wake_resting(genauth_evloop *ev)
{
    double now = genauth_now();
    genauth_evcall *call = ev->resting;
    genauth_error err;

    genauth_error_init(&err);
    while (call) {
        genauth_evcall *next = call->next;
        if (call->not_before <= now) {
            unlink_call(ev, call);
            link_call(ev, call, ON_CALLS);
            if (submit(ev, call, 0, &err) != GENAUTH_OK)
                end_call(ev, call, err.status, NULL, &err);
            genauth_error_clear(&err);
        }
        /* A callback forked: the child ended every call (next too). */
        call = ev->closed ? NULL : next;
    }
}

void
genauth_evloop_timer_fired(genauth_evloop *ev, int which)
{
    if (ev->closed || forked(ev))
        return;
    /* That timer is spent. After a timeout action (due or early) libcurl
     * tells the timer it still has, if any: curl_at is that. */
    if (which == GENAUTH_EV_SOON)
        ev->soon_armed = 0;
    else
        ev->later_at = -1;
    ev->curl_at = -1;
    if (ev->waiting)
        expire_waiting(ev);
    if (ev->closed)
        return; /* a callback forked: the child gave up */
    act(ev, CURL_SOCKET_TIMEOUT, 0);
    if (forked(ev))
        return; /* a hook forked in there (on_socket): the child gave up */
    drain(ev);
    /* After libcurl's action: the transfers these add arm libcurl's timer
     * anew, and the hook with it, rather than being taken up by this
     * action and leaving the hook armed for nothing. */
    if (ev->resting && !ev->closed)
        wake_resting(ev);
    /* The waiting calls' deadlines and the retry times need the hook too. */
    if (!ev->closed)
        arm_timer(ev);
}

unsigned long
genauth_evloop_batch_mark(genauth_evloop *ev)
{
    return genauth_token_mark_now(ev->client).completed;
}

genauth_status
genauth_evloop_start(genauth_evloop *ev, const genauth_request *req,
                     const unsigned long *queued_at,
                     genauth_evcall_done_fn done, void *userdata,
                     genauth_evcall **out, genauth_error *err)
{
    const genauth_endpoint *ep = genauth_endpoint_of(req->op);
    genauth_evcall *call = NULL;

    *out = NULL;
    /* In a child forked since the engine was made (which gives up now, if
     * it has not yet), a call fails as those in flight did. */
    if (forked(ev) && ev->given_up)
        return genauth_client_check_fork(ev->client, ev->generation, err);
    if (ev->closed || genauth_client_is_closed(ev->client))
        return genauth_error_set(err, GENAUTH_E_CLOSED,
                                 "the client is closed");
    /* Now, not when the token has come: bad input sends nothing. */
    if (!ep)
        return genauth_error_set(err, GENAUTH_E_INVALID, "op: unknown");
    if (genauth_endpoint_check(ep, req->params, err) != GENAUTH_OK)
        return err->status;
    call = calloc(1, sizeof(*call));
    if (!call)
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    call->ev = ev;
    call->req = *req;
    call->done = done;
    call->userdata = userdata;
    call->started = genauth_now();
    call->deadline = call->started + ev->client->timeout;
    if (queued_at) {
        call->queued = 1;
        call->token_queued = *queued_at;
    }
    link_call(ev, call, ON_CALLS);
    ev->count++;
    if (submit(ev, call, 1, err) != GENAUTH_OK) {
        drop_call(ev, call);
        return err->status;
    }
    *out = call;
    return GENAUTH_OK;
}

void
genauth_evloop_cancel(genauth_evloop *ev, genauth_evcall *call)
{
    if (call && genauth_forked_since(ev->generation)) {
        /* In a child forked since the engine was made, its handle is the
         * parent's: it leaves without libcurl (which would close the
         * connection), and the engine gives up the others. */
        leave_to_parent(ev, call->conn);
        call->conn = NULL;
        call->added = 0;
        drop_call(ev, call);
        forked(ev);
    } else if (call) {
        /* A transfer in flight leaves with its connection closed. */
        int freed = call->added, timed = call->where != ON_CALLS;
        drop_call(ev, call);
        if (freed && ev->fd_waiting)
            wake_fd_waiting(ev, 1);
        settle(ev);
        /* The timer may be armed for this call's retry time or deadline:
         * armed for what is still wanted, or disarmed, rather than wake the
         * loop for nothing. Disarmed first: want_timer moves it only
         * earlier, and another call's later time would leave it there. */
        if (timed && !ev->closed) {
            want_timer(ev, -1);
            arm_timer(ev);
        }
    }
}

void
genauth_evcall_record(const genauth_evcall *call, genauth_error *err)
{
    genauth_call_record(NULL, err, call->started,
                        (unsigned)(call->attempt + call->retries));
}

int
genauth_evloop_forked(const genauth_evloop *ev)
{
    return genauth_forked_since(ev->generation);
}

size_t
genauth_evloop_calls(const genauth_evloop *ev)
{
    return ev->count;
}

int
genauth_evloop_each(const genauth_evloop *ev,
                    int (*fn)(void *userdata, void *arg), void *arg)
{
    int rc = 0;
    for (const genauth_evcall *c = ev->calls; !rc && c; c = c->next)
        rc = fn(c->userdata, arg);
    for (const genauth_evcall *c = ev->waiting; !rc && c; c = c->next)
        rc = fn(c->userdata, arg);
    for (const genauth_evcall *c = ev->resting; !rc && c; c = c->next)
        rc = fn(c->userdata, arg);
    return rc;
}

int
genauth_evloop_each_watched(const genauth_evloop *ev,
                            int (*fn)(int fd, int events, void *arg),
                            void *arg)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < ev->socks_cap; i++) {
        if (ev->socks[i].fd >= 0 && ev->socks[i].loop)
            rc = fn(ev->socks[i].fd, ev->socks[i].loop, arg);
    }
    return rc;
}
