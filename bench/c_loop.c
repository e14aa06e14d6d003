/* The limit genauth_c is measured against: the same trigger-webhook work in
 * plain C with libcurl and cJSON and nothing else.
 *
 * Per call, like genauth_c: build the request body as JSON (webhookId,
 * requestHeaders, requestBody, as in the API page's example), POST it with the
 * same headers on a kept-alive handle, parse the answer and read statusCode.
 * The header list is built once, as genauth_c builds it once per token.
 *
 *   c_loop seq   N URL TOKEN USERPOOL_ID      N calls one after another,
 *          then a fresh handle's first call that fetches its own token (as
 *          first_token below, in a process that has made calls)
 *   c_loop multi N URL TOKEN USERPOOL_ID K    N calls, K in flight (curl multi)
 *   c_loop multi_keep N URL TOKEN USERPOOL_ID K   the same, keeping every
 *          parsed answer until the last call has ended (freed after the
 *          clock stops), as a batch that returns every call's answer must
 *   c_loop rss   N URL TOKEN USERPOOL_ID      N calls, then memory figures
 *   c_loop floor N URL TOKEN USERPOOL_ID      the transport floor: N calls
 *          posting one prebuilt body, the answer discarded unparsed (what
 *          libcurl alone costs; no JSON either way)
 *   c_loop threads N URL TOKEN USERPOOL_ID K   N calls spread over K threads,
 *          each with its own kept-alive handle calling curl_easy_perform (the
 *          threaded design at its simplest, with no lock shared between calls)
 *   c_loop first_token N URL TOKEN USERPOOL_ID   the first call of a fresh
 *          handle that fetches its own token first, as genauth_c does: POST
 *          the keys to get-management-token on the same connection, parse
 *          the answer, read the user pool id from the token (its JWT
 *          payload's scoped_userpool_id: the answer does not carry it), build
 *          the headers, then the call (TOKEN and USERPOOL_ID are not used; N
 *          is ignored)
 *   c_loop first_token_evicted N URL TOKEN USERPOOL_ID   the same, after
 *          writing to 32 MiB of memory first, which evicts the caches as a
 *          Python process's start-up and imports do before its first call
 *   c_loop first_token_late N URL TOKEN USERPOOL_ID   the same, starting as
 *          long after the process was started as genauth_c's first call
 *          does: idle until BENCH_SPAWNED_AT + BENCH_FIRST_CALL_AT seconds of
 *          CLOCK_MONOTONIC (the environment's; run.py sets both). On this
 *          kind of machine time alone, with nothing run, slows a first call
 *          about as much as a Python start-up does
 *
 * URL is the trigger-webhook URL (http or https; for https the environment's
 * BENCH_CA names the CA file to verify with). Prints one JSON line on stdout.
 * Exits non-zero if any call fails, so a broken server cannot pass for a
 * fast one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define MAX_INFLIGHT 256

typedef struct {
    char *data;
    size_t len, cap;
} buf;

typedef struct {
    CURL *easy;
    char *body; /* the request body in flight; owned, freed after the call */
    buf resp;
    char errbuf[CURL_ERROR_SIZE];
} slot;

