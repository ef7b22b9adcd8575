/*
 * handlers/time_travel.c — rewindRun (and its aliases jumpToFrame,
 * devtools.jumpToFrame): the request is the contract's, the rules and the
 * audit trail are the engine's (runtime/engine/engine_rewind.h).
 */
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine_rewind.h"

int anvil_handle_rewind_run(anvil_call *call, const anvil_rewind_run_request *req,
                            anvil_rewind_run_response *res)
{
    /* The contract's const: true is checked before a handler runs. */
    if (!req->confirm)
        return anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                               "$.params.confirm: must be true (legacy code ConfirmationRequired)");
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_rewind_outcome o;
    if (anvil_engine_rewind(call->svc->engine, req->run_id, req->frame_no, call->principal, &o,
                            &call->err) != 0)
        return -1;
    res->ok = true;
    res->new_frame_no = o.new_frame_no;
    res->reverted_sandboxes = o.reverted_sandboxes;
    res->deleted_frames = o.deleted_frames;
    res->deleted_attempts = o.deleted_attempts;
    res->invalidated_diffs = o.invalidated_diffs;
    res->duration_ms = o.duration_ms;
    /* The warnings move into the response, which frees them. */
    res->effect_boundary.warnings.items = o.warnings;
    res->effect_boundary.warnings.count = o.n_warnings;
    o.warnings = NULL;
    o.n_warnings = 0;
    anvil_rewind_outcome_clear(&o);
    return 0;
}
