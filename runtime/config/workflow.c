/*
 * runtime/config/workflow.c — loading and checking a workflow file (workflow.h).
 *
 * Owns: the node tree (kinds, explicit and generated ids, the pre-order
 * list, parents), each kind's keys and types, YAML-to-JSON for `output` and
 * the schemas, and the load-time check of every `${...}` reference (the
 * node exists, is a task, and is certain to have finished first). Template
 * syntax and expansion are template.c's; reading typed YAML scalars with
 * positioned diagnostics is config_yaml.c's, reused through
 * config_internal.h so both files report problems the same way.
 *
 * Every problem is reported and loading carries on, so one run of
 * `anvil check-config` lists them all; a tree with problems is freed.
 */
#include "workflow.h"

#include "config_yaml.h"
#include "output_schema_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep recursion and quadratic id checks small on hostile
 * files; real workflows are far below them. */
#define MAX_NODE_DEPTH 32
#define MAX_JSON_DEPTH 64
#define MAX_NODES 10000
/* A year: long enough for any task, small enough that now + timeout cannot
 * overflow an int64 of milliseconds. */
#define MAX_TIMEOUT_MS ((int64_t)366 * 24 * 3600 * 1000)

static const char *const kind_names[] = {"sequence", "parallel", "task", "approval", "signal",
                                         NULL};
#define KINDS_TEXT "sequence, parallel, task, approval or signal"

/* A template string whose references are checked once the tree is whole
 * (a reference may name a node declared further down). */
typedef struct pending_ref {
    anvil_wf_node *owner;
    const yaml_node_t *scalar;     /* lives as long as the document */
    anvil_template_mode mode;
    char where[ANVIL_CFG_PATH_MAX];
} pending_ref;

typedef struct loader {
    anvil_cfg_ctx c;
    anvil_workflow *wf;
    size_t cap_nodes;
    int *id_lines;                 /* line of each node's id, parallel to wf->nodes */
    unsigned char *walked;         /* per YAML node: mapping/list already walked */
    size_t n_yaml;
    pending_ref *refs;
    size_t n_refs, cap_refs;
    bool too_many;                 /* MAX_NODES reported */
} loader;

/* ---- small helpers ------------------------------------------------------- */

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static size_t n_pairs(const yaml_node_t *map)
{
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static size_t n_items(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

/* "base[i]"; a path too long for the buffer is cut, which only shortens a
 * message that also carries a line and column. */
static void path_index(char out[ANVIL_CFG_PATH_MAX], const char *base, size_t i)
{
    snprintf(out, ANVIL_CFG_PATH_MAX, "%.*s[%zu]", ANVIL_CFG_PATH_MAX - 24, base, i);
}

/* ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ */
static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
            return false;
    }
    return true;
}

/* A YAML alias makes two places share one node, and an alias inside its own
 * anchor makes a cycle; walking each mapping and list once keeps the walk
 * linear and finite. */
static bool claim(loader *L, const yaml_node_t *n, const char *where)
{
    size_t i = (size_t)(n - L->c.doc->nodes.start);
    if (i < L->n_yaml && L->walked[i]) {
        anvil_cfg_error(&L->c, n, "%s: YAML aliases of mappings and lists are not supported "
                                  "in workflow files (write the value out)", where);
        return false;
    }
    if (i < L->n_yaml)
        L->walked[i] = 1;
    return true;
}

/* n must be a mapping with unique string keys (reported under where), not
 * walked before. False when it cannot be read at all. */
static bool open_map(loader *L, yaml_node_t *n, const char *where)
{
    return anvil_cfg_check_map(&L->c, n, where, NULL, false) && claim(L, n, where);
}

static void unknown_keys(loader *L, yaml_node_t *n, const char *label, const char *const *known)
{
    anvil_cfg_unknown_keys(&L->c, n, label, known);
}

static bool read_str(loader *L, yaml_node_t *n, const char *where, bool allow_empty, char **out)
{
    return anvil_cfg_string(&L->c, n, where, allow_empty, out);
}

/* Value of key in map, and its path for messages. */
static yaml_node_t *field(loader *L, yaml_node_t *map, const char *label, const char *key,
                          char path[ANVIL_CFG_PATH_MAX])
{
    anvil_cfg_path(path, label, key);
    return anvil_cfg_get(&L->c, map, key);
}

