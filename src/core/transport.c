/* HTTP over libcurl: pooled easy handles, each driven through a multi
 * handle of its own (run_transfer), so that a call waiting on the network
 * can be interrupted (Ctrl-C) without giving up libcurl's timeouts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#if LIBCURL_VERSION_NUM < 0x075000
#error "genauth-c needs libcurl 7.80.0 or newer (CURLOPT_PREREQFUNCTION)"
#endif

/* ---- kept connections, and the stale ones among them -------------------- */

void
genauth_kept_clear(genauth_kept *kept)
{
    free(kept->conns);
    kept->conns = NULL;
    kept->n = kept->cap = 0;
    kept->unentered = 0;
}

/* Copies libcurl's text of an address into `out` (a 48-byte field). */
static void
addr_copy(char out[48], const char *ip)
{
    size_t len = ip ? strlen(ip) : 0;
    if (len > 47)
        len = 47; /* never: libcurl's are at most 45 */
    if (len)
        memcpy(out, ip, len);
    out[len] = '\0';
}

/* The connection with those ends, as libcurl names them. */
static genauth_conn_addr
conn_addr(const char *local_ip, long local_port, const char *remote_ip,
          long remote_port)
{
    genauth_conn_addr a;
    addr_copy(a.local_ip, local_ip);
    addr_copy(a.remote_ip, remote_ip);
    a.local_port = local_port;
    a.remote_port = remote_port;
    return a;
}

/* Whether `a` is the connection with those ends (the ports first: they
 * tell almost every pair apart). */
static int
addr_is(const genauth_conn_addr *a, const char *local_ip, long local_port,
        const char *remote_ip, long remote_port)
{
    return a->local_port == local_port && a->remote_port == remote_port &&
           strcmp(a->local_ip, local_ip) == 0 &&
           strcmp(a->remote_ip, remote_ip) == 0;
}

/* Removes entry i (the last takes its place). */
static void
kept_drop(genauth_kept *kept, size_t i)
{
    if (kept->conns[i].fd == CURL_SOCKET_BAD)
        kept->unentered--;
    kept->conns[i] = kept->conns[--kept->n];
}

/* Appends `entry`; without memory, nothing (unchecked then, as libcurl
 * alone would leave it). */
static void
kept_append(genauth_kept *kept, const struct genauth_kept_conn *entry)
{
    if (kept->n == kept->cap) {
        size_t cap = kept->cap ? 2 * kept->cap : 4;
        void *grown = realloc(kept->conns, cap * sizeof(*kept->conns));
        if (!grown)
            return;
        kept->conns = grown;
        kept->cap = cap;
    }
    kept->conns[kept->n++] = *entry;
    if (entry->fd == CURL_SOCKET_BAD)
        kept->unentered++;
}

void
genauth_kept_turn(genauth_kept *kept)
{
    kept->polled = 0;
    for (size_t i = 0; kept->unentered && i < kept->n;) {
        if (kept->conns[i].fd == CURL_SOCKET_BAD)
            kept_drop(kept, i);
        else
            i++;
    }
}

void
genauth_kept_add(genauth_kept *kept, curl_socket_t fd,
                 const genauth_conn_addr *addr, int checked)
{
    struct genauth_kept_conn entry = {.fd = fd, .addr = *addr};
    for (size_t i = 0; i < kept->n;) {
        int same_ends =
            addr_is(&kept->conns[i].addr, addr->local_ip, addr->local_port,
                    addr->remote_ip, addr->remote_port);
        if (same_ends)
            entry.users += kept->conns[i].users;
        if (same_ends || kept->conns[i].fd == fd)
            kept_drop(kept, i);
        else
            i++;
    }
    if (checked)
        kept_append(kept, &entry);
}

void
genauth_kept_idle(genauth_kept *kept, const genauth_conn_addr *addr)
{
    for (size_t i = 0; i < kept->n; i++) {
        struct genauth_kept_conn *k = &kept->conns[i];
        if (k->users > 0 && addr_is(&k->addr, addr->local_ip,
                                    addr->local_port, addr->remote_ip,
                                    addr->remote_port))
            k->users--;
    }
}

void
genauth_conn_note_kept(genauth_conn *conn)
{
    curl_socket_t fd = CURL_SOCKET_BAD;
    long version = 0, local_port = 0, remote_port = 0;
    char *local_ip = NULL, *remote_ip = NULL;
    if (!conn->kept)
        return;
    /* A reused connection is in the table since the transfer that opened
     * it; only a new one is looked up. */
    if (!conn->opened) {
        if (conn->kept_user)
            genauth_kept_idle(conn->kept, &conn->kept_addr);
        conn->kept_user = 0;
        return;
    }
    if (curl_easy_getinfo(conn->easy, CURLINFO_ACTIVESOCKET, &fd) !=
            CURLE_OK ||
        fd == CURL_SOCKET_BAD ||
        curl_easy_getinfo(conn->easy, CURLINFO_LOCAL_PORT, &local_port) !=
            CURLE_OK ||
        curl_easy_getinfo(conn->easy, CURLINFO_PRIMARY_PORT, &remote_port) !=
            CURLE_OK ||
        curl_easy_getinfo(conn->easy, CURLINFO_LOCAL_IP, &local_ip) !=
            CURLE_OK ||
        curl_easy_getinfo(conn->easy, CURLINFO_PRIMARY_IP, &remote_ip) !=
            CURLE_OK ||
        curl_easy_getinfo(conn->easy, CURLINFO_HTTP_VERSION, &version) !=
            CURLE_OK)
        return;
    genauth_conn_addr addr =
        conn_addr(local_ip, local_port, remote_ip, remote_port);
    /* Only an HTTP/1 connection is checked: there an answer is known by
     * its place alone. An HTTP/2 one (ALPN h2, usual behind a TLS front
     * end) names the stream in every frame, and while a call starts on it
     * may be carrying other calls' answers: a readable socket is no sign
     * of a stray answer there, and shutting it would fail those calls after
     * their requests were sent. */
    genauth_kept_add(conn->kept, fd, &addr,
                     version == CURL_HTTP_VERSION_1_0 ||
                         version == CURL_HTTP_VERSION_1_1);
}

