/* What the core's files share with each other but not with users: the
 * client's layout, pooled connections, the token cache and small helpers. */
#ifndef GENAUTH_INTERNAL_H
#define GENAUTH_INTERNAL_H

#include <pthread.h>
#include <curl/curl.h>

#include "genauth.h"
#include "buf.h"
#include "sign.h"

/* How often a call waiting on the network asks the interrupt check. */
#define GENAUTH_INTERRUPT_POLL_MS 100

/* How many idle connections a batch's multi handle keeps open at most. */
#define GENAUTH_MAX_CONNECTIONS 256

/* ---- clock -------------------------------------------------------------- */

/* Seconds on the monotonic clock. */
double genauth_now(void);

/* The clock a client's token cache runs on: genauth_now(), or in tests the
 * number in GENAUTH_TEST_CLOCK_FILE (client.c). */
double genauth_client_now(const genauth_client *client);

/* ---- host URL (url.c) ------------------------------------------------- */

/* The base URL for `host` (NULL: the brand's default) with the scheme
 * lower-cased and trailing slashes dropped. The caller frees *out. */
genauth_status genauth_url_normalize(const char *host, genauth_brand brand,
                                     char **out, genauth_error *err);

/* ---- JWT (jwt.c) -------------------------------------------------------- */

/* The `scoped_userpool_id` claim of a JWT, its payload decoded as base64url.
 * The caller frees *out. GENAUTH_E_AUTH when absent or malformed. */
genauth_status genauth_jwt_userpool_id(const char *token, char **out,
                                       genauth_error *err);

/* ---- connections (transport.c) ------------------------------------------ */

/* One libcurl easy handle with its buffers, used by one call at a time and
 * kept in the client's pool between calls so its connection stays alive. */
typedef struct genauth_conn {
    CURL *easy;
    CURLM *multi; /* drives `easy` so a waiting call can be interrupted */
    genauth_buf request;  /* the body being sent */
    genauth_buf response; /* the body received */
    size_t max_response_bytes;
    int over_cap; /* the body outgrew max_response_bytes */
    /* This handle's copy of the authenticated header list, built for the
     * token generation `api_headers_gen` (0: none yet). */
    struct curl_slist *api_headers;
    unsigned long api_headers_gen;
    /* What is set on `easy` now, to skip setopt calls that change nothing. */
    const struct curl_slist *cur_headers;
    const char *cur_url;
    /* Signature mode: this handle's signature and header list, rebuilt for
     * every request. */
    genauth_signature signature;
    struct curl_slist *signed_headers;
    char errbuf[CURL_ERROR_SIZE];
    struct genauth_conn *next; /* in the idle pool */
} genauth_conn;

/* A new handle configured for `client`. NULL: out of memory (err set). */
genauth_conn *genauth_conn_new(genauth_client *client, genauth_error *err);
/* Frees the handle and closes its connection. */
void genauth_conn_free(genauth_conn *conn);
/* Drops the handle without closing its socket or freeing what libcurl
 * holds: after fork() the connection belongs to the parent. */
void genauth_conn_abandon(genauth_conn *conn);

/* Sets `conn` up to POST conn->request to `url` with `headers` within the
 * monotonic `deadline`, for genauth_conn_post or a batch's multi handle. */
genauth_status genauth_conn_setup(genauth_conn *conn, const char *url,
                                  const struct curl_slist *headers,
                                  double deadline, genauth_error *err);
/* After the transfer ended with `result`: the error, or *http_status. */
genauth_status genauth_conn_finish(genauth_conn *conn, CURLcode result,
                                   long *http_status, genauth_error *err);

/* POSTs conn->request to `url` with `headers`, collecting the body into
 * conn->response, bounded by the monotonic `deadline`. Sets *http_status. */
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
    char *token;           /* secret: never printed */
    char *userpool_id;
    double expires_at;     /* monotonic seconds */
    double refresh_at;     /* expires_at less the refresh margin */
    unsigned long generation; /* bumped on every new token and on invalidation */
    unsigned long fetches;
} genauth_token_cache;

