/*
 * tests/unit/test_devtools.c — the DevTools tree diff and the
 * snapshot/delta policy: each op kind, applying the ops reproduces the
 * target, replaceRoot when the root changes or a node moves parent, and the
 * re-baseline rules (first event, after 50 deltas, delta larger than the
 * snapshot, on request).
 */
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "json_print.h"
#include "unit.h"

static cJSON *J(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fprintf(stderr, "bad test JSON: %s\n", text);
    return j;
}

static int n_ops(const cJSON *ops, const char *name)
{
    int n = 0;
    for (const cJSON *o = ops ? ops->child : NULL; o; o = o->next)
        if (strcmp(cJSON_GetObjectItemCaseSensitive(o, "op")->valuestring, name) == 0)
            n++;
    return n;
}

/* diff(from, to), apply to a copy of from, compare with to. Returns the ops. */
static cJSON *round_trip(const char *from_text, const char *to_text)
{
    cJSON *from = J(from_text), *to = J(to_text);
    cJSON *ops = from && to ? anvil_devtools_diff(from, to) : NULL;
    CHECK(ops != NULL);
    if (ops) {
        char err[128] = "";
        cJSON *tree = cJSON_Duplicate(from, true);
        int rc = anvil_devtools_apply(&tree, ops, err, sizeof err);
        CHECK_INT(rc, 0);
        CHECK(cJSON_Compare(tree, to, true));
        if (!cJSON_Compare(tree, to, true)) {
            char *a = anvil_json_print(tree), *b = anvil_json_print(ops);
            fprintf(stderr, "  got %s\n  ops %s\n  want %s\n", a, b, to_text);
            free(a);
            free(b);
        }
        cJSON_Delete(tree);
    }
    cJSON_Delete(from);
    cJSON_Delete(to);
    return ops;
}

#define TASK(id, st, at) "{\"id\":\"" id "\",\"kind\":\"task\",\"state\":\"" st "\",\"attempts\":" #at "}"

static void test_equal_trees(void)
{
    const char *t = "{\"id\":\"root\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                    TASK("a", "finished", 1) "]}";
    cJSON *ops = round_trip(t, t);
    CHECK_INT(cJSON_GetArraySize(ops), 0);
    cJSON_Delete(ops);
}

static void test_update_props_and_task(void)
{
    cJSON *ops = round_trip(
        "{\"id\":\"root\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
        TASK("a", "running", 1) "," TASK("b", "pending", 0) ","
        "{\"id\":\"ok\",\"kind\":\"approval\",\"state\":\"pending\"}]}",
        "{\"id\":\"root\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
        "{\"id\":\"a\",\"kind\":\"task\",\"state\":\"finished\",\"attempts\":1},"
        "{\"id\":\"b\",\"kind\":\"task\",\"state\":\"failed\",\"attempts\":1,\"error\":\"boom\"},"
        "{\"id\":\"ok\",\"kind\":\"approval\",\"state\":\"waiting\"}]}");
    /* a: state only -> updateProps; b: attempts changed -> updateTask
     * (with state and error); ok: updateProps. */
    CHECK_INT(n_ops(ops, "updateProps"), 2);
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    CHECK_INT(cJSON_GetArraySize(ops), 3);
    cJSON *ut = NULL;
    for (cJSON *o = ops ? ops->child : NULL; o; o = o->next)
        if (strcmp(cJSON_GetObjectItemCaseSensitive(o, "op")->valuestring, "updateTask") == 0)
            ut = o;
    CHECK(ut != NULL);
    if (ut) {
        CHECK_STR(cJSON_GetObjectItemCaseSensitive(ut, "id")->valuestring, "b");
        cJSON *task = cJSON_GetObjectItemCaseSensitive(ut, "task");
        CHECK_INT(cJSON_GetObjectItemCaseSensitive(task, "attempts")->valuedouble, 1);
        CHECK_STR(cJSON_GetObjectItemCaseSensitive(task, "state")->valuestring, "failed");
        CHECK_STR(cJSON_GetObjectItemCaseSensitive(task, "error")->valuestring, "boom");
    }
    cJSON_Delete(ops);

    /* error cleared on a retry: updateTask carries error null */
    ops = round_trip("{\"id\":\"t\",\"kind\":\"task\",\"state\":\"failed\",\"attempts\":1,\"error\":\"x\"}",
                     "{\"id\":\"t\",\"kind\":\"task\",\"state\":\"running\",\"attempts\":2}");
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ops->child, "task"), "error")));
    cJSON_Delete(ops);

    /* a removed property of a non-task node: null in props */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"failed\",\"error\":\"x\"}",
                     "{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\"}");
    CHECK_INT(n_ops(ops, "updateProps"), 1);
    cJSON *props = cJSON_GetObjectItemCaseSensitive(ops->child, "props");
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(props, "error")));
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(props, "state")->valuestring, "running");
    cJSON_Delete(ops);
}

