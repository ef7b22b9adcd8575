/*
 * runtime/base/errbuf.h — a message into the caller's (err, errlen) buffer.
 *
 * Functions that fail without a contract error (loading, parsing, process
 * control) report into a buffer their caller owns. err may be NULL or
 * errlen 0 when the caller does not want the message; the text is cut to
 * fit, always NUL-terminated.
 */
#ifndef ANVIL_ERRBUF_H
#define ANVIL_ERRBUF_H

#include <stddef.h>

void anvil_errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
