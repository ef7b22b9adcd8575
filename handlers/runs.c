/*
 * handlers/runs.c — launching, inspecting and steering runs.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_launch_run(anvil_call *call, const anvil_launch_run_request *req, anvil_launch_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_resume_run(anvil_call *call, const anvil_resume_run_request *req, anvil_resume_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_cancel_run(anvil_call *call, const anvil_cancel_run_request *req, anvil_cancel_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_hijack_run(anvil_call *call, const anvil_hijack_run_request *req, anvil_hijack_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_get_run(anvil_call *call, const anvil_get_run_request *req, anvil_get_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_list_runs(anvil_call *call, const anvil_list_runs_request *req, anvil_list_runs_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
