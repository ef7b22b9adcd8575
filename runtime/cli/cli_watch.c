/*
 * runtime/cli/cli_watch.c — `anvil runs watch RUN_ID`: follow a run live.
 *
 * The run's state comes from getRun, then its event log from the resumable
 * run stream (client_ws.h) after the seq getRun reported, so nothing that
 * happens between the two is missed and a dropped socket resumes where it
 * stopped. One line per node state change (and per approval asked or
 * decided), then a progress line; on a terminal status the command exits
 * with the run's outcome: 0 finished, 10 failed, 11 cancelled. On a
 * terminal the progress line is redrawn in place; otherwise it is printed
 * as its own line whenever it changes. With --json, each stream item is one
 * compact JSON line instead, from the run's first event on.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anvil_client_methods.h"
#include "anvil_statuses.h"
#include "cli_client.h"
#include "cli_runs.h"
#include "json_print.h"

static const char USAGE[] =
    "usage: anvil runs watch RUN_ID\n"
    "Follows a run live: one line per node state change and a progress line,\n"
    "until the run ends. Exit status: 0 finished, 10 failed, 11 cancelled\n"
    "(or an error's status, see `anvil help`).\n"
    "  --url URL      the gateway (default $ANVIL_URL, else http://127.0.0.1:7331)\n"
    "  --token T      bearer token (default $ANVIL_TOKEN)\n"
    "  --json         one JSON line per stream item instead\n"
    "  -h, --help     this help\n";

typedef struct node {
    char *id;
    char *state;
} node;

typedef struct watch {
    const char *run_id;
    char *status;
    node *nodes;
    size_t n, cap;
    bool tty, progress_shown;
    char last_progress[256];
} watch;

static node *find_node(watch *w, const char *id)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->nodes[i].id, id))
            return &w->nodes[i];
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        node *nn = realloc(w->nodes, cap * sizeof *nn);
        if (!nn)
            return NULL;
        w->nodes = nn;
        w->cap = cap;
    }
    node *n = &w->nodes[w->n];
    n->id = strdup(id);
    n->state = strdup("pending");
    if (!n->id || !n->state) {
        free(n->id);
        free(n->state);
        return NULL;
    }
    w->n++;
    return n;
}

static void set_str(char **slot, const char *v)
{
    char *c = strdup(v);
    if (c) {
        free(*slot);
        *slot = c;
    }
}

static void clear_progress(watch *w)
{
    if (w->tty && w->progress_shown) {
        fputs("\r\033[K", stdout);
        w->progress_shown = false;
    }
}

static void progress(watch *w)
{
    size_t done = 0;
    for (size_t i = 0; i < w->n; i++) {
        anvil_node_state st;
        if (anvil_node_state_parse(w->nodes[i].state, &st) && anvil_node_state_terminal(st))
            done++;
    }
    char line[256];
    snprintf(line, sizeof line, "progress: %zu/%zu nodes done, run %s", done, w->n,
             w->status ? w->status : "?");
    if (w->tty) {
        clear_progress(w);
        fputs(line, stdout);
        w->progress_shown = true;
    } else if (strcmp(line, w->last_progress) != 0) {
        puts(line);
    }
    snprintf(w->last_progress, sizeof w->last_progress, "%s", line);
    fflush(stdout);
}

static void line(watch *w, const char *node_id, const char *what, const char *detail)
{
    clear_progress(w);
    char when[16];
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || !strftime(when, sizeof when, "%H:%M:%S", &tm))
        strcpy(when, "--:--:--");
    if (detail && *detail)
        printf("%s  %-16s %-16s  %s\n", when, node_id, what, detail);
    else
        printf("%s  %-16s %s\n", when, node_id, what);
}

static const char *str_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A node event's new state, or NULL for events that are not one. */
static const char *node_state_of(const char *event)
{
    static const struct { const char *event, *state; } map[] = {
        { "node.started", "running" }, { "node.finished", "finished" }, { "node.failed", "failed" },
        { "node.cancelled", "cancelled" }, { "node.skipped", "skipped" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].event, event))
            return map[i].state;
    return NULL;
}

