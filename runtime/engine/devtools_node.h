/*
 * runtime/engine/devtools_node.h — a recorded frame in the upstream's
 * DevTools shape: the node tree (DevToolsNode of
 * @smithers-orchestrator/protocol) and the run state (DevToolsRunState).
 *
 * The engine records each frame's tree in Anvil's own shape, which
 * rewindRun reads back and frames.get answers:
 *   {id: "<node id>", kind, state, attempts? (tasks), error?, children?}
 * DevTools clients get the upstream's shape instead, converted here at the
 * edge (the recorded frames never change):
 *   {id: <number>, type, name, props, task?, children: [...], depth}
 *
 *   Anvil node     type             name             task.kind  task.state
 *   (the run)      workflow         the workflow key -          -
 *   sequence       sequence         "sequence"       -          -
 *   parallel       parallel         "parallel"       -          -
 *   task           task             "task"           compute    (below)
 *   approval       approval         "approval"       approval   (below)
 *   signal         wait-for-event   "wait-for-event" static     (below)
 *
 * A synthetic `workflow` node is the root, with the workflow's root node as
 * its only child: the upstream's trees always start there, and its client
 * gives the root the run's state. Containers have no `task`, as upstream:
 * clients roll their state up from their children. task.nodeId is the
 * Anvil node id (what getNodeOutput, submitApproval... take), iteration is
 * always 0, attempt is the task's latest attempt number (absent before the
 * first), maxAttempts its declared retries + 1.
 *
 *   Anvil state  task.state (approval / signal / other)
 *   pending      pending
 *   running      in-progress
 *   waiting      waiting-approval / waiting-event / waiting
 *   finished     finished
 *   failed       failed
 *   cancelled    cancelled
 *   skipped      skipped
 *
 * `props` keeps Anvil's own view of a node: {id, state (Anvil's), error?}
 * plus, from the workflow's definition, `static` (task: an `output:` row,
 * not a `run:` command), `title` (approval), `signal` (its name); the root's
 * props are {name: workflow key}.
 *
 * Node ids are numbers, stable across every frame of a run so deltas can
 * address nodes: a 31-bit FNV-1a hash of the Anvil node id (the root's of
 * ""), rehashed with a counter on a collision, assigned in pre-order.
 *
 * Pure: cJSON in, cJSON out. The caller owns every result (cJSON_Delete).
 */
#ifndef ANVIL_DEVTOOLS_NODE_H
#define ANVIL_DEVTOOLS_NODE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "workflow.h"

/* What the upstream shape needs beyond a recorded frame. Only read. */
typedef struct anvil_devtools_source {
    const char *workflow;         /* the run's workflow key: the root's name */
    const anvil_workflow *wf;     /* its definition, or NULL (no longer
                                     configured): props lose static, title,
                                     signal and tasks lose maxAttempts */
} anvil_devtools_source;

/* The recorded tree `root` (Anvil's shape) as the upstream's DevToolsNode
 * tree under the synthetic workflow root. NULL when a node lacks a string
 * id or kind, or out of memory. */
cJSON *anvil_devtools_tree(const cJSON *root, const anvil_devtools_source *src);

/* DevToolsRunState of a frame: {runId, state, computedAt}, the frame's
 * recorded run `status` in the upstream's vocabulary at the frame's time
 * (computedAt, ISO 8601):
 *   running, waiting-approval, waiting-event, waiting-timer  the same
 *   finished -> succeeded; failed, cancelled                 the same
 *   needs_attention -> paused (nothing drives it until resumeRun)
 *   anything else -> unknown
 * `blocked` and `unhealthy` are never set. NULL when out of memory. */
cJSON *anvil_devtools_run_state(const char *run_id, const char *status, int64_t at_ms);

#endif
