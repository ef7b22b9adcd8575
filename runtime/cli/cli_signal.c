/*
 * runtime/cli/cli_signal.c — `anvil signal`: deliver a signal to a run's
 * waiting signal node (submitSignal), matched by its correlation key and,
 * when given, its name.
 */
#include <stdio.h>

#include "anvil_client_methods.h"
#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_json.h"
#include "cli_signal.h"

static const char USAGE[] =
    "usage: anvil signal RUN_ID CORRELATION_KEY [--name NAME] [--payload JSON]\n"
    "Delivers a signal to run RUN_ID; the signal node waiting for CORRELATION_KEY\n"
    "(and NAME, when given) goes on. A signal that arrives first is kept until\n"
    "the node waits.\n"
    "  --name NAME     the signal's name (e.g. github.comment.created)\n"
    "  --payload JSON  the signal's payload (any JSON)\n" ANVIL_CLI_COMMON_FLAGS;

int anvil_cli_signal(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "signal", .usage = USAGE };
    const char *name = NULL, *payload = NULL;
    const anvil_cli_opt opts[] = { { "name", &name, NULL }, { "payload", &payload, NULL }, { NULL, NULL, NULL } };
    int rc = anvil_cli_parse(&ctx, argc, argv, opts, 2, 2);
    if (rc >= 0)
        return rc;
    anvil_submit_signal_request req = { .run_id = (char *)ctx.pos[0], .correlation_key = (char *)ctx.pos[1],
                                        .signal_name = (char *)name };
    if (payload && !(req.payload = anvil_cli_json_arg(&ctx, "--payload", payload, false)))
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0) {
        cJSON_Delete(req.payload);
        return rc;
    }
    anvil_submit_signal_response res = { 0 };
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_submit_signal(ctx.client, &req, &res, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        rc = 0;
        if (ctx.json)
            rc = anvil_cli_json_write_value(stdout, &anvil_schema_submit_signal_response, &res) ? ANVIL_EXIT_SERVER : 0;
        else
            printf("signal %s (%s) %s run %s\n", res.signal_name, res.correlation_id,
                   res.has_delivered && res.delivered ? "delivered to" : "recorded for", res.run_id);
        anvil_schema_free(&anvil_schema_submit_signal_response, &res);
    }
    cJSON_Delete(req.payload);
    anvil_cli_done(&ctx);
    return rc;
}
