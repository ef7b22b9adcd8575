/*
 * tests/unit/test_store.c — the SQLite store: WAL and schema version as seen
 * by an independent connection, idempotent reopen, migration rollback,
 * refusing a newer schema, the token insert/lookup/revoke functions, the
 * readers the inspection methods use (nodes, attempts, frame headers), and
 * webhook deliveries (recorded answers, their window and pruning, signals
 * keyed by a delivery).
 *
 * Every database lives in a mkdtemp directory that is removed at the end.
 */
#include "store.h"
#include "store_runs.h"
#include "store_webhooks.h"
#include "unit.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/anvil-test-store-XXXXXX";

static const char *db_path(const char *name)
{
    static char buf[2][512];
    static int next;
    char *b = buf[next++ % 2];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void remove_db(const char *name)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[600];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", db_path(name), suffixes[i]);
        unlink(p);
    }
}

/* One text value from an independent connection, so the test does not
 * trust the store's own view of the file. */
static void raw_query(const char *path, const char *sql, char *out, size_t outlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = 0;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_open_and_reopen(void)
{
    const char *path = db_path("a.db");
    char err[256] = "", buf[64];
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), 0);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "  open: %s\n", err);
        return;
    }
    CHECK(anvil_store_latest_version() >= 1);
    CHECK_INT(anvil_store_schema_version(s), anvil_store_latest_version());

    raw_query(path, "PRAGMA journal_mode", buf, sizeof buf);
    CHECK_STR(buf, "wal");
    raw_query(path, "PRAGMA user_version", buf, sizeof buf);
    CHECK_INT(atoi(buf), anvil_store_latest_version());
    raw_query(path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name LIKE 'token%' ORDER BY name)", buf, sizeof buf);
    CHECK_STR(buf, "token_revocations,tokens");

    anvil_token_grant g = {.token_id = "keep", .role = "operator"};
    CHECK_INT(anvil_store_token_insert(s, &g, "aa", 1, err, sizeof err), 0);
    anvil_store_close(s);

    /* Reopening applies nothing and keeps the data. */
    s = NULL;
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), 0);
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(anvil_store_schema_version(s), anvil_store_latest_version());
        anvil_token_grant out;
        CHECK_INT(anvil_store_token_lookup(s, "aa", &out), 1);
        CHECK_STR(out.token_id, "keep");
        anvil_token_grant_clear(&out);
        anvil_store_close(s);
    }
    remove_db("a.db");
}

static void test_memory_and_bad_path(void)
{
    char err[256] = "";
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(":memory:", &s, err, sizeof err), 0);
    if (s) {
        CHECK_INT(anvil_store_schema_version(s), anvil_store_latest_version());
        anvil_store_close(s);
    }
    s = (anvil_store *)1;
    CHECK_INT(anvil_store_open(db_path("missing-dir/x.db"), &s, err, sizeof err), -1);
    CHECK(s == NULL);
    CHECK(strstr(err, "cannot open database") != NULL);
}

static void test_newer_schema_rejected(void)
{
    const char *path = db_path("new.db");
    char sql[64], err[256] = "";
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", anvil_store_latest_version() + 1);
    raw_exec(path, sql);
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), -1);
    CHECK(s == NULL);
    CHECK(strstr(err, "newer than this anvil supports") != NULL);
    remove_db("new.db");
}

static void test_failed_migration_rolls_back(void)
{
    /* A stray token_revocations table makes migration 1 fail at its second
     * statement, after `tokens` was created: the rollback must undo that. */
    const char *path = db_path("broken.db");
    char err[256] = "", buf[64];
    raw_exec(path, "CREATE TABLE token_revocations(x)");
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), -1);
    CHECK(s == NULL);
    CHECK(strstr(err, "migration 1 failed") != NULL);
    CHECK(strstr(err, "already exists") != NULL);
    raw_query(path, "PRAGMA user_version", buf, sizeof buf);
    CHECK_STR(buf, "0");
    raw_query(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tokens'", buf, sizeof buf);
    CHECK_STR(buf, "0");
    remove_db("broken.db");
}

