/*
 * runtime/cli/cli_cron.c — `anvil cron list|add|rm|run`: the schedules as a
 * table, and cronCreate, cronDelete and cronRun.
 */
#include <stdio.h>
#include <string.h>

#include "anvil_client_methods.h"
#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_cron.h"
#include "cli_json.h"
#include "cli_table.h"

static const char USAGE[] =
    "usage: anvil cron list\n"
    "       anvil cron add WORKFLOW PATTERN [--cron-id ID] [--disabled]\n"
    "       anvil cron rm CRON_ID\n"
    "       anvil cron run CRON_ID [--input JSON]\n";

static const char LIST_USAGE[] =
    "usage: anvil cron list\n"
    "Lists the cron schedules.\n" ANVIL_CLI_COMMON_FLAGS;
static const char ADD_USAGE[] =
    "usage: anvil cron add WORKFLOW PATTERN [--cron-id ID] [--disabled]\n"
    "Schedules WORKFLOW on the five-field cron PATTERN (quote it: \"0 8 * * 1-5\").\n"
    "  --cron-id ID   choose the schedule's id\n"
    "  --disabled     create it switched off\n" ANVIL_CLI_COMMON_FLAGS;
static const char RM_USAGE[] =
    "usage: anvil cron rm CRON_ID\n"
    "Removes a schedule.\n" ANVIL_CLI_COMMON_FLAGS;
static const char RUN_USAGE[] =
    "usage: anvil cron run CRON_ID [--input JSON]\n"
    "Fires a schedule now and prints the run it started.\n"
    "  --input JSON   the run's input (a JSON object)\n" ANVIL_CLI_COMMON_FLAGS;

static void cron_table(const anvil_cron_row *rows, size_t n)
{
    static const char *const head[] = { "CRON ID", "WORKFLOW", "PATTERN", "ENABLED", "NEXT RUN", "LAST RUN" };
    anvil_cli_table t;
    anvil_cli_table_init(&t, 6, head);
    for (size_t i = 0; i < n; i++) {
        char next[32], last[32];
        const anvil_cron_row *r = &rows[i];
        const char *row[] = { r->cron_id, r->workflow, r->pattern, r->enabled ? "yes" : "no",
                              r->has_next_run_at_ms ? anvil_cli_time(r->next_run_at_ms, next) : NULL,
                              r->has_last_run_at_ms ? anvil_cli_time(r->last_run_at_ms, last) : NULL };
        anvil_cli_table_add(&t, row);
    }
    anvil_cli_table_print(&t, stdout, "No cron schedules.");
    anvil_cli_table_free(&t);
}

static int list(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "cron list", .usage = LIST_USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 0, 0);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_cron_list_request req = { 0 };
    anvil_cron_list_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_cron_list(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_cron_list_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            cron_table(res.items, res.count);
        anvil_schema_free(&anvil_schema_cron_list_response, &res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static int add(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "cron add", .usage = ADD_USAGE };
    const char *cron_id = NULL;
    bool disabled = false;
    const anvil_cli_opt opts[] = { { "cron-id", &cron_id, NULL }, { "disabled", NULL, &disabled }, { NULL, NULL, NULL } };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 2, 2);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_cron_create_request req = { .workflow = (char *)ctx.pos[0], .pattern = (char *)ctx.pos[1],
                                      .cron_id = (char *)cron_id };
    if (disabled) {
        req.has_enabled = true;
        req.enabled = false;
    }
    anvil_cron_row res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_cron_create(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_cron_row, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            cron_table(&res, 1);
        anvil_schema_free(&anvil_schema_cron_row, &res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static int rm(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "cron rm", .usage = RM_USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 1, 1);
    if (rc >= 0 || (rc = anvil_cli_connect(&ctx)) >= 0)
        return rc;
    anvil_cron_delete_request req = { .cron_id = (char *)ctx.pos[0] };
    anvil_cron_delete_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_cron_delete(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_cron_delete_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("removed cron %s\n", ctx.pos[0]);
        anvil_schema_free(&anvil_schema_cron_delete_response, &res);
    }
    anvil_cli_done(&ctx);
    return rc;
}

static int run(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "cron run", .usage = RUN_USAGE };
    const char *input = NULL;
    const anvil_cli_opt opts[] = { { "input", &input, NULL }, { NULL, NULL, NULL } };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 1, 1);
    if (rc >= 0)
        return rc;
    anvil_cron_run_request req = { .cron_id = (char *)ctx.pos[0] };
    if (input && !(req.input = anvil_cli_json_arg(&ctx, "--input", input, true)))
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0) {
        cJSON_Delete(req.input);
        return rc;
    }
    anvil_cron_run_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_cron_run(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_cron_run_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("launched run %s (workflow %s)\n", res.run_id, res.workflow);
        anvil_schema_free(&anvil_schema_cron_run_response, &res);
    }
    cJSON_Delete(req.input);
    anvil_cli_done(&ctx);
    return rc;
}

int anvil_cli_cron(int argc, char **argv)
{
    static const anvil_cli_verb verbs[] = {
        { "list", list }, { "add", add }, { "rm", rm }, { "run", run },
    };
    return anvil_cli_dispatch("cron", argc, argv, USAGE, verbs, sizeof verbs / sizeof verbs[0]);
}
