/*
 * runtime/ws/ws_rpc.c — one inbound frame: connect, or a call.
 *
 * Frames: req {type:"req", id, method, params?}; res (anvil_rpc_*_frame).
 * Every frame is read with HTTP's checks (contract/frame.c), except that it
 * must carry its own id: nothing else can correlate the answer. Then
 * `connect` goes to the handshake, anything else before it is
 * Unauthorized, and after it every request goes through anvil_rpc_handle
 * with this connection's streams (anvil_ws_stream_ops).
 *
 * Owns the order of what follows a call: its answer, then the events held
 * during it, then the streams it opened. A call answered later (a deferred
 * handler) subscribes nothing and opens no stream: its answer goes out
 * whenever it comes, correlated by its id, while the connection's other
 * calls go on. Must not validate a frame by hand nor know what a method
 * does: which methods subscribe the caller, and to which run, is the
 * contract's (x-anvil-subscribes-run, contract/ws_contract.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "method.h"
#include "rpc.h"
#include "store.h"
#include "store_txn.h"
#include "ws_contract.h"
#include "ws_gateway_internal.h"

const anvil_stream_ops anvil_ws_stream_ops = {
    .run_events = ws_run_stream_open,
    .devtools = ws_devtools_stream_open,
};

/* The run a successful call of subscribing method m is about (where its
 * x-anvil-subscribes-run says). NULL when the call failed. Returns a
 * malloc'd string. */
static char *call_run_id(const anvil_method *m, const char *response, const cJSON *params)
{
    cJSON *r = cJSON_Parse(response);
    char *out = NULL;
    if (r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"))) {
        const char *rid = anvil_ws_subscribed_run(m, params, cJSON_GetObjectItemCaseSensitive(r, "payload"));
        if (rid)
            out = strdup(rid);
    }
    cJSON_Delete(r);
    return out;
}

static void *hold_reply(void *conn)
{
    ws_conn *c = conn;
    ws_reply *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->c = c;
    r->next = c->replies;
    c->replies = r;
    return r;
}

/* With group commit (store_txn.h) the call's changes are committed before
 * its answer goes out (the WebSocket answers in place, so this commits the
 * loop turn's batch now), and a lost batch turns the answer into the
 * error. */
static char *durable(const anvil_services *svc, char *frame, int *status)
{
    if (!frame || anvil_store_flush(svc->store) == 0)
        return frame;
    anvil_error e = { 0 };
    anvil_store_error(svc->store, &e, "the change was not recorded");
    char *text = anvil_rpc_error_instead(frame, &e, status);
    anvil_error_clear(&e);
    return text;
}

static void send_reply(void *handle, char *frame, int http_status)
{
    (void)http_status;
    ws_reply *r = handle;
    if (r->c)
        frame = durable(r->c->w->svc, frame, &http_status);
    ws_conn *c = r->c;
    if (c) {
        ws_reply **pp = &c->replies;
        while (*pp != r)
            pp = &(*pp)->next;
        *pp = r->next;
        ws_send_text(c, frame);
    } else {
        free(frame);
    }
    free(r);
}

static const anvil_reply_ops ws_replies = { .hold = hold_reply, .answer = send_reply };

void ws_detach_replies(ws_conn *c)
{
    for (ws_reply *r = c->replies; r; r = r->next)
        r->c = NULL;
    c->replies = NULL;
}

static void handle_rpc(ws_conn *c, const anvil_request_frame *f)
{
    anvil_ws_gateway *w = c->w;
    const anvil_method *m = anvil_method_find(f->method);
    bool sub = anvil_ws_subscribes_run(m);
    if (sub && c->has_subs)
        ws_hold_events(c);
    anvil_rpc_input in = {
        .frame = f, .transport = ANVIL_TRANSPORT_WEBSOCKET, .streams = &anvil_ws_stream_ops, .conn = c,
        .replies = &ws_replies, .reply_conn = c,
    };
    int status = 0;
    anvil_log_ctx prev = anvil_log_ctx_push(&(anvil_log_ctx){ .conn_id = c->log_id });
    char *text = anvil_rpc_handle(w->svc, &c->principal, &in, &status);
    anvil_log_ctx_restore(prev);
    if (text)
        text = durable(w->svc, text, &status);
    if (!text && status == 0) {
        /* Deferred: send_reply answers. Nothing was subscribed or opened. */
        assert(!sub);
        if (sub)
            ws_release_held(c, NULL);
        ws_streams_after_call(c, false);
        return;
    }
    bool ok = text && status == 200;
    char *run_id = NULL;
    if (sub && text)
        run_id = call_run_id(m, text, f->params);
    ws_send_text(c, text);
    ws_release_held(c, run_id);
    free(run_id);
    ws_streams_after_call(c, ok);
}

/* Set at first use: the generated descriptor is not a constant expression. */
static anvil_frame_rules frame_rules(void)
{
    return (anvil_frame_rules){ .noun = "Frame", .id_required = true, .schema = anvil_ws_req_frame_schema };
}

void ws_handle_frame(ws_conn *c, const char *data, size_t len)
{
    anvil_request_frame f;
    anvil_error e = { 0 };
    anvil_frame_rules rules = frame_rules();
    if (anvil_frame_read(data, len, &rules, &f, &e) != 0) {
        ws_send_error(c, f.id, &e);
    } else if (strcmp(f.method, ANVIL_WS_CONNECT_METHOD) == 0) {
        ws_handle_connect(c, f.id, f.params);
    } else if (!c->authenticated) {
        anvil_error_set(&e, ANVIL_ERR_UNAUTHORIZED, "The first request must be connect");
        ws_send_error(c, f.id, &e);
    } else {
        handle_rpc(c, &f);
    }
    cJSON_Delete(f.root);
}
