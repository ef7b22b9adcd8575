/*
 * handlers/approvals.c — approval decisions and the pending-approval list.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_submit_approval(anvil_call *call, const anvil_submit_approval_request *req, anvil_submit_approval_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_list_approvals(anvil_call *call, const anvil_list_approvals_request *req, anvil_list_approvals_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
