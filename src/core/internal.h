/* What the core's files share with each other but not with users: the
 * client's layout, pooled connections, the token cache and small helpers. */
#ifndef GENAUTH_INTERNAL_H
#define GENAUTH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <curl/curl.h>

#include "genauth.h"
#include "buf.h"
#include "sign.h"
#include "wipe.h"

/* How often a call waiting on the network asks the interrupt check. */
#define GENAUTH_INTERRUPT_POLL_MS 100

/* After an early token refresh failed (the cached token still valid), the
 * next attempt waits this many seconds: a failing token endpoint is asked
 * at most every 5 s while calls go on with the cached token. */
#define GENAUTH_TOKEN_RETRY_INTERVAL 5.0
/* The longest a throttled token fetch's Retry-After holds the client's
 * other calls back (token.c): a server's hour, or a number past LONG_MAX,
 * would otherwise refuse every call of the client without asking; past
 * this, one call asks again (and is told again, if still throttled). */
#define GENAUTH_MAX_THROTTLE_WAIT 60.0

/* The longest management token accepted. A JWT of GenAuth's is about a
 * kilobyte; libcurl refuses a request head of a megabyte or more, and a
 * cached token it cannot send would fail every call until it expires. */
#define GENAUTH_MAX_TOKEN_BYTES 65536

/* Idle resources are bounded. A single call runs on its connection
 * handle's own multi handle, which keeps that handle's one connection
 * between calls: 3 fds (the socket, and libcurl's wakeup socket pair; 2
 * where the wakeup is one eventfd, as in Debian 13's libcurl 8.14) per
 * handle that has made a call. Idle handles are kept up to
 * GENAUTH_IDLE_CONNECTIONS beyond the handles in use, none idle for over
 * GENAUTH_MAX_IDLE_SECONDS: threads between their calls find their
 * connections again, and as a burst of threads ends, each handle given
 * back beyond GENAUTH_IDLE_CONNECTIONS is freed, its connection closed.
 * Handles are made only when none is idle, so there are never more than
 * the most ever in use at once. Batches run on the client's batch multi
 * handle (2 fds of its own, then one per connection), which keeps
 * GENAUTH_IDLE_CONNECTIONS connections once a batch's last call has
 * started. A connection idle for over GENAUTH_MAX_IDLE_SECONDS is never
 * reused: the next call closes it. */
#define GENAUTH_IDLE_CONNECTIONS 8
#define GENAUTH_MAX_IDLE_SECONDS 50
/* A handle given back keeps request and answer buffers up to this size,
 * enough for any ordinary call, and frees larger ones: it would otherwise
 * hold its largest answer's (up to twice max_response_bytes) for as long
 * as it is kept, and an event loop's client keeps 64 handles. */
#define GENAUTH_CONN_KEEP_BYTES (64 * 1024)
/* The header lines one request may receive: its head, any 1xx heads, and
 * the trailers after a chunked body. libcurl caps a head (300 KiB in 7.88
 * and later) but keeps every trailer line (for curl_easy_header) without a
 * bound; an answer of the API has a few hundred bytes of them. */
#define GENAUTH_MAX_HEAD_BYTES (256 * 1024)

/* ---- clock -------------------------------------------------------------- */

/* Seconds on the monotonic clock. */
double genauth_now(void);
/* A condition variable whose timed waits use the monotonic clock, like
 * every deadline here. */
void genauth_cond_init_monotonic(pthread_cond_t *cond);

/* The clock a client's token cache runs on: genauth_now(), or in tests the
 * number in GENAUTH_TEST_CLOCK_FILE (client.c). */
double genauth_client_now(const genauth_client *client);

/* ---- host URL (url.c) ------------------------------------------------- */

/* The base URL for `host` (NULL: the brand's default) with the scheme
 * lower-cased and trailing slashes dropped. The caller frees *out. */
genauth_status genauth_url_normalize(const char *host, genauth_brand brand,
                                     char **out, genauth_error *err);

/* ---- proxy (proxy.c) -------------------------------------------------- */

/* The proxy and the no-proxy list libcurl would read from the environment
 * for requests to `base_url` (its scheme decides http_proxy or
 * https_proxy): *proxy is "" for none, *no_proxy "" for no exceptions. Both
 * new strings; the caller frees them (the proxy with genauth_wipe_free: it
 * may carry a password). */
genauth_status genauth_proxy_from_env(const char *base_url, char **proxy,
                                      char **no_proxy, genauth_error *err);
/* The proxy the environment names for an https:// host (`https`) or an
 * http:// one, by the rule above; "" for none. Points into the environment:
 * copy it before the environment changes. */
const char *genauth_proxy_env(int https);
/* Whether `proxy` (as genauth_proxy_from_env gives it; "" for none) is an
 * https:// proxy, one reached over TLS. */
int genauth_proxy_is_tls(const char *proxy);
/* The user name and password in `proxy` (user:password@ in
 * http://user:password@host:3128), which error messages must not show:
 * borrowed from `proxy`, *len bytes; NULL (and *len 0) when it has none. */
const char *genauth_proxy_userinfo(const char *proxy, size_t *len);

/* ---- CA store (castore.c) ---------------------------------------------- */

