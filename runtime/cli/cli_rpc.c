/*
 * runtime/cli/cli_rpc.c — `anvil rpc METHOD [JSON]`: the raw call. Any
 * method name (also one this binary's contract does not know, so it works
 * against newer servers) is posted to /v1/rpc/{method} with the client
 * library, and the whole response frame is printed as two-space indented
 * JSON on stdout, errors included. The exit status is the client verbs'
 * (cli_client.h): 0 for ok, the error map's for an error frame.
 */
#include <stdio.h>
#include <string.h>

#include "cli_client.h"
#include "cli_common_usage.h"
#include "cli_json.h"
#include "cli_rpc.h"

static const char USAGE[] =
    "usage: anvil rpc METHOD [JSON] [--url URL] [--token T]\n"
    "Calls METHOD with the params JSON (an object, default {}) and prints the\n"
    "response frame. URL defaults to $ANVIL_URL, else http://127.0.0.1:7331;\n"
    "T to $ANVIL_TOKEN.\n"
    "  --url URL      the gateway\n"
    "  --token T      bearer token\n"
    "  -h, --help     this help\n";

int anvil_cli_rpc(int argc, char **argv)
{
    anvil_cli_ctx ctx = { .verb = "rpc", .usage = USAGE };
    int rc = anvil_cli_parse(&ctx, argc, argv, NULL, 1, 2);
    if (rc >= 0)
        return rc;
    if (ctx.json)
        return anvil_cli_usage_error(&ctx, "unknown option --json (rpc always prints JSON)");
    const char *method = ctx.pos[0];
    const char *text = ctx.n_pos > 1 ? ctx.pos[1] : "{}";
    if (strpbrk(method, "/ ?#%\r\n") || !*method)
        return anvil_cli_usage_error(&ctx, "invalid method name %s", method);
    cJSON *params = anvil_cli_json_arg(&ctx, "params", text, true);
    if (!params)
        return ANVIL_EXIT_USAGE;
    if ((rc = anvil_cli_connect(&ctx)) >= 0) {
        cJSON_Delete(params);
        return rc;
    }
    cJSON *frame = NULL;
    int status = 0;
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_call_raw(ctx.client, method, params, &frame, &status, &err) != 0) {
        rc = anvil_cli_fail(&ctx, &err);
    } else {
        anvil_cli_json_write(stdout, frame);
        rc = ANVIL_EXIT_OK;
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(frame, "ok"))) {
            anvil_client_err_from_frame(&err, frame, status);
            rc = anvil_cli_exit_code(&err);
            anvil_client_error_clear(&err);
        }
        cJSON_Delete(frame);
    }
    cJSON_Delete(params);
    anvil_cli_done(&ctx);
    return rc;
}