static long
port_of(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    if (addr->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    return -1;
}

/* Whether socket `fd` is still the connection between those ports: a
 * descriptor the process has since closed and opened for else is not. One
 * the peer has reset has no peer address left: still that connection. */
static int
still_the_connection(int fd, long local_port, long remote_port)
{
    struct sockaddr_storage local, remote;
    socklen_t len = sizeof(local), rlen = sizeof(remote);
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 ||
        port_of(&local) != local_port)
        return 0;
    return getpeername(fd, (struct sockaddr *)&remote, &rlen) != 0 ||
           port_of(&remote) == remote_port;
}

/* What a poll(2) finds on socket `fd` now. */
static short
poll_one(curl_socket_t fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 ? p.revents : 0;
}

/* What a poll(2) finds on the kept connection `i` now: of them all at
 * once, kept for the checks after it (`polled`), when there are few. */
static short
poll_kept(genauth_kept *kept, size_t i)
{
    struct pollfd p[GENAUTH_KEPT_POLL_MAX];
    if (kept->n > GENAUTH_KEPT_POLL_MAX)
        return poll_one(kept->conns[i].fd);
    for (size_t k = 0; k < kept->n; k++)
        p[k] = (struct pollfd){.fd = kept->conns[k].fd, .events = POLLIN};
    if (poll(p, kept->n, 0) < 0)
        return 0; /* unchecked, as libcurl alone would leave it */
    for (size_t k = 0; k < kept->n; k++) {
        kept->conns[k].revents = p[k].revents;
        kept->conns[k].idle_at_poll = kept->conns[k].users == 0;
    }
    kept->polled = 1;
    return p[i].revents;
}

int
genauth_kept_stale(genauth_kept *kept, const char *local_ip, long local_port,
                   const char *remote_ip, long remote_port)
{
    for (size_t i = 0; i < kept->n; i++) {
        if (!addr_is(&kept->conns[i].addr, local_ip, local_port, remote_ip,
                     remote_port))
            continue;
        struct genauth_kept_conn *k = &kept->conns[i];
        if (k->fd == CURL_SOCKET_BAD) {
            k->users++; /* given out again, its socket still unknown */
            return 0;
        }
        /* Bytes the turn's poll found are asked about again, as is a
         * connection in use then: libcurl's reads may have emptied it, and
         * a connection it opened this turn may be in use before its entry
         * says so (it is added as its first transfer's end is noted). */
        short revents =
            !kept->polled ? poll_kept(kept, i)
            : k->idle_at_poll && !k->users && !k->revents ? 0
                                                          : poll_one(k->fd);
        if (!revents) {
            k->users++; /* its request goes out */
            return 0;
        }
        /* Rare from here on. Only a socket still that connection is
         * touched, never a descriptor the process has since opened for
         * else. */
        int fd = k->fd;
        if ((revents & POLLNVAL) ||
            !still_the_connection(fd, local_port, remote_port)) {
            kept_drop(kept, i);
            return 0;
        }
        shutdown(fd, SHUT_RDWR);
        /* Bounded: what a peer that keeps sending adds is found next time
         * libcurl offers this connection. */
        char sink[4096];
        for (int round = 0; round < 64; round++)
            if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
                break;
        return 1;
    }
    /* No entry: a connection libcurl opened this turn, given to a call
     * queued in it as the transfer that opened it ended, before that end
     * was noted (or an HTTP/2 one, never checked). Its socket is not known
     * here: it goes unchecked, but in use, which its entry, added as that
     * end is noted, will say. */
    struct genauth_kept_conn record = {
        .fd = CURL_SOCKET_BAD,
        .addr = conn_addr(local_ip, local_port, remote_ip, remote_port),
        .users = 1};
    kept_append(kept, &record);
    return 0;
}

/* libcurl sends a request again, on a new connection, when a reused one
 * dies before the answer: a POST that the server had already read would be
 * delivered twice (trigger-webhook has no idempotency key). libcurl calls
 * this before each send: the second one is refused, so the call fails
 * (TransportError) and only the retry rule of retry.c ever sends again.
 * A reused connection with bytes waiting is refused before the first
 * (genauth_conn_rerun_stale). */
