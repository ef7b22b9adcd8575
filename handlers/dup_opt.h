/*
 * handlers/dup_opt.h — copying optional strings into a response.
 *
 * Ownership: the copy is the caller's (the response's, which frees it).
 */
#ifndef ANVIL_DUP_OPT_H
#define ANVIL_DUP_OPT_H

#include <stdbool.h>

/* A malloc'd copy of s, or NULL for NULL. Out of memory sets *oom_flag
 * and returns NULL, so a row of copies is checked once at its end. */
char *anvil_dup_opt(const char *s, bool *oom_flag);

#endif
