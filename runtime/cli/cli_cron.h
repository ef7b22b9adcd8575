/*
 * runtime/cli/cli_cron.h — `anvil cron list|add|rm|run`.
 */
#ifndef ANVIL_CLI_CRON_H
#define ANVIL_CLI_CRON_H

/* argv[0] is "cron". Returns the exit status (cli_client.h). */
int anvil_cli_cron(int argc, char **argv);

#endif
