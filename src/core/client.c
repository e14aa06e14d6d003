/* The client: options validated and copied once, everything a call needs
 * built once (URLs, header lists, the token request), and a pool of
 * connections shared by the threads that use it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "json.h"

/* Bumped in the child after fork(): pooled connections made before it
 * belong to the parent and must not be used or closed by the child. */
static volatile unsigned long fork_generation;
/* Held while a client is adopted after fork()
 * (genauth_client_adopt_if_forked). Every other lock of a client may have
 * been held by a thread of the parent at the fork, and stay held for ever
 * in the child; this one is made afresh there, before any thread of the
 * child can take it. */
static pthread_mutex_t adopt_mu = PTHREAD_MUTEX_INITIALIZER;
/* genauth_global_init's work is done once per process: every interpreter
 * that imports the module calls it, and two with a GIL each may call it at
 * the same time (curl_global_init is thread-safe only from libcurl 7.84).
 * global_done is read and set under global_mu; a failure is not kept, the
 * next call tries again. */
static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static int global_done;

static void
after_fork_in_child(void)
{
    pthread_mutex_init(&adopt_mu, NULL);
    pthread_mutex_init(&global_mu, NULL);
    fork_generation++;
}

double
genauth_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Tests step a client's token clock past a refresh point instead of waiting
 * for it (the margin can be a minute): GENAUTH_TEST_CLOCK_FILE, read when
 * the client is made, names a file holding what this clock reads, in
 * seconds; it stands still until the test writes another number. Only the
 * token cache reads this clock; deadlines stay on genauth_now(). */
double
genauth_client_now(const genauth_client *c)
{
    double now = 0;
    if (c->test_clock_file) {
        FILE *f = fopen(c->test_clock_file, "r");
        int ok = f && fscanf(f, "%lf", &now) == 1 && isfinite(now);
        if (f)
            fclose(f);
        if (ok)
            return now;
    }
    return genauth_now();
}

/* The idle limit: GENAUTH_MAX_IDLE_SECONDS, or a shorter one a test sets in
 * GENAUTH_TEST_MAX_IDLE_SECONDS to see it at work without waiting 50 s. */
static long
max_idle_seconds(void)
{
    const char *v = getenv("GENAUTH_TEST_MAX_IDLE_SECONDS");
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || n < 1)
        return GENAUTH_MAX_IDLE_SECONDS;
    return n;
}

void
genauth_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

genauth_status
genauth_global_init(genauth_error *err)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    /* The headers a build used say nothing of the library loaded at run
     * time; curl_multi_poll needs 7.66 and more. */
    if (!info || info->version_num < 0x074200)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "libcurl %s is too old: genauth-c needs "
                                 "7.66.0 or newer",
                                 info ? info->version : "(unknown)");
    genauth_status st = GENAUTH_OK;
    pthread_mutex_lock(&global_mu);
    if (!global_done) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                                   "curl_global_init failed: %s",
                                   curl_easy_strerror(rc));
        } else if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) {
            curl_global_cleanup(); /* balances the init: tried again */
            st = genauth_error_set(err, GENAUTH_E_NOMEM,
                                   "pthread_atfork failed");
        } else {
            global_done = 1;
        }
    }
    pthread_mutex_unlock(&global_mu);
    return st;
}

unsigned long
genauth_fork_generation(void)
{
    return fork_generation;
}

const char *
genauth_curl_version(void)
{
    return curl_version_info(CURLVERSION_NOW)->version;
}

void
genauth_client_options_init(genauth_client_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->timeout = GENAUTH_DEFAULT_TIMEOUT;
    opts->max_retries = GENAUTH_DEFAULT_MAX_RETRIES;
    opts->brand = GENAUTH_BRAND_GENAUTH;
    opts->auth = GENAUTH_AUTH_TOKEN;
}

/* ---- the share handle's locks ------------------------------------------ */

static void
share_lock(CURL *handle, curl_lock_data data, curl_lock_access access,
           void *userptr)
{
    (void)handle;
    (void)access;
    genauth_client *client = userptr;
    pthread_mutex_lock(&client->share_mu[data]);
}

