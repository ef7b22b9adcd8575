/*
 * runtime/base/diag.h — a list of problems found in a file, each with file and line.
 *
 * Config and workflow loading collect every problem instead of stopping at
 * the first, so `anvil check-config` can report them all at once.
 * Ownership: the list owns its strings; anvil_diags_clear releases them.
 */
#ifndef ANVIL_DIAG_H
#define ANVIL_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"

typedef struct anvil_diag {
    char *file;
    int line;      /* 1-based; 0 when the problem has no position */
    int column;    /* 1-based; 0 when unknown */
    char *message;
} anvil_diag;

typedef struct anvil_diags {
    anvil_diag *items;
    size_t n;
    size_t cap;
    size_t n_dropped;  /* problems lost to out-of-memory (see anvil_diags_add) */
} anvil_diags;

/* Append one problem (printf-style message). Returns 0, or -1 when out of
 * memory (the problem is then lost, and n_dropped counts it). */
int anvil_diags_add(anvil_diags *d, const char *file, int line, int column,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Print "file:line:column: message" lines. */
/* The same, one log line each (so they follow logFormat). */
void anvil_diags_log(const anvil_diags *d, anvil_log_level level);
void anvil_diags_print(const anvil_diags *d, FILE *out);
void anvil_diags_clear(anvil_diags *d);

#endif
