/*
 * tests/unit/test_events.c — the in-process event bus: every subscriber
 * gets every event, also when a subscriber unsubscribes itself (or another
 * one) from inside its callback, as a transport does when it drops a slow
 * client.
 */
#include <stdlib.h>

#include "events.h"
#include "unit.h"

typedef struct sub {
    anvil_event_bus *bus;
    int calls;
    struct sub *drop;   /* unsubscribed from this subscriber's callback */
} sub;

static void on_event(void *ctx, const anvil_event *ev)
{
    (void)ev;
    sub *s = ctx;
    s->calls++;
    if (s->drop) {
        anvil_events_unsubscribe(s->bus, on_event, s->drop);
        s->drop = NULL;
    }
}

int main(void)
{
    anvil_event_bus bus = { 0 };
    sub a = { &bus, 0, NULL }, b = { &bus, 0, NULL }, c = { &bus, 0, NULL };
    anvil_event ev = { "r", 1, "node.started", NULL, 1, 0 };

    /* a drops itself: b and c still get the event. */
    a.drop = &a;
    CHECK(anvil_events_subscribe(&bus, on_event, &a) == 0);
    CHECK(anvil_events_subscribe(&bus, on_event, &b) == 0);
    CHECK(anvil_events_subscribe(&bus, on_event, &c) == 0);
    anvil_events_publish(&bus, &ev);
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 1);
    CHECK_INT(c.calls, 1);
    CHECK_INT(bus.n_subs, 2);

    /* c (second of two) drops b (first, already called): nobody is called
     * twice or skipped. */
    c.drop = &b;
    anvil_events_publish(&bus, &ev);
    CHECK_INT(b.calls, 2);
    CHECK_INT(c.calls, 2);
    CHECK_INT(bus.n_subs, 1);

    /* b is gone: only c is called. */
    anvil_events_publish(&bus, &ev);
    CHECK_INT(b.calls, 2);
    CHECK_INT(c.calls, 3);

    anvil_events_clear(&bus);
    UNIT_DONE();
}
