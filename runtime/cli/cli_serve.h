/*
 * runtime/cli/cli_serve.h — `anvil serve`.
 */
#ifndef ANVIL_CLI_SERVE_H
#define ANVIL_CLI_SERVE_H

/* argv[0] is "serve". Returns the process exit status. */
int anvil_cli_serve(int argc, char **argv);

#endif
