/* genauth_c's C core without Python: the same sequential trigger-webhook
 * calls as `c_loop seq`, made by a C program through the core's own API
 * (token fetch, request path, transport, answer parsing). Beside the C loop
 * and genauth_c it splits the gap between them into the core's share and
 * the Python layer's.
 *
 *   core_loop N HOST      N calls after 20 warm-up calls
 *   core_loop N HOST K    N calls spread over K threads sharing the client
 *                         (each after its own 20 warm-up calls)
 *
 * HOST is http://127.0.0.1:PORT (the benchmark's nginx). The payloads are
 * the API page's example, as cJSON trees built for each call, as a C
 * caller of the core builds them. Prints one JSON line; exits non-zero if a
 * call fails. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "genauth.h"

#define WARMUP 20
#define MAX_THREADS 256

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static cJSON *
event_object(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(o, "data");
    if (!o || !data || !cJSON_AddStringToObject(o, "eventName", "test") ||
        !cJSON_AddStringToObject(data, "description", "A test from authing")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int
one_call(genauth_client *client, genauth_error *err)
{
    static const char id[] = "6229ffaxxxxxxxxcade3e3d9";
    cJSON *headers = event_object(), *body = event_object();
    genauth_trigger_webhook_req req = {id, sizeof id - 1, headers, body};
    genauth_envelope env;
    int ok = 0;

    genauth_envelope_init(&env);
    if (headers && body &&
        genauth_client_trigger_webhook(client, &req, &env, err) == GENAUTH_OK)
        ok = env.status_code == 200;
    genauth_envelope_clear(&env);
    cJSON_Delete(headers);
    cJSON_Delete(body);
    return ok;
}

typedef struct {
    genauth_client *client;
    long calls;
    pthread_barrier_t *start, *stop;
    int ok;
    genauth_error err;
} worker;

/* One of K threads sharing the client: warm-up, the timed calls between
 * the two barriers. A failure is kept; the barriers are still met. */
static void *
work(void *arg)
{
    worker *w = arg;
    genauth_error_init(&w->err);
    w->ok = 1;
    for (int i = 0; w->ok && i < WARMUP; i++)
        w->ok = one_call(w->client, &w->err);
    pthread_barrier_wait(w->start);
    for (long i = 0; w->ok && i < w->calls; i++)
        w->ok = one_call(w->client, &w->err);
    pthread_barrier_wait(w->stop);
    return NULL;
}

/* N calls spread over K threads on the one client. */
static int
run_threads(genauth_client *client, long n, int k)
{
    pthread_t tids[MAX_THREADS];
    worker ws[MAX_THREADS];
    pthread_barrier_t start, stop;
    int ok = 1;
    pthread_barrier_init(&start, NULL, (unsigned)k + 1);
    pthread_barrier_init(&stop, NULL, (unsigned)k + 1);
    for (int i = 0; i < k; i++) {
        ws[i] = (worker){client, n / k, &start, &stop, 0, {0}};
        if (pthread_create(&tids[i], NULL, work, &ws[i]) != 0) {
            fprintf(stderr, "core_loop: pthread_create failed\n");
            exit(1); /* the barriers would never be met */
        }
    }
    pthread_barrier_wait(&start);
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double t0 = clock_s(CLOCK_MONOTONIC);
    pthread_barrier_wait(&stop);
    double elapsed = clock_s(CLOCK_MONOTONIC) - t0;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    for (int i = 0; i < k; i++) {
        pthread_join(tids[i], NULL);
        if (!ws[i].ok && ok) {
            fprintf(stderr, "core_loop: a call failed: %s\n",
                    ws[i].err.message[0] ? ws[i].err.message
                                         : "statusCode not 200");
            ok = 0;
        }
        genauth_error_clear(&ws[i].err);
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    genauth_client_free(client);
    if (!ok)
        return 1;
    printf("{\"calls\": %ld, \"elapsed\": %.6f, \"cpu_s\": %.6f}\n",
           n / k * k, elapsed, cpu);
    return 0;
}

int
main(int argc, char **argv)
{
    genauth_client_options opts;
    genauth_client *client = NULL;
    genauth_error err;

    if (argc < 3 || argc > 4 || atol(argv[1]) < 1 ||
        (argc == 4 && (atoi(argv[3]) < 1 || atoi(argv[3]) > MAX_THREADS))) {
        fprintf(stderr, "usage: core_loop N HOST [K]\n");
        return 2;
    }
    long n = atol(argv[1]);
    int k = argc == 4 ? atoi(argv[3]) : 0;
    genauth_error_init(&err);
    genauth_client_options_init(&opts);
    opts.access_key_id = "bench-access-key-id";
    opts.access_key_secret = "bench-access-key-secret";
    opts.host = argv[2];
    if (genauth_global_init(&err) != GENAUTH_OK ||
        genauth_client_new(&opts, &client, &err) != GENAUTH_OK) {
        fprintf(stderr, "core_loop: %s\n", err.message);
        return 1;
    }
    if (k > 0)
        return run_threads(client, n, k);
    for (int i = 0; i < WARMUP; i++)
        if (!one_call(client, &err))
            goto fail;
    double cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    double start = clock_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++)
        if (!one_call(client, &err))
            goto fail;
    double elapsed = clock_s(CLOCK_MONOTONIC) - start;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    printf("{\"calls\": %ld, \"elapsed\": %.6f, \"cpu_s\": %.6f}\n", n, elapsed,
           cpu);
    genauth_client_free(client);
    return 0;
fail:
    fprintf(stderr, "core_loop: the call failed: %s\n",
            err.message[0] ? err.message : "statusCode not 200");
    genauth_client_free(client);
    return 1;
}
