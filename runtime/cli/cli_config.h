/*
 * runtime/cli/cli_config.h — `anvil check-config FILE`.
 *
 * argv[0] is the command word ("check-config"), as main() hands over
 * argv + 1; argv[1] is the file. Returns the process exit status: 0 valid
 * (summary on stdout), 1 problems (each as file:line:col: message on
 * stderr), 2 bad usage.
 */
#ifndef ANVIL_CLI_CONFIG_H
#define ANVIL_CLI_CONFIG_H

int anvil_cli_check_config(int argc, char **argv);

#endif
