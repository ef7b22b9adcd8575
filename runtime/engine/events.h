/*
 * runtime/engine/events.h — the in-process event bus.
 *
 * The engine publishes every event after the transaction that recorded it
 * has committed, so a subscriber never sees an event that a crash could
 * take back. Transports (the WebSocket bridge) subscribe here.
 *
 * Ownership: the event and its payload are valid during the callback only.
 */
#ifndef ANVIL_EVENTS_H
#define ANVIL_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct anvil_event {
    const char *run_id;
    int64_t seq;                /* per-run, 1, 2, ... */
    const char *event;          /* "node.started", "run.completed", ... */
    const cJSON *payload;       /* always carries runId */
    int64_t state_version;      /* global, increases by one per event */
    int64_t at_ms;
} anvil_event;

/* Published (never stored) after deleteRun removed a run: payload
 * {runId}, seq 0. Streams on the run end with RunNotFound. */
#define ANVIL_EVENT_RUN_DELETED "run.deleted"

typedef void (*anvil_event_fn)(void *ctx, const anvil_event *ev);

typedef struct anvil_event_bus {
    struct { anvil_event_fn fn; void *ctx; } *subs;
    size_t n_subs, cap;
} anvil_event_bus;

/* 0, or -1 when out of memory. */
int anvil_events_subscribe(anvil_event_bus *bus, anvil_event_fn fn, void *ctx);
void anvil_events_unsubscribe(anvil_event_bus *bus, anvil_event_fn fn, void *ctx);
void anvil_events_publish(const anvil_event_bus *bus, const anvil_event *ev);
void anvil_events_clear(anvil_event_bus *bus);

#endif
