/*
 * runtime/client/client_call.c — typed calls: the request encoded with the
 * method's generated descriptor, the ok payload decoded with its response
 * descriptor, an error frame turned into a typed error. Blocking and
 * event-loop calls share every step but the waiting.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "schema.h"

/* The request as JSON, or NULL with *err (USAGE with the path). */
static cJSON *encode_request(const anvil_method *m, const void *req, anvil_client_error *err)
{
    anvil_schema_error se;
    cJSON *json = anvil_schema_encode(m->request, req, &se);
    if (!json) {
        anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "%s request: %s", m->name, se.message);
        if (err)
            err->path = strdup(se.path);
        return NULL;
    }
    return json;
}

/* A response frame into *res (ok) or *err. Returns 0 or -1. */
static int take_frame(const anvil_method *m, const cJSON *frame, int status, void *res,
                      anvil_client_error *err)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(frame, "ok")))
        return anvil_client_err_from_json(err, cJSON_GetObjectItemCaseSensitive(frame, "error"), status);
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(frame, "payload");
    anvil_schema_error se;
    if (anvil_schema_decode(m->response, payload, res, "$.payload", &se) != 0) {
        anvil_client_err_set(err, ANVIL_CLIENT_ERR_PROTOCOL, "%s answer does not match the contract: %s",
                             m->name, se.message);
        if (err) {
            err->path = strdup(se.path);
            err->http_status = status;
        }
        return -1;
    }
    return 0;
}

int anvil_client_call(anvil_client *c, const anvil_method *m, const void *req, void *res,
                      anvil_client_error *err)
{
    if (!m || !req || !res)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "anvil_client_call needs a method, a request and a response");
    cJSON *params = encode_request(m, req, err);
    if (!params)
        return -1;
    cJSON *frame = NULL;
    int status = 0;
    int rc = anvil_client_call_raw(c, m->name, params, &frame, &status, err);
    cJSON_Delete(params);
    if (rc == 0)
        rc = take_frame(m, frame, status, res, err);
    cJSON_Delete(frame);
    return rc;
}

typedef struct async_call {
    const anvil_method *m;
    anvil_client_done_fn done;
    void *arg;
} async_call;

static void async_done(const cJSON *frame, int status, const anvil_client_error *e, void *arg)
{
    async_call *a = arg;
    if (!frame) {
        a->done(e, NULL, a->arg);
        free(a);
        return;
    }
    anvil_client_error err = { .code_id = -1 };
    void *res = calloc(1, a->m->response->size ? a->m->response->size : 1);
    if (!res) {
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
        a->done(&err, NULL, a->arg);
    } else if (take_frame(a->m, frame, status, res, &err) == 0) {
        a->done(NULL, res, a->arg);
        anvil_schema_free(a->m->response, res);
    } else {
        a->done(&err, NULL, a->arg);
    }
    free(res);
    anvil_client_error_clear(&err);
    free(a);
}

int anvil_client_call_async(anvil_client *c, const anvil_method *m, const void *req,
                            anvil_client_done_fn done, void *arg, anvil_client_error *err)
{
    if (!c->base)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "this client has no event base (anvil_client_new with base NULL)");
    if (!m || !req || !done)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "anvil_client_call_async needs a method, a request and a callback");
    cJSON *params = encode_request(m, req, err);
    if (!params)
        return -1;
    char *body = cJSON_PrintUnformatted(params);
    cJSON_Delete(params);
    if (!body)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    async_call *a = calloc(1, sizeof *a);
    if (!a) {
        free(body);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    a->m = m;
    a->done = done;
    a->arg = arg;
    int rc = anvil_client_http_post(c, c->base, m->name, body, strlen(body), async_done, a, err);
    free(body);
    if (rc != 0)
        free(a);
    return rc;
}
