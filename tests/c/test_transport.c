/* Unit tests of transport.c: how it names a failure when libcurl runs out
 * of memory (libcurl allocates through this file's functions,
 * curl_global_init_mem, called before the core's curl_global_init, which
 * then only counts, so a test makes it fail on demand), how it tells kept
 * connections apart, and how one poll serves the checks of a turn. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static int fail_strdup;

static char *
test_strdup(const char *s)
{
    return fail_strdup ? NULL : strdup(s);
}

/* A client of `host` with keys AK and SK, or NULL. */
static genauth_client *
client_of(const char *host)
{
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_error err;

    genauth_client_options_init(&o);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    o.host = host;
    genauth_error_init(&err);
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
    genauth_error_clear(&err);
    return c;
}

/* A handle's setup that fails for memory before its transfer ran: nothing
 * of what the transfer before it left (its request went out, its error)
 * names the failure. */
static void
test_setup_out_of_memory(void)
{
    genauth_client *c = client_of("http://127.0.0.1:1");
    genauth_conn *conn = NULL;
    genauth_error err;

    genauth_error_init(&err);
    if (c)
        conn = genauth_conn_new(c, &err);
    CHECK(conn != NULL);
    if (conn) {
        /* As the transfer before left them. */
        conn->sends = 1;
        strcpy(conn->errbuf, "Recv failure: Connection reset by peer");
        genauth_call_plan plan = {.is_get = 1, .url = "http://127.0.0.1:1/x"};
        fail_strdup = 1; /* libcurl copies the URL */
        CHECK(genauth_conn_setup(conn, &plan, genauth_now() + 5, &err) ==
              GENAUTH_E_TRANSPORT);
        fail_strdup = 0;
        CHECK(err.curl_code == CURLE_OUT_OF_MEMORY);
        CHECK(!strstr(err.message, "header line"));
        CHECK(!strstr(err.message, "response"));
        CHECK(!strstr(err.message, "Connection reset"));
        genauth_conn_free(conn);
    }
    genauth_error_clear(&err);
    genauth_client_free(c);
}


/* A TCP socket on `ip`, listening; its port in *port. */
static int
listener(const char *ip, long *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* A connection from 127.0.0.1 at `*local_port` (0: any, then set) to
 * ip:port, accepted by `server`; the accepted end in *peer. */
static int
connect_from(long *local_port, const char *ip, long port, int server,
             int *peer)
{
    struct sockaddr_in from = {.sin_family = AF_INET}, to = from;
    socklen_t len = sizeof(from);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &from.sin_addr);
    from.sin_port = htons((unsigned short)*local_port);
    inet_pton(AF_INET, ip, &to.sin_addr);
    to.sin_port = htons((unsigned short)port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        getsockname(fd, (struct sockaddr *)&from, &len) != 0)
        return -1;
    *local_port = ntohs(from.sin_port);
    *peer = accept(server, NULL, NULL);
    return *peer < 0 ? -1 : fd;
}

static genauth_conn_addr
addr_of(long local_port, const char *remote_ip, long remote_port)
{
    genauth_conn_addr a = {"127.0.0.1", "", local_port, remote_port};
    strcpy(a.remote_ip, remote_ip);
    return a;
}

static int
stale(genauth_kept *kept, const genauth_conn_addr *a)
{
    return genauth_kept_stale(kept, a->local_ip, a->local_port, a->remote_ip,
                              a->remote_port);
}

/* Two kept connections from one local port to two servers (Linux gives a
 * port to connections to different addresses alike): a and b, whose
 * servers' ends are peer1 and peer2. */
typedef struct {
    int s1, s2, a, b, peer1, peer2;
    genauth_conn_addr to1, to2;
    genauth_kept kept;
} two_kept;

static int
two_kept_open(two_kept *t)
{
    long port1 = 0, port2 = 0, local = 0;
    t->peer1 = t->peer2 = -1;
    t->s1 = listener("127.0.0.1", &port1);
    t->s2 = listener("127.0.0.2", &port2);
    CHECK(t->s1 >= 0 && t->s2 >= 0);
    t->a = connect_from(&local, "127.0.0.1", port1, t->s1, &t->peer1);
    t->b = connect_from(&local, "127.0.0.2", port2, t->s2, &t->peer2);
    CHECK(t->a >= 0 && t->b >= 0);
    if (t->a < 0 || t->b < 0)
        return 0;
    t->to1 = addr_of(local, "127.0.0.1", port1);
    t->to2 = addr_of(local, "127.0.0.2", port2);
    t->kept = (genauth_kept){.conns = NULL};
    genauth_kept_add(&t->kept, t->a, &t->to1, 1);
    genauth_kept_add(&t->kept, t->b, &t->to2, 1);
    CHECK(t->kept.n == 2);
    return 1;
}

