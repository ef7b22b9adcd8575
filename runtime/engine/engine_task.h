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

/* A task attempt cut short by the server stopping (a crash found at
 * recovery, or a shutdown past its grace period) is not the task's failure:
 * it is recorded as interrupted and run again without using a retry, up
 * to this many times in a row; then the node fails, so a task that kills
 * the server cannot make it loop forever. */
#define ANVIL_TASK_MAX_INTERRUPTIONS 5

/* Record that the attempt of running node n was interrupted: the node goes
 * back to pending (or fails, past ANVIL_TASK_MAX_INTERRUPTIONS in a row, or
 * is cancelled when its run is cancelling) with node.failed {interrupted:
 * true, willRetry}, and its attempt row (n->attempts) is marked
 * "interrupted" with what it printed (out, err; may be NULL). One
 * transaction; false when it failed (the run is then broken). */
bool anvil_task_record_interrupted(run_rt *r, node_rt *n, const char *why, const char *out,
                                   const char *err, const char *commit);

/* Kill a running task's process because the server stops; its exit is
 * recorded as interrupted. No-op without a process. */
void anvil_task_interrupt(node_rt *n);

/* Emit task.heartbeat for every running process task. */
void anvil_task_heartbeats(anvil_engine *e);

#endif
