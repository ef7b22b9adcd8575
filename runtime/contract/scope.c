/*
 * runtime/contract/scope.c — interprets the scope table for anvil_scope_allows.
 *
 * Owns the grant rules only ("*", typed scopes and their implications,
 * legacy ranked grants, exact method grants, "prefix.*" grants). The table
 * itself is data generated from openapi.yaml; nothing here knows a scope or
 * method by name except "*".
 */
#include "method.h"
#include "scope.h"

#include <stdlib.h>
#include <string.h>

/* Tables this small are walked with a visited set on the stack; larger ones
 * (none today) pay for one allocation per check. */
#define SMALL_TABLE 64

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool span_eq(const char *s, size_t n, const char *name)
{
    return name && strlen(name) == n && memcmp(s, name, n) == 0;
}

static bool find_scope(const anvil_scope_table *t, const char *s, size_t n, size_t *idx)
{
    if (!t || !t->scopes)
        return false;
    for (size_t i = 0; i < t->n_scopes; i++) {
        if (span_eq(s, n, t->scopes[i].name)) {
            *idx = i;
            return true;
        }
    }
    return false;
}

/*
 * Does scope s[0..n) grant `required`, directly or through implications?
 * `seen` marks scopes already expanded, so a cycle in the table ends the
 * walk instead of recursing forever, and the depth never exceeds n_scopes.
 */
static bool implies(const anvil_scope_table *t, const char *s, size_t n,
                    const char *required, bool *seen)
{
    size_t idx;
    if (span_eq(s, n, required))
        return true;
    if (!find_scope(t, s, n, &idx) || seen[idx])
        return false;
    seen[idx] = true;
    const anvil_scope_def *def = &t->scopes[idx];
    for (size_t i = 0; def->implies && i < def->n_implies; i++) {
        const char *next = def->implies[i];
        if (next && implies(t, next, strlen(next), required, seen))
            return true;
    }
    return false;
}

static const anvil_legacy_grant *find_legacy(const anvil_scope_table *t, const char *s, size_t n)
{
    if (!t || !t->legacy)
        return NULL;
    for (size_t i = 0; i < t->n_legacy; i++) {
        if (span_eq(s, n, t->legacy[i].name))
            return &t->legacy[i];
    }
    return NULL;
}

/* Typed or legacy grant s[0..n) covers `required`. Fails closed (false) if
 * the visited set cannot be allocated. */
static bool grant_covers(const anvil_scope_table *t, const char *s, size_t n,
                         const char *required)
{
    size_t n_scopes = t && t->scopes ? t->n_scopes : 0;
    bool local[SMALL_TABLE];
    bool *seen = local;
    if (n_scopes > SMALL_TABLE) {
        seen = calloc(n_scopes, sizeof *seen);
        if (!seen)
            return false;
    } else {
        memset(local, 0, sizeof local);
    }

    bool ok = implies(t, s, n, required, seen);
    const anvil_legacy_grant *lg = ok ? NULL : find_legacy(t, s, n);
    for (size_t i = 0; lg && lg->grants && i < lg->n_grants && !ok; i++) {
        /* `seen` is kept across expansions: a scope marked by an earlier,
         * failed walk had everything it implies explored already. */
        const char *g = lg->grants[i];
        ok = g && implies(t, g, strlen(g), required, seen);
    }
    if (seen != local)
        free(seen);
    return ok;
}

bool anvil_scope_allows(const anvil_scope_table *table,
                        char *const *granted, size_t n_granted,
                        const char *required, const char *method,
                        const char *canonical)
{
    if (!granted)
        return false;
    for (size_t i = 0; i < n_granted; i++) {
        const char *s = granted[i];
        if (!s)
            continue;
        size_t n = strlen(s);
        while (n > 0 && is_space(*s)) {
            s++;
            n--;
        }
        while (n > 0 && is_space(s[n - 1]))
            n--;
        if (n == 0)
            continue;

        if (n == 1 && s[0] == '*')
            return true;
        if (span_eq(s, n, method) || span_eq(s, n, canonical))
            return true;
        /* "cron.*" grants every method called "cron.<x>": the prefix kept
         * for comparison includes the dot. */
        if (method && n >= 2 && s[n - 2] == '.' && s[n - 1] == '*' &&
            strncmp(method, s, n - 1) == 0)
            return true;
        if (required && grant_covers(table, s, n, required))
            return true;
    }
    return false;
}

bool anvil_scope_known(const anvil_scope_table *table, const char *name)
{
    size_t idx;
    return name && find_scope(table, name, strlen(name), &idx);
}

bool anvil_scope_grant_known(const anvil_scope_table *table, const char *grant)
{
    size_t n = grant ? strlen(grant) : 0;
    if (n == 0)
        return false;
    if (strcmp(grant, "*") == 0 || anvil_scope_known(table, grant))
        return true;
    for (size_t i = 0; i < table->n_legacy; i++)
        if (strcmp(table->legacy[i].name, grant) == 0)
            return true;
    if (n > 2 && grant[n - 1] == '*' && grant[n - 2] == '.')
        return true;
    return anvil_method_find(grant) != NULL;
}