static void test_add_remove(void)
{
    cJSON *ops = round_trip(
        "{\"id\":\"root\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
        TASK("a", "running", 1) "," TASK("b", "running", 1) "," TASK("c", "running", 1) "]}",
        "{\"id\":\"root\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
        TASK("x", "pending", 0) "," TASK("a", "running", 1) "," TASK("c", "finished", 1) ","
        "{\"id\":\"s\",\"kind\":\"sequence\",\"state\":\"pending\",\"children\":[" TASK("y", "pending", 0) "]}]}");
    CHECK_INT(n_ops(ops, "removeNode"), 1);
    CHECK_INT(n_ops(ops, "addNode"), 2);
    CHECK_INT(n_ops(ops, "updateProps"), 1);
    cJSON_Delete(ops);

    /* every child removed: the children member goes too */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     TASK("a", "running", 1) "]}",
                     "{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\"}");
    CHECK_INT(n_ops(ops, "removeNode"), 1);
    cJSON_Delete(ops);

    /* reordered children */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     TASK("a", "running", 1) "," TASK("b", "running", 1) "," TASK("c", "running", 1) "]}",
                     "{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     TASK("c", "running", 1) "," TASK("a", "running", 1) "," TASK("b", "running", 2) "]}");
    CHECK_INT(n_ops(ops, "replaceRoot"), 0);
    cJSON_Delete(ops);

    /* deep change */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     "{\"id\":\"p\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
                     TASK("a", "running", 1) "]}]}",
                     "{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     "{\"id\":\"p\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
                     TASK("a", "running", 2) "," TASK("b", "pending", 0) "]}]}");
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    CHECK_INT(n_ops(ops, "addNode"), 1);
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ops, 1), "parentId")->valuestring, "p");
    CHECK_INT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ops, 1), "index")->valuedouble, 1);
    cJSON_Delete(ops);
}

static void test_replace_root(void)
{
    cJSON *ops = round_trip("{\"id\":\"r1\",\"kind\":\"sequence\",\"state\":\"running\"}",
                            "{\"id\":\"r2\",\"kind\":\"sequence\",\"state\":\"running\"}");
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    CHECK_INT(cJSON_GetArraySize(ops), 1);
    cJSON_Delete(ops);
    /* a node that moved to another parent */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     "{\"id\":\"p\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
                     TASK("a", "running", 1) "]}]}",
                     "{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":["
                     "{\"id\":\"p\",\"kind\":\"parallel\",\"state\":\"running\"}," TASK("a", "running", 1) "]}");
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    cJSON_Delete(ops);
    /* the root's kind changed */
    ops = round_trip("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\"}",
                     "{\"id\":\"r\",\"kind\":\"parallel\",\"state\":\"running\"}");
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    cJSON_Delete(ops);
}

static void test_apply_rejects(void)
{
    cJSON *tree = J("{\"id\":\"r\",\"kind\":\"sequence\",\"state\":\"running\"}");
    char err[128];
    cJSON *bad = J("[{\"op\":\"removeNode\",\"id\":\"nope\"}]");
    CHECK_INT(anvil_devtools_apply(&tree, bad, err, sizeof err), -1);
    cJSON_Delete(bad);
    bad = J("[{\"op\":\"removeNode\",\"id\":\"r\"}]");
    CHECK_INT(anvil_devtools_apply(&tree, bad, err, sizeof err), -1);
    cJSON_Delete(bad);
    bad = J("[{\"op\":\"addNode\",\"parentId\":\"r\",\"index\":3,\"node\":{\"id\":\"x\"}}]");
    CHECK_INT(anvil_devtools_apply(&tree, bad, err, sizeof err), -1);
    cJSON_Delete(bad);
    bad = J("[{\"op\":\"frobnicate\"}]");
    CHECK_INT(anvil_devtools_apply(&tree, bad, err, sizeof err), -1);
    cJSON_Delete(bad);
    cJSON_Delete(tree);
}

