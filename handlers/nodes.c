/*
 * handlers/nodes.c — node outputs and diffs.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_get_node_output(anvil_call *call, const anvil_get_node_output_request *req, anvil_get_node_output_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_get_node_diff(anvil_call *call, const anvil_get_node_diff_request *req, anvil_get_node_diff_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
