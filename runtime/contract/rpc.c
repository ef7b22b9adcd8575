/*
 * runtime/contract/rpc.c — the data flow of one call, in the order DESIGN.md draws it.
 *
 * bounds -> frame (both in frame.c) -> method table -> scope -> generated
 * decode -> handler -> generated encode -> ResponseFrame. Every early exit
 * produces a contract error with the generated status; nothing here knows
 * any method by name.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "anvil_contract.h"
#include "anvil_websocket.h"
#include "call.h"
#include "clock.h"
#include "frame.h"
#include "log.h"
#include "rpc.h"
#include "rpc_metrics.h"
#include "scope.h"

static char *frame_to_text(cJSON *frame)
{
    char *out = frame ? anvil_json_print(frame) : NULL;
    cJSON_Delete(frame);
    return out;
}

static cJSON *frame_head(const char *id, bool ok)
{
    char uuid[37];
    /* Ids are bounded on every path, including errors found before the
     * frame was read (auth, body size), where only x-request-id is known. */
    if (id && strlen(id) > ANVIL_BOUND_MAX_FRAME_ID_LENGTH)
        id = NULL;
    if (!id) {
        if (anvil_uuid4(uuid) != 0)
            snprintf(uuid, sizeof uuid, "unknown");
        id = uuid;
    }
    cJSON *f = cJSON_CreateObject();
    if (!f)
        return NULL;
    if (!cJSON_AddStringToObject(f, "type", "res") || !cJSON_AddStringToObject(f, "id", id) ||
        !cJSON_AddBoolToObject(f, "ok", ok) ||
        !cJSON_AddStringToObject(f, "apiVersion", ANVIL_API_VERSION)) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

char *anvil_rpc_error_frame(const char *id, const anvil_error *e)
{
    cJSON *f = frame_head(id, false);
    cJSON *err = anvil_error_to_json(e);
    if (!f || !err || !cJSON_AddItemToObject(f, "error", err)) {
        cJSON_Delete(err);
        cJSON_Delete(f);
        return NULL;
    }
    return frame_to_text(f);
}

char *anvil_rpc_error_instead(char *frame, const anvil_error *e, int *http_status)
{
    cJSON *old = frame ? cJSON_Parse(frame) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(old, "id");
    char *text = anvil_rpc_error_frame(cJSON_IsString(id) ? id->valuestring : NULL, e);
    cJSON_Delete(old);
    free(frame);
    *http_status = anvil_error_http_status(e);
    return text;
}

char *anvil_rpc_ok_frame(const char *id, cJSON *payload)
{
    cJSON *f = frame_head(id, true);
    if (!f || !payload || !cJSON_AddItemToObject(f, "payload", payload)) {
        cJSON_Delete(payload);
        cJSON_Delete(f);
        return NULL;
    }
    return frame_to_text(f);
}

/* A method answers only the errors its contract lists: clients switch on
 * them, and the conformance kit provokes them. A handler that answers
 * another is a bug; debug builds (the sanitizer runs of every test) stop
 * on it, release builds say so in the log and answer it anyway. */
static void check_declared(const anvil_method *m, const anvil_error *e)
{
    if (anvil_method_declares(m, e->code))
        return;
    anvil_log(ANVIL_LOG_ERROR, "%s answered %s, which its contract does not declare", m->name,
              anvil_error_info_of(e->code)->code);
    assert(!"a method answered an error its contract does not declare");
}

static char *fail_frame(const char *id, anvil_error *e, int *http_status)
{
    *http_status = anvil_error_http_status(e);
    char *out = anvil_rpc_error_frame(id, e);
    anvil_error_clear(e);
    return out;
}

/* A call's answer once its handler is done: the encoded response when rc is
 * 0, the error otherwise (Internal when the handler set none). Releases the
 * response's members (not res itself) and clears err. */
static char *answer_frame(const anvil_method *m, const char *id, int rc, void *res,
                          anvil_error *err, int64_t started_us, int *http_status)
{
    cJSON *payload = NULL;
    anvil_schema_error se;
    if (rc == 0) {
        anvil_error_clear(err);   /* a success may have set one on the way */
        payload = anvil_schema_encode(m->response, res, &se);
        if (!payload) {
            anvil_log(ANVIL_LOG_ERROR, "%s: response does not match the contract at %s: %s",
                      m->name, se.path, se.message);
            anvil_error_set(err, ANVIL_ERR_INTERNAL, "%s produced an invalid response", m->name);
            rc = -1;
        }
    } else if (!err->set) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "%s failed", m->name);
    }
    anvil_schema_free(m->response, res);
    anvil_rpc_metrics_count(m, rc != 0 ? (int)err->code : -1, started_us);
    if (rc != 0) {
        check_declared(m, err);
        return fail_frame(id, err, http_status);
    }
    *http_status = 200;
    return anvil_rpc_ok_frame(id, payload);
}

/* ---- answers that come later ---------------------------------------------------- */

struct anvil_deferred {
    const anvil_method *m;
    void *res;                    /* the method's response struct (owned) */
    char *id;                     /* the request's id; NULL: a fresh one */
    const anvil_reply_ops *ops;
    void *handle;                 /* the transport's, from ops->hold */
    int64_t started_us;
    anvil_error err;
};