/* Whether `path` can serve as a file of CAs: readable, and a regular file.
 * A pipe would block the TLS handshake for ever in open(), beyond any
 * timeout; a directory or a device fails there. */
int genauth_ca_file_usable(const char *path);
/* Why it cannot: 0 when it can, the errno of the file system's refusal
 * (ENOENT, EACCES, ...), or -1 for a file that is not a regular one. */
int genauth_ca_file_problem(const char *path);
/* That problem in words ("No such file or directory"): static, or in `buf`
 * (`size` bytes, 128 is enough). */
const char *genauth_ca_file_problem_text(int problem, char *buf, size_t size);
/* genauth_ca_store_wanted's rule, given whether the client's proxy is an
 * https:// one (genauth_proxy_is_tls), as the client itself knows it. */
int genauth_ca_store_wanted_behind(const genauth_client_options *opts,
                                   int proxy_tls);

/* ---- JWT (jwt.c) -------------------------------------------------------- */

/* The `scoped_userpool_id` claim of a JWT, its payload decoded as base64url.
 * The caller frees *out. GENAUTH_E_AUTH when absent or malformed, or when
 * it holds a control character. */
genauth_status genauth_jwt_userpool_id(const char *token, char **out,
                                       genauth_error *err);
/* Whether a string node of a parsed answer (a token, a claim), which goes
 * into a header line, holds a control character (U+0000 included, which
 * ends its valuestring: json.h's flag tells). */
int genauth_jwt_has_control(const cJSON *str);

/* ---- errors (error.c) --------------------------------------------------- */

/* Sets the error of a call whose time ran out, wherever it ran out (in a
 * transfer, waiting for another call's token fetch, before its request
 * went out): one kind of TimeoutError, curl_code CURLE_OPERATION_TIMEDOUT
 * and "the call timed out: <what>". Returns GENAUTH_E_TIMEOUT. */
genauth_status genauth_error_timeout(genauth_error *err, const char *what);
/* Puts `url`, without its query string, and ": " before err's message: the
 * request a failure came from (the token endpoint's, or the call's own). */
void genauth_error_name_url(genauth_error *err, const char *url);

/* ---- connections (transport.c) ------------------------------------------ */

/* A TCP connection as libcurl names it to a transfer's prereq callback:
 * its addresses (as libcurl writes them, at most 45 characters) and ports.
 * The local port alone does not tell one connection of a multi handle from
 * another: Linux gives connections to different servers (a host's several
 * addresses, IPv4 and IPv6) the same local port when it likes. */
typedef struct {
    char local_ip[48];
    char remote_ip[48];
    long local_port;
    long remote_port;
} genauth_conn_addr;

/* The connections a multi handle keeps, as (socket, addresses): what a
 * transfer's prereq callback, which libcurl tells only the addresses of
 * the connection it chose, needs to look at that connection's socket
 * before anything is sent on it (genauth_kept_stale). Each multi handle's
 * owner holds one: a handle (its own multi), a batch, an event loop; only
 * the thread driving that multi handle touches it. */
typedef struct {
    struct genauth_kept_conn {
        /* CURL_SOCKET_BAD: not a connection's entry yet but a record that
         * the connection with these ends was given out before its entry
         * was added (see `unentered`). */
        curl_socket_t fd;
        genauth_conn_addr addr;
        /* Transfers whose check passed on it (their requests went out),
         * or that were given it before this entry was added (`unentered`),
         * and whose ends are not noted yet (genauth_kept_idle): while any,
         * libcurl may read from it at any time. A count, not a flag: a
         * call queued in libcurl may be given it, and checked, before the
         * end of the transfer before it is noted. */
        unsigned int users;
        /* It was idle at the turn's poll: `revents`, what that poll found
         * on it, holds until it is given to a transfer. */
        unsigned char idle_at_poll;
        short revents;
    } *conns;
    size_t n, cap;
    /* The first check of a turn polls every connection at once, and a
     * check after it in that turn takes its word for a connection that
     * was idle and quiet then and has not been given to a transfer since:
     * a batch or an event loop reuses about ten connections a turn, and a
     * poll(2) each cost a batch 2% of its speed. Any other is polled again
     * by itself: libcurl may have read its answer's last bytes since, some
     * with no callback to tell (a chunked body's "0\r\n\r\n"), and what
     * came after them would be missed, or what the poll found be taken for
     * a stray answer. A new turn (genauth_kept_turn) polls anew: time
     * passed. */
    int polled;
    /* Records (entries with no socket) of connections given to a call
     * queued in libcurl in this turn before their first transfers' ends
     * were noted: the entry added then carries their `users`, so that the
     * next turn's poll does not take a connection in use for an idle one.
     * Dropped at the next turn: the ends of a turn are noted before it. */
    size_t unentered;
} genauth_kept;

/* At most this many connections are polled together; a multi handle with
 * more polls the one it reuses, as a poll of them all would cost more than
 * the checks it saves. */
#define GENAUTH_KEPT_POLL_MAX 64

/* Forgets every connection (its multi handle is gone or new) and frees the
 * table. */
void genauth_kept_clear(genauth_kept *kept);
/* Called by the thread driving the multi handle before each turn
 * (curl_multi_perform, curl_multi_socket_action): what was polled before
 * it is not current any more. */
