/*
 * tests/unit/test_store_walbuf.c — the VFS that gathers a commit's WAL
 * frames (store_walbuf.h): a commit is appended in one write, it is in the
 * file when COMMIT returns (another connection sees it; a process killed
 * right after COMMIT loses nothing), a write that fails fails the COMMIT,
 * a transaction that spilled frames and rolled back leaves nothing behind,
 * and a restarted WAL keeps working.
 *
 * Each case uses its own database in a mkdtemp directory removed at the
 * end; a writer that must die is a forked child.
 */
#include "store_walbuf.h"
#include "unit.h"

#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/anvil-test-walbuf-XXXXXX";

/* The database `name` (path[600]) and its WAL (wal[620], or NULL). */
static void db_path(char *path, char *wal, const char *name)
{
    snprintf(path, 600, "%s/%s.db", tmpdir, name);
    if (wal)
        snprintf(wal, 620, "%s-wal", path);
}

/* A connection through the VFS under test, as the store opens it. */
static sqlite3 *open_buffered(const char *path)
{
    sqlite3 *db = NULL;
    const char *vfs = anvil_store_walbuf_vfs();
    CHECK(vfs != NULL);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     " CREATE TABLE IF NOT EXISTS t(v TEXT)", NULL, NULL, NULL);
    return db;
}

/* A single integer from a connection of its own, with SQLite's default VFS. */
static long long query_outside(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static bool intact(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        ok = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

/* rows x 400 bytes in one transaction; SQLite's result code. */
static int insert_rows(sqlite3 *db, int rows)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
             " INSERT INTO t SELECT hex(randomblob(200)) FROM n; COMMIT",
             rows);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static long long self_write_calls(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "syscw:", 6))
            n = atoll(line + 6);
    if (f)
        fclose(f);
    return n;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_one_write_per_commit(void)
{
    char path[600], wal[620];
    db_path(path, wal, "one");
    sqlite3 *db = open_buffered(path);
    if (!db)
        return;
    long long wal0 = file_size(wal), calls0 = self_write_calls();
    CHECK_INT(insert_rows(db, 100), SQLITE_OK);
    long long calls = self_write_calls() - calls0;
    /* 100 rows of 400 bytes are ten or more pages, each a frame. */
    long long frames = (file_size(wal) - wal0) / (4096 + 24);
    CHECK(frames >= 10);
    CHECK(calls >= 1 && calls <= 2);
    /* In the file when COMMIT returned: another connection sees it. */
    CHECK_INT(query_outside(path, "SELECT count(*) FROM t"), 100);
    sqlite3_close(db);
    CHECK(intact(path));
}

static void test_killed_after_commit(void)
{
    char path[600];
    db_path(path, NULL, "killed");
    pid_t pid = fork();
    if (pid == 0) {
        sqlite3 *db = open_buffered(path);
        int rc = db ? insert_rows(db, 50) : SQLITE_ERROR;
        /* Dead before any close could write anything. */
        kill(getpid(), SIGKILL);
        _exit(rc == SQLITE_OK ? 0 : 1);
    }
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_INT(query_outside(path, "SELECT count(*) FROM t"), 50);
    CHECK(intact(path));
}

static void test_failed_write_fails_commit(void)
{
    char path[600], wal[620];
    db_path(path, wal, "full");
    sqlite3 *db = open_buffered(path);
    if (!db)
        return;
    CHECK_INT(insert_rows(db, 10), SQLITE_OK);
    sqlite3_close(db);
    pid_t pid = fork();
    if (pid == 0) {
        /* A file-size limit just past the WAL: the commit's write fails
         * as on a full disk (EFBIG, not a signal). */
        signal(SIGXFSZ, SIG_IGN);
        sqlite3 *cdb = open_buffered(path);
        long long limit = file_size(wal) + 8192;
        struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };
        if (!cdb || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        int rc = insert_rows(cdb, 2000);
        /* The connection goes on after the failure, without the rows. */
        sqlite3_stmt *st = NULL;
        long long n = -1;
        if (sqlite3_prepare_v2(cdb, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(cdb);
        _exit(rc == SQLITE_OK ? 1 : n == 10 ? 0 : 2);
    }
    int status = 0;
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
    CHECK_INT(query_outside(path, "SELECT count(*) FROM t"), 10);
    CHECK(intact(path));
}

static void test_spilled_then_rolled_back(void)
{
    char path[600];
    db_path(path, NULL, "spill");
    sqlite3 *db = open_buffered(path);
    if (!db)
        return;
    /* A 10-page cache: the big transaction spills frames to the WAL. */
    CHECK_INT(sqlite3_exec(db, "PRAGMA cache_size=10", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                           " WHERE i < 3000) INSERT INTO t SELECT hex(randomblob(200)) FROM n",
                           NULL, NULL, NULL),
              SQLITE_OK);
    /* Reading its own spilled pages back goes through the WAL. */
    sqlite3_stmt *st = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_INT(sqlite3_column_int64(st, 0), 3000);
    sqlite3_finalize(st);
    CHECK_INT(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(insert_rows(db, 3), SQLITE_OK);
    CHECK_INT(query_outside(path, "SELECT count(*) FROM t"), 3);
    /* A restarted WAL: its header goes through, the frames after it gather. */
    CHECK_INT(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(insert_rows(db, 4), SQLITE_OK);
    CHECK_INT(query_outside(path, "SELECT count(*) FROM t"), 7);
    sqlite3_close(db);
    CHECK(intact(path));
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_one_write_per_commit();
    test_killed_after_commit();
    test_failed_write_fails_commit();
    test_spilled_then_rolled_back();
    static const char *const names[] = { "one", "killed", "full", "spill" };
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++) {
            char p[700];
            snprintf(p, sizeof p, "%s/%s.db%s", tmpdir, names[i], suffixes[j]);
            unlink(p);
        }
    CHECK_INT(rmdir(tmpdir), 0);
    UNIT_DONE();
}
