/*
 * tests/unit/test_workflow.c — workflow file loading: the shipped examples
 * load, a fixture using every key lands in the right fields (generated
 * container ids, pre-order, parents), and broken fixtures produce exactly
 * the expected diagnostics, each with its line and column.
 *
 * Fixtures live in tests/unit/fixtures/workflows/, found through
 * ANVIL_SOURCE_DIR (passed by tests/CMakeLists.txt), or argv[1] as the
 * source directory.
 */
#include "workflow.h"
#include "unit.h"

#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ANVIL_SOURCE_DIR
#define ANVIL_SOURCE_DIR "."
#endif

static const char *source_dir = ANVIL_SOURCE_DIR;

/* Fixture path; rotating buffers so two can be live at once. */
static const char *fx(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/tests/unit/fixtures/workflows/%s", source_dir, name);
    return b;
}

/* Whether d holds exactly this problem at line:col (file checked by suffix). */
static bool has_diag(const anvil_diags *d, const char *file, int line, int col, const char *msg)
{
    size_t lf = strlen(file);
    for (size_t i = 0; i < d->n; i++) {
        const anvil_diag *g = &d->items[i];
        size_t lg = g->file ? strlen(g->file) : 0;
        if (lg >= lf && !strcmp(g->file + lg - lf, file) && g->line == line &&
            g->column == col && !strcmp(g->message, msg))
            return true;
    }
    return false;
}

#define CHECK_DIAG(d, file, line, col, msg) do { \
    bool found_ = has_diag((d), (file), (line), (col), (msg)); \
    CHECK(found_); \
    if (!found_) { \
        fprintf(stderr, "  wanted %s:%d:%d: %s\n  got:\n", (file), (line), (col), (msg)); \
        anvil_diags_print((d), stderr); \
    } \
} while (0)

/* Load a fixture that must be invalid, expecting exactly n problems. */
static anvil_diags load_bad(const char *name, size_t n)
{
    anvil_workflow *wf = (anvil_workflow *)1;
    anvil_diags d = {0};
    CHECK_INT(anvil_workflow_load(fx(name), &wf, &d), -1);
    CHECK(wf == NULL);
    CHECK_INT(d.n, n);
    if (d.n != n)
        anvil_diags_print(&d, stderr);
    return d;
}

static char *json(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : NULL;
}

static void check_json(const cJSON *j, const char *want)
{
    char *s = json(j);
    CHECK_STR(s, want);
    free(s);
}

static void test_examples(void)
{
    char pattern[1024];
    snprintf(pattern, sizeof pattern, "%s/examples/workflows/*.yaml", source_dir);
    glob_t g;
    CHECK_INT(glob(pattern, 0, NULL, &g), 0);
    CHECK(g.gl_pathc >= 3);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        anvil_workflow *wf = NULL;
        anvil_diags d = {0};
        int rc = anvil_workflow_load(g.gl_pathv[i], &wf, &d);
        CHECK_INT(rc, 0);
        CHECK_INT(d.n, 0);
        if (rc != 0 || d.n)
            anvil_diags_print(&d, stderr);
        CHECK(wf && wf->root && wf->n_nodes > 1 && wf->nodes[0] == wf->root);
        anvil_workflow_free(wf);
        anvil_diags_clear(&d);
    }
    globfree(&g);
}

/* Every key of an outputSchema field lands in its place (valid_full.yaml). */
static void check_build_schema(const anvil_output_schema *s)
{
    static const char *const names[] = {"artifact", "size", "level", "ratio", "ok", "meta",
                                        "files", "_any", "none-1"};
    static const anvil_field_type types[] = {
        ANVIL_FIELD_STRING, ANVIL_FIELD_INTEGER, ANVIL_FIELD_STRING, ANVIL_FIELD_NUMBER,
        ANVIL_FIELD_BOOLEAN, ANVIL_FIELD_OBJECT, ANVIL_FIELD_ARRAY, ANVIL_FIELD_UNKNOWN,
        ANVIL_FIELD_NULL,
    };
    static const bool optional[] = {false, true, false, false, false, true, true, false, false};
    static const char *const enums[] = {NULL, "[1,2]", "[\"low\",\"high\",\"1\"]", "[0.5,1]",
                                        "[true]", NULL, NULL, NULL, NULL};
    size_t n = sizeof names / sizeof names[0];
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_INT(s->n_fields, n);
    for (size_t i = 0; i < n && i < s->n_fields; i++) {
        const anvil_output_field *f = &s->fields[i];
        CHECK_STR(f->name, names[i]);
        CHECK_INT(f->type, types[i]);
        CHECK_INT(f->optional, optional[i]);
        CHECK_INT(f->nullable, i == 1);
        CHECK_INT(f->line, 14 + (int)i);
        if (enums[i])
            check_json(f->enum_values, enums[i]);
        else
            CHECK(f->enum_values == NULL);
    }
    if (n <= s->n_fields) {
        CHECK_STR(s->fields[0].description, "the tarball");
        CHECK(s->fields[2].description == NULL);   /* "" describes nothing */
        CHECK(s->fields[1].description == NULL);
    }
}

