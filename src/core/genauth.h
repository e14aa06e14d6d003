/* genauth-c core: a C client for GenAuth's V3 management API.
 *
 * This header is the whole public surface of the core. It never includes
 * Python.h: a C program can link the core alone. Every object is an opaque
 * handle with a matched new/free pair; every fallible call returns a
 * genauth_status and fills a caller-owned genauth_error (no global state). */
#ifndef GENAUTH_H
#define GENAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The one place the version is written: setup.py reads it for the package. */
#define GENAUTH_VERSION "0.1.0"
#define GENAUTH_SDK_NAME "genauth-c"

/* ---- errors ------------------------------------------------------------ */

typedef enum {
    GENAUTH_OK = 0,
    GENAUTH_E_INVALID,     /* a bad argument; nothing was sent */
    GENAUTH_E_NOMEM,       /* out of memory */
    GENAUTH_E_TRANSPORT,   /* connection, DNS, TLS, response over the size cap */
    GENAUTH_E_TIMEOUT,     /* the call's total time limit ran out */
    GENAUTH_E_DECODE,      /* the body is not a JSON object */
    GENAUTH_E_AUTH,        /* the token endpoint gave no usable token */
    GENAUTH_E_INTERRUPTED, /* the interrupt check asked the call to stop */
    GENAUTH_E_CLOSED,      /* the client was closed */
    GENAUTH_E_CRYPTO,      /* libcrypto failed (random bytes, HMAC): not the
                              caller's fault; nothing was sent */
} genauth_status;

#define GENAUTH_ERRMSG_SIZE 512
#define GENAUTH_EXCERPT_SIZE 200

/* How one call went, for logs and metrics. A call fills it in both its
 * envelope and its error, so the caller reads whichever the outcome is. */
typedef struct {
    double duration;  /* seconds from the call's start to its outcome */
    /* Requests sent again: after a refused token, and the max_retries
     * resends (retry.c). */
    unsigned retries;
} genauth_call_stats;

/* Caller-owned. Zero it (or genauth_error_init) before use; release what a
 * failed call attached with genauth_error_clear. */
typedef struct {
    genauth_status status;
    char message[GENAUTH_ERRMSG_SIZE]; /* never holds the secret or a token */
    long curl_code;                    /* TRANSPORT / TIMEOUT: CURLcode, else 0 */
    long http_status;                  /* DECODE / AUTH: HTTP status, else 0 */
    char excerpt[GENAUTH_EXCERPT_SIZE]; /* DECODE: start of the body (bytes) */
    size_t excerpt_len;
    /* AUTH: the token endpoint's envelope when it refused (it then holds no
     * token), else NULL. Owned by the error; freed by genauth_error_clear. */
    struct genauth_json_doc *auth_envelope;
    genauth_call_stats stats; /* a call that failed: how it went */
} genauth_error;

