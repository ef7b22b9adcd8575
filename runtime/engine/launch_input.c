/*
 * runtime/engine/launch_input.c — a launch's input against the workflow's
 * declared `inputSchema` (launch_input.h).
 *
 * The rules and the messages are output_schema.c's strict check; this file
 * only turns its answer into the contract error a caller gets.
 */
#include "launch_input.h"

#include <stdio.h>

/* Long enough for several problems; the list is cut with "..." past it. */
#define PROBLEMS_MAX 1024

int anvil_launch_input_check(const anvil_workflow *wf, const cJSON *input, const char *at,
                             anvil_error *err)
{
    if (!wf || !wf->input_schema)
        return 0;
    char problems[PROBLEMS_MAX], path[256];
    cJSON empty = {.type = cJSON_Object};
    if (anvil_output_schema_check_strict(wf->input_schema, input ? input : &empty,
                                         at ? at : ANVIL_LAUNCH_INPUT_AT, problems,
                                         sizeof problems, path, sizeof path) == 0)
        return 0;
    anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST, "%s", problems);
    anvil_error_detail_str(err, "path", path);
    return -1;
}

bool anvil_launch_input_optional(const anvil_workflow *wf, char *why, size_t whylen)
{
    cJSON empty = {.type = cJSON_Object};
    if (why && whylen)
        why[0] = '\0';
    return !wf || !wf->input_schema ||
           anvil_output_schema_check_strict(wf->input_schema, &empty, "$", why, whylen, NULL,
                                            0) == 0;
}

bool anvil_launch_input_schedule_warning(const anvil_workflow_ref *ref, const anvil_workflow *wf,
                                         char *msg, size_t msglen)
{
    char why[PROBLEMS_MAX];
    if (!ref->schedule || anvil_launch_input_optional(wf, why, sizeof why))
        return false;
    snprintf(msg, msglen, "workflows.%s.schedule: scheduled runs start with no input, but its "
             "inputSchema requires some (%s): every fire will be refused", ref->name, why);
    return true;
}
