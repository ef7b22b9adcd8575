/*
 * runtime/store/store_sql.h — the store's small SQL toolkit: bind by format
 * string, run, and read rows, with statements prepared once per SQL text.
 *
 * Shared by store*.c only; nothing outside the store issues SQL. The format
 * names one argument per placeholder, in order:
 *   's' const char *  (NULL binds SQL NULL)
 *   'i' int64_t
 *   'n' an int64_t that binds NULL when negative (optional timestamps)
 * The statement cache is keyed by the SQL string's address, so pass string
 * literals (or other storage that lives as long as the store).
 */
#ifndef ANVIL_STORE_SQL_H
#define ANVIL_STORE_SQL_H

#include <sqlite3.h>
#include <stdint.h>

#include "store_db.h"

/* Run a statement that returns no rows. Returns sqlite3_changes() (>= 0) or
 * -1 with s->errmsg set. */
int anvil_sql_exec(anvil_store *s, const char *sql, const char *fmt, ...);

/* Run a query; row() is called per row with the stepped statement and may
 * return non-zero to stop early. Returns the number of rows seen, or -1. */
typedef int (*anvil_sql_row_fn)(void *ctx, sqlite3_stmt *st);
int anvil_sql_query(anvil_store *s, const char *sql, anvil_sql_row_fn row, void *ctx,
                    const char *fmt, ...);

/* Column helpers: a malloc'd copy of a text column (NULL for SQL NULL). */
char *anvil_sql_text(sqlite3_stmt *st, int col);
/* int64 column, or `dflt` when NULL. */
int64_t anvil_sql_int(sqlite3_stmt *st, int col, int64_t dflt);

#endif