static void add_ref(loader *L, anvil_wf_node *owner, const yaml_node_t *s,
                    anvil_template_mode mode, const char *where)
{
    if (L->n_refs == L->cap_refs) {
        size_t cap = L->cap_refs ? L->cap_refs * 2 : 16;
        pending_ref *r = realloc(L->refs, cap * sizeof *r);
        if (!r) {
            anvil_cfg_oom(&L->c);
            return;
        }
        L->refs = r;
        L->cap_refs = cap;
    }
    pending_ref *p = &L->refs[L->n_refs++];
    *p = (pending_ref){.owner = owner, .scalar = s, .mode = mode};
    snprintf(p->where, sizeof p->where, "%s", where);
}

/* ---- YAML to JSON -------------------------------------------------------- */

/* A scalar leaf; a string leaf of a node's template is checked later. */
static cJSON *scalar_json(loader *L, yaml_node_t *n, const char *where, anvil_wf_node *owner)
{
    cJSON *j = anvil_cfg_scalar_json(&L->c, n, where);
    if (j && owner && cJSON_IsString(j))
        add_ref(L, owner, n, ANVIL_TEMPLATE_TEXT, where);
    return j;
}

/* Line of the first earlier key equal to pair i's key, or 0. */
static int earlier_key_line(loader *L, yaml_node_t *map, size_t i)
{
    const char *k = scalar(anvil_cfg_node(&L->c, map->data.mapping.pairs.start[i].key));
    for (size_t j = 0; j < i; j++) {
        yaml_node_t *o = anvil_cfg_node(&L->c, map->data.mapping.pairs.start[j].key);
        if (scalar(o) && !strcmp(scalar(o), k))
            return line_of(o);
    }
    return 0;
}

/* Any JSON. owner != NULL: string leaves are templates of that node. */
static cJSON *to_json(loader *L, yaml_node_t *n, const char *where, int depth,
                      anvil_wf_node *owner)
{
    char buf[80], p[ANVIL_CFG_PATH_MAX];
    if (!n)
        return NULL;
    if (depth > MAX_JSON_DEPTH) {
        anvil_cfg_error(&L->c, n, "%s: nested deeper than %d levels", where, MAX_JSON_DEPTH);
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE)
        return scalar_json(L, n, where, owner);
    if (!claim(L, n, where))
        return NULL;
    bool list = n->type == YAML_SEQUENCE_NODE, ok = true;
    cJSON *out = list ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!out) {
        anvil_cfg_oom(&L->c);
        return NULL;
    }
    size_t count = list ? n_items(n) : n_pairs(n);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *v;
        const char *key = NULL;
        if (list) {
            path_index(p, where, i);
            v = anvil_cfg_node(&L->c, n->data.sequence.items.start[i]);
        } else {
            yaml_node_t *k = anvil_cfg_node(&L->c, n->data.mapping.pairs.start[i].key);
            key = scalar(k);
            if (!key || anvil_cfg_is_null(k)) {
                anvil_cfg_error(&L->c, k, "%s: keys must be strings, got %s", where,
                                anvil_cfg_describe(k, buf));
                ok = false;
                continue;
            }
            anvil_cfg_path(p, where, key);
            int first = earlier_key_line(L, n, i);
            if (first) {
                anvil_cfg_error(&L->c, k, "%s: duplicate key (first defined at line %d)", p, first);
                ok = false;
                continue;
            }
            v = anvil_cfg_node(&L->c, n->data.mapping.pairs.start[i].value);
        }
        cJSON *item = to_json(L, v, p, depth + 1, owner);
        if (!item) {
            ok = false;
            continue;
        }
        if (!(list ? cJSON_AddItemToArray(out, item) : cJSON_AddItemToObject(out, key, item))) {
            cJSON_Delete(item);
            anvil_cfg_oom(&L->c);
            ok = false;
        }
    }
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static cJSON *to_json_object(loader *L, yaml_node_t *n, const char *where, anvil_wf_node *owner)
{
    char buf[80];
    if (n->type != YAML_MAPPING_NODE) {
        anvil_cfg_error(&L->c, n, "%s: expected a mapping, got %s", where, anvil_cfg_describe(n, buf));
        return NULL;
    }
    return to_json(L, n, where, 1, owner);
}

/* ---- nodes --------------------------------------------------------------- */

