/*
 * runtime/base/utf8.h — text that is always valid UTF-8.
 */
#ifndef ANVIL_UTF8_H
#define ANVIL_UTF8_H

#include <stddef.h>

/* s[0..len) with every byte that does not start a valid UTF-8 sequence
 * (and every NUL) replaced by U+FFFD, so the text is valid JSON string
 * content (task output, log lines). The caller frees it; NULL when out of
 * memory. */
char *anvil_utf8_clean(const char *s, size_t len);

#endif
