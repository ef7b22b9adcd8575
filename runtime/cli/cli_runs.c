/*
 * runtime/cli/cli_runs.c — `anvil runs list|get|launch|cancel|resume`, each
 * one generated client call (anvil_client_methods.h) shown as a table or a
 * short summary, or with --json as the answer's payload. `runs watch` is
 * cli_watch.c.
 */
#include <stdio.h>
#include <string.h>

#include "anvil_client_methods.h"
#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_json.h"
#include "cli_runs.h"
#include "cli_table.h"

#define COMMON ANVIL_CLI_COMMON_FLAGS

static const char USAGE[] =
    "usage: anvil runs list|get|launch|cancel|resume|watch ...\n"
    "  runs list [--status S] [--workflow W] [--limit N]\n"
    "  runs get RUN_ID\n"
    "  runs launch WORKFLOW [--input JSON] [--run-id ID] [--idempotency-key K]\n"
    "  runs cancel RUN_ID\n"
    "  runs resume RUN_ID [--force]\n"
    "  runs watch RUN_ID\n"
    "Run `anvil runs VERB --help` for a verb's options.\n";

static const char LIST_USAGE[] =
    "usage: anvil runs list [--status S] [--workflow W] [--limit N] [--offset N]\n"
    "Lists runs, newest first.\n"
    "  --status S     only runs in status S (running, waiting-approval, finished, ...)\n"
    "  --workflow W   only runs of workflow W\n"
    "  --limit N      at most N runs\n"
    "  --offset N     skip the first N\n" COMMON;

static int runs_list(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "runs list", .usage = LIST_USAGE };
    const char *status = NULL, *workflow = NULL, *limit = NULL, *offset = NULL;
    const anvil_cli_opt opts[] = {
        { "status", &status, NULL }, { "workflow", &workflow, NULL },
        { "limit", &limit, NULL }, { "offset", &offset, NULL }, { NULL, NULL, NULL },
    };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 0, 0);
    if (rc >= 0)
        return rc;
    anvil_list_runs_request req = { .has_filter = true };
    req.filter.status = (char *)status;
    req.filter.workflow = (char *)workflow;
    if (!anvil_cli_count_arg(&ctx, "--limit", limit, &req.filter.has_limit, &req.filter.limit))
        return ANVIL_EXIT_USAGE;
    if (!anvil_cli_count_arg(&ctx, "--offset", offset, &req.filter.has_offset, &req.filter.offset))
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_list_runs_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_list_runs(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
        anvil_cli_done(&ctx);
        return rc;
    }
    if (ctx.json) {
        rc = anvil_cli_json_write_value(stdout, &anvil_schema_list_runs_response, &res) ? ANVIL_EXIT_SERVER : 0;
    } else {
        static const char *const head[] = { "RUN ID", "WORKFLOW", "STATUS", "CREATED" };
        anvil_cli_table t;
        anvil_cli_table_init(&t, 4, head);
        for (size_t i = 0; i < res.count; i++) {
            const anvil_run_summary *r = &res.items[i];
            char when[32];
            const char *row[] = { r->run_id, r->workflow_key, r->status,
                                  r->has_created_at_ms ? anvil_cli_time(r->created_at_ms, when) : NULL };
            anvil_cli_table_add(&t, row);
        }
        rc = anvil_cli_table_print(&t, stdout, "No runs.") ? ANVIL_EXIT_SERVER : 0;
        anvil_cli_table_free(&t);
    }
    anvil_schema_free(&anvil_schema_list_runs_response, &res);
    anvil_cli_done(&ctx);
    return rc;
}

static const char GET_USAGE[] =
    "usage: anvil runs get RUN_ID\n"
    "Shows a run: its status, times, error, and each node's state.\n" COMMON;

static void print_run(const anvil_get_run_response *r)
{
    char t1[32], t2[32];
    printf("run       %s\n", r->run_id);
    printf("workflow  %s\n", r->workflow_key);
    printf("status    %s\n", r->status);
    printf("created   %s\n", anvil_cli_time(r->created_at_ms, t1));
    if (r->has_finished_at_ms)
        printf("finished  %s\n", anvil_cli_time(r->finished_at_ms, t2));
    if (r->owner_id)
        printf("owner     %s\n", r->owner_id);
    if (r->error)
        printf("error     %s\n", r->error);
    if (!r->has_nodes || !r->nodes.count)
        return;
    printf("\n");
    static const char *const head[] = { "NODE", "KIND", "STATE", "ATTEMPTS", "ERROR" };
    anvil_cli_table t;
    anvil_cli_table_init(&t, 5, head);
    for (size_t i = 0; i < r->nodes.count; i++) {
        const anvil_node_state_view *n = &r->nodes.items[i];
        char attempts[24];
        snprintf(attempts, sizeof attempts, "%lld", (long long)n->attempts);
        const char *row[] = { n->node_id, n->kind, n->state, attempts, n->error };
        anvil_cli_table_add(&t, row);
    }
    anvil_cli_table_print(&t, stdout, "");
    anvil_cli_table_free(&t);
}

