/*
 * handlers/field_desc.c — declared fields as wire descriptors (field_desc.h).
 */
#include <stdlib.h>
#include <string.h>

#include "field_desc.h"

/* One declared field as the descriptor shows it. */
static int fill_field(anvil_node_output_field *out, const anvil_output_field *f)
{
    out->name = strdup(f->name);
    out->type = strdup(anvil_field_type_wire(f->type));
    out->optional = f->optional;
    out->nullable = f->nullable;
    if (!out->name || !out->type || (f->description && !(out->description = strdup(f->description))))
        return -1;
    if (!f->enum_values)
        return 0;
    size_t k = (size_t)cJSON_GetArraySize(f->enum_values);
    out->has_enum_ = true;
    out->enum_.items = calloc(k ? k : 1, sizeof *out->enum_.items);
    if (!out->enum_.items)
        return -1;
    for (const cJSON *x = f->enum_values->child; x; x = x->next)
        if (!(out->enum_.items[out->enum_.count++] = cJSON_Duplicate(x, true)))
            return -1;
    return 0;
}

int anvil_field_desc_fill(const anvil_output_schema *s, anvil_node_output_field **items,
                          size_t *count)
{
    *items = NULL;
    *count = 0;
    if (!s->n_fields)
        return 0;
    *items = calloc(s->n_fields, sizeof **items);
    if (!*items)
        return -1;
    for (size_t i = 0; i < s->n_fields; i++)
        if (fill_field(&(*items)[(*count)++], &s->fields[i]) != 0)
            return -1;
    return 0;
}