static int
before_send(void *userdata, char *conn_primary_ip, char *conn_local_ip,
            int conn_primary_port, int conn_local_port)
{
    genauth_conn *conn = userdata;
    if (conn->sends == 0 && conn->resend_of &&
        genauth_client_is_closed(conn->resend_of)) {
        conn->refused_closed = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    if (conn->sends == 0 && !conn->opened && conn->kept) {
        if (genauth_kept_stale(conn->kept, conn_local_ip, conn_local_port,
                               conn_primary_ip, conn_primary_port)) {
            conn->stale = 1;
            return CURL_PREREQFUNC_ABORT;
        }
        conn->kept_user = 1;
        conn->kept_addr = conn_addr(conn_local_ip, conn_local_port,
                                    conn_primary_ip, conn_primary_port);
    }
    return ++conn->sends > 1 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}


genauth_file_id
genauth_file_id_of(int fd)
{
    struct stat st;
    genauth_file_id id = {.known = 0};
    if (fstat(fd, &st) == 0)
        id = (genauth_file_id){.known = 1, .dev = st.st_dev, .ino = st.st_ino};
    return id;
}

int
genauth_file_id_is(int fd, const genauth_file_id *id)
{
    struct stat st;
    return id->known && fstat(fd, &st) == 0 && st.st_dev == id->dev &&
           st.st_ino == id->ino;
}

/* Whether own socket slot i of conn is still the socket it noted: not one
 * closed since (its number then free, or another file's). */
static int
own_sock_unchanged(const genauth_conn *conn, int i)
{
    return genauth_file_id_is(conn->own_socks[i].fd, &conn->own_socks[i].id);
}

/* Notes a socket opened on conn's own multi handle, in a slot that is free
 * or holds one closed since. */
static void
note_own_sock(genauth_conn *conn, curl_socket_t fd)
{
    size_t n = sizeof(conn->own_socks) / sizeof(conn->own_socks[0]);
    for (size_t i = 0; i < n; i++) {
        if (own_sock_unchanged(conn, (int)i))
            continue;
        conn->own_socks[i].fd = fd;
        conn->own_socks[i].id = genauth_file_id_of(fd);
        if (!conn->own_socks[i].id.known)
            break;
        return;
    }
    conn->own_socks_lost = 1;
}

static int https_url(genauth_conn *conn);

/* libcurl's own socket() failure leaves no errno to read: this one keeps
 * it, so that a call out of file descriptors is told from a refused one. */
static curl_socket_t
open_socket(void *userdata, curlsocktype purpose,
            struct curl_sockaddr *address)
{
    (void)purpose;
    genauth_conn *conn = userdata;
    /* The CA file, checked again before a connection that will read it (a
     * verified one): a pipe put in its place since the client was made
     * would hold OpenSSL's open() of it for ever, past the call's timeout
     * and Ctrl-C. Once per new connection, never per call. */
    if (conn->ca_file &&
        (conn->proxy_tls || (!conn->api_unverified && https_url(conn))) &&
        genauth_ca_file_problem(conn->ca_file) != 0) {
        conn->ca_file_unusable = 1;
        return CURL_SOCKET_BAD;
    }
    curl_socket_t fd = socket(address->family,
                              address->socktype | SOCK_CLOEXEC,
                              address->protocol);
    if (fd == CURL_SOCKET_BAD) {
        conn->socket_errno = errno;
    } else {
        conn->opened = 1;
        if (conn->kept == &conn->own_kept) /* run_transfer's */
            note_own_sock(conn, fd);
    }
    return fd;
}

static size_t
collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    genauth_conn *conn = userdata;
    size_t n = size * nmemb;
    /* Enforced while the body arrives: libcurl's own MAXFILESIZE does not
     * stop a body sent without a length before 8.4. */
    if (n > conn->max_response_bytes - conn->response.len) {
        conn->over_cap = GENAUTH_BODY_OVER_CAP;
        return 0;
    }
    /* Grown so that no copy of a token (or of a webhook's secret) is
     * left behind in freed memory. */
    if (genauth_buf_wipe_reserve(&conn->response, n) < 0 ||
        genauth_buf_append(&conn->response, ptr, n) < 0) {
        conn->over_cap = GENAUTH_BODY_NOMEM;
        return 0;
    }
    return n;
}

/* Counts the header lines as libcurl hands each here, trailers included:
 * past GENAUTH_MAX_HEAD_BYTES the transfer ends. A server sending trailer
 * lines without end would otherwise grow this process by its bandwidth
 * until the timeout (1.7 GB in 10 s on loopback), and the handle would keep
 * it all until its next request. */
static size_t
count_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    genauth_conn *conn = userdata;
    size_t n = size * nmemb;
    (void)ptr;
    if (n > GENAUTH_MAX_HEAD_BYTES - conn->head_bytes) {
        conn->head_bytes = GENAUTH_MAX_HEAD_BYTES + 1;
        return 0;
    }
    conn->head_bytes += n;
    return n;
}

/* The CAs that verify one TLS peer, through that peer's pair of options:
 * CURLOPT_CAINFO and CURLOPT_CAPATH for the API server, the PROXY_ ones for
 * an https:// proxy. A ca_bundle, or a store found on this machine,
 * replaces libcurl's built-in paths entirely: the built-in directory (Debian's
 * libcurl: /etc/ssl/certs) would otherwise be trusted beside a ca_bundle,
 * so a server the private CA never vouched for passed with a public CA's
 * certificate; and a built-in path that does not exist here fails every TLS
 * handshake. */
static CURLcode
set_trust(CURL *e, CURLoption cainfo, CURLoption capath,
          const genauth_client *client)
{
    CURLcode rc = CURLE_OK;
    if (client->ca_bundle) {
        rc = curl_easy_setopt(e, cainfo, client->ca_bundle);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, capath, (char *)NULL);
    } else if (client->ca_store_file) {
        rc = curl_easy_setopt(e, cainfo, client->ca_store_file);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, capath, (char *)NULL);
    } else if (client->ca_store_dir) {
        rc = curl_easy_setopt(e, cainfo, (char *)NULL);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, capath, client->ca_store_dir);
    }
    return rc;
}