void genauth_error_init(genauth_error *err);
void genauth_error_clear(genauth_error *err);
/* Sets status and a printf-style message, truncated to fit. Returns status. */
genauth_status genauth_error_set(genauth_error *err, genauth_status status,
                                 const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *genauth_status_name(genauth_status status);

/* ---- process-wide ------------------------------------------------------ */

/* Call before any client (initialises libcurl). Any thread may call it, any
 * number of times (each interpreter that imports the module does): the
 * work is done by the first call that succeeds. Fails when the runtime
 * libcurl is older than the build needs. */
genauth_status genauth_global_init(genauth_error *err);
/* The runtime libcurl version string, for diagnostics. */
const char *genauth_curl_version(void);
/* How many fork()s this process descends from since genauth_global_init: a
 * cheap test (no system call) of whether the process is still the one that
 * recorded a value. */
unsigned long genauth_fork_generation(void);

/* ---- the client -------------------------------------------------------- */

typedef enum {
    GENAUTH_BRAND_GENAUTH = 0, /* https://api.genauth.ai, x-genauth-* */
    GENAUTH_BRAND_AUTHING = 1, /* https://api.authing.cn, x-authing-* */
} genauth_brand;

typedef enum {
    GENAUTH_AUTH_TOKEN = 0,     /* management token, Bearer */
    GENAUTH_AUTH_SIGNATURE = 1, /* AK/SK HMAC-SHA1 request signing */
} genauth_auth_mode;

#define GENAUTH_DEFAULT_TIMEOUT 10.0
/* The largest timeout accepted, in seconds (about 31 years): far beyond any
 * real call, and small enough that every deadline and millisecond count
 * derived from it stays exact and in range. */
#define GENAUTH_MAX_TIMEOUT 1e9
#define GENAUTH_DEFAULT_MAX_RETRIES 2
#define GENAUTH_DEFAULT_MAX_RESPONSE_BYTES ((size_t)16 * 1024 * 1024)

typedef struct {
    const char *access_key_id;     /* required, non-empty */
    const char *access_key_secret; /* required, non-empty */
    const char *host;              /* NULL: the brand's default host */
    double timeout; /* seconds, > 0 and <= GENAUTH_MAX_TIMEOUT; total per call */
    const char *lang;              /* NULL: no lang header; printable ASCII */
    const char *tenant_id;         /* NULL: no app-id header; printable ASCII */
    const char *ca_bundle;         /* NULL: the system's CA store */
    /* A PEM file of CAs used when ca_bundle is NULL and no system store is
     * found (genauth_ca_store_find); NULL: none. */
    const char *ca_fallback;
    int use_unverified_ssl;        /* nonzero: no TLS verification */
    genauth_brand brand;
    genauth_auth_mode auth;
    size_t max_response_bytes; /* 0: GENAUTH_DEFAULT_MAX_RESPONSE_BYTES */
    /* Retries of a request that never reached the server or was throttled
     * (429), within the call's timeout; 0: none. */
    int max_retries;
} genauth_client_options;

/* The system's CA store, for clients given no ca_bundle: $SSL_CERT_FILE,
 * $SSL_CERT_DIR, then the usual file of each major Linux distribution.
 * Returns 1 with one of store->file or store->dir set (pointing into the
 * environment or at static strings: copy them), 0 when none is found. */
typedef struct {
    const char *file;
    const char *dir;
} genauth_ca_store;
int genauth_ca_store_find(genauth_ca_store *store);
/* The same, with `files` (NULL-terminated) in place of the usual files. */
int genauth_ca_store_find_in(const char *const *files,
                             genauth_ca_store *store);
/* `paths` (one path, or when `list` several split at ':' as OpenSSL reads
 * $SSL_CERT_DIR) with each relative one made absolute against the current
 * directory. A client checks its CA paths when it is made and libcurl opens
 * them at each handshake, relative to the directory current then: after a
 * chdir() a relative one would fail every call, or name another file. A
 * new string the caller frees; NULL for NULL, or with *nomem set to 1 when
 * out of memory. */
char *genauth_ca_path_absolute(const char *paths, int list, int *nomem);
/* Whether a client made now with `opts` looks for the system's CA store
 * (and so may use opts->ca_fallback): one given no ca_bundle that makes a
 * verified TLS connection, to an https:// host unless use_unverified_ssl,
 * or to the https:// proxy the environment names for its host (an https://
 * proxy is verified whatever use_unverified_ssl says). Reads the proxy
 * variables as the client will when it is made. */
int genauth_ca_store_wanted(const genauth_client_options *opts);

/* Fills the defaults (timeout 10 s, genauth brand, token auth, 2 retries). */
void genauth_client_options_init(genauth_client_options *opts);

typedef struct genauth_client genauth_client;

/* Returns nonzero to abort the call in progress with GENAUTH_E_INTERRUPTED.
 * Called about every 100 ms while a call waits on the network, from the
 * calling thread. */
typedef int (*genauth_interrupt_fn)(void *userdata);

/* Validates the options (a bad one is GENAUTH_E_INVALID naming it), copies
 * them, opens nothing yet. The caller frees *out with genauth_client_free. */
genauth_status genauth_client_new(const genauth_client_options *opts,
                                  genauth_client **out, genauth_error *err);
/* Not thread-safe against calls in flight: free only an idle client. */
void genauth_client_free(genauth_client *client);
/* Releases the connections; later calls fail with GENAUTH_E_CLOSED.
 * Safe while other threads are inside a call. Idempotent. */
void genauth_client_close(genauth_client *client);
int genauth_client_is_closed(const genauth_client *client);
void genauth_client_set_interrupt(genauth_client *client,
                                  genauth_interrupt_fn fn, void *userdata);
/* Things that happen inside a call which its caller does not see in the
 * outcome, reported as they happen (for logging). */
typedef enum {
    GENAUTH_EVENT_TOKEN_FETCH = 1, /* a management token was fetched */
} genauth_event_type;

typedef struct {
    genauth_event_type type;
    genauth_status status; /* GENAUTH_OK, or why it failed */
    long http_status;      /* 0 when no answer came */
    double duration;       /* seconds */
    const char *message;   /* the error's message when it failed, else "" */
} genauth_event;

/* Called from the thread making the call, with no lock of the client held,
 * after the event; never given the secret or a token. */
typedef void (*genauth_event_fn)(const genauth_event *event, void *userdata);

/* Sets (or, with NULL, removes) the event hook. Set it before calls start. */
void genauth_client_set_event_hook(genauth_client *client,
                                   genauth_event_fn fn, void *userdata);

/* The normalised base URL (no trailing slash). Owned by the client. */
const char *genauth_client_base_url(const genauth_client *client);
/* How many management tokens this client has fetched (successful fetches;
 * for tests and stats). */
unsigned long genauth_client_token_fetches(const genauth_client *client);
/* How many token fetches brought no token (refused, unreachable...). */
unsigned long genauth_client_token_fetch_failures(const genauth_client *client);

/* ---- exact JSON documents ---------------------------------------------- */

/* A parsed JSON document that loses nothing (the error struct above holds
 * one): cJSON keeps numbers as doubles and stops strings at U+0000, so the
 * document also keeps, in document order, the text of every number literal
 * and of every string that holds \u0000. */
typedef struct genauth_json_doc genauth_json_doc;

/* ---- requests ---------------------------------------------------------- */

/* The endpoints, one per method of the official SDKs. Adding one is a value
 * here, a DTO struct below and a row in endpoints.c (README.md, "How the
 * code is laid out", lists what the binding adds). */
typedef enum {
    GENAUTH_OP_TRIGGER_WEBHOOK = 0,  /* POST /api/v3/trigger-webhook */
    GENAUTH_OP_CREATE_WEBHOOK,       /* POST /api/v3/create-webhook */
    GENAUTH_OP_LIST_WEBHOOKS,        /* GET  /api/v3/list-webhooks */
    GENAUTH_OP_GET_WEBHOOK,          /* GET  /api/v3/get-webhook */
    GENAUTH_OP_UPDATE_WEBHOOK,       /* POST /api/v3/update-webhook */
    GENAUTH_OP_DELETE_WEBHOOK,       /* POST /api/v3/delete-webhook */
    GENAUTH_OP_GET_WEBHOOK_LOGS,     /* POST /api/v3/get-webhook-logs */
    GENAUTH_OP_GET_WEBHOOK_EVENT_LIST, /* GET /api/v3/get-webhook-event-list */
    GENAUTH_OP_COUNT
} genauth_op;

/* The endpoint's path ("/api/v3/list-webhooks") and HTTP method ("GET" or
 * "POST"); NULL for an unknown op. Static strings. */
const char *genauth_op_path(genauth_op op);
const char *genauth_op_method(genauth_op op);

/* A call to any endpoint: the op and its parameters as one JSON object with
 * the API's camelCase names ({"webhookId": "wh1", "page": 2}), in json.h's
 * exact form. A POST sends them as the JSON body, a GET as the query string
 * (in the object's order, percent-encoded as Python's urlencode does; a bool
 * as true/false). A member that is absent, or JSON null, is left out.
 * Each member is checked against the endpoint's table before anything is
 * sent: an unknown name, a missing required one or a wrong type is
 * GENAUTH_E_INVALID naming it. Borrowed: the caller keeps it alive.
 *
 * A POST's body written already: `params` may instead be a cJSON_Raw node
 * whose text is the object (as genauth_json_write writes one, without null
 * members), sent as it is. Its members are not checked then: check the
 * object it is written from with genauth_request_check. It cannot be signed
 * (signature mode signs the members: GENAUTH_E_INVALID). It lets a caller
 * holding many requests (a batch) keep each as one small block of text. */
typedef struct {
    genauth_op op;
    const cJSON *params; /* an object, a written body, or NULL for none */
} genauth_request;

/* Checks `req`'s members against its endpoint's table as a call does
 * (GENAUTH_E_INVALID naming the member), sending nothing. */
genauth_status genauth_request_check(const genauth_request *req,
                                     genauth_error *err);

/* The request DTOs of the reference, for C callers: each converts to a
 * genauth_request through the endpoint table (genauth_request_from_dto).
 * Borrowed pointers. Absent: NULL pointers, GENAUTH_UNSET bools, 0 ints. */
#define GENAUTH_UNSET (-1)

/* TriggerWebhookDto. */
typedef struct {
    const char *webhook_id;   /* UTF-8, webhook_id_len bytes */
    size_t webhook_id_len;
    const cJSON *request_headers; /* an object, or NULL to leave it out */
    const cJSON *request_body;    /* an object, or NULL to leave it out */
} genauth_trigger_webhook_req;

/* CreateWebhookDto (update: UpdateWebhookDto, webhook_id required and the
 * rest optional). Strings NUL-terminated UTF-8. */
typedef struct {
    const char *webhook_id;        /* update only */
    const char *name;
    const char *url;
    const char *content_type;      /* "application/json" or
                                    * "application/x-www-form-urlencoded" */
    const char *const *events;     /* events_count names */
    size_t events_count;
    int enabled;                   /* 0, 1 or GENAUTH_UNSET */
    const char *secret;
    const cJSON *retry_config;     /* an object, or NULL */
} genauth_webhook_req;

/* ListWebhooksDto, GetWebhookLogsDto (webhook_id required), GetWebhookDto
 * (webhook_id only). page from 1; limit at most 50 (the server checks). */
typedef struct {
    const char *webhook_id;
    long long page;  /* 0: left out */
    long long limit; /* 0: left out */
} genauth_webhook_page_req;

/* DeleteWebhookDto. */
typedef struct {
    const char *const *webhook_ids;
    size_t webhook_ids_count;
} genauth_delete_webhooks_req;

/* Builds the genauth_request for `dto`, whose type is the op's (trigger:
 * genauth_trigger_webhook_req; create/update: genauth_webhook_req;
 * list/get/logs: genauth_webhook_page_req; delete:
 * genauth_delete_webhooks_req; event list: NULL). *params_out is the
 * parameter object (it refers to the DTO's JSON trees without copying them);
 * the caller frees it with cJSON_Delete after the call, and keeps the DTO
 * alive until then. */
genauth_status genauth_request_from_dto(genauth_op op, const void *dto,
                                        genauth_request *req,
                                        cJSON **params_out,
                                        genauth_error *err);

/* A response envelope, {statusCode, message, apiCode?, requestId?, data}, as
 * the server sent it, plus the fields the client reads from it (pointing into
 * `doc`). TriggerWebhookRespDto is this envelope with data.response. */
typedef struct {
    genauth_json_doc *doc; /* owned: the whole envelope, exact */
    long http_status;
    int has_status_code;
    long status_code;
    int has_api_code;
    long api_code;
    const char *message;    /* NULL when absent */
    const char *request_id; /* NULL when absent */
    const cJSON *data;      /* NULL when absent */
    const cJSON *response;  /* data.response (trigger-webhook), or NULL */
    /* A failure envelope (statusCode not 200) that quotes the token, the
     * signature, the key secret or the webhook secret the request was sent
     * with: an error page echoing the request. Nothing of it goes into an
     * exception or a log line. */
    int quotes_credential;
    genauth_call_stats stats; /* how the call went */
} genauth_envelope;

void genauth_envelope_init(genauth_envelope *env);
void genauth_envelope_clear(genauth_envelope *env);
/* The whole envelope, exact (numbers and U+0000 kept). Owned by `env`. */
static inline const genauth_json_doc *
genauth_envelope_doc(const genauth_envelope *env)
{
    return env->doc;
}

/* One call to any endpoint: authenticate (token or signature), send, read
 * the envelope, retry once with a new token after a 401, and send again
 * what never reached the server or was throttled, up to max_retries times
 * (retry.c). On GENAUTH_OK, *resp holds the envelope (whatever its
 * statusCode); the caller clears it. Thread-safe: many threads may call on
 * one client. */
genauth_status genauth_client_call(genauth_client *client,
                                   const genauth_request *req,
                                   genauth_envelope *resp,
                                   genauth_error *err);

/* genauth_client_call for a DTO (see genauth_request_from_dto). */
genauth_status genauth_client_call_dto(genauth_client *client, genauth_op op,
                                       const void *dto,
                                       genauth_envelope *resp,
                                       genauth_error *err);

/* POST /api/v3/trigger-webhook: genauth_client_call_dto for the op. */
genauth_status genauth_client_trigger_webhook(
    genauth_client *client, const genauth_trigger_webhook_req *req,
    genauth_envelope *resp, genauth_error *err);

/* ---- batches ---------------------------------------------------------- */

/* One call of a batch: the request in, and either the envelope (status
 * GENAUTH_OK) or the error out. Caller-owned; release what the batch put in
 * it with genauth_batch_item_clear. */
typedef struct {
    genauth_request req;
    genauth_status status;
    genauth_envelope resp;
    /* The call's error when status is not GENAUTH_OK, else NULL: made only
     * for a call that failed (an error struct is about 0.7 KB). */
    genauth_error *err;
} genauth_batch_item;

/* Frees the item's envelope and error (resp and err are then empty). */
void genauth_batch_item_clear(genauth_batch_item *item);
/* Frees the item's error only. */
void genauth_batch_item_clear_error(genauth_batch_item *item);

/* Told that items[index] has its outcome, as its call ends (not for the
 * calls that the batch's own error ends). It runs on the batch's thread
 * with none of the client's locks that a call of its own would take held,
 * and may read the item and clear it (genauth_batch_item_clear): a caller
 * that takes each outcome there holds each envelope only until its call
 * ends, not until the batch's last. 0 to go on; anything else stops the
 * batch as the client's interrupt callback does (GENAUTH_E_INTERRUPTED):
 * a caller that cannot take an outcome, or is told to stop while it runs
 * (a signal), sends no more calls. */
typedef int (*genauth_batch_done_fn)(void *userdata, size_t index);

/* Runs the calls of `items` (any endpoints) concurrently over libcurl's
 * multi interface, at most `concurrency` in flight, sharing the client's
 * token and connections; each call is bounded by the client's timeout from
 * when it starts. Every item gets its own outcome; `done` (may be NULL) is
 * told of each as it comes. Returns GENAUTH_OK when the batch ran, even if
 * calls failed; an error only when the whole batch stopped (closed client,
 * interrupted, by `done` too, out of memory): then items not finished
 * carry that error. */
genauth_status genauth_client_batch(genauth_client *client,
                                    genauth_batch_item *items, size_t count,
                                    size_t concurrency,
                                    genauth_batch_done_fn done, void *userdata,
                                    genauth_error *err);

/* ---- calls driven by an event loop (evloop.c) -------------------------- */

/* An engine that runs calls (to any endpoint) on one libcurl multi handle
 * without blocking and without threads of its own: it tells the caller which
 * sockets to watch and when to wake it (the hooks), and the caller's event
 * loop tells it when a socket is ready or the timer is due. Every function
 * here, the hooks and the completion callbacks run on one thread at a time:
 * the caller's loop thread, or another that the caller makes wait for it
 * (to close the engine from there). A management token is fetched on the
 * same multi handle, once for all the calls that need it.
 *
 * In a child forked since the engine was made (caller code forked while
 * calls waited, or the child uses an engine its parent made), everything
 * the engine holds is the parent's: at its next entry (a function here, or
 * a completion callback's return, or a watch hook's return inside libcurl's
 * action, which then stops at once) it gives up. Its calls end with
 * GENAUTH_E_TRANSPORT, saying that the process forked; nothing is read,
 * written, closed or removed from libcurl of the parent's connections;
 * each watched socket has the child's descriptor closed (the parent's
 * keeps it open) before the watch hook is told to stop watching it, so
 * that an event loop sharing the parent's epoll set fails to unwatch it
 * (EBADF) rather than unwatch it for the parent too; later starts fail as
 * the calls did. */
typedef struct genauth_evloop genauth_evloop;
typedef struct genauth_evcall genauth_evcall;

#define GENAUTH_EV_READ 1
#define GENAUTH_EV_WRITE 2

/* The engine's two timers (genauth_evloop_hooks.timer). */
#define GENAUTH_EV_SOON 0
#define GENAUTH_EV_LATER 1

/* How many connections an engine opens at most. */
#define GENAUTH_EV_MAX_CONNECTIONS 64

typedef struct {
    /* Watch `fd` for `events` (GENAUTH_EV_READ | GENAUTH_EV_WRITE) from now
     * on instead of `was` (what it was watched for until now, 0 at first);
     * 0: stop watching it. Called only when that changes. A kept-alive
     * connection's socket stays watched for reading between its transfers;
     * it is unwatched once it is ready with no transfer on it (the server
     * closed it: the loop hears of an idle connection only then), and
     * always before it is closed. */
    void (*watch)(void *userdata, int fd, int events, int was);
    /* Call genauth_evloop_timer_fired(ev, which) once, `ms` milliseconds
     * from now; -1: cancel. There are two timers, each call replacing the
     * previous one of its kind: GENAUTH_EV_SOON, always 0 ms (as soon as
     * possible, but not from inside this hook), and GENAUTH_EV_LATER, moved
     * only to an earlier time (one that fires early does no harm). */
    void (*timer)(void *userdata, int which, long ms);
    void *userdata;
} genauth_evloop_hooks;

/* A call ended: GENAUTH_OK with the envelope in *resp, or the error in *err
 * (GENAUTH_E_CLOSED when the engine was closed meanwhile). Both are borrowed
 * for the callback's duration; the call's handle is gone once it returns. */
typedef void (*genauth_evcall_done_fn)(void *userdata, genauth_status status,
                                       const genauth_envelope *resp,
                                       const genauth_error *err);

/* An engine for `client` (which must outlive it). Calls go out at most
 * GENAUTH_EV_MAX_CONNECTIONS connections at a time; more wait in libcurl's
 * queue within their timeout. Free with genauth_evloop_free. */
genauth_status genauth_evloop_new(genauth_client *client,
                                  const genauth_evloop_hooks *hooks,
                                  genauth_evloop **out, genauth_error *err);
/* Ends the calls in flight with GENAUTH_E_CLOSED (their callbacks run) and
 * closes the connections; later starts fail with GENAUTH_E_CLOSED.
 * Idempotent. Not from inside a hook or a completion callback. In a child
 * forked since the engine was made it gives up instead (see above). */
void genauth_evloop_close(genauth_evloop *ev);
/* Closes (see above), then frees. NULL is fine. */
void genauth_evloop_free(genauth_evloop *ev);
/* The caller's loop saw `fd` ready for `events`, or the timer is due. These
 * run the completion callbacks of the calls that ended. */
void genauth_evloop_socket_ready(genauth_evloop *ev, int fd, int events);
void genauth_evloop_timer_fired(genauth_evloop *ev, int which);
/* For the calls of a batch, made together and started over time: the mark
 * of their queueing, genauth_evloop_start's `queued_at`. A token fetch that
 * ends after it and fails for good (a refusal, an answer that is not a
 * token) is then those calls' failure too, not asked again by each. */
unsigned long genauth_evloop_batch_mark(genauth_evloop *ev);
/* Starts a call of `req`, whose parameters the caller keeps alive and
 * unchanged until the call ends or is cancelled. The parameters are checked
 * first: bad ones are GENAUTH_E_INVALID naming them, before anything (a
 * token fetch included) is sent. The call is bounded by the client's timeout
 * from now, a wait for the token included. `done` runs later, never from in
 * here. On failure (bad input, closed, no memory) nothing was sent and
 * `done` will not run. `queued_at`: a batch's genauth_evloop_batch_mark(),
 * or NULL for a call of its own. */
genauth_status genauth_evloop_start(genauth_evloop *ev,
                                    const genauth_request *req,
                                    const unsigned long *queued_at,
                                    genauth_evcall_done_fn done,
                                    void *userdata, genauth_evcall **out,
                                    genauth_error *err);
/* Stops a call that has not ended: its transfer leaves libcurl at once (and
 * a request already under way loses its connection, which is closed rather
 * than reused); `done` will not run. */
void genauth_evloop_cancel(genauth_evloop *ev, genauth_evcall *call);
/* How a call that has not ended went so far, into err->stats: for the line
 * of a call about to be cancelled. */
void genauth_evcall_record(const genauth_evcall *call, genauth_error *err);
/* Nonzero in a child forked since `ev` was made (see above). */
int genauth_evloop_forked(const genauth_evloop *ev);
/* Calls started and not yet ended or cancelled (for tests). */
size_t genauth_evloop_calls(const genauth_evloop *ev);
/* fn(userdata, arg) for the `userdata` of every call started and not yet
 * ended or cancelled (a garbage collector's traversal); stops at, and
 * returns, the first nonzero result. fn must not start, cancel or end
 * calls. */
int genauth_evloop_each(const genauth_evloop *ev,
                        int (*fn)(void *userdata, void *arg), void *arg);
/* fn(fd, events, arg) for every socket the watch hook watches now, with
 * what for (for tests); stops at, and returns, the first nonzero result. */
int genauth_evloop_each_watched(const genauth_evloop *ev,
                                int (*fn)(int fd, int events, void *arg),
                                void *arg);
/* Nonzero when the runtime libcurl resolves names on its own threads, so
 * that an event loop thread never waits for DNS. */
int genauth_curl_async_dns(void);

#ifdef __cplusplus
}
#endif
#endif
