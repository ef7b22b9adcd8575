/*
 * runtime/config/retention.h — the `retention` section of anvil.yaml: how
 * long ended runs are kept (docs/config.md#retention).
 *
 * Types and one lookup, so the config (which holds the section), its
 * parser and the engine (which applies it) share them without including
 * each other. Ownership: strings belong to the config holding the section.
 */
#ifndef ANVIL_RETENTION_H
#define ANVIL_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on a workflow's ended runs; 0 is "no limit". */
typedef struct anvil_retention_limits {
    int64_t max_age_ms;          /* ended longer ago than this: removed */
    int64_t max_runs;            /* beyond the newest this many ended runs: removed */
    bool has_max_age, has_max_runs;   /* written in this mapping (an override inherits the rest) */
} anvil_retention_limits;

typedef struct anvil_retention_override {
    char *workflow;              /* a configured workflow's name */
    anvil_retention_limits limits;
} anvil_retention_override;

typedef struct anvil_retention_config {
    bool enabled;                /* the section is present */
    anvil_retention_limits defaults;   /* every configured workflow's, unless overridden */
    anvil_retention_override *workflows;
    size_t n_workflows;
} anvil_retention_config;

/* The limits for `workflow`: its override's, and the defaults for what
 * the override leaves out. */
anvil_retention_limits anvil_retention_for(const anvil_retention_config *r, const char *workflow);

void anvil_retention_config_clear(anvil_retention_config *r);

#endif