static void test_valid_full(void)
{
    anvil_workflow *wf = NULL;
    anvil_diags d = {0};
    CHECK_INT(anvil_workflow_load(fx("valid_full.yaml"), &wf, &d), 0);
    CHECK_INT(d.n, 0);
    anvil_diags_print(&d, stderr);
    anvil_diags_clear(&d);
    if (!wf)
        return;
    CHECK_STR(wf->file, fx("valid_full.yaml"));
    CHECK_STR(wf->name, "full");
    CHECK_STR(wf->description, "Every node kind and key.");

    /* Pre-order, with generated ids for containers without one. */
    static const char *const ids[] = {
        "sequence@root", "build", "meta", "approve", "plain-approval", "review", "any.key",
        "parallel@sequence@root.6", "notify", "tagging", "tag", "push",
        "sequence@parallel@sequence@root.6.2", "inner", "summary",
    };
    static const anvil_node_kind kinds[] = {
        ANVIL_NODE_SEQUENCE, ANVIL_NODE_TASK, ANVIL_NODE_TASK, ANVIL_NODE_APPROVAL,
        ANVIL_NODE_APPROVAL, ANVIL_NODE_SIGNAL, ANVIL_NODE_SIGNAL, ANVIL_NODE_PARALLEL,
        ANVIL_NODE_TASK, ANVIL_NODE_SEQUENCE, ANVIL_NODE_TASK, ANVIL_NODE_TASK,
        ANVIL_NODE_SEQUENCE, ANVIL_NODE_TASK, ANVIL_NODE_TASK,
    };
    static const int parents[] = {-1, 0, 0, 0, 0, 0, 0, 0, 7, 7, 9, 9, 7, 12, 0};
    static const int lines[] = {5, 6, 23, 40, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54};
    static const int cols[] = {3, 7, 7, 7, 7, 7, 7, 7, 11, 11, 17, 17, 11, 15, 7};
    size_t n = sizeof ids / sizeof ids[0];
    CHECK_INT(wf->n_nodes, n);
    for (size_t i = 0; i < n && i < wf->n_nodes; i++) {
        const anvil_wf_node *node = wf->nodes[i];
        CHECK_STR(node->id, ids[i]);
        CHECK_INT(node->kind, kinds[i]);
        CHECK_INT(node->index, i);
        CHECK_INT(node->line, lines[i]);
        CHECK_INT(node->column, cols[i]);
        if (parents[i] < 0)
            CHECK(node->parent == NULL);
        else
            CHECK(node->parent == wf->nodes[parents[i]]);
        CHECK(anvil_workflow_node(wf, ids[i]) == node);
        /* Every child lists its parent and sits right after its elder
         * sibling's subtree: the children arrays agree with pre-order. */
        for (size_t c = 0; c < node->n_children; c++)
            CHECK(node->children[c]->parent == node);
    }
    CHECK(wf->root == wf->nodes[0]);
    CHECK(anvil_workflow_node(wf, "nope") == NULL);
    CHECK(anvil_workflow_node(wf, NULL) == NULL);
    CHECK(anvil_workflow_node(NULL, "build") == NULL);

    const anvil_wf_node *root = wf->root;
    CHECK_INT(root->n_children, 8);
    static const int root_children[] = {1, 2, 3, 4, 5, 6, 7, 14};
    for (size_t c = 0; c < 8 && c < root->n_children; c++)
        CHECK(root->children[c] == wf->nodes[root_children[c]]);
    const anvil_wf_node *par = wf->nodes[7];
    CHECK_INT(par->n_children, 3);
    if (par->n_children == 3) {
        CHECK(par->children[0] == wf->nodes[8]);
        CHECK(par->children[1] == wf->nodes[9]);
        CHECK(par->children[2] == wf->nodes[12]);
    }
    CHECK_INT(wf->nodes[9]->n_children, 2);
    CHECK_INT(wf->nodes[12]->n_children, 1);

    const anvil_wf_node *build = anvil_workflow_node(wf, "build");
    if (build) {
        CHECK_STR(build->run, "make build ${input.sha}");
        CHECK(build->output == NULL);
        CHECK_INT(build->timeout_ms, 600000);
        CHECK_INT(build->retries, 3);
        check_build_schema(build->output_schema);
        CHECK(build->children == NULL && build->n_children == 0);
        CHECK(build->title == NULL && build->signal_name == NULL);
    }
    const anvil_wf_node *meta = anvil_workflow_node(wf, "meta");
    if (meta) {
        CHECK(meta->run == NULL);
        CHECK_INT(meta->timeout_ms, 0);
        CHECK_INT(meta->retries, 0);
        /* Plain scalars take their YAML type; quoted ones stay strings. */
        check_json(meta->output,
                   "{\"n\":1,\"f\":2.5,\"neg\":-3,\"exp\":1000,\"t\":true,\"no\":false,"
                   "\"nothing\":null,\"tilde\":null,\"quoted\":\"42\",\"single\":\"true\","
                   "\"text\":\"hello world\",\"list\":[1,\"two\",\"3\"],"
                   "\"nested\":{\"a\":{\"b\":\"${outputs.build.artifact}\"}},\"empty\":{}}");
        CHECK(meta->output_schema == NULL);
    }
    const anvil_wf_node *approve = anvil_workflow_node(wf, "approve");
    if (approve) {
        CHECK_STR(approve->title, "Ship it?");
        CHECK_INT(approve->n_allowed_scopes, 2);
        if (approve->n_allowed_scopes == 2) {
            CHECK_STR(approve->allowed_scopes[0], "approval:submit");
            CHECK_STR(approve->allowed_scopes[1], "admin");
        }
        CHECK_INT(approve->n_allowed_users, 1);
        if (approve->n_allowed_users == 1)
            CHECK_STR(approve->allowed_users[0], "user:a");
        check_json(approve->decision_schema, "{\"type\":\"boolean\"}");
        CHECK(approve->run == NULL && approve->output == NULL);
    }
    const anvil_wf_node *plain = anvil_workflow_node(wf, "plain-approval");
    if (plain) {
        CHECK_STR(plain->title, "plain-approval");   /* defaults to the id */
        CHECK_INT(plain->n_allowed_scopes, 0);
        CHECK_INT(plain->n_allowed_users, 0);
        CHECK(plain->decision_schema == NULL);
    }
    const anvil_wf_node *review = anvil_workflow_node(wf, "review");
    if (review) {
        CHECK_STR(review->signal_name, "github.comment.created");
        CHECK_STR(review->correlation_key, "${input.issue}");
    }
    const anvil_wf_node *any = anvil_workflow_node(wf, "any.key");
    if (any) {
        CHECK_STR(any->signal_name, "ping");
        CHECK(any->correlation_key == NULL);
    }
    const anvil_wf_node *notify = anvil_workflow_node(wf, "notify");
    if (notify)
        check_json(notify->output,
                   "{\"message\":\"shipped ${input.sha} after ${outputs.build.artifact}\"}");
    const anvil_wf_node *push = anvil_workflow_node(wf, "push");
    if (push)
        CHECK_STR(push->run, "git push origin \"${outputs.tag.name}\"");
    const anvil_wf_node *tag = anvil_workflow_node(wf, "tag");
    if (tag)
        CHECK_STR(tag->run, "git tag '${outputs.meta.text}'");
    anvil_workflow_free(wf);
}