void genauth_kept_turn(genauth_kept *kept);
/* A transfer on the connection with those ends has ended (its end is
 * noted): one user fewer. */
void genauth_kept_idle(genauth_kept *kept, const genauth_conn_addr *addr);
/* Records a connection libcurl keeps, to be checked before it is reused
 * (`checked`), or not. A socket number or addresses met again belong to a
 * new connection (the old one was closed): entries for either are dropped,
 * so each socket and each connection has one entry at most. The users of
 * an entry for the same addresses carry to the new one: it may be this
 * connection's record (`unentered`), and one too many costs a poll only. */
void genauth_kept_add(genauth_kept *kept, curl_socket_t fd,
                      const genauth_conn_addr *addr, int checked);
/* Whether the kept connection with those ends (as in genauth_conn_addr)
 * has bytes waiting, or its end, before any request was sent on it: then
 * nothing it holds can be an answer. Its socket is shut down and emptied,
 * so that libcurl, which takes a connection whose peer has closed for dead,
 * closes it the next time it looks at it. One poll(2) for the reused
 * connections of a turn (see `polled`). */
int genauth_kept_stale(genauth_kept *kept, const char *local_ip,
                       long local_port, const char *remote_ip,
                       long remote_port);

/* One libcurl easy handle with its buffers, used by one call at a time and
 * kept in the client's pool between calls so its connection stays alive. */
/* Which file a descriptor was when noted (fstat), so that a child forked
 * since touches it only while it still is that file: not once it was
 * closed and its number given to another. */
typedef struct {
    int known; /* fstat answered */
    dev_t dev;
    ino_t ino;
} genauth_file_id;
/* fd's identity now (known 0 when fstat fails). */
genauth_file_id genauth_file_id_of(int fd);
/* Whether fd is still the file `id` noted. */
int genauth_file_id_is(int fd, const genauth_file_id *id);

/* Why collect_body (transport.c) refused a body: genauth_conn.over_cap. */
enum { GENAUTH_BODY_OVER_CAP = 1, GENAUTH_BODY_NOMEM = 2 };

typedef struct genauth_conn {
    CURL *easy;
    genauth_buf request;  /* the body being sent (POST) */
    genauth_buf url;      /* a GET's URL with its query string */
    genauth_buf response; /* the body received */
    size_t max_response_bytes;
    /* The body was refused as it arrived: GENAUTH_BODY_OVER_CAP, it
     * outgrew max_response_bytes; GENAUTH_BODY_NOMEM, memory ran out for
     * it (libcurl calls either a failure to write to disk). */
    int over_cap;
    size_t head_bytes; /* header lines received (trailers too), this request */
    int no_ca_store; /* the client's: TLS errors then say what to do */
    /* The client's CA file (its ca_bundle, or the store found), or NULL:
     * borrowed, as the client outlives its connections. */
    const char *ca_file;
    /* This transfer's new connection was not made: ca_file had become
     * unusable since the client was made (open_socket). */
    int ca_file_unusable;
    /* The client's: its proxy is an https:// one, whose certificate a TLS
     * error may be about (verified whatever use_unverified_ssl says). */
    int proxy_tls;
    int api_unverified; /* the client's use_unverified_ssl */
    /* This handle's copy of the authenticated header list, built for the
     * token generation `api_headers_gen` (0: none yet). */
    struct curl_slist *api_headers;
    unsigned long api_headers_gen;
    /* What is set on `easy` now, to skip setopt calls that change nothing. */
    const struct curl_slist *cur_headers;
    const char *cur_url;
    int cur_get; /* the handle is set up for GET (else POST) */
    /* Signature mode: this handle's signature and header list, rebuilt for
     * every request. */
    genauth_signature signature;
    struct curl_slist *signed_headers;
    /* The webhook secret the request's body carries (create, update), or
     * NULL: borrowed from the request, which outlives reading its answer. */
    const char *sent_webhook_secret;
    char errbuf[CURL_ERROR_SIZE];
    /* The client's proxy's user name and password (genauth_proxy_userinfo;
     * borrowed: the client outlives its connections), hidden in errbuf,
     * where libcurl quotes the proxy when it refuses it. */
    const char *proxy_userinfo;
    size_t proxy_userinfo_len;
    /* How many times libcurl was about to send this request (its prereq
     * callback): 0 means nothing was sent; a second send is refused. */
    int sends;
    int socket_errno; /* why socket() failed, for this request */
    /* Its call waited for another call's token fetch, which failed, and
     * takes that fetch as its own attempt (token.c): `sends` is then the
     * fetch's, and retry.c reads the Retry-After the fetch's answer gave
     * (-1: none) here rather than this handle's answer. Until the next
     * setup. */
    int shares_fetch;
    double shared_retry_after;
    /* This transfer opened a socket (open_socket): its connection is new. */
    int opened;
    /* This transfer's check let it out on the kept connection with these
     * ends, counting it as a user (genauth_kept_stale): its end gives that
     * use back (genauth_conn_note_kept). Known here, the ends spare a look
     * through libcurl's connections (CURLINFO_ACTIVESOCKET walks them all:
     * 37 first-level cache misses a call). */
    int kept_user;
    genauth_conn_addr kept_addr;
    /* This transfer was stopped before sending: the kept connection libcurl
     * chose had bytes waiting that nobody asked for (or its end), so it
     * runs again on a new one (genauth_conn_rerun_stale). */
    int stale;
    /* A request sent again (a retry, or the retry with a new token) is
     * refused by the prereq callback, the last moment before it goes, once
     * this client is closed: making its new connection (a TLS handshake)
     * may have let close() in after the caller's check. Set by the caller
     * just before the transfer runs, NULL otherwise; `refused_closed` says
     * the transfer was stopped so (GENAUTH_E_CLOSED). */
    const struct genauth_client *resend_of;
    int refused_closed;
    int fresh_connect; /* CURLOPT_FRESH_CONNECT is set on easy */
    double deadline; /* its call's, as the last setup was given it */
    /* The connections of the multi handle its transfer runs on now (set
     * before each is added to one), and those of its own multi. */
    genauth_kept *kept;
    genauth_kept own_kept;
    /* The multi handle its transfers run on (run_transfer), which keeps
     * its connection between calls; NULL until its first single call
     * (batches and asyncio add `easy` to their own). */
    CURLM *multi;
    double idle_since; /* in the idle pool, monotonic seconds */
    /* The sockets libcurl opened for this handle on its own multi handle
     * (run_transfer), as which file they were (fstat): the connections
     * `multi` keeps are among them. In a child forked since, they let
     * genauth_conn_free_forked free the handle. `own_socks_lost`: more were
     * open at once than fit here, or one could not be told. */
    struct {
        int fd;
        genauth_file_id id; /* unknown: a free slot */
    } own_socks[4];
    int own_socks_lost;
    struct genauth_conn *next; /* in the idle pool */
    /* genauth_fork_generation() when it was made: in a process forked
     * since, its connection is the parent's (genauth_client_release). */
    unsigned long fork_generation;
} genauth_conn;

