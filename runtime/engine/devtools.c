/*
 * runtime/engine/devtools.c — snapshots, the tree diff and apply, and the
 * snapshot/delta policy of streamDevTools (see devtools.h), on trees in the
 * upstream's node shape (devtools_node.c converts recorded frames).
 *
 * The diff works by node id: the children of a node present in both trees
 * are matched by id; children gone are removed first, then the new list is
 * walked in order and every position whose node differs gets an addNode (a
 * child that moved within the list, or changed type or name, is removed and
 * re-added). A node that changed parent, a root that changed identity, or
 * duplicate ids make the delta a single replaceRoot. Trees are small (one
 * node per workflow node) and keep their structure for a whole run, so the
 * usual delta is a few updateProps/updateTask ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "json_number.h"
#include "json_print.h"

/* ---------------------------------------------------------------- helpers */

/* The integer `key` of o (a node id, an op's id, parentId or index), or -1
 * when it is not a non-negative integer (node ids are 31-bit). */
static int64_t id_member(const cJSON *o, const char *key)
{
    int64_t v;
    return anvil_json_exact_int(cJSON_GetObjectItemCaseSensitive(o, key), &v) && v >= 0 ? v : -1;
}

static int64_t node_id(const cJSON *n)
{
    return id_member(n, "id");
}

static const cJSON *member(const cJSON *n, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(n, key);
}

static const cJSON *node_children(const cJSON *n)
{
    const cJSON *c = member(n, "children");
    return cJSON_IsArray(c) ? c : NULL;
}

static bool same(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    return cJSON_Compare(a, b, true);
}

/* The same node: the same id, type and name (depth follows the parent). */
static bool same_identity(const cJSON *a, const cJSON *b)
{
    return node_id(a) == node_id(b) && same(member(a, "type"), member(b, "type")) &&
           same(member(a, "name"), member(b, "name"));
}

/* (id, parent id) of every node, preorder. */
typedef struct id_index {
    int64_t *ids, *parents;
    size_t n, cap;
    bool bad;                     /* a node without an id, or out of memory */
} id_index;

static void index_tree(id_index *x, const cJSON *n, int64_t parent)
{
    int64_t id = node_id(n);
    if (!cJSON_IsObject(n) || id < 0) {
        x->bad = true;
        return;
    }
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 32;
        int64_t *ni = realloc(x->ids, nc * sizeof *ni);
        if (ni)
            x->ids = ni;
        int64_t *np = ni ? realloc(x->parents, nc * sizeof *np) : NULL;
        if (!np) {
            x->bad = true;
            return;
        }
        x->parents = np;
        x->cap = nc;
    }
    x->ids[x->n] = id;
    x->parents[x->n] = parent;
    x->n++;
    const cJSON *kids = node_children(n);
    for (const cJSON *c = kids ? kids->child : NULL; c && !x->bad; c = c->next)
        index_tree(x, c, id);
}

static long index_find(const id_index *x, int64_t id)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->ids[i] == id)
            return (long)i;
    return -1;
}

/* True when an op-by-op diff can describe the change: every node has an
 * id, ids are unique in both trees, and no node present in both changed
 * parent. */
static bool diffable(const cJSON *from, const cJSON *to)
{
    id_index a = { 0 }, b = { 0 };
    bool ok = true;
    index_tree(&a, from, -1);
    index_tree(&b, to, -1);
    if (a.bad || b.bad)
        ok = false;
    for (size_t i = 0; ok && i < a.n; i++)
        if (index_find(&a, a.ids[i]) != (long)i)
            ok = false;
    for (size_t i = 0; ok && i < b.n; i++) {
        if (index_find(&b, b.ids[i]) != (long)i) {
            ok = false;
            break;
        }
        long j = index_find(&a, b.ids[i]);
        if (j >= 0 && a.parents[j] != b.parents[i])
            ok = false;
    }
    /* A missing id, and out of memory here, make it not diffable: the
     * caller falls back to replaceRoot. */
    free(a.ids);
    free(a.parents);
    free(b.ids);
    free(b.parents);
    return ok;
}

/* ---------------------------------------------------------------- ops */

