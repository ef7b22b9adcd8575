/*
 * runtime/cli/cli_table.h — aligned text tables for people, and the one
 * way the CLI shows a time (UTC, ISO 8601, to the second).
 *
 * Ownership: the table copies every cell; anvil_cli_table_free releases them.
 */
#ifndef ANVIL_CLI_TABLE_H
#define ANVIL_CLI_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ANVIL_CLI_TABLE_MAX_COLS 8

typedef struct anvil_cli_table {
    size_t ncols;
    const char *head[ANVIL_CLI_TABLE_MAX_COLS];
    char **cells;          /* nrows * ncols */
    size_t nrows, cap;
    int failed;            /* out of memory on some add */
} anvil_cli_table;

/* head: ncols column titles (static strings). */
void anvil_cli_table_init(anvil_cli_table *t, size_t ncols, const char *const *head);
/* Add one row of ncols cells (NULL prints "-"). */
void anvil_cli_table_add(anvil_cli_table *t, const char *const *cells);
/* Print the header and rows, or `empty` alone when there are no rows.
 * Returns 0, or -1 when a row could not be stored. */
int anvil_cli_table_print(const anvil_cli_table *t, FILE *out, const char *empty);
void anvil_cli_table_free(anvil_cli_table *t);

/* "2026-12-03T23:30:20Z", or "-" for ms <= 0. */
const char *anvil_cli_time(int64_t ms, char buf[32]);

#endif
