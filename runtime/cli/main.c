/*
 * runtime/cli/main.c — the `anvil` command: pick a subcommand, nothing more.
 */
#include <stdio.h>
#include <string.h>

#include "anvil_contract.h"
#include "cli_config.h"
#include "cli_rpc.h"
#include "cli_serve.h"
#include "cli_token.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: anvil <command> [options]\n"
            "\n"
            "  serve [--config anvil.yaml] [--listen 127.0.0.1:7331] [--db anvil.db]\n"
            "  check-config FILE            validate config and workflows\n"
            "  token issue --role R --scopes a,b [--user U] [--ttl 24h]\n"
            "  token revoke TOKEN_ID\n"
            "  rpc METHOD [JSON] [--url URL] [--token T]\n"
            "  version\n");
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
