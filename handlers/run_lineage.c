/*
 * handlers/run_lineage.c — listRunDescendants: a run and its child runs.
 *
 * Anvil's workflows start no child runs (runs.rerun makes an independent
 * run, not a child), so a run's lineage is the run itself at depth 0. The
 * method answers that truthfully rather than MethodNotFound, so the
 * upstream client's lineage views work (docs/compatibility.md).
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "run_lookup.h"

int anvil_handle_list_run_descendants(anvil_call *call,
                                      const anvil_list_run_descendants_request *req,
                                      anvil_list_run_descendants_response *res)
{
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    anvil_run_record_clear(&rec);
    /* limit >= 1 (the contract's minimum): the run itself always fits. */
    res->items = calloc(1, sizeof *res->items);
    if (!res->items || !(res->items[0].run_id = strdup(req->run_id)))
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    res->count = 1;
    res->items[0].parent_run_id = NULL;
    res->items[0].depth = 0;
    return 0;
}
