/*
 * handlers/streams.c — WebSocket subscriptions to run events and DevTools.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_stream_run_events(anvil_call *call, const anvil_stream_run_events_request *req, anvil_stream_run_events_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_stream_dev_tools(anvil_call *call, const anvil_stream_dev_tools_request *req, anvil_stream_dev_tools_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
