/*
 * runtime/base/errbuf.c — messages into caller buffers (errbuf.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "errbuf.h"

void anvil_errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
