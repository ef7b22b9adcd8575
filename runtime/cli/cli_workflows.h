/*
 * runtime/cli/cli_workflows.h — `anvil workflows`.
 */
#ifndef ANVIL_CLI_WORKFLOWS_H
#define ANVIL_CLI_WORKFLOWS_H

/* argv[0] is "workflows". Returns the exit status (cli_client.h). */
int anvil_cli_workflows(int argc, char **argv);

#endif