static anvil_wf_node *node_add(loader *L, anvil_node_kind kind, const yaml_node_t *at,
                               anvil_wf_node *parent)
{
    anvil_workflow *wf = L->wf;
    if (wf->n_nodes >= MAX_NODES) {
        if (!L->too_many)
            anvil_cfg_error(&L->c, at, "a workflow has at most %d nodes", MAX_NODES);
        L->too_many = true;
        return NULL;
    }
    if (wf->n_nodes == L->cap_nodes) {
        size_t cap = L->cap_nodes ? L->cap_nodes * 2 : 16;
        anvil_wf_node **nodes = realloc(wf->nodes, cap * sizeof *nodes);
        if (nodes)
            wf->nodes = nodes;
        int *lines = nodes ? realloc(L->id_lines, cap * sizeof *lines) : NULL;
        if (!lines) {
            anvil_cfg_oom(&L->c);
            return NULL;
        }
        L->id_lines = lines;
        L->cap_nodes = cap;
    }
    anvil_wf_node *n = calloc(1, sizeof *n);
    if (!n) {
        anvil_cfg_oom(&L->c);
        return NULL;
    }
    n->kind = kind;
    n->line = line_of(at);
    n->column = at ? (int)at->start_mark.column + 1 : 0;
    n->parent = parent;
    n->index = wf->n_nodes;
    L->id_lines[n->index] = n->line;
    wf->nodes[wf->n_nodes++] = n;
    return n;
}

/* Give node its id (taking ownership) and report a clash with any earlier
 * node: nodes are created in document order, so "earlier" is "above". */
static void set_id(loader *L, anvil_wf_node *node, char *id, const yaml_node_t *at,
                   const char *where)
{
    node->id = id;
    L->id_lines[node->index] = at ? line_of(at) : node->line;
    for (size_t i = 0; i < node->index; i++) {
        const anvil_wf_node *o = L->wf->nodes[i];
        if (o->id && !strcmp(o->id, id)) {
            anvil_cfg_error(&L->c, at, "%s: duplicate id '%s' (first used at line %d)", where, id,
                            L->id_lines[i]);
            return;
        }
    }
}

/* Explicit `id`. Returns whether the node has a valid one. */
static bool read_id(loader *L, anvil_wf_node *node, yaml_node_t *map, const char *where,
                    bool required)
{
    char p[ANVIL_CFG_PATH_MAX];
    yaml_node_t *v = field(L, map, where, "id", p);
    if (!v) {
        if (required)
            anvil_cfg_error(&L->c, map, "%s: missing id (every %s needs one)", where,
                            kind_names[node->kind]);
        return false;
    }
    char *id = NULL;
    if (!read_str(L, v, p, false, &id))
        return false;
    bool ok = valid_id(id);
    if (!ok)
        anvil_cfg_error(&L->c, v, "%s: invalid id '%.64s%s' (1-64 letters, digits, '_', '.' or "
                                  "'-', starting with a letter or digit)", p, id,
                        strlen(id) > 64 ? "..." : "");
    set_id(L, node, id, v, p);
    return ok;
}

/* Ids of containers without one: "<kind>@<parent id>.<index>", or
 * "<kind>@root" for the top; '@' cannot appear in explicit ids. */
static void generate_id(loader *L, anvil_wf_node *node, size_t pos, const char *where)
{
    const char *kind = kind_names[node->kind];
    const char *pid = node->parent && node->parent->id ? node->parent->id : "?";
    size_t len = strlen(kind) + strlen(pid) + 32;
    char *id = malloc(len);
    if (!id) {
        anvil_cfg_oom(&L->c);
        return;
    }
    if (node->parent)
        snprintf(id, len, "%s@%s.%zu", kind, pid, pos);
    else
        snprintf(id, len, "%s@root", kind);
    set_id(L, node, id, NULL, where);
}

static void label_of(const anvil_wf_node *node, bool id_ok, const char *where,
                     char out[ANVIL_CFG_PATH_MAX])
{
    snprintf(out, ANVIL_CFG_PATH_MAX, "%s", id_ok && node->id ? node->id : where);
}

/* `description` is for readers of the file; only its type is checked. */
static void skip_description(loader *L, yaml_node_t *map, const char *label)
{
    char p[ANVIL_CFG_PATH_MAX], *tmp = NULL;
    yaml_node_t *v = field(L, map, label, "description", p);
    if (v)
        read_str(L, v, p, true, &tmp);
    free(tmp);
}

static anvil_wf_node *parse_node(loader *L, yaml_node_t *n, anvil_wf_node *parent, size_t pos,
                                 const char *where, int depth);