static void test_duplicates(void)
{
    const char *f = "bad_duplicate.yaml";
    anvil_diags d = load_bad(f, 2);
    CHECK_DIAG(&d, f, 5, 23, "root.sequence[1].parallel[0].task.id: duplicate id 'build' "
                             "(first used at line 3)");
    /* The first "test" id is on line 7, below its node's line 6. */
    CHECK_DIAG(&d, f, 10, 17, "root.sequence[1].parallel[2].task.id: duplicate id 'test' "
                              "(first used at line 7)");
    anvil_diags_clear(&d);
}

static void test_unknown_keys(void)
{
    const char *f = "bad_unknown_keys.yaml";
    anvil_diags d = load_bad(f, 7);
    CHECK_DIAG(&d, f, 2, 1, "version: unknown key (allowed: name, description, versionWorkspace, "
               "inputSchema, root)");
    CHECK_DIAG(&d, f, 5, 35, "a.timout: unknown key (allowed: id, run, output, timeoutMs, "
                             "retries, outputSchema, description)");
    CHECK_DIAG(&d, f, 6, 26, "b.scopes: unknown key (allowed: id, title, allowedScopes, "
                             "allowedUsers, decisionSchema, description)");
    CHECK_DIAG(&d, f, 7, 7, "root.sequence[2]: unknown key 'tsak' (a node is one of: "
                            "sequence, parallel, task, approval or signal)");
    CHECK_DIAG(&d, f, 8, 71, "root.sequence[3].sequence.extra: unknown key (allowed: id, "
                             "steps, description)");
    CHECK_DIAG(&d, f, 9, 33, "f.key: unknown key (allowed: id, name, correlationKey, "
                             "description)");
    CHECK_DIAG(&d, f, 11, 7, "root.sequence[5]: a node has exactly one kind, got both "
                             "'task' and 'approval'");
    anvil_diags_clear(&d);
}