/* A new handle configured for `client`. NULL: out of memory (err set). */
genauth_conn *genauth_conn_new(genauth_client *client, genauth_error *err);
/* Frees the handle and closes its connection. */
void genauth_conn_free(genauth_conn *conn);
/* Frees the handle's request and answer buffers beyond
 * GENAUTH_CONN_KEEP_BYTES: called as it is kept for later calls, once its
 * call is over with them. */
void genauth_conn_shed(genauth_conn *conn);
/* Drops the handle without closing its socket or freeing what libcurl
 * holds: after fork() the connection belongs to the parent. */
void genauth_conn_abandon(genauth_conn *conn);
/* In a child forked since `conn` was made, for a handle in no transfer:
 * frees it without reaching the parent's connection, or, when that cannot
 * be made sure of, abandons it (genauth_conn_abandon). */
void genauth_conn_free_forked(genauth_conn *conn);

/* Called as a transfer ends, before its handle leaves the multi handle:
 * a connection it opened and libcurl keeps goes into conn->kept. */
void genauth_conn_note_kept(genauth_conn *conn);
/* Whether the transfer that ended on `conn` with `result` was stopped before
 * sending because the kept connection it was given had bytes waiting that
 * no request asked for: a server's late answer (a 408 after an idle time),
 * a second answer, or the rest of a body longer than it said. Read as this
 * call's answer, they would be the wrong one, and so would every later
 * answer on that connection. libcurl 8 leaves such a connection alone
 * itself; 7.88 (Debian 12) reuses it. Then the handle is made ready to run
 * again (on a new connection, once: CURLOPT_FRESH_CONNECT until its next
 * setup) and 1 is returned: the caller adds it to its multi handle again.
 * Nothing was sent, so nothing is sent twice. */
int genauth_conn_rerun_stale(genauth_conn *conn, CURLcode result);

/* Whether the transfer that ended on `conn` with `result` never sent a
 * byte of its request (refused, DNS, TLS handshake...): it is then safe to
 * send again. */
int genauth_conn_nothing_sent(genauth_conn *conn, CURLcode result);
/* Whether it failed for want of file descriptors (EMFILE/ENFILE). */
int genauth_conn_out_of_fds(genauth_conn *conn, CURLcode result);

/* Where and how one attempt of a call is sent, as genauth_call_prepare
 * decided it. */
typedef struct {
    int is_get;       /* GET (no body) or POST of conn->request */
    const char *url;  /* the client's prebuilt URL, or conn->url.data */
    int url_changes;  /* url is conn->url: set it on the handle every time
                       * (the buffer may hold another URL at the same
                       * address) */
    const struct curl_slist *headers; /* owned by the conn or the client */
    unsigned long generation; /* the token's, for genauth_token_invalidate
                               * (0 in signature mode) */
} genauth_call_plan;

/* Sets `conn` up to send `plan` within the monotonic `deadline`, for
 * genauth_conn_perform or a multi handle the caller drives (batch.c, the
 * event-driven engine). Resets conn->response. */
genauth_status genauth_conn_setup(genauth_conn *conn,
                                  const genauth_call_plan *plan,
                                  double deadline, genauth_error *err);
/* After the transfer ended with `result`: the error, or *http_status. */
genauth_status genauth_conn_finish(genauth_conn *conn, CURLcode result,
                                   long *http_status, genauth_error *err);
