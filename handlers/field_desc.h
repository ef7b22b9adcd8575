/*
 * handlers/field_desc.h — a declaration of fields (a task's outputSchema,
 * a workflow's inputSchema) as the wire's field descriptors
 * (NodeOutputField in openapi.yaml): getNodeOutput's `schema` and
 * listWorkflows' `inputSchema` answer the same shape.
 *
 * Ownership: the items belong to the response they are written into.
 */
#ifndef ANVIL_FIELD_DESC_H
#define ANVIL_FIELD_DESC_H

#include <stddef.h>

#include "anvil_types.h"
#include "output_schema.h"

/* s's fields, in declaration order, into *items / *count (types in the
 * wire's vocabulary, anvil_field_type_wire). Returns 0, or -1 out of
 * memory (what was filled is the response's to free). */
int anvil_field_desc_fill(const anvil_output_schema *s, anvil_node_output_field **items,
                          size_t *count);

#endif