static void test_run_output(void)
{
    const char *f = "bad_run_output.yaml";
    anvil_diags d = load_bad(f, 2);
    CHECK_DIAG(&d, f, 3, 13, "both: give either run or output, not both");
    CHECK_DIAG(&d, f, 4, 13, "neither: needs run (a shell command) or output (a static row)");
    anvil_diags_clear(&d);
}

static void test_ids(void)
{
    const char *f = "bad_ids.yaml";
    anvil_diags d = load_bad(f, 6);
    CHECK_DIAG(&d, f, 3, 13, "root.sequence[0].task: missing id (every task needs one)");
    CHECK_DIAG(&d, f, 4, 17, "root.sequence[1].approval: missing id (every approval needs one)");
    CHECK_DIAG(&d, f, 5, 19, "root.sequence[2].task.id: invalid id 'bad id!' (1-64 letters, "
                             "digits, '_', '.' or '-', starting with a letter or digit)");
    CHECK_DIAG(&d, f, 6, 19, "root.sequence[3].task.id: invalid id '-leading' (1-64 letters, "
                             "digits, '_', '.' or '-', starting with a letter or digit)");
    CHECK_DIAG(&d, f, 7, 15, "s.name: missing (a signal needs the name it waits for)");
    /* 65 characters; the 64-character id on line 9 is fine. */
    CHECK_DIAG(&d, f, 8, 19, "root.sequence[5].task.id: invalid id "
                             "'a123456789012345678901234567890123456789012345678901234567890123"
                             "...' (1-64 letters, digits, '_', '.' or '-', starting with a "
                             "letter or digit)");
    anvil_diags_clear(&d);
}

static void test_refs(void)
{
    const char *f = "bad_refs.yaml";
    anvil_diags d = load_bad(f, 11);
    CHECK_DIAG(&d, f, 3, 31, "first.run: ${outputs.nope.x} refers to unknown node 'nope'");
    CHECK_DIAG(&d, f, 6, 35, "right.run: outputs.left is not guaranteed to have finished before "
                             "right starts (they are in the same parallel, or left comes later)");
    CHECK_DIAG(&d, f, 7, 39, "early.output.v: outputs.late is not guaranteed to have finished "
                             "before early starts (they are in the same parallel, or late comes "
                             "later)");
    /* line 9: ${outputs.gate.x} is fine: an approval finishes with a row */
    CHECK_DIAG(&d, f, 10, 51, "sig.correlationKey: unknown reference '${inptu.sha}' (references "
                              "start with input or outputs)");
    CHECK_DIAG(&d, f, 11, 38, "unterminated.run: unterminated reference '${input.sha' "
                              "(missing '}')");
    CHECK_DIAG(&d, f, 12, 30, "late.run: ${outputs.my.node.x}: node 'my.node' cannot be "
                              "referenced because its id contains '.' (unsupported in "
                              "references)");
    CHECK_DIAG(&d, f, 14, 39, "self.output.me: ${outputs.self.x}: a node cannot use its own "
                              "output");
    CHECK_DIAG(&d, f, 15, 41, "badpath.output.v: invalid reference '${input..x}' (names of "
                              "letters, digits, '_' and '-', separated by single dots)");
    CHECK_DIAG(&d, f, 15, 59, "badpath.output.w: '${outputs}' needs a node: write "
                              "${outputs.<node>} or ${outputs.<node>.<field>}");
    CHECK_DIAG(&d, f, 16, 33, "comment.run: '${input.x}' cannot be quoted safely for the shell "
                              "inside a shell comment");
    /* pa -> pb is fine (same sequence); pb -> pc crosses a parallel. */
    CHECK_DIAG(&d, f, 19, 32, "pc.run: outputs.pb is not guaranteed to have finished before pc "
                              "starts (they are in the same parallel, or pb comes later)");
    anvil_diags_clear(&d);
}

