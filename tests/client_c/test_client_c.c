/*
 * tests/client_c/test_client_c.c — libanvil-client against the real server.
 *
 * Driven by tests/integration/test_c_client.py, which starts `anvil serve`
 * with the deploy workflow and two tokens and runs:
 *   test_client_c URL OPERATOR_TOKEN VIEWER_TOKEN CLOSED_URL
 * Covers the blocking API (typed calls, every kind of typed error), the
 * event-loop API (concurrent calls on a caller's event base) and the
 * WebSocket (hello, a typed call, the run stream through an approval to
 * run.completed, with a dropped socket resumed without a gap) and the
 * WebSocket on an event loop (a run launched, approved from an event
 * callback and seen to completion).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "anvil_client_methods.h"
#include "anvil_errors.h"
#include "unit.h"

static const char *URL, *OP, *VIEWER, *CLOSED;

static anvil_client *client(const char *token, struct event_base *base)
{
    anvil_client *c = NULL;
    anvil_client_error err = { .code_id = -1 };
    CHECK(anvil_client_new(URL, token, base, &c, &err) == 0);
    return c;
}

/* Read run_id's log from the start until `event` (bounded by the stream's
 * own timeout per item), so the tests below see a run that waits. */
static void wait_for_event(anvil_client *c, const char *run_id, const char *event)
{
    anvil_client_error err = { .code_id = -1 };
    anvil_client_run_stream *s = NULL;
    CHECK(anvil_client_run_stream_open(c, run_id, 0, &s, &err) == 0);
    bool seen = false;
    while (s && !seen) {
        anvil_client_run_item it;
        int got = anvil_client_run_stream_next(s, 20000, &it, &err);
        CHECK(got == 1);
        if (got != 1)
            break;
        seen = it.event && !strcmp(it.event, event);
        anvil_client_run_item_clear(&it);
    }
    anvil_client_error_clear(&err);
    anvil_client_run_stream_close(s);
}

