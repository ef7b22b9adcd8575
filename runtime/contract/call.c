/*
 * runtime/contract/call.c — small helpers handlers share.
 */
#include <stdlib.h>
#include <string.h>

#include "call.h"

void *anvil_grow(void *items, size_t count, size_t *cap, size_t elem)
{
    if (count < *cap)
        return items;
    size_t ncap = *cap ? *cap * 2 : 8;
    char *grown = realloc(items, ncap * elem);
    if (!grown)
        return NULL;
    memset(grown + *cap * elem, 0, (ncap - *cap) * elem);
    *cap = ncap;
    return grown;
}

int anvil_call_not_available(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "%s is not available yet",
                           call->method->name);
}