static void parse_container(loader *L, anvil_wf_node *node, yaml_node_t *v, size_t pos,
                            const char *where, int depth)
{
    static const char *const keys[] = {"id", "steps", "description", NULL};
    const char *kind = kind_names[node->kind];
    char buf[80], swhere[ANVIL_CFG_PATH_MAX], p[ANVIL_CFG_PATH_MAX];
    yaml_node_t *steps = NULL;
    snprintf(swhere, sizeof swhere, "%s", where);
    if (v->type == YAML_MAPPING_NODE) {
        if (open_map(L, v, where)) {
            read_id(L, node, v, where, false);
            unknown_keys(L, v, where, keys);
            skip_description(L, v, where);
            steps = field(L, v, where, "steps", swhere);
            if (!steps)
                anvil_cfg_error(&L->c, v, "%s: missing (a %s needs its steps)", swhere, kind);
        }
    } else if (v->type == YAML_SEQUENCE_NODE) {
        steps = v;
    } else {
        anvil_cfg_error(&L->c, v, "%s: expected a list of nodes, or a mapping with id and steps, "
                                  "got %s", where, anvil_cfg_describe(v, buf));
    }
    if (!node->id)
        generate_id(L, node, pos, where);
    if (!steps)
        return;
    if (steps->type != YAML_SEQUENCE_NODE) {
        anvil_cfg_error(&L->c, steps, "%s: expected a list of nodes, got %s", swhere,
                        anvil_cfg_describe(steps, buf));
        return;
    }
    if (!claim(L, steps, swhere))
        return;
    size_t count = n_items(steps);
    if (count == 0) {
        anvil_cfg_error(&L->c, steps, "%s: a %s needs at least one step", swhere, kind);
        return;
    }
    node->children = calloc(count, sizeof *node->children);
    if (!node->children) {
        anvil_cfg_oom(&L->c);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        path_index(p, swhere, i);
        yaml_node_t *item = anvil_cfg_node(&L->c, steps->data.sequence.items.start[i]);
        anvil_wf_node *child = parse_node(L, item, node, i, p, depth + 1);
        if (child)
            node->children[node->n_children++] = child;
    }
}

static void count_ref(void *ctx, const anvil_template_ref *ref)
{
    (void)ref;
    (*(size_t *)ctx)++;
}

/* Whether a static row's value is only known once the run expands it: a
 * string holding a ${...} (exactly one reference even takes the value's
 * type). A template with a syntax error counts too; it is reported on its
 * own. */
static bool holds_template(const cJSON *v)
{
    size_t refs = 0;
    if (!cJSON_IsString(v))
        return false;
    return anvil_template_scan(v->valuestring, ANVIL_TEMPLATE_TEXT, count_ref, &refs, NULL, 0) != 0 ||
           refs > 0;
}

/* A static row is written in the file, so what can be known of it is
 * checked now: the fields it has must fit the schema (values with
 * templates are left to the run), and a member the schema does not
 * declare would silently be dropped from every row. */
static void check_static_output(loader *L, const anvil_wf_node *node, const yaml_node_t *at,
                                const char *label)
{
    char err[1024];
    if (anvil_output_schema_check(node->output_schema, node->output, holds_template, err,
                                  sizeof err) != 0)
        anvil_cfg_error(&L->c, at, "%s.output: does not match outputSchema: %s", label, err);
    for (const cJSON *m = node->output->child; m; m = m->next)
        if (!anvil_output_schema_field(node->output_schema, m->string, strlen(m->string)))
            anvil_cfg_error(&L->c, at, "%s.output.%s: not declared in outputSchema (undeclared "
                            "members are dropped from the row)", label, m->string);
}

