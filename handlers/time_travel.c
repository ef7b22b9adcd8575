/*
 * handlers/time_travel.c — rewindRun (and its aliases jumpToFrame,
 * devtools.jumpToFrame): the request is the contract's, the rules and the
 * audit trail are the engine's (runtime/engine/engine_rewind.h).
 *
 * The rewind is checked now; its workspace checkout runs off the loop
 * thread and the call is answered once the rewind is done, so a large
 * workspace never stalls the server and the run answers Busy meanwhile.
 */
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine_rewind.h"

/* The outcome into the response; the warnings move (the response frees
 * them). */
static void fill(anvil_rewind_run_response *res, anvil_rewind_outcome *o)
{
    res->ok = true;
    res->new_frame_no = o->new_frame_no;
    res->reverted_sandboxes = o->reverted_sandboxes;
    res->deleted_frames = o->deleted_frames;
    res->deleted_attempts = o->deleted_attempts;
    res->invalidated_diffs = o->invalidated_diffs;
    res->duration_ms = o->duration_ms;
    res->effect_boundary.warnings.items = o->warnings;
    res->effect_boundary.warnings.count = o->n_warnings;
    o->warnings = NULL;
    o->n_warnings = 0;
}

static void rewound(void *ctx, int rc, anvil_rewind_outcome *o, anvil_error *err)
{
    anvil_deferred *d = ctx;
    if (rc == 0) {
        fill(anvil_deferred_response(d), o);
    } else {
        *anvil_deferred_error(d) = *err;
        memset(err, 0, sizeof *err);
    }
    anvil_deferred_finish(d, rc);
}

int anvil_handle_rewind_run(anvil_call *call, const anvil_rewind_run_request *req,
                            anvil_rewind_run_response *res)
{
    /* The contract's const: true is checked before a handler runs. */
    if (!req->confirm)
        return anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                               "$.params.confirm: must be true (legacy code ConfirmationRequired)");
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_rewind *rw;
    if (anvil_rewind_begin(call->svc->engine, req->run_id, req->frame_no, call->principal, &rw,
                           &call->err) != 0)
        return -1;
    anvil_deferred *d = anvil_call_defer(call, res);
    if (d) {
        anvil_rewind_finish_later(rw, rewound, d);
        return ANVIL_CALL_DEFERRED;
    }
    /* A transport that cannot wait (or no memory to): finish it here. */
    anvil_rewind_outcome o;
    if (anvil_rewind_finish_now(rw, &o, &call->err) != 0)
        return -1;
    fill(res, &o);
    anvil_rewind_outcome_clear(&o);
    return 0;
}