genauth_conn *
genauth_conn_new(genauth_client *client, genauth_error *err)
{
    genauth_conn *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        return NULL;
    }
    genauth_signature_init(&conn->signature);
    conn->easy = curl_easy_init();
    if (!conn->easy)
        goto nomem;
    conn->max_response_bytes = client->max_response_bytes;
    conn->no_ca_store = client->no_ca_store;
    conn->ca_file =
        client->ca_bundle ? client->ca_bundle : client->ca_store_file;
    conn->proxy_tls = client->proxy_tls;
    conn->api_unverified = client->use_unverified_ssl;
    conn->proxy_userinfo =
        genauth_proxy_userinfo(client->proxy, &conn->proxy_userinfo_len);
    conn->fork_generation = genauth_fork_generation();

    CURL *e = conn->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) \
    rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, conn->errbuf);
    SET(CURLOPT_WRITEFUNCTION, collect_body);
    SET(CURLOPT_WRITEDATA, conn);
    SET(CURLOPT_HEADERFUNCTION, count_header);
    SET(CURLOPT_HEADERDATA, conn);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PREREQFUNCTION, before_send);
    SET(CURLOPT_PREREQDATA, conn);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, conn);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)client->max_response_bytes);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* A connection idle for longer than common server keep-alive timeouts
     * (nginx 75 s, cloud load balancers 60 s) may be closed by the server
     * just as a request goes out: such a call would fail (before_send), so
     * these are not reused but closed. */
    SET(CURLOPT_MAXAGE_CONN, client->max_idle_seconds);
    SET(CURLOPT_SHARE, client->share);
    /* Both set (proxy.c): libcurl then reads no environment per transfer. */
    SET(CURLOPT_PROXY, client->proxy);
    SET(CURLOPT_NOPROXY, client->no_proxy);
    SET(CURLOPT_POST, 1L);
    if (client->use_unverified_ssl) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    /* TLS 1.2 at least, to the API server and to an https:// proxy, as
     * urllib3 2 asks: OpenSSL's default security level is all that refused
     * 1.0 and 1.1, and a system's openssl.cnf (or OPENSSL_CONF) may lower
     * it. */
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_PROXY_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (rc == CURLE_OK)
        rc = set_trust(e, CURLOPT_CAINFO, CURLOPT_CAPATH, client);
    /* An https:// proxy is verified against the same CAs as the API server
     * (libcurl would use only its built-in path). use_unverified_ssl leaves
     * it verified (CURLOPT_PROXY_SSL_VERIFYPEER keeps its default): that
     * option is about the API server, and the proxy, which the environment
     * names, reads every request to an http:// host, the secret included.
     * The PROXY_ options came with libcurl 7.52.0, older than the 7.80.0
     * this file requires. */
    if (rc == CURLE_OK && client->proxy_tls)
        rc = set_trust(e, CURLOPT_PROXY_CAINFO, CURLOPT_PROXY_CAPATH, client);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* libcurl 7.87 and later join the resolver thread of a transfer that
     * ends while its name resolves (a timeout, a cancelled call, a closed
     * client) unless told this: a call with timeout=1 returned only when
     * the DNS server answered or the resolver gave up (30 s), and the
     * event loop stopped that long with the GIL held. The thread then ends
     * on its own, freeing what it holds. (Earlier versions never wait.) */
    SET(CURLOPT_QUICK_EXIT, 1L);
#endif
#undef SET
    if (rc != CURLE_OK) {
        genauth_error_set(err, GENAUTH_E_TRANSPORT,
                          "libcurl refused an option: %s",
                          curl_easy_strerror(rc));
        err->curl_code = rc;
        genauth_conn_free(conn);
        return NULL;
    }
    return conn;
nomem:
    genauth_conn_free(conn);
    genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    return NULL;
}

void
genauth_conn_free(genauth_conn *conn)
{
    if (!conn)
        return;
    /* Closes the connection it kept (never in a transfer here). */
    if (conn->multi)
        curl_multi_cleanup(conn->multi);
    if (conn->easy)
        curl_easy_cleanup(conn->easy);
    genauth_kept_clear(&conn->own_kept);
    genauth_headers_wipe_free(conn->api_headers);
    genauth_headers_wipe_free(conn->signed_headers);
    genauth_signature_clear(&conn->signature);
    genauth_buf_clear(&conn->request);
    genauth_buf_clear(&conn->url);
    genauth_buf_clear(&conn->response);
    free(conn);
}

void
genauth_conn_shed(genauth_conn *conn)
{
    if (conn->response.cap > GENAUTH_CONN_KEEP_BYTES)
        genauth_buf_clear(&conn->response);
    /* Not referred to any more: the next POST sets CURLOPT_POSTFIELDS. */
    if (conn->request.cap > GENAUTH_CONN_KEEP_BYTES)
        genauth_buf_clear(&conn->request);
}

void
genauth_conn_abandon(genauth_conn *conn)
{
    /* Deliberately leaks the libcurl handles: cleaning them up would close
     * (and, for TLS, shut down) a socket the parent process still uses. */
    (void)conn;
}

