/*
 * runtime/client/client_ws.c — the WebSocket connection: libwebsockets'
 * client, the connect/hello handshake, calls matched to answers by id, and
 * the queue of events that arrive meanwhile.
 *
 * The lws context is the connection's own and is serviced only inside the
 * waits below (see client_ws.h on threads). lws's poll would sleep until
 * its next internal timer, so every wait arms the connection's timer for
 * what is left of its deadline: a wait never outlives its bound.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "client_internal.h"
#include "client_ws.h"
#include "client_ws_internal.h"
#include "schema.h"

#define MAX_MESSAGE (64u << 20)   /* a frame larger than this is refused */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mark_closed(anvil_client_ws *ws, const char *why)
{
    if (ws->state != WS_CLOSED)
        snprintf(ws->close_reason, sizeof ws->close_reason, "%s", why);
    ws->state = WS_CLOSED;
    ws->wsi = NULL;
}

static void take_message(anvil_client_ws *ws)
{
    cJSON *frame = cJSON_ParseWithLength(ws->rx, ws->rx_len);
    ws->rx_len = 0;
    anvil_client_ws_msg *m = frame && cJSON_IsObject(frame) ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        cJSON_Delete(frame);
        return;   /* not a frame: nothing a caller could match or read */
    }
    m->frame = frame;
    if (ws->in_tail)
        ws->in_tail->next = m;
    else
        ws->in_head = m;
    ws->in_tail = m;
}

static int on_receive(anvil_client_ws *ws, struct lws *wsi, const void *in, size_t len)
{
    if (ws->rx_len + len + 1 > MAX_MESSAGE)
        return -1;
    if (ws->rx_len + len + 1 > ws->rx_cap) {
        size_t cap = ws->rx_cap ? ws->rx_cap : 4096;
        while (cap < ws->rx_len + len + 1)
            cap *= 2;
        char *nb = realloc(ws->rx, cap);
        if (!nb)
            return -1;
        ws->rx = nb;
        ws->rx_cap = cap;
    }
    memcpy(ws->rx + ws->rx_len, in, len);
    ws->rx_len += len;
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
        take_message(ws);
    return 0;
}

static int on_writeable(anvil_client_ws *ws, struct lws *wsi)
{
    anvil_client_ws_msg *m = ws->out_head;
    if (!m)
        return 0;
    int n = lws_write(wsi, (unsigned char *)m->text + LWS_PRE, m->len, LWS_WRITE_TEXT);
    if (n < (int)m->len)
        return -1;
    ws->out_head = m->next;
    if (!ws->out_head)
        ws->out_tail = NULL;
    free(m->text);
    free(m);
    if (ws->out_head)
        lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    anvil_client_ws *ws = ctx ? lws_context_user(ctx) : NULL;
    if (!ws)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ws->state = WS_OPEN;
        if (ws->out_head)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        mark_closed(ws, in && len ? (const char *)in : "connection failed");
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(ws, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(ws, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            snprintf(ws->close_reason, sizeof ws->close_reason, "closed by the server (%d %.*s)",
                     (p[0] << 8) | p[1], (int)(len - 2), (const char *)in + 2);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        mark_closed(ws, ws->close_reason[0] ? ws->close_reason : "closed by the server");
        return 0;
    case LWS_CALLBACK_TIMER:
        return 0;   /* only wakes the service; the wait checks its deadline */
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* lws_cancel_service from another thread: an attached event loop
         * has frames to send (client_ws_loop.c). */
        if (ws->on_wake)
            ws->on_wake(ws);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (ws->wsi == wsi)
            mark_closed(ws, ws->close_reason[0] ? ws->close_reason : "connection closed");
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    { "anvil-client", callback, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Service once, waking no later than deadline (< 0: no deadline). */
static void service(anvil_client_ws *ws, int64_t deadline)
{
    if (ws->wsi) {
        int64_t left = deadline < 0 ? 1000 : deadline - now_ms();
        if (left < 1)
            left = 1;
        if (left > 1000)
            left = 1000;
        lws_set_timer_usecs(ws->wsi, (lws_usec_t)left * 1000);
    }
    lws_service(ws->ctx, 0);
}

int anvil_client_ws_queue_text(anvil_client_ws *ws, const char *text)
{
    size_t len = strlen(text);
    anvil_client_ws_msg *m = calloc(1, sizeof *m);
    char *buf = malloc(LWS_PRE + len + 1);
    if (!m || !buf) {
        free(m);
        free(buf);
        return -1;
    }
    memcpy(buf + LWS_PRE, text, len + 1);
    m->text = buf;
    m->len = len;
    if (ws->out_tail)
        ws->out_tail->next = m;
    else
        ws->out_head = m;
    ws->out_tail = m;
    if (ws->wsi && ws->state == WS_OPEN)
        lws_callback_on_writable(ws->wsi);
    return 0;
}

/* The first queued frame that satisfies `want`, unlinked; NULL if none. */
static cJSON *unqueue(anvil_client_ws *ws, bool (*want)(const cJSON *frame, const void *arg), const void *arg)
{
    anvil_client_ws_msg *prev = NULL;
    for (anvil_client_ws_msg *m = ws->in_head; m; prev = m, m = m->next) {
        if (!want(m->frame, arg))
            continue;
        if (prev)
            prev->next = m->next;
        else
            ws->in_head = m->next;
        if (ws->in_tail == m)
            ws->in_tail = prev;
        cJSON *f = m->frame;
        free(m);
        return f;
    }
    return NULL;
}

static bool is_response_to(const cJSON *frame, const void *arg)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(frame, "type");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(frame, "id");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "res") && cJSON_IsString(id) &&
           !strcmp(id->valuestring, (const char *)arg);
}

static bool is_event(const cJSON *frame, const void *arg)
{
    const char *name = arg;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(frame, "type");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(frame, "event");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "event") && cJSON_IsString(ev) &&
           (!name || !strcmp(ev->valuestring, name));
}

/* Wait for a frame `want` accepts, until deadline. Returns it, or NULL
 * with *err (TRANSPORT: closed or timed out). */
static cJSON *wait_frame(anvil_client_ws *ws, bool (*want)(const cJSON *, const void *), const void *arg,
                         int64_t deadline, bool timeout_is_error, anvil_client_error *err)
{
    for (;;) {
        cJSON *f = unqueue(ws, want, arg);
        if (f)
            return f;
        if (ws->state == WS_CLOSED) {
            anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: %s", ws->c->url,
                                 ws->close_reason[0] ? ws->close_reason : "closed");
            return NULL;
        }
        if (deadline >= 0 && now_ms() >= deadline) {
            if (timeout_is_error)
                anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: no answer within %d s",
                                     ws->c->url, ws->c->timeout_s);
            return NULL;
        }
        service(ws, deadline);
    }
}

