/*
 * runtime/cli/cli_approvals.h — `anvil approvals list|approve|deny`.
 */
#ifndef ANVIL_CLI_APPROVALS_H
#define ANVIL_CLI_APPROVALS_H

/* argv[0] is "approvals". Returns the exit status (cli_client.h). */
int anvil_cli_approvals(int argc, char **argv);

#endif
