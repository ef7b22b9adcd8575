/*
 * tests/unit/test_devtools.c — DevTools trees in the upstream's node shape
 * (runtime/engine/devtools_node.c) and the snapshot/delta machinery on them
 * (devtools.c): the conversion of a recorded tree (types, names, numeric
 * ids stable across frames and unique under hash collisions, props, task,
 * the state vocabulary, with and without the workflow's definition), the
 * run state, each delta op kind, applying the ops reproduces the target,
 * replaceRoot when the root changes or a node moves parent, and the
 * re-baseline rules (first event, after 50 deltas, delta larger than the
 * snapshot, a changed run status, on request).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
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

static const cJSON *M(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *S(const cJSON *o, const char *key)
{
    const cJSON *v = M(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long N(const cJSON *o, const char *key)
{
    const cJSON *v = M(o, key);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* The node whose props.id (Anvil's id) is `id`, anywhere under n. */
static const cJSON *by_anvil_id(const cJSON *n, const char *id)
{
    const char *pid = S(M(n, "props"), "id");
    if (pid && strcmp(pid, id) == 0)
        return n;
    for (const cJSON *c = M(n, "children") ? M(n, "children")->child : NULL; c; c = c->next) {
        const cJSON *hit = by_anvil_id(c, id);
        if (hit)
            return hit;
    }
    return NULL;
}

static int n_ops(const cJSON *ops, const char *name)
{
    int n = 0;
    for (const cJSON *o = ops ? ops->child : NULL; o; o = o->next)
        if (strcmp(S(o, "op"), name) == 0)
            n++;
    return n;
}

/* ---------------------------------------------------------------- the workflow */

/* The definition the recorded trees below come from: every node kind. */
static const char WF_YAML[] =
    "name: mix\n"
    "root:\n"
    "  sequence:\n"
    "    - task: { id: build, run: \"echo '{}'\", retries: 2 }\n"
    "    - parallel:\n"
    "        - task: { id: notes, output: { msg: hi } }\n"
    "        - approval: { id: approve, title: \"Ship it?\" }\n"
    "        - signal: { id: review, name: review.done }\n";

static anvil_workflow *load_wf(void)
{
    char path[] = "/tmp/anvil-devtools-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    bool ok = write(fd, WF_YAML, sizeof WF_YAML - 1) == (ssize_t)(sizeof WF_YAML - 1);
    close(fd);
    anvil_workflow *wf = NULL;
    anvil_diags d = { 0 };
    if (ok && anvil_workflow_load(path, &wf, &d) != 0)
        anvil_diags_print(&d, stderr);
    anvil_diags_clear(&d);
    unlink(path);
    return wf;
}

/* The recorded tree of that workflow, each node's state given. */
static cJSON *recorded(const char *seq, const char *build, int build_attempts, const char *notes,
                       const char *approve, const char *review)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"id\":\"sequence@root\",\"kind\":\"sequence\",\"state\":\"%s\",\"children\":["
             "{\"id\":\"build\",\"kind\":\"task\",\"state\":\"%s\",\"attempts\":%d},"
             "{\"id\":\"parallel@sequence@root.1\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
             "{\"id\":\"notes\",\"kind\":\"task\",\"state\":\"%s\",\"attempts\":1},"
             "{\"id\":\"approve\",\"kind\":\"approval\",\"state\":\"%s\"},"
             "{\"id\":\"review\",\"kind\":\"signal\",\"state\":\"%s\"}]}]}",
             seq, build, build_attempts, notes, approve, review);
    return J(buf);
}

static void check_ids_unique(const cJSON *n, long long *seen, int *count)
{
    long long id = N(n, "id");
    CHECK(id >= 0 && id <= 2147483647LL);
    for (int i = 0; i < *count; i++)
        CHECK(seen[i] != id);
    if (*count < 64)
        seen[(*count)++] = id;
    for (const cJSON *c = M(n, "children")->child; c; c = c->next)
        check_ids_unique(c, seen, count);
}

