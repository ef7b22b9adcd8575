/*
 * runtime/cli/cli_workflows.c — `anvil workflows`: the server's workflows
 * (listWorkflows) as a table.
 */
#include <stdio.h>

#include "anvil_client_methods.h"
#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_json.h"
#include "cli_table.h"
#include "cli_workflows.h"

static const char USAGE[] =
    "usage: anvil workflows\n"
    "Lists the workflows the server runs (launch one with `anvil runs launch KEY`).\n"
    ANVIL_CLI_COMMON_FLAGS;

int anvil_cli_workflows(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "workflows", .usage = USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 0, 0);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_list_workflows_request req = { 0 };
    anvil_list_workflows_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_list_workflows(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else if (ctx.json) {
        rc = anvil_cli_json_write_value(stdout, &anvil_schema_list_workflows_response, &res) ? ANVIL_EXIT_SERVER : 0;
    } else {
        static const char *const head[] = { "KEY", "NAME", "DESCRIPTION" };
        anvil_cli_table t;
        anvil_cli_table_init(&t, 3, head);
        for (size_t i = 0; i < res.count; i++) {
            const char *row[] = { res.items[i].key, res.items[i].readable_name, res.items[i].description };
            anvil_cli_table_add(&t, row);
        }
        rc = anvil_cli_table_print(&t, stdout, "No workflows.") ? ANVIL_EXIT_SERVER : 0;
        anvil_cli_table_free(&t);
    }
    anvil_schema_free(&anvil_schema_list_workflows_response, &res);
    anvil_cli_done(&ctx);
    return rc;
}
