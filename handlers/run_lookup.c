/*
 * handlers/run_lookup.c — the run a request names (run_lookup.h).
 */
#include "run_lookup.h"

int anvil_handler_load_run(anvil_call *call, const char *run_id, anvil_run_record *out)
{
    anvil_store *s = call->svc->store;
    int found = anvil_store_run_get(s, run_id, out);
    if (found < 0)
        return anvil_store_error(s, &call->err, NULL);
    if (found == 0)
        return anvil_error_set(&call->err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
    return 0;
}