static void
share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
    (void)handle;
    genauth_client *client = userptr;
    pthread_mutex_unlock(&client->share_mu[data]);
}

static CURLSH *
share_new(genauth_client *client)
{
    CURLSH *share = curl_share_init();
    if (!share)
        return NULL;
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, client);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    /* Not CURL_LOCK_DATA_CONNECT: libcurl does not support sharing
     * connections between concurrent threads. Each pooled handle keeps its
     * own connection instead, and batches keep theirs (batch.c). */
    return share;
}

/* ---- option checks ------------------------------------------------------- */

/* The longest value `check_header_value` lets into a header: servers
 * refuse a longer header line (nginx's large_client_header_buffers, Apache's
 * LimitRequestFieldSize: 8 KiB), and one of a MiB would fail every call as a
 * request head libcurl does not build. */
#define MAX_HEADER_VALUE 8192

/* Anything that becomes a header value must not be able to end the header.
 * `ascii`: it must also be ASCII and at most MAX_HEADER_VALUE bytes (it
 * always goes in a header, which HTTP carries as Latin-1 at best and a
 * signature needs as ASCII, sign.c). */
static genauth_status
check_header_value(const char *name, const char *value, int allow_empty,
                   int ascii, genauth_error *err)
{
    if (!allow_empty && !value[0])
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "%s: must not be empty", name);
    for (const char *p = value; *p; p++) {
        if (ascii && p - value == MAX_HEADER_VALUE)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: longer than %d bytes (it is sent "
                                     "in an HTTP header, which servers cap "
                                     "at about that)",
                                     name, MAX_HEADER_VALUE);
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: must not contain CR, LF or other "
                                     "control characters",
                                     name);
        /* Refused here, rather than by every signed call. */
        if (ascii && (unsigned char)*p >= 0x80)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: must be ASCII (it is sent in an "
                                     "HTTP header)",
                                     name);
    }
    return GENAUTH_OK;
}

static char *
dup_or_null(const char *s, int *nomem)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *nomem = 1;
    return d;
}

/* Appends the header line a + b + c (any may be ""). */
static struct curl_slist *
append_header(struct curl_slist *list, int *nomem, const char *a,
              const char *b, const char *c)
{
    if (*nomem)
        return list;
    genauth_buf line;
    genauth_buf_init(&line);
    struct curl_slist *grown = NULL;
    if (genauth_buf_append_str(&line, a) == 0 &&
        genauth_buf_append_str(&line, b) == 0 &&
        genauth_buf_append_str(&line, c) == 0)
        grown = curl_slist_append(list, line.data);
    genauth_buf_clear(&line);
    if (!grown) {
        *nomem = 1;
        return list;
    }
    return grown;
}

/* The headers every request carries, after content-type (and, on API calls,
 * the authorization and user pool headers the token cache adds). */
static struct curl_slist *
append_common_headers(genauth_client *c, struct curl_slist *list, int *nomem)
{
    const char *pfx = c->header_prefix;
    list = append_header(list, nomem, pfx, "sdk-version: ",
                         GENAUTH_SDK_NAME ":" GENAUTH_VERSION);
    if (c->lang)
        list = append_header(list, nomem, pfx, "lang: ", c->lang);
    if (c->tenant_id)
        list = append_header(list, nomem, pfx, "app-id: ", c->tenant_id);
    /* libcurl would otherwise wait for 100-continue on larger bodies. */
    list = append_header(list, nomem, "Expect:", "", "");
    return list;
}

