/*
 * runtime/engine/devtools.c — tree diff, apply and the snapshot/delta policy of
 * streamDevTools (see devtools.h).
 *
 * The diff works by node id: the children of a node present in both trees
 * are matched by id; children gone are removed first, then the new list is
 * walked in order and every position whose id differs gets an addNode (a
 * child that moved within the list is removed and re-added). A node that
 * changed parent, a changed root id or kind, or duplicate ids make the
 * delta a single replaceRoot. Trees are small (one node per workflow node).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "json_print.h"

/* ---------------------------------------------------------------- helpers */

static const char *node_id(const cJSON *n)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(n, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

static const char *node_kind(const cJSON *n)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(n, "kind");
    return cJSON_IsString(k) ? k->valuestring : "";
}

static const cJSON *node_children(const cJSON *n)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(n, "children");
    return cJSON_IsArray(c) ? c : NULL;
}

static bool structural(const char *key)
{
    return strcmp(key, "id") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "children") == 0;
}

static bool task_key(const char *key)
{
    return strcmp(key, "attempts") == 0 || strcmp(key, "state") == 0 || strcmp(key, "error") == 0;
}

static bool same(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    return cJSON_Compare(a, b, true);
}

/* (id, parent id) of every node, preorder. */
typedef struct id_index {
    const char **ids, **parents;
    size_t n, cap;
    bool bad;                     /* a node without a string id, or out of memory */
} id_index;

static void index_tree(id_index *x, const cJSON *n, const char *parent)
{
    const char *id = node_id(n);
    if (!cJSON_IsObject(n) || !id) {
        x->bad = true;
        return;
    }
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 32;
        const char **ni = realloc(x->ids, nc * sizeof *ni);
        if (ni)
            x->ids = ni;
        const char **np = ni ? realloc(x->parents, nc * sizeof *np) : NULL;
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

static long index_find(const id_index *x, const char *id)
{
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->ids[i], id) == 0)
            return (long)i;
    return -1;
}

static bool parents_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* True when an op-by-op diff can describe the change: every node has an
 * id, ids are unique in both trees, and no node present in both changed
 * parent. */
