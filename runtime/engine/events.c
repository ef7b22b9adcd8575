/*
 * runtime/engine/events.c — subscriber list and fan-out.
 */
#include <stdlib.h>
#include <string.h>

#include "events.h"

int anvil_events_subscribe(anvil_event_bus *bus, anvil_event_fn fn, void *ctx)
{
    if (bus->n_subs == bus->cap) {
        size_t ncap = bus->cap ? bus->cap * 2 : 4;
        void *n = realloc(bus->subs, ncap * sizeof *bus->subs);
        if (!n)
            return -1;
        bus->subs = n;
        bus->cap = ncap;
    }
    bus->subs[bus->n_subs].fn = fn;
    bus->subs[bus->n_subs].ctx = ctx;
    bus->n_subs++;
    return 0;
}

void anvil_events_unsubscribe(anvil_event_bus *bus, anvil_event_fn fn, void *ctx)
{
    for (size_t i = 0; i < bus->n_subs; i++) {
        if (bus->subs[i].fn == fn && bus->subs[i].ctx == ctx) {
            memmove(&bus->subs[i], &bus->subs[i + 1], (bus->n_subs - i - 1) * sizeof *bus->subs);
            bus->n_subs--;
            return;
        }
    }
}

void anvil_events_publish(const anvil_event_bus *bus, const anvil_event *ev)
{
    /* A subscriber may unsubscribe itself or others (or subscribe) from
     * its callback. Removal shifts the array down, so advance only when the
     * entry just called is still at i; otherwise i already holds the next
     * subscriber, which must not be skipped. */
    for (size_t i = 0; i < bus->n_subs;) {
        anvil_event_fn fn = bus->subs[i].fn;
        void *ctx = bus->subs[i].ctx;
        fn(ctx, ev);
        if (i < bus->n_subs && bus->subs[i].fn == fn && bus->subs[i].ctx == ctx)
            i++;
    }
}

void anvil_events_clear(anvil_event_bus *bus)
{
    free(bus->subs);
    memset(bus, 0, sizeof *bus);
}
