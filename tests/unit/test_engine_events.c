/*
 * tests/unit/test_engine_events.c — what the engine publishes on its bus,
 * in order, and that it agrees with the durable event log.
 *
 * Transports (the WebSocket bridge) will fan these events out, so the
 * sequence a subscriber sees is a contract of its own: seq 1, 2, ... per
 * run with no gap, stateVersion strictly increasing, approval.requested
 * only once the approval can be decided, and run.completed exactly once.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "engine.h"
#include "store.h"
#include "store_runs.h"
#include "unit.h"

#define MAX_SEEN 256

typedef struct seen {
    char run_id[80];
    char event[40];
    char node[80];
    int64_t seq, state_version;
} seen;

static seen events[MAX_SEEN];
static size_t n_events;

static void on_event(void *ctx, const anvil_event *ev)
{
    (void)ctx;
    if (n_events == MAX_SEEN)
        return;
    seen *s = &events[n_events++];
    snprintf(s->run_id, sizeof s->run_id, "%s", ev->run_id);
    snprintf(s->event, sizeof s->event, "%s", ev->event);
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(ev->payload, "nodeId");
    snprintf(s->node, sizeof s->node, "%s", cJSON_IsString(node) ? node->valuestring : "");
    s->seq = ev->seq;
    s->state_version = ev->state_version;
    /* Every payload names its run. */
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(ev->payload, "runId");
    CHECK(cJSON_IsString(rid) && strcmp(rid->valuestring, ev->run_id) == 0);
}

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The events of one run, as "event:node" strings joined by spaces. */
static void trace(const char *run_id, char *out, size_t outlen)
{
    out[0] = '\0';
    int64_t expect_seq = 1;
    for (size_t i = 0; i < n_events; i++) {
        if (strcmp(events[i].run_id, run_id) != 0)
            continue;
        CHECK_INT(events[i].seq, expect_seq);   /* no gap, no duplicate */
        expect_seq++;
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s%s%s", used ? " " : "", events[i].event,
                 events[i].node[0] ? ":" : "", events[i].node);
    }
}

static int count(const char *run_id, const char *event)
{
    int n = 0;
    for (size_t i = 0; i < n_events; i++)
        n += !strcmp(events[i].run_id, run_id) && !strcmp(events[i].event, event);
    return n;
}

