/*
 * runtime/cli/cli_token.h — `anvil token issue|revoke`.
 *
 * argv[0] is "issue" or "revoke" (main() hands over argv + 2). Returns the
 * process exit status: 0 done, 1 failure (config, database, randomness),
 * 2 bad usage.
 */
#ifndef ANVIL_CLI_TOKEN_H
#define ANVIL_CLI_TOKEN_H

int anvil_cli_token(int argc, char **argv);

#endif
