/*
 * runtime/server/http_routes.c — GET /health, POST /rpc, POST /v1/rpc/{method},
 * POST /webhooks/{workflow} (runtime/webhooks.c), and JSON 404/405 for
 * everything else.
 *
 * Authentication happens here, before the body is parsed, because a caller
 * without credentials should learn nothing about what the body would do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "anvil_contract.h"
#include "auth.h"
#include "clock.h"
#include "error.h"
#include "config.h"
#include "engine.h"
#include "http_routes.h"
#include "log.h"
#include "console.h"
#include "metrics_render.h"
#include "rpc.h"
#include "scope.h"
#include "store.h"
#include "store_txn.h"
#include "ui_mounts.h"
#include "webhooks.h"

static const char *head_header(void *ctx, const char *name)
{
    return anvil_http_header_get(ctx, name);
}

static void send_text(anvil_http_response *res, int status, const char *json)
{
    res->status = status;
    res->content_type = "application/json";
    if (json)
        evbuffer_add(res->body, json, strlen(json));
}

/* Non-RPC errors use the error object without a frame around it. Other
 * routes answer {"error": {...}}, as the upstream does for its 404; webhook
 * routes answer {"ok": false, "error": {...}}, the upstream's webhook
 * envelope, so a webhook sender reads one shape whatever went wrong. */
static void send_error_body(anvil_http_response *res, anvil_error *e, bool webhook)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *err = anvil_error_to_json(e);
    char *text = NULL;
    if (o && err && (!webhook || cJSON_AddBoolToObject(o, "ok", 0)) &&
        cJSON_AddItemToObject(o, "error", err)) {
        err = NULL;
        text = anvil_json_print(o);
    }
    cJSON_Delete(err);
    cJSON_Delete(o);
    send_text(res, anvil_error_http_status(e), text ? text : "{}");
    free(text);
    anvil_error_clear(e);
}

static void send_route_error(anvil_http_response *res, anvil_error *e)
{
    send_error_body(res, e, false);
}

static const char webhooks_prefix[] = "/webhooks/";

/* A request-target under /webhooks/ (its query, if any, does not matter). */
static bool webhook_target(const char *target)
{
    return target && strncmp(target, webhooks_prefix, sizeof webhooks_prefix - 1) == 0;
}

static void health(const anvil_routes *rt, anvil_http_response *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *features = cJSON_CreateArray();
    for (size_t i = 0; features && i < rt->svc->config->n_features; i++)
        cJSON_AddItemToArray(features, cJSON_CreateString(rt->svc->config->features[i]));
    char *text = NULL;
    if (o && features) {
        cJSON_AddBoolToObject(o, "ok", 1);
        cJSON_AddStringToObject(o, "apiVersion", ANVIL_API_VERSION);
        cJSON_AddNumberToObject(o, "protocol", rt->svc->config->protocol);
        cJSON_AddItemToObject(o, "features", features);
        features = NULL;
        cJSON_AddNumberToObject(o, "stateVersion", (double)(rt->svc->engine ? anvil_engine_state_version(rt->svc->engine) : 0));
        cJSON_AddNumberToObject(o, "uptimeMs", (double)(anvil_mono_ms() - rt->svc->started_mono_ms));
        text = anvil_json_print(o);
    }
    cJSON_Delete(features);
    cJSON_Delete(o);
    if (!text) {
        anvil_error e = { 0 };
        anvil_error_set(&e, ANVIL_ERR_INTERNAL, "out of memory");
        send_route_error(res, &e);
        return;
    }
    send_text(res, 200, text);
    free(text);
}

#define OOM_FRAME "{\"type\":\"res\",\"ok\":false,\"apiVersion\":\"v1\"," \
                  "\"error\":{\"version\":\"v1\",\"code\":\"Internal\",\"message\":\"out of memory\"}}"

/* ---- answers after their changes are durable --------------------------------- */

