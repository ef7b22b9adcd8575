/*
 * tests/codegen/test_fixture.c — the generator's output for fixture.yaml,
 * compiled and exercised: two handlers written against the generated types,
 * called through the generated method table, as a contributor would after
 * `make regen`.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "anvil_errors.h"
#include "anvil_handlers.h"
#include "anvil_websocket.h"
#include "method.h"
#include "scope.h"
#include "unit.h"
#include "ws_contract.h"

/* The one handler a contributor writes for `greet`. */
int anvil_handle_greet(struct anvil_call *call, const anvil_greet_request *req, anvil_greet_response *res)
{
    (void)call;
    if (req->mood && strcmp(req->mood, "grumpy") == 0)
        return -1;
    if (asprintf(&res->message, "hello %s%s", req->name, req->has_loud && req->loud ? "!" : "") < 0)
        return -1;
    res->count = req->times + (int64_t)(req->has_friends ? req->friends.count : 0);
    if (req->extra)
        res->echo = cJSON_Duplicate(req->extra, 1);
    return 0;
}

/* A dotted method: its C names come from the parts (words_count, and the
 * inline schemas' types from WordsCountRequest / WordsCountResponse). */
int anvil_handle_words_count(struct anvil_call *call, const anvil_words_count_request *req,
                             anvil_words_count_response *res)
{
    (void)call;
    int64_t n = 0;
    bool in_word = false;
    for (const char *p = req->text; *p; p++) {
        bool space = *p == ' ';
        n += !space && !in_word;
        in_word = !space;
    }
    res->count = n;
    return 0;
}

/* x-anvil-handler renamed this one. */
int fixture_tally(struct anvil_call *call, const anvil_tally_request *req, anvil_tally_response *res)
{
    (void)call;
    res->value = (int64_t)req->words.count;
    return 0;
}

static char *call_method(const char *name, const char *params, int *rc, anvil_schema_error *err)
{
    const anvil_method *m = anvil_method_find(name);
    if (!m)
        return NULL;
    cJSON *j = cJSON_Parse(params);
    void *req = calloc(1, m->request->size), *res = calloc(1, m->response->size);
    char *out = NULL;
    *rc = anvil_schema_decode(m->request, j, req, "$.params", err);
    if (*rc == 0) {
        *rc = anvil_handler_table[m->id](NULL, req, res);
        if (*rc == 0) {
            cJSON *o = anvil_schema_encode(m->response, res, err);
            out = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
        }
    }
    anvil_schema_free(m->request, req);
    anvil_schema_free(m->response, res);
    free(req);
    free(res);
    cJSON_Delete(j);
    return out;
}

static void expect_invalid(const char *params, const char *path, const char *msg)
{
    int rc;
    anvil_schema_error err;
    char *out = call_method("greet", params, &rc, &err);
    CHECK(out == NULL && rc != 0);
    CHECK_STR(err.path, path);
    if (msg)
        CHECK_STR(err.message, msg);
    free(out);
}

/* Check `json` as event `name`'s payload; the failure's path, or "". */
static const char *event_path(const char *name, const char *json)
{
    static anvil_schema_error err;
    cJSON *j = cJSON_Parse(json);
    int rc = anvil_ws_event_check(name, j, &err);
    cJSON_Delete(j);
    return rc == 0 ? "" : err.path;
}

/* The WebSocket part of the fixture (x-anvil-websocket): the event added
 * there and the method flagged x-anvil-subscribes-run reach the tables the
 * runtime reads, with no hand-written list anywhere. */
