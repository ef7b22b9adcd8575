/*
 * runtime/engine/engine_task.h — task attempts: static outputs and /bin/sh
 * commands, their streamed output, timeouts, retries and kills.
 *
 * An attempt records its own start and end (engine_record.h); it knows
 * nothing of the run's state machine, which learns that a process attempt
 * ended through the callback it passed to anvil_task_start.
 */
#ifndef ANVIL_ENGINE_TASK_H
#define ANVIL_ENGINE_TASK_H

#include "engine_types_internal.h"

/* Called on the loop after a process attempt of r ended and its end was
 * recorded (or the recording failed, leaving r broken). */
typedef void (*anvil_task_ended_fn)(run_rt *r);

/* Start an attempt of a pending task node (asserted). A static task ends
 * before this returns; a process attempt ends later, through `ended`. */
void anvil_task_start(run_rt *r, node_rt *n, anvil_task_ended_fn ended);

/* Kill a running task's process (its exit is then recorded as cancelled or
 * skipped, per n->kill_to). No-op without a process. */
void anvil_task_kill(node_rt *n);

/* Emit task.heartbeat for every running process task. */
void anvil_task_heartbeats(anvil_engine *e);

#endif