/* With group commit (store_txn.h) a call's changes are committed with the
 * rest of the loop turn's: its answer waits in the HTTP server (as a
 * deferred one does) until that batch is durable, and becomes a
 * StorageUnavailable or Internal error if the batch was lost. An answer
 * given while no batch is open goes out at once. */
typedef struct held_reply {
    anvil_store *store;
    void *http;          /* anvil_http_defer's handle */
    char *frame;         /* the answer, until it is sent */
    int status;
} held_reply;

static void send_held(held_reply *h, char *frame, int http_status)
{
    anvil_http_response res = { .status = 500, .body = evbuffer_new() };
    if (res.body)
        send_text(&res, frame ? http_status : 500, frame ? frame : OOM_FRAME);
    free(frame);
    anvil_http_pending_answer(h->http, res.body ? &res : NULL);
    if (res.body)
        evbuffer_free(res.body);
    free(h);
}

static char *lost(anvil_store *s, char *frame, int *http_status)
{
    anvil_error e = { 0 };
    anvil_store_error(s, &e, "the change was not recorded");
    char *text = anvil_rpc_error_instead(frame, &e, http_status);
    anvil_error_clear(&e);
    return text;
}

static void on_durable(void *ctx, bool ok)
{
    held_reply *h = ctx;
    char *frame = h->frame;
    int status = h->status;
    if (!ok)
        frame = lost(h->store, frame, &status);
    send_held(h, frame, status);
}

/* Send `frame` on h once the store's open batch is durable (now when
 * none is open). Consumes frame and h. */
static void answer_held(held_reply *h, char *frame, int http_status)
{
    h->frame = frame;
    h->status = http_status;
    if (anvil_store_when_durable(h->store, on_durable, h) == 0)
        return;
    /* No batch open, or no memory to wait in it: commit it now. */
    on_durable(h, anvil_store_flush(h->store) == 0);
}

/* The call's view of the HTTP request, for anvil_reply_ops. */
typedef struct reply_conn {
    anvil_store *store;
    anvil_http_response *res;
} reply_conn;

static void *hold_reply(void *conn)
{
    reply_conn *rc = conn;
    held_reply *h = calloc(1, sizeof *h);
    if (h && !(h->http = anvil_http_defer(rc->res))) {
        free(h);
        h = NULL;
    }
    if (h)
        h->store = rc->store;
    return h;
}

/* A deferred handler's answer (call.h), itself held until durable. */
static void send_reply(void *handle, char *frame, int http_status)
{
    answer_held(handle, frame, http_status);
}

static const anvil_reply_ops http_replies = { .hold = hold_reply, .answer = send_reply };

/* The caller's principal in *p, or false with the refusal answered. */
static bool authenticated(const anvil_routes *rt, const anvil_http_request *req,
                          const char *request_id, anvil_principal *p, anvil_http_response *res)
{
    anvil_auth_request ar = { .header = head_header, .header_ctx = (void *)req->head };
    anvil_auth_failure why = { 0 };
    anvil_auth_status st = anvil_auth_authenticate(&rt->svc->config->auth, rt->tokens,
                                                   &ar, anvil_now_ms(), p, &why);
    if (st != ANVIL_AUTH_OK) {
        anvil_error e = { 0 };
        if (st == ANVIL_AUTH_UNAUTHORIZED) {
            anvil_error_set(&e, ANVIL_ERR_UNAUTHORIZED, "%s", why.message[0] ? why.message : "Unauthorized");
            if (why.refresh_hint)
                anvil_error_detail_str(&e, "refresh",
                                       rt->svc->config->auth.mode == ANVIL_AUTH_JWT
                                           ? "request a new JWT from your identity provider"
                                           : "anvil token issue");
            res->n_headers = 0;
            anvil_http_response_header(res, "WWW-Authenticate", "Bearer");
        } else {
            anvil_error_set(&e, ANVIL_ERR_INTERNAL, "Authentication failed: %s",
                            why.message[0] ? why.message : "internal error");
        }
        anvil_log(ANVIL_LOG_INFO, "auth rejected %s %s from %s: %s", req->method, req->path,
                  req->peer, why.message);
        res->status = anvil_error_http_status(&e);
        char *text = anvil_rpc_error_frame(request_id, &e);
        anvil_error_clear(&e);
        send_text(res, res->status, text ? text : "{}");
        free(text);
        return false;
    }
    return true;
}