/* Puts the URL conn's transfer asked, without its query string, and ": "
 * before err's message. */
void genauth_conn_name_url(genauth_conn *conn, genauth_error *err);

/* Sends `plan` on conn and waits for the whole answer (in conn->response),
 * asking the client's interrupt check while it waits, bounded by the
 * monotonic `deadline`. Sets *http_status. */
genauth_status genauth_conn_perform(genauth_client *client,
                                    genauth_conn *conn,
                                    const genauth_call_plan *plan,
                                    double deadline, long *http_status,
                                    genauth_error *err);
/* genauth_conn_perform of a POST of conn->request to the fixed `url` with
 * `headers` (the token fetch). */
genauth_status genauth_conn_post(genauth_client *client, genauth_conn *conn,
                                 const char *url,
                                 const struct curl_slist *headers,
                                 double deadline, long *http_status,
                                 genauth_error *err);

/* ---- the client (client.c) ---------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    int refreshing;        /* one thread is fetching; the others wait */
    /* The thread fetching in refresh(), when `fetcher_set`. A call made on
     * that very thread while its fetch waits (a signal handler's, run by
     * the fetch's interrupt check) must not wait for it: that fetch goes on
     * only once the call returns. It fetches a token of its own. */
    pthread_t fetcher;
    int fetcher_set;
    char *token;           /* secret: never printed */
    char *userpool_id;
    double expires_at;     /* monotonic seconds */
    double refresh_at;     /* expires_at less the refresh margin */
    /* After an early refresh failed (the token still valid): no new attempt
     * before this time. */
    double retry_at;
    unsigned long generation; /* bumped on every new token and on invalidation */
    /* Fetches completed (either way), so that a thread that waited for one
     * knows it ended; and how the last one failed, for those waiters, when
     * the failure was the endpoint's (not the fetching call's own deadline
     * or interrupt). The copy holds no envelope: each waiter parses its
     * own from the refusal's text (it holds no token), when there was one.
     * And what retry.c reads of that fetch's attempt: its sends, and the
     * Retry-After its answer gave (-1: none); `last_final`: retry.c would
     * not send that call again (it may have reached the endpoint, and was
     * not throttled), so neither does a batch's call queued behind it. */
    unsigned long completed;
    int last_failed;
    int last_final;
    genauth_error last_failure;
    char *last_refusal;
    size_t last_refusal_len;
    int last_sends;
    double last_retry_after;
    /* That fetch was throttled and its Retry-After named when to ask again
     * (genauth_now's clock; 0: it did not): until then a call that needs a
     * token shares its refusal rather than asking again. */
    double throttled_until;
    /* Read without the lock by genauth_client_token_fetches. */
    atomic_ulong fetches;  /* tokens fetched */
    atomic_ulong failures; /* fetch attempts that brought no token */
} genauth_token_cache;

struct genauth_client {
    /* Options, copied. */
    char *access_key_id;
    char *access_key_secret;
    char *base_url;
    char *lang, *tenant_id, *ca_bundle;
    /* Without a ca_bundle: the CA store found on this machine (a file or a
     * directory), or none (no_ca_store: libcurl's built-in paths stay, and
     * TLS errors say how to name one). */
    char *ca_store_file, *ca_store_dir;
    int no_ca_store;
    double timeout;
    int use_unverified_ssl;
    genauth_brand brand;
    genauth_auth_mode auth;
    size_t max_response_bytes;
    int max_retries; /* retries of a request that is safe to send again */
    /* Read from the environment once (proxy.c), set on every handle so that
     * libcurl does not read it again on every transfer. */
    char *proxy, *no_proxy;
    int proxy_tls; /* genauth_proxy_is_tls(proxy) */
    const char *header_prefix; /* "x-genauth-" / "x-authing-" */
    /* Connections idle longer than this are not reused:
     * GENAUTH_MAX_IDLE_SECONDS, or what a test set (client.c). */
    long max_idle_seconds;
    /* Tests only: GENAUTH_TEST_CLOCK_FILE, or NULL (client.c). */
    char *test_clock_file;

    /* Built once per client. */
    char *token_url;
    char *op_urls[GENAUTH_OP_COUNT]; /* base URL + each endpoint's path */
    char *token_request_body; /* {"accessKeyId":..,"accessKeySecret":..} */
    size_t token_request_len;
    struct curl_slist *token_headers; /* read-only once built */
    struct curl_slist *base_headers;  /* what every API call carries */

    genauth_token_cache tokens;

    /* The multi handle batches run on, kept between batches so that its
     * connections are reused; one batch at a time holds batch_mu (a batch
     * that finds it taken runs on a multi handle of its own). */
    pthread_mutex_t batch_mu;
    CURLM *batch_multi;
    genauth_kept batch_kept; /* batch_multi's connections */

    /* The pool of idle connections, and the share handle they use for DNS
     * and TLS sessions. */
    pthread_mutex_t pool_mu;
    genauth_conn *idle; /* the most recently used first */
    size_t in_use;      /* handles taken from the pool, not given back */
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    /* The fork generation the client was made or adopted in: read without
     * a lock (client.c, genauth_client_adopt_if_forked). */
    atomic_ulong fork_generation;
    atomic_int closed; /* read without pool_mu by is_closed */