static void parse_task(loader *L, anvil_wf_node *node, yaml_node_t *v, const char *where)
{
    static const char *const keys[] = {"id", "run", "output", "timeoutMs", "retries",
                                       "outputSchema", "description", NULL};
    char label[ANVIL_CFG_PATH_MAX], p[ANVIL_CFG_PATH_MAX];
    if (!open_map(L, v, where))
        return;
    label_of(node, read_id(L, node, v, where, true), where, label);
    unknown_keys(L, v, label, keys);
    yaml_node_t *run = field(L, v, label, "run", p);
    if (run && read_str(L, run, p, false, &node->run))
        add_ref(L, node, run, ANVIL_TEMPLATE_SHELL, p);
    yaml_node_t *output = field(L, v, label, "output", p);
    if (output)
        node->output = to_json_object(L, output, p, node);
    if (run && output)
        anvil_cfg_error(&L->c, v, "%s: give either run or output, not both", label);
    else if (!run && !output)
        anvil_cfg_error(&L->c, v, "%s: needs run (a shell command) or output (a static row)",
                        label);
    yaml_node_t *x;
    int64_t i64;
    if ((x = field(L, v, label, "timeoutMs", p)) && anvil_cfg_int(&L->c, x, p, 1, MAX_TIMEOUT_MS, &i64))
        node->timeout_ms = i64;
    if ((x = field(L, v, label, "retries", p)) && anvil_cfg_int(&L->c, x, p, 0, 100, &i64))
        node->retries = (int)i64;
    if ((x = field(L, v, label, "outputSchema", p)))
        node->output_schema = anvil_output_schema_load(&L->c, x, p);
    skip_description(L, v, label);
    if (node->output && node->output_schema)
        check_static_output(L, node, output, label);
}

static void parse_approval(loader *L, anvil_wf_node *node, yaml_node_t *v, const char *where)
{
    static const char *const keys[] = {"id", "title", "allowedScopes", "allowedUsers",
                                       "decisionSchema", "description", NULL};
    char label[ANVIL_CFG_PATH_MAX], p[ANVIL_CFG_PATH_MAX];
    if (!open_map(L, v, where))
        return;
    label_of(node, read_id(L, node, v, where, true), where, label);
    unknown_keys(L, v, label, keys);
    yaml_node_t *x;
    if ((x = field(L, v, label, "title", p)))
        read_str(L, x, p, false, &node->title);
    if (!node->title && node->id)
        anvil_cfg_set_str(&L->c, &node->title, node->id);
    if ((x = field(L, v, label, "allowedScopes", p)))
        anvil_cfg_strlist(&L->c, x, p, &node->allowed_scopes, &node->n_allowed_scopes);
    if ((x = field(L, v, label, "allowedUsers", p)))
        anvil_cfg_strlist(&L->c, x, p, &node->allowed_users, &node->n_allowed_users);
    if ((x = field(L, v, label, "decisionSchema", p)))
        node->decision_schema = to_json_object(L, x, p, NULL);
    skip_description(L, v, label);
}

static void parse_signal(loader *L, anvil_wf_node *node, yaml_node_t *v, const char *where)
{
    static const char *const keys[] = {"id", "name", "correlationKey", "description", NULL};
    char label[ANVIL_CFG_PATH_MAX], p[ANVIL_CFG_PATH_MAX];
    if (!open_map(L, v, where))
        return;
    label_of(node, read_id(L, node, v, where, true), where, label);
    unknown_keys(L, v, label, keys);
    yaml_node_t *x;
    if ((x = field(L, v, label, "name", p)))
        read_str(L, x, p, false, &node->signal_name);
    else
        anvil_cfg_error(&L->c, v, "%s: missing (a signal needs the name it waits for)", p);
    if ((x = field(L, v, label, "correlationKey", p)) &&
        read_str(L, x, p, false, &node->correlation_key))
        add_ref(L, node, x, ANVIL_TEMPLATE_TEXT, p);
    skip_description(L, v, label);
}

static int kind_of(const char *key)
{
    for (int i = 0; kind_names[i]; i++)
        if (!strcmp(kind_names[i], key))
            return i;
    return -1;
}