static cJSON *new_op(cJSON *ops, const char *op, int64_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "op", op) || (id >= 0 && !cJSON_AddNumberToObject(o, "id", (double)id)) ||
        !cJSON_AddItemToArray(ops, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Add a copy of v under key (v NULL: add nothing). */
static bool add_copy(cJSON *obj, const char *key, const cJSON *v)
{
    if (!v)
        return true;
    cJSON *d = cJSON_Duplicate(v, true);
    if (!d || !cJSON_AddItemToObject(obj, key, d)) {
        cJSON_Delete(d);
        return false;
    }
    return true;
}

/* A node's properties, props and task: each one that changed, whole. */
static int diff_properties(cJSON *ops, const cJSON *a, const cJSON *b)
{
    int64_t id = node_id(b);
    const cJSON *pa = member(a, "props"), *pb = member(b, "props");
    if (!same(pa, pb)) {
        cJSON *op = new_op(ops, "updateProps", id);
        cJSON *p = pb ? cJSON_Duplicate(pb, true) : cJSON_CreateObject();
        if (!op || !p || !cJSON_AddItemToObject(op, "props", p)) {
            cJSON_Delete(p);
            return -1;
        }
    }
    const cJSON *ta = member(a, "task"), *tb = member(b, "task");
    if (!same(ta, tb)) {
        cJSON *op = new_op(ops, "updateTask", id);
        if (!op || !add_copy(op, "task", tb))
            return -1;
    }
    return 0;
}

static int diff_node(cJSON *ops, const cJSON *a, const cJSON *b);

static long list_find(const cJSON **list, size_t n, size_t from, int64_t id)
{
    for (size_t i = from; i < n; i++)
        if (node_id(list[i]) == id)
            return (long)i;
    return -1;
}

static bool in_list(const cJSON *kids, int64_t id)
{
    for (const cJSON *d = kids ? kids->child : NULL; d; d = d->next)
        if (node_id(d) == id)
            return true;
    return false;
}

static int diff_children(cJSON *ops, const cJSON *a, const cJSON *b)
{
    const cJSON *ak = node_children(a), *bk = node_children(b);
    size_t na = (size_t)(ak ? cJSON_GetArraySize(ak) : 0), nb = (size_t)(bk ? cJSON_GetArraySize(bk) : 0);
    if (!na && !nb)
        return 0;
    /* cur: the parent's children as the ops so far leave them. */
    const cJSON **cur = malloc((na + nb + 1) * sizeof *cur);
    if (!cur)
        return -1;
    size_t n = 0;
    int rc = 0;
    for (const cJSON *c = ak ? ak->child : NULL; c; c = c->next) {
        if (in_list(bk, node_id(c)))
            cur[n++] = c;
        else if (!new_op(ops, "removeNode", node_id(c)))
            rc = -1;
    }
    size_t i = 0;
    for (const cJSON *d = bk ? bk->child : NULL; d && rc == 0; d = d->next, i++) {
        int64_t id = node_id(d);
        if (i < n && node_id(cur[i]) == id && same_identity(cur[i], d)) {
            rc = diff_node(ops, cur[i], d);
            continue;
        }
        /* Elsewhere in the list (moved), or here as another node (its type
         * or name changed): out first, then in at i. */
        long j = list_find(cur, n, i, id);
        if (j >= 0) {
            if (!new_op(ops, "removeNode", id)) {
                rc = -1;
                break;
            }
            memmove(&cur[j], &cur[j + 1], (n - (size_t)j - 1) * sizeof *cur);
            n--;
        }
        cJSON *op = cJSON_CreateObject();
        if (!op || !cJSON_AddStringToObject(op, "op", "addNode") ||
            !cJSON_AddNumberToObject(op, "parentId", (double)node_id(b)) ||
            !cJSON_AddNumberToObject(op, "index", (double)i) || !add_copy(op, "node", d) ||
            !cJSON_AddItemToArray(ops, op)) {
            cJSON_Delete(op);
            rc = -1;
            break;
        }
        memmove(&cur[i + 1], &cur[i], (n - i) * sizeof *cur);
        cur[i] = d;
        n++;
    }
    free(cur);
    return rc;
}

static int diff_node(cJSON *ops, const cJSON *a, const cJSON *b)
{
    if (diff_properties(ops, a, b) != 0)
        return -1;
    return diff_children(ops, a, b);
}

cJSON *anvil_devtools_diff(const cJSON *from, const cJSON *to)
{
    cJSON *ops = cJSON_CreateArray();
    if (!ops)
        return NULL;
    bool replace = node_id(from) < 0 || !same_identity(from, to) || !diffable(from, to);
    if (!replace && diff_node(ops, from, to) != 0) {
        cJSON_Delete(ops);
        return NULL;
    }
    if (replace) {
        cJSON *op = new_op(ops, "replaceRoot", -1);
        if (!op || !add_copy(op, "node", to)) {
            cJSON_Delete(ops);
            return NULL;
        }
    }
    return ops;
}

/* ---------------------------------------------------------------- apply */

/* The node with `id` under n, and its parent (NULL for n itself). */
static cJSON *find_node(cJSON *n, int64_t id, cJSON **parent)
{
    if (!cJSON_IsObject(n))
        return NULL;
    if (node_id(n) == id)
        return n;
    cJSON *kids = cJSON_GetObjectItemCaseSensitive(n, "children");
    for (cJSON *c = cJSON_IsArray(kids) ? kids->child : NULL; c; c = c->next) {
        cJSON *hit = find_node(c, id, parent);
        if (hit) {
            if (hit == c)
                *parent = n;
            return hit;
        }
    }
    return NULL;
}

/* Replace n's `key` with a copy of v (v absent: remove it). */
static int replace_member(cJSON *n, const char *key, const cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(n, key);
    return add_copy(n, key, v) ? 0 : -1;
}

static int apply_add(cJSON *root, const cJSON *op)
{
    cJSON *parent = NULL;
    cJSON *p = find_node(root, id_member(op, "parentId"), &parent);
    const cJSON *node = member(op, "node");
    cJSON *kids = p ? cJSON_GetObjectItemCaseSensitive(p, "children") : NULL;
    int64_t at = id_member(op, "index");
    if (!cJSON_IsArray(kids) || at < 0 || at > cJSON_GetArraySize(kids) || !cJSON_IsObject(node))
        return -1;
    cJSON *d = cJSON_Duplicate(node, true);
    bool ok = d && (at == cJSON_GetArraySize(kids) ? cJSON_AddItemToArray(kids, d)
                                                   : cJSON_InsertItemInArray(kids, (int)at, d));
    if (!ok)
        cJSON_Delete(d);
    return ok ? 0 : -1;
}

static int apply_op(cJSON **root, const cJSON *op, const char *name)
{
    cJSON *parent = NULL;
    if (strcmp(name, "replaceRoot") == 0) {
        const cJSON *r = member(op, "node");
        cJSON *d = cJSON_IsObject(r) ? cJSON_Duplicate(r, true) : NULL;
        if (!d)
            return -1;
        cJSON_Delete(*root);
        *root = d;
        return 0;
    }
    if (strcmp(name, "addNode") == 0)
        return apply_add(*root, op);
    cJSON *n = find_node(*root, id_member(op, "id"), &parent);
    if (!n)
        return -1;
    if (strcmp(name, "removeNode") == 0) {
        if (!parent)
            return -1;   /* the root is replaced, never removed */
        cJSON_Delete(cJSON_DetachItemViaPointer(cJSON_GetObjectItemCaseSensitive(parent, "children"), n));
        return 0;
    }
    if (strcmp(name, "updateProps") == 0)
        return cJSON_IsObject(member(op, "props")) ? replace_member(n, "props", member(op, "props")) : -1;
    if (strcmp(name, "updateTask") == 0) {
        const cJSON *t = member(op, "task");
        return !t || cJSON_IsObject(t) ? replace_member(n, "task", t) : -1;
    }
    return -1;
}

int anvil_devtools_apply(cJSON **root, const cJSON *ops, char *err, size_t errlen)
{
    int i = 0;
    for (const cJSON *op = cJSON_IsArray(ops) ? ops->child : NULL; op; op = op->next, i++) {
        const cJSON *jop = member(op, "op");
        const char *name = cJSON_IsString(jop) ? jop->valuestring : "";
        if (apply_op(root, op, name) != 0) {
            snprintf(err, errlen, "op %d (%s) does not apply", i, name);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- snapshot */

void anvil_devtools_state_clear(anvil_devtools_state *st)
{
    cJSON_Delete(st->root);
    free(st->status);
    memset(st, 0, sizeof *st);
}

void anvil_devtools_request_rebaseline(anvil_devtools_state *st)
{
    st->rebaseline = true;
}

/* {version:1, kind, <kind>: body}; takes body (also on failure). */
static cJSON *event(const char *kind, cJSON *body)
{
    cJSON *p = body ? cJSON_CreateObject() : NULL;
    if (!p || !cJSON_AddNumberToObject(p, "version", ANVIL_DEVTOOLS_VERSION) ||
        !cJSON_AddStringToObject(p, "kind", kind) || !cJSON_AddItemToObject(p, kind, body)) {
        if (!p || cJSON_GetObjectItemCaseSensitive(p, kind) != body)
            cJSON_Delete(body);
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* The frame's number and recorded tree, or false when the frame lacks them. */
static bool frame_parts(const cJSON *frame, int64_t *frame_no, const cJSON **root)
{
    *root = member(frame, "root");
    return anvil_json_exact_int(member(frame, "frameNo"), frame_no) && cJSON_IsObject(*root);
}

static bool add_str_or_null(cJSON *o, const char *key, const cJSON *v)
{
    cJSON *d = cJSON_IsString(v) ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull();
    if (!d || !cJSON_AddItemToObject(o, key, d)) {
        cJSON_Delete(d);
        return false;
    }
    return true;
}

cJSON *anvil_devtools_snapshot(const cJSON *frame, int64_t created_at_ms, const anvil_devtools_source *src)
{
    int64_t frame_no;
    const cJSON *root;
    if (!frame_parts(frame, &frame_no, &root))
        return NULL;
    const cJSON *run_id = member(frame, "runId"), *status = member(frame, "status");
    cJSON *tree = anvil_devtools_tree(root, src);
    cJSON *state = tree ? anvil_devtools_run_state(cJSON_IsString(run_id) ? run_id->valuestring : NULL,
                                                   cJSON_IsString(status) ? status->valuestring : NULL,
                                                   created_at_ms)
                        : NULL;
    cJSON *s = state ? cJSON_CreateObject() : NULL;
    if (!s || !cJSON_AddNumberToObject(s, "version", ANVIL_DEVTOOLS_VERSION) ||
        !add_str_or_null(s, "runId", run_id) || !cJSON_AddNumberToObject(s, "frameNo", (double)frame_no) ||
        !cJSON_AddNumberToObject(s, "seq", (double)frame_no) || !add_str_or_null(s, "status", status) ||
        !cJSON_AddItemToObject(s, "runState", state)) {
        cJSON_Delete(s);
        cJSON_Delete(state);
        cJSON_Delete(tree);
        return NULL;
    }
    if (!cJSON_AddItemToObject(s, "root", tree)) {
        cJSON_Delete(s);
        cJSON_Delete(tree);
        return NULL;
    }
    return s;
}

/* ---------------------------------------------------------------- policy */

static cJSON *delta_event(int64_t base, int64_t seq, cJSON *ops)
{
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddNumberToObject(d, "version", ANVIL_DEVTOOLS_VERSION) ||
        !cJSON_AddNumberToObject(d, "baseSeq", (double)base) || !cJSON_AddNumberToObject(d, "seq", (double)seq) ||
        !cJSON_AddItemToObject(d, "ops", ops)) {
        if (!d || cJSON_GetObjectItemCaseSensitive(d, "ops") != ops)
            cJSON_Delete(ops);
        cJSON_Delete(d);
        return NULL;
    }
    return event("delta", d);
}

static size_t printed_size(const cJSON *j)
{
    char *t = anvil_json_print(j);
    size_t n = t ? strlen(t) : (size_t)-1;
    free(t);
    return n;
}

cJSON *anvil_devtools_next(anvil_devtools_state *st, const cJSON *frame, int64_t created_at_ms,
                           const anvil_devtools_source *src)
{
    int64_t frame_no;
    const cJSON *unused;
    if (!frame_parts(frame, &frame_no, &unused))
        return NULL;
    cJSON *snap = event("snapshot", anvil_devtools_snapshot(frame, created_at_ms, src));
    const cJSON *tree = snap ? member(member(snap, "snapshot"), "root") : NULL;
    const cJSON *jst = member(frame, "status");
    const char *status = cJSON_IsString(jst) ? jst->valuestring : NULL;
    cJSON *copy = tree ? cJSON_Duplicate(tree, true) : NULL;
    char *status_copy = status ? strdup(status) : NULL;
    if (!copy || (status && !status_copy)) {
        cJSON_Delete(snap);
        cJSON_Delete(copy);
        free(status_copy);
        return NULL;
    }
    bool same_status = st->status && status && strcmp(st->status, status) == 0;
    cJSON *out = snap;
    bool is_delta = false;
    if (st->root && same_status && !st->rebaseline && st->deltas < ANVIL_DEVTOOLS_REBASELINE_DELTAS) {
        cJSON *ops = anvil_devtools_diff(st->root, tree);
        cJSON *delta = ops ? delta_event(st->seq, frame_no, ops) : NULL;
        if (!delta) {
            cJSON_Delete(snap);
            cJSON_Delete(copy);
            free(status_copy);
            return NULL;
        }
        /* A delta larger than the snapshot re-baselines. */
        if (printed_size(delta) <= printed_size(snap)) {
            cJSON_Delete(snap);
            out = delta;
            is_delta = true;
        } else {
            cJSON_Delete(delta);
        }
    }
    cJSON_Delete(st->root);
    st->root = copy;
    free(st->status);
    st->status = status_copy;
    st->seq = frame_no;
    st->rebaseline = false;
    st->deltas = is_delta ? st->deltas + 1 : 0;
    return out;
}
