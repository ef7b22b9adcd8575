/*
 * runtime/cli/cli_signal.h — `anvil signal RUN_ID CORRELATION_KEY`.
 */
#ifndef ANVIL_CLI_SIGNAL_H
#define ANVIL_CLI_SIGNAL_H

/* argv[0] is "signal". Returns the exit status (cli_client.h). */
int anvil_cli_signal(int argc, char **argv);

#endif
