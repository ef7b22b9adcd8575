/*
 * handlers/signals.c — signals delivered to waiting runs.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_submit_signal(anvil_call *call, const anvil_submit_signal_request *req, anvil_submit_signal_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
