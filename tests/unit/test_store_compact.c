/*
 * tests/unit/test_store_compact.c — frames and event payloads are stored
 * without the members their row's key holds, and read back byte for byte:
 * the pure functions (what is compacted, what is left as given), then
 * through the store, with the stored bytes checked by a connection of the
 * test's own and rows written before migration 11 still read as they were.
 */
#include "store.h"
#include "store_compact.h"
#include "store_runs.h"
#include "store_time_travel.h"
#include "unit.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_frame(const char *json, const char *stored_expected)
{
    char *stored = anvil_frame_compact(json, "run_a", 3);
    if (!stored_expected) {
        CHECK(stored == NULL);
        stored = strdup(json);   /* stored as given */
    } else {
        CHECK_STR(stored, stored_expected);
    }
    char *back = anvil_frame_expand(stored, "run_a", 3);
    CHECK_STR(back, json);
    free(back);
    free(stored);
}

static void check_payload(const char *json, const char *stored_expected)
{
    char *stored = anvil_payload_compact(json, "run_a");
    if (!stored_expected) {
        CHECK(stored == NULL);
    } else {
        CHECK_STR(stored, stored_expected);
        char *back = anvil_payload_expand(stored, "run_a");
        CHECK_STR(back, json);
        free(back);
    }
    free(stored);
}

static void test_pure(void)
{
    check_frame("{\"frameNo\":3,\"runId\":\"run_a\",\"status\":\"running\",\"root\":{\"id\":\"t\"}}",
                "{\"status\":\"running\",\"root\":{\"id\":\"t\"}}");
    check_frame("{\"frameNo\":4,\"runId\":\"run_a\",\"status\":\"x\"}", NULL);   /* another frame */
    check_frame("{\"frameNo\":3,\"runId\":\"run_b\",\"status\":\"x\"}", NULL);   /* another run */
    check_frame("{\"frameNo\":3,\"runId\":\"run_a\"}", NULL);                    /* nothing after */
    check_payload("{\"runId\":\"run_a\",\"nodeId\":\"t\",\"attempt\":1}", "{\"nodeId\":\"t\",\"attempt\":1}");
    check_payload("{\"runId\":\"run_a\"}", "{}");
    check_payload("{\"cronId\":\"c\",\"runId\":\"run_a\"}", NULL);   /* runId not first */
    check_payload("{\"runId\":\"run_ab\",\"x\":1}", NULL);            /* a longer id */
    check_payload("{}", NULL);
}

static char tmpdir[] = "/tmp/anvil-test-compact-XXXXXX";

static void raw(const char *path, const char *sql, char *out, size_t outlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = 0;
    CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

typedef struct seen {
    char text[512];
} seen;

static int see_event(void *ctx, const anvil_event_record *e)
{
    seen *x = ctx;
    size_t n = strlen(x->text);
    snprintf(x->text + n, sizeof x->text - n, "%lld %s %s;", (long long)e->seq, e->event,
             e->payload_json);
    return 0;
}

static int see_frame(void *ctx, const anvil_frame_record *f)
{
    seen *x = ctx;
    size_t n = strlen(x->text);
    snprintf(x->text + n, sizeof x->text - n, "%s;", f->tree_json);
    return 0;
}

static void test_through_the_store(void)
{
    char path[600], out[512];
    snprintf(path, sizeof path, "%s/c.db", tmpdir);
    anvil_store *s = NULL;
    char err[256];
    CHECK_INT(anvil_store_open(path, &s, err, sizeof err), 0);
    if (!s)
        return;
    anvil_run_record r = {
        .run_id = "run_a", .workflow = "w", .status = "running", .input_json = "{}",
        .options_json = "{}", .triggered_by = "t", .role = "operator", .scopes_json = "[]",
        .created_at_ms = 1, .updated_at_ms = 1, .finished_at_ms = -1,
    };
    const char *frame = "{\"frameNo\":1,\"runId\":\"run_a\",\"status\":\"running\",\"root\":{}}";
    CHECK_INT(anvil_store_run_insert(s, &r), 0);
    CHECK_INT(anvil_store_frame_insert(s, "run_a", 1, 1, frame, 1, NULL), 0);
    CHECK_INT(anvil_store_event_insert(s, "run_a", 1, "run.started",
                                       "{\"runId\":\"run_a\",\"workflow\":\"w\"}", 1, 1), 0);
    CHECK_INT(anvil_store_event_insert(s, "run_a", 2, "cron.triggered",
                                       "{\"cronId\":\"c\",\"runId\":\"run_a\"}", 2, 1), 0);

    /* What the file holds: the compact forms, and the marker. */
    raw(path, "SELECT tree_json FROM frames", out, sizeof out);
    CHECK_STR(out, "{\"status\":\"running\",\"root\":{}}");
    raw(path, "SELECT payload_json || ' ' || compact FROM events WHERE seq = 1", out, sizeof out);
    CHECK_STR(out, "{\"workflow\":\"w\"} 1");
    raw(path, "SELECT payload_json || ' ' || ifnull(compact, 'null') FROM events WHERE seq = 2", out,
        sizeof out);
    CHECK_STR(out, "{\"cronId\":\"c\",\"runId\":\"run_a\"} null");

    /* A row written before migration 11 (as recorded, compact NULL). */
    raw(path, "INSERT INTO events(run_id, seq, event, payload_json, state_version, created_at_ms)"
              " VALUES ('run_a', 3, 'old', '{\"runId\":\"run_a\",\"k\":1}', 3, 1)", out, sizeof out);
    raw(path, "INSERT INTO frames(run_id, frame_no, created_at_ms, tree_json)"
              " VALUES ('run_a', 2, 1, '{\"frameNo\":2,\"runId\":\"run_a\",\"status\":\"old\"}')",
        out, sizeof out);

    /* What every reader gets: what was recorded. */
    seen x = { "" };
    CHECK_INT(anvil_store_events_range(s, "run_a", 0, -1, 0, see_event, &x), 3);
    CHECK_STR(x.text, "1 run.started {\"runId\":\"run_a\",\"workflow\":\"w\"};"
                      "2 cron.triggered {\"cronId\":\"c\",\"runId\":\"run_a\"};"
                      "3 old {\"runId\":\"run_a\",\"k\":1};");
    x = (seen){ "" };
    CHECK_INT(anvil_store_frames_range(s, "run_a", 0, -1, 0, see_frame, &x), 2);
    CHECK_STR(x.text, "{\"frameNo\":1,\"runId\":\"run_a\",\"status\":\"running\",\"root\":{}};"
                      "{\"frameNo\":2,\"runId\":\"run_a\",\"status\":\"old\"};");
    anvil_frame_row f;
    CHECK_INT(anvil_store_frame_get(s, "run_a", 1, &f), 1);
    CHECK_STR(f.tree_json, frame);
    anvil_frame_row_clear(&f);
    anvil_store_close(s);
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < 3; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

int main(void)
{
    test_pure();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_through_the_store();
    CHECK_INT(rmdir(tmpdir), 0);
    UNIT_DONE();
}
