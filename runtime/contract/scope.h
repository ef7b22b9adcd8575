/*
 * runtime/contract/scope.h — may this principal call this method?
 *
 * The rules follow the gateway's scope model: "*" grants everything; typed
 * scopes imply others (run:admin -> run:write -> run:read, cron:write ->
 * cron:read); legacy ranked grants (read, execute, approve, admin) expand to
 * sets of typed scopes; a grant equal to the method name grants that method;
 * a grant ending in ".*" grants methods with that prefix. The table of scopes,
 * implications and legacy grants is generated from openapi.yaml
 * (generated/anvil_scopes.c); this file only interprets it.
 */
#ifndef ANVIL_SCOPE_H
#define ANVIL_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct anvil_scope_def {
    const char *name;               /* "run:write" */
    const char *description;
    const char *const *implies;     /* scopes this one directly implies */
    size_t n_implies;
} anvil_scope_def;

typedef struct anvil_legacy_grant {
    const char *name;               /* "execute" */
    const char *const *grants;      /* typed scopes it stands for */
    size_t n_grants;
} anvil_legacy_grant;

typedef struct anvil_scope_table {
    const anvil_scope_def *scopes;
    size_t n_scopes;
    const anvil_legacy_grant *legacy;
    size_t n_legacy;
} anvil_scope_table;

/*
 * True when the granted scopes allow `required` for a call to `method`
 * (`canonical` is the canonical method name when the call used a legacy
 * alias, else the same as method, or NULL). Implications are followed
 * transitively. Whitespace around grants is ignored.
 */
bool anvil_scope_allows(const anvil_scope_table *table,
                        char *const *granted, size_t n_granted,
                        const char *required, const char *method,
                        const char *canonical);

/* True when a grant can ever match something: "*", a typed scope, a legacy
 * ranked grant, a method name or legacy alias, or a "prefix.*" wildcard.
 * Config loading and `anvil token issue` refuse anything else, so a typo
 * such as "run:raed" is an error instead of a grant that silently never
 * matches. */
bool anvil_scope_grant_known(const anvil_scope_table *table, const char *grant);

/* True when `name` is a typed scope of the table. */
bool anvil_scope_known(const anvil_scope_table *table, const char *name);

#endif
