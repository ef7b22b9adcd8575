/*
 * runtime/ws/ws_connect.c — a connection until it is authenticated.
 *
 * ws_conn_open sends connect.challenge and arms the connect deadline; the first
 * request must be `connect` (anything else is Unauthorized and the
 * connection stays open until the deadline); connect negotiates the
 * protocol, authenticates (auth.token, else the upgrade request's headers,
 * copied at open because the request is only valid during that callback)
 * and answers hello with a snapshot of the unfinished runs and pending
 * approvals.
 *
 * The params are read with the contract's ConnectParams (the generic codec,
 * x-anvil-websocket.connect), and the hello is checked against its Hello
 * in Debug builds.
 *
 * Owns the header copies, the deadline, the connect params and the hello.
 * Must not handle any other request (ws_rpc.c) nor send events other than
 * the challenge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "rpc.h"
#include "store_runs.h"
#include "ws_contract.h"
#include "ws_gateway_internal.h"

#define CONNECT_TIMEOUT_MS 10000

static const char *conn_header(void *ctx, const char *name)
{
    ws_conn *c = ctx;
    for (size_t i = 0; i < c->n_hdrs; i++)
        if (strcasecmp(c->hdr_names[i], name) == 0)
            return c->hdr_values[i];
    return NULL;
}

static int copy_headers(ws_conn *c, const anvil_http_head *h)
{
    if (!h || h->n_headers == 0)
        return 0;
    c->hdr_names = calloc(h->n_headers, sizeof *c->hdr_names);
    c->hdr_values = calloc(h->n_headers, sizeof *c->hdr_values);
    if (!c->hdr_names || !c->hdr_values)
        return -1;
    for (size_t i = 0; i < h->n_headers; i++) {
        c->hdr_names[i] = strdup(h->headers[i].name ? h->headers[i].name : "");
        c->hdr_values[i] = strdup(h->headers[i].value ? h->headers[i].value : "");
        c->n_hdrs = i + 1;
        if (!c->hdr_names[i] || !c->hdr_values[i])
            return -1;
    }
    return 0;
}

void ws_free_headers(ws_conn *c)
{
    for (size_t i = 0; i < c->n_hdrs; i++) {
        free(c->hdr_names[i]);
        free(c->hdr_values[i]);
    }
    free(c->hdr_names);
    free(c->hdr_values);
    c->hdr_names = c->hdr_values = NULL;
    c->n_hdrs = 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ws_conn *c = arg;
    WS_ASSERT_CORE(c->w);
    if (!c->authenticated)
        ws_conn_close(c, 1008, "connect timeout");
}

void ws_conn_open(ws_conn *c, const anvil_http_request *req)
{
    anvil_ws_gateway *w = c->w;
    if (copy_headers(c, req->head) != 0) {
        ws_conn_close(c, 1011, "Internal");
        return;
    }
    int64_t ms = CONNECT_TIMEOUT_MS;
    if (w->svc->config->headers_timeout_ms > 0 && w->svc->config->headers_timeout_ms < ms)
        ms = w->svc->config->headers_timeout_ms;
    c->deadline = evtimer_new(w->base, on_deadline, c);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    if (!c->deadline || evtimer_add(c->deadline, &tv) != 0) {
        ws_conn_close(c, 1011, "Internal");
        return;
    }
    char nonce[37];
    if (anvil_uuid4(nonce) != 0) {
        ws_conn_close(c, 1011, "Internal");
        return;
    }
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "nonce", nonce) ||
        !cJSON_AddNumberToObject(p, "ts", (double)anvil_now_ms())) {
        cJSON_Delete(p);
        ws_conn_close(c, 1011, "Internal");
        return;
    }
    ws_send_owned_event(c, "connect.challenge", p, ws_state_version(w));
}

static int add_strings(cJSON *o, const char *key, char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a)
        return -1;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return -1;
        }
    }
    return 0;
}

static int add_opt_string(cJSON *o, const char *key, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) ? 0 : -1;
}

typedef struct snap_ctx {
    cJSON *arr;
    bool oom;
} snap_ctx;

/* The provenance the run's launch recorded (JSON the handlers wrote), as
 * o.startedBy; nothing when there is none. 0, or -1 (out of memory, or a
 * damaged row, which fails the snapshot like any unreadable row). */
static int add_started_by(cJSON *o, const char *json)
{
    if (!json)
        return 0;
    cJSON *v = cJSON_Parse(json);
    if (cJSON_IsObject(v) && cJSON_AddItemToObject(o, "startedBy", v))
        return 0;
    cJSON_Delete(v);
    return -1;
}