static int runs_get(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "runs get", .usage = GET_USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 1, 1);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_get_run_request req = { .run_id = (char *)ctx.pos[0] };
    anvil_get_run_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_get_run(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_get_run_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            print_run(&res);
        anvil_schema_free(&anvil_schema_get_run_response, &res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static const char LAUNCH_USAGE[] =
    "usage: anvil runs launch WORKFLOW [--input JSON] [--run-id ID] [--idempotency-key K]\n"
    "Starts a run of WORKFLOW and prints its id.\n"
    "  --input JSON          the run's input (a JSON object)\n"
    "  --run-id ID           choose the run id (^[a-z0-9_-]{1,64}$)\n"
    "  --idempotency-key K   the same key returns the same run\n" COMMON;

static int runs_launch(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "runs launch", .usage = LAUNCH_USAGE };
    const char *input = NULL, *run_id = NULL, *key = NULL;
    const anvil_cli_opt opts[] = {
        { "input", &input, NULL }, { "run-id", &run_id, NULL },
        { "idempotency-key", &key, NULL }, { NULL, NULL, NULL },
    };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 1, 1);
    if (rc >= 0)
        return rc;
    anvil_launch_run_request req = { .workflow = (char *)ctx.pos[0] };
    if (input && !(req.input = anvil_cli_json_arg(&ctx, "--input", input, true)))
        return ANVIL_EXIT_USAGE;
    if (run_id || key) {
        req.has_options = true;
        req.options.run_id = (char *)run_id;
        req.options.idempotency_key = (char *)key;
    }
    if ((rc = anvil_cli_connect(&ctx)) >= 0) {
        cJSON_Delete(req.input);
        return rc;
    }
    anvil_launch_run_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_launch_run(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_launch_run_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("launched run %s (workflow %s)\n", res.run_id, res.workflow);
        anvil_schema_free(&anvil_schema_launch_run_response, &res);
    }
    cJSON_Delete(req.input);
    anvil_cli_done(&ctx);
    return rc;
}

static const char CANCEL_USAGE[] =
    "usage: anvil runs cancel RUN_ID\n"
    "Asks the run to stop: running tasks are killed, waits end, the run ends cancelled.\n" COMMON;
static const char RESUME_USAGE[] =
    "usage: anvil runs resume RUN_ID [--force]\n"
    "Resumes a run that waits for it (after a rewind, or one that needs attention).\n"
    "  --force        resume even if the server would refuse a normal resume\n" COMMON;

/* cancel and resume answer {runId, status}: one shape, one printer. */
static int runs_change(int argc, char **argv, bool cancel)
{
    anvil_cli_ctx ctx = { .verb = cancel ? "runs cancel" : "runs resume",
                          .usage = cancel ? CANCEL_USAGE : RESUME_USAGE };
    bool force = false;
    const anvil_cli_opt opts[] = { { "force", NULL, &force }, { NULL, NULL, NULL } };
    int rc = anvil_cli_parse(&ctx, argc, argv, cancel ? NULL : opts, 1, 1);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_client_error err = { .code_id = -1 };
    const anvil_schema *schema;
    const char *run_id = NULL, *status = NULL;
    anvil_cancel_run_response cres = { 0 };
    anvil_resume_run_response rres = { 0 };
    if (cancel) {
        anvil_cancel_run_request req = { .run_id = (char *)ctx.pos[0] };
        rc = anvil_client_cancel_run(ctx.client, &req, &cres, &err);
        schema = &anvil_schema_cancel_run_response;
        run_id = cres.run_id;
        status = cres.status;
    } else {
        anvil_resume_run_request req = { .run_id = (char *)ctx.pos[0] };
        if (force) {
            req.has_options = true;
            req.options.has_force = true;
            req.options.force = true;
        }
        rc = anvil_client_resume_run(ctx.client, &req, &rres, &err);
        schema = &anvil_schema_resume_run_response;
        run_id = rres.run_id;
        status = rres.status;
    }
    void *res = cancel ? (void *)&cres : (void *)&rres;
    if (rc != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, schema, res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("run %s: %s\n", run_id, status);
        anvil_schema_free(schema, res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static int runs_cancel(int argc, char **argv)
{
    return runs_change(argc, argv, true);
}

static int runs_resume(int argc, char **argv)
{
    return runs_change(argc, argv, false);
}

int anvil_cli_runs(int argc, char **argv)
{
    static const anvil_cli_verb verbs[] = {
        { "list", runs_list }, { "get", runs_get }, { "launch", runs_launch },
        { "cancel", runs_cancel }, { "resume", runs_resume }, { "watch", anvil_cli_runs_watch },
    };
    return anvil_cli_dispatch("runs", argc, argv, USAGE, verbs, sizeof verbs / sizeof verbs[0]);
}