static void test_websocket(void)
{
    CHECK_STR(ANVIL_WS_PATH, "/ws");
    CHECK_STR(ANVIL_WS_CONNECT_METHOD, "hello");
    CHECK(anvil_http_request_frame_schema == NULL);   /* no operation is the HTTP frame */
    CHECK_INT(ANVIL_WS_EVENT__COUNT, 2);
    const anvil_ws_event_desc *ev = anvil_ws_event_find("greeting.sent");
    CHECK(ev && ev == &anvil_ws_events[ANVIL_WS_EVENT_GREETING_SENT]);
    CHECK(ev->payload == &anvil_schema_greeting_sent);
    CHECK_STR(ev->summary, "A greeting went out.");
    CHECK(anvil_ws_event_find("tick") && anvil_ws_event_find("greeting") == NULL);
    CHECK_STR(event_path("greeting.sent", "{\"to\":\"ada\",\"card\":{\"version\":1}}"), "");
    CHECK_STR(event_path("greeting.sent", "{\"to\":5}"), "$.payload.to");
    CHECK_STR(event_path("greeting.sent", "{\"to\":\"ada\",\"card\":[]}"), "$.payload.card");
    CHECK_STR(event_path("greeting.sent", "{}"), "$.payload.to");
    CHECK_STR(event_path("tick", "{\"ts\":-1}"), "$.payload.ts");
    CHECK_STR(event_path("nope", "{}"), "$.event");

    /* greet subscribes (to the run its payload.message names), tally not */
    const anvil_method *g = anvil_method_find("greet"), *t = anvil_method_find("tally");
    CHECK(anvil_ws_subscribes_run(g) && !anvil_ws_subscribes_run(t));
    CHECK(anvil_ws_method_subscribes[ANVIL_METHOD_GREET].source == ANVIL_WS_SUBSCRIBES_PAYLOAD);
    cJSON *payload = cJSON_Parse("{\"message\":\"m1\",\"count\":1}");
    cJSON *params = cJSON_Parse("{\"message\":\"not this\"}");
    CHECK_STR(anvil_ws_subscribed_run(g, params, payload), "m1");
    CHECK(anvil_ws_subscribed_run(t, params, payload) == NULL);
    cJSON_Delete(payload);
    cJSON_Delete(params);

    /* The frames and the handshake are generated descriptors too. */
    anvil_schema_error err;
    cJSON *frame = cJSON_Parse("{\"id\":\"123456789\",\"method\":\"greet\"}");
    CHECK(anvil_schema_check(anvil_ws_req_frame_schema, frame, "$", &err) != 0);
    CHECK_STR(err.path, "$.id");
    cJSON_Delete(frame);
    anvil_ws_connect_params hp = { 0 };
    cJSON *hj = cJSON_Parse("{\"version\":2,\"subscribe\":[\"a\",\"b\"]}");
    CHECK(anvil_schema_decode(anvil_ws_connect_params_schema, hj, &hp, "$.params", &err) == 0);
    CHECK_INT(hp.version, 2);
    CHECK(hp.has_subscribe && hp.subscribe.count == 2);
    anvil_schema_free(anvil_ws_connect_params_schema, &hp);
    cJSON_Delete(hj);
    CHECK(anvil_ws_connect_result_schema == &anvil_schema_welcome);
    CHECK(anvil_ws_event_frame_schema == &anvil_schema_ev && anvil_ws_res_frame_schema == &anvil_schema_res);
}

