/*
 * runtime/base/diag.c — the growable list of positioned problems (diag.h).
 *
 * Owns only the list and its strings. Loaders decide what is a problem;
 * this file records and prints them. Out of memory never aborts: the problem
 * is counted in n_dropped so the printout can admit that it is incomplete.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 1, 0)))
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

int anvil_diags_add(anvil_diags *d, const char *file, int line, int column,
                    const char *fmt, ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        anvil_diag *items = realloc(d->items, cap * sizeof *items);
        if (!items) {
            d->n_dropped++;
            return -1;
        }
        d->items = items;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *message = vformat(fmt, ap);
    va_end(ap);
    char *file_copy = file ? strdup(file) : NULL;
    if (!message || (file && !file_copy)) {
        free(message);
        free(file_copy);
        d->n_dropped++;
        return -1;
    }
    d->items[d->n++] = (anvil_diag){
        .file = file_copy, .line = line, .column = column, .message = message,
    };
    return 0;
}

void anvil_diags_print(const anvil_diags *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const anvil_diag *g = &d->items[i];
        if (g->file)
            fputs(g->file, out);
        if (g->file && g->line > 0)
            fprintf(out, ":%d", g->line);
        if (g->file && g->line > 0 && g->column > 0)
            fprintf(out, ":%d", g->column);
        fprintf(out, "%s%s\n", g->file ? ": " : "", g->message);
    }
    if (d->n_dropped)
        fprintf(out, "(%zu more problem%s lost: out of memory)\n", d->n_dropped,
                d->n_dropped == 1 ? "" : "s");
}

void anvil_diags_log(const anvil_diags *d, anvil_log_level level)
{
    for (size_t i = 0; i < d->n; i++) {
        const anvil_diag *g = &d->items[i];
        if (g->file && g->line > 0)
            anvil_log(level, "%s:%d:%d: %s", g->file, g->line, g->column, g->message);
        else if (g->file)
            anvil_log(level, "%s: %s", g->file, g->message);
        else
            anvil_log(level, "%s", g->message);
    }
    if (d->n_dropped)
        anvil_log(level, "(%zu more problem%s lost: out of memory)", d->n_dropped,
                  d->n_dropped == 1 ? "" : "s");
}

void anvil_diags_clear(anvil_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    *d = (anvil_diags){0};
}