/* libcurl 7 reports a buffer grown over its cap as running out of memory,
 * libcurl 8.6 and later as CURLE_TOO_LARGE: an answer's header line longer
 * than CURL_MAX_HTTP_HEADER, or a request head too long to build (a GET's
 * query string of a MiB). "Out of memory" alone would send the reader
 * after this process's memory. Which cap: whether any of the request went
 * out (CURLINFO_REQUEST_SIZE: one too long to build sends nothing). Only
 * once libcurl was about to send (conn->sends) is it this transfer's
 * request; genauth_conn_setup's failures come before. */
typedef enum { CAP_NONE, CAP_REQUEST, CAP_HEAD_LINE } cap_kind;

static cap_kind
cap_reached(const genauth_conn *conn, CURLcode rc)
{
    long sent = 0;
    int capped = rc == CURLE_OUT_OF_MEMORY;
#if LIBCURL_VERSION_NUM >= 0x080600
    capped = capped || rc == CURLE_TOO_LARGE;
#endif
    if (!capped || conn->sends == 0)
        return CAP_NONE;
    if (curl_easy_getinfo(conn->easy, CURLINFO_REQUEST_SIZE, &sent) !=
        CURLE_OK)
        return CAP_NONE;
    return sent > 0 ? CAP_HEAD_LINE : CAP_REQUEST;
}

/* Whether conn's transfer asked an https:// URL (not the proxy's scheme:
 * the API's). */
static int
https_url(genauth_conn *conn)
{
    char *url = NULL;
    return curl_easy_getinfo(conn->easy, CURLINFO_EFFECTIVE_URL, &url) ==
               CURLE_OK &&
           url && strncasecmp(url, "https://", 8) == 0;
}

/* Whether the certificate a failed transfer (rc 60) refused was the
 * https:// proxy's. libcurl words the failure alike for both peers ("SSL
 * certificate problem: self-signed certificate"), and a user who set
 * use_unverified_ssl would look for the fault in the API server. It was the
 * proxy's when the API server's is not checked at all, or when OpenSSL's
 * verdict on the proxy's chain is a failure (a host name that does not
 * match is libcurl's verdict, not OpenSSL's: its message names the host). */
static int
proxy_certificate_refused(const genauth_conn *conn, CURLcode rc)
{
    long verdict = 0;
    if (rc != CURLE_PEER_FAILED_VERIFICATION || !conn->proxy_tls)
        return 0;
    if (conn->api_unverified)
        return 1;
    return curl_easy_getinfo(conn->easy, CURLINFO_PROXY_SSL_VERIFYRESULT,
                             &verdict) == CURLE_OK &&
           verdict != 0; /* X509_V_OK */
}

/* Whether a failed TLS handshake (rc 35) was the https:// proxy's, not the
 * API server's: with an http:// URL only the proxy speaks TLS, and with an
 * https:// one the server's handshake comes after the proxy has answered
 * the CONNECT (libcurl resets that answer's code for each transfer). */
static int
proxy_handshake_failed(genauth_conn *conn, CURLcode rc)
{
    long connect_code = 0;
    if (rc != CURLE_SSL_CONNECT_ERROR || !conn->proxy_tls)
        return 0;
    if (!https_url(conn))
        return 1;
    return curl_easy_getinfo(conn->easy, CURLINFO_HTTP_CONNECTCODE,
                             &connect_code) == CURLE_OK &&
           connect_code == 0;
}

/* Why the CA file failed to load (curl code 77), for libcurl's "Problem
 * with the SSL CA cert (path? access rights?)": the client checked both
 * when it was made, and OpenSSL reads the file when a connection is made.
 * The hint, static or in `buf` (`size` bytes). */
static const char *
ca_file_hint(const char *path, char *buf, size_t size)
{
    char why[128];
    int problem = genauth_ca_file_problem(path);
    if (problem == 0)
        return "; no certificate could be read from it: a CA file holds "
               "certificates in PEM form (-----BEGIN CERTIFICATE-----)";
    snprintf(buf, size,
             "; the file was usable when the client was made, and is not "
             "now: %s",
             genauth_ca_file_problem_text(problem, why, sizeof(why)));
    return buf;
}

