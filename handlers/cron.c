/*
 * handlers/cron.c — cron schedules.
 *
 * The engine issue replaces these: until then each answers Internal
 * "<method> is not available yet" after the dispatcher has validated the
 * request against the contract, so clients already get real validation.
 */
#include "anvil_handlers.h"
#include "call.h"

int anvil_handle_cron_list(anvil_call *call, const anvil_cron_list_request *req, anvil_cron_list_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_cron_create(anvil_call *call, const anvil_cron_create_request *req, anvil_cron_create_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_cron_delete(anvil_call *call, const anvil_cron_delete_request *req, anvil_cron_delete_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}

int anvil_handle_cron_run(anvil_call *call, const anvil_cron_run_request *req, anvil_cron_run_response *res)
{
    (void)req;
    (void)res;
    return anvil_call_not_available(call);
}