static char *
join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static char *
token_request_body(const char *ak, const char *sk, size_t *len)
{
    genauth_buf b;
    size_t ak_len = strlen(ak), sk_len = strlen(sk);
    genauth_buf_init(&b);
    /* Room for the longest the body can be (every byte escaped as \uXXXX)
     * before any of the secret is in it: a buffer grown after would be
     * freed by realloc with the secret in it. */
    if (ak_len > ((size_t)-1 - 64) / 12 || sk_len > ((size_t)-1 - 64) / 12 ||
        genauth_buf_reserve(&b, 64 + 6 * (ak_len + sk_len)) < 0 ||
        genauth_buf_append_str(&b, "{\"accessKeyId\":") < 0 ||
        genauth_json_write_string(ak, ak_len, &b) < 0 ||
        genauth_buf_append_str(&b, ",\"accessKeySecret\":") < 0 ||
        genauth_json_write_string(sk, sk_len, &b) < 0 ||
        genauth_buf_append_char(&b, '}') < 0) {
        genauth_buf_wipe_clear(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

genauth_status
genauth_client_new(const genauth_client_options *opts, genauth_client **out,
                   genauth_error *err)
{
    genauth_client *c = NULL;
    int nomem = 0, ca_problem;

    *out = NULL;
    if (!opts->access_key_id || !opts->access_key_id[0])
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "access_key_id: must not be empty");
    if (!opts->access_key_secret || !opts->access_key_secret[0])
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "access_key_secret: must not be empty");
    /* The key id is a header only when signing (else it is in the token
     * request's JSON body). The secret never is (a JSON string, or an HMAC
     * key), but a control character in it is a slip, a file's line end, that
     * the server would only refuse as wrong keys: refused by the same rule,
     * by a message that never quotes it. */
    if (check_header_value("access_key_id", opts->access_key_id, 0,
                           opts->auth == GENAUTH_AUTH_SIGNATURE, err) ||
        check_header_value("access_key_secret", opts->access_key_secret, 0,
                           0, err) ||
        (opts->lang && check_header_value("lang", opts->lang, 0, 1, err)) ||
        (opts->tenant_id &&
         check_header_value("tenant_id", opts->tenant_id, 0, 1, err)))
        return err->status;
    /* Signed, it follows the scheme's word and a space in `authorization`
     * (sign.c refuses it there, on every call). */
    if (opts->auth == GENAUTH_AUTH_SIGNATURE &&
        strchr(opts->access_key_id, ' '))
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "access_key_id: must not contain a space "
                                 "with auth='signature'");
    /* Written so that NaN fails too. */
    if (!(opts->timeout > 0 && opts->timeout <= GENAUTH_MAX_TIMEOUT))
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "timeout: must be a number of seconds "
                                 "greater than 0 and at most %.0f, got %g",
                                 GENAUTH_MAX_TIMEOUT, opts->timeout);
    if (opts->max_retries < 0)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "max_retries: must be 0 or more");
    if (opts->brand != GENAUTH_BRAND_GENAUTH &&
        opts->brand != GENAUTH_BRAND_AUTHING)
        return genauth_error_set(err, GENAUTH_E_INVALID, "brand: unknown");
    if (opts->auth != GENAUTH_AUTH_TOKEN && opts->auth != GENAUTH_AUTH_SIGNATURE)
        return genauth_error_set(err, GENAUTH_E_INVALID, "auth: unknown");
    /* Named, with the reason: a typo in the path and a directory must not
     * read the same. */
    if (opts->ca_bundle &&
        (ca_problem = genauth_ca_file_problem(opts->ca_bundle)) != 0) {
        char reason[128];
        return genauth_error_set(
            err, GENAUTH_E_INVALID, "ca_bundle: cannot use '%s': %s",
            opts->ca_bundle,
            genauth_ca_file_problem_text(ca_problem, reason, sizeof(reason)));
    }

    c = calloc(1, sizeof(*c));
    if (!c)
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    pthread_mutex_init(&c->pool_mu, NULL);
    pthread_mutex_init(&c->batch_mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    genauth_token_cache_init(&c->tokens);
    atomic_init(&c->fork_generation, fork_generation);

    if (genauth_url_normalize(opts->host, opts->brand, &c->base_url, err))
        goto fail;
    if (genauth_proxy_from_env(c->base_url, &c->proxy, &c->no_proxy, err))
        goto fail;
    c->proxy_tls = genauth_proxy_is_tls(c->proxy);
    c->timeout = opts->timeout;
    c->max_retries = opts->max_retries;
    c->use_unverified_ssl = opts->use_unverified_ssl;
    c->brand = opts->brand;
    c->auth = opts->auth;
    c->max_response_bytes = opts->max_response_bytes
                                ? opts->max_response_bytes
                                : GENAUTH_DEFAULT_MAX_RESPONSE_BYTES;
    c->header_prefix =
        c->brand == GENAUTH_BRAND_AUTHING ? "x-authing-" : "x-genauth-";
    c->max_idle_seconds = max_idle_seconds();
    c->test_clock_file = dup_or_null(getenv("GENAUTH_TEST_CLOCK_FILE"), &nomem);
    c->access_key_id = dup_or_null(opts->access_key_id, &nomem);
    c->access_key_secret = dup_or_null(opts->access_key_secret, &nomem);
    c->lang = dup_or_null(opts->lang, &nomem);
    c->tenant_id = dup_or_null(opts->tenant_id, &nomem);
    c->ca_bundle = genauth_ca_path_absolute(opts->ca_bundle, 0, &nomem);
    /* genauth_ca_store_wanted's rule, with the proxy just read: the one the
     * binding asked before offering certifi's bundle as opts->ca_fallback. */
    if (genauth_ca_store_wanted_behind(opts, c->proxy_tls)) {
        genauth_ca_store store;
        if (genauth_ca_store_find(&store)) {
            c->ca_store_file = genauth_ca_path_absolute(store.file, 0, &nomem);
            c->ca_store_dir = genauth_ca_path_absolute(store.dir, 1, &nomem);
        } else if (opts->ca_fallback) {
            c->ca_store_file =
                genauth_ca_path_absolute(opts->ca_fallback, 0, &nomem);
        } else {
            c->no_ca_store = 1;
        }
    }
    c->token_url = join(c->base_url, "/api/v3/get-management-token");
    for (int op = 0; op < GENAUTH_OP_COUNT; op++) {
        c->op_urls[op] = join(c->base_url, genauth_op_path((genauth_op)op));
        nomem |= !c->op_urls[op];
    }
    c->token_request_body = token_request_body(
        opts->access_key_id, opts->access_key_secret, &c->token_request_len);
    if (nomem || !c->token_url ||
        !c->token_request_body)
        goto nomem;

    c->token_headers = append_header(NULL, &nomem,
                                     "Content-Type: application/json", "", "");
    c->token_headers = append_common_headers(c, c->token_headers, &nomem);
    c->base_headers = append_common_headers(c, NULL, &nomem);
    if (nomem)
        goto nomem;
    c->share = share_new(c);
    if (!c->share)
        goto nomem;
    *out = c;
    return GENAUTH_OK;
nomem:
    genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
fail:
    genauth_client_free(c);
    return err->status;
}