static cJSON *frame(int no, int n_tasks, int done)
{
    char buf[8192];
    int k = snprintf(buf, sizeof buf,
                     "{\"frameNo\":%d,\"runId\":\"run1\",\"status\":\"running\",\"root\":"
                     "{\"id\":\"root\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":[", no);
    for (int i = 0; i < n_tasks; i++)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s{\"id\":\"t%d\",\"kind\":\"task\",\"state\":\"%s\",\"attempts\":%d}",
                      i ? "," : "", i, i < done ? "finished" : "pending", i < done ? 1 : 0);
    snprintf(buf + k, sizeof buf - (size_t)k, "]}}");
    return J(buf);
}

static const char *kind_of(const cJSON *p)
{
    return cJSON_GetObjectItemCaseSensitive(p, "kind")->valuestring;
}

static void test_policy(void)
{
    anvil_devtools_state st = { 0 };
    cJSON *tree = NULL;
    int deltas = 0, snaps = 0;
    for (int no = 1; no <= 120; no++) {
        cJSON *f = frame(no, 60, no / 2);
        cJSON *p = anvil_devtools_next(&st, f);
        CHECK(p != NULL);
        if (!p) {
            cJSON_Delete(f);
            break;
        }
        CHECK_INT(cJSON_GetObjectItemCaseSensitive(p, "version")->valuedouble, 1);
        if (no == 1 || no == 52 || no == 103) {
            /* first event, then after every 50 deltas */
            CHECK_STR(kind_of(p), "snapshot");
        } else {
            CHECK_STR(kind_of(p), "delta");
        }
        if (strcmp(kind_of(p), "snapshot") == 0) {
            snaps++;
            cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "snapshot");
            CHECK_INT(cJSON_GetObjectItemCaseSensitive(s, "version")->valuedouble, 1);
            CHECK_INT(cJSON_GetObjectItemCaseSensitive(s, "seq")->valuedouble, no);
            CHECK_INT(cJSON_GetObjectItemCaseSensitive(s, "frameNo")->valuedouble, no);
            CHECK_STR(cJSON_GetObjectItemCaseSensitive(s, "runId")->valuestring, "run1");
            CHECK_STR(cJSON_GetObjectItemCaseSensitive(s, "status")->valuestring, "running");
            cJSON_Delete(tree);
            tree = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(s, "root"), true);
        } else {
            deltas++;
            cJSON *d = cJSON_GetObjectItemCaseSensitive(p, "delta");
            CHECK_INT(cJSON_GetObjectItemCaseSensitive(d, "baseSeq")->valuedouble, no - 1);
            CHECK_INT(cJSON_GetObjectItemCaseSensitive(d, "seq")->valuedouble, no);
            char err[128];
            CHECK_INT(anvil_devtools_apply(&tree, cJSON_GetObjectItemCaseSensitive(d, "ops"), err, sizeof err), 0);
        }
        CHECK(cJSON_Compare(tree, cJSON_GetObjectItemCaseSensitive(f, "root"), true));
        cJSON_Delete(p);
        cJSON_Delete(f);
    }
    CHECK_INT(snaps, 3);
    CHECK_INT(deltas, 117);

    /* on request */
    anvil_devtools_request_rebaseline(&st);
    cJSON *f = frame(121, 60, 60);
    cJSON *p = anvil_devtools_next(&st, f);
    CHECK_STR(kind_of(p), "snapshot");
    cJSON_Delete(p);
    cJSON_Delete(f);
    f = frame(122, 60, 60);
    p = anvil_devtools_next(&st, f);
    CHECK_STR(kind_of(p), "delta");
    cJSON_Delete(p);
    cJSON_Delete(f);

    /* a delta larger than the snapshot: every task's attempts change, and
     * an updateTask op is longer than the node it describes */
    f = frame(123, 60, 0);
    p = anvil_devtools_next(&st, f);
    CHECK_STR(kind_of(p), "snapshot");
    cJSON_Delete(p);
    cJSON_Delete(f);

    /* malformed frame: NULL, state unchanged */
    f = J("{\"frameNo\":124}");
    CHECK(anvil_devtools_next(&st, f) == NULL);
    CHECK_INT(st.seq, 123);
    cJSON_Delete(f);

    cJSON_Delete(tree);
    anvil_devtools_state_clear(&st);
}

/* anvil_devtools_snapshot is exactly the `snapshot` member of the first
 * event a stream sends for the same frame (getDevToolsSnapshot relies on
 * it), and reads the frame without changing it. */
static void test_snapshot(void)
{
    cJSON *f = frame(7, 3, 2);
    cJSON *before = cJSON_Duplicate(f, true);
    cJSON *snap = anvil_devtools_snapshot(f);
    anvil_devtools_state st = { 0 };
    cJSON *p = anvil_devtools_next(&st, f);
    CHECK(snap && p);
    CHECK(cJSON_Compare(snap, cJSON_GetObjectItemCaseSensitive(p, "snapshot"), true));
    CHECK(cJSON_Compare(f, before, true));
    static const char head[] = "{\"version\":1,\"runId\":\"run1\",\"frameNo\":7,\"seq\":7,"
                               "\"status\":\"running\",\"root\":{\"id\":\"root\"";
    char *text = anvil_json_print(snap);
    CHECK(text && strncmp(text, head, sizeof head - 1) == 0);
    free(text);
    cJSON_Delete(p);
    cJSON_Delete(snap);
    cJSON_Delete(before);
    cJSON_Delete(f);
    anvil_devtools_state_clear(&st);

    /* malformed frames: no number, no tree, a tree that is not an object */
    const char *bad[] = { "{\"root\":{\"id\":\"r\"}}", "{\"frameNo\":1}",
                          "{\"frameNo\":1,\"root\":[]}", "[]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = J(bad[i]);
        CHECK(anvil_devtools_snapshot(b) == NULL);
        cJSON_Delete(b);
    }
    CHECK(anvil_devtools_snapshot(NULL) == NULL);
}

int main(void)
{
    test_equal_trees();
    test_update_props_and_task();
    test_add_remove();
    test_replace_root();
    test_apply_rejects();
    test_policy();
    test_snapshot();
    UNIT_DONE();
}