static void rpc(const anvil_routes *rt, const anvil_http_request *req, const char *forced,
                anvil_http_response *res)
{
    const char *request_id = anvil_http_header_get(req->head, "x-request-id");
    anvil_principal p = { 0 };
    if (!authenticated(rt, req, request_id, &p, res))
        return;
    reply_conn conn = { rt->svc->store, res };
    anvil_rpc_input in = {
        .forced_method = forced, .body = req->body, .body_len = req->body_len,
        .request_id = request_id, .transport = ANVIL_TRANSPORT_HTTP,
        .replies = &http_replies, .reply_conn = &conn,
    };
    int status = 500;
    char *text = anvil_rpc_handle(rt->svc, &p, &in, &status);
    anvil_principal_clear(&p);
    if (!text && status == 0)
        return;   /* deferred: send_reply answers */
    if (!text) {
        send_text(res, 500, OOM_FRAME);
        return;
    }
    if (anvil_store_batch_open(conn.store)) {
        held_reply *h = hold_reply(&conn);
        if (h) {
            answer_held(h, text, status);
            return;
        }
        if (anvil_store_flush(conn.store) != 0)
            text = lost(conn.store, text, &status);
        if (!text) {
            send_text(res, 500, OOM_FRAME);
            return;
        }
    }
    send_text(res, status, text);
    free(text);
}

/* GET /metrics: Prometheus text (docs/metrics.md), for observability:read
 * unless the config opens it. */
static void metrics(const anvil_routes *rt, const anvil_http_request *req, anvil_http_response *res)
{
    const char *request_id = anvil_http_header_get(req->head, "x-request-id");
    if (!rt->svc->config->metrics_open) {
        anvil_principal p = { 0 };
        if (!authenticated(rt, req, request_id, &p, res))
            return;
        static const char need[] = "observability:read";
        bool allowed = anvil_scope_allows(&anvil_scopes, p.scopes, p.n_scopes, need, "metrics", NULL);
        anvil_principal_clear(&p);
        if (!allowed) {
            anvil_error e = { 0 };
            anvil_error_set(&e, ANVIL_ERR_FORBIDDEN, "Missing required scope %s for /metrics", need);
            anvil_error_detail_str(&e, "requiredScope", need);
            res->status = anvil_error_http_status(&e);
            char *text = anvil_rpc_error_frame(request_id, &e);
            anvil_error_clear(&e);
            send_text(res, res->status, text ? text : "{}");
            free(text);
            return;
        }
    }
    anvil_metrics_out o = { 0 };
    anvil_gateway_metrics_render(rt->svc, &o);
    if (o.failed || !o.text) {
        anvil_metrics_out_free(&o);
        send_text(res, 500, OOM_FRAME);
        return;
    }
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    evbuffer_add(res->body, o.text, o.len);
    anvil_metrics_out_free(&o);
}

/* No bearer auth here: the webhook's HMAC signature is its authentication. */
static void webhook(const anvil_routes *rt, const anvil_http_request *req, const char *workflow,
                    anvil_http_response *res)
{
    anvil_error e = { 0 };
    anvil_webhook_answer a;
    if (anvil_webhook_handle(rt->svc, workflow, req->head, req->body, req->body_len, &a, &e) != 0)
        return send_error_body(res, &e, true);
    /* The sender may stop retrying once answered: commit first. */
    if (anvil_store_flush(rt->svc->store) != 0) {
        anvil_webhook_answer_clear(&a);
        anvil_store_error(rt->svc->store, &e, "the delivery was not recorded");
        return send_error_body(res, &e, true);
    }
    if (a.replayed)
        anvil_http_response_header(res, "Idempotent-Replayed", "true");
    send_text(res, a.status, a.body);
    anvil_webhook_answer_clear(&a);
}

