/*
 * tests/unit/test_status.c — the run and node status tables generated from
 * openapi.yaml (RunStatus, NodeStateView.state and their x-anvil-terminal),
 * the accessors of runtime/contract/status.h, and the one place that cannot
 * use the table: the store's SQL for unfinished runs, which must skip
 * exactly the statuses the table calls terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_statuses.h"
#include "status.h"
#include "store.h"
#include "store_runs.h"
#include "unit.h"

static void test_run_statuses(void)
{
    static const char *const names[] = {
        "running", "waiting-approval", "waiting-event", "waiting-timer",
        "finished", "failed", "cancelled", "needs_attention",
    };
    CHECK_INT(ANVIL_RUN_STATUS__COUNT, sizeof names / sizeof names[0]);
    CHECK_INT(anvil_run_status_table.n_values, ANVIL_RUN_STATUS__COUNT);
    CHECK_STR(anvil_run_status_table.schema, "RunStatus");
    for (int i = 0; i < ANVIL_RUN_STATUS__COUNT; i++) {
        CHECK_STR(anvil_run_status_name((anvil_run_status)i), names[i]);
        anvil_run_status v = ANVIL_RUN_STATUS__COUNT;
        CHECK(anvil_run_status_parse(names[i], &v));
        CHECK_INT(v, i);
    }
    CHECK_STR(anvil_run_status_name(ANVIL_RUN_STATUS_WAITING_APPROVAL), "waiting-approval");
    /* The description of RunStatus: "Terminal: finished, failed, cancelled." */
    for (int i = 0; i < ANVIL_RUN_STATUS__COUNT; i++) {
        anvil_run_status v = (anvil_run_status)i;
        bool terminal = v == ANVIL_RUN_STATUS_FINISHED || v == ANVIL_RUN_STATUS_FAILED ||
                        v == ANVIL_RUN_STATUS_CANCELLED;
        CHECK(anvil_run_status_terminal(v) == terminal);
        CHECK(anvil_status_name_terminal(&anvil_run_status_table, names[i]) == terminal);
    }
}

static void test_node_states(void)
{
    static const char *const names[] = {
        "pending", "running", "waiting", "finished", "failed", "cancelled", "skipped",
    };
    CHECK_INT(ANVIL_NODE_STATE__COUNT, sizeof names / sizeof names[0]);
    /* The engine's calloc'd nodes are pending. */
    CHECK_INT(ANVIL_NODE_STATE_PENDING, 0);
    for (int i = 0; i < ANVIL_NODE_STATE__COUNT; i++) {
        anvil_node_state v = (anvil_node_state)i;
        CHECK_STR(anvil_node_state_name(v), names[i]);
        anvil_node_state back = ANVIL_NODE_STATE__COUNT;
        CHECK(anvil_node_state_parse(names[i], &back));
        CHECK_INT(back, i);
        CHECK(anvil_node_state_terminal(v) == (v >= ANVIL_NODE_STATE_FINISHED));
    }
}

static void test_unknown_names(void)
{
    anvil_run_status r = ANVIL_RUN_STATUS_FAILED;
    CHECK(!anvil_run_status_parse(NULL, &r));
    CHECK(!anvil_run_status_parse("", &r));
    CHECK(!anvil_run_status_parse("cancelling", &r));   /* cancelRun's answer, not a status */
    CHECK(!anvil_run_status_parse("Running", &r));
    CHECK(!anvil_run_status_parse("running ", &r));
    CHECK_INT(r, ANVIL_RUN_STATUS_FAILED);              /* untouched */
    anvil_node_state n = ANVIL_NODE_STATE_SKIPPED;
    CHECK(!anvil_node_state_parse("waiting-approval", &n));
    CHECK_INT(n, ANVIL_NODE_STATE_SKIPPED);
    CHECK_INT(anvil_status_parse(&anvil_node_state_table, NULL), -1);
    CHECK(!anvil_status_name_terminal(&anvil_run_status_table, NULL));
    CHECK(!anvil_status_name_terminal(&anvil_run_status_table, "skipped"));
}

static void test_list(void)
{
    char buf[256];
    CHECK_INT(anvil_status_list(&anvil_run_status_table, buf, sizeof buf), 0);
    CHECK_STR(buf, "running, waiting-approval, waiting-event, waiting-timer, finished, failed, "
                   "cancelled, needs_attention");
    CHECK_INT(anvil_status_list(&anvil_node_state_table, buf, sizeof buf), 0);
    CHECK_STR(buf, "pending, running, waiting, finished, failed, cancelled, skipped");
    /* Exactly long enough, then one byte short. */
    size_t need = strlen("pending, running, waiting, finished, failed, cancelled, skipped") + 1;
    CHECK_INT(anvil_status_list(&anvil_node_state_table, buf, need), 0);
    CHECK_INT(anvil_status_list(&anvil_node_state_table, buf, need - 1), -1);
    CHECK_INT(anvil_status_list(&anvil_node_state_table, buf, 0), -1);
}

/* ---- the store's unfinished runs agree with the table ---------------------- */

typedef struct seen_runs {
    bool seen[ANVIL_RUN_STATUS__COUNT];
    int unknown;
} seen_runs;

static int note_run(void *ctx, const anvil_run_record *rec)
{
    seen_runs *s = ctx;
    anvil_run_status v;
    if (anvil_run_status_parse(rec->status, &v))
        s->seen[v] = true;
    else
        s->unknown++;
    return 0;
}

static void test_store_unfinished_matches_the_table(void)
{
    anvil_store *s = NULL;
    char err[256] = "";
    CHECK_INT(anvil_store_open(":memory:", &s, err, sizeof err), 0);
    if (!s) {
        fprintf(stderr, "  open: %s\n", err);
        return;
    }
    for (int i = 0; i < ANVIL_RUN_STATUS__COUNT; i++) {
        char id[32];
        snprintf(id, sizeof id, "run_%d", i);
        anvil_run_record rec = {
            .run_id = id, .workflow = "wf", .status = (char *)anvil_run_status_name((anvil_run_status)i),
            .input_json = "{}", .options_json = "{}", .triggered_by = "test", .role = "operator",
            .scopes_json = "[]", .created_at_ms = i, .updated_at_ms = i, .finished_at_ms = -1,
        };
        CHECK_INT(anvil_store_run_insert(s, &rec), 0);
    }
    seen_runs seen = { { false }, 0 };
    int n = anvil_store_runs_unfinished(s, note_run, &seen);
    CHECK_INT(seen.unknown, 0);
    int expected = 0;
    for (int i = 0; i < ANVIL_RUN_STATUS__COUNT; i++) {
        bool terminal = anvil_run_status_terminal((anvil_run_status)i);
        expected += !terminal;
        if (seen.seen[i] == terminal)
            fprintf(stderr, "  status %s: terminal=%d but listed as unfinished=%d\n",
                    anvil_run_status_name((anvil_run_status)i), terminal, seen.seen[i]);
        CHECK(seen.seen[i] != terminal);
    }
    CHECK_INT(n, expected);
    anvil_store_close(s);
}

int main(void)
{
    test_run_statuses();
    test_node_states();
    test_unknown_names();
    test_list();
    test_store_unfinished_matches_the_table();
    UNIT_DONE();
}
