/*
 * runtime/contract/status.c — interprets a generated status table
 * (status.h). Knows no status by name.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "status.h"

const char *anvil_status_name(const anvil_status_table *t, int v)
{
    assert(v >= 0 && (size_t)v < t->n_values);
    return t->values[v].name;
}

int anvil_status_parse(const anvil_status_table *t, const char *name)
{
    for (size_t i = 0; name && i < t->n_values; i++)
        if (strcmp(t->values[i].name, name) == 0)
            return (int)i;
    return -1;
}

bool anvil_status_terminal(const anvil_status_table *t, int v)
{
    assert(v >= 0 && (size_t)v < t->n_values);
    return t->values[v].terminal;
}

bool anvil_status_name_terminal(const anvil_status_table *t, const char *name)
{
    int v = anvil_status_parse(t, name);
    return v >= 0 && t->values[v].terminal;
}

int anvil_status_list(const anvil_status_table *t, char *buf, size_t len)
{
    if (len == 0)
        return -1;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < t->n_values; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", t->values[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}
