/*
 * runtime/cli/cli_approvals.c — `anvil approvals list|approve|deny`: the
 * pending approvals as a table, and a decision on one (submitApproval).
 */
#include <stdio.h>
#include <string.h>

#include "anvil_client_methods.h"
#include "cli_approvals.h"
#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_json.h"
#include "cli_table.h"

static const char USAGE[] =
    "usage: anvil approvals list [--run RUN_ID] [--workflow W] [--limit N]\n"
    "       anvil approvals approve RUN_ID NODE_ID [--note TEXT] [--iteration N]\n"
    "       anvil approvals deny RUN_ID NODE_ID [--note TEXT] [--iteration N]\n";

static const char LIST_USAGE[] =
    "usage: anvil approvals list [--run RUN_ID] [--workflow W] [--limit N]\n"
    "Lists the approvals waiting for a decision.\n"
    "  --run RUN_ID   only this run's\n"
    "  --workflow W   only runs of workflow W\n"
    "  --limit N      at most N\n" ANVIL_CLI_COMMON_FLAGS;

static int list(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "approvals list", .usage = LIST_USAGE };
    const char *run = NULL, *workflow = NULL, *limit = NULL;
    const anvil_cli_opt opts[] = {
        { "run", &run, NULL }, { "workflow", &workflow, NULL }, { "limit", &limit, NULL }, { NULL, NULL, NULL },
    };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 0, 0);
    if (rc >= 0)
        return rc;
    anvil_list_approvals_request req = { .has_filter = true };
    req.filter.run_id = (char *)run;
    req.filter.workflow = (char *)workflow;
    if (!anvil_cli_count_arg(&ctx, "--limit", limit, &req.filter.has_limit, &req.filter.limit))
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_list_approvals_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_list_approvals(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
        anvil_cli_done(&ctx);
        return rc;
    }
    if (ctx.json) {
        rc = anvil_cli_json_write_value(stdout, &anvil_schema_list_approvals_response, &res) ? ANVIL_EXIT_SERVER : 0;
    } else {
        static const char *const head[] = { "RUN ID", "NODE", "WORKFLOW", "TITLE", "REQUESTED" };
        anvil_cli_table t;
        anvil_cli_table_init(&t, 5, head);
        for (size_t i = 0; i < res.count; i++) {
            const anvil_approval_summary *a = &res.items[i];
            char when[32];
            const char *row[] = { a->run_id, a->node_id, a->workflow_key, a->request_title,
                                  anvil_cli_time(a->requested_at_ms, when) };
            anvil_cli_table_add(&t, row);
        }
        rc = anvil_cli_table_print(&t, stdout, "No pending approvals.") ? ANVIL_EXIT_SERVER : 0;
        anvil_cli_table_free(&t);
    }
    anvil_schema_free(&anvil_schema_list_approvals_response, &res);
    anvil_cli_done(&ctx);
    return rc;
}

static const char APPROVE_USAGE[] =
    "usage: anvil approvals approve RUN_ID NODE_ID [--note TEXT] [--iteration N]\n"
    "Approves the approval node NODE_ID of run RUN_ID; the run goes on.\n"
    "  --note TEXT    recorded with the decision\n"
    "  --iteration N  the node's iteration (default 0)\n" ANVIL_CLI_COMMON_FLAGS;
static const char DENY_USAGE[] =
    "usage: anvil approvals deny RUN_ID NODE_ID [--note TEXT] [--iteration N]\n"
    "Denies the approval node NODE_ID of run RUN_ID; the node fails.\n"
    "  --note TEXT    recorded with the decision\n"
    "  --iteration N  the node's iteration (default 0)\n" ANVIL_CLI_COMMON_FLAGS;

static int decide(int argc, char **argv, bool approved)
{
    anvil_cli_ctx ctx = { .verb = approved ? "approvals approve" : "approvals deny",
                          .usage = approved ? APPROVE_USAGE : DENY_USAGE };
    const char *note = NULL, *iteration = NULL;
    const anvil_cli_opt opts[] = { { "note", &note, NULL }, { "iteration", &iteration, NULL }, { NULL, NULL, NULL } };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 2, 2);
    if (rc >= 0)
        return rc;
    anvil_submit_approval_request req = { .run_id = (char *)ctx.pos[0], .node_id = (char *)ctx.pos[1] };
    req.decision.has_approved = true;
    req.decision.approved = approved;
    req.decision.note = (char *)note;
    if (!anvil_cli_count_arg(&ctx, "--iteration", iteration, &req.has_iteration, &req.iteration))
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_submit_approval_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_submit_approval(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_submit_approval_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("%s %s on run %s\n", res.approved ? "approved" : "denied", res.node_id, res.run_id);
        anvil_schema_free(&anvil_schema_submit_approval_response, &res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static int approve(int argc, char **argv)
{
    return decide(argc, argv, true);
}

static int deny(int argc, char **argv)
{
    return decide(argc, argv, false);
}

int anvil_cli_approvals(int argc, char **argv)
{
    static const anvil_cli_verb verbs[] = {
        { "list", list }, { "approve", approve }, { "deny", deny },
    };
    return anvil_cli_dispatch("approvals", argc, argv, USAGE, verbs, sizeof verbs / sizeof verbs[0]);
}