static anvil_launch launch_of(const char *workflow, const char *run_id, const cJSON *input)
{
    static char *scopes[] = { "*" };
    anvil_launch l = {
        .workflow = workflow, .input = input, .run_id = run_id, .triggered_by = "test",
        .role = "operator", .scopes = scopes, .n_scopes = 1,
    };
    return l;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/anvil-engine-events-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    write_file("static.yaml",
               "root:\n  sequence:\n"
               "    - task: { id: a, output: { n: 1 } }\n"
               "    - task: { id: b, output: { m: \"${outputs.a.n}\" } }\n");
    write_file("gate.yaml",
               "root:\n  sequence:\n"
               "    - approval: { id: gate, title: Go? }\n"
               "    - task: { id: after, output: { done: true } }\n");
    write_file("lone.yaml",
               "root:\n  approval: { id: only, title: Alone? }\n");
    write_file("sig.yaml",
               "root:\n  sequence:\n"
               "    - signal: { id: wait, name: ping, correlationKey: \"${input.k}\" }\n"
               "    - task: { id: after, output: { got: \"${outputs.wait.x}\" } }\n");

    anvil_config cfg;
    CHECK(anvil_config_defaults(&cfg) == 0);
    const char *names[] = { "static", "gate", "sig", "lone" };
    cfg.workflows = calloc(4, sizeof *cfg.workflows);
    cfg.n_workflows = 4;
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.yaml", dir, names[i]);
        cfg.workflows[i].name = strdup(names[i]);
        cfg.workflows[i].file = strdup(path);
    }
    char dbpath[512], err[256];
    snprintf(dbpath, sizeof dbpath, "%s/anvil.db", dir);
    free(cfg.database);
    cfg.database = strdup(dbpath);

    struct event_base *base = event_base_new();
    anvil_store *store = NULL;
    anvil_engine *e = NULL;
    anvil_diags diags = { 0 };
    CHECK(anvil_store_open(dbpath, &store, err, sizeof err) == 0);
    int rc = anvil_engine_new(base, store, &cfg, &e, &diags, err, sizeof err);
    anvil_diags_print(&diags, stderr);
    CHECK(rc == 0);
    if (rc != 0)
        UNIT_DONE();
    CHECK(anvil_events_subscribe(anvil_engine_bus(e), on_event, NULL) == 0);

    char *run_id = NULL, t[2048];
    bool existing;
    anvil_error aerr = { 0 };

    /* A static run finishes inside the launch call. */
    anvil_launch l = launch_of("static", "s1", NULL);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    trace("s1", t, sizeof t);
    CHECK_STR(t, "run.started node.started:sequence@root node.started:a node.finished:a "
                 "node.started:b node.finished:b node.finished:sequence@root run.completed");
    CHECK_INT(count("s1", "run.completed"), 1);

    /* Approval: announced once it can be decided; completed once. */
    l = launch_of("gate", "g1", NULL);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    anvil_approval_record a;
    CHECK_INT(anvil_store_approval_get(store, "g1", "gate", 0, &a), 1);   /* before any decision */
    anvil_approval_record_clear(&a);
    anvil_decision d = { .run_id = "g1", .node_id = "gate", .approved = true, .user_id = "u" };
    CHECK(anvil_engine_decide(e, &d, &aerr) == 0);
    CHECK(anvil_engine_decide(e, &d, &aerr) != 0);
    CHECK(aerr.code == ANVIL_ERR_ALREADY_DECIDED);
    anvil_error_clear(&aerr);
    trace("g1", t, sizeof t);
    CHECK_STR(t, "run.started node.started:sequence@root approval.requested:gate "
                 "approval.decided:gate node.finished:gate node.started:after node.finished:after "
                 "node.finished:sequence@root run.completed");

    /* An approval that is the whole workflow: deciding it ends the run,
     * and run.completed still comes after the decision's own events. */
    l = launch_of("lone", "l1", NULL);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    anvil_decision dl = { .run_id = "l1", .node_id = "only", .approved = true, .user_id = "u" };
    CHECK(anvil_engine_decide(e, &dl, &aerr) == 0);
    trace("l1", t, sizeof t);
    CHECK_STR(t, "run.started approval.requested:only approval.decided:only node.finished:only "
                 "run.completed");
    CHECK_INT(count("l1", "run.completed"), 1);

    /* A signal that arrives first is kept and taken when the node waits. */
    cJSON *in = cJSON_Parse("{\"k\":\"42\"}");
    l = launch_of("sig", "x1", in);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    anvil_signal_receipt rcpt;
    cJSON *payload = cJSON_Parse("{\"x\":7}");
    CHECK(anvil_engine_signal(e, "x1", "ping", "41", payload, "u", &rcpt, &aerr) == 0);
    CHECK(!rcpt.delivered);   /* wrong correlation key */
    CHECK(anvil_engine_signal(e, "x1", "ping", "42", payload, "u", &rcpt, &aerr) == 0);
    CHECK(rcpt.delivered);
    CHECK_INT(rcpt.seq, 2);
    trace("x1", t, sizeof t);
    CHECK_STR(t, "run.started node.started:sequence@root node.started:wait node.finished:wait "
                 "node.started:after node.finished:after node.finished:sequence@root run.completed");

    /* Once per key: a repeated key records and delivers nothing and
     * answers the first signal's receipt. */
    l = launch_of("sig", "x2", in);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    size_t before = n_events;
    CHECK(anvil_engine_signal_once(e, "x2", "ping", "41", payload, "u", "k1", &rcpt, &aerr) == 0);
    CHECK(!rcpt.delivered && !rcpt.repeated);
    CHECK_INT(rcpt.seq, 1);
    int64_t first_at = rcpt.received_at_ms;
    CHECK(anvil_engine_signal_once(e, "x2", "ping", "42", payload, "u", "k1", &rcpt, &aerr) == 0);
    CHECK(rcpt.repeated && !rcpt.delivered);
    CHECK_INT(rcpt.seq, 1);
    CHECK_INT(rcpt.received_at_ms, first_at);
    CHECK_INT(n_events, before);   /* the repeat took nothing and published nothing */
    CHECK(anvil_engine_signal_once(e, "x2", "ping", "42", payload, "u", "k2", &rcpt, &aerr) == 0);
    CHECK(rcpt.delivered && !rcpt.repeated);
    CHECK_INT(rcpt.seq, 2);
    CHECK(anvil_engine_signal_once(e, "x2", "ping", "42", payload, "u", "k2", &rcpt, &aerr) == 0);
    CHECK(rcpt.repeated);
    CHECK_INT(rcpt.seq, 2);
    /* an ended run answers its earlier signal the same way; a new key is
     * still recorded for the record */
    CHECK(anvil_engine_signal_once(e, "x2", "ping", "42", payload, "u", "k3", &rcpt, &aerr) == 0);
    CHECK(!rcpt.repeated && !rcpt.delivered);
    CHECK_INT(rcpt.seq, 3);
    CHECK(anvil_engine_signal_once(e, "nope", "ping", "42", payload, "u", "k1", &rcpt, &aerr) != 0);
    CHECK(aerr.code == ANVIL_ERR_RUN_NOT_FOUND);
    anvil_error_clear(&aerr);
    trace("x2", t, sizeof t);
    CHECK_STR(t, "run.started node.started:sequence@root node.started:wait node.finished:wait "
                 "node.started:after node.finished:after node.finished:sequence@root run.completed");

    /* Cancelling a waiting run: nodes end children first, the run once. */
    l = launch_of("gate", "c1", NULL);
    CHECK(anvil_engine_launch(e, &l, &run_id, &existing, &aerr) == 0);
    free(run_id);
    CHECK(anvil_engine_cancel(e, "c1", &aerr) == 0);
    trace("c1", t, sizeof t);
    CHECK_STR(t, "run.started node.started:sequence@root approval.requested:gate run.cancelling "
                 "node.cancelled:after node.cancelled:gate node.cancelled:sequence@root run.completed");
    CHECK_INT(anvil_store_approval_get(store, "c1", "gate", 0, &a), 1);
    CHECK_STR(a.status, "cancelled");
    anvil_approval_record_clear(&a);
    CHECK(anvil_engine_cancel(e, "c1", &aerr) != 0 && aerr.code == ANVIL_ERR_BUSY);
    anvil_error_clear(&aerr);

    /* stateVersion increases by one per event, across runs. */
    for (size_t i = 1; i < n_events; i++)
        CHECK_INT(events[i].state_version, events[i - 1].state_version + 1);
    CHECK_INT(anvil_engine_state_version(e), events[n_events - 1].state_version);

    /* The durable log holds what subscribers saw. */
    anvil_run_record rec;
    CHECK_INT(anvil_store_run_get(store, "g1", &rec), 1);
    int64_t g1_events = 0;
    for (size_t i = 0; i < n_events; i++)
        g1_events += !strcmp(events[i].run_id, "g1");
    CHECK_INT(rec.last_seq, g1_events);
    CHECK_STR(rec.status, "finished");
    CHECK(rec.finished_at_ms >= rec.created_at_ms);
    anvil_run_record_clear(&rec);

    cJSON_Delete(in);
    cJSON_Delete(payload);
    anvil_engine_free(e);
    anvil_store_close(store);
    anvil_config_clear(&cfg);
    event_base_free(base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    UNIT_DONE();
}
