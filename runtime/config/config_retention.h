/*
 * runtime/config/config_retention.h — reading the `retention` section of
 * anvil.yaml (retention.h has the types).
 */
#ifndef ANVIL_CONFIG_RETENTION_H
#define ANVIL_CONFIG_RETENTION_H

#include <yaml.h>

#include "config_yaml.h"
#include "retention.h"
#include "workflow_ref.h"

/* Read `retention` into *r, reporting every problem through c. Override
 * names are checked against the configured workflows (refs, n_refs), so
 * the `workflows` section is read first. */
void anvil_config_parse_retention(anvil_cfg_ctx *c, yaml_node_t *n, anvil_retention_config *r,
                                  const anvil_workflow_ref *refs, size_t n_refs);

#endif