static void test_blocking(void)
{
    anvil_client *c = client(OP, NULL);
    anvil_client_error err = { .code_id = -1 };

    anvil_list_workflows_request lw = { 0 };
    anvil_list_workflows_response wfs = { 0 };
    CHECK(anvil_client_list_workflows(c, &lw, &wfs, &err) == 0);
    CHECK(wfs.count == 1);
    CHECK_STR(wfs.items[0].key, "deploy");
    anvil_schema_free(&anvil_schema_list_workflows_response, &wfs);

    cJSON *input = cJSON_Parse("{\"sha\":\"c0ffee\"}");
    anvil_launch_run_request lr = { .workflow = "deploy", .input = input, .has_options = true };
    lr.options.run_id = "c-block";
    anvil_launch_run_response launched = { 0 };
    CHECK(anvil_client_launch_run(c, &lr, &launched, &err) == 0);
    CHECK_STR(launched.run_id, "c-block");
    anvil_schema_free(&anvil_schema_launch_run_response, &launched);
    cJSON_Delete(input);
    wait_for_event(c, "c-block", "approval.requested");

    /* typed error: a missing run is RunNotFound, 404 from the error map */
    anvil_get_run_request gr = { .run_id = "no-such-run" };
    anvil_get_run_response run = { 0 };
    CHECK(anvil_client_get_run(c, &gr, &run, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_SERVER);
    CHECK_STR(err.code, "RunNotFound");
    CHECK(err.code_id == ANVIL_ERR_RUN_NOT_FOUND);
    CHECK(err.http_status == 404);
    CHECK(run.run_id == NULL);
    anvil_client_error_clear(&err);

    /* a request the contract refuses never leaves: the client's encoder
     * names the missing member */
    anvil_get_run_request bad = { 0 };
    CHECK(anvil_client_get_run(c, &bad, &run, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    CHECK(err.path && strstr(err.path, "runId"));
    anvil_client_error_clear(&err);

    /* the server's own validation error carries its JSON path */
    cJSON *frame = NULL;
    int status = 0;
    cJSON *params = cJSON_Parse("{\"runId\":1}");
    CHECK(anvil_client_call_raw(c, "getRun", params, &frame, &status, &err) == 0);
    CHECK(status == 400);
    CHECK(anvil_client_err_from_frame(&err, frame, status) == -1);
    CHECK_STR(err.code, "InvalidRequest");
    CHECK_STR(err.path, "$.params.runId");
    anvil_client_error_clear(&err);
    cJSON_Delete(frame);
    cJSON_Delete(params);
    anvil_client_free(c);

    /* Forbidden carries the scope the method needs */
    c = client(VIEWER, NULL);
    anvil_launch_run_request lr2 = { .workflow = "deploy" };
    CHECK(anvil_client_launch_run(c, &lr2, &launched, &err) == -1);
    CHECK_STR(err.code, "Forbidden");
    CHECK(err.http_status == 403);
    CHECK_STR(err.required_scope, "run:write");
    anvil_client_error_clear(&err);
    anvil_client_free(c);

    /* Unauthorized for a token the server does not know */
    c = client("not-a-token", NULL);
    CHECK(anvil_client_list_workflows(c, &lw, &wfs, &err) == -1);
    CHECK_STR(err.code, "Unauthorized");
    CHECK(err.http_status == 401);
    anvil_client_error_clear(&err);
    anvil_client_free(c);

    /* nothing listening: a transport error, not a contract one */
    anvil_client *closed = NULL;
    CHECK(anvil_client_new(CLOSED, OP, NULL, &closed, &err) == 0);
    CHECK(anvil_client_list_workflows(closed, &lw, &wfs, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_TRANSPORT);
    CHECK(err.code[0] == '\0');
    anvil_client_error_clear(&err);
    anvil_client_free(closed);

    /* a malformed URL is the caller's mistake */
    CHECK(anvil_client_new("ftp://x", OP, NULL, &closed, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    anvil_client_error_clear(&err);
}

/* --- event loop ---------------------------------------------------------- */

typedef struct loop_state {
    struct event_base *base;
    int pending;
    int runs_seen;
    char status[64];
    char missing_code[64];
} loop_state;

static void one_done(loop_state *s)
{
    if (--s->pending == 0)
        event_base_loopexit(s->base, NULL);
}

static void on_get_run(const anvil_client_error *err, const void *res, void *arg)
{
    loop_state *s = arg;
    CHECK(err == NULL);
    if (res)
        snprintf(s->status, sizeof s->status, "%s", ((const anvil_get_run_response *)res)->status);
    one_done(s);
}

static void on_list_runs(const anvil_client_error *err, const void *res, void *arg)
{
    loop_state *s = arg;
    CHECK(err == NULL);
    if (res)
        s->runs_seen = (int)((const anvil_list_runs_response *)res)->count;
    one_done(s);
}

static void on_missing(const anvil_client_error *err, const void *res, void *arg)
{
    loop_state *s = arg;
    CHECK(res == NULL);
    CHECK(err != NULL);
    if (err)
        snprintf(s->missing_code, sizeof s->missing_code, "%s", err->code);
    one_done(s);
}

static void test_event_loop(void)
{
    struct event_base *base = event_base_new();
    CHECK(base != NULL);
    anvil_client *c = client(OP, base);
    loop_state s = { .base = base };
    anvil_client_error err = { .code_id = -1 };
    anvil_get_run_request gr = { .run_id = "c-block" };
    anvil_get_run_request missing = { .run_id = "no-such-run" };
    anvil_list_runs_request lr = { 0 };
    /* three calls in flight on one loop before it runs */
    CHECK(anvil_client_get_run_async(c, &gr, on_get_run, &s, &err) == 0);
    s.pending++;
    CHECK(anvil_client_list_runs_async(c, &lr, on_list_runs, &s, &err) == 0);
    s.pending++;
    CHECK(anvil_client_get_run_async(c, &missing, on_missing, &s, &err) == 0);
    s.pending++;
    CHECK(event_base_dispatch(base) == 0);
    CHECK(s.pending == 0);
    CHECK_STR(s.status, "waiting-approval");
    CHECK(s.runs_seen == 1);
    CHECK_STR(s.missing_code, "RunNotFound");

    /* a client without a base refuses async calls instead of hanging */
    anvil_client *blocking = client(OP, NULL);
    CHECK(anvil_client_get_run_async(blocking, &gr, on_get_run, &s, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_USAGE);
    anvil_client_error_clear(&err);
    anvil_client_free(blocking);
    anvil_client_free(c);
    event_base_free(base);
}

/* --- WebSocket ------------------------------------------------------------- */

static void test_websocket(void)
{
    anvil_client *c = client(OP, NULL);
    anvil_client_error err = { .code_id = -1 };
    anvil_client_ws *ws = NULL;
    cJSON *hello = NULL;
    CHECK(anvil_client_ws_open(c, NULL, 0, &hello, &ws, &err) == 0);
    CHECK(cJSON_GetObjectItemCaseSensitive(hello, "protocol") != NULL);
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(hello, "auth");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(auth, "role")), "operator");
    cJSON_Delete(hello);

    /* a typed call over the socket */
    anvil_get_run_request gr = { .run_id = "c-block" };
    anvil_get_run_response run = { 0 };
    CHECK(anvil_client_ws_get_run(ws, &gr, &run, &err) == 0);
    CHECK_STR(run.status, "waiting-approval");
    CHECK(run.has_last_seq && run.last_seq > 0);
    int64_t last_seq = run.last_seq;
    anvil_schema_free(&anvil_schema_get_run_response, &run);
    /* and a typed error over it */
    anvil_get_run_request missing = { .run_id = "no-such-run" };
    CHECK(anvil_client_ws_get_run(ws, &missing, &run, &err) == -1);
    CHECK_STR(err.code, "RunNotFound");
    CHECK(err.http_status == 404);
    anvil_client_error_clear(&err);
    anvil_client_ws_close(ws);

    /* the run stream: the whole log from the start, in order, no gaps */
    anvil_client_run_stream *s = NULL;
    CHECK(anvil_client_run_stream_open(c, "c-block", 0, &s, &err) == 0);
    int64_t expect = 1;
    bool asked = false;
    while (expect <= last_seq) {
        anvil_client_run_item it;
        CHECK(anvil_client_run_stream_next(s, 20000, &it, &err) == 1);
        CHECK(it.kind == ANVIL_RUN_ITEM_EVENT);
        CHECK(it.seq == expect);
        if (it.event && !strcmp(it.event, "approval.requested"))
            asked = true;
        expect++;
        anvil_client_run_item_clear(&it);
    }
    CHECK(asked);
    /* the socket drops; the stream resumes after the last seq it gave */
    anvil_client_run_stream_drop(s);
    anvil_submit_approval_request ap = { .run_id = "c-block", .node_id = "approve" };
    ap.decision.has_approved = true;
    ap.decision.approved = true;
    anvil_submit_approval_response decided = { 0 };
    CHECK(anvil_client_submit_approval(c, &ap, &decided, &err) == 0);
    CHECK(decided.approved);
    anvil_schema_free(&anvil_schema_submit_approval_response, &decided);
    bool completed = false;
    while (!completed) {
        anvil_client_run_item it;
        int got = anvil_client_run_stream_next(s, 20000, &it, &err);
        CHECK(got == 1);
        if (got != 1)
            break;
        CHECK(it.kind == ANVIL_RUN_ITEM_EVENT);
        CHECK(it.seq == expect);
        expect++;
        if (!strcmp(it.event, "run.completed")) {
            completed = true;
            CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it.payload, "status")), "finished");
        }
        anvil_client_run_item_clear(&it);
    }
    CHECK(anvil_client_run_stream_reconnects(s) == 1);
    CHECK(anvil_client_run_stream_last_seq(s) == expect - 1);
    anvil_client_run_stream_close(s);

    /* a stream on a missing run is refused with the contract's code */
    CHECK(anvil_client_run_stream_open(c, "no-such-run", -1, &s, &err) == -1);
    CHECK_STR(err.code, "RunNotFound");
    anvil_client_error_clear(&err);
    anvil_client_free(c);

    /* a bad token is refused at connect */
    c = client("not-a-token", NULL);
    CHECK(anvil_client_ws_open(c, NULL, 0, NULL, &ws, &err) == -1);
    CHECK(err.kind == ANVIL_CLIENT_ERR_SERVER);
    CHECK_STR(err.code, "Unauthorized");
    anvil_client_error_clear(&err);
    anvil_client_free(c);
}

/* --- WebSocket on an event loop ------------------------------------------ */

typedef struct ws_loop_state {
    struct event_base *base;
    anvil_client_ws_loop *loop;
    bool launched, asked, answered, approved, completed, closed;
    char status[32];
    int events;
} ws_loop_state;

/* The approval's answer and run.completed may arrive in either order
 * (without a subscribe list the run's events are not held back for the
 * answer): the loop ends when both are in. */
static void maybe_exit(ws_loop_state *s)
{
    if (s->answered && s->completed)
        event_base_loopexit(s->base, NULL);
}

static void on_ws_approved(const anvil_client_error *err, const void *res, void *arg)
{
    ws_loop_state *s = arg;
    CHECK(err == NULL);
    s->answered = true;
    s->approved = res && ((const anvil_submit_approval_response *)res)->approved;
    maybe_exit(s);
}

static void on_ws_launched(const anvil_client_error *err, const void *res, void *arg)
{
    ws_loop_state *s = arg;
    CHECK(err == NULL);
    s->launched = res && !strcmp(((const anvil_launch_run_response *)res)->run_id, "c-loop");
}

static void on_ws_event(const anvil_client_event *ev, void *arg)
{
    ws_loop_state *s = arg;
    s->events++;
    const char *run = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev->payload, "runId"));
    if (!run || strcmp(run, "c-loop") != 0)
        return;
    anvil_client_error err = { .code_id = -1 };
    if (!strcmp(ev->event, "approval.requested")) {
        /* decide from inside the event callback, on the loop */
        s->asked = true;
        anvil_submit_approval_request ap = { .run_id = "c-loop", .node_id = "approve" };
        ap.decision.has_approved = true;
        ap.decision.approved = true;
        CHECK(anvil_client_ws_submit_approval_async(s->loop, &ap, on_ws_approved, s, &err) == 0);
    } else if (!strcmp(ev->event, "run.completed")) {
        s->completed = true;
        snprintf(s->status, sizeof s->status, "%s",
                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev->payload, "status")));
        maybe_exit(s);
    }
}

