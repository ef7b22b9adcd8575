/*
 * handlers/signals.c — submitSignal: record a signal and deliver it to the
 * waiting node that matches its name and correlation key, or keep it for a
 * node that starts waiting later.
 */
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine.h"

int anvil_handle_submit_signal(anvil_call *call, const anvil_submit_signal_request *req,
                               anvil_submit_signal_response *res)
{
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "the run engine is not running");
    anvil_signal_receipt receipt;
    if (anvil_engine_signal(call->svc->engine, req->run_id, req->signal_name, req->correlation_key,
                            req->payload, call->principal->user_id, &receipt, &call->err) != 0)
        return -1;
    res->run_id = strdup(req->run_id);
    /* Without an explicit name the correlation key names the signal, as the
     * reference gateway answers. */
    res->signal_name = strdup(req->signal_name ? req->signal_name : req->correlation_key);
    res->correlation_id = strdup(req->correlation_key);
    res->seq = receipt.seq;
    res->received_at_ms = receipt.received_at_ms;
    res->has_delivered = true;
    res->delivered = receipt.delivered;
    if (!res->run_id || !res->signal_name || !res->correlation_id)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}