/* One run as listRuns shows it (a RunSummary): system is false for every
 * Anvil run (docs/workflows.md#visibility). */
static int snap_run(void *ctx, const anvil_run_record *r)
{
    snap_ctx *s = ctx;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "runId", r->run_id ? r->run_id : "") ||
        !cJSON_AddStringToObject(o, "workflowKey", r->workflow ? r->workflow : "") ||
        !cJSON_AddStringToObject(o, "status", r->status ? r->status : "") ||
        !cJSON_AddNumberToObject(o, "createdAtMs", (double)r->created_at_ms) ||
        !cJSON_AddBoolToObject(o, "system", false) || add_started_by(o, r->started_by_json) != 0 ||
        !cJSON_AddItemToArray(s->arr, o)) {
        cJSON_Delete(o);
        s->oom = true;
        return -1;
    }
    return 0;
}

static int snap_approval(void *ctx, const anvil_approval_record *a)
{
    snap_ctx *s = ctx;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "runId", a->run_id ? a->run_id : "") ||
        !cJSON_AddStringToObject(o, "workflowKey", a->workflow ? a->workflow : "") ||
        !cJSON_AddStringToObject(o, "nodeId", a->node_id ? a->node_id : "") ||
        !cJSON_AddNumberToObject(o, "iteration", (double)a->iteration) ||
        add_opt_string(o, "requestTitle", a->title) != 0 ||
        !cJSON_AddNumberToObject(o, "requestedAtMs", (double)a->requested_at_ms) ||
        !cJSON_AddItemToArray(s->arr, o)) {
        cJSON_Delete(o);
        s->oom = true;
        return -1;
    }
    return 0;
}

static cJSON *build_snapshot(anvil_ws_gateway *w, anvil_error *e)
{
    anvil_store *store = w->svc->store;
    cJSON *snap = cJSON_CreateObject();
    snap_ctx runs = { snap ? cJSON_AddArrayToObject(snap, "runs") : NULL, false };
    snap_ctx appr = { snap ? cJSON_AddArrayToObject(snap, "approvals") : NULL, false };
    if (!snap || !runs.arr || !appr.arr) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    /* The state version first: the snapshot is at least this new. */
    int64_t sv = ws_state_version(w);
    if (anvil_store_runs_unfinished(store, snap_run, &runs) < 0 || runs.oom ||
        anvil_store_approvals_pending(store, NULL, NULL, 0, snap_approval, &appr) < 0 || appr.oom) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "Cannot read the snapshot: %s", anvil_store_errmsg(store));
        return NULL;
    }
    if (!cJSON_AddNumberToObject(snap, "stateVersion", (double)sv)) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return snap;
}

