/*
 * runtime/config/output_schema_load.h — reading a task's `outputSchema`
 * (and a workflow's `inputSchema`, in the same format) from its workflow
 * file (docs/workflows.md):
 *
 *   outputSchema:
 *     fields:
 *       - { name: summary, type: string, description: One line. }
 *       - { name: score, type: number, optional: true, nullable: true }
 *       - { name: level, type: string, enum: [low, medium, high] }
 *
 * Every problem is reported with its line and column (unknown keys, a
 * missing name or type, an unknown type, an invalid or repeated name, an
 * enum on a type that has none, enum values of the wrong type, null or
 * repeated in the enum, a JSON Schema written where the field list
 * belongs), and reading carries on so one load lists them all.
 */
#ifndef ANVIL_OUTPUT_SCHEMA_LOAD_H
#define ANVIL_OUTPUT_SCHEMA_LOAD_H

#include "config_yaml.h"
#include "output_schema.h"

/* Read n, reporting problems under where ("review.outputSchema"). Returns
 * the schema, which the caller frees with anvil_output_schema_free, or
 * NULL after reporting at least one problem. */
anvil_output_schema *anvil_output_schema_load(anvil_cfg_ctx *c, yaml_node_t *n, const char *where);

#endif
