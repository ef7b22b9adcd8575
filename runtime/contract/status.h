/*
 * runtime/contract/status.h — the contract's status sets: a run's status,
 * a node's state, their wire names and which of them are terminal.
 *
 * The tables are data generated from openapi.yaml (generated/anvil_statuses.c,
 * one per enum marked x-anvil-status, terminal values from x-anvil-terminal)
 * with a typed C enum and typed wrappers each; this file only interprets a
 * table, so no status name is spelled anywhere else in the runtime. Value
 * `v` of a table is the C enum's value, i.e. the index in the spec's enum.
 */
#ifndef ANVIL_STATUS_H
#define ANVIL_STATUS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct anvil_status_value {
    const char *name;                   /* the wire spelling, "waiting-approval" */
    bool terminal;                      /* listed in the enum's x-anvil-terminal */
} anvil_status_value;

typedef struct anvil_status_table {
    const char *schema;                 /* where the spec declares it, "RunStatus" */
    const anvil_status_value *values;   /* by C enum value */
    size_t n_values;
} anvil_status_table;

/* The wire name of v (asserted in range). */
const char *anvil_status_name(const anvil_status_table *t, int v);

/* The value named `name`, or -1 for NULL or a name the table lacks. */
int anvil_status_parse(const anvil_status_table *t, const char *name);

/* Whether v (asserted in range) is terminal. */
bool anvil_status_terminal(const anvil_status_table *t, int v);

/* Whether `name` names a terminal value (false for NULL or unknown). */
bool anvil_status_name_terminal(const anvil_status_table *t, const char *name);

/* Every name, in table order, joined by ", " into buf (for messages that
 * list the allowed values). 0, or -1 when buf is too small. */
int anvil_status_list(const anvil_status_table *t, char *buf, size_t len);

#endif