static void
free_pool(genauth_conn *conn)
{
    while (conn) {
        genauth_conn *next = conn->next;
        genauth_conn_free(conn);
        conn = next;
    }
}

void
genauth_client_free(genauth_client *c)
{
    if (!c)
        return;
    /* In a child after fork() that never used the client: its locks and
     * condition variables, which may be held or waited on by the parent's
     * threads, cannot be destroyed as they are (pthread_cond_destroy would
     * wait for ever), and its connections are the parent's. */
    genauth_client_adopt_if_forked(c);
    free_pool(c->idle);
    if (c->batch_multi)
        curl_multi_cleanup(c->batch_multi);
    genauth_kept_clear(&c->batch_kept);
    if (c->share)
        curl_share_cleanup(c->share);
    curl_slist_free_all(c->token_headers);
    curl_slist_free_all(c->base_headers);
    genauth_token_cache_clear(&c->tokens);
    /* The secret should not outlive the client in freed memory (the token
     * request's body carries it too). */
    genauth_wipe_free(c->access_key_secret);
    genauth_wipe_free(c->token_request_body);
    free(c->access_key_id);
    free(c->base_url);
    genauth_wipe_free(c->proxy);
    free(c->no_proxy);
    free(c->lang);
    free(c->tenant_id);
    free(c->ca_bundle);
    free(c->test_clock_file);
    free(c->ca_store_file);
    free(c->ca_store_dir);
    free(c->token_url);
    for (int op = 0; op < GENAUTH_OP_COUNT; op++)
        free(c->op_urls[op]);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->pool_mu);
    pthread_mutex_destroy(&c->batch_mu);
    free(c);
}