/* A node is a one-key mapping: the key is its kind, the value its body. */
static anvil_wf_node *parse_node(loader *L, yaml_node_t *n, anvil_wf_node *parent, size_t pos,
                                 const char *where, int depth)
{
    char buf[80], kwhere[ANVIL_CFG_PATH_MAX];
    if (depth > MAX_NODE_DEPTH) {
        anvil_cfg_error(&L->c, n, "%s: nodes nested deeper than %d levels", where, MAX_NODE_DEPTH);
        return NULL;
    }
    if (!n || n->type != YAML_MAPPING_NODE) {
        anvil_cfg_error(&L->c, n, "%s: expected a node (a mapping with one key: " KINDS_TEXT
                                  "), got %s", where, anvil_cfg_describe(n, buf));
        return NULL;
    }
    if (!anvil_cfg_check_map(&L->c, n, where, NULL, false) || !claim(L, n, where))
        return NULL;
    if (n_pairs(n) == 0) {
        anvil_cfg_error(&L->c, n, "%s: empty node (expected one of: " KINDS_TEXT ")", where);
        return NULL;
    }
    int kind = -1;
    yaml_node_t *body = NULL;
    for (size_t i = 0; i < n_pairs(n); i++) {
        yaml_node_t *k = anvil_cfg_node(&L->c, n->data.mapping.pairs.start[i].key);
        const char *key = scalar(k);
        if (!key || !*key || anvil_cfg_is_null(k) || !anvil_cfg_first_key(&L->c, n, i))
            continue;
        int kk = kind_of(key);
        if (kk < 0)
            anvil_cfg_error(&L->c, k, "%s: unknown key '%s' (a node is one of: " KINDS_TEXT ")",
                            where, key);
        else if (kind >= 0)
            anvil_cfg_error(&L->c, k, "%s: a node has exactly one kind, got both '%s' and '%s'",
                            where, kind_names[kind], key);
        else {
            kind = kk;
            body = anvil_cfg_node(&L->c, n->data.mapping.pairs.start[i].value);
        }
    }
    if (kind < 0 || !body)
        return NULL;
    anvil_wf_node *node = node_add(L, (anvil_node_kind)kind, n, parent);
    if (!node)
        return NULL;
    anvil_cfg_path(kwhere, where, kind_names[kind]);
    switch (node->kind) {
    case ANVIL_NODE_SEQUENCE:
    case ANVIL_NODE_PARALLEL:
        parse_container(L, node, body, pos, kwhere, depth);
        break;
    case ANVIL_NODE_TASK:
        parse_task(L, node, body, kwhere);
        break;
    case ANVIL_NODE_APPROVAL:
        parse_approval(L, node, body, kwhere);
        break;
    case ANVIL_NODE_SIGNAL:
        parse_signal(L, node, body, kwhere);
        break;
    }
    return node;
}

/* ---- references ---------------------------------------------------------- */

static const anvil_wf_node *find_node(const anvil_workflow *wf, const char *id, size_t len)
{
    for (size_t i = 0; i < wf->n_nodes; i++) {
        const char *o = wf->nodes[i]->id;
        if (o && strlen(o) == len && !memcmp(o, id, len))
            return wf->nodes[i];
    }
    return NULL;
}

static size_t depth_of(const anvil_wf_node *n)
{
    size_t d = 0;
    for (; n->parent; n = n->parent)
        d++;
    return d;
}

/* Whether x certainly finishes before r starts: below their nearest common
 * ancestor, x's branch must come strictly earlier in a sequence. Siblings'
 * pre-order indices follow their order, so indices compare positions. */
static bool finished_before(const anvil_wf_node *x, const anvil_wf_node *r)
{
    size_t dx = depth_of(x), dr = depth_of(r);
    for (; dx > dr; dx--)
        x = x->parent;
    for (; dr > dx; dr--)
        r = r->parent;
    if (x == r)
        return false;   /* one contains the other, or the same node */
    while (x->parent != r->parent) {
        x = x->parent;
        r = r->parent;
    }
    return x->parent && x->parent->kind == ANVIL_NODE_SEQUENCE && x->index < r->index;
}

typedef struct ref_check {
    loader *L;
    const pending_ref *pr;
} ref_check;

/* A reference into declared fields: `name` (rest bytes, possibly with a
 * ".member..." tail) must name a field of s, and only an object, array or
 * unknown field has members to read further. A task with an outputSchema
 * keeps only the declared fields in its row, and a launch is refused
 * unless its input matches the inputSchema, so a reference past either
 * could never resolve: it is refused now rather than failing a run later.
 * `task` is the task whose output it is, or NULL for the launch input. */