struct genauth_client {
    /* Options, copied. */
    char *access_key_id;
    char *access_key_secret;
    char *base_url;
    char *lang, *tenant_id, *ca_bundle;
    double timeout;
    int use_unverified_ssl;
    genauth_brand brand;
    genauth_auth_mode auth;
    size_t max_response_bytes;
    const char *header_prefix; /* "x-genauth-" / "x-authing-" */
    /* Connections idle longer than this are not reused (50 s; tests set
     * GENAUTH_TEST_MAX_IDLE_SECONDS to see it happen without waiting). */
    long max_idle_seconds;
    /* Tests only: GENAUTH_TEST_CLOCK_FILE, or NULL (client.c). */
    char *test_clock_file;

    /* Built once per client. */
    char *token_url;
    char *trigger_webhook_url;
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

    /* The pool of idle connections, and the share handle they use for DNS
     * and TLS sessions. */
    pthread_mutex_t pool_mu;
    genauth_conn *idle;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    unsigned long fork_generation;
    int closed;

    genauth_interrupt_fn interrupt;
    void *interrupt_data;
};

/* A connection from the pool, or a new one. NULL with err set (closed, or no
 * memory). Give it back with genauth_client_release. */
genauth_conn *genauth_client_acquire(genauth_client *client,
                                     genauth_error *err);
/* In a child after fork(): drop what the parent's connections live in
 * (acquire does this too; a batch needs it before it takes batch_multi). */
void genauth_client_adopt_if_forked(genauth_client *client);
/* Back into the pool; freed instead when the client was closed meanwhile.
 * (A transfer cut short has already had its connection closed by libcurl.) */
void genauth_client_release(genauth_client *client, genauth_conn *conn);

/* Asks the interrupt check, at most every GENAUTH_INTERRUPT_POLL_MS
 * (*next_check is when it may ask next), whether to stop. */
int genauth_client_should_stop(genauth_client *client, double *next_check);

/* ---- tokens (token.c) --------------------------------------------------- */

/* Makes conn->api_headers carry a valid token, fetching one when the cache
 * has none or it is about to expire (at most one fetch in flight). Sets
 * *generation to the token's generation, for genauth_token_invalidate. */
genauth_status genauth_token_prepare(genauth_client *client,
                                     genauth_conn *conn, double deadline,
                                     unsigned long *generation,
                                     genauth_error *err);
/* The server refused the token of `generation`: forget it, unless another
 * thread has already replaced it. */
void genauth_token_invalidate(genauth_client *client,
                              unsigned long generation);
void genauth_token_cache_init(genauth_token_cache *cache);
/* Frees a header list after overwriting its text (it may hold a token). */
void genauth_headers_wipe_free(struct curl_slist *list);
void genauth_token_cache_clear(genauth_token_cache *cache);

/* ---- one call's steps (trigger_webhook.c, shared with batch.c) ---------- */

/* Authenticates and encodes `req` onto `conn`: *headers is the header list
 * to send, *generation the token's (for genauth_token_invalidate). */
genauth_status genauth_call_prepare(genauth_client *client,
                                    genauth_conn *conn,
                                    const genauth_trigger_webhook_req *req,
                                    double deadline,
                                    unsigned long *generation,
                                    const struct curl_slist **headers,
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

/* ---- responses (envelope.c) -------------------------------------------- */

/* Parses conn->response into `env` (fields read from the envelope).
 * GENAUTH_E_DECODE, with the HTTP status and an excerpt, when the body is not
 * a JSON object; the excerpt is left out when `quiet` (the token endpoint). */
genauth_status genauth_envelope_parse(const genauth_buf *body,
                                      long http_status, int quiet,
                                      genauth_envelope *env,
                                      genauth_error *err);

#endif