static void test_tree_shape(void)
{
    anvil_workflow *wf = load_wf();
    CHECK(wf != NULL);
    anvil_devtools_source src = { "mix", wf };
    cJSON *rec = recorded("running", "failed", 2, "finished", "waiting", "waiting");
    cJSON *t = anvil_devtools_tree(rec, &src);
    CHECK(t != NULL);
    if (!t) {
        cJSON_Delete(rec);
        anvil_workflow_free(wf);
        return;
    }
    /* The synthetic root: the workflow, named after its key; FNV-1a of "". */
    CHECK_STR(S(t, "type"), "workflow");
    CHECK_STR(S(t, "name"), "mix");
    CHECK_INT(N(t, "id"), 18652613);
    CHECK_INT(N(t, "depth"), 0);
    CHECK(M(t, "task") == NULL);
    char *props = anvil_json_print(M(t, "props"));
    CHECK_STR(props, "{\"name\":\"mix\"}");
    free(props);
    CHECK_INT(cJSON_GetArraySize(M(t, "children")), 1);

    /* Containers: no task, name = type, Anvil's id and state in props. */
    const cJSON *seq = by_anvil_id(t, "sequence@root");
    CHECK(seq && seq == cJSON_GetArrayItem(M(t, "children"), 0));
    CHECK_STR(S(seq, "type"), "sequence");
    CHECK_STR(S(seq, "name"), "sequence");
    CHECK_INT(N(seq, "depth"), 1);
    CHECK(M(seq, "task") == NULL);
    CHECK_STR(S(M(seq, "props"), "state"), "running");
    const cJSON *par = by_anvil_id(t, "parallel@sequence@root.1");
    CHECK(par && strcmp(S(par, "type"), "parallel") == 0 && M(par, "task") == NULL);
    CHECK_INT(N(par, "depth"), 2);
    CHECK_INT(cJSON_GetArraySize(M(par, "children")), 3);

    /* A failed run: task with its attempt, the budget from retries: 2. */
    const cJSON *build = by_anvil_id(t, "build");
    char *text = anvil_json_print(build);
    char want[512];
    snprintf(want, sizeof want,
             "{\"id\":%lld,\"type\":\"task\",\"name\":\"task\",\"props\":{\"id\":\"build\",\"state\":\"failed\","
             "\"static\":false},\"task\":{\"nodeId\":\"build\",\"kind\":\"compute\",\"iteration\":0,"
             "\"state\":\"failed\",\"attempt\":2,\"maxAttempts\":3},\"children\":[],\"depth\":2}",
             N(build, "id"));
    CHECK_STR(text, want);
    free(text);
    /* A static task is compute too (the engine expands it), static in props. */
    const cJSON *notes = by_anvil_id(t, "notes");
    CHECK_STR(S(M(notes, "task"), "kind"), "compute");
    CHECK(cJSON_IsTrue(M(M(notes, "props"), "static")));
    CHECK_INT(N(M(notes, "task"), "maxAttempts"), 1);
    CHECK_STR(S(M(notes, "task"), "state"), "finished");
    /* Approval and signal: their own types, the waits in upstream words. */
    const cJSON *approve = by_anvil_id(t, "approve");
    CHECK_STR(S(approve, "type"), "approval");
    CHECK_STR(S(M(approve, "task"), "kind"), "approval");
    CHECK_STR(S(M(approve, "task"), "state"), "waiting-approval");
    CHECK_STR(S(M(approve, "props"), "title"), "Ship it?");
    CHECK_STR(S(M(approve, "props"), "state"), "waiting");
    CHECK(M(M(approve, "task"), "attempt") == NULL && M(M(approve, "task"), "maxAttempts") == NULL);
    const cJSON *review = by_anvil_id(t, "review");
    CHECK_STR(S(review, "type"), "wait-for-event");
    CHECK_STR(S(review, "name"), "wait-for-event");
    CHECK_STR(S(M(review, "task"), "kind"), "static");
    CHECK_STR(S(M(review, "task"), "state"), "waiting-event");
    CHECK_STR(S(M(review, "props"), "signal"), "review.done");
    CHECK_INT(N(M(review, "task"), "iteration"), 0);

    long long seen[64];
    int count = 0;
    check_ids_unique(t, seen, &count);
    CHECK_INT(count, 7);

    /* Another frame of the run: every node keeps its id. */
    cJSON *rec2 = recorded("finished", "finished", 3, "finished", "finished", "finished");
    cJSON *t2 = anvil_devtools_tree(rec2, &src);
    const char *ids[] = { "sequence@root", "build", "parallel@sequence@root.1", "notes", "approve", "review" };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        CHECK_INT(N(by_anvil_id(t2, ids[i]), "id"), N(by_anvil_id(t, ids[i]), "id"));
    CHECK_INT(N(t2, "id"), N(t, "id"));

    /* Without the definition (no longer configured): no static, title,
     * signal or maxAttempts; the rest is the same. */
    anvil_devtools_source bare = { "mix", NULL };
    cJSON *t3 = anvil_devtools_tree(rec, &bare);
    CHECK(t3 != NULL);
    CHECK(M(M(by_anvil_id(t3, "build"), "task"), "maxAttempts") == NULL);
    CHECK(M(M(by_anvil_id(t3, "build"), "props"), "static") == NULL);
    CHECK_STR(S(M(by_anvil_id(t3, "build"), "task"), "kind"), "compute");
    CHECK(M(M(by_anvil_id(t3, "approve"), "props"), "title") == NULL);
    CHECK(M(M(by_anvil_id(t3, "review"), "props"), "signal") == NULL);
    CHECK_INT(N(by_anvil_id(t3, "review"), "id"), N(review, "id"));

    /* A definition whose node of that id is of another kind is ignored. */
    cJSON *odd = J("{\"id\":\"build\",\"kind\":\"approval\",\"state\":\"pending\"}");
    cJSON *t4 = anvil_devtools_tree(odd, &src);
    CHECK(t4 && M(M(by_anvil_id(t4, "build"), "props"), "title") == NULL);
    CHECK_STR(S(M(by_anvil_id(t4, "build"), "task"), "kind"), "approval");

    cJSON_Delete(t4);
    cJSON_Delete(odd);
    cJSON_Delete(t3);
    cJSON_Delete(t2);
    cJSON_Delete(rec2);
    cJSON_Delete(t);
    cJSON_Delete(rec);
    anvil_workflow_free(wf);
}