static void check_declared_ref(loader *L, const pending_ref *pr, const anvil_template_ref *ref,
                               const anvil_output_schema *s, const char *name, size_t rest,
                               const char *task)
{
    const char *dot = memchr(name, '.', rest);
    size_t len = dot ? (size_t)(dot - name) : rest;
    int elen = ref->expr_len > 80 ? 80 : (int)ref->expr_len;
    const char *kind = task ? "output" : "input";
    char owner[160], of[160] = "";
    if (task) {
        snprintf(owner, sizeof owner, "task '%s'", task);
        snprintf(of, sizeof of, " of task '%s'", task);
    } else {
        snprintf(owner, sizeof owner, "the workflow");
    }
    const anvil_output_field *f = anvil_output_schema_field(s, name, len);
    if (!f) {
        char names[160];
        anvil_output_schema_names(s, names, sizeof names);
        anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s}: %s declares no %s field '%.*s' (its "
                        "%sSchema has: %s)", pr->where, elen, ref->expr, owner, kind,
                        (int)(len > 64 ? 64 : len), name, kind, names);
        return;
    }
    bool members = f->type == ANVIL_FIELD_OBJECT || f->type == ANVIL_FIELD_ARRAY ||
                   f->type == ANVIL_FIELD_UNKNOWN;
    if (dot && !members)
        anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s}: %s field '%s'%s is %s %s, which has no "
                        "members", pr->where, elen, ref->expr, kind, f->name, of,
                        f->type == ANVIL_FIELD_INTEGER ? "an" : "a",
                        anvil_field_type_name(f->type));
}

/* ${outputs.<task>.<field>...} of a task with an outputSchema. */
static void check_field_ref(loader *L, const pending_ref *pr, const anvil_template_ref *ref,
                            const anvil_wf_node *x, size_t id_len)
{
    check_declared_ref(L, pr, ref, x->output_schema, ref->path + id_len + 1,
                       ref->path_len - id_len - 1, x->id);
}

/* ${input.<field>...} of a workflow with an inputSchema; a bare ${input}
 * is the whole object and always resolves, and without a schema the
 * input's shape is unknown until launch. */
static void check_input_ref(loader *L, const pending_ref *pr, const anvil_template_ref *ref)
{
    if (L->wf->input_schema && ref->path_len > 0)
        check_declared_ref(L, pr, ref, L->wf->input_schema, ref->path, ref->path_len, NULL);
}

static void check_ref(void *ctx, const anvil_template_ref *ref)
{
    ref_check *rc = ctx;
    loader *L = rc->L;
    const pending_ref *pr = rc->pr;
    if (ref->root == ANVIL_TEMPLATE_INPUT) {
        check_input_ref(L, pr, ref);
        return;
    }
    const char *dot = memchr(ref->path, '.', ref->path_len);
    size_t id_len = dot ? (size_t)(dot - ref->path) : ref->path_len;
    int elen = ref->expr_len > 80 ? 80 : (int)ref->expr_len;
    const anvil_wf_node *x = find_node(L->wf, ref->path, id_len);
    if (!x) {
        /* References split the path at dots, so they cannot name an id
         * containing one; say so rather than "unknown node". */
        for (size_t k = ref->path_len; k > id_len; k--) {
            if ((k == ref->path_len || ref->path[k] == '.') && find_node(L->wf, ref->path, k)) {
                anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s}: node '%.*s' cannot be referenced "
                                "because its id contains '.' (unsupported in references)",
                                pr->where, elen, ref->expr, (int)k, ref->path);
                return;
            }
        }
        anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s} refers to unknown node '%.*s'", pr->where,
                        elen, ref->expr, (int)id_len, ref->path);
        return;
    }
    const char *rid = pr->owner->id ? pr->owner->id : "this node";
    /* Tasks, approvals ({approved, value, note, decidedBy}) and signals
     * (their payload) finish with an output row; containers do not. */
    if (x->kind == ANVIL_NODE_SEQUENCE || x->kind == ANVIL_NODE_PARALLEL)
        anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s} refers to %s '%s', but only task, "
                        "approval and signal nodes have an output row", pr->where, elen, ref->expr,
                        kind_names[x->kind], x->id);
    else if (x == pr->owner)
        anvil_cfg_error(&L->c, pr->scalar, "%s: ${%.*s}: a node cannot use its own output",
                        pr->where, elen, ref->expr);
    else if (!finished_before(x, pr->owner))
        anvil_cfg_error(&L->c, pr->scalar, "%s: outputs.%s is not guaranteed to have finished "
                        "before %s starts (they are in the same parallel, or %s comes later)",
                        pr->where, x->id, rid, x->id);
    else if (x->kind == ANVIL_NODE_TASK && x->output_schema && ref->path_len > id_len)
        check_field_ref(L, pr, ref, x, id_len);
}

static void check_refs(loader *L)
{
    for (size_t i = 0; i < L->n_refs; i++) {
        const pending_ref *pr = &L->refs[i];
        ref_check rc = {L, pr};
        char err[256];
        if (anvil_template_scan(scalar(pr->scalar), pr->mode, check_ref, &rc, err, sizeof err) != 0)
            anvil_cfg_error(&L->c, pr->scalar, "%s: %s", pr->where, err);
    }
}

