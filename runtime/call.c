/*
 * runtime/call.c — small helpers handlers share.
 */
#include "call.h"

int anvil_call_load_run(anvil_call *call, const char *run_id, anvil_run_record *out)
{
    anvil_store *s = call->gw->store;
    int found = anvil_store_run_get(s, run_id, out);
    if (found < 0)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "%s", anvil_store_errmsg(s));
    if (found == 0)
        return anvil_error_set(&call->err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
    return 0;
}

int anvil_call_not_available(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "%s is not available yet",
                           call->method->name);
}
