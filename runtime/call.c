/*
 * runtime/call.c — small helpers handlers share.
 */
#include "call.h"

int anvil_call_not_available(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "%s is not available yet",
                           call->method->name);
}