/* Node events and decisions mean the run is no longer waiting; its exact
 * status arrives with run.completed or the next getRun. */
static void running_again(watch *w)
{
    if (w->status && !strncmp(w->status, "waiting-", 8))
        set_str(&w->status, "running");
}

static void take_event(watch *w, const char *event, const cJSON *payload)
{
    const char *node_id = str_of(payload, "nodeId");
    const char *state = node_state_of(event);
    if ((state && strcmp(event, "node.finished") != 0) || !strcmp(event, "approval.decided"))
        running_again(w);
    if (state && node_id) {
        node *n = find_node(w, node_id);
        const char *detail = NULL;
        char buf[512];
        if (!strcmp(event, "node.failed")) {
            bool retry = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "willRetry"));
            snprintf(buf, sizeof buf, "%s%s", str_of(payload, "error") ? str_of(payload, "error") : "",
                     retry ? " (will retry)" : "");
            detail = buf;
            if (retry)
                state = "pending";
        }
        if (n)
            set_str(&n->state, state);
        line(w, node_id, state, detail);
        progress(w);
    } else if (!strcmp(event, "approval.requested") && node_id) {
        node *n = find_node(w, node_id);
        if (n)
            set_str(&n->state, "waiting");
        set_str(&w->status, "waiting-approval");
        char buf[512];
        snprintf(buf, sizeof buf, "\"%s\": anvil approvals approve|deny %s %s",
                 str_of(payload, "requestTitle") ? str_of(payload, "requestTitle") : "", w->run_id, node_id);
        line(w, node_id, "waiting-approval", buf);
        progress(w);
    } else if (!strcmp(event, "approval.decided") && node_id) {
        bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "approved"));
        const char *by = str_of(payload, "decidedBy");
        char buf[256];
        snprintf(buf, sizeof buf, "by %s", by ? by : "?");
        line(w, node_id, ok ? "approved" : "denied", buf);
    } else if (!strcmp(event, "run.cancelling")) {
        set_str(&w->status, "cancelling");
        line(w, "(run)", "cancelling", NULL);
        progress(w);
    } else if (!strcmp(event, "run.resumed")) {
        set_str(&w->status, "running");
        line(w, "(run)", "resumed", NULL);
        progress(w);
    } else if (!strcmp(event, "run.completed")) {
        const char *st = str_of(payload, "status");
        set_str(&w->status, st ? st : "finished");
        line(w, "(run)", w->status, str_of(payload, "error"));
        progress(w);
    }
}

/* Node states and status from a getRun view (a fresh one, or a GapResync's). */
static void take_view(watch *w, const cJSON *view)
{
    const char *st = str_of(view, "status");
    if (st)
        set_str(&w->status, st);
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(view, "nodes");
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes) {
        const char *id = str_of(n, "nodeId"), *state = str_of(n, "state");
        node *nd = id ? find_node(w, id) : NULL;
        if (nd && state)
            set_str(&nd->state, state);
    }
}

/* An approval asked before the watch started is announced by no event the
 * watch will see: say what it waits for, as approval.requested would. */
static void show_waiting_approvals(watch *w, const cJSON *view)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(view, "nodes")) {
        const char *id = str_of(n, "nodeId"), *kind = str_of(n, "kind"), *state = str_of(n, "state");
        if (!id || !kind || !state || strcmp(kind, "approval") != 0 || strcmp(state, "waiting") != 0)
            continue;
        char buf[512];
        snprintf(buf, sizeof buf, "anvil approvals approve|deny %s %s", w->run_id, id);
        line(w, id, "waiting-approval", buf);
    }
}

static bool terminal(const watch *w)
{
    anvil_run_status st;
    return w->status && anvil_run_status_parse(w->status, &st) && anvil_run_status_terminal(st);
}

static int outcome(const watch *w)
{
    if (!strcmp(w->status, "finished"))
        return ANVIL_EXIT_OK;
    if (!strcmp(w->status, "cancelled"))
        return ANVIL_EXIT_RUN_CANCELLED;
    return ANVIL_EXIT_RUN_FAILED;
}

