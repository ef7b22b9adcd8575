/*
 * runtime/cli/main.c — the `anvil` command: pick a subcommand, nothing more.
 */
#include <stdio.h>
#include <string.h>

#include "anvil_contract.h"
#include "cli_approvals.h"
#include "cli_config.h"
#include "cli_cron.h"
#include "cli_rpc.h"
#include "cli_runs.h"
#include "cli_serve.h"
#include "cli_signal.h"
#include "cli_token.h"
#include "cli_workflows.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anvil <command> [options]\n"
            "\n"
            "  serve [--config anvil.yaml] [--listen 127.0.0.1:7331] [--db anvil.db]\n"
            "  check-config FILE            validate config and workflows\n"
            "  token issue --role R --scopes a,b [--user U] [--ttl 24h]\n"
            "  token revoke TOKEN_ID\n"
            "\n"
            "client commands (--url URL, default $ANVIL_URL; --token T, default $ANVIL_TOKEN;\n"
            "--json for scripts; `anvil COMMAND --help` for each):\n"
            "  runs list|get|launch|cancel|resume|watch\n"
            "  approvals list|approve|deny\n"
            "  signal RUN_ID CORRELATION_KEY [--name NAME] [--payload JSON]\n"
            "  cron list|add|rm|run\n"
            "  workflows\n"
            "  rpc METHOD [JSON]             a raw call; prints the response frame\n"
            "  version\n"
            "\n"
            "exit status: 0 ok, 1 server error, 2 usage, 3 unreachable, 4 invalid request,\n"
            "5 unauthorized, 6 forbidden, 7 not found, 8 conflict, 9 too large or rate\n"
            "limited; runs watch: 10 run failed, 11 run cancelled (docs/cli.md)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return anvil_cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return anvil_cli_check_config(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0) {
        if (argc < 3) {
            fprintf(stderr, "usage: anvil token issue|revoke ...\n");
            return 2;
        }
        return anvil_cli_token(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "rpc") == 0)
        return anvil_cli_rpc(argc - 1, argv + 1);
    if (strcmp(cmd, "runs") == 0)
        return anvil_cli_runs(argc - 1, argv + 1);
    if (strcmp(cmd, "approvals") == 0)
        return anvil_cli_approvals(argc - 1, argv + 1);
    if (strcmp(cmd, "signal") == 0)
        return anvil_cli_signal(argc - 1, argv + 1);
    if (strcmp(cmd, "cron") == 0)
        return anvil_cli_cron(argc - 1, argv + 1);
    if (strcmp(cmd, "workflows") == 0)
        return anvil_cli_workflows(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("anvil (Smithers Gateway API %s)\n", ANVIL_API_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "anvil: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
