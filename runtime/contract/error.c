/*
 * runtime/contract/error.c — building and rendering contract errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "error.h"

static char oom_message[] = "out of memory while reporting an error";

int anvil_error_set(anvil_error *e, anvil_error_code code, const char *fmt, ...)
{
    anvil_error_clear(e);
    e->set = true;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&e->message, fmt, ap);
    va_end(ap);
    if (n < 0)
        e->message = NULL;
    return -1;
}

static cJSON *details_obj(anvil_error *e)
{
    if (!e->details)
        e->details = cJSON_CreateObject();
    return e->details;
}

void anvil_error_detail_str(anvil_error *e, const char *key, const char *value)
{
    cJSON *d = details_obj(e);
    if (d && value) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, key);
        cJSON_AddStringToObject(d, key, value);
    }
}

void anvil_error_detail_int(anvil_error *e, const char *key, int64_t value)
{
    cJSON *d = details_obj(e);
    if (d) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, key);
        cJSON_AddNumberToObject(d, key, (double)value);
    }
}

cJSON *anvil_error_to_json(const anvil_error *e)
{
    const anvil_error_info *info = anvil_error_info_of(e->set ? e->code : ANVIL_ERR_INTERNAL);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const char *msg = e->message ? e->message : (e->set ? oom_message : "unknown error");
    if (!cJSON_AddStringToObject(o, "version", ANVIL_API_VERSION) ||
        !cJSON_AddStringToObject(o, "code", info->code) ||
        !cJSON_AddStringToObject(o, "legacyCode", info->legacy_code) ||
        !cJSON_AddStringToObject(o, "message", msg)) {
        cJSON_Delete(o);
        return NULL;
    }
    for (const cJSON *m = e->details ? e->details->child : NULL; m; m = m->next) {
        if (cJSON_GetObjectItemCaseSensitive(o, m->string))
            continue;   /* the fixed members cannot be overridden */
        cJSON *copy = cJSON_Duplicate(m, true);
        if (!copy || !cJSON_AddItemToObject(o, m->string, copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(o);
            return NULL;
        }
    }
    /* The contract puts details beside code and message; the upstream's
     * client reads them from error.details (GatewayRpcError.details), so
     * they are there too. */
    if (e->details && e->details->child) {
        cJSON *copy = cJSON_Duplicate(e->details, true);
        if (!copy || !cJSON_AddItemToObject(o, "details", copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

int anvil_error_http_status(const anvil_error *e)
{
    return anvil_error_info_of(e->set ? e->code : ANVIL_ERR_INTERNAL)->http_status;
}

void anvil_error_clear(anvil_error *e)
{
    free(e->message);
    cJSON_Delete(e->details);
    memset(e, 0, sizeof *e);
}