int main(void)
{
    /* The table: canonical name, alias, scope, transport, handler. */
    CHECK_INT(anvil_n_methods, 3);
    CHECK_INT(ANVIL_METHOD__COUNT, 3);
    const anvil_method *g = anvil_method_find("greet");
    CHECK(g && anvil_method_find("greetings.send") == g);
    CHECK(anvil_method_find("tally") && anvil_method_find("nope") == NULL);
    CHECK_STR(g->required_scope, "greet:write");
    CHECK(g->transport == ANVIL_TRANSPORT_BOTH);
    CHECK(anvil_method_find("tally")->transport == ANVIL_TRANSPORT_WEBSOCKET);
    const anvil_method *wc = anvil_method_find("words.count");
    CHECK(wc && wc->id == ANVIL_METHOD_WORDS_COUNT && wc == &anvil_methods[ANVIL_METHOD_WORDS_COUNT]);
    CHECK_STR(wc->name, "words.count");
    CHECK(wc->request == &anvil_schema_words_count_request);
    CHECK(anvil_method_find("words") == NULL && anvil_method_find("wordsCount") == NULL);
    CHECK_INT(g->n_errors, 2);
    CHECK(g->errors[1] == ANVIL_ERR_TEAPOT);
    CHECK_STR(anvil_method_fallback_scope("whatever"), "greet:read");

    /* The error map, including an extension code. */
    CHECK_INT(anvil_error_info_of(ANVIL_ERR_TEAPOT)->http_status, 418);
    CHECK_STR(anvil_error_info_of(ANVIL_ERR_TEAPOT)->legacy_code, "I_AM_A_TEAPOT");
    CHECK(anvil_error_info_of(ANVIL_ERR_TEAPOT)->extension);
    CHECK_INT(anvil_error_code_from_name("Teapot"), ANVIL_ERR_TEAPOT);

    /* Scopes and implications. */
    char *granted[] = { "greet:write" };
    CHECK(anvil_scope_allows(&anvil_scopes, granted, 1, "greet:read", "greet", "greet"));
    char *legacy[] = { "all" };
    CHECK(anvil_scope_allows(&anvil_scopes, legacy, 1, "greet:write", "greet", "greet"));
    CHECK_INT(ANVIL_BOUND_MAX_ARRAY_LENGTH, 4);

    /* A full request through decode -> handler -> encode. */
    int rc;
    anvil_schema_error err;
    char *out = call_method("greet",
                            "{\"name\":\"ada\",\"mood\":\"happy\",\"times\":2,\"volume\":0.5,\"loud\":true,"
                            "\"version\":\"v1\",\"nickname\":null,\"title\":\"dr\",\"extra\":[1,{\"a\":null}],"
                            "\"idOrNumber\":7,\"meta\":{\"k\":[true]},\"address\":{\"city\":\"x\",\"zip\":1},"
                            "\"friends\":[{\"name\":\"bo\"},{\"name\":\"cy\"}],\"default\":false}",
                            &rc, &err);
    CHECK(rc == 0);
    CHECK_STR(out, "{\"message\":\"hello ada!\",\"count\":4,\"echo\":[1,{\"a\":null}]}");
    free(out);

    out = call_method("greet", "{\"name\":\"ada\",\"times\":1}", &rc, &err);
    CHECK_STR(out, "{\"message\":\"hello ada\",\"count\":1}");
    free(out);

    out = call_method("tally", "{\"words\":[\"a\",\"b\",\"c\"]}", &rc, &err);
    CHECK_STR(out, "3");
    free(out);

    out = call_method("words.count", "{\"text\":\"one two  three\"}", &rc, &err);
    CHECK_STR(out, "{\"count\":3}");
    free(out);

    /* Every validation rule the generator emits. */
    expect_invalid("{\"times\":1}", "$.params.name", "required property \"name\" is missing");
    expect_invalid("{\"name\":\"\",\"times\":1}", "$.params.name", "must be at least 1 characters");
    expect_invalid("{\"name\":\"abcdefghi\",\"times\":1}", "$.params.name", "must be at most 8 characters");
    expect_invalid("{\"name\":\"a\",\"times\":4}", "$.params.times", "must be <= 3");
    expect_invalid("{\"name\":\"a\",\"times\":0}", "$.params.times", "must be >= 1");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"volume\":0.1}", "$.params.volume", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"mood\":\"meh\"}", "$.params.mood",
                   "must be one of \"happy\", \"grumpy\"");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"version\":\"v2\"}", "$.params.version", "must be \"v1\"");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"title\":5}", "$.params.title", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"loud\":null}", "$.params.loud", "expected boolean, got null");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"idOrNumber\":1.5}", "$.params.idOrNumber",
                   "expected string or integer, got number");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"idOrNumber\":true}", "$.params.idOrNumber", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"meta\":[]}", "$.params.meta", "expected object, got array");
    expect_invalid("{\"name\":\"a\",\"times\":1,\"address\":{}}", "$.params.address.city", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"address\":{\"city\":\"x\",\"zip\":\"1\"}}",
                   "$.params.address.zip", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"friends\":[{\"name\":\"x\"},{}]}",
                   "$.params.friends[1].name", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"surprise\":1}", "$.params.surprise", NULL);

    /* A schema that contains itself: checked as declared at the top, as a
     * JSON object where it recurs (kept whole, not checked further). */
    out = call_method("greet", "{\"name\":\"a\",\"times\":1,\"tree\":{\"label\":\"r\",\"kids\":"
                               "[{\"label\":\"k\",\"kids\":[{\"label\":\"g\"}]},{\"any\":1}]}}", &rc, &err);
    CHECK(rc == 0);
    free(out);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"tree\":{}}", "$.params.tree.label", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"tree\":{\"label\":\"r\",\"x\":1}}", "$.params.tree.x", NULL);
    expect_invalid("{\"name\":\"a\",\"times\":1,\"tree\":{\"label\":\"r\",\"kids\":[\"k\"]}}",
                   "$.params.tree.kids[0]", "expected object, got string");

    /* C keywords become name_ members; the JSON name is unchanged. */
    out = call_method("greet", "{\"name\":\"a\",\"times\":1,\"default\":true}", &rc, &err);
    CHECK(rc == 0);
    free(out);

    /* A handler failure stays a failure. */
    out = call_method("greet", "{\"name\":\"a\",\"times\":1,\"mood\":\"grumpy\"}", &rc, &err);
    CHECK(out == NULL && rc != 0);
    test_websocket();
    UNIT_DONE();
}
