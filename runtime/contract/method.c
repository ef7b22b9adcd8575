/*
 * runtime/contract/method.c — name lookups over the generated method table.
 */
#include <stdlib.h>
#include <string.h>

#include "method.h"

static int cmp_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const anvil_method_name *)elem)->name);
}

const anvil_method *anvil_method_find(const char *name)
{
    const anvil_method_name *hit = bsearch(name, anvil_method_names, anvil_n_method_names,
                                           sizeof anvil_method_names[0], cmp_name);
    return hit ? hit->method : NULL;
}

bool anvil_method_declares(const anvil_method *m, anvil_error_code code)
{
    for (size_t i = 0; i < m->n_errors; i++)
        if (m->errors[i] == code)
            return true;
    return false;
}

const char *anvil_method_fallback_scope(const char *name)
{
    const char *fallback = NULL;
    for (size_t i = 0; i < anvil_n_utility_scopes; i++) {
        const char *m = anvil_utility_scopes[i].method;
        size_t len = strlen(m);
        if (strcmp(m, "*") == 0) {
            fallback = anvil_utility_scopes[i].required_scope;
        } else if (len >= 2 && m[len - 1] == '*' && m[len - 2] == '.') {
            if (strncmp(name, m, len - 1) == 0)
                return anvil_utility_scopes[i].required_scope;
        } else if (strcmp(m, name) == 0) {
            return anvil_utility_scopes[i].required_scope;
        }
    }
    return fallback ? fallback : "run:read";
}