static void method_not_allowed(anvil_http_response *res, const char *allow, const char *method,
                               const char *path)
{
    anvil_error e = { 0 };
    anvil_error_set(&e, ANVIL_ERR_NOT_FOUND, "Method %s is not allowed on %s (allowed: %s)", method,
                    path, allow);
    anvil_http_response_header(res, "Allow", allow);
    send_error_body(res, &e, webhook_target(path));
    res->status = 405;
}

void anvil_routes_handle(void *ctx, const anvil_http_request *req, anvil_http_response *res)
{
    const anvil_routes *rt = ctx;
    const char *path = req->path;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    if (strcmp(path, "/health") == 0) {
        if (!get)
            return method_not_allowed(res, "GET, HEAD", req->method, path);
        return health(rt, res);
    }
    if (strcmp(path, "/metrics") == 0) {
        if (!get)
            return method_not_allowed(res, "GET, HEAD", req->method, path);
        return metrics(rt, req, res);
    }
    if (strcmp(path, "/rpc") == 0) {
        if (!post)
            return method_not_allowed(res, "POST", req->method, path);
        return rpc(rt, req, NULL, res);
    }
    static const char prefix[] = "/v1/rpc/";
    if (strncmp(path, prefix, sizeof prefix - 1) == 0) {
        const char *name = path + sizeof prefix - 1;
        if (!*name || strchr(name, '/')) {
            anvil_error e = { 0 };
            anvil_error_set(&e, ANVIL_ERR_NOT_FOUND, "Route not found: %s %s", req->method, path);
            return send_route_error(res, &e);
        }
        if (!post)
            return method_not_allowed(res, "POST", req->method, path);
        return rpc(rt, req, name, res);
    }
    if (webhook_target(path)) {
        const char *name = path + sizeof webhooks_prefix - 1;
        if (!*name || strchr(name, '/')) {
            anvil_error e = { 0 };
            anvil_error_set(&e, ANVIL_ERR_NOT_FOUND, "Route not found: %s %.200s", req->method, path);
            return send_error_body(res, &e, true);
        }
        if (!post)
            return method_not_allowed(res, "POST", req->method, path);
        return webhook(rt, req, name, res);
    }
    anvil_error e = { 0 };
    /* The console before the UI mounts: a gateway `ui` at "/" holds every
     * path, the console's too. */
    anvil_ui_outcome o = anvil_console_route(rt->svc->config, req, res, &e);
    if (o == ANVIL_UI_NOT_MINE)
        o = anvil_ui_route(rt->svc->config, req, res, &e);
    switch (o) {
    case ANVIL_UI_ANSWERED:
        return;
    case ANVIL_UI_REFUSED:
        return send_route_error(res, &e);
    case ANVIL_UI_WRONG_METHOD:
        return method_not_allowed(res, "GET, HEAD", req->method, path);
    case ANVIL_UI_NOT_MINE:
        break;
    }
    anvil_error_set(&e, ANVIL_ERR_NOT_FOUND, "Route not found: %s %.200s", req->method, path);
    send_route_error(res, &e);
}

void anvil_routes_reject(void *ctx, const anvil_http_head *head, anvil_error_code code,
                         int http_status, const char *message, int64_t max_bytes,
                         anvil_http_response *res)
{
    (void)ctx;
    anvil_error e = { 0 };
    anvil_error_set(&e, code, "%s", message);
    if (max_bytes > 0)
        anvil_error_detail_int(&e, "maxBytes", max_bytes);
    if (head && webhook_target(head->target)) {
        int status = http_status;
        send_error_body(res, &e, true);
        res->status = status;   /* the server's (408, 431, ...), not the map's */
        return;
    }
    const char *request_id = head ? anvil_http_header_get(head, "x-request-id") : NULL;
    char *text = anvil_rpc_error_frame(request_id, &e);
    anvil_error_clear(&e);
    send_text(res, http_status, text ? text : "{}");
    free(text);
}