static genauth_status
transport_error(genauth_conn *conn, CURLcode rc, genauth_error *err)
{
    genauth_status st;
    cap_kind cap = CAP_NONE;
    size_t len = strlen(conn->errbuf);
    int name_url = 0;
    /* Not libcurl's failure: no curl_code, never taken for "nothing sent". */
    if (rc == CURLE_ABORTED_BY_CALLBACK && conn->refused_closed)
        return genauth_error_set(err, GENAUTH_E_CLOSED,
                                 GENAUTH_MSG_CLOSED_NOT_SENT);
    /* libcurl says it could not connect (7), which is retried: the CA
     * file's code, 77, is not. */
    if (conn->ca_file_unusable) {
        char hint[256];
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "cannot use the CA file '%s'%s; nothing was "
                               "sent",
                               conn->ca_file,
                               ca_file_hint(conn->ca_file, hint,
                                            sizeof(hint)));
        err->curl_code = CURLE_SSL_CACERT_BADFILE;
        return st;
    }
    /* libcurl quotes the proxy as the environment gave it, password and
     * all ("Unsupported proxy scheme for 'ftp://user:pw@host'"), cutting
     * its message at CURL_ERROR_SIZE - 1 bytes, maybe inside them. */
    genauth_mask(conn->errbuf, len, conn->proxy_userinfo,
                 conn->proxy_userinfo_len,
                 len == CURL_ERROR_SIZE - 1 ? 1 : conn->proxy_userinfo_len);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        /* libcurl's words name neither the host nor the request ("Connection
         * timed out after 10001 milliseconds"): a host that drops packets
         * and a token endpoint that never answers read alike without it. */
        st = genauth_error_timeout(err, conn->errbuf[0]
                                            ? conn->errbuf
                                            : curl_easy_strerror(rc));
        genauth_conn_name_url(conn, err);
    } else if (genauth_conn_out_of_fds(conn, rc)) {
        /* libcurl would say "Couldn't connect to server", as if the server
         * had refused: the cause is this process's open-file limit. */
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "no file descriptor was free for a "
                               "connection (%s); nothing was sent",
                               conn->socket_errno == EMFILE
                                   ? "the process has as many files open "
                                     "as its limit allows: RLIMIT_NOFILE, "
                                     "ulimit -n"
                                   : "the system's file table is full");
    } else if (rc == CURLE_ABORTED_BY_CALLBACK && conn->sends > 1) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the connection was lost after the request "
                               "was sent; it was not sent again, as the "
                               "server may have received it");
    } else if (conn->head_bytes > GENAUTH_MAX_HEAD_BYTES) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the response's header lines are larger than "
                               "%d bytes",
                               GENAUTH_MAX_HEAD_BYTES);
    } else if ((cap = cap_reached(conn, rc)) == CAP_HEAD_LINE) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the response has a header line longer than "
                               "libcurl reads (%d bytes), or memory ran out "
                               "while reading it (%s)",
                               CURL_MAX_HTTP_HEADER, curl_easy_strerror(rc));
    } else if (cap == CAP_REQUEST) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the request's head is longer than libcurl "
                               "builds (1 MiB: a GET's parameters), or memory "
                               "ran out while it was built; nothing was sent "
                               "(%s)",
                               curl_easy_strerror(rc));
    } else if (conn->over_cap == GENAUTH_BODY_NOMEM) {
        /* A max_response_bytes beyond what the process can hold. */
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "memory ran out after %zu bytes of the "
                               "response had arrived (max_response_bytes "
                               "allows %zu)",
                               conn->response.len, conn->max_response_bytes);
        name_url = 1;
    } else if (conn->over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the response is larger than "
                               "max_response_bytes (%zu bytes)",
                               conn->max_response_bytes);
        /* Whose: a cap that fits the API's answers may not fit the token
         * endpoint's (a JWT), which a call fetches first. */
        name_url = 1;
    } else {
        /* libcurl's words, and what they leave out. */
        const char *lead = "", *hint = "";
        char hint_buf[256];
        const char *whose =
            proxy_certificate_refused(conn, rc)
                ? ": the https:// proxy's certificate, which is verified "
                  "whatever use_unverified_ssl says"
                : "";
        if (conn->no_ca_store && (rc == CURLE_PEER_FAILED_VERIFICATION ||
                                  rc == CURLE_SSL_CACERT_BADFILE)) {
            hint = "; no CA store was found on this machine: pass "
                   "ca_bundle=, a PEM file of the CAs to trust (or install "
                   "certifi, or set SSL_CERT_FILE)";
        } else if (rc == CURLE_SSL_CACERT_BADFILE && conn->ca_file) {
            hint = ca_file_hint(conn->ca_file, hint_buf, sizeof(hint_buf));
        } else if (proxy_handshake_failed(conn, rc)) {
            /* The same slip in the proxy's URL: the API server was never
             * reached, and neither its URL nor host is to blame (nor is
             * the proxy's URL named: it may hold a password). */
            lead = "the TLS handshake with the https:// proxy failed: ";
            hint = "; a proxy that speaks plain HTTP fails it so: if it is "
                   "one, its URL (https_proxy, http_proxy, all_proxy) "
                   "begins with http://";
        } else if (rc == CURLE_SSL_CONNECT_ERROR && https_url(conn)) {
            /* https:// for a plain-HTTP server (a local service, the
             * emulator) is a common slip, and OpenSSL's words for it
             * ("wrong version number", "packet length too long", as its
             * version goes) name neither the address nor the slip. */
            lead = "the TLS handshake failed: ";
            /* Unless the server sent a TLS alert (OpenSSL's words for each
             * say "alert": "sslv3 alert handshake failure"): it speaks
             * TLS, and http:// would send the secret in the clear to it. */
            hint = strstr(conn->errbuf, "alert ")
                       ? "; the server refused the handshake with a TLS "
                         "alert: it speaks TLS, and does not take what this "
                         "client offered (a protocol version, a cipher) or "
                         "wants what it did not send (a client certificate)"
                       : "; a server that speaks plain HTTP fails it so: if "
                         "one serves that address, host begins with http://";
            name_url = 1;
        }
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "%s%s (%s)%s%s",
                               lead,
                               conn->errbuf[0] ? conn->errbuf
                                               : curl_easy_strerror(rc),
                               curl_easy_strerror(rc), whose, hint);
        /* OpenSSL's verdict ("certificate has expired") names no host: in
         * the log of a program with several clients it read as anyone's.
         * The API server's is named as a failed handshake is; a proxy's
         * is said to be the proxy's, whose URL may hold a password. */
        if (rc == CURLE_PEER_FAILED_VERIFICATION && !whose[0])
            name_url = 1;
    }
    if (name_url)
        genauth_conn_name_url(conn, err);
    err->curl_code = rc;
    return st;
}

