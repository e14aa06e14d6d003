/* Unit tests of how transport.c names a failure when libcurl runs out of
 * memory. libcurl allocates through this file's functions
 * (curl_global_init_mem, called before the core's curl_global_init, which
 * then only counts), so a test makes it fail on demand. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static int fail_strdup;

static char *
test_strdup(const char *s)
{
    return fail_strdup ? NULL : strdup(s);
}

/* A handle's setup that fails for memory before its transfer ran: nothing
 * of what the transfer before it left (its request went out, its error)
 * names the failure. */
static void
test_setup_out_of_memory(void)
{
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_conn *conn = NULL;
    genauth_error err;

    genauth_client_options_init(&o);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    o.host = "http://127.0.0.1:1";
    genauth_error_init(&err);
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
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
    curl_global_cleanup(); /* the core's init */
    curl_global_cleanup(); /* this file's */
    return check_summary("test_transport");
}
