/*
 * runtime/engine/devtools.h — the DevTools wire types of streamDevTools: the
 * snapshot of a run's node tree, the delta between two trees, and the
 * per-stream policy that decides which of the two to send for a frame.
 *
 * Pure: cJSON in, cJSON out; no store, no clock, no I/O. The gateway
 * (runtime/ws/ws_stream_devtools.c) feeds it the run's recorded frames
 * ({"frameNo","runId","status","root"}) in order.
 *
 * A node is {id, kind, state, attempts? (tasks), error?, children?: [...]};
 * `id`, `kind` and `children` are its structure, every other member is a
 * property. Node ids are unique within a tree.
 *
 * Delta ops, applied in order, turn the previous tree into the new one:
 *   {op:"replaceRoot", root}                the root's id or kind changed, or
 *                                           a node moved to another parent
 *                                           (or ids are not unique): the
 *                                           whole tree, as the only op
 *   {op:"removeNode", id}                   the node and its subtree go
 *   {op:"addNode", parentId, index, node}   insert `node` (a whole subtree)
 *                                           at children[index] of parentId
 *   {op:"updateTask", id, task:{attempts, state, error}}
 *                                           a task node whose `attempts`
 *                                           changed: its whole attempt
 *                                           record (error null = none)
 *   {op:"updateProps", id, props:{...}}     every other property change:
 *                                           the changed members only; null
 *                                           means the member was removed
 * A node's children list that becomes empty is removed (no `children`
 * member means no children, as in the recorded frames).
 */
#ifndef ANVIL_DEVTOOLS_H
#define ANVIL_DEVTOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define ANVIL_DEVTOOLS_VERSION 1
/* After this many deltas since the last snapshot the next event is a
 * snapshot. */
#define ANVIL_DEVTOOLS_REBASELINE_DELTAS 50

/* The ops that turn tree `from` into tree `to` (a JSON array; empty when
 * they are equal). NULL when out of memory. */
cJSON *anvil_devtools_diff(const cJSON *from, const cJSON *to);

/* Apply `ops` to *root in place (replaceRoot swaps *root). 0, or -1 with a
 * message when an op does not fit the tree. */
int anvil_devtools_apply(cJSON **root, const cJSON *ops, char *err, size_t errlen);

/* Per-stream state: the tree last delivered and how many deltas followed
 * the last snapshot. Zero-initialise; anvil_devtools_state_clear frees. */
typedef struct anvil_devtools_state {
    cJSON *root;                  /* NULL: no baseline yet */
    int64_t seq;                  /* frameNo of root */
    int deltas;                   /* deltas since the last snapshot */
    bool rebaseline;              /* the next event is a snapshot */
} anvil_devtools_state;

void anvil_devtools_state_clear(anvil_devtools_state *st);

/* Force the next event to be a snapshot. The hook for rewindRun (not
 * implemented yet): a rewind truncates frames, so on TimeTravelJumped the
 * gateway calls this and re-reads from the target frame. */
void anvil_devtools_request_rebaseline(anvil_devtools_state *st);

/* The snapshot of one parsed frame ({"frameNo","runId","status","root"}):
 *   {version:1, runId, frameNo, seq, status, root}
 * exactly the `snapshot` member of a snapshot event below, which is built
 * by this function (getDevToolsSnapshot answers it without a stream).
 * seq is the frame number. The caller owns the result (cJSON_Delete); the
 * frame is only read. NULL when the frame is malformed (no numeric
 * frameNo, no object root) or out of memory. */
cJSON *anvil_devtools_snapshot(const cJSON *frame);

/* The devtools.event payload for the next frame (a parsed frame object):
 *   {version:1, kind:"snapshot", snapshot:{version:1, runId, frameNo, seq,
 *    status, root}}    first event, after 50 deltas, when the delta's JSON
 *                      is larger than the snapshot's, or when requested;
 *   {version:1, kind:"delta", delta:{version:1, baseSeq, seq, ops}}
 *                      otherwise (baseSeq = the previous event's seq).
 * Updates st. NULL when the frame is malformed or out of memory (st is
 * unchanged then). */
cJSON *anvil_devtools_next(anvil_devtools_state *st, const cJSON *frame);

#endif