    genauth_interrupt_fn interrupt;
    void *interrupt_data;
    genauth_event_fn event_hook;
    void *event_data;
};

/* A connection from the pool, or a new one. NULL with err set (closed, or no
 * memory). Give it back with genauth_client_release. */
genauth_conn *genauth_client_acquire(genauth_client *client,
                                     genauth_error *err);
/* In a child after fork(): drop what the parent's connections live in
 * (acquire does this too; a batch needs it before it takes batch_multi). */
void genauth_client_adopt_if_forked(genauth_client *client);
/* Once the client is closed: frees the batch multi handle and its
 * connections, unless a batch holds it (batch_mu), which calls this again as
 * it ends. */
void genauth_client_drop_batch_multi(genauth_client *client);
/* Back into the pool; freed instead when the client was closed meanwhile.
 * (A transfer cut short has already had its connection closed by libcurl.)
 * NULL: a handle acquire counted as taken but could not make. */
void genauth_client_release(genauth_client *client, genauth_conn *conn);

/* ---- caller code run while a call waits (client.c) ---------------------
 *
 * The interrupt check (signal handlers), the event hook (a log line) and a
 * batch's done callback run the caller's code in the middle of a call. If
 * that code forks and the child returns into the call, everything the call
 * holds (its connections, a batch's multi handle) is the parent's, in use
 * by the parent: the child must end the call at once and abandon them
 * (genauth_client_release does for connections taken before the fork).
 * Every place where such a callback returns checks with
 * genauth_client_check_fork; `since` is genauth_fork_generation() as the
 * call began (conn->fork_generation for a single call's handle). */

/* Whether this process is a child forked since `generation` was read from
 * genauth_fork_generation(). The one test of it. */
int genauth_forked_since(unsigned long generation);
/* GENAUTH_OK, or, in a child forked since `since`: the client adopted
 * (genauth_client_adopt_if_forked) and GENAUTH_E_TRANSPORT set in err,
 * saying that the process forked while the call waited. */
genauth_status genauth_client_check_fork(genauth_client *client,
                                         unsigned long since,
                                         genauth_error *err);
/* Asks the interrupt check, at most every GENAUTH_INTERRUPT_POLL_MS
 * (*next_check is when it may ask next), whether to stop: GENAUTH_OK to go
 * on, GENAUTH_E_INTERRUPTED ("the call was interrupted"), or
 * genauth_client_check_fork's error (both set in err). */
genauth_status genauth_client_check_interrupt(genauth_client *client,
                                              unsigned long since,
                                              double *next_check,
                                              genauth_error *err);

/* ---- tokens (token.c) --------------------------------------------------- */

/* Where a batch's call stands in the token cache's history (from
 * genauth_token_mark_now): `completed`, the fetches ended as the batch
 * began, and `generation`, the token's generation as the pass that started
 * the call began (batch.c). */
typedef struct {
    unsigned long completed;
    unsigned long generation;
} genauth_token_mark;

/* Makes conn->api_headers carry a valid token, fetching one when the cache
 * has none or it is about to expire (at most one fetch in flight). Without
 * `may_fetch` (an event loop, which fetches on its own) it never blocks:
 * the cached token is used as it is. `queued`: for a call that has been
 * waiting its turn (a batch's); a fetch that ended since queued->completed
 * and failed for good (retry.c would not send it again) is then its failure
 * too; one it waited for is its failure whatever retry.c says, as for any
 * call; and a token fetched since queued->generation is the outcome of the
 * fetch it waited for, sent even when it expired as it came, as is one
 * fetched while a call that begins now (NULL) waits. Sets *generation to
 * the token's generation, for genauth_token_invalidate. */
genauth_status genauth_token_prepare(genauth_client *client,
                                     genauth_conn *conn, double deadline,
                                     int may_fetch,
                                     const genauth_token_mark *queued,
                                     unsigned long *generation,
                                     genauth_error *err);
/* The fetches ended so far and the token's generation now (a batch's
 * mark). */
genauth_token_mark genauth_token_mark_now(genauth_client *client);
/* For a batch's call queued at `queued_at` (genauth_token_mark_now's
 * .completed then)
 * that needs a token, driven by an event loop: 1 when a fetch that ended
 * since failed for good (retry.c would not send it again), *err then its
 * failure, the call's own copy: the call ends with it rather than ask the
 * endpoint again, as genauth_token_prepare has it. */
int genauth_token_failed_since(genauth_client *client,
                               unsigned long queued_at, genauth_error *err);
/* The server refused the token of `generation`: forget it, unless another
 * thread has already replaced it. */
void genauth_token_invalidate(genauth_client *client,
                              unsigned long generation);
/* Loads conn->request with the token request (it holds the secret: the
 * answer's reader, or genauth_token_accept, wipes it). */
genauth_status genauth_token_request_load(genauth_client *client,
                                          genauth_conn *conn,
                                          genauth_error *err);
