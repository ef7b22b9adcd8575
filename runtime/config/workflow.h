/*
 * runtime/config/workflow.h — workflow files: a tree of nodes, loaded and checked.
 *
 * A workflow is a YAML file (docs/workflows.md): `name`, `description` and a
 * `root` node. Nodes are `sequence`, `parallel`, `task`, `approval` and
 * `signal`; every node has an id, unique in the file (containers without an
 * explicit `id` get one from their position, e.g. "sequence@root.0").
 * Loading reports every problem with file, line and column: unknown keys,
 * wrong types, duplicate ids, bad `${...}` references (unknown node, a node
 * that is not certain to have finished before this one starts, unknown
 * root), invalid timeouts and retries, and a task's `outputSchema`
 * (output_schema_load.h): its own shape, a static `output` that cannot
 * match it, and references to fields it does not declare. The optional
 * top-level `inputSchema` declares the launch input in the same format;
 * with it, `${input.x}` must name a declared field, and launches are
 * checked against it (the engine's job, not the loader's).
 *
 * Ownership: anvil_workflow_load returns a workflow the caller frees with
 * anvil_workflow_free; every node, string and cJSON inside belongs to it.
 */
#ifndef ANVIL_WORKFLOW_H
#define ANVIL_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "diag.h"
#include "output_schema.h"

typedef enum anvil_node_kind {
    ANVIL_NODE_SEQUENCE = 0,
    ANVIL_NODE_PARALLEL,
    ANVIL_NODE_TASK,
    ANVIL_NODE_APPROVAL,
    ANVIL_NODE_SIGNAL
} anvil_node_kind;

typedef struct anvil_wf_node {
    anvil_node_kind kind;
    char *id;
    int line, column;                 /* where the node is declared */
    struct anvil_wf_node *parent;     /* NULL for the root */
    size_t index;                     /* position in the workflow's nodes[] */

    /* sequence, parallel */
    struct anvil_wf_node **children;
    size_t n_children;

    /* task: exactly one of run / output */
    char *run;                        /* shell command template, or NULL */
    cJSON *output;                    /* static output template (an object), or NULL */
    int64_t timeout_ms;               /* 0 = no timeout of its own */
    int retries;                      /* extra attempts after a failure, >= 0 */
    anvil_output_schema *output_schema; /* declared fields of the row, or NULL */

    /* approval */
    char *title;                      /* defaults to the id */
    char **allowed_scopes;
    size_t n_allowed_scopes;
    char **allowed_users;
    size_t n_allowed_users;
    cJSON *decision_schema;           /* JSON Schema for decision.value, or NULL */

    /* signal */
    char *signal_name;
    char *correlation_key;            /* template, or NULL = any key */
} anvil_wf_node;

typedef struct anvil_workflow {
    char *file;
    char *name;                       /* the file's `name`, may be NULL */
    char *description;                /* may be NULL */
    bool version_workspace;           /* `versionWorkspace` (default true):
                                         task attempts are committed to the
                                         run's workspace repository */
    anvil_output_schema *input_schema; /* `inputSchema`: the launch input's
                                         declared fields, or NULL (any object) */
    anvil_wf_node *root;
    anvil_wf_node **nodes;            /* every node, depth-first pre-order */
    size_t n_nodes;
} anvil_workflow;

/* Load and check `path`. Every problem is appended to *diags. Returns 0 and
 * sets *out when the file is valid; -1 otherwise (*out is NULL). */
int anvil_workflow_load(const char *path, anvil_workflow **out, anvil_diags *diags);

void anvil_workflow_free(anvil_workflow *wf);

/* Node by id, or NULL. */
const anvil_wf_node *anvil_workflow_node(const anvil_workflow *wf, const char *id);

/* ---- templates -----------------------------------------------------------
 * `${input.a.b}` reads the launch input; `${outputs.<node>.<field>...}` reads
 * a finished task's output row. `$$` is a literal '$'.
 */

typedef enum anvil_template_mode {
    ANVIL_TEMPLATE_TEXT = 0,          /* values inserted as is (strings raw,
                                         others as compact JSON) */
    ANVIL_TEMPLATE_SHELL              /* every value single-quoted for /bin/sh,
                                         so input cannot inject commands */
} anvil_template_mode;

/* Largest string anvil_template_expand returns, and the most bytes
 * anvil_template_expand_json adds to the tree it builds: a template with a
 * reference to a large value repeated many times must not exhaust memory. */
#define ANVIL_TEMPLATE_MAX_BYTES ((size_t)1 << 20)

typedef enum anvil_template_root {
    ANVIL_TEMPLATE_INPUT = 0,         /* ${input...} */
    ANVIL_TEMPLATE_OUTPUTS            /* ${outputs.<node>...} */
} anvil_template_root;

/* One `${...}` reference. Pointers point into the template (not
 * NUL-terminated). Path segments match [A-Za-z0-9_-]+ and are separated by
 * single dots; for outputs the first segment is the node id. */
typedef struct anvil_template_ref {
    anvil_template_root root;
    const char *expr;                 /* between "${" and "}": "outputs.build.x" */
    size_t expr_len;
    const char *path;                 /* after the root word and its '.': "build.x" */
    size_t path_len;                  /* 0 for a bare ${input} */
    size_t offset;                    /* of the '$' in the template */
} anvil_template_ref;

typedef void (*anvil_template_ref_fn)(void *ctx, const anvil_template_ref *ref);

/* Check a template's syntax (the loader calls this at load time) and call fn
 * (may be NULL) for every reference in order. Returns 0, or -1 with a
 * message in err for the first problem: unterminated `${`, empty or
 * malformed reference, unknown root word, `${outputs}` without a node; in
 * SHELL mode also a reference where quoting cannot be guaranteed (in a
 * comment or heredoc, after backticks or a $(...) inside "...", right after
 * a backslash or a '$'). Expansion refuses the same templates. */
int anvil_template_scan(const char *tmpl, anvil_template_mode mode,
                        anvil_template_ref_fn fn, void *ctx, char *err, size_t errlen);

/* Expand a string template. Returns a malloc'd string, or NULL with a message
 * in err (unknown reference at run time, e.g. input.sha not given).
 * A path segment of digits also indexes an array (${input.items.0}).
 * SHELL mode follows the template's own quoting: a value becomes one
 * '...' word outside quotes, and stays inside the author's '...' or "..."
 * string without being able to end it. */
char *anvil_template_expand(const char *tmpl, anvil_template_mode mode,
                            const cJSON *input, const cJSON *outputs,
                            char *err, size_t errlen);

/* Expand every string inside a JSON template (objects, arrays). A string that
 * is exactly one `${...}` takes the referenced value with its JSON type.
 * Returns a new tree, or NULL with a message. */
cJSON *anvil_template_expand_json(const cJSON *tmpl, const cJSON *input,
                                  const cJSON *outputs, char *err, size_t errlen);

#endif