static void test_tokens(void)
{
    const char *path = db_path("tokens.db");
    char err[256] = "";
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), 0);
    if (!s)
        return;

    char *scopes[] = {"run:read", "run:write"};
    anvil_token_grant g = {
        .token_id = "tok1", .role = "operator", .scopes = scopes, .n_scopes = 2,
        .user_id = "user:1", .has_expires_at = true, .expires_at_ms = 5000,
    };
    CHECK_INT(anvil_store_token_insert(s, &g, "sha-one", 1000, err, sizeof err), 0);
    anvil_token_grant bare = {.token_id = "tok2", .role = "viewer"};
    CHECK_INT(anvil_store_token_insert(s, &bare, "sha-two", 1000, err, sizeof err), 0);

    /* Same id or same hash again is refused with a message. */
    anvil_token_grant dup = {.token_id = "tok1", .role = "x"};
    CHECK_INT(anvil_store_token_insert(s, &dup, "sha-three", 1, err, sizeof err), -1);
    CHECK(strstr(err, "\"tok1\" already exists") != NULL);
    dup.token_id = "tok3";
    CHECK_INT(anvil_store_token_insert(s, &dup, "sha-one", 1, err, sizeof err), -1);
    CHECK(strstr(err, "already exists") != NULL);
    anvil_token_grant no_id = {.role = "x"};
    CHECK_INT(anvil_store_token_insert(s, &no_id, "sha-four", 1, err, sizeof err), -1);

    anvil_token_grant out;
    CHECK_INT(anvil_store_token_lookup(s, "sha-one", &out), 1);
    CHECK(out.token == NULL);
    CHECK_STR(out.token_id, "tok1");
    CHECK_STR(out.role, "operator");
    CHECK_INT(out.n_scopes, 2);
    if (out.n_scopes == 2) {
        CHECK_STR(out.scopes[0], "run:read");
        CHECK_STR(out.scopes[1], "run:write");
    }
    CHECK_STR(out.user_id, "user:1");
    CHECK(out.has_expires_at);
    CHECK_INT(out.expires_at_ms, 5000);
    CHECK(!out.has_revoked_at);
    anvil_token_grant_clear(&out);

    CHECK_INT(anvil_store_token_lookup(s, "sha-two", &out), 1);
    CHECK_STR(out.token_id, "tok2");
    CHECK_INT(out.n_scopes, 0);
    CHECK(out.user_id == NULL);
    CHECK(!out.has_expires_at);
    anvil_token_grant_clear(&out);

    CHECK_INT(anvil_store_token_lookup(s, "no-such-sha", &out), 0);
    anvil_token_grant_clear(&out);

    int64_t at = -1;
    CHECK_INT(anvil_store_token_revoked(s, "tok1", &at), 0);
    CHECK_INT(at, -1);

    /* Revoking an issued token: flagged as known, visible both ways. */
    bool known = false;
    CHECK_INT(anvil_store_token_revoke(s, "tok1", 7000, &known, err, sizeof err), 0);
    CHECK(known);
    CHECK_INT(anvil_store_token_revoked(s, "tok1", &at), 1);
    CHECK_INT(at, 7000);
    CHECK_INT(anvil_store_token_lookup(s, "sha-one", &out), 1);
    CHECK(out.has_revoked_at);
    CHECK_INT(out.revoked_at_ms, 7000);
    anvil_token_grant_clear(&out);

    /* Revoking again keeps the first time. */
    CHECK_INT(anvil_store_token_revoke(s, "tok1", 9000, &known, err, sizeof err), 0);
    CHECK(known);
    CHECK_INT(anvil_store_token_revoked(s, "tok1", &at), 1);
    CHECK_INT(at, 7000);

    /* A configured token's id has no tokens row but can still be revoked. */
    CHECK_INT(anvil_store_token_revoke(s, "from-config", 8000, &known, err, sizeof err), 0);
    CHECK(!known);
    CHECK_INT(anvil_store_token_revoked(s, "from-config", &at), 1);
    CHECK_INT(at, 8000);
    CHECK_INT(anvil_store_token_revoked(s, "tok2", &at), 0);

    /* An issued row that carries revoked_at_ms itself also counts. */
    anvil_token_grant pre = {.token_id = "tok5", .role = "r", .has_revoked_at = true,
                             .revoked_at_ms = 4242};
    CHECK_INT(anvil_store_token_insert(s, &pre, "sha-five", 1, err, sizeof err), 0);
    CHECK_INT(anvil_store_token_revoked(s, "tok5", &at), 1);
    CHECK_INT(at, 4242);
    CHECK_INT(anvil_store_token_lookup(s, "sha-five", &out), 1);
    CHECK(out.has_revoked_at);
    CHECK_INT(out.revoked_at_ms, 4242);
    anvil_token_grant_clear(&out);

    /* The cached statements survive many uses. */
    for (int i = 0; i < 100; i++) {
        CHECK_INT(anvil_store_token_lookup(s, "sha-two", &out), 1);
        anvil_token_grant_clear(&out);
    }
    anvil_store_close(s);

    char buf[64];
    raw_query(path, "SELECT scopes_json FROM tokens WHERE token_id = 'tok1'", buf, sizeof buf);
    CHECK_STR(buf, "[\"run:read\",\"run:write\"]");
    raw_query(path, "SELECT created_at_ms FROM tokens WHERE token_id = 'tok1'", buf, sizeof buf);
    CHECK_STR(buf, "1000");
    remove_db("tokens.db");
}