static void
two_kept_close(two_kept *t)
{
    genauth_kept_clear(&t->kept);
    close(t->a);
    close(t->b);
    close(t->peer1);
    close(t->peer2);
    close(t->s1);
    close(t->s2);
}

/* Each connection is its own entry, and checking one never looks at,
 * shuts or drains the other. */
static void
test_kept_connections_sharing_a_local_port(void)
{
    two_kept t;
    if (!two_kept_open(&t))
        return;

    /* The second server speaks out of turn: only its connection is
     * stale, and the first's check leaves its byte where it is. */
    CHECK(write(t.peer2, "x", 1) == 1);
    char c;
    CHECK(recv(t.b, &c, 1, MSG_PEEK) == 1); /* it has arrived */
    CHECK(stale(&t.kept, &t.to1) == 0);
    CHECK(recv(t.b, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1);
    CHECK(stale(&t.kept, &t.to2) == 1);
    CHECK(recv(t.b, &c, 1, MSG_DONTWAIT) <= 0); /* shut and emptied */
    /* The first is still open for a request. */
    CHECK(write(t.a, "y", 1) == 1);
    CHECK(read(t.peer1, &c, 1) == 1 && c == 'y');

    /* A connection met again at the same addresses is a new one: the entry
     * of the old is dropped. */
    genauth_kept_add(&t.kept, t.peer1, &t.to1, 1);
    CHECK(t.kept.n == 2);
    two_kept_close(&t);
}

/* two_kept_open, then a turn in which a request goes out on a. */
static int
two_kept_open_a_in_use(two_kept *t)
{
    if (!two_kept_open(t))
        return 0;
    genauth_kept_turn(&t->kept);
    CHECK(stale(&t->kept, &t->to1) == 0);
    return 1;
}

/* The first check of a turn polls every kept connection at once; a check
 * after it in that turn reads what it found on a connection idle then,
 * and a new turn polls again. */
static void
test_one_poll_serves_a_turn(void)
{
    two_kept t;
    char c;
    if (!two_kept_open_a_in_use(&t))
        return;
    CHECK(t.kept.polled);
    /* What comes after the turn's poll is found in the next turn. */
    CHECK(write(t.peer2, "x", 1) == 1);
    CHECK(recv(t.b, &c, 1, MSG_PEEK) == 1); /* it has arrived */
    CHECK(stale(&t.kept, &t.to2) == 0);
    genauth_kept_turn(&t.kept);
    CHECK(!t.kept.polled);
    CHECK(stale(&t.kept, &t.to2) == 1);
    two_kept_close(&t);
}

/* An answer's last bytes ("0", as a chunked body's end) and a stray answer
 * after them arrive on the connection whose server end is `peer`, and
 * libcurl reads the last bytes (with no callback, as it does a chunked
 * body's end): the stray answer is left waiting on `fd`. */
static void
last_bytes_then_a_stray_answer(int peer, int fd)
{
    char c;
    CHECK(write(peer, "0L", 2) == 2);
    CHECK(recv(fd, &c, 1, MSG_PEEK) == 1);
    CHECK(recv(fd, &c, 1, MSG_DONTWAIT) == 1 && c == '0');
}

/* A connection in use at the turn's poll (its check passed, its transfer's
 * end not noted since) is polled by itself when it is reused in that turn
 * (a call queued in libcurl is given it as its answer ends): libcurl may
 * have read since, some bytes with no callback to tell (a chunked body's
 * "0\r\n\r\n"). What it read is no stray answer; what came after it is. */
static void
test_a_connection_in_use_at_the_poll_is_polled_again(void)
{
    two_kept t;
    char c;
    if (!two_kept_open_a_in_use(&t))
        return;
    genauth_kept_turn(&t.kept);
    /* Its answer's last bytes are there at the poll. */
    CHECK(write(t.peer1, "0", 1) == 1);
    CHECK(recv(t.a, &c, 1, MSG_PEEK) == 1);
    CHECK(stale(&t.kept, &t.to2) == 0); /* the turn's poll, of both */
    CHECK(recv(t.a, &c, 1, MSG_DONTWAIT) == 1); /* libcurl's read */
    CHECK(stale(&t.kept, &t.to1) == 0);
    CHECK(write(t.a, "y", 1) == 1); /* still open for a request */
    CHECK(read(t.peer1, &c, 1) == 1 && c == 'y');

    /* Quiet at the poll; its last bytes and a stray answer come after it. */
    genauth_kept_turn(&t.kept);
    CHECK(stale(&t.kept, &t.to2) == 0);
    last_bytes_then_a_stray_answer(t.peer1, t.a);
    CHECK(stale(&t.kept, &t.to1) == 1);
    two_kept_close(&t);
}

/* A transfer's end noted, its connection is idle: the turn's poll serves
 * its check again, unless another transfer was given it meanwhile. */
static void
test_an_ended_transfers_connection_is_idle_again(void)
{
    two_kept t;
    char c;
    if (!two_kept_open_a_in_use(&t))
        return;
    CHECK(t.kept.conns[0].users + t.kept.conns[1].users == 1);
    genauth_kept_idle(&t.kept, &t.to1);
    CHECK(t.kept.conns[0].users + t.kept.conns[1].users == 0);
    genauth_kept_turn(&t.kept);
    CHECK(stale(&t.kept, &t.to2) == 0); /* the turn's poll */
    CHECK(write(t.peer1, "x", 1) == 1);
    CHECK(recv(t.a, &c, 1, MSG_PEEK) == 1);
    CHECK(stale(&t.kept, &t.to1) == 0); /* what the poll found */
    CHECK(recv(t.a, &c, 1, MSG_DONTWAIT) == 1);

    /* A call queued in libcurl is given it, as its transfer's answer
     * ends, before that end is noted: once it is, the queued call's
     * transfer still reads from it. */
    genauth_kept_turn(&t.kept);
    CHECK(stale(&t.kept, &t.to1) == 0); /* the queued call's check */
    genauth_kept_idle(&t.kept, &t.to1);    /* the end of the one before */
    genauth_kept_turn(&t.kept);
    CHECK(write(t.peer1, "0", 1) == 1); /* the queued call's answer ends */
    CHECK(recv(t.a, &c, 1, MSG_PEEK) == 1);
    CHECK(stale(&t.kept, &t.to2) == 0); /* the turn's poll */
    CHECK(recv(t.a, &c, 1, MSG_DONTWAIT) == 1); /* libcurl's read */
    CHECK(stale(&t.kept, &t.to1) == 0); /* given to a call again */
    two_kept_close(&t);
}

/* A connection opened in a turn may be given to a call queued in libcurl
 * in that turn, before its first transfer's end is noted and its entry
 * added: that call's check finds no entry (it goes out unchecked). Once
 * the entry is added, the connection is still in use by that call: the
 * next turn's poll must not take it for idle, or a stray answer coming
 * after that call's last bytes is missed by the check of the call given
 * it next. */
static void
test_a_connection_given_out_before_its_entry_is_in_use(void)
{
    two_kept t;
    if (!two_kept_open(&t))
        return;
    genauth_kept_add(&t.kept, t.b, &t.to2, 0); /* b: opened this turn */
    genauth_kept_turn(&t.kept);
    CHECK(stale(&t.kept, &t.to2) == 0); /* the queued call's check */
    genauth_kept_add(&t.kept, t.b, &t.to2, 1); /* its opener's end */
    CHECK(t.kept.n == 2);
    genauth_kept_turn(&t.kept);
    CHECK(stale(&t.kept, &t.to1) == 0); /* the turn's poll: b is quiet */
    /* The queued call's answer ends, a stray answer after it, and the
     * next call is given b. */
    last_bytes_then_a_stray_answer(t.peer2, t.b);
    CHECK(stale(&t.kept, &t.to2) == 1);
    two_kept_close(&t);
}

/* A token answer cut in the middle of the token (the server closes the
 * connection before the Content-Length it gave): the call fails, and the
 * handle it used, back in the pool, holds none of what arrived. */
static void
test_a_cut_token_answer_is_wiped(void)
{
    static const char partial[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 400\r\n\r\n"
        "{\"statusCode\":200,\"data\":{\"access_token\":\"eyJ-CUT-TOKEN";
    char url[64], request[4096];
    long port;
    int server = listener("127.0.0.1", &port);
    CHECK(server >= 0);
    pid_t child = fork();
    if (child == 0) {
        int peer = accept(server, NULL, NULL);
        /* The request's head and body: enough to have it all read. */
        if (peer >= 0 && read(peer, request, sizeof(request)) > 0 &&
            write(peer, partial, sizeof(partial) - 1) > 0)
            close(peer);
        _exit(0);
    }
    close(server);

    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_error err;
    genauth_envelope env;
    genauth_trigger_webhook_req dto = {"w", 1, NULL, NULL};
    genauth_client_options_init(&o);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    snprintf(url, sizeof(url), "http://127.0.0.1:%ld", port);
    o.host = url;
    o.timeout = 5;
    o.max_retries = 0;
    genauth_error_init(&err);
    genauth_envelope_init(&env);
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
    if (c) {
        CHECK(genauth_client_call_dto(c, GENAUTH_OP_TRIGGER_WEBHOOK, &dto,
                                      &env, &err) == GENAUTH_E_TRANSPORT);
        CHECK(c->idle != NULL);
        if (c->idle) {
            const genauth_buf *r = &c->idle->response;
            CHECK(r->len == 0);
            /* What arrived of the body is the first of the buffer's
             * bytes (a fresh handle's, grown once). */
            const char *body = strstr(partial, "\r\n\r\n") + 4;
            size_t arrived = strlen(body);
            CHECK(r->data && r->cap > arrived);
            if (r->data && r->cap > arrived)
                CHECK(!memmem(r->data, arrived, "CUT-TOKEN", 9));
        }
        genauth_client_free(c);
    }
    genauth_envelope_clear(&env);
    genauth_error_clear(&err);
    waitpid(child, NULL, 0);
}

/* A request head over a MiB (a GET's parameters, from a caller of the C
 * API, which checks no argument's length): libcurl fails to build the
 * request (libcurl 7 says it ran out of memory, 8 that a field grew too
 * large), the same codes it gives for an answer's header line over its
 * cap. Nothing was sent, so the message must not send the reader after
 * the server's answer. (From Python no option or argument is that long.) */
static void
test_a_request_too_large_to_build_is_not_named_the_answers_header_line(void)
{
    genauth_conn *conn = NULL;
    genauth_error err;
    long port = 0, status = 0;
    int server = listener("127.0.0.1", &port);
    char host[64];
    size_t len = (1u << 20) + 64;
    char *url = malloc(len + 1);

    CHECK(server >= 0 && url != NULL);
    snprintf(host, sizeof(host), "http://127.0.0.1:%ld", port);
    genauth_client *c = client_of(host);
    genauth_error_init(&err);
    if (c)
        conn = genauth_conn_new(c, &err);
    CHECK(conn != NULL);
    if (conn && url && server >= 0) {
        int n = snprintf(url, len + 1, "%s/api/v3/get-webhook?webhookId=",
                         host);
        memset(url + n, 'w', len - (size_t)n);
        url[len] = '\0';
        genauth_call_plan plan = {.is_get = 1, .url = url};
        CHECK(genauth_conn_perform(c, conn, &plan, genauth_now() + 10,
                                   &status, &err) == GENAUTH_E_TRANSPORT);
        CHECK(strstr(err.message, "request") != NULL);
        CHECK(!strstr(err.message, "header line"));
        CHECK(!strstr(err.message, "response"));
        long sent = -1;
        CHECK(curl_easy_getinfo(conn->easy, CURLINFO_REQUEST_SIZE, &sent) ==
                  CURLE_OK &&
              sent == 0);
    }
    if (conn)
        genauth_conn_free(conn);
    genauth_error_clear(&err);
    genauth_client_free(c);
    free(url);
    if (server >= 0)
        close(server);
}

/* A call whose time ran out before its request could go out (a retry's
 * wait, a token fetch took it all): its TimeoutError names the URL, as
 * one that ran out in the transfer does, without the query string. */
static void
test_no_time_left_to_send_names_the_url(void)
{
    genauth_client *c = client_of("http://127.0.0.1:1");
    genauth_conn *conn = c ? genauth_conn_new(c, NULL) : NULL;
    genauth_error err;

    genauth_error_init(&err);
    CHECK(conn != NULL);
    if (conn) {
        genauth_call_plan plan = {
            .is_get = 1, .url = "http://127.0.0.1:1/api/v3/get-webhook?x=1"};
        CHECK(genauth_conn_setup(conn, &plan, genauth_now() - 1, &err) ==
              GENAUTH_E_TIMEOUT);
        CHECK(strcmp(err.message, "http://127.0.0.1:1/api/v3/get-webhook: "
                                  "the call timed out: no time was left to "
                                  "send the request") == 0);
        CHECK(err.curl_code == CURLE_OPERATION_TIMEDOUT);
        genauth_conn_free(conn);
    }
    genauth_error_clear(&err);
    genauth_client_free(c);
}

int
main(void)
{
    genauth_error err;
    genauth_error_init(&err);
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, free, realloc,
                             test_strdup, calloc) != CURLE_OK ||
        genauth_global_init(&err) != GENAUTH_OK) {
        fprintf(stderr, "could not initialise: %s\n", err.message);
        return 1;
    }
    test_setup_out_of_memory();
    test_kept_connections_sharing_a_local_port();
    test_one_poll_serves_a_turn();
    test_a_connection_in_use_at_the_poll_is_polled_again();
    test_an_ended_transfers_connection_is_idle_again();
    test_a_connection_given_out_before_its_entry_is_in_use();
    test_a_cut_token_answer_is_wiped();
    test_a_request_too_large_to_build_is_not_named_the_answers_header_line();
    test_no_time_left_to_send_names_the_url();
    curl_global_cleanup(); /* the core's init */
    curl_global_cleanup(); /* this file's */
    return check_summary("test_transport");
}