/* Send a request frame and wait for its answer. Returns 0 with *payload
 * (may be NULL), or -1 with *err. */
static int request(anvil_client_ws *ws, const char *method, const cJSON *params, cJSON **payload,
                   anvil_client_error *err)
{
    *payload = NULL;
    char id[32];
    snprintf(id, sizeof id, "c%lu", ++ws->next_id);
    cJSON *req = cJSON_CreateObject();
    cJSON *p = params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    char *text = NULL;
    if (req && p && cJSON_AddStringToObject(req, "type", "req") && cJSON_AddStringToObject(req, "id", id) &&
        cJSON_AddStringToObject(req, "method", method)) {
        cJSON_AddItemToObject(req, "params", p);
        p = NULL;
        text = cJSON_PrintUnformatted(req);
    }
    cJSON_Delete(p);
    cJSON_Delete(req);
    if (!text || anvil_client_ws_queue_text(ws, text) != 0) {
        free(text);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    free(text);
    cJSON *res = wait_frame(ws, is_response_to, id, now_ms() + (int64_t)ws->c->timeout_s * 1000, true, err);
    if (!res)
        return -1;
    int rc = 0;
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(res, "ok");
    if (cJSON_IsTrue(ok)) {
        cJSON *pl = cJSON_DetachItemFromObjectCaseSensitive(res, "payload");
        *payload = pl;
    } else if (cJSON_IsFalse(ok)) {
        rc = anvil_client_err_from_json(err, cJSON_GetObjectItemCaseSensitive(res, "error"), 0);
    } else {
        rc = anvil_client_err_set(err, ANVIL_CLIENT_ERR_PROTOCOL, "a response frame without a boolean ok");
    }
    cJSON_Delete(res);
    return rc;
}

static cJSON *connect_params(anvil_client *c, const char *const *subscribe, size_t n)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *client = cJSON_AddObjectToObject(p, "client");
    bool ok = p && client && cJSON_AddNumberToObject(p, "minProtocol", 1) &&
              cJSON_AddNumberToObject(p, "maxProtocol", 1) &&
              cJSON_AddStringToObject(client, "name", "libanvil-client");
    if (ok && c->token) {
        cJSON *auth = cJSON_AddObjectToObject(p, "auth");
        ok = auth && cJSON_AddStringToObject(auth, "token", c->token);
    }
    if (ok && n) {
        cJSON *subs = cJSON_AddArrayToObject(p, "subscribe");
        for (size_t i = 0; ok && i < n; i++) {
            cJSON *s = subs ? cJSON_CreateString(subscribe[i]) : NULL;
            ok = s != NULL;
            if (s)
                cJSON_AddItemToArray(subs, s);
        }
    }
    if (!ok) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

int anvil_client_ws_open(anvil_client *c, const char *const *subscribe, size_t n,
                         cJSON **hello, anvil_client_ws **out, anvil_client_error *err)
{
    *out = NULL;
    if (hello)
        *hello = NULL;
    anvil_client_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    ws->c = c;
    lws_set_log_level(0, NULL);   /* failures reach the caller as errors, not log lines */
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = ws;
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        free(ws);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot create a libwebsockets context");
    }
    char hostport[300];
    snprintf(hostport, sizeof hostport, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ws->ctx;
    ci.address = c->host;
    ci.port = c->port;
    ci.path = "/";
    ci.host = hostport;
    ci.protocol = NULL;
    ci.pwsi = &ws->wsi;
    ws->state = WS_CONNECTING;
    if (!lws_client_connect_via_info(&ci) && ws->state != WS_CLOSED)
        mark_closed(ws, "cannot connect");
    int64_t deadline = now_ms() + (int64_t)c->timeout_s * 1000;
    /* The server speaks first: connect.challenge, then we may connect. */
    cJSON *challenge = wait_frame(ws, is_event, "connect.challenge", deadline, true, err);
    if (!challenge) {
        anvil_client_ws_close(ws);
        return -1;
    }
    cJSON_Delete(challenge);
    cJSON *params = connect_params(c, subscribe, n);
    if (!params) {
        anvil_client_ws_close(ws);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    cJSON *payload = NULL;
    int rc = request(ws, "connect", params, &payload, err);
    cJSON_Delete(params);
    if (rc != 0) {
        anvil_client_ws_close(ws);
        return -1;
    }
    if (hello)
        *hello = payload;
    else
        cJSON_Delete(payload);
    *out = ws;
    return 0;
}

void anvil_client_ws_close(anvil_client_ws *ws)
{
    if (!ws)
        return;
    if (ws->ctx)
        lws_context_destroy(ws->ctx);
    for (anvil_client_ws_msg *m = ws->in_head, *next; m; m = next) {
        next = m->next;
        cJSON_Delete(m->frame);
        free(m);
    }
    for (anvil_client_ws_msg *m = ws->out_head, *next; m; m = next) {
        next = m->next;
        free(m->text);
        free(m);
    }
    free(ws->rx);
    free(ws);
}

int anvil_client_ws_call_raw(anvil_client_ws *ws, const char *method, const cJSON *params,
                             cJSON **payload, anvil_client_error *err)
{
    *payload = NULL;
    if (!method || !*method)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "a call needs a method name");
    if (ws->state == WS_CLOSED)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: %s", ws->c->url,
                                    ws->close_reason[0] ? ws->close_reason : "closed");
    return request(ws, method, params, payload, err);
}

