/*
 * runtime/cli/cli_common_usage.h — the help lines of the flags every client
 * verb takes (cli_client.c parses them), so each verb's --help lists them
 * the same way.
 */
#ifndef ANVIL_CLI_COMMON_USAGE_H
#define ANVIL_CLI_COMMON_USAGE_H

#define ANVIL_CLI_COMMON_FLAGS \
    "  --url URL      the gateway (default $ANVIL_URL, else http://127.0.0.1:7331)\n" \
    "  --token T      bearer token (default $ANVIL_TOKEN)\n" \
    "  --json         print the answer as JSON, for scripts\n" \
    "  -h, --help     this help\n"

#endif
