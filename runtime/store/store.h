/*
 * runtime/store/store.h — the one module that owns SQL.
 *
 * SQLite in WAL mode. Schema changes are versioned migrations applied in
 * order at open (PRAGMA user_version records the last one applied), each in
 * its own transaction. No other file issues SQL; later capabilities add
 * functions here rather than preparing statements elsewhere.
 *
 * Ownership: anvil_store_open returns a handle the caller closes with
 * anvil_store_close. Grants filled by lookups are caller-owned
 * (anvil_token_grant_clear).
 */
#ifndef ANVIL_STORE_H
#define ANVIL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"

typedef struct anvil_store anvil_store;

/* Open (creating if needed) and migrate. On failure returns -1 and writes a
 * message to err. */
int anvil_store_open(const char *path, anvil_store **out, char *err, size_t errlen);
void anvil_store_close(anvil_store *s);

/* Schema version after migrations (number of migrations applied); -1 if it
 * cannot be read. */
int anvil_store_schema_version(anvil_store *s);
/* The schema version this binary migrates to (its number of migrations). */
int anvil_store_latest_version(void);
/* Why the last failing call on s failed; for the lookup/revoked callbacks,
 * which can only return -1. Never NULL. */
const char *anvil_store_errmsg(const anvil_store *s);

/* Whether the last failure on s was the database being unavailable rather
 * than a bug: the disk is full, an I/O error, the file cannot be opened,
 * another process holds the lock past the busy timeout, or it became
 * read-only. Such an episode is logged once, until a commit shows the
 * database is back (store_episode.h). */
bool anvil_store_unavailable(const anvil_store *s);

/* How long a client told StorageUnavailable should wait (retryAfterMs). */
#define ANVIL_STORE_RETRY_AFTER_MS 1000

/* Set err from the store's last failure, "<what>: <cause>" (just the cause
 * when what is NULL): StorageUnavailable (HTTP 503) with retryAfterMs when
 * the database is unavailable, else Internal. Returns -1. */
int anvil_store_error(const anvil_store *s, anvil_error *err, const char *what);

/* Store an issued token: only its sha256 is kept. g->token_id must be set.
 * Returns 0 or -1 (err filled). */
int anvil_store_token_insert(anvil_store *s, const anvil_token_grant *g,
                             const char *sha256_hex, int64_t created_at_ms,
                             char *err, size_t errlen);

/* anvil_token_lookup_fn over the store (ctx is the anvil_store *). */
int anvil_store_token_lookup(void *ctx, const char *sha256_hex, anvil_token_grant *out);

/* anvil_token_revoked_fn over the store (ctx is the anvil_store *). */
int anvil_store_token_revoked(void *ctx, const char *token_id, int64_t *revoked_at_ms);

/* Revoke a token id (issued or configured). *was_known is set when an issued
 * token with that id exists. Returns 0 or -1 (err filled). */
int anvil_store_token_revoke(anvil_store *s, const char *token_id, int64_t now_ms,
                             bool *was_known, char *err, size_t errlen);

#endif
