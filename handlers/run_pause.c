/*
 * handlers/run_pause.c — pauseRun: hold a run where it is until resumeRun
 * (the engine's anvil_engine_pause; docs/runs.md#pauserun).
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine.h"

int anvil_handle_pause_run(anvil_call *call, const anvil_pause_run_request *req,
                           anvil_pause_run_response *res)
{
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    if (anvil_engine_pause(call->svc->engine, req->run_id, &call->err) != 0)
        return -1;
    res->run_id = strdup(req->run_id);
    res->status = strdup("pausing");
    if (!res->run_id || !res->status)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}
