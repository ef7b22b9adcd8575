/*
 * runtime/engine/launch_input.h — a launch's input against the workflow's
 * declared `inputSchema` (docs/workflows.md#input-schema).
 *
 * Every way a run starts (launchRun, runs.rerun, cronRun, a cron fire, a
 * webhook delivery) goes through anvil_engine_launch, which calls this
 * check, so no path can start a run with input its workflow refuses. A
 * workflow without an inputSchema takes any object, as before.
 */
#ifndef ANVIL_LAUNCH_INPUT_H
#define ANVIL_LAUNCH_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "workflow.h"
#include "workflow_ref.h"

/* The default `at`: where launchRun's request holds the input. */
#define ANVIL_LAUNCH_INPUT_AT "$.params.input"

/* Check input (NULL = {}) against wf's inputSchema: every required field
 * present, every value of its field's type, nullability and enum, and no
 * member the schema does not declare. `at` is the input's JSON path in
 * what the caller sent (NULL = ANVIL_LAUNCH_INPUT_AT); every problem is
 * named under it. Returns 0 (also when nothing is declared), or -1 with
 * InvalidRequest, every problem in the message and the first one's path
 * as the `path` detail. */
int anvil_launch_input_check(const anvil_workflow *wf, const cJSON *input, const char *at,
                             anvil_error *err);

/* Whether a run of wf may start with no input (what a cron fire gives
 * it); when not, why holds the problems, e.g. "$.sha: missing (a required
 * string)". */
bool anvil_launch_input_optional(const anvil_workflow *wf, char *why, size_t whylen);

/* A workflow the config schedules (`schedule:`) starts with no input at
 * every fire, so one whose inputSchema requires a field has every fire
 * refused. That is a warning, not a load error (the config may schedule a
 * workflow before its callers move to cronRun with input): returns true
 * and fills msg when ref is such a workflow. */
bool anvil_launch_input_schedule_warning(const anvil_workflow_ref *ref, const anvil_workflow *wf,
                                         char *msg, size_t msglen);

#endif