anvil_deferred *anvil_call_defer(anvil_call *call, void *res)
{
    assert(!call->deferred && res);
    if (!call->replies)
        return NULL;
    anvil_deferred *d = calloc(1, sizeof *d);
    char *id = call->reply_id ? strdup(call->reply_id) : NULL;
    if (!d || (call->reply_id && !id)) {
        free(d);
        free(id);
        return NULL;
    }
    d->handle = call->replies->hold(call->reply_conn);
    if (!d->handle) {
        free(d);
        free(id);
        return NULL;
    }
    d->m = call->method;
    d->started_us = call->started_us;
    d->res = res;
    d->id = id;
    d->ops = call->replies;
    call->deferred = d;
    return d;
}

void *anvil_deferred_response(anvil_deferred *d)
{
    return d->res;
}

anvil_error *anvil_deferred_error(anvil_deferred *d)
{
    return &d->err;
}

void anvil_deferred_finish(anvil_deferred *d, int rc)
{
    int status = 500;
    char *text = answer_frame(d->m, d->id, rc, d->res, &d->err, d->started_us, &status);
    free(d->res);
    d->ops->answer(d->handle, text, status);
    anvil_error_clear(&d->err);
    free(d->id);
    free(d);
}

char *anvil_rpc_handle(const anvil_services *svc, const anvil_principal *principal,
                       const anvil_rpc_input *in, int *http_status)
{
    anvil_error e = { 0 };
    const char *id = in->request_id;
    char *out = NULL;
    int64_t started_us = anvil_metrics_now_us();
    const anvil_method *m = NULL;
    anvil_request_frame own = { 0 };
    const anvil_request_frame *f = in->frame;
    if (!f) {
        anvil_frame_rules rules = { .noun = "Request body", .forced_method = in->forced_method,
                                    .schema = anvil_http_request_frame_schema };
        f = &own;
        if (anvil_frame_read(in->body, in->body_len, &rules, &own, &e) != 0) {
            if (own.id)
                id = own.id;
            goto fail;
        }
    }
    if (f->id)
        id = f->id;
    if (id && strlen(id) > ANVIL_BOUND_MAX_FRAME_ID_LENGTH)
        id = NULL;   /* an over-long x-request-id is replaced, not echoed */

    const char *name = f->method;
    const cJSON *params = f->params;
    m = anvil_method_find(name);
    if (in->forced_method && !f->bare && strcmp(name, in->forced_method) != 0) {
        const anvil_method *pm = anvil_method_find(in->forced_method);
        if (!pm || pm != m) {
            anvil_error_set(&e, ANVIL_ERR_INVALID_REQUEST,
                            "Frame method \"%s\" does not match the path method \"%s\"",
                            name, in->forced_method);
            anvil_error_detail_str(&e, "path", "$.method");
            goto fail;
        }
    }

    /* Scope before existence: an unknown method still needs its fallback
     * scope, so callers cannot probe the table without credentials. */
    const char *required = m ? m->required_scope : anvil_method_fallback_scope(name);
    if (!anvil_scope_allows(&anvil_scopes, principal->scopes, principal->n_scopes, required,
                            name, m ? m->name : NULL)) {
        anvil_error_set(&e, ANVIL_ERR_FORBIDDEN, "Missing required scope %s for %s", required, name);
        anvil_error_detail_str(&e, "requiredScope", required);
        goto fail;
    }
    if (!m) {
        anvil_error_set(&e, ANVIL_ERR_METHOD_NOT_FOUND, "Unknown method \"%s\"", name);
        goto fail;
    }
    if (!(m->transport & in->transport)) {
        anvil_error_set(&e, ANVIL_ERR_INVALID_REQUEST, "%s is only available over the %s", m->name,
                        (m->transport & ANVIL_TRANSPORT_WEBSOCKET) ? "WebSocket" : "HTTP API");
        goto fail;
    }

    void *req = calloc(1, m->request->size);
    void *res = calloc(1, m->response->size);
    if (!req || !res) {
        free(req);
        free(res);
        anvil_error_set(&e, ANVIL_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    cJSON *empty = NULL;
    if (!params)
        params = empty = cJSON_CreateObject();
    anvil_schema_error se;
    int rc = anvil_schema_decode(m->request, params, req, "$.params", &se);
    cJSON_Delete(empty);
    if (rc != 0) {
        anvil_invalid_at(&e, se.path, se.message);
        free(req);
        free(res);
        goto fail;
    }

    anvil_call call = {
        .svc = svc, .principal = principal, .called_as = name, .method = m,
        .transport = in->transport, .streams = in->streams, .conn = in->conn,
        .replies = in->replies, .reply_conn = in->reply_conn, .reply_id = id,
        .started_us = started_us,
    };
    assert(m->id < ANVIL_METHOD__COUNT && svc->handlers[m->id]);
    /* What the handler logs names the call. */
    anvil_log_ctx prev = anvil_log_ctx_push(&(anvil_log_ctx){ .request_id = id, .method = m->name });
    rc = svc->handlers[m->id](&call, req, res);
    anvil_schema_free(m->request, req);
    free(req);
    if (rc == ANVIL_CALL_DEFERRED) {
        /* The response struct is the deferred answer's now. */
        assert(call.deferred && call.deferred->res == res);
        anvil_log_ctx_restore(prev);
        *http_status = 0;
        cJSON_Delete(own.root);
        return NULL;
    }
    assert(!call.deferred);   /* a handler that deferred must say so */
    out = answer_frame(m, id, rc, res, &call.err, started_us, http_status);
    anvil_log_ctx_restore(prev);
    free(res);
    cJSON_Delete(own.root);
    return out;

fail:
    anvil_rpc_metrics_count(m, (int)e.code, started_us);
    out = fail_frame(id, &e, http_status);
    cJSON_Delete(own.root);
    return out;
}