/* For a fetch driven by an event loop (evloop.c), with the sync path's
 * rules. genauth_token_check: what a call that goes out now does with the
 * cached token, as genauth_token_prepare judges it: USE it; USE it, and
 * start the early refresh (none is in flight, none failed lately); or WAIT
 * for a fetch (none, or an expired token). genauth_token_begin: a fetch is in
 * flight (genauth_token_prepare uses a valid token meanwhile, and does
 * not fetch). genauth_token_accept: the fetch's transfer ended with
 * `transfer`: the answer read from conn, counted, reported to the event
 * hook (when `started`, the fetch's start, is > 0) and, when good, cached
 * (both bodies wiped); a failure while the cached token is still valid
 * puts the next early refresh GENAUTH_TOKEN_RETRY_INTERVAL off (or past
 * the wait a throttled answer named). */
typedef enum {
    GENAUTH_TOKEN_USE,
    GENAUTH_TOKEN_USE_AND_REFRESH,
    GENAUTH_TOKEN_WAIT
} genauth_token_need;
genauth_token_need genauth_token_check(genauth_client *client);
/* For a call that needs a token (genauth_token_check said
 * GENAUTH_TOKEN_WAIT): 1 when it must not ask for one, the last fetch
 * having been throttled and the time its Retry-After named (*until) not
 * having come. *err is then that fetch's refusal, the call's own copy. */
int genauth_token_throttled(genauth_client *client, double *until,
                            genauth_error *err);
void genauth_token_begin(genauth_client *client);
genauth_status genauth_token_accept(genauth_client *client,
                                    genauth_conn *conn,
                                    genauth_status transfer,
                                    long http_status, double started,
                                    genauth_error *err);
void genauth_token_cache_init(genauth_token_cache *cache);
void genauth_token_cache_clear(genauth_token_cache *cache);
/* In a child after fork(): the cache's lock and condition variable made
 * afresh (the parent's threads may hold the one and wait on the other),
 * and no fetch in flight. The token itself stays. */
void genauth_token_cache_after_fork(genauth_token_cache *cache);

/* ---- endpoints (endpoints.c) ------------------------------------------- */

typedef enum {
    GENAUTH_FIELD_STRING,      /* const char *; NULL: absent */
    GENAUTH_FIELD_STRING_LIST, /* const char *const * and a size_t count */
    GENAUTH_FIELD_BOOL,        /* int: 0, 1 or GENAUTH_UNSET */
    GENAUTH_FIELD_INT,         /* long long; 0: absent */
    GENAUTH_FIELD_OBJECT,      /* const cJSON * (an object); NULL: absent */
} genauth_field_type;

#define GENAUTH_FIELD_REQUIRED 1
#define GENAUTH_FIELD_NONEMPTY 2 /* a string that must not be "" */
#define GENAUTH_FIELD_HAS_LEN 4  /* a string whose length is at len_offset */
#define GENAUTH_MAX_FIELDS 8

/* One field of a request DTO: its JSON name, type, and where the DTO struct
 * keeps it (len_offset: a list's count, or a string's length). */
typedef struct {
    const char *name;
    genauth_field_type type;
    size_t offset;
    size_t len_offset;
    int flags;
} genauth_field;

typedef struct {
    const char *method; /* "GET" or "POST" */
    const char *path;
    int is_get;
    size_t nfields;
    genauth_field fields[GENAUTH_MAX_FIELDS];
} genauth_endpoint;

/* The op's row, or NULL for an unknown op. Static. */
const genauth_endpoint *genauth_endpoint_of(genauth_op op);
/* Whether `params` (an object or NULL) fit the endpoint: only its fields,
 * each of its type (null members are left out, so they pass), the required
 * ones present. GENAUTH_E_INVALID naming the field otherwise. A written
 * body (genauth_request) passes for a POST endpoint unread: its writer
 * checked the object it was written from (genauth_request_check). */
genauth_status genauth_endpoint_check(const genauth_endpoint *ep,
                                      const cJSON *params,
                                      genauth_error *err);

/* ---- one call's steps (request.c) ---------------------------------------
 *
 * THE step API: the single call (genauth_client_call), batches (batch.c) and
 * the event-driven engine all drive a call with these, in this order:
 *
 *   conn = genauth_client_acquire(client)
 *   loop (attempt 0, then 1 after a refused token):
 *       genauth_call_prepare(client, conn, req, deadline, 1, NULL, &plan)
 *                                  (may fetch a token: blocks; 0: never)
 *       genauth_conn_setup(conn, &plan, deadline)
 *       ... run conn->easy (genauth_conn_perform, or a multi handle) ...
 *       genauth_conn_finish(conn, result, &http_status)
 *       genauth_call_read(client, conn, http_status, resp)
 *       if genauth_call_should_retry(client, attempt, http_status, env):
 *           clear resp and err, genauth_token_invalidate(plan.generation)
 *           and go round again
 *       elif genauth_retry_plan(client, conn, genauth_retry_classify(...),
 *                               retries, deadline, &until):
 *           clear resp and err, retries++, wait until `until`
 *           (genauth_retry_sleep, or a timer) and go round again,
 *           the attempt unchanged
 *   genauth_client_release(client, conn)
 */

/* Checks `req` against its endpoint, authenticates (token mode: makes
 * conn->api_headers carry a valid token, fetching one if needed and
 * `may_fetch`: see genauth_token_prepare) and encodes
 * it onto `conn`: a POST's JSON body into conn->request, a GET's query
 * string into conn->url; in signature mode the body is in JavaScript's form
 * and the request is signed. Fills *plan. */
