/*
 * tests/codegen/test_fixture_client.c — the C client generated from
 * tests/codegen/fixture.yaml, compiled with the client runtime and the
 * fixture's own descriptors.
 *
 * Each fixture method has its functions by transport (greet: HTTP, async
 * and WebSocket; tally: WebSocket only; words.count: HTTP only), and they
 * encode with the fixture's descriptors: a request that breaks the
 * fixture's schema (a required member missing) is refused with its path before anything is sent, and
 * a valid one reaches the transport (nothing listens on the URL: a
 * transport error, not a usage one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_client_methods.h"
#include "unit.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_fixture_client CLOSED_URL\n");
        return 2;
    }
    anvil_client *c = NULL;
    anvil_client_error err = { .code_id = -1 };
    CHECK(anvil_client_new(argv[1], "t", NULL, &c, &err) == 0);
    if (!c)
        UNIT_DONE();

    /* greet: name is required (the server checks the rest of the schema) */
    anvil_greet_request g = { .times = 2 };
    anvil_greet_response gr = { 0 };
    CHECK(anvil_client_greet(c, &g, &gr, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    CHECK(err.path && strstr(err.path, "name"));
    anvil_client_error_clear(&err);
    g.name = "ann";
    CHECK(anvil_client_greet(c, &g, &gr, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_TRANSPORT);
    anvil_client_error_clear(&err);

    /* words.count: text is required */
    anvil_words_count_request w = { 0 };
    anvil_words_count_response wr = { 0 };
    CHECK(anvil_client_words_count(c, &w, &wr, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    CHECK(err.path && strstr(err.path, "text"));
    anvil_client_error_clear(&err);

    /* async needs a base; the generated wrapper reaches the runtime's check */
    w.text = "a b";
    CHECK(anvil_client_words_count_async(c, &w, NULL, NULL, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    anvil_client_error_clear(&err);

    /* tally is WebSocket-only: its function takes a connection */
    int (*tally)(anvil_client_ws *, const anvil_tally_request *, anvil_tally_response *,
                 anvil_client_error *) = anvil_client_ws_tally;
    CHECK(tally != NULL);
    anvil_client_ws *ws = NULL;
    CHECK(anvil_client_ws_open(c, NULL, 0, NULL, &ws, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_TRANSPORT);
    anvil_client_error_clear(&err);

    anvil_client_free(c);
    UNIT_DONE();
}
