/*
 * runtime/cli/cli_rpc.h — `anvil rpc METHOD [JSON] [--url URL] [--token T]`.
 */
#ifndef ANVIL_CLI_RPC_H
#define ANVIL_CLI_RPC_H

/* argv[0] is "rpc". Prints the response frame; exit 0 when ok is true, 1 when
 * the call failed, 2 on bad usage, 3 when the server cannot be reached. */
int anvil_cli_rpc(int argc, char **argv);

#endif