static void on_ws_closed(const anvil_client_error *err, void *arg)
{
    ws_loop_state *s = arg;
    CHECK(err != NULL && err->kind == ANVIL_CLIENT_ERR_TRANSPORT);
    s->closed = true;
    event_base_loopexit(s->base, NULL);
}

static void test_websocket_loop(void)
{
    anvil_client *c = client(OP, NULL);
    anvil_client_error err = { .code_id = -1 };
    anvil_client_ws *ws = NULL;
    CHECK(anvil_client_ws_open(c, NULL, 0, NULL, &ws, &err) == 0);
    if (!ws) {
        anvil_client_free(c);
        return;
    }
    struct event_base *base = event_base_new();
    ws_loop_state s = { .base = base };
    CHECK(anvil_client_ws_loop_start(ws, base, on_ws_event, on_ws_closed, &s, &s.loop, &err) == 0);
    /* launching over the socket subscribes it to the run: its events,
     * the approval asked and decided from a callback, run.completed */
    cJSON *input = cJSON_Parse("{\"sha\":\"loop\"}");
    anvil_launch_run_request lr = { .workflow = "deploy", .input = input, .has_options = true };
    lr.options.run_id = "c-loop";
    CHECK(anvil_client_ws_launch_run_async(s.loop, &lr, on_ws_launched, &s, &err) == 0);
    cJSON_Delete(input);
    /* a bound against a hang, not a measurement: the run takes milliseconds */
    struct timeval bound = { 60, 0 };
    event_base_loopexit(base, &bound);
    CHECK(event_base_dispatch(base) == 0);
    CHECK(s.launched);
    CHECK(s.asked);
    CHECK(s.approved);
    CHECK(s.completed);
    CHECK_STR(s.status, "finished");
    CHECK(!s.closed);
    anvil_client_ws_loop_stop(s.loop);

    /* detached, the connection works blocking again */
    anvil_get_run_request gr = { .run_id = "c-loop" };
    anvil_get_run_response run = { 0 };
    CHECK(anvil_client_ws_get_run(ws, &gr, &run, &err) == 0);
    CHECK_STR(run.status, "finished");
    anvil_schema_free(&anvil_schema_get_run_response, &run);
    anvil_client_ws_close(ws);
    event_base_free(base);
    anvil_client_free(c);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_client_c URL OPERATOR_TOKEN VIEWER_TOKEN CLOSED_URL\n");
        return 2;
    }
    URL = argv[1];
    OP = argv[2];
    VIEWER = argv[3];
    CLOSED = argv[4];
    test_blocking();
    test_event_loop();
    test_websocket();
    test_websocket_loop();
    UNIT_DONE();
}