int anvil_client_ws_call(anvil_client_ws *ws, const anvil_method *m, const void *req, void *res,
                         anvil_client_error *err)
{
    if (!m || !req || !res)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "anvil_client_ws_call needs a method, a request and a response");
    anvil_schema_error se;
    cJSON *params = anvil_schema_encode(m->request, req, &se);
    if (!params) {
        anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "%s request: %s", m->name, se.message);
        if (err)
            err->path = strdup(se.path);
        return -1;
    }
    cJSON *payload = NULL;
    int rc = anvil_client_ws_call_raw(ws, m->name, params, &payload, err);
    cJSON_Delete(params);
    if (rc == 0 && anvil_schema_decode(m->response, payload, res, "$.payload", &se) != 0) {
        anvil_client_err_set(err, ANVIL_CLIENT_ERR_PROTOCOL, "%s answer does not match the contract: %s",
                             m->name, se.message);
        if (err)
            err->path = strdup(se.path);
        rc = -1;
    }
    cJSON_Delete(payload);
    return rc;
}

void anvil_client_event_clear(anvil_client_event *ev)
{
    if (!ev)
        return;
    free(ev->event);
    cJSON_Delete(ev->payload);
    memset(ev, 0, sizeof *ev);
}

int anvil_client_ws_next_event(anvil_client_ws *ws, int timeout_ms, anvil_client_event *ev,
                               anvil_client_error *err)
{
    memset(ev, 0, sizeof *ev);
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    cJSON *f = wait_frame(ws, is_event, NULL, deadline, false, err);
    if (!f)
        return ws->state == WS_CLOSED ? -1 : 0;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "event");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(f, "seq");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(f, "stateVersion");
    assert(cJSON_IsString(name));   /* is_event checked it */
    ev->event = strdup(name->valuestring);
    ev->payload = cJSON_DetachItemFromObjectCaseSensitive(f, "payload");
    ev->seq = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : 0;
    ev->state_version = cJSON_IsNumber(sv) ? (int64_t)sv->valuedouble : 0;
    cJSON_Delete(f);
    if (!ev->event) {
        anvil_client_event_clear(ev);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    return 1;
}
