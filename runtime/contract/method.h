/*
 * runtime/contract/method.h — what a method-table row holds.
 *
 * The rows themselves are generated from openapi.yaml into
 * generated/anvil_methods.c (canonical name, legacy aliases, required scope,
 * transport, request/response descriptors). Which function handles each
 * method is the handlers layer's table, generated/anvil_dispatch.c. This header only
 * defines their shape and the lookups over them.
 */
#ifndef ANVIL_METHOD_H
#define ANVIL_METHOD_H

#include <stdbool.h>
#include <stddef.h>

#include "anvil_errors.h"
#include "schema.h"

typedef enum anvil_transport {
    ANVIL_TRANSPORT_HTTP = 1,
    ANVIL_TRANSPORT_WEBSOCKET = 2,
    ANVIL_TRANSPORT_BOTH = 3
} anvil_transport;

struct anvil_call;

/* A handler reads the decoded request and fills the zeroed response. It
 * returns 0, or -1 after setting call->err. Generated thunks adapt the typed
 * handlers declared in generated/anvil_handlers.h to this shape. */
typedef int (*anvil_handler_fn)(struct anvil_call *call, const void *req, void *res);

typedef struct anvil_method {
    const char *name;                 /* canonical, e.g. "launchRun" */
    const char *title;
    const char *required_scope;       /* e.g. "run:write" */
    anvil_transport transport;
    const char *maturity;
    const anvil_schema *request;
    const anvil_schema *response;
    unsigned id;                      /* index in anvil_methods and anvil_handler_table */
    const anvil_error_code *errors;   /* codes the contract lists */
    size_t n_errors;
} anvil_method;

typedef struct anvil_method_alias {
    const char *alias;                /* legacy name, e.g. "runs.create" */
    const char *canonical;
} anvil_method_alias;

typedef struct anvil_utility_scope {
    const char *method;               /* legacy utility name or "prefix.*" */
    const char *required_scope;
} anvil_utility_scope;

typedef struct anvil_method_name {
    const char *name;                 /* canonical name or alias */
    const anvil_method *method;
} anvil_method_name;

/* Canonical name or legacy alias -> row, or NULL when unknown. */
const anvil_method *anvil_method_find(const char *name);

/* Whether the contract lists code among m's errors (x-smithers-errors). */
bool anvil_method_declares(const anvil_method *m, anvil_error_code code);

/* Scope an unknown (or utility) method name needs before it is refused:
 * the utility table's entry, else the "*" default (run:read). */
const char *anvil_method_fallback_scope(const char *name);

/* Whole tables, for listings and tests. */
extern const anvil_method anvil_methods[];
extern const size_t anvil_n_methods;
extern const anvil_method_alias anvil_method_aliases[];
extern const size_t anvil_n_method_aliases;
extern const anvil_method_name anvil_method_names[];   /* strcmp-sorted */
extern const size_t anvil_n_method_names;
extern const anvil_utility_scope anvil_utility_scopes[];
extern const size_t anvil_n_utility_scopes;

#endif