/* What the attempt and frame callbacks saw, as one line per row. */
typedef struct seen {
    char text[1024];
    int rows, stop_after;
} seen;

static int see_attempt(void *ctx, const anvil_attempt_record *a)
{
    seen *x = ctx;
    size_t n = strlen(x->text);
    snprintf(x->text + n, sizeof x->text - n, "%s/%lld/%lld %s %lld %lld %lld %s %s %s;", a->node_id,
             (long long)a->iteration, (long long)a->attempt, a->state, (long long)a->started_at_ms,
             (long long)a->finished_at_ms, (long long)a->exit_code, a->error ? a->error : "-",
             a->out ? "OUT" : "-", a->err ? "ERR" : "-");
    return ++x->rows == x->stop_after;
}

static int see_frame(void *ctx, const anvil_frame_record *fr)
{
    seen *x = ctx;
    size_t n = strlen(x->text);
    snprintf(x->text + n, sizeof x->text - n, "%lld@%lld%s;", (long long)fr->frame_no,
             (long long)fr->created_at_ms, fr->tree_json ? " TREE" : "");
    return ++x->rows == x->stop_after;
}

static int see_delivery_signal(void *ctx, const anvil_delivery_signal *sig)
{
    seen *x = ctx;
    size_t n = strlen(x->text);
    snprintf(x->text + n, sizeof x->text - n, "%s#%lld %s %s @%lld;", sig->run_id,
             (long long)sig->seq, sig->signal_name ? sig->signal_name : "-",
             sig->correlation_id ? sig->correlation_id : "-", (long long)sig->received_at_ms);
    return ++x->rows == x->stop_after;
}

