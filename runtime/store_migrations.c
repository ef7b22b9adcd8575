/*
 * runtime/store_migrations.c — the schema, as an append-only list of SQL.
 *
 * store.c applies every entry at or beyond the database's user_version, each
 * in its own transaction. To change the schema, append one string; never
 * edit one that has shipped, since databases out there already ran it.
 */
#include "store_migrations.h"

const char *const anvil_store_migrations[] = {
    /* 1: issued API tokens (only their sha256 is kept) and revocations,
     * which also cover token ids that live in the config file. */
    "CREATE TABLE tokens("
    "  token_id TEXT PRIMARY KEY,"
    "  token_sha256 TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  scopes_json TEXT NOT NULL,"
    "  user_id TEXT,"
    "  created_at_ms INTEGER NOT NULL,"
    "  expires_at_ms INTEGER,"
    "  revoked_at_ms INTEGER);"
    "CREATE TABLE token_revocations("
    "  token_id TEXT PRIMARY KEY,"
    "  revoked_at_ms INTEGER NOT NULL);",
};

const size_t anvil_store_n_migrations =
    sizeof anvil_store_migrations / sizeof anvil_store_migrations[0];