genauth_status genauth_call_prepare(genauth_client *client,
                                    genauth_conn *conn,
                                    const genauth_request *req,
                                    double deadline, int may_fetch,
                                    const genauth_token_mark *queued,
                                    genauth_call_plan *plan,
                                    genauth_error *err);

/* Fixed values for tests of the encoding: nonce, date and sdk-version of a
 * signature. */
typedef struct {
    const char *nonce;
    const char *date;
    const char *sdk_version;
} genauth_sign_fixture;

/* The encoding half of genauth_call_prepare, without authentication in token
 * mode: checks and encodes `req` onto conn (and signs it in signature mode,
 * with `fixture`'s values when not NULL). plan->headers is set for signature
 * mode only. */
genauth_status genauth_call_encode(genauth_client *client,
                                   genauth_conn *conn,
                                   const genauth_request *req,
                                   const genauth_sign_fixture *fixture,
                                   genauth_call_plan *plan,
                                   genauth_error *err);

/* Reads the answer on `conn` into `resp`; a DecodeError's excerpt has the
 * token and the secret masked. */
genauth_status genauth_call_read(genauth_client *client, genauth_conn *conn,
                                 long http_status, genauth_envelope *resp,
                                 genauth_error *err);
/* Whether an answer means "token refused, try once more with a new one".
 * `env` is NULL when the body was not an envelope. */
int genauth_call_should_retry(genauth_client *client, int attempt,
                              long http_status, const genauth_envelope *env);

/* Records in both `resp` (unless NULL) and `err` how a call that started
 * at `started` (monotonic seconds) went, after `retries` requests sent
 * again. */
void genauth_call_record(genauth_envelope *resp, genauth_error *err,
                         double started, unsigned retries);

/* ---- retries (retry.c) ---------------------------------------------- */

typedef enum {
    GENAUTH_RETRY_NO,        /* final: it may have reached the server */
    GENAUTH_RETRY_NOT_SENT,  /* nothing of the request left */
    GENAUTH_RETRY_THROTTLED, /* 429: the server did not act on it */
} genauth_retry_kind;

/* What the attempt that ended on `conn` with `st`/`err` (and, when
 * answered, `http_status` and the envelope `env`, NULL when not parsed)
 * allows. */
genauth_retry_kind genauth_retry_classify(genauth_conn *conn,
                                          genauth_status st,
                                          const genauth_error *err,
                                          long http_status,
                                          const genauth_envelope *env);
/* The seconds to wait that the Retry-After header of conn's answer (or of
 * the token fetch its call shares: shares_fetch) asks, as delay-seconds or
 * an HTTP-date (0 for one gone by), or -1: absent or neither. */
double genauth_retry_after(genauth_conn *conn);
/* Whether to send again after `retries_done` retries: 1 with *until (the
 * monotonic time to send at) when max_retries allows and the wait ends
 * before `deadline`. Reads Retry-After from conn's answer. */
int genauth_retry_plan(genauth_client *client, genauth_conn *conn,
                       genauth_retry_kind kind, int retries_done,
                       double deadline, double *until);
/* The same, with the wait the answer asked for given (`asked` seconds, or
 * -1: none). */
int genauth_retry_plan_asked(genauth_client *client, genauth_retry_kind kind,
                             int retries_done, double deadline, double asked,
                             double *until);
/* GENAUTH_E_CLOSED once genauth_client_close has been called: a call that
 * would send its request (the first time, once its token is there, or
 * again: a retry, or the retry with a new token) ends instead, sending
 * nothing more after close. */
genauth_status genauth_send_closed(genauth_client *client,
                                   genauth_error *err);
/* Its message, also when the prereq callback refused the send (transport.c). */
#define GENAUTH_MSG_CLOSED_NOT_SENT                                    \
    "the client was closed: nothing more was sent for the call"
/* Sleeps until `until`, asking the interrupt check every
 * GENAUTH_INTERRUPT_POLL_MS (genauth_client_check_interrupt, for a call
 * begun in fork generation `since`): its error when it says stop, and
 * genauth_send_closed's once the client is closed. */
genauth_status genauth_retry_sleep(genauth_client *client,
                                   unsigned long since, double until,
                                   genauth_error *err);

/* ---- responses (envelope.c) -------------------------------------------- */

/* genauth_envelope_clear for an envelope that held a secret (the token
 * endpoint's answer): every string of the document is wiped first. */
void genauth_envelope_wipe_clear(genauth_envelope *env);
/* The statusCode of an envelope kept as a document (a token refusal's
 * error->auth_envelope), read as genauth_envelope_parse reads it: 1 and
 * *status_code when it is an integer, else 0. */
int genauth_envelope_doc_status(const struct genauth_json_doc *doc,
                                long *status_code);

/* Parses conn->response into `env` (fields read from the envelope).
 * GENAUTH_E_DECODE, with the HTTP status and an excerpt, when the body is not
 * a JSON object; the excerpt is left out when `quiet` (the token endpoint). */
genauth_status genauth_envelope_parse(const genauth_buf *body,
                                      long http_status, int quiet,
                                      genauth_envelope *env,
                                      genauth_error *err);

#endif