static void test_empty_containers(void)
{
    const char *f = "bad_empty.yaml";
    anvil_diags d = load_bad(f, 4);
    CHECK_DIAG(&d, f, 3, 17, "root.sequence[0].parallel: a parallel needs at least one step");
    CHECK_DIAG(&d, f, 4, 34, "root.sequence[1].sequence.steps: a sequence needs at least one "
                             "step");
    CHECK_DIAG(&d, f, 5, 17, "root.sequence[2].sequence.steps: missing (a sequence needs its "
                             "steps)");
    CHECK_DIAG(&d, f, 6, 16, "root.sequence[3].sequence: expected a list of nodes, or a mapping "
                             "with id and steps, got null");
    anvil_diags_clear(&d);
}

static void test_types(void)
{
    const char *f = "bad_types.yaml";
    anvil_diags d = load_bad(f, 22);
    CHECK_DIAG(&d, f, 1, 7, "name: expected a string, got a list");
    CHECK_DIAG(&d, f, 4, 28, "t1.run: expected a string, got a list");
    CHECK_DIAG(&d, f, 4, 47, "t1.timeoutMs: expected a positive integer, got the quoted string "
                             "\"600\"");
    CHECK_DIAG(&d, f, 4, 63, "t1.retries: 101 is too large (maximum 100)");
    CHECK_DIAG(&d, f, 5, 31, "t2.output: expected a mapping, got a list");
    CHECK_DIAG(&d, f, 5, 50, "t2.timeoutMs: must be a positive integer, got 0");
    CHECK_DIAG(&d, f, 5, 62, "t2.retries: must be a non-negative integer, got -1");
    CHECK_DIAG(&d, f, 5, 80, "t2.outputSchema: expected a mapping, got the quoted string \"x\"");
    CHECK_DIAG(&d, f, 6, 34, "a1.title: expected a string, got a mapping");
    CHECK_DIAG(&d, f, 6, 59, "a1.allowedScopes: expected a list of strings, got \"admin\"");
    CHECK_DIAG(&d, f, 6, 85, "a1.allowedUsers[1]: expected a non-empty string, got a list");
    CHECK_DIAG(&d, f, 6, 112, "a1.decisionSchema: expected a mapping, got a list");
    CHECK_DIAG(&d, f, 7, 31, "s1.name: expected a string, got null");
    CHECK_DIAG(&d, f, 7, 50, "s1.correlationKey: expected a string, got a list");
    CHECK_DIAG(&d, f, 8, 13, "root.sequence[4].task: expected a mapping, got the quoted string "
                             "\"just a string\"");
    CHECK_DIAG(&d, f, 9, 7, "root.sequence[5]: expected a node (a mapping with one key: "
                            "sequence, parallel, task, approval or signal), got \"42\"");
    CHECK_DIAG(&d, f, 10, 17, "root.sequence[6].parallel: expected a list of nodes, or a "
                              "mapping with id and steps, got \"7\"");
    CHECK_DIAG(&d, f, 11, 39, "t3.output.a: duplicate key (first defined at line 11)");
    CHECK_DIAG(&d, f, 11, 45, "t3.output: keys must be strings, got a list");
    CHECK_DIAG(&d, f, 11, 58, "t3.output.big: number 1e999 is out of range");
    CHECK_DIAG(&d, f, 11, 80, "t3.description: expected a string, got a list");
    CHECK_DIAG(&d, f, 12, 19, "root.sequence[8].task.id: expected a string, got a list");
    anvil_diags_clear(&d);
}