static cJSON *build_hello(anvil_ws_gateway *w, ws_conn *c, anvil_error *e)
{
    const anvil_config *cfg = w->svc->config;
    char session[37];
    cJSON *h = cJSON_CreateObject();
    bool ok = h && cJSON_AddNumberToObject(h, "protocol", cfg->protocol) &&
              add_strings(h, "features", cfg->features, cfg->n_features) == 0;
    cJSON *policy = ok ? cJSON_AddObjectToObject(h, "policy") : NULL;
    cJSON *auth = policy ? cJSON_AddObjectToObject(h, "auth") : NULL;
    if (anvil_uuid4(session) != 0 || !h || !policy || !auth ||
        !cJSON_AddNumberToObject(policy, "heartbeatMs", (double)cfg->heartbeat_ms) ||
        !cJSON_AddStringToObject(auth, "sessionToken", session) ||
        add_opt_string(auth, "role", c->principal.role) != 0 ||
        add_strings(auth, "scopes", c->principal.scopes, c->principal.n_scopes) != 0 ||
        add_opt_string(auth, "userId", c->principal.user_id) != 0 ||
        add_opt_string(auth, "tokenId", c->principal.token_id) != 0) {
        cJSON_Delete(h);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    cJSON *snap = build_snapshot(w, e);
    if (!snap) {
        cJSON_Delete(h);
        return NULL;
    }
    cJSON_AddItemToObject(h, "snapshot", snap);
#ifndef NDEBUG
    anvil_schema_error se;
    int conforms = anvil_schema_check(anvil_ws_connect_result_schema, h, "$.payload", &se);
    if (conforms != 0)
        anvil_log(ANVIL_LOG_ERROR, "hello does not match the contract: %s: %s", se.path, se.message);
    assert(conforms == 0);   /* the contract's Hello is what clients are promised */
#endif
    return h;
}

/* A connect that failed after authenticating leaves the connection as it
 * was: not connected, no principal, no subscription set. */
static void forget_connect(ws_conn *c)
{
    anvil_principal_clear(&c->principal);
    anvil_strv_free(c->subs, c->n_subs);
    c->subs = NULL;
    c->n_subs = c->cap_subs = 0;
    c->has_subs = false;
}

/* connect with params that passed the contract: the protocol, then
 * authentication, the subscriptions and hello. */
static void connect_with(ws_conn *c, const char *id, const anvil_ws_connect_params *cp)
{
    anvil_ws_gateway *w = c->w;
    anvil_error e = { 0 };
    int proto = w->svc->config->protocol;
    if (cp->min_protocol > cp->max_protocol || proto < cp->min_protocol || proto > cp->max_protocol) {
        anvil_error_set(&e, ANVIL_ERR_PROTOCOL_UNSUPPORTED,
                        "Protocol %d is not in the requested range [%lld, %lld]", proto,
                        (long long)cp->min_protocol, (long long)cp->max_protocol);
        anvil_error_detail_int(&e, "protocol", proto);
        ws_send_error(c, id, &e);
        return;
    }

    anvil_auth_request ar = {
        .header = conn_header, .header_ctx = c,
        .token = cp->has_auth ? cp->auth.token : NULL,
    };
    anvil_auth_failure why = { 0 };
    anvil_principal p = { 0 };
    anvil_auth_status st = anvil_auth_authenticate(&w->svc->config->auth, w->tokens,
                                                   &ar, anvil_now_ms(), &p, &why);
    if (st != ANVIL_AUTH_OK) {
        if (st == ANVIL_AUTH_UNAUTHORIZED) {
            anvil_error_set(&e, ANVIL_ERR_UNAUTHORIZED, "%s", why.message[0] ? why.message : "Unauthorized");
            if (why.refresh_hint)
                anvil_error_detail_str(&e, "refresh",
                                       w->svc->config->auth.mode == ANVIL_AUTH_JWT
                                           ? "request a new JWT from your identity provider"
                                           : "anvil token issue");
        } else {
            anvil_error_set(&e, ANVIL_ERR_INTERNAL, "Authentication failed: %s",
                            why.message[0] ? why.message : "internal error");
        }
        anvil_log(ANVIL_LOG_INFO, "ws %llu: auth rejected: %s", (unsigned long long)c->id, why.message);
        ws_send_error(c, id, &e);
        ws_conn_close(c, st == ANVIL_AUTH_UNAUTHORIZED ? 1008 : 1011,
                   st == ANVIL_AUTH_UNAUTHORIZED ? "Unauthorized" : "Internal");
        return;
    }
    c->principal = p;
    if (cp->has_subscribe) {
        c->has_subs = true;
        for (size_t i = 0; i < cp->subscribe.count; i++) {
            if (ws_subscribe(c, cp->subscribe.items[i]) != 0) {
                anvil_error_set(&e, ANVIL_ERR_INTERNAL, "out of memory");
                forget_connect(c);
                ws_send_error(c, id, &e);
                return;
            }
        }
    }
    cJSON *hello = build_hello(w, c, &e);
    if (!hello) {
        forget_connect(c);
        ws_send_error(c, id, &e);
        return;
    }
    c->authenticated = true;
    ws_free_headers(c);
    if (c->deadline) {
        event_free(c->deadline);
        c->deadline = NULL;
    }
    ws_send_text(c, anvil_rpc_ok_frame(id, hello));
}

/* The params as the contract reads them (ConnectParams), or -1 after
 * answering InvalidRequest with the path of the first problem. */
static int read_params(ws_conn *c, const char *id, const cJSON *params, anvil_ws_connect_params *cp)
{
    anvil_schema_error se;
    if (anvil_schema_decode(anvil_ws_connect_params_schema, params, cp, "$.params", &se) == 0)
        return 0;
    anvil_error e = { 0 };
    if (strncmp(se.message, "out of memory", 13) == 0)
        anvil_error_set(&e, ANVIL_ERR_INTERNAL, "out of memory");
    else
        anvil_invalid_at(&e, se.path, se.message);
    ws_send_error(c, id, &e);
    return -1;
}

void ws_handle_connect(ws_conn *c, const char *id, const cJSON *params)
{
    anvil_error e = { 0 };
    if (c->authenticated) {
        anvil_error_set(&e, ANVIL_ERR_INVALID_REQUEST, "already connected");
        ws_send_error(c, id, &e);
        return;
    }
    anvil_ws_connect_params cp = { 0 };
    if (read_params(c, id, params, &cp) != 0)
        return;
    connect_with(c, id, &cp);
    anvil_schema_free(anvil_ws_connect_params_schema, &cp);
}
