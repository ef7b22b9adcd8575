/*
 * runtime/contract/ws_contract.c — lookups over the generated WebSocket
 * tables (ws_contract.h). Owns nothing but the bsearch order, which the
 * generator guarantees (events sorted by strcmp order).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_contract.h"

static int cmp_event(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const anvil_ws_event_desc *)elem)->name);
}

const anvil_ws_event_desc *anvil_ws_event_find(const char *name)
{
    if (!name)
        return NULL;
    return bsearch(name, anvil_ws_events, ANVIL_WS_EVENT__COUNT, sizeof anvil_ws_events[0], cmp_event);
}

int anvil_ws_event_check(const char *name, const cJSON *payload, anvil_schema_error *err)
{
    const anvil_ws_event_desc *ev = anvil_ws_event_find(name);
    if (!ev) {
        snprintf(err->path, sizeof err->path, "$.event");
        snprintf(err->message, sizeof err->message, "event \"%.64s\" is not declared in x-anvil-websocket",
                 name ? name : "");
        return -1;
    }
    return anvil_schema_check(ev->payload, payload, "$.payload", err);
}

bool anvil_ws_subscribes_run(const anvil_method *m)
{
    assert(!m || m->id < ANVIL_METHOD__COUNT);
    return m && anvil_ws_method_subscribes[m->id].source != ANVIL_WS_SUBSCRIBES_NONE;
}

const char *anvil_ws_subscribed_run(const anvil_method *m, const cJSON *params, const cJSON *payload)
{
    if (!anvil_ws_subscribes_run(m))
        return NULL;
    const anvil_ws_subscribes *s = &anvil_ws_method_subscribes[m->id];
    const cJSON *from = s->source == ANVIL_WS_SUBSCRIBES_PAYLOAD ? payload : params;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, s->member);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
