/*
 * runtime/store/store_db.h — the store handle and its connection
 * primitives, shared by the store's own files only (no other layer
 * includes it).
 *
 * Hot queries are prepared once and cached in the handle: each gets a slot
 * here, is prepared on first use by anvil_store_stmt, and is finalized by
 * anvil_store_close. Adding a cached query is adding a slot.
 */
#ifndef ANVIL_STORE_DB_H
#define ANVIL_STORE_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_episode.h"

/* The same typedef as store.h's (C11 allows the repeat): this header stays
 * below store.c, so store.c can use it without a circle. */
typedef struct anvil_store anvil_store;

enum anvil_store_stmt_slot {
    ANVIL_STMT_TOKEN_LOOKUP,
    ANVIL_STMT_TOKEN_REVOKED,
    ANVIL_STMT_DATA_VERSION,
    ANVIL_STMT_REVOKED_ALL,
    ANVIL_STMT_COUNT
};

struct anvil_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ANVIL_STMT_COUNT];
    char errmsg[256];   /* last failure of a call that has no err buffer */

    /* Every revoked token id, sorted, so the per-request revocation check is
     * a binary search. Reloaded when PRAGMA data_version shows a commit by
     * another connection (`anvil token revoke` runs as its own process) or
     * after this connection revokes. */
    struct anvil_revocation { char *token_id; int64_t at_ms; } *revoked;
    size_t n_revoked;
    bool revoked_loaded;
    int64_t revoked_data_version;

    /* Statements of store_sql.c, prepared once per SQL literal. */
    struct anvil_sql_cached { const char *sql; sqlite3_stmt *st; } sql_cache[96];
    size_t n_sql_cache;
    int txn_depth;        /* anvil_store_begin nesting */
    /* Group commit (store_txn.h). */
    void (*batch_opened)(void *ctx);   /* NULL: every change commits alone */
    void *batch_ctx;
    bool batch;           /* a BEGIN is open, holding changes */
    bool batch_lost;      /* SQLite rolled the batch back on its own */
    struct anvil_store_waiter *waiters, **waiters_tail;
    /* Called by anvil_store_fail: store_txn.c checks whether SQLite rolled
     * the batch back by itself (a hook, so this file does not call up
     * into the one that calls it). NULL without group commit. */
    void (*after_failure)(anvil_store *s);
    int fail_rc;          /* SQLite's extended code at the last failure */
    anvil_store_episode episode;  /* the database is unavailable: logged once,
                                     until a commit shows it is back */
};

/* Drop the revocation cache (after this connection changes revocations). */
/* Drop the cached revocation list; the next check reloads it. */
void anvil_store_revocations_invalidate(anvil_store *s);

/* Finalize the statements cached by store_sql.c. */
void anvil_sql_cache_clear(anvil_store *s);

/* Finalize every cached statement, drop the caches, close the connection
 * and free the handle. NULL is ignored. */
void anvil_store_db_free(anvil_store *s);

/* Why the last failing call on s failed, and whether that was the
 * database being unavailable (store.h's anvil_store_errmsg and
 * anvil_store_unavailable). */
const char *anvil_store_errmsg(const anvil_store *s);
bool anvil_store_unavailable(const anvil_store *s);

/* Every store call starts with no failure recorded, so an error reported
 * later never borrows the message or code of an older one. Outside a
 * transaction it also starts counting the pages the next write writes
 * (how large a write failed or succeeded: store_episode.h). */
void anvil_store_clear_failure(anvil_store *s);

/* A commit succeeded: the last failure is over, and the episode of
 * unavailability ends when this commit shows that what failed would now
 * succeed (store_episode.h); its end is logged. */
void anvil_store_recovered(anvil_store *s);

/* The cached statement for slot, prepared from sql on first use; reset and
 * unbound before it is handed out. NULL on failure (s->errmsg set). */
sqlite3_stmt *anvil_store_stmt(anvil_store *s, enum anvil_store_stmt_slot slot,
                               const char *sql);

/* printf into err (when err/errlen allow) and also into s->errmsg; returns -1
 * so callers can `return anvil_store_fail(...)`. s may be NULL. */
int anvil_store_fail(anvil_store *s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Run SQL text that returns no rows (may hold several statements). */
int anvil_store_exec(anvil_store *s, const char *sql, char *err, size_t errlen);

/* ROLLBACK, keeping the last failure's message and code (the reason the
 * transaction is being abandoned). */
void anvil_store_rollback_quietly(anvil_store *s);

#endif