/* What one transfer found out, cleared before the next. */
static void
reset_transfer(genauth_conn *conn)
{
    genauth_buf_reset(&conn->response);
    conn->over_cap = 0;
    conn->head_bytes = 0;
    conn->sends = 0;
    conn->shares_fetch = 0;
    conn->socket_errno = 0;
    conn->opened = 0;
    conn->kept_user = 0;
    conn->stale = 0;
    conn->refused_closed = 0;
    conn->ca_file_unusable = 0;
    conn->errbuf[0] = '\0';
}

/* CURLOPT_TIMEOUT_MS for `left` seconds (> 0). Converted only when in
 * range (a timeout is at most GENAUTH_MAX_TIMEOUT, but a long may have 32
 * bits), rounded up and one millisecond more, as libcurl's elapsed time is
 * truncated and its timeout can fire up to a millisecond early: a transfer
 * that times out ends at its deadline, not before, so what the call does
 * next (a batch's next call waiting on the same token) sees that its time
 * is over rather than a millisecond left. */
static long
timeout_ms(double left)
{
    double ms = ceil(left * 1000.0) + 1.0;
    return ms >= (double)LONG_MAX ? LONG_MAX : (long)ms;
}

genauth_status
genauth_conn_setup(genauth_conn *conn, const genauth_call_plan *plan,
                   double deadline, genauth_error *err)
{
    CURL *e = conn->easy;
    CURLcode rc = CURLE_OK;

    double left = deadline - genauth_now();
    if (left <= 0) {
        genauth_error_timeout(err, "no time was left to send the request");
        genauth_error_name_url(err, plan->url);
        return GENAUTH_E_TIMEOUT;
    }
    long left_ms = timeout_ms(left);
    /* Before the options: a failure to set them is named by this
     * transfer's state (nothing sent, no error text), not the last one's. */
    reset_transfer(conn);

    if (plan->url_changes || conn->cur_url != plan->url) {
        rc = curl_easy_setopt(e, CURLOPT_URL, plan->url);
        conn->cur_url = rc == CURLE_OK && !plan->url_changes ? plan->url
                                                             : NULL;
    }
    if (rc == CURLE_OK && conn->cur_headers != plan->headers) {
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, plan->headers);
        conn->cur_headers = rc == CURLE_OK ? plan->headers : NULL;
    }
    if (plan->is_get) {
        if (rc == CURLE_OK && !conn->cur_get) {
            rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
            conn->cur_get = rc == CURLE_OK;
        }
    } else {
        if (rc == CURLE_OK && conn->cur_get) {
            rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
            conn->cur_get = rc != CURLE_OK;
        }
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, conn->request.data);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                  (curl_off_t)conn->request.len);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left_ms);
    if (rc == CURLE_OK && conn->fresh_connect) {
        rc = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 0L);
        conn->fresh_connect = rc != CURLE_OK;
    }
    if (rc != CURLE_OK)
        return transport_error(conn, rc, err);
    conn->deadline = deadline;
    return GENAUTH_OK;
}

