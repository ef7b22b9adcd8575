/*
 * runtime/config/config_workflows.h — the `workflows` section of anvil.yaml:
 * file references, schedules and webhooks (the workflow files themselves
 * are workflow.c's).
 */
#ifndef ANVIL_CONFIG_WORKFLOWS_H
#define ANVIL_CONFIG_WORKFLOWS_H

#include <yaml.h>

#include "config_yaml.h"
#include "workflow_ref.h"

/* Read `workflows` into a new array *refs of *n_refs entries (owned by the
 * caller, like everything in them), reporting every problem through c. */
void anvil_config_parse_workflows(anvil_cfg_ctx *c, yaml_node_t *n, anvil_workflow_ref **refs,
                                  size_t *n_refs);

#endif