static void test_state_vocabulary(void)
{
    static const struct { const char *kind, *state, *want; } cases[] = {
        { "task", "pending", "pending" },       { "task", "running", "in-progress" },
        { "task", "waiting", "waiting" },       { "task", "finished", "finished" },
        { "task", "failed", "failed" },         { "task", "cancelled", "cancelled" },
        { "task", "skipped", "skipped" },       { "approval", "waiting", "waiting-approval" },
        { "approval", "pending", "pending" },   { "signal", "waiting", "waiting-event" },
        { "signal", "cancelled", "cancelled" },
    };
    anvil_devtools_source src = { "w", NULL };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"id\":\"n\",\"kind\":\"%s\",\"state\":\"%s\"}", cases[i].kind, cases[i].state);
        cJSON *rec = J(buf);
        cJSON *t = anvil_devtools_tree(rec, &src);
        const cJSON *n = t ? cJSON_GetArrayItem(M(t, "children"), 0) : NULL;
        CHECK_STR(S(M(n, "task"), "state"), cases[i].want);
        CHECK_STR(S(M(n, "props"), "state"), cases[i].state);
        cJSON_Delete(t);
        cJSON_Delete(rec);
    }
    /* Malformed recorded nodes: no tree. */
    const char *bad[] = { "{\"kind\":\"task\",\"state\":\"pending\"}", "{\"id\":\"a\",\"state\":\"pending\"}",
                          "{\"id\":\"a\",\"kind\":\"task\"}",
                          "{\"id\":\"a\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":[{\"id\":1}]}", "[]" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = J(bad[i]);
        CHECK(anvil_devtools_tree(b, &src) == NULL);
        cJSON_Delete(b);
    }
    cJSON *ok = J("{\"id\":\"a\",\"kind\":\"task\",\"state\":\"pending\"}");
    anvil_devtools_source nokey = { NULL, NULL };
    CHECK(anvil_devtools_tree(ok, &nokey) == NULL);
    CHECK(anvil_devtools_tree(ok, NULL) == NULL);
    cJSON_Delete(ok);
}

/* Two node ids whose hashes collide get different numbers, deterministically. */
static void test_id_collision(void)
{
    /* FNV-1a, 31 bits: "n512789" and "n749192" both hash to 1795404107. */
    cJSON *rec = J("{\"id\":\"p\",\"kind\":\"parallel\",\"state\":\"running\",\"children\":["
                   "{\"id\":\"n512789\",\"kind\":\"task\",\"state\":\"pending\"},"
                   "{\"id\":\"n749192\",\"kind\":\"task\",\"state\":\"pending\"}]}");
    anvil_devtools_source src = { "w", NULL };
    cJSON *a = anvil_devtools_tree(rec, &src), *b = anvil_devtools_tree(rec, &src);
    CHECK(a && b);
    if (a && b) {
        const cJSON *x = by_anvil_id(a, "n512789"), *y = by_anvil_id(a, "n749192");
        CHECK_INT(N(x, "id"), 1795404107);
        CHECK(N(y, "id") != N(x, "id") && N(y, "id") >= 0);
        CHECK(cJSON_Compare(a, b, true));
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(rec);
}

static void test_run_state(void)
{
    char at[ANVIL_ISO8601_SIZE];
    CHECK_INT(anvil_time_iso8601(0, at), 0);
    CHECK_STR(at, "1970-01-01T00:00:00.000Z");
    CHECK_INT(anvil_time_iso8601(1767225600123LL, at), 0);
    CHECK_STR(at, "2026-01-01T00:00:00.123Z");
    CHECK_INT(anvil_time_iso8601(-1, at), 0);
    CHECK_STR(at, "1969-12-31T23:59:59.999Z");
    CHECK_INT(anvil_time_iso8601(INT64_MAX, at), -1);
    CHECK_STR(at, "");

    static const char *const map[][2] = {
        { "running", "running" },   { "waiting-approval", "waiting-approval" },
        { "waiting-event", "waiting-event" }, { "waiting-timer", "waiting-timer" },
        { "finished", "succeeded" }, { "failed", "failed" }, { "cancelled", "cancelled" },
        { "needs_attention", "paused" }, { "bogus", "unknown" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        cJSON *s = anvil_devtools_run_state("r1", map[i][0], 1767225600123LL);
        char *text = anvil_json_print(s);
        char want[160];
        snprintf(want, sizeof want, "{\"runId\":\"r1\",\"state\":\"%s\",\"computedAt\":\"2026-01-01T00:00:00.123Z\"}",
                 map[i][1]);
        CHECK_STR(text, want);
        free(text);
        cJSON_Delete(s);
    }
    cJSON *s = anvil_devtools_run_state("r1", NULL, 0);
    CHECK_STR(S(s, "state"), "unknown");
    cJSON_Delete(s);
}

/* ---------------------------------------------------------------- diff and apply */

/* diff(from, to), apply to a copy of from, compare with to. Returns the ops. */
static cJSON *round_trip(const cJSON *from, const cJSON *to)
{
    cJSON *ops = from && to ? anvil_devtools_diff(from, to) : NULL;
    CHECK(ops != NULL);
    if (ops) {
        char err[128] = "";
        cJSON *tree = cJSON_Duplicate(from, true);
        int rc = anvil_devtools_apply(&tree, ops, err, sizeof err);
        CHECK_INT(rc, 0);
        CHECK(cJSON_Compare(tree, to, true));
        if (!cJSON_Compare(tree, to, true)) {
            char *a = anvil_json_print(tree), *b = anvil_json_print(ops), *c = anvil_json_print(to);
            fprintf(stderr, "  got %s\n  ops %s\n  want %s\n", a, b, c);
            free(a);
            free(b);
            free(c);
        }
        cJSON_Delete(tree);
    }
    return ops;
}

/* A node in the upstream shape; kids may be NULL. */
#define NODE(id, type, props, kids) \
    "{\"id\":" #id ",\"type\":\"" type "\",\"name\":\"" type "\",\"props\":" props ",\"children\":[" kids "]}"
#define TASK(id, state) \
    "{\"id\":" #id ",\"type\":\"task\",\"name\":\"task\",\"props\":{\"state\":\"" state "\"}," \
    "\"task\":{\"nodeId\":\"t" #id "\",\"kind\":\"compute\",\"iteration\":0,\"state\":\"" state "\"},\"children\":[]}"

static cJSON *rt(const char *from, const char *to)
{
    cJSON *a = J(from), *b = J(to);
    cJSON *ops = round_trip(a, b);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return ops;
}

static void test_diff_ops(void)
{
    const char *t = NODE(1, "sequence", "{}", TASK(2, "finished"));
    cJSON *ops = rt(t, t);
    CHECK_INT(cJSON_GetArraySize(ops), 0);
    cJSON_Delete(ops);

    /* A state change: the node's whole new props and task, replaced. */
    ops = rt(NODE(1, "sequence", "{\"state\":\"running\"}", TASK(2, "running") "," TASK(3, "pending")),
             NODE(1, "sequence", "{\"state\":\"running\"}", TASK(2, "finished") "," TASK(3, "pending")));
    CHECK_INT(cJSON_GetArraySize(ops), 2);
    CHECK_INT(n_ops(ops, "updateProps"), 1);
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    const cJSON *up = cJSON_GetArrayItem(ops, 0), *ut = cJSON_GetArrayItem(ops, 1);
    CHECK_STR(S(up, "op"), "updateProps");
    CHECK_INT(N(up, "id"), 2);
    char *text = anvil_json_print(M(up, "props"));
    CHECK_STR(text, "{\"state\":\"finished\"}");
    free(text);
    CHECK_INT(N(ut, "id"), 2);
    text = anvil_json_print(M(ut, "task"));
    CHECK_STR(text, "{\"nodeId\":\"t2\",\"kind\":\"compute\",\"iteration\":0,\"state\":\"finished\"}");
    free(text);
    cJSON_Delete(ops);

    /* A member dropped from props: the whole props, without it. */
    ops = rt(NODE(1, "sequence", "{\"state\":\"failed\",\"error\":\"x\"}", ""),
             NODE(1, "sequence", "{\"state\":\"running\"}", ""));
    CHECK_INT(n_ops(ops, "updateProps"), 1);
    CHECK(M(M(ops->child, "props"), "error") == NULL);
    cJSON_Delete(ops);

    /* A task that went: updateTask without a task. */
    ops = rt(TASK(1, "running"), NODE(1, "task", "{\"state\":\"running\"}", ""));
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    CHECK(M(ops->child, "task") == NULL);
    cJSON_Delete(ops);

    /* Add, remove, reorder, deep. */
    ops = rt(NODE(1, "parallel", "{}", TASK(2, "running") "," TASK(3, "running") "," TASK(4, "running")),
             NODE(1, "parallel", "{}", TASK(9, "pending") "," TASK(2, "running") "," TASK(4, "finished") ","
                  NODE(5, "sequence", "{}", TASK(6, "pending"))));
    CHECK_INT(n_ops(ops, "removeNode"), 1);
    CHECK_INT(n_ops(ops, "addNode"), 2);
    CHECK_INT(n_ops(ops, "updateTask"), 1);
    const cJSON *add = NULL;
    for (const cJSON *o = ops->child; o; o = o->next)
        if (strcmp(S(o, "op"), "addNode") == 0 && !add)
            add = o;
    CHECK_INT(N(add, "parentId"), 1);
    CHECK_INT(N(add, "index"), 0);
    CHECK_INT(N(M(add, "node"), "id"), 9);
    cJSON_Delete(ops);
    ops = rt(NODE(1, "sequence", "{}", TASK(2, "running")), NODE(1, "sequence", "{}", ""));
    CHECK_INT(n_ops(ops, "removeNode"), 1);
    cJSON_Delete(ops);
    ops = rt(NODE(1, "sequence", "{}", TASK(2, "running") "," TASK(3, "running") "," TASK(4, "running")),
             NODE(1, "sequence", "{}", TASK(4, "running") "," TASK(2, "running") "," TASK(3, "failed")));
    CHECK_INT(n_ops(ops, "replaceRoot"), 0);
    cJSON_Delete(ops);
    /* Same id, another type: out and in again. */
    ops = rt(NODE(1, "sequence", "{}", TASK(2, "running")),
             NODE(1, "sequence", "{}", NODE(2, "approval", "{}", "")));
    CHECK_INT(n_ops(ops, "removeNode"), 1);
    CHECK_INT(n_ops(ops, "addNode"), 1);
    cJSON_Delete(ops);
}

static void test_replace_root(void)
{
    /* another root id; another root name (the workflow key) */
    cJSON *ops = rt(NODE(1, "workflow", "{}", ""), NODE(2, "workflow", "{}", ""));
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    CHECK_INT(cJSON_GetArraySize(ops), 1);
    CHECK_INT(N(M(ops->child, "node"), "id"), 2);
    CHECK(M(ops->child, "root") == NULL);
    cJSON_Delete(ops);
    ops = rt(NODE(1, "workflow", "{}", ""), NODE(1, "sequence", "{}", ""));
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    cJSON_Delete(ops);
    /* a node that moved to another parent */
    ops = rt(NODE(1, "sequence", "{}", NODE(2, "parallel", "{}", TASK(3, "running"))),
             NODE(1, "sequence", "{}", NODE(2, "parallel", "{}", "") "," TASK(3, "running")));
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    cJSON_Delete(ops);
    /* duplicate ids */
    ops = rt(NODE(1, "sequence", "{}", TASK(2, "running")),
             NODE(1, "sequence", "{}", TASK(2, "running") "," TASK(2, "running")));
    CHECK_INT(n_ops(ops, "replaceRoot"), 1);
    cJSON_Delete(ops);
}

static void test_apply_rejects(void)
{
    cJSON *tree = J(NODE(1, "sequence", "{}", TASK(2, "running")));
    char err[128];
    const char *bad[] = {
        "[{\"op\":\"removeNode\",\"id\":7}]",
        "[{\"op\":\"removeNode\",\"id\":1}]",
        "[{\"op\":\"addNode\",\"parentId\":1,\"index\":3,\"node\":{\"id\":8}}]",
        "[{\"op\":\"addNode\",\"parentId\":7,\"index\":0,\"node\":{\"id\":8}}]",
        "[{\"op\":\"updateProps\",\"id\":2}]",
        "[{\"op\":\"updateTask\",\"id\":2,\"task\":5}]",
        "[{\"op\":\"replaceRoot\",\"root\":{\"id\":1}}]",
        "[{\"op\":\"frobnicate\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *ops = J(bad[i]);
        CHECK_INT(anvil_devtools_apply(&tree, ops, err, sizeof err), -1);
        cJSON_Delete(ops);
    }
    cJSON_Delete(tree);
}

/* ---------------------------------------------------------------- policy */

static cJSON *frame_of(int no, int n_tasks, int done, const char *prefix)
{
    char buf[8192];
    int k = snprintf(buf, sizeof buf,
                     "{\"frameNo\":%d,\"runId\":\"run1\",\"status\":\"running\",\"root\":"
                     "{\"id\":\"root\",\"kind\":\"sequence\",\"state\":\"running\",\"children\":[", no);
    for (int i = 0; i < n_tasks; i++)
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s{\"id\":\"%s%d\",\"kind\":\"task\",\"state\":\"%s\",\"attempts\":%d}",
                      i ? "," : "", prefix, i, i < done ? "finished" : "pending", i < done ? 1 : 0);
    snprintf(buf + k, sizeof buf - (size_t)k, "]}}");
    return J(buf);
}

static cJSON *frame(int no, int n_tasks, int done)
{
    return frame_of(no, n_tasks, done, "t");
}

static const char *kind_of(const cJSON *p)
{
    return S(p, "kind");
}

static void test_policy(void)
{
    anvil_devtools_source src = { "long", NULL };
    anvil_devtools_state st = { 0 };
    cJSON *tree = NULL;
    int deltas = 0, snaps = 0;
    for (int no = 1; no <= 120; no++) {
        cJSON *f = frame(no, 60, no / 2);
        cJSON *p = anvil_devtools_next(&st, f, 1000 + no, &src);
        cJSON *want = anvil_devtools_tree(M(f, "root"), &src);
        CHECK(p != NULL);
        if (!p) {
            cJSON_Delete(want);
            cJSON_Delete(f);
            break;
        }
        CHECK_INT(N(p, "version"), 1);
        if (no == 1 || no == 52 || no == 103) {
            /* first event, then after every 50 deltas */
            CHECK_STR(kind_of(p), "snapshot");
        } else {
            CHECK_STR(kind_of(p), "delta");
        }
        if (strcmp(kind_of(p), "snapshot") == 0) {
            snaps++;
            const cJSON *s = M(p, "snapshot");
            CHECK_INT(N(s, "version"), 1);
            CHECK_INT(N(s, "seq"), no);
            CHECK_INT(N(s, "frameNo"), no);
            CHECK_STR(S(s, "runId"), "run1");
            CHECK_STR(S(s, "status"), "running");
            CHECK_STR(S(M(s, "runState"), "state"), "running");
            cJSON_Delete(tree);
            tree = cJSON_Duplicate(M(s, "root"), true);
        } else {
            deltas++;
            const cJSON *d = M(p, "delta");
            CHECK_INT(N(d, "version"), 1);
            CHECK_INT(N(d, "baseSeq"), no - 1);
            CHECK_INT(N(d, "seq"), no);
            char err[128];
            CHECK_INT(anvil_devtools_apply(&tree, M(d, "ops"), err, sizeof err), 0);
        }
        CHECK(cJSON_Compare(tree, want, true));
        cJSON_Delete(want);
        cJSON_Delete(p);
        cJSON_Delete(f);
    }
    CHECK_INT(snaps, 3);
    CHECK_INT(deltas, 117);

    /* on request */
    anvil_devtools_request_rebaseline(&st);
    cJSON *f = frame(121, 60, 60);
    cJSON *p = anvil_devtools_next(&st, f, 0, &src);
    CHECK_STR(kind_of(p), "snapshot");
    cJSON_Delete(p);
    cJSON_Delete(f);
    f = frame(122, 60, 60);
    p = anvil_devtools_next(&st, f, 0, &src);
    CHECK_STR(kind_of(p), "delta");
    CHECK_INT(cJSON_GetArraySize(M(M(p, "delta"), "ops")), 0);
    cJSON_Delete(p);
    cJSON_Delete(f);

    /* the run status changed: a snapshot (its runState is the news), and
     * deltas again while it stays */
    for (int i = 0; i < 2; i++) {
        f = frame(i == 0 ? 123 : 124, 60, 60);
        cJSON_ReplaceItemInObjectCaseSensitive(f, "status", cJSON_CreateString("waiting-approval"));
        p = anvil_devtools_next(&st, f, 0, &src);
        CHECK_STR(kind_of(p), i == 0 ? "snapshot" : "delta");
        if (i == 0)
            CHECK_STR(S(M(M(p, "snapshot"), "runState"), "state"), "waiting-approval");
        cJSON_Delete(p);
        cJSON_Delete(f);
    }
    f = frame(125, 60, 60);
    p = anvil_devtools_next(&st, f, 0, &src);
    CHECK_STR(kind_of(p), "snapshot");
    CHECK_STR(S(M(p, "snapshot"), "status"), "running");
    cJSON_Delete(p);
    cJSON_Delete(f);

    /* a delta larger than the snapshot: every task is another node (its
     * removal and its whole addition are longer than the node alone) */
    f = frame_of(126, 60, 0, "u");
    p = anvil_devtools_next(&st, f, 0, &src);
    CHECK_STR(kind_of(p), "snapshot");
    cJSON_Delete(p);
    cJSON_Delete(f);

    /* malformed frame: NULL, state unchanged */
    f = J("{\"frameNo\":127}");
    CHECK(anvil_devtools_next(&st, f, 0, &src) == NULL);
    CHECK_INT(st.seq, 126);
    cJSON_Delete(f);
    f = J("{\"frameNo\":127,\"runId\":\"run1\",\"status\":\"running\",\"root\":{\"id\":\"r\"}}");
    CHECK(anvil_devtools_next(&st, f, 0, &src) == NULL);
    CHECK_INT(st.seq, 126);
    cJSON_Delete(f);

    cJSON_Delete(tree);
    anvil_devtools_state_clear(&st);
}

/* anvil_devtools_snapshot is exactly the `snapshot` member of the first
 * event a stream sends for the same frame (getDevToolsSnapshot relies on
 * it), and reads the frame without changing it. */
static void test_snapshot(void)
{
    anvil_devtools_source src = { "long", NULL };
    cJSON *f = frame(7, 3, 2);
    cJSON *before = cJSON_Duplicate(f, true);
    cJSON *snap = anvil_devtools_snapshot(f, 1767225600123LL, &src);
    anvil_devtools_state st = { 0 };
    cJSON *p = anvil_devtools_next(&st, f, 1767225600123LL, &src);
    CHECK(snap && p);
    CHECK(cJSON_Compare(snap, M(p, "snapshot"), true));
    CHECK(cJSON_Compare(f, before, true));
    static const char head[] = "{\"version\":1,\"runId\":\"run1\",\"frameNo\":7,\"seq\":7,\"status\":\"running\","
                               "\"runState\":{\"runId\":\"run1\",\"state\":\"running\","
                               "\"computedAt\":\"2026-01-01T00:00:00.123Z\"},"
                               "\"root\":{\"id\":18652613,\"type\":\"workflow\",\"name\":\"long\"";
    char *text = anvil_json_print(snap);
    CHECK(text && strncmp(text, head, sizeof head - 1) == 0);
    if (text && strncmp(text, head, sizeof head - 1) != 0)
        fprintf(stderr, "  got %s\n", text);
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
        CHECK(anvil_devtools_snapshot(b, 0, &src) == NULL);
        cJSON_Delete(b);
    }
    CHECK(anvil_devtools_snapshot(NULL, 0, &src) == NULL);
}

int main(void)
{
    test_tree_shape();
    test_state_vocabulary();
    test_id_collision();
    test_run_state();
    test_diff_ops();
    test_replace_root();
    test_apply_rejects();
    test_policy();
    test_snapshot();
    UNIT_DONE();
}
