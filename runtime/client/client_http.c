/*
 * runtime/client/client_http.c — one POST /v1/rpc/{method} on libevent's
 * evhttp client, and the blocking untyped call built on it.
 *
 * Each exchange opens its own evhttp connection, so a blocking call (on a
 * private base) and event-loop calls (on the caller's base) never share a
 * connection across bases. A connection cannot be freed inside its own
 * request callback, and libevent 2.1's free-on-completion leaks one whose
 * connect failed, so the callback schedules the release for the loop's
 * next turn instead. The
 * answer must be a v1 response frame, an object with a boolean `ok`;
 * anything else is a PROTOCOL error, a missing answer a TRANSPORT one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "client_internal.h"

typedef struct exchange {
    anvil_client_http_fn fn;
    void *arg;
    char *url;          /* for messages */
    struct evhttp_connection *conn;
    struct event_base *base;
    bool *released;     /* set once conn and the exchange are freed (blocking calls wait for it) */
} exchange;

static void release(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exchange *x = arg;
    evhttp_connection_free(x->conn);
    if (x->released)
        *x->released = true;
    free(x->url);
    free(x);
}

static void finish(exchange *x, const cJSON *frame, int status, const anvil_client_error *err)
{
    x->fn(frame, status, err, x->arg);
    /* A zero timeout runs on the loop's next turn, after libevent is done
     * with the request. Should scheduling fail (out of memory) the
     * connection leaks rather than be freed under libevent's feet. */
    struct timeval now = { 0, 0 };
    if (event_base_once(x->base, -1, EV_TIMEOUT, release, x, &now) != 0 && x->released)
        *x->released = true;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    exchange *x = arg;
    anvil_client_error err = { .code_id = -1 };
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || status == 0) {
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_TRANSPORT, "no answer from %s (connection refused, closed or timed out)", x->url);
        finish(x, NULL, 0, &err);
        anvil_client_error_clear(&err);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    cJSON *frame = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!frame || !cJSON_IsObject(frame) || !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(frame, "ok"))) {
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_PROTOCOL, "%s answered HTTP %d without a v1 response frame", x->url, status);
        err.http_status = status;
        cJSON_Delete(frame);
        finish(x, NULL, status, &err);
        anvil_client_error_clear(&err);
        return;
    }
    finish(x, frame, status, NULL);
    cJSON_Delete(frame);
}

static int post(anvil_client *c, struct event_base *base, const char *method, const char *body,
                size_t len, anvil_client_http_fn fn, void *arg, bool *released, anvil_client_error *err)
{
    if (!method || !*method || strpbrk(method, "/ ?#%\r\n"))
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "invalid method name %s", method ? method : "(none)");
    exchange *x = calloc(1, sizeof *x);
    if (!x)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    x->fn = fn;
    x->arg = arg;
    x->base = base;
    x->released = released;
    x->url = strdup(c->url);
    struct evhttp_connection *conn = evhttp_connection_base_new(base, NULL, c->host, (unsigned short)c->port);
    struct evhttp_request *req = conn ? evhttp_request_new(on_response, x) : NULL;
    if (!x->url || !conn || !req) {
        if (req)
            evhttp_request_free(req);
        if (conn)
            evhttp_connection_free(conn);
        free(x->url);
        free(x);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot open a connection to %s", c->url);
    }
    evhttp_connection_set_timeout(conn, c->timeout_s);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[300], auth[4096 + 8], path[512];
    snprintf(hostport, sizeof hostport, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Accept", "application/json");
    evhttp_add_header(h, "Connection", "close");
    if (c->token) {
        if (snprintf(auth, sizeof auth, "Bearer %s", c->token) >= (int)sizeof auth) {
            evhttp_request_free(req);
            evhttp_connection_free(conn);
            free(x->url);
            free(x);
            return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "the token is too long");
        }
        evhttp_add_header(h, "Authorization", auth);
    }
    if (snprintf(path, sizeof path, "/v1/rpc/%s", method) >= (int)sizeof path) {
        evhttp_request_free(req);
        evhttp_connection_free(conn);
        free(x->url);
        free(x);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "method name too long");
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    x->conn = conn;
    /* From here libevent owns req (and frees it after the callback). */
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) != 0) {
        /* evhttp_make_request frees req on failure; the connection is ours. */
        evhttp_connection_free(conn);
        free(x->url);
        free(x);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot send to %s", c->url);
    }
    return 0;
}

int anvil_client_http_post(anvil_client *c, struct event_base *base, const char *method,
                           const char *body, size_t len, anvil_client_http_fn fn, void *arg,
                           anvil_client_error *err)
{
    return post(c, base, method, body, len, fn, arg, NULL, err);
}

/* The blocking call: run a private base until the exchange is done and
 * its connection released. */
typedef struct raw_wait {
    bool done;
    cJSON *frame;
    int status;
    anvil_client_error *err;
    int rc;
} raw_wait;

static void raw_done(const cJSON *frame, int status, const anvil_client_error *e, void *arg)
{
    raw_wait *w = arg;
    w->done = true;
    w->status = status;
    if (frame) {
        w->frame = cJSON_Duplicate(frame, 1);
        w->rc = w->frame ? 0 : anvil_client_err_set(w->err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    } else {
        anvil_client_err_set(w->err, e->kind, "%s", e->message);
        w->err->http_status = e->http_status;
        w->rc = -1;
    }
}

int anvil_client_call_raw(anvil_client *c, const char *method, const cJSON *params,
                          cJSON **frame, int *http_status, anvil_client_error *err)
{
    *frame = NULL;
    char *body = params ? cJSON_PrintUnformatted(params) : strdup("{}");
    if (!body)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    struct event_base *base = event_base_new();
    if (!base) {
        free(body);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot create an event base");
    }
    raw_wait w = { .err = err, .rc = -1 };
    bool released = false;
    int rc = post(c, base, method, body, strlen(body), raw_done, &w, &released, err);
    free(body);
    if (rc == 0) {
        while (!(w.done && released) && event_base_loop(base, EVLOOP_ONCE) == 0)
            ;
        rc = w.done ? w.rc : anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "the event loop stopped before an answer");
    }
    event_base_free(base);
    if (http_status)
        *http_status = w.status;
    *frame = rc == 0 ? w.frame : NULL;
    if (rc != 0)
        cJSON_Delete(w.frame);
    return rc;
}