static void test_syntax_and_shape(void)
{
    anvil_diags d = load_bad("bad_syntax.yaml", 1);
    CHECK_DIAG(&d, "bad_syntax.yaml", 6, 1, "YAML syntax error: found unexpected end of stream "
                                           "(while scanning a quoted scalar at line 5, column 27)");
    anvil_diags_clear(&d);

    d = load_bad("bad_top.yaml", 1);
    CHECK_DIAG(&d, "bad_top.yaml", 1, 1, "top level: expected a mapping, got a list");
    anvil_diags_clear(&d);

    d = load_bad("bad_no_root.yaml", 1);
    CHECK_DIAG(&d, "bad_no_root.yaml", 1, 1,
               "root: missing (a workflow needs exactly one root node)");
    anvil_diags_clear(&d);

    d = load_bad("empty.yaml", 1);
    CHECK_DIAG(&d, "empty.yaml", 0, 0, "workflow file is empty");
    anvil_diags_clear(&d);

    /* An alias re-walks a list (or makes a cycle); refused, not looped on. */
    d = load_bad("bad_alias.yaml", 1);
    CHECK_DIAG(&d, "bad_alias.yaml", 2, 13, "root.sequence[1].sequence: YAML aliases of "
               "mappings and lists are not supported in workflow files (write the value out)");
    anvil_diags_clear(&d);
    d = load_bad("bad_alias_json.yaml", 1);
    CHECK_DIAG(&d, "bad_alias_json.yaml", 4, 13, "a.output.self: YAML aliases of mappings and "
               "lists are not supported in workflow files (write the value out)");
    anvil_diags_clear(&d);

    d = load_bad("does-not-exist.yaml", 1);
    CHECK(d.n == 1 && strstr(d.items[0].message, "cannot open") != NULL);
    anvil_diags_clear(&d);

    /* diags may be NULL: the result still says invalid. */
    anvil_workflow *wf = NULL;
    CHECK_INT(anvil_workflow_load(fx("bad_types.yaml"), &wf, NULL), -1);
    CHECK(wf == NULL);
    CHECK_INT(anvil_workflow_load(fx("valid_full.yaml"), &wf, NULL), 0);
    CHECK(wf != NULL);
    anvil_workflow_free(wf);
    anvil_workflow_free(NULL);
}

/* Write text to a temporary file; returns its path (static buffer). */
static const char *temp_yaml(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/anvil-wf-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok ? path : NULL;
}

static anvil_diags load_text(const char *text, size_t len, int want_rc)
{
    anvil_diags d = {0};
    anvil_workflow *wf = NULL;
    const char *p = temp_yaml(text, len);
    CHECK(p != NULL);
    if (!p)
        return d;
    CHECK_INT(anvil_workflow_load(p, &wf, &d), want_rc);
    anvil_workflow_free(wf);
    unlink(p);
    return d;
}

static void test_limits(void)
{
    /* 36 nested sequences: refused with a message, no deep recursion. */
    char buf[16384];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "root:\n  sequence:\n");
    for (int i = 0; i < 36; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%*s- sequence:\n", i * 4 + 4, "");
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%*s- task: { id: deep, run: \"true\" }\n",
                          36 * 4 + 4, "");
    anvil_diags d = load_text(buf, n, -1);
    CHECK_INT(d.n, 1);
    CHECK(d.n == 1 && strstr(d.items[0].message, "nested deeper than 32 levels"));
    anvil_diags_clear(&d);

    /* A NUL inside a quoted string would silently cut the command. */
    static const char nul[] = "root:\n  task: { id: a, run: \"echo a\\0b\" }\n";
    d = load_text(nul, sizeof nul - 1, -1);
    CHECK_INT(d.n, 1);
    CHECK(d.n == 1 && !strcmp(d.items[0].message, "a.run: strings must not contain NUL "
                                                  "characters"));
    anvil_diags_clear(&d);

    /* A second YAML document would be ignored silently; it is an error. */
    static const char two[] = "root:\n  task: { id: a, run: \"true\" }\n---\nroot: {}\n";
    d = load_text(two, sizeof two - 1, -1);
    CHECK_INT(d.n, 1);
    CHECK(d.n == 1 && strstr(d.items[0].message, "only one YAML document is allowed"));
    anvil_diags_clear(&d);

    /* A root that is a single task is a workflow too. */
    static const char one[] = "root:\n  task: { id: only, output: { a: 1 } }\n";
    d = load_text(one, sizeof one - 1, 0);
    CHECK_INT(d.n, 0);
    anvil_diags_clear(&d);
}

