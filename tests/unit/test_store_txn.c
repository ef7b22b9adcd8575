/*
 * tests/unit/test_store_txn.c — group commit (store_txn.h): changes share
 * one commit, nothing is visible to another connection before the flush,
 * one change can be undone without the others, the batch's callbacks run
 * in order once it is durable, a batch whose COMMIT fails is lost whole
 * and says so, and without group commit a commit is durable on return.
 *
 * The database lives in a mkdtemp directory removed at the end. A lost
 * batch is made with a deferred foreign key, which SQLite checks only at
 * COMMIT.
 */
#include "store.h"
#include "store_sql.h"
#include "store_txn.h"
#include "unit.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/anvil-test-txn-XXXXXX";
static char path[512];

/* How many rows `t` has, read by a connection of its own. */
static long long rows_seen_outside(const char *where)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t%s%s", where ? " WHERE " : "", where ? where : "");
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int opened;
static void on_open(void *ctx)
{
    (void)ctx;
    opened++;
}

typedef struct heard {
    char log[64];
} heard;

static void note_a(void *ctx, bool ok)
{
    strcat(((heard *)ctx)->log, ok ? "a+" : "a-");
}

static void note_b(void *ctx, bool ok)
{
    strcat(((heard *)ctx)->log, ok ? "b+" : "b-");
}

static int insert(anvil_store *s, const char *v)
{
    static const char sql[] = "INSERT INTO t(v) VALUES (?1)";
    return anvil_sql_exec(s, sql, "s", v) == 1 ? 0 : -1;
}

static void test_without_group_commit(anvil_store *s)
{
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(insert(s, "plain"), 0);
    CHECK_INT(rows_seen_outside(NULL), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(rows_seen_outside(NULL), 1);   /* durable on return */
    CHECK(!anvil_store_batch_open(s));
    CHECK_INT(anvil_store_when_durable(s, note_a, NULL), -1);   /* nothing to wait for */
}

static void test_batch(anvil_store *s)
{
    heard h = { "" };
    anvil_store_group_commit(s, on_open, NULL);
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(opened, 1);
    CHECK(anvil_store_batch_open(s));
    CHECK_INT(insert(s, "one"), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_when_durable(s, note_a, &h), 0);

    /* A second change, undone alone; a third kept. */
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(insert(s, "undone"), 0);
    anvil_store_rollback(s);
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(anvil_store_begin(s), 0);   /* nested: counts only */
    CHECK_INT(insert(s, "two"), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_when_durable(s, note_b, &h), 0);
    CHECK_INT(opened, 1);   /* one batch for all of them */

    /* Released, but not durable: nobody else sees them yet. */
    CHECK_INT(rows_seen_outside(NULL), 0);
    CHECK_STR(h.log, "");
    CHECK_INT(anvil_store_flush(s), 0);
    CHECK_STR(h.log, "a+b+");
    CHECK(!anvil_store_batch_open(s));
    CHECK_INT(rows_seen_outside(NULL), 2);
    CHECK_INT(rows_seen_outside("v = 'undone'"), 0);
    CHECK_INT(anvil_store_flush(s), 0);   /* nothing open: nothing to do */
}

static void test_lost_batch(anvil_store *s)
{
    heard h = { "" };
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(opened, 2);
    CHECK_INT(insert(s, "lost"), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_when_durable(s, note_a, &h), 0);
    /* A row whose parent does not exist: refused only at COMMIT. */
    CHECK_INT(anvil_store_begin(s), 0);
    static const char orphan[] = "INSERT INTO child(parent) VALUES (42)";
    CHECK_INT(anvil_sql_exec(s, orphan, NULL), 1);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_when_durable(s, note_b, &h), 0);
    CHECK_INT(anvil_store_flush(s), -1);
    CHECK_STR(h.log, "a-b-");
    CHECK(strstr(anvil_store_errmsg(s), "FOREIGN KEY") != NULL);
    CHECK(!anvil_store_batch_open(s));
    CHECK_INT(rows_seen_outside("v = 'lost'"), 0);

    /* The next batch works. */
    CHECK_INT(anvil_store_begin(s), 0);
    CHECK_INT(insert(s, "after"), 0);
    CHECK_INT(anvil_store_commit(s), 0);
    CHECK_INT(anvil_store_flush(s), 0);
    CHECK_INT(rows_seen_outside("v = 'after'"), 1);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/txn.db", tmpdir);
    anvil_store *s = NULL;
    char err[256];
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), 0);
    if (!s)
        return 1;
    static const char mk_t[] = "CREATE TABLE t(v TEXT)";
    static const char mk_parent[] = "CREATE TABLE parent(id INTEGER PRIMARY KEY)";
    static const char mk_child[] =
        "CREATE TABLE child(parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)";
    CHECK_INT(anvil_sql_exec(s, mk_t, NULL), 0);
    CHECK_INT(anvil_sql_exec(s, mk_parent, NULL), 0);
    CHECK_INT(anvil_sql_exec(s, mk_child, NULL), 0);
    test_without_group_commit(s);
    static const char clear[] = "DELETE FROM t";
    CHECK_INT(anvil_sql_exec(s, clear, NULL), 1);
    test_batch(s);
    test_lost_batch(s);
    anvil_store_close(s);
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
    CHECK_INT(rmdir(tmpdir), 0);
    UNIT_DONE();
}