static bool diffable(const cJSON *from, const cJSON *to)
{
    id_index a = { 0 }, b = { 0 };
    bool ok = true;
    index_tree(&a, from, NULL);
    index_tree(&b, to, NULL);
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
        if (j >= 0 && !parents_equal(a.parents[j], b.parents[i]))
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

static cJSON *new_op(cJSON *ops, const char *op, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "op", op) || (id && !cJSON_AddStringToObject(o, "id", id)) ||
        !cJSON_AddItemToArray(ops, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Add a copy of v (NULL: JSON null) under key. */
static bool add_copy(cJSON *obj, const char *key, const cJSON *v)
{
    cJSON *d = v ? cJSON_Duplicate(v, true) : cJSON_CreateNull();
    if (!d || !cJSON_AddItemToObject(obj, key, d)) {
        cJSON_Delete(d);
        return false;
    }
    return true;
}

static int diff_props(cJSON *ops, const cJSON *a, const cJSON *b)
{
    const char *id = node_id(b);
    bool task_rec = strcmp(node_kind(b), "task") == 0 &&
                    !same(cJSON_GetObjectItemCaseSensitive(a, "attempts"),
                          cJSON_GetObjectItemCaseSensitive(b, "attempts"));
    if (task_rec) {
        cJSON *op = new_op(ops, "updateTask", id);
        cJSON *task = op ? cJSON_AddObjectToObject(op, "task") : NULL;
        if (!task || !add_copy(task, "attempts", cJSON_GetObjectItemCaseSensitive(b, "attempts")) ||
            !add_copy(task, "state", cJSON_GetObjectItemCaseSensitive(b, "state")) ||
            !add_copy(task, "error", cJSON_GetObjectItemCaseSensitive(b, "error")))
            return -1;
    }
    cJSON *props = NULL;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: members of b that are new or changed; pass 1: members of a
         * that b no longer has (sent as null). */
        const cJSON *src = pass == 0 ? b : a, *other = pass == 0 ? a : b;
        for (const cJSON *m = src->child; m; m = m->next) {
            if (!m->string || structural(m->string) || (task_rec && task_key(m->string)))
                continue;
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(other, m->string);
            if (pass == 0 ? same(m, o) : o != NULL)
                continue;
            if (!props) {
                cJSON *op = new_op(ops, "updateProps", id);
                if (!op || !(props = cJSON_AddObjectToObject(op, "props")))
                    return -1;
            }
            if (!add_copy(props, m->string, pass == 0 ? m : NULL))
                return -1;
        }
    }
    return 0;
}

static int diff_node(cJSON *ops, const cJSON *a, const cJSON *b);

static long list_find(const cJSON **list, size_t n, size_t from, const char *id)
{
    for (size_t i = from; i < n; i++)
        if (strcmp(node_id(list[i]), id) == 0)
            return (long)i;
    return -1;
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
        bool kept = false;
        for (const cJSON *d = bk ? bk->child : NULL; d && !kept; d = d->next)
            kept = strcmp(node_id(c), node_id(d)) == 0;
        if (kept)
            cur[n++] = c;
        else if (!new_op(ops, "removeNode", node_id(c)))
            rc = -1;
    }
    size_t i = 0;
    for (const cJSON *d = bk ? bk->child : NULL; d && rc == 0; d = d->next, i++) {
        const char *id = node_id(d);
        if (i < n && strcmp(node_id(cur[i]), id) == 0) {
            if (strcmp(node_kind(cur[i]), node_kind(d)) == 0) {
                rc = diff_node(ops, cur[i], d);
                continue;
            }
            /* same id, other kind: a different node */
        }
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
            !cJSON_AddStringToObject(op, "parentId", node_id(b)) ||
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
    if (diff_props(ops, a, b) != 0)
        return -1;
    return diff_children(ops, a, b);
}

cJSON *anvil_devtools_diff(const cJSON *from, const cJSON *to)
{
    cJSON *ops = cJSON_CreateArray();
    if (!ops)
        return NULL;
    const char *fa = node_id(from), *ta = node_id(to);
    bool replace = !fa || !ta || strcmp(fa, ta) != 0 || strcmp(node_kind(from), node_kind(to)) != 0 ||
                   !diffable(from, to);
    if (!replace && diff_node(ops, from, to) != 0) {
        cJSON_Delete(ops);
        return NULL;
    }
    if (replace) {
        cJSON *op = new_op(ops, "replaceRoot", NULL);
        if (!op || !add_copy(op, "root", to)) {
            cJSON_Delete(ops);
            return NULL;
        }
    }
    return ops;
}

/* ---------------------------------------------------------------- apply */

static cJSON *find_node(cJSON *n, const char *id, cJSON **parent)
{
    if (!cJSON_IsObject(n))
        return NULL;
    const char *nid = node_id(n);
    if (nid && strcmp(nid, id) == 0)
        return n;
    cJSON *kids = cJSON_GetObjectItemCaseSensitive(n, "children");
    for (cJSON *c = cJSON_IsArray(kids) ? kids->child : NULL; c; c = c->next) {
        cJSON *p = c;
        cJSON *hit = find_node(c, id, parent);
        if (hit) {
            if (hit == p)
                *parent = n;
            return hit;
        }
    }
    return NULL;
}

static int apply_members(cJSON *node, const cJSON *members)
{
    if (!cJSON_IsObject(members))
        return -1;
    for (const cJSON *m = members->child; m; m = m->next) {
        if (structural(m->string))
            return -1;
        cJSON_DeleteItemFromObjectCaseSensitive(node, m->string);
        if (!cJSON_IsNull(m) && !add_copy(node, m->string, m))
            return -1;
    }
    return 0;
}

int anvil_devtools_apply(cJSON **root, const cJSON *ops, char *err, size_t errlen)
{
    int i = 0;
    for (const cJSON *op = cJSON_IsArray(ops) ? ops->child : NULL; op; op = op->next, i++) {
        const cJSON *jop = cJSON_GetObjectItemCaseSensitive(op, "op");
        const char *name = cJSON_IsString(jop) ? jop->valuestring : "";
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(op, "id");
        const char *id = cJSON_IsString(jid) ? jid->valuestring : NULL;
        cJSON *parent = NULL;
        if (strcmp(name, "replaceRoot") == 0) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(op, "root");
            cJSON *d = cJSON_IsObject(r) ? cJSON_Duplicate(r, true) : NULL;
            if (!d)
                goto bad;
            cJSON_Delete(*root);
            *root = d;
        } else if (strcmp(name, "removeNode") == 0) {
            cJSON *n = id ? find_node(*root, id, &parent) : NULL;
            if (!n || !parent)
                goto bad;
            cJSON *kids = cJSON_GetObjectItemCaseSensitive(parent, "children");
            cJSON_Delete(cJSON_DetachItemViaPointer(kids, n));
            if (cJSON_GetArraySize(kids) == 0)
                cJSON_DeleteItemFromObjectCaseSensitive(parent, "children");
        } else if (strcmp(name, "addNode") == 0) {
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(op, "parentId");
            const cJSON *idx = cJSON_GetObjectItemCaseSensitive(op, "index");
            const cJSON *node = cJSON_GetObjectItemCaseSensitive(op, "node");
            cJSON *p = cJSON_IsString(pid) ? find_node(*root, pid->valuestring, &parent) : NULL;
            if (!p || !cJSON_IsNumber(idx) || idx->valuedouble < 0 || !cJSON_IsObject(node))
                goto bad;
            cJSON *kids = cJSON_GetObjectItemCaseSensitive(p, "children");
            if (!kids && !(kids = cJSON_AddArrayToObject(p, "children")))
                goto bad;
            if (!cJSON_IsArray(kids) || idx->valuedouble > cJSON_GetArraySize(kids))
                goto bad;
            cJSON *d = cJSON_Duplicate(node, true);
            if (!d)
                goto bad;
            int at = (int)idx->valuedouble;
            bool ok = at == cJSON_GetArraySize(kids) ? cJSON_AddItemToArray(kids, d)
                                                     : cJSON_InsertItemInArray(kids, at, d);
            if (!ok) {
                cJSON_Delete(d);
                goto bad;
            }
        } else if (strcmp(name, "updateProps") == 0 || strcmp(name, "updateTask") == 0) {
            cJSON *n = id ? find_node(*root, id, &parent) : NULL;
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(op, name[6] == 'P' ? "props" : "task");
            if (!n || apply_members(n, m) != 0)
                goto bad;
        } else {
            goto bad;
        }
        continue;
bad:
        snprintf(err, errlen, "op %d (%s) does not apply", i, name);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- policy */

void anvil_devtools_state_clear(anvil_devtools_state *st)
{
    cJSON_Delete(st->root);
    memset(st, 0, sizeof *st);
}

void anvil_devtools_request_rebaseline(anvil_devtools_state *st)
{
    st->rebaseline = true;
}

static cJSON *envelope(const char *kind, cJSON *body)
{
    cJSON *p = cJSON_CreateObject();
    if (!p || !body || !cJSON_AddNumberToObject(p, "version", ANVIL_DEVTOOLS_VERSION) ||
        !cJSON_AddStringToObject(p, "kind", kind) || !cJSON_AddItemToObject(p, kind, body)) {
        if (!p || cJSON_GetObjectItemCaseSensitive(p, kind) != body)
            cJSON_Delete(body);
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* The frame's number and tree, or false when the frame lacks them. */
static bool frame_parts(const cJSON *frame, int64_t *frame_no, const cJSON **root)
{
    const cJSON *jno = cJSON_GetObjectItemCaseSensitive(frame, "frameNo");
    *root = cJSON_GetObjectItemCaseSensitive(frame, "root");
    if (!cJSON_IsNumber(jno) || !cJSON_IsObject(*root))
        return false;
    *frame_no = (int64_t)jno->valuedouble;
    return true;
}

cJSON *anvil_devtools_snapshot(const cJSON *frame)
{
    int64_t frame_no;
    const cJSON *root;
    if (!frame_parts(frame, &frame_no, &root))
        return NULL;
    const cJSON *run_id = cJSON_GetObjectItemCaseSensitive(frame, "runId");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(frame, "status");
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddNumberToObject(s, "version", ANVIL_DEVTOOLS_VERSION) ||
        !add_copy(s, "runId", run_id) || !cJSON_AddNumberToObject(s, "frameNo", (double)frame_no) ||
        !cJSON_AddNumberToObject(s, "seq", (double)frame_no) || !add_copy(s, "status", status) ||
        !add_copy(s, "root", root)) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

static cJSON *delta_payload(int64_t base, int64_t seq, cJSON *ops)
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
    return envelope("delta", d);
}

static size_t printed_size(const cJSON *j)
{
    char *t = anvil_json_print(j);
    size_t n = t ? strlen(t) : (size_t)-1;
    free(t);
    return n;
}

cJSON *anvil_devtools_next(anvil_devtools_state *st, const cJSON *frame)
{
    int64_t frame_no;
    const cJSON *root;
    if (!frame_parts(frame, &frame_no, &root))
        return NULL;
    cJSON *copy = cJSON_Duplicate(root, true);
    cJSON *snap = copy ? envelope("snapshot", anvil_devtools_snapshot(frame)) : NULL;
    if (!snap) {
        cJSON_Delete(copy);
        return NULL;
    }
    cJSON *out = snap;
    bool is_delta = false;
    if (st->root && !st->rebaseline && st->deltas < ANVIL_DEVTOOLS_REBASELINE_DELTAS) {
        cJSON *ops = anvil_devtools_diff(st->root, root);
        cJSON *delta = ops ? delta_payload(st->seq, frame_no, ops) : NULL;
        if (!delta) {
            cJSON_Delete(snap);
            cJSON_Delete(copy);
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
    st->seq = frame_no;
    st->rebaseline = false;
    st->deltas = is_delta ? st->deltas + 1 : 0;
    return out;
}