/* In a child after fork(): forget every connection and the share handle
 * inherited from the parent, and start afresh. Called with adopt_mu held,
 * by the first of the child's threads to use the client. */
static void
adopt_after_fork(genauth_client *c)
{
    pthread_mutex_init(&c->pool_mu, NULL);
    c->in_use = 0; /* the parent's threads' handles are not this process's */
    c->batch_multi = NULL; /* its connections are the parent's too */
    /* Forgotten, not freed: a thread of the parent may have been growing
     * it as the process forked. */
    c->batch_kept = (genauth_kept){.conns = NULL};
    /* No other thread of the child can be inside this client yet (every
     * call adopts first), and a thread of the parent that held a lock or
     * was fetching a token does not exist here: start those afresh. */
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    pthread_mutex_init(&c->batch_mu, NULL);
    /* After the share's locks are made afresh: freeing a handle takes them.
     * The list is taken off the client first: a child of this child forked
     * by another of its threads during the loop must not free it again. */
    genauth_conn *idle = c->idle;
    c->idle = NULL;
    while (idle) {
        genauth_conn *next = idle->next;
        genauth_conn_free_forked(idle);
        idle = next;
    }
    genauth_token_cache_after_fork(&c->tokens);
    c->share = share_new(c);
    /* Last: a thread that sees it sees the locks made afresh. */
    atomic_store(&c->fork_generation, fork_generation);
}

/* In a child after fork(), adopts the client once; before it takes any
 * lock of the client, as those may be held by the parent's threads. */
void
genauth_client_adopt_if_forked(genauth_client *c)
{
    if (atomic_load(&c->fork_generation) == fork_generation)
        return;
    pthread_mutex_lock(&adopt_mu);
    if (atomic_load(&c->fork_generation) != fork_generation)
        adopt_after_fork(c);
    pthread_mutex_unlock(&adopt_mu);
}

void
genauth_client_close(genauth_client *c)
{
    /* In a child after fork(), the pool's connections are the parent's. */
    genauth_client_adopt_if_forked(c);
    pthread_mutex_lock(&c->pool_mu);
    genauth_conn *idle = c->idle;
    c->idle = NULL;
    atomic_store(&c->closed, 1);
    pthread_mutex_unlock(&c->pool_mu);
    /* Closes the idle connections now; a call in flight closes its own as
     * it ends (genauth_client_release). */
    free_pool(idle);
    genauth_client_drop_batch_multi(c);
}

void
genauth_client_drop_batch_multi(genauth_client *c)
{
    /* A batch in progress keeps its multi handle, and calls this as it
     * ends. */
    if (pthread_mutex_trylock(&c->batch_mu) == 0) {
        if (c->batch_multi && c->fork_generation == fork_generation) {
            curl_multi_cleanup(c->batch_multi);
            c->batch_multi = NULL;
            genauth_kept_clear(&c->batch_kept);
        }
        pthread_mutex_unlock(&c->batch_mu);
    }
}

int
genauth_client_is_closed(const genauth_client *c)
{
    return atomic_load(&c->closed);
}

void
genauth_client_set_interrupt(genauth_client *c, genauth_interrupt_fn fn,
                             void *userdata)
{
    c->interrupt = fn;
    c->interrupt_data = userdata;
}

void
genauth_client_set_event_hook(genauth_client *c, genauth_event_fn fn,
                              void *userdata)
{
    c->event_hook = fn;
    c->event_data = userdata;
}

int
genauth_forked_since(unsigned long generation)
{
    return generation != fork_generation;
}

genauth_status
genauth_client_check_fork(genauth_client *c, unsigned long since,
                          genauth_error *err)
{
    if (!genauth_forked_since(since))
        return GENAUTH_OK;
    /* The child gives up what the client holds of the parent's (its idle
     * connections, the batch multi handle, locks that a thread of the
     * parent may hold), as its first call would. */
    genauth_client_adopt_if_forked(c);
    genauth_error_set(err, GENAUTH_E_TRANSPORT,
                      "the process forked while the call waited (caller "
                      "code, such as a log or signal handler, called fork()): "
                      "in the child the call ends here, as its connections "
                      "belong to the parent");
    err->curl_code = 0; /* not libcurl's: never taken for "nothing sent" */
    return err->status;
}