static void test_inspection_readers(void)
{
    char err[256] = "";
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(":memory:", &s, err, sizeof err), 0);
    if (!s)
        return;
    anvil_run_record r = {
        .run_id = "r1", .workflow = "wf", .status = "running", .input_json = "{}",
        .options_json = "{}", .triggered_by = "gateway", .role = "operator", .scopes_json = "[]",
        .created_at_ms = 1, .updated_at_ms = 1, .finished_at_ms = -1,
    };
    CHECK_INT(anvil_store_run_insert(s, &r), 0);
    anvil_node_record build = { .node_id = "build", .kind = "task", .state = "finished",
                                .started_at_ms = -1, .finished_at_ms = -1 };
    anvil_node_record gate = { .node_id = "gate", .kind = "approval", .state = "waiting",
                               .started_at_ms = -1, .finished_at_ms = -1 };
    CHECK_INT(anvil_store_node_put(s, "r1", &build), 0);
    CHECK_INT(anvil_store_node_put(s, "r1", &gate), 0);

    CHECK_INT(anvil_store_node_exists(s, "r1", "build", -1), 1);
    CHECK_INT(anvil_store_node_exists(s, "r1", "build", 0), 1);
    CHECK_INT(anvil_store_node_exists(s, "r1", "build", 1), 0);
    CHECK_INT(anvil_store_node_exists(s, "r1", "nope", -1), 0);
    CHECK_INT(anvil_store_node_exists(s, "r2", "build", -1), 0);

    /* attempts out of start order, one still running */
    CHECK_INT(anvil_store_attempt_start(s, "r1", "build", 0, 2, 300, 5), 0);
    CHECK_INT(anvil_store_attempt_start(s, "r1", "build", 0, 1, 100, 2), 0);
    CHECK_INT(anvil_store_attempt_start(s, "r1", "alpha", 0, 1, 300, 4), 0);
    CHECK_INT(anvil_store_attempt_finish(s, "r1", "build", 0, 1, "failed", 150, 2, "exited with status 2",
                                         "out1", "err1", NULL), 0);
    CHECK_INT(anvil_store_attempt_finish(s, "r1", "alpha", 0, 1, "succeeded", 320, -1, NULL, NULL, NULL, NULL), 0);

    seen x = { "", 0, 0 };
    CHECK_INT(anvil_store_attempts_list(s, "r1", NULL, -1, 0, see_attempt, &x), 3);
    /* by start time, then node id; output never read by the listing */
    CHECK_STR(x.text, "build/0/1 failed 100 150 2 exited with status 2 - -;"
                      "alpha/0/1 succeeded 300 320 -1 - - -;"
                      "build/0/2 running 300 -1 -1 - - -;");
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_attempts_list(s, "r1", "build", 0, 0, see_attempt, &x), 2);
    CHECK(strncmp(x.text, "build/0/1 ", 10) == 0 && strstr(x.text, "build/0/2 ") != NULL);
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_attempts_list(s, "r1", NULL, -1, 2, see_attempt, &x), 2);
    CHECK_INT(x.rows, 2);
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_attempts_list(s, "r1", "build", 1, 0, see_attempt, &x), 0);
    CHECK_INT(anvil_store_attempts_list(s, "r1", "gate", -1, 0, see_attempt, &x), 0);
    x = (seen){ "", 0, 1 };   /* the callback stops the walk */
    CHECK_INT(anvil_store_attempts_list(s, "r1", NULL, -1, 0, see_attempt, &x), 1);

    anvil_attempt_record a;
    CHECK_INT(anvil_store_attempt_get(s, "r1", "build", 0, 1, &a), 1);
    CHECK_STR(a.node_id, "build");
    CHECK_STR(a.state, "failed");
    CHECK_STR(a.error, "exited with status 2");
    CHECK_STR(a.out, "out1");
    CHECK_STR(a.err, "err1");
    CHECK_INT(a.exit_code, 2);
    CHECK_INT(a.finished_at_ms, 150);
    anvil_attempt_record_clear(&a);
    CHECK_INT(anvil_store_attempt_get(s, "r1", "build", 0, 2, &a), 1);
    CHECK(a.out == NULL && a.err == NULL && a.error == NULL);
    CHECK_INT(a.exit_code, -1);
    CHECK_INT(a.finished_at_ms, -1);
    anvil_attempt_record_clear(&a);
    CHECK_INT(anvil_store_attempt_get(s, "r1", "build", 0, 3, &a), 0);
    CHECK(a.node_id == NULL);

    for (int i = 1; i <= 5; i++)
        CHECK_INT(anvil_store_frame_insert(s, "r1", i, 1000 + i, "{\"frameNo\":0}", i, NULL), 0);
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_frame_headers(s, "r1", 2, 2, see_frame, &x), 2);
    CHECK_STR(x.text, "3@1003;4@1004;");
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_frame_headers(s, "r1", 0, 0, see_frame, &x), 5);
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_frame_headers(s, "r1", 5, 10, see_frame, &x), 0);
    CHECK_INT(anvil_store_frame_headers(s, "r2", 0, 10, see_frame, &x), 0);
    anvil_store_close(s);
}

static void insert_run(anvil_store *s, const char *run_id, const char *workflow)
{
    anvil_run_record r = {
        .run_id = (char *)run_id, .workflow = (char *)workflow, .status = "running",
        .input_json = "{}", .options_json = "{}", .triggered_by = "gateway", .role = "operator",
        .scopes_json = "[]", .created_at_ms = 1, .updated_at_ms = 1, .finished_at_ms = -1,
    };
    CHECK_INT(anvil_store_run_insert(s, &r), 0);
}

static anvil_webhook_delivery answer(int64_t at_ms, const char *reply)
{
    return (anvil_webhook_delivery){ .received_at_ms = at_ms, .body_sha256 = "ab12",
                                     .status = 200, .reply_json = (char *)reply };
}