/* ---- the file ------------------------------------------------------------ */

static void parse_top(loader *L, yaml_node_t *top)
{
    static const char *const keys[] = {"name", "description", "versionWorkspace", "inputSchema",
                                       "root", NULL};
    char p[ANVIL_CFG_PATH_MAX];
    if (!top || anvil_cfg_is_null(top)) {
        anvil_diags_add(L->c.diags, L->c.file, 0, 0, "workflow file is empty");
        return;
    }
    if (!open_map(L, top, ""))
        return;
    unknown_keys(L, top, "", keys);
    yaml_node_t *v;
    if ((v = field(L, top, "", "name", p)))
        read_str(L, v, p, false, &L->wf->name);
    if ((v = field(L, top, "", "description", p)))
        read_str(L, v, p, true, &L->wf->description);
    L->wf->version_workspace = true;
    if ((v = field(L, top, "", "versionWorkspace", p)))
        anvil_cfg_bool(&L->c, v, p, &L->wf->version_workspace);
    /* Read before the tree, though references are checked after it: the
     * loader's YAML walk claims nodes in document order either way. */
    if ((v = field(L, top, "", "inputSchema", p)))
        L->wf->input_schema = anvil_output_schema_load(&L->c, v, p);
    if ((v = field(L, top, "", "root", p)))
        L->wf->root = parse_node(L, v, NULL, 0, "root", 0);
    else
        anvil_cfg_error(&L->c, top, "root: missing (a workflow needs exactly one root node)");
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_node(anvil_wf_node *n)
{
    free(n->id);
    free(n->children);
    free(n->run);
    cJSON_Delete(n->output);
    anvil_output_schema_free(n->output_schema);
    free(n->title);
    free_strv(n->allowed_scopes, n->n_allowed_scopes);
    free_strv(n->allowed_users, n->n_allowed_users);
    cJSON_Delete(n->decision_schema);
    free(n->signal_name);
    free(n->correlation_key);
    free(n);
}

void anvil_workflow_free(anvil_workflow *wf)
{
    if (!wf)
        return;
    for (size_t i = 0; i < wf->n_nodes; i++)
        free_node(wf->nodes[i]);
    free(wf->nodes);
    anvil_output_schema_free(wf->input_schema);
    free(wf->file);
    free(wf->name);
    free(wf->description);
    free(wf);
}

int anvil_workflow_load(const char *path, anvil_workflow **out, anvil_diags *diags)
{
    anvil_diags local = {0};
    anvil_diags *d = diags ? diags : &local;
    size_t n0 = d->n, dropped0 = d->n_dropped;
    int rc = -1;
    if (out)
        *out = NULL;
    if (!path || !out) {
        anvil_diags_add(d, path, 0, 0, "no workflow file or result given");
        anvil_diags_clear(&local);
        return -1;
    }
    yaml_document_t doc;
    if (anvil_cfg_load_yaml(d, path, NULL, ANVIL_WORKFLOW_MAX_BYTES, &doc) != 0) {
        anvil_diags_clear(&local);
        return -1;
    }
    loader L = {.c = {.doc = &doc, .file = path, .diags = d}};
    L.n_yaml = (size_t)(doc.nodes.top - doc.nodes.start);
    L.walked = calloc(L.n_yaml ? L.n_yaml : 1, 1);
    L.wf = calloc(1, sizeof *L.wf);
    if (L.wf)
        L.wf->file = strdup(path);
    if (!L.walked || !L.wf || !L.wf->file) {
        anvil_cfg_oom(&L.c);
    } else {
        parse_top(&L, yaml_document_get_root_node(&doc));
        check_refs(&L);
    }
    if (d->n == n0 && d->n_dropped == dropped0 && !L.c.oom_reported && L.wf && L.wf->root) {
        *out = L.wf;
        rc = 0;
    } else {
        anvil_workflow_free(L.wf);
    }
    free(L.walked);
    free(L.id_lines);
    free(L.refs);
    yaml_document_delete(&doc);
    anvil_diags_clear(&local);
    return rc;
}

const anvil_wf_node *anvil_workflow_node(const anvil_workflow *wf, const char *id)
{
    return wf && id ? find_node(wf, id, strlen(id)) : NULL;
}