static void json_line(const anvil_client_run_item *it)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    if (it->kind == ANVIL_RUN_ITEM_EVENT) {
        cJSON_AddStringToObject(o, "type", "RunEvent");
        cJSON_AddNumberToObject(o, "seq", (double)it->seq);
        cJSON_AddStringToObject(o, "event", it->event);
        cJSON_AddItemToObject(o, "payload", it->payload ? cJSON_Duplicate(it->payload, 1) : cJSON_CreateNull());
    } else {
        cJSON_AddStringToObject(o, "type", "GapResync");
        cJSON_AddNumberToObject(o, "fromSeq", (double)it->from_seq);
        cJSON_AddNumberToObject(o, "toSeq", (double)it->to_seq);
        cJSON_AddItemToObject(o, "snapshot", it->snapshot ? cJSON_Duplicate(it->snapshot, 1) : cJSON_CreateNull());
    }
    char *s = anvil_json_print(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
    fflush(stdout);
}

static void watch_free(watch *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->nodes[i].id);
        free(w->nodes[i].state);
    }
    free(w->nodes);
    free(w->status);
}

int anvil_cli_runs_watch(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "runs watch", .usage = USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 1, 1);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    watch w = { .run_id = ctx.pos[0], .tty = !ctx.json && isatty(STDOUT_FILENO) };
    anvil_client_error err = { .code_id = -1 };
    anvil_get_run_request req = { .run_id = (char *)w.run_id };
    anvil_get_run_response run = { 0 };
    if (anvil_client_get_run(ctx.client, &req, &run, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
        anvil_cli_done(&ctx);
        return rc;
    }
    /* People see the state now, then what changes; scripts (--json) get
     * the whole log from its first event, then what comes. */
    int64_t after = ctx.json ? 0 : run.has_last_seq ? run.last_seq : 0;
    cJSON *view = anvil_schema_encode(&anvil_schema_get_run_response, &run, &(anvil_schema_error){ 0 });
    anvil_schema_free(&anvil_schema_get_run_response, &run);
    if (!view) {
        anvil_cli_done(&ctx);
        fprintf(stderr, "anvil runs watch: out of memory\n");
        return ANVIL_EXIT_SERVER;
    }
    take_view(&w, view);
    if (!ctx.json) {
        printf("run %s (workflow %s): %s\n", w.run_id, str_of(view, "workflowKey"), w.status);
        show_waiting_approvals(&w, view);
        progress(&w);
    }
    cJSON_Delete(view);
    /* --json replays the log even of an ended run, up to its run.completed. */
    bool completed = false;
    anvil_client_run_stream *s = NULL;
    if ((ctx.json || !terminal(&w)) && anvil_client_run_stream_open(ctx.client, w.run_id, after, &s, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
        watch_free(&w);
        anvil_cli_done(&ctx);
        return rc;
    }
    rc = -1;
    while (ctx.json ? !completed : !terminal(&w)) {
        anvil_client_run_item it;
        int got = anvil_client_run_stream_next(s, -1, &it, &err);
        if (got < 0) {
            clear_progress(&w);
            rc = anvil_cli_fail(&ctx, &err);
            break;
        }
        if (got == 0)
            continue;
        if (ctx.json) {
            json_line(&it);
            if (it.kind == ANVIL_RUN_ITEM_EVENT && !strcmp(it.event, "run.completed")) {
                set_str(&w.status, str_of(it.payload, "status") ? str_of(it.payload, "status") : "finished");
                completed = true;
            }
        } else if (it.kind == ANVIL_RUN_ITEM_EVENT) {
            take_event(&w, it.event, it.payload);
        } else {
            char buf[128];
            snprintf(buf, sizeof buf, "events %lld..%lld are no longer kept; state reloaded",
                     (long long)it.from_seq, (long long)it.to_seq);
            line(&w, "(run)", "gap", buf);
            take_view(&w, it.snapshot);
            progress(&w);
        }
        anvil_client_run_item_clear(&it);
    }
    clear_progress(&w);
    if (rc < 0) {
        if (!ctx.json)
            printf("run %s %s\n", w.run_id, w.status);
        rc = outcome(&w);
    }
    anvil_client_run_stream_close(s);
    watch_free(&w);
    anvil_cli_done(&ctx);
    return rc;
}
