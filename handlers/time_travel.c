/*
 * handlers/time_travel.c — rewinding a run to an earlier frame.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_rewind_run(anvil_call *call, const anvil_rewind_run_request *req, anvil_rewind_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
