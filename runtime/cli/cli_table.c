/*
 * runtime/cli/cli_table.c — aligned text tables (cli_table.h). Widths count
 * bytes, which lines up ASCII ids and statuses, what these tables hold.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_table.h"

void anvil_cli_table_init(anvil_cli_table *t, size_t ncols, const char *const *head)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols < ANVIL_CLI_TABLE_MAX_COLS ? ncols : ANVIL_CLI_TABLE_MAX_COLS;
    for (size_t i = 0; i < t->ncols; i++)
        t->head[i] = head[i];
}

void anvil_cli_table_add(anvil_cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof *nc);
        if (!nc) {
            t->failed = 1;
            return;
        }
        t->cells = nc;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *c = strdup(cells[i] ? cells[i] : "-");
        if (!c)
            t->failed = 1;
        t->cells[t->nrows * t->ncols + i] = c;
    }
    t->nrows++;
}

int anvil_cli_table_print(const anvil_cli_table *t, FILE *out, const char *empty)
{
    if (t->nrows == 0) {
        fprintf(out, "%s\n", empty);
        return t->failed ? -1 : 0;
    }
    size_t w[ANVIL_CLI_TABLE_MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->head[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            const char *c = t->cells[r * t->ncols + i];
            if (c && strlen(c) > w[i])
                w[i] = strlen(c);
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *c = r == 0 ? t->head[i] : t->cells[(r - 1) * t->ncols + i];
            if (!c)
                c = "?";
            if (i + 1 == t->ncols)
                fprintf(out, "%s\n", c);
            else
                fprintf(out, "%-*s  ", (int)w[i], c);
        }
    }
    return t->failed ? -1 : 0;
}

void anvil_cli_table_free(anvil_cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

const char *anvil_cli_time(int64_t ms, char buf[32])
{
    if (ms <= 0) {
        strcpy(buf, "-");
        return buf;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, 32, "%lld", (long long)ms);
    return buf;
}