int
genauth_conn_rerun_stale(genauth_conn *conn, CURLcode result)
{
    /* Once: the run again is on a new connection, which cannot be stale.
     * Within the call's time: the transfer may have waited in libcurl's
     * queue (every connection busy) before it was given the stale one, and
     * its timeout would count again from now. Past it, 1 ms: it times out
     * as any call does. */
    if (result != CURLE_ABORTED_BY_CALLBACK || !conn->stale ||
        conn->fresh_connect)
        return 0; /* every transfer's end: no clock read before this */
    double left = conn->deadline - genauth_now();
    if (curl_easy_setopt(conn->easy, CURLOPT_TIMEOUT_MS,
                         left > 0 ? timeout_ms(left) : 1L) != CURLE_OK ||
        curl_easy_setopt(conn->easy, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK)
        return 0;
    conn->fresh_connect = 1;
    reset_transfer(conn);
    return 1;
}

int
genauth_conn_nothing_sent(genauth_conn *conn, CURLcode result)
{
    /* Once libcurl was about to send, some of the request may have left:
     * only a transfer that never got that far is known not to have. */
    return result != CURLE_OK && conn->sends == 0;
}

int
genauth_conn_out_of_fds(genauth_conn *conn, CURLcode result)
{
    return result == CURLE_COULDNT_CONNECT && conn->sends == 0 &&
           (conn->socket_errno == EMFILE || conn->socket_errno == ENFILE);
}

/* For an answer that is not the API's: a wrong host or path prefix (a web
 * site, the console) answers every path with a page, and "the server
 * answered HTTP 404" alone does not say which URL was asked, nor that it
 * was the token's. */
void
genauth_conn_name_url(genauth_conn *conn, genauth_error *err)
{
    char *url = NULL;

    if (curl_easy_getinfo(conn->easy, CURLINFO_EFFECTIVE_URL, &url) ==
            CURLE_OK &&
        url)
        genauth_error_name_url(err, url);
}

genauth_status
genauth_conn_finish(genauth_conn *conn, CURLcode result, long *http_status,
                    genauth_error *err)
{
    *http_status = 0;
    if (result != CURLE_OK)
        return transport_error(conn, result, err);
    curl_easy_getinfo(conn->easy, CURLINFO_RESPONSE_CODE, http_status);
    return GENAUTH_OK;
}

/* ---- running a transfer ----------------------------------------------- */

void
genauth_conn_free_forked(genauth_conn *conn)
{
    size_t n = sizeof(conn->own_socks) / sizeof(conn->own_socks[0]);
    int null_fd = -1;
    if (!conn)
        return;
    /* Its multi handle keeps only connections it opened on it, all noted
     * (own_socks): each of those still open is made /dev/null in this
     * process (the parent's descriptor keeps the connection open, so
     * nothing goes on the wire). libcurl's cleanup, which for TLS reads from
     * the socket and sends a close_notify, then reaches nothing of the
     * parent's, and closes the handle's sockets and its multi handle's
     * wakeup pair here: a child that forks again does not hand them on,
     * a copy more each time. */
    if (!conn->own_socks_lost)
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (size_t i = 0; null_fd >= 0 && i < n; i++) {
        if (own_sock_unchanged(conn, (int)i) &&
            dup3(null_fd, conn->own_socks[i].fd, O_CLOEXEC) < 0) {
            close(null_fd);
            null_fd = -1;
        }
    }
    if (null_fd < 0) {
        genauth_conn_abandon(conn);
        return;
    }
    close(null_fd);
    genauth_conn_free(conn);
}

/* Runs conn's transfer on its own multi handle until it ends, checking the
 * interrupt every GENAUTH_INTERRUPT_POLL_MS; *result is how it ended,
 * unless the interrupt check stopped it: then its error (interrupted, or
 * the process forked in a signal handler).
 *
 * Each handle has its multi handle, made by its first call and kept with it
 * in the pool: it holds the handle's connection between calls (libcurl's
 * wakeup costs it 2 fds, a socket pair, or 1 where it is an eventfd).
 * Threads never wait for one another: the kernel wakes each for its own
 * socket. A multi handle shared by the client's calls keeps idle
 * connections at one fd each, but only one thread at a time may drive it,
 * and the others then sleep until the driver wakes them: two wake-ups for
 * most calls. That held 4 threads to
 * 0.62 of a C program's throughput (bench/results/results.md); with a
 * multi handle each, the C core's threads do as well as the C loop. */
static genauth_status
run_transfer(genauth_client *client, genauth_conn *conn, CURLcode *result,
             genauth_error *err)
{
    double next_check = genauth_now() + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    genauth_status st = GENAUTH_OK;

    *result = CURLE_OK;
    if (!conn->multi) {
        conn->multi = curl_multi_init();
        if (!conn->multi)
            return genauth_error_set(err, GENAUTH_E_NOMEM,
                                     "could not start the transfer");
        /* The handle's one connection, kept alive for its next call. */
        curl_multi_setopt(conn->multi, CURLMOPT_MAXCONNECTS, 1L);
    }
    conn->kept = &conn->own_kept;
    if (curl_multi_add_handle(conn->multi, conn->easy) != CURLM_OK) {
        *result = CURLE_OUT_OF_MEMORY;
        return GENAUTH_OK;
    }
    for (;;) {
        int running = 0, left = 0;
        genauth_kept_turn(conn->kept);
        CURLMcode mc = curl_multi_perform(conn->multi, &running);
        if (mc == CURLM_OK) {
            /* Its only transfer: any message is this one's end. */
            CURLMsg *msg = curl_multi_info_read(conn->multi, &left);
            if (msg && msg->msg == CURLMSG_DONE) {
                *result = msg->data.result;
                genauth_conn_note_kept(conn);
                break;
            }
            if (running == 0) { /* ended without saying how: never seen */
                *result = CURLE_GOT_NOTHING;
                break;
            }
            mc = curl_multi_poll(conn->multi, NULL, 0,
                                 GENAUTH_INTERRUPT_POLL_MS, NULL);
        }
        if (mc != CURLM_OK) {
            *result = CURLE_OUT_OF_MEMORY;
            break;
        }
        st = genauth_client_check_interrupt(client, conn->fork_generation,
                                            &next_check, err);
        if (st != GENAUTH_OK) {
            *result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
    }
    /* Taking off a transfer that did not finish closes its connection: the
     * handle is safe to pool again. Not in a child forked meanwhile: the
     * connection is the parent's (genauth_client_release abandons it). */
    if (!genauth_forked_since(conn->fork_generation))
        curl_multi_remove_handle(conn->multi, conn->easy);
    return st;
}

genauth_status
genauth_conn_post(genauth_client *client, genauth_conn *conn,
                  const char *url, const struct curl_slist *headers,
                  double deadline, long *http_status, genauth_error *err)
{
    genauth_call_plan plan = {.url = url, .headers = headers};
    return genauth_conn_perform(client, conn, &plan, deadline, http_status,
                                err);
}

genauth_status
genauth_conn_perform(genauth_client *client, genauth_conn *conn,
                     const genauth_call_plan *plan, double deadline,
                     long *http_status, genauth_error *err)
{
    genauth_status st;
    CURLcode result = CURLE_OK;

    *http_status = 0;
    st = genauth_conn_setup(conn, plan, deadline, err);
    if (st == GENAUTH_OK)
        st = run_transfer(client, conn, &result, err);
    if (st == GENAUTH_OK && genauth_conn_rerun_stale(conn, result))
        st = run_transfer(client, conn, &result, err);
    if (st != GENAUTH_OK)
        return st;
    return genauth_conn_finish(conn, result, http_status, err);
}