static struct curl_slist *headers;
/* multi_keep: the parsed answers kept, kept_cap of them at most. */
static cJSON **kept;
static long n_kept, kept_cap;
static long connects; /* connections opened, summed over calls */
static const char *ca_file; /* BENCH_CA, for https */
static int floor_mode;      /* the transport floor: no JSON at all */
static char *prebuilt;      /* floor mode's one body */

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void
die(const char *what, const char *detail)
{
    fprintf(stderr, "c_loop: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0; /* libcurl turns this into CURLE_WRITE_ERROR */
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

/* The caller's {"eventName":"test","data":{...}}: built fresh each call, as a
 * caller's dicts are converted fresh by genauth_c on each call. */
static cJSON *
event_object(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *data = cJSON_CreateObject();
    if (!o || !data || !cJSON_AddStringToObject(o, "eventName", "test") ||
        !cJSON_AddStringToObject(data, "description", "A test from authing")) {
        cJSON_Delete(data);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToObject(o, "data", data);
    return o;
}

/* Returns the body as a malloc'd string; the caller frees it. */
static char *
build_body(void)
{
    char *out = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *h = event_object(), *b = event_object();
    if (root && h && b &&
        cJSON_AddStringToObject(root, "webhookId", "6229ffaxxxxxxxxcade3e3d9")) {
        cJSON_AddItemToObject(root, "requestHeaders", h);
        cJSON_AddItemToObject(root, "requestBody", b);
        h = b = NULL;
        out = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(h);
    cJSON_Delete(b);
    cJSON_Delete(root);
    if (!out)
        die("build_body", "out of memory");
    return out;
}

static void
slot_init(slot *s, const char *url)
{
    memset(s, 0, sizeof(*s));
    s->easy = curl_easy_init();
    if (!s->easy)
        die("curl_easy_init", NULL);
    /* The options genauth_c's transport sets that matter on the wire. */
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->resp);
    curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
    if (ca_file)
        curl_easy_setopt(s->easy, CURLOPT_CAINFO, ca_file);
}

/* Hands the next body to the slot's handle; the slot owns it until done. */
static void
slot_arm(slot *s)
{
    const char *body;
    free(s->body);
    s->body = NULL;
    s->resp.len = 0;
    if (floor_mode) {
        body = prebuilt;
    } else {
        s->body = build_body();
        body = s->body;
    }
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)strlen(body));
}

/* After a transfer: parse the envelope and insist on statusCode 200. */
static void
slot_finish(slot *s, CURLcode rc)
{
    long http = 0, n = 0;
    if (rc != CURLE_OK)
        die("transfer", s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &n);
    __atomic_fetch_add(&connects, n, __ATOMIC_RELAXED); /* threads mode */
    if (floor_mode) {
        if (http != 200)
            die("answer", "not HTTP 200");
        return;
    }
    cJSON *env = cJSON_ParseWithLength(s->resp.data, s->resp.len);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(env, "statusCode");
    if (http != 200 || !cJSON_IsNumber(code) || code->valueint != 200)
        die("answer", "not a statusCode 200 envelope");
    if (kept && n_kept < kept_cap)
        kept[n_kept++] = env;
    else
        cJSON_Delete(env);
    free(s->body);
    s->body = NULL;
}

static void
slot_clear(slot *s)
{
    curl_easy_cleanup(s->easy);
    free(s->body);
    free(s->resp.data);
}

static void
one_call(slot *s)
{
    slot_arm(s);
    slot_finish(s, curl_easy_perform(s->easy));
}

/* Resident set in bytes, from /proc/self/statm (pages). */
static long
rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        die("statm", NULL);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* The headers of an API call with this token (genauth_c's order). */
static struct curl_slist *
api_headers(const char *token, const char *userpool_id)
{
    char line[4096];
    struct curl_slist *h;
    snprintf(line, sizeof line, "Authorization: Bearer %s", token);
    h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-genauth-userpool-id: %s", userpool_id);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "x-genauth-sdk-version: genauth-c:0.1.0");
    h = curl_slist_append(h, "Expect:");
    if (!h)
        die("curl_slist_append", "out of memory");
    return h;
}

/* The user pool id a token is for: its JWT payload's scoped_userpool_id
 * (base64url JSON), which a client that fetches its own token must read,
 * since the token endpoint's answer does not carry it. A new string. */
static int
base64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

static char *
token_userpool_id(const char *token)
{
    const char *p = strchr(token, '.'), *end = p ? strchr(p + 1, '.') : NULL;
    if (!end)
        die("token", "not a JWT");
    size_t n = (size_t)(end - ++p);
    unsigned char *json = malloc(n + 1);
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    if (!json)
        die("token", "out of memory");
    for (size_t i = 0; i < n; i++) {
        int v = base64url_value(p[i]);
        if (v < 0)
            die("token", "payload not base64url");
        acc = acc << 6 | (unsigned)v;
        if ((bits += 6) >= 8)
            json[len++] = (unsigned char)(acc >> (bits -= 8));
    }
    cJSON *claims = cJSON_ParseWithLength((const char *)json, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(claims, "scoped_userpool_id");
    if (!cJSON_IsString(id))
        die("token", "no scoped_userpool_id in its payload");
    char *out = strdup(id->valuestring);
    if (!out)
        die("token", "out of memory");
    cJSON_Delete(claims);
    free(json);
    return out;
}

/* Writes to `mib` MiB, a line at a time: what the caches held before
 * (this program's and the kernel's code and data, nginx's) is evicted. */
static void
evict_caches(size_t mib)
{
    size_t size = mib << 20;
    volatile unsigned char *m = malloc(size);
    if (!m)
        die("evict_caches", "out of memory");
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < size; i += 64)
            m[i] = (unsigned char)(m[i] + i);
    free((void *)m);
}

/* A fresh handle's first call when it fetches its own token first, as
 * genauth_c's first call does (the user pool id read from the token):
 * seconds from the handle's making to the call's answer; *started, when
 * given, is when that began (CLOCK_MONOTONIC seconds). */
static double
first_call_with_token(const char *url, double *started)
{
    static const char path[] = "/api/v3/trigger-webhook";
    char token_url[1024];
    const char *at = strstr(url, path);
    if (!at || (size_t)(at - url) + 64 > sizeof token_url)
        die("first_token", "URL must end in /api/v3/trigger-webhook");
    snprintf(token_url, sizeof token_url, "%.*s/api/v3/get-management-token",
             (int)(at - url), url);

    double t0 = now();
    if (started)
        *started = t0;
    slot s;
    slot_init(&s, token_url);
    struct curl_slist *th = curl_slist_append(NULL, "Content-Type: application/json");
    th = curl_slist_append(th, "x-genauth-sdk-version: genauth-c:0.1.0");
    th = curl_slist_append(th, "Expect:");
    if (!th)
        die("curl_slist_append", "out of memory");
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, th);
    curl_easy_setopt(s.easy, CURLOPT_POSTFIELDS,
                     "{\"accessKeyId\":\"bench-access-key-id\","
                     "\"accessKeySecret\":\"bench-access-key-secret\"}");
    CURLcode rc = curl_easy_perform(s.easy);
    if (rc != CURLE_OK)
        die("token", curl_easy_strerror(rc));
    cJSON *env = cJSON_ParseWithLength(s.resp.data, s.resp.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(env, "data"), "access_token");
    if (!cJSON_IsString(tok))
        die("token", "no data.access_token in the answer");
    char *userpool_id = token_userpool_id(tok->valuestring);
    curl_slist_free_all(headers);
    headers = api_headers(tok->valuestring, userpool_id);
    free(userpool_id);
    cJSON_Delete(env);
    curl_easy_setopt(s.easy, CURLOPT_URL, url);
    curl_easy_setopt(s.easy, CURLOPT_HTTPHEADER, headers);
    one_call(&s);
    double first = now() - t0;
    slot_clear(&s);
    curl_slist_free_all(th);
    return first;
}

/* Sleeps until BENCH_SPAWNED_AT + BENCH_FIRST_CALL_AT (CLOCK_MONOTONIC
 * seconds: Python's time.monotonic()). */
static void
idle_until_first_call_time(void)
{
    const char *spawned = getenv("BENCH_SPAWNED_AT");
    const char *at = getenv("BENCH_FIRST_CALL_AT");
    if (!spawned || !at)
        die("first_token_late", "BENCH_SPAWNED_AT and BENCH_FIRST_CALL_AT "
                                "must be set");
    double t = atof(spawned) + atof(at);
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

enum first_call_state { FIRST_AT_ONCE, FIRST_EVICTED, FIRST_LATE };

static void
run_first_token(const char *url, enum first_call_state state)
{
    if (state == FIRST_EVICTED)
        evict_caches(32);
    else if (state == FIRST_LATE)
        idle_until_first_call_time();
    double first = first_call_with_token(url, NULL);
    printf("{\"calls\": 1, \"elapsed\": %.6f, \"first_call_s\": %.6f}\n",
           first, first);
}

static void
run_seq(long n, const char *url, int rss)
{
    slot s;
    long rss_half = 0;
    double t0 = now();
    slot_init(&s, url);
    one_call(&s); /* a fresh handle's first call: connect included */
    double first = now() - t0;
    /* Warm-up outside the timed part, as the Python runners do. */
    for (int i = 0; i < 20; i++)
        one_call(&s);
    connects = 0;
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double start = now();
    for (long i = 1; i <= n; i++) {
        one_call(&s);
        if (rss && i == n / 2)
            rss_half = rss_bytes();
    }
    double elapsed = now() - start;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    long rss_end = rss ? rss_bytes() : 0;
    slot_clear(&s);
    if (rss) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("{\"calls\": %ld, \"maxrss_kib\": %ld, \"growth_bytes\": %ld}\n",
               n, ru.ru_maxrss, rss_end - rss_half);
    } else {
        /* A fresh handle in a process that has made calls: the first call
         * without the start of a process before it. */
        double fresh_at = 0;
        double fresh = floor_mode ? 0 : first_call_with_token(url, &fresh_at);
        printf("{\"calls\": %ld, \"elapsed\": %.6f, \"cpu_s\": %.6f, "
               "\"first_call_s\": %.6f, \"fresh_client_s\": %.6f, "
               "\"fresh_client_at\": %.9f, \"connects\": %ld}\n",
               n, elapsed, cpu, first, fresh, fresh_at, connects);
    }
}

static void
run_multi(long n, const char *url, int inflight)
{
    static slot slots[MAX_INFLIGHT];
    CURLM *multi = curl_multi_init();
    long started = 0, done = 0;
    if (!multi)
        die("curl_multi_init", NULL);
    for (int i = 0; i < inflight; i++)
        slot_init(&slots[i], url);

    /* Two passes: a warm-up that opens the connections, then the timed one. */
    double start = 0, cpu0 = 0;
    for (int pass = 0; pass < 2; pass++) {
        long total = pass == 0 ? inflight * 2L : n;
        started = done = 0;
        connects = 0;
        start = now();
        cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < inflight && started < total; i++, started++) {
            slot_arm(&slots[i]);
            curl_multi_add_handle(multi, slots[i].easy);
        }
        while (done < total) {
            int running = 0, queued = 0;
            if (curl_multi_perform(multi, &running) != CURLM_OK)
                die("curl_multi_perform", NULL);
            CURLMsg *m;
            while ((m = curl_multi_info_read(multi, &queued))) {
                if (m->msg != CURLMSG_DONE)
                    continue;
                CURL *e = m->easy_handle;
                CURLcode rc = m->data.result;
                slot *s = NULL;
                curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
                curl_multi_remove_handle(multi, e);
                slot_finish(s, rc);
                done++;
                if (started < total) {
                    slot_arm(s);
                    curl_multi_add_handle(multi, e);
                    started++;
                }
            }
            if (done < total &&
                curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
                die("curl_multi_poll", NULL);
        }
    }
    double elapsed = now() - start;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    while (n_kept > 0)
        cJSON_Delete(kept[--n_kept]);
    for (int i = 0; i < inflight; i++)
        slot_clear(&slots[i]);
    curl_multi_cleanup(multi);
    printf("{\"calls\": %ld, \"elapsed\": %.6f, \"cpu_s\": %.6f, "
           "\"connects\": %ld}\n", n, elapsed, cpu, connects);
}

typedef struct {
    const char *url;
    long calls;
    pthread_barrier_t *start, *stop;
} thread_job;

static void *
thread_main(void *arg)
{
    thread_job *job = arg;
    slot s;
    slot_init(&s, job->url);
    for (int i = 0; i < 20; i++) /* opens this thread's connection */
        one_call(&s);
    pthread_barrier_wait(job->start);
    for (long i = 0; i < job->calls; i++)
        one_call(&s);
    pthread_barrier_wait(job->stop);
    slot_clear(&s);
    return NULL;
}

static void
run_threads(long n, const char *url, int k)
{
    pthread_t tids[MAX_INFLIGHT];
    pthread_barrier_t start, stop;
    thread_job job = {url, n / k, &start, &stop};
    pthread_barrier_init(&start, NULL, (unsigned)k + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++)
        if (pthread_create(&tids[i], NULL, thread_main, &job) != 0)
            die("pthread_create", NULL);
    pthread_barrier_wait(&start);
    connects = 0;
    double t0 = now(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    pthread_barrier_wait(&stop);
    double elapsed = now() - t0;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    for (int i = 0; i < k; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    printf("{\"calls\": %ld, \"elapsed\": %.6f, \"cpu_s\": %.6f, "
           "\"connects\": %ld}\n", job.calls * k, elapsed, cpu, connects);
}

int
main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr,
                "usage: c_loop seq|multi[_keep]|threads|rss|floor|first_token[_evicted|_late] N URL TOKEN USERPOOL_ID "
                "[K]\n");
        return 2;
    }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    const char *url = argv[3];
    int inflight = argc > 6 ? atoi(argv[6]) : 16;
    if (n < 2 || inflight < 1 || inflight > MAX_INFLIGHT)
        die("arguments", "N >= 2 and 1 <= K <= 256");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init", NULL);
    ca_file = getenv("BENCH_CA");
    if (ca_file && !*ca_file)
        ca_file = NULL;
    /* The headers genauth_c sends (see src/core/token.c and client.c). */
    headers = api_headers(argv[4], argv[5]);

    if (strcmp(mode, "seq") == 0)
        run_seq(n, url, 0);
    else if (strcmp(mode, "rss") == 0)
        run_seq(n, url, 1);
    else if (strcmp(mode, "first_token") == 0)
        run_first_token(url, FIRST_AT_ONCE);
    else if (strcmp(mode, "first_token_evicted") == 0)
        run_first_token(url, FIRST_EVICTED);
    else if (strcmp(mode, "first_token_late") == 0)
        run_first_token(url, FIRST_LATE);
    else if (strcmp(mode, "multi") == 0)
        run_multi(n, url, inflight);
    else if (strcmp(mode, "multi_keep") == 0) {
        /* Room for the warm-up pass's answers too. */
        kept_cap = n + 2L * inflight;
        if (!(kept = malloc((size_t)kept_cap * sizeof(*kept))))
            die("malloc", "out of memory");
        run_multi(n, url, inflight);
        free(kept);
    }
    else if (strcmp(mode, "threads") == 0)
        run_threads(n, url, inflight);
    else if (strcmp(mode, "floor") == 0) {
        floor_mode = 1;
        prebuilt = build_body();
        run_seq(n, url, 0);
        free(prebuilt);
    }
    else
        die("unknown mode", mode);

    curl_slist_free_all(headers);
    curl_global_cleanup();
    return 0;
}
