/*
 * runtime/engine/devtools_node.c — recorded trees in the upstream's DevTools
 * node shape, and a frame's run state (see devtools_node.h for the mapping).
 *
 * Owns only the conversion; the snapshot, the diff between two converted
 * trees and the stream policy are devtools.c's.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_statuses.h"
#include "clock.h"
#include "devtools_node.h"

/* ---------------------------------------------------------------- ids */

/* The ids given so far in this tree, sorted, to resolve hash collisions. */
typedef struct id_set {
    uint32_t *ids;
    size_t n, cap;
} id_set;

static uint32_t fnv1a31(const char *s, unsigned salt)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    /* A salted rehash continues over the salt's bytes, so salt 0 is the
     * plain hash of the identity. */
    for (; salt; salt >>= 8) {
        h ^= salt & 0xffu;
        h *= 16777619u;
    }
    /* 31 bits: a positive number every JSON reader holds exactly. */
    return h & 0x7fffffffu;
}

/* Where id is, or would be inserted, in the sorted set. */
static size_t id_slot(const id_set *s, uint32_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool id_used(const id_set *s, uint32_t id)
{
    size_t i = id_slot(s, id);
    return i < s->n && s->ids[i] == id;
}

/* A fresh id for `identity`: its hash, or the first salted rehash not yet
 * given. -1 when out of memory. */
static int64_t id_assign(id_set *s, const char *identity)
{
    uint32_t id = fnv1a31(identity, 0);
    for (unsigned salt = 1; id_used(s, id); salt++)
        id = fnv1a31(identity, salt);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        uint32_t *ni = realloc(s->ids, nc * sizeof *ni);
        if (!ni)
            return -1;
        s->ids = ni;
        s->cap = nc;
    }
    size_t at = id_slot(s, id);
    memmove(&s->ids[at + 1], &s->ids[at], (s->n - at) * sizeof *s->ids);
    s->ids[at] = id;
    s->n++;
    return id;
}

/* ---------------------------------------------------------------- vocabulary */

