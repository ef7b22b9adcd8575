/*
 * runtime/cli/cli_runs.h — `anvil runs list|get|launch|cancel|resume|watch`.
 */
#ifndef ANVIL_CLI_RUNS_H
#define ANVIL_CLI_RUNS_H

/* argv[0] is "runs". Returns the exit status (cli_client.h). */
int anvil_cli_runs(int argc, char **argv);

/* `runs watch` (cli_watch.c); argv[0] is "watch". */
int anvil_cli_runs_watch(int argc, char **argv);

#endif