genauth_status
genauth_client_check_interrupt(genauth_client *c, unsigned long since,
                               double *next_check, genauth_error *err)
{
    if (!c->interrupt)
        return GENAUTH_OK;
    double now = genauth_now();
    if (now < *next_check)
        return GENAUTH_OK;
    *next_check = now + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    int stop = c->interrupt(c->interrupt_data);
    /* A signal handler may have forked: checked whatever it answered. */
    if (genauth_client_check_fork(c, since, err) != GENAUTH_OK)
        return err->status;
    if (stop)
        return genauth_error_set(err, GENAUTH_E_INTERRUPTED,
                                 "the call was interrupted");
    return GENAUTH_OK;
}

const char *
genauth_client_base_url(const genauth_client *c)
{
    return c->base_url;
}

unsigned long
genauth_client_token_fetches(const genauth_client *c)
{
    return atomic_load(&c->tokens.fetches);
}

unsigned long
genauth_client_token_fetch_failures(const genauth_client *c)
{
    return atomic_load(&c->tokens.failures);
}

/* Unlinks from the idle pool the handles beyond GENAUTH_IDLE_CONNECTIONS
 * more than those in use, and those idle for over c->max_idle_seconds (the
 * pool is in order of last use, so they are its tail), for the caller to
 * free outside the lock. Called with pool_mu held. */
static genauth_conn *
trim_pool(genauth_client *c, double now)
{
    genauth_conn **link = &c->idle;
    size_t kept = 0;
    while (*link && kept < GENAUTH_IDLE_CONNECTIONS + c->in_use &&
           now - (*link)->idle_since <= (double)c->max_idle_seconds) {
        link = &(*link)->next;
        kept++;
    }
    genauth_conn *cut = *link;
    *link = NULL;
    return cut;
}

genauth_conn *
genauth_client_acquire(genauth_client *c, genauth_error *err)
{
    genauth_conn *conn = NULL, *stale = NULL;
    genauth_client_adopt_if_forked(c);
    pthread_mutex_lock(&c->pool_mu);
    if (atomic_load(&c->closed)) {
        pthread_mutex_unlock(&c->pool_mu);
        genauth_error_set(err, GENAUTH_E_CLOSED, "the client is closed");
        return NULL;
    }
    stale = trim_pool(c, genauth_now());
    conn = c->idle;
    if (conn)
        c->idle = conn->next;
    c->in_use++; /* given back even if it could not be made */
    pthread_mutex_unlock(&c->pool_mu);
    free_pool(stale);
    if (!conn) {
        if (c->share)
            conn = genauth_conn_new(c, err);
        else
            genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        if (!conn)
            genauth_client_release(c, NULL);
    }
    return conn;
}

void
genauth_client_release(genauth_client *c, genauth_conn *conn)
{
    genauth_conn *stale = NULL;
    if (atomic_load(&c->fork_generation) != fork_generation ||
        (conn && genauth_forked_since(conn->fork_generation))) {
        /* Taken before fork(), given back in a child: the connection is
         * the parent's, and so, until the child adopts the client, is
         * pool_mu, which may be held for ever here. Not counted in the
         * child's in_use (adopt_after_fork starts from 0). */
        genauth_conn_abandon(conn);
        return;
    }
    pthread_mutex_lock(&c->pool_mu);
    /* Not below 0: a handle taken before fork() and given back in the
     * child was not counted there (adopt_after_fork starts from 0). */
    if (c->in_use > 0)
        c->in_use--;
    if (!conn || atomic_load(&c->closed)) {
        pthread_mutex_unlock(&c->pool_mu);
        genauth_conn_free(conn);
        return;
    }
    genauth_conn_shed(conn);
    conn->idle_since = genauth_now();
    conn->next = c->idle;
    c->idle = conn;
    stale = trim_pool(c, conn->idle_since);
    pthread_mutex_unlock(&c->pool_mu);
    free_pool(stale);
}
