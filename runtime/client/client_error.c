/*
 * runtime/client/client_error.c — the client's typed errors: setting them,
 * reading them out of a response frame, printing and releasing them.
 *
 * The HTTP status of a code comes from the generated error map, so the
 * client and the server agree on it; a code this client's contract does not
 * know keeps the status the answer carried.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_errors.h"
#include "client_internal.h"

void anvil_client_error_clear(anvil_client_error *err)
{
    if (!err)
        return;
    free(err->message);
    free(err->required_scope);
    free(err->path);
    cJSON_Delete(err->error);
    memset(err, 0, sizeof *err);
    err->code_id = -1;
}

int anvil_client_err_set(anvil_client_error *err, anvil_client_error_kind kind, const char *fmt, ...)
{
    if (!err)
        return -1;
    anvil_client_error_clear(err);
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&err->message, fmt, ap) < 0)
        err->message = NULL;
    va_end(ap);
    if (!err->message)
        err->message = strdup("out of memory");
    return -1;
}

static char *dup_string_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring ? strdup(v->valuestring) : NULL;
}

int anvil_client_error_status_of(const char *code)
{
    int id = code ? anvil_error_code_from_name(code) : -1;
    return id < 0 ? 0 : anvil_error_info_of((anvil_error_code)id)->http_status;
}

int anvil_client_err_from_json(anvil_client_error *err, const cJSON *error, int http_status)
{
    if (!err)
        return -1;
    anvil_client_error_clear(err);
    err->kind = ANVIL_CLIENT_ERR_SERVER;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
    snprintf(err->code, sizeof err->code, "%s",
             cJSON_IsString(code) && code->valuestring ? code->valuestring : "Internal");
    err->code_id = anvil_error_code_from_name(err->code);
    int mapped = anvil_client_error_status_of(err->code);
    err->http_status = http_status ? http_status : mapped;
    err->message = dup_string_member(error, "message");
    if (!err->message)
        err->message = strdup(err->code);
    err->required_scope = dup_string_member(error, "requiredScope");
    err->path = dup_string_member(error, "path");
    err->refresh = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(error, "refresh"));
    err->error = error ? cJSON_Duplicate(error, 1) : NULL;
    return -1;
}

const char *anvil_client_error_text(const anvil_client_error *err, char *buf, size_t len)
{
    const char *msg = err && err->message ? err->message : "unknown error";
    if (err && err->kind == ANVIL_CLIENT_ERR_SERVER)
        snprintf(buf, len, "%s: %s%s%s%s", err->code, msg,
                 err->required_scope ? " (needs scope " : "",
                 err->required_scope ? err->required_scope : "", err->required_scope ? ")" : "");
    else if (err && err->path)
        snprintf(buf, len, "%s (at %s)", msg, err->path);
    else
        snprintf(buf, len, "%s", msg);
    return buf;
}

int anvil_client_err_from_frame(anvil_client_error *err, const cJSON *frame, int http_status)
{
    return anvil_client_err_from_json(err, cJSON_GetObjectItemCaseSensitive(frame, "error"), http_status);
}