static void test_container_refs(void)
{
    const char *f = "bad_container_ref.yaml";
    anvil_diags d = load_bad(f, 1);
    CHECK_DIAG(&d, f, 6, 39, "after.output.v: ${outputs.steps.x} refers to sequence 'steps', but "
                             "only task, approval and signal nodes have an output row");
    anvil_diags_clear(&d);
}

/* A workflow's inputSchema: loaded in the outputSchema format onto the
 * workflow, its problems reported under "inputSchema", and with it every
 * ${input.x} must name a declared field. */
static void test_input_schema(void)
{
    anvil_workflow *wf = NULL;
    anvil_diags d = {0};
    CHECK_INT(anvil_workflow_load(fx("valid_input_schema.yaml"), &wf, &d), 0);
    CHECK_INT(d.n, 0);
    if (d.n)
        anvil_diags_print(&d, stderr);
    const anvil_output_schema *in = wf ? wf->input_schema : NULL;
    CHECK(in != NULL);
    if (in) {
        CHECK_INT(in->n_fields, 4);
        CHECK_STR(in->fields[0].name, "sha");
        CHECK_INT(in->fields[0].type, ANVIL_FIELD_STRING);
        CHECK_INT(in->fields[0].optional, false);
        CHECK_STR(in->fields[0].description, "The commit.");
        CHECK_INT(in->fields[1].type, ANVIL_FIELD_INTEGER);
        CHECK_INT(in->fields[1].optional, true);
        check_json(in->fields[2].enum_values, "[\"fast\",\"full\"]");
        CHECK_INT(in->fields[3].nullable, true);
    }
    anvil_workflow_free(wf);
    anvil_diags_clear(&d);

    /* Undeclared: NULL, and ${input.anything} still loads (valid_full.yaml
     * reads inputs it never declares). */
    CHECK_INT(anvil_workflow_load(fx("valid_full.yaml"), &wf, NULL), 0);
    CHECK(wf && wf->input_schema == NULL);
    anvil_workflow_free(wf);

    const char *f = "bad_input_type.yaml";
    d = load_bad(f, 2);
    CHECK_DIAG(&d, f, 4, 26, "inputSchema.fields[0].type: unknown type \"float\" (expected "
                             "string, number, integer, boolean, object, array, null or unknown)");
    CHECK_DIAG(&d, f, 5, 35, "inputSchema.fields[1].colour: unknown key (allowed: name, type, "
                             "optional, nullable, description, enum)");
    anvil_diags_clear(&d);

    f = "bad_input_json_schema.yaml";
    d = load_bad(f, 1);
    CHECK_DIAG(&d, f, 2, 14, "inputSchema: 'type' belongs to a JSON Schema; declare its fields "
                             "instead: fields: [{name, type, optional, nullable, description, "
                             "enum}] (docs/workflows.md)");
    anvil_diags_clear(&d);

    f = "bad_input_ref.yaml";
    d = load_bad(f, 3);
    CHECK_DIAG(&d, f, 8, 30, "typo.run: ${input.shaa}: the workflow declares no input field "
                             "'shaa' (its inputSchema has: sha, meta)");
    CHECK_DIAG(&d, f, 9, 38, "deep.output.v: ${input.sha.short}: input field 'sha' is a string, "
                             "which has no members");
    CHECK_DIAG(&d, f, 10, 51, "sig.correlationKey: ${input.issue}: the workflow declares no input "
                              "field 'issue' (its inputSchema has: sha, meta)");
    anvil_diags_clear(&d);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        source_dir = argv[1];
    test_examples();
    test_valid_full();
    test_duplicates();
    test_unknown_keys();
    test_run_output();
    test_ids();
    test_refs();
    test_container_refs();
    test_empty_containers();
    test_types();
    test_syntax_and_shape();
    test_limits();
    test_input_schema();
    UNIT_DONE();
}
