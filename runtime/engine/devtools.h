/*
 * runtime/engine/devtools.h — the DevTools wire types of streamDevTools and
 * getDevToolsSnapshot, in the upstream protocol's shapes
 * (@smithers-orchestrator/protocol, src/devtools): the snapshot of a run at
 * one frame, the delta between two snapshots, and the per-stream policy
 * that decides which of the two to send for a frame.
 *
 * Pure: cJSON in, cJSON out; no store, no clock, no I/O. The callers feed it
 * the run's recorded frames ({"frameNo","runId","status","root"}, Anvil's
 * own tree shape, which never changes), each with its recording time, in
 * order; devtools_node.h converts them to the upstream's node shape
 *   {id: <number>, type, name, props, task?, children: [...], depth}.
 * `id`, `type`, `name`, `depth` and `children` are a node's structure;
 * `props` and `task` its properties. Ids are unique within a tree and
 * stable across a run's frames.
 *
 * Delta ops (DevToolsDeltaOp), applied in order, turn the previous tree
 * into the new one:
 *   {op:"replaceRoot", node}                the root changed identity (id,
 *                                           type, name), a node moved to
 *                                           another parent, or ids are not
 *                                           unique: the whole tree, alone
 *   {op:"removeNode", id}                   the node and its subtree go
 *   {op:"addNode", parentId, index, node}   insert `node` (a whole subtree)
 *                                           at children[index] of parentId
 *   {op:"updateProps", id, props}           the node's whole new props
 *   {op:"updateTask", id, task?}            the node's whole new task (no
 *                                           `task` member: it has none now)
 * as the upstream applies them: props and task are replaced, not merged.
 * A node whose type or name changed under the same id is removed and added.
 */
#ifndef ANVIL_DEVTOOLS_H
#define ANVIL_DEVTOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "devtools_node.h"

#define ANVIL_DEVTOOLS_VERSION 1
/* After this many deltas since the last snapshot the next event is a
 * snapshot. */
#define ANVIL_DEVTOOLS_REBASELINE_DELTAS 50

/* The ops that turn tree `from` into tree `to` (both in the upstream shape;
 * a JSON array, empty when they are equal). NULL when out of memory. */
cJSON *anvil_devtools_diff(const cJSON *from, const cJSON *to);

/* Apply `ops` to *root in place (replaceRoot swaps *root), strictly: an op
 * naming a node the tree lacks, an index past the end of the children,
 * removing the root or an unknown op fail. 0, or -1 with a message. */
int anvil_devtools_apply(cJSON **root, const cJSON *ops, char *err, size_t errlen);

/* Per-stream state: the tree last delivered and how many deltas followed
 * the last snapshot. Zero-initialise; anvil_devtools_state_clear frees. */
typedef struct anvil_devtools_state {
    cJSON *root;                  /* upstream shape; NULL: no baseline yet */
    char *status;                 /* the run status of root's frame, or NULL */
    int64_t seq;                  /* frameNo of root */
    int deltas;                   /* deltas since the last snapshot */
    bool rebaseline;              /* the next event is a snapshot */
} anvil_devtools_state;

void anvil_devtools_state_clear(anvil_devtools_state *st);

/* Force the next event to be a snapshot: after a rewind (the gateway calls
 * this on run.time_travel_jumped and re-reads from the target frame) or a
 * hole in the frames the client holds. */
void anvil_devtools_request_rebaseline(anvil_devtools_state *st);

/* The DevToolsSnapshot of one parsed frame, recorded at created_at_ms:
 *   {version:1, runId, frameNo, seq, status, runState, root}
 * seq is the frame number; status the frame's run status (Anvil's words,
 * an extension of the upstream type); runState the same in the upstream's
 * (anvil_devtools_run_state); root the tree (anvil_devtools_tree). It is
 * exactly the `snapshot` of a snapshot event below (getDevToolsSnapshot
 * answers it without a stream). The frame is only read; the caller owns the
 * result. NULL when the frame is malformed (no numeric frameNo, no object
 * root, a node without id or kind) or out of memory. */
cJSON *anvil_devtools_snapshot(const cJSON *frame, int64_t created_at_ms, const anvil_devtools_source *src);

/* The DevToolsEvent for the next frame (a parsed frame object):
 *   {version:1, kind:"snapshot", snapshot}   first event, after 50 deltas,
 *                      when the delta's JSON is larger than the snapshot's,
 *                      when the frame's run status differs from the last
 *                      event's (a delta cannot carry runState, and a client
 *                      that applies deltas keeps the snapshot's), or when
 *                      requested;
 *   {version:1, kind:"delta", delta:{version:1, baseSeq, seq, ops}}
 *                      otherwise (baseSeq = the previous event's seq).
 * Updates st. NULL when the frame is malformed or out of memory (st is
 * unchanged then). */
cJSON *anvil_devtools_next(anvil_devtools_state *st, const cJSON *frame, int64_t created_at_ms,
                           const anvil_devtools_source *src);

#endif