static const char *str_member(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Anvil's recorded kind -> the upstream's DevToolsNodeType. */
static const char *node_type(const char *kind)
{
    static const char *const map[][2] = {
        { "sequence", "sequence" }, { "parallel", "parallel" }, { "task", "task" },
        { "approval", "approval" }, { "signal", "wait-for-event" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(kind, map[i][0]) == 0)
            return map[i][1];
    return "unknown";
}

/* task.kind, for the kinds that carry a task; NULL for containers. Both
 * kinds of Anvil task are run by the engine, never by an agent (the
 * upstream's client shows any other task kind as "agent"). A signal only
 * waits for its payload: "static", the kind of a task nothing executes. */
static const char *task_kind(const char *kind)
{
    if (strcmp(kind, "task") == 0)
        return "compute";
    if (strcmp(kind, "approval") == 0)
        return "approval";
    if (strcmp(kind, "signal") == 0)
        return "static";
    return NULL;
}

/* Anvil's node state -> the upstream's node-row vocabulary. */
static const char *task_state(const char *kind, const char *state)
{
    anvil_node_state st;
    if (!anvil_node_state_parse(state, &st))
        return state;
    switch (st) {
    case ANVIL_NODE_STATE_RUNNING:
        return "in-progress";
    case ANVIL_NODE_STATE_WAITING:
        return strcmp(kind, "approval") == 0 ? "waiting-approval"
             : strcmp(kind, "signal") == 0   ? "waiting-event" : "waiting";
    default:
        return state;   /* pending, finished, failed, cancelled, skipped */
    }
}

/* ---------------------------------------------------------------- nodes */

typedef struct conv {
    const anvil_devtools_source *src;
    id_set ids;
} conv;

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static bool add_str(cJSON *o, const char *key, const char *v)
{
    return cJSON_AddStringToObject(o, key, v) != NULL;
}

/* The node's definition, when the workflow still has a node of that id
 * and kind. */
static const anvil_wf_node *definition(const conv *cv, const char *id, const char *kind)
{
    const anvil_wf_node *def = cv->src->wf ? anvil_workflow_node(cv->src->wf, id) : NULL;
    if (!def)
        return NULL;
    static const char *const kinds[] = {
        [ANVIL_NODE_SEQUENCE] = "sequence", [ANVIL_NODE_PARALLEL] = "parallel",
        [ANVIL_NODE_TASK] = "task", [ANVIL_NODE_APPROVAL] = "approval", [ANVIL_NODE_SIGNAL] = "signal",
    };
    return strcmp(kinds[def->kind], kind) == 0 ? def : NULL;
}

static bool fill_props(cJSON *props, const cJSON *rec, const anvil_wf_node *def)
{
    const char *error = str_member(rec, "error");
    if (!add_str(props, "id", str_member(rec, "id")) || !add_str(props, "state", str_member(rec, "state")) ||
        (error && !add_str(props, "error", error)))
        return false;
    if (!def)
        return true;
    switch (def->kind) {
    case ANVIL_NODE_TASK:
        return cJSON_AddBoolToObject(props, "static", def->run == NULL) != NULL;
    case ANVIL_NODE_APPROVAL:
        return !def->title || add_str(props, "title", def->title);
    case ANVIL_NODE_SIGNAL:
        return !def->signal_name || add_str(props, "signal", def->signal_name);
    default:
        return true;
    }
}

static bool fill_task(cJSON *task, const cJSON *rec, const char *kind, const anvil_wf_node *def)
{
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(rec, "attempts");
    if (!add_str(task, "nodeId", str_member(rec, "id")) || !add_str(task, "kind", task_kind(kind)) ||
        !add_num(task, "iteration", 0) || !add_str(task, "state", task_state(kind, str_member(rec, "state"))))
        return false;
    if (cJSON_IsNumber(attempts) && attempts->valuedouble >= 1 && !add_num(task, "attempt", attempts->valuedouble))
        return false;
    if (def && def->kind == ANVIL_NODE_TASK && !add_num(task, "maxAttempts", (double)def->retries + 1))
        return false;
    return true;
}

/* One recorded node (and its subtree) at `depth`; NULL when malformed or
 * out of memory. */
static cJSON *convert(conv *cv, const cJSON *rec, int depth)
{
    const char *id = str_member(rec, "id"), *kind = str_member(rec, "kind"), *state = str_member(rec, "state");
    if (!id || !kind || !state)
        return NULL;
    const anvil_wf_node *def = definition(cv, id, kind);
    const char *type = node_type(kind);
    int64_t num = id_assign(&cv->ids, id);
    cJSON *n = cJSON_CreateObject();
    cJSON *props = NULL, *task = NULL, *kids = NULL;
    bool ok = n && num >= 0 && add_num(n, "id", (double)num) && add_str(n, "type", type) &&
              add_str(n, "name", type) && (props = cJSON_AddObjectToObject(n, "props")) &&
              fill_props(props, rec, def);
    if (ok && task_kind(kind))
        ok = (task = cJSON_AddObjectToObject(n, "task")) && fill_task(task, rec, kind, def);
    ok = ok && (kids = cJSON_AddArrayToObject(n, "children")) && add_num(n, "depth", depth);
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(rec, "children");
    for (const cJSON *c = cJSON_IsArray(rk) ? rk->child : NULL; ok && c; c = c->next) {
        cJSON *k = convert(cv, c, depth + 1);
        ok = k && cJSON_AddItemToArray(kids, k);
        if (!ok)
            cJSON_Delete(k);
    }
    if (!ok) {
        cJSON_Delete(n);
        return NULL;
    }
    return n;
}

cJSON *anvil_devtools_tree(const cJSON *root, const anvil_devtools_source *src)
{
    if (!cJSON_IsObject(root) || !src || !src->workflow)
        return NULL;
    conv cv = { .src = src };
    /* The root's id first: the same whatever the tree holds. */
    int64_t num = id_assign(&cv.ids, "");
    cJSON *top = num >= 0 ? convert(&cv, root, 1) : NULL;
    free(cv.ids.ids);
    cJSON *w = top ? cJSON_CreateObject() : NULL, *props = NULL, *kids = NULL;
    bool ok = w && add_num(w, "id", (double)num) && add_str(w, "type", "workflow") &&
              add_str(w, "name", src->workflow) && (props = cJSON_AddObjectToObject(w, "props")) &&
              add_str(props, "name", src->workflow) && (kids = cJSON_AddArrayToObject(w, "children")) &&
              add_num(w, "depth", 0) && cJSON_AddItemToArray(kids, top);
    if (!ok) {
        cJSON_Delete(top);   /* not in w: adding it is the last step */
        cJSON_Delete(w);
        return NULL;
    }
    return w;
}

/* ---------------------------------------------------------------- run state */

static const char *run_state(const char *status)
{
    anvil_run_status st;
    if (!anvil_run_status_parse(status, &st))
        return "unknown";
    switch (st) {
    case ANVIL_RUN_STATUS_FINISHED:
        return "succeeded";
    case ANVIL_RUN_STATUS_NEEDS_ATTENTION:
        return "paused";
    default:
        return status;  /* running, waiting-*, failed, cancelled: same words */
    }
}

cJSON *anvil_devtools_run_state(const char *run_id, const char *status, int64_t at_ms)
{
    char at[ANVIL_ISO8601_SIZE];
    if (anvil_time_iso8601(at_ms, at) != 0)
        anvil_time_iso8601(0, at);   /* a frame time gmtime refuses: never recorded */
    cJSON *s = cJSON_CreateObject();
    if (!s || !add_str(s, "runId", run_id ? run_id : "") || !add_str(s, "state", run_state(status)) ||
        !add_str(s, "computedAt", at)) {
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}
