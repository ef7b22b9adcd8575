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