static void test_webhook_deliveries(void)
{
    char err[256] = "";
    anvil_store *s = NULL;
    CHECK_INT(anvil_store_open(":memory:", &s, err, sizeof err), 0);
    if (!s)
        return;
    anvil_webhook_delivery d = answer(1000, "{\"ok\":true}");
    CHECK_INT(anvil_store_webhook_delivery_put(s, "wf", "guid-1", &d), 0);
    anvil_webhook_delivery got;
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-1", 0, &got), 1);
    CHECK_INT(got.status, 200);
    CHECK_INT(got.received_at_ms, 1000);
    CHECK_STR(got.body_sha256, "ab12");
    CHECK_STR(got.reply_json, "{\"ok\":true}");
    anvil_webhook_delivery_clear(&got);
    CHECK(got.reply_json == NULL);
    /* keyed by workflow too: GitHub shares one delivery GUID between hooks */
    CHECK_INT(anvil_store_webhook_delivery_get(s, "other", "guid-1", 0, &got), 0);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-2", 0, &got), 0);
    /* at the window's edge it counts, past it it does not */
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-1", 1000, &got), 1);
    anvil_webhook_delivery_clear(&got);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-1", 1001, &got), 0);
    /* a row past the window is replaced by the next answer */
    d = answer(5000, "{\"second\":1}");
    CHECK_INT(anvil_store_webhook_delivery_put(s, "wf", "guid-1", &d), 0);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-1", 4000, &got), 1);
    CHECK_STR(got.reply_json, "{\"second\":1}");
    anvil_webhook_delivery_clear(&got);

    /* pruning: oldest first, at most `limit` a call, nothing in the window */
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "old-%d", i);
        d = answer(100 + i, "{}");
        CHECK_INT(anvil_store_webhook_delivery_put(s, "wf", id, &d), 0);
    }
    CHECK_INT(anvil_store_webhook_deliveries_prune(s, 5000, 4), 4);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "old-3", 0, &got), 0);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "old-4", 0, &got), 1);
    anvil_webhook_delivery_clear(&got);
    CHECK_INT(anvil_store_webhook_deliveries_prune(s, 5000, 100), 6);
    CHECK_INT(anvil_store_webhook_deliveries_prune(s, 5000, 100), 0);
    CHECK_INT(anvil_store_webhook_delivery_get(s, "wf", "guid-1", 0, &got), 1);
    anvil_webhook_delivery_clear(&got);

    /* signals keyed by a delivery: one per run and key */
    insert_run(s, "r1", "wf");
    insert_run(s, "r2", "wf");
    insert_run(s, "r3", "elsewhere");
    int64_t seq = 0, at = 0;
    CHECK_INT(anvil_store_signal_insert(s, "r1", "ping", "", NULL, 10, "u", NULL, &seq), 0);
    CHECK_INT(seq, 1);
    CHECK_INT(anvil_store_signal_insert(s, "r1", "ping", "7", "{}", 20, "u", "webhook:g", &seq), 0);
    CHECK_INT(seq, 2);
    CHECK_INT(anvil_store_signal_insert(s, "r1", "ping", "7", "{}", 30, "u", "webhook:g", &seq), -1);
    CHECK_INT(anvil_store_signal_insert(s, "r2", "ping", "7", NULL, 15, "u", "webhook:g", &seq), 0);
    CHECK_INT(anvil_store_signal_insert(s, "r3", "ping", "7", NULL, 16, "u", "webhook:g", &seq), 0);
    CHECK_INT(anvil_store_signal_by_key(s, "r1", "webhook:g", &seq, &at), 1);
    CHECK_INT(seq, 2);
    CHECK_INT(at, 20);
    CHECK_INT(anvil_store_signal_by_key(s, "r1", "webhook:h", &seq, &at), 0);
    CHECK_INT(anvil_store_signal_by_key(s, "r9", "webhook:g", &seq, &at), 0);
    seen x = { "", 0, 0 };
    CHECK_INT(anvil_store_signals_by_delivery(s, "wf", "webhook:g", see_delivery_signal, &x), 2);
    CHECK_STR(x.text, "r2#1 ping 7 @15;r1#2 ping 7 @20;");
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_signals_by_delivery(s, "elsewhere", "webhook:g", see_delivery_signal, &x), 1);
    CHECK_STR(x.text, "r3#1 ping 7 @16;");
    x = (seen){ "", 0, 0 };
    CHECK_INT(anvil_store_signals_by_delivery(s, "wf", "webhook:none", see_delivery_signal, &x), 0);
    anvil_store_close(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open_and_reopen();
    test_memory_and_bad_path();
    test_newer_schema_rejected();
    test_failed_migration_rolls_back();
    test_tokens();
    test_inspection_readers();
    test_webhook_deliveries();
    CHECK_INT(rmdir(tmpdir), 0);
    UNIT_DONE();
}
