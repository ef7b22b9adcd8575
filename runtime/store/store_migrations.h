/*
 * runtime/store/store_migrations.h — the ordered schema migrations (store*.c only).
 *
 * Migration i (0-based) takes the schema from user_version i to i + 1.
 * Released migrations are never edited; a schema change is a new entry.
 */
#ifndef ANVIL_STORE_MIGRATIONS_H
#define ANVIL_STORE_MIGRATIONS_H

#include <stddef.h>

extern const char *const anvil_store_migrations[];
extern const size_t anvil_store_n_migrations;

#endif
