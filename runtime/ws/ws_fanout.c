/*
 * runtime/ws/ws_fanout.c — engine events out to the connections.
 *
 * Every authenticated connection gets each event of the runs it is
 * subscribed to (all runs until it names a subscription set), as
 * {type:"event", event, payload, seq, stateVersion, apiVersion} with its
 * own seq; its streams get the run-scoped ones (ws_stream.c); and every
 * heartbeatMs a `tick`.
 *
 * Events published while a connection's own launchRun / submitApproval /
 * submitSignal / cronRun is being handled belong to a run the connection
 * is about to be subscribed to; when the connection has an explicit
 * subscription set they are held and delivered right after the response
 * (with seq assigned at delivery), so the subscribe-on-call never misses
 * the first events of the run it started.
 *
 * Owns the subscription sets and the held events. Must not send anything
 * but events, nor touch a connection's streams other than through
 * ws_streams_deliver.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "ws_gateway_internal.h"

static bool subscribed_to(const ws_conn *c, const char *run_id)
{
    if (!c->has_subs || !run_id)
        return true;
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i], run_id) == 0)
            return true;
    return false;
}

int ws_subscribe(ws_conn *c, const char *run_id)
{
    if (subscribed_to(c, run_id))
        return 0;
    if (c->n_subs == c->cap_subs) {
        size_t nc = c->cap_subs ? c->cap_subs * 2 : 4;
        char **ns = realloc(c->subs, nc * sizeof *ns);
        if (!ns)
            return -1;
        c->subs = ns;
        c->cap_subs = nc;
    }
    char *d = strdup(run_id);
    if (!d)
        return -1;
    c->subs[c->n_subs++] = d;
    return 0;
}

void ws_free_held(ws_conn *c)
{
    held_event *h = c->held;
    while (h) {
        held_event *n = h->next;
        free(h->run_id);
        free(h->prefix);
        free(h);
        h = n;
    }
    c->held = NULL;
    c->held_tail = &c->held;
}

void ws_hold_events(ws_conn *c)
{
    c->holding = true;
    c->held_tail = &c->held;
}

void ws_release_held(ws_conn *c, const char *run_id)
{
    c->holding = false;
    if (run_id && c->has_subs && ws_subscribe(c, run_id) != 0)
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: out of memory subscribing to %s",
                  (unsigned long long)c->id, run_id);
    for (held_event *h = c->held; h; h = h->next)
        if (run_id && strcmp(h->run_id, run_id) == 0)
            ws_send_event_prefix(c, h->prefix, h->state_version);
    ws_free_held(c);
}

static void hold(ws_conn *c, const anvil_event *ev, const char *prefix)
{
    held_event *h = calloc(1, sizeof *h);
    if (h && (h->run_id = strdup(ev->run_id ? ev->run_id : "")) && (h->prefix = strdup(prefix))) {
        h->state_version = ev->state_version;
        *c->held_tail = h;
        c->held_tail = &h->next;
    } else if (h) {
        free(h->run_id);
        free(h);
    }
}

void ws_on_bus_event(void *ctx, const anvil_event *ev)
{
    anvil_ws_gateway *w = ctx;
    WS_ASSERT_CORE(w);
    char *prefix = NULL, *ptext = NULL;
    for (ws_conn *c = w->head; c; c = c->next) {
        if (!c->authenticated || c->closing)
            continue;
        bool deliver = subscribed_to(c, ev->run_id);
        if (deliver || c->holding) {
            /* Rendered once for every connection that gets it. */
            if (!prefix && !(prefix = ws_event_prefix(ev->event, ev->payload))) {
                anvil_log(ANVIL_LOG_ERROR, "ws: out of memory rendering %s", ev->event);
                break;
            }
            if (deliver)
                ws_send_event_prefix(c, prefix, ev->state_version);
            else
                hold(c, ev, prefix);
        }
        ws_streams_deliver(c, ev, &ptext);
    }
    free(prefix);
    free(ptext);
}

void ws_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_ws_gateway *w = arg;
    WS_ASSERT_CORE(w);
    char *prefix = NULL;
    int64_t sv = ws_state_version(w);
    for (ws_conn *c = w->head; c; c = c->next) {
        if (!c->authenticated || c->closing)
            continue;
        if (!prefix) {
            cJSON *p = cJSON_CreateObject();
            if (p && cJSON_AddNumberToObject(p, "ts", (double)anvil_now_ms()))
                prefix = ws_event_prefix("tick", p);
            cJSON_Delete(p);
            if (!prefix)
                return;
        }
        ws_send_event_prefix(c, prefix, sv);
    }
    free(prefix);
}
