/*
 * handlers/run_lookup.h — the run a request names, or the contract's error.
 *
 * Ownership: *out is the caller's; clear it with anvil_run_record_clear.
 */
#ifndef ANVIL_RUN_LOOKUP_H
#define ANVIL_RUN_LOOKUP_H

#include "call.h"
#include "store_runs.h"

/* Load run_id's record into *out. 0, or -1 with RunNotFound or Internal
 * set on the call. */
int anvil_handler_load_run(anvil_call *call, const char *run_id, anvil_run_record *out);

#endif
