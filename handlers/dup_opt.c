/*
 * handlers/dup_opt.c — copying optional strings into a response (dup_opt.h).
 */
#include <stdlib.h>
#include <string.h>

#include "dup_opt.h"

char *anvil_dup_opt(const char *s, bool *oom_flag)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom_flag = true;
    return d;
}
