/*
 * runtime/config/output_schema_load.c — a task's `outputSchema` from YAML
 * (output_schema_load.h).
 *
 * Owns the file shape of the declaration and its load-time diagnostics.
 * What a field means, and the check of rows, are output_schema.c's; the
 * typed YAML readers are config_yaml.c's. The depth is fixed (schema,
 * field list, field, enum list, scalar), so YAML aliases cannot make the
 * walk recurse and are read like any other node.
 */
#include "output_schema_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const schema_keys[] = {"fields", NULL};
static const char *const field_keys[] = {"name", "type", "optional", "nullable", "description",
                                         "enum", NULL};
/* Keys that say the author wrote a JSON Schema (the form this key took
 * before it was a field list); they get one pointed message. */
static const char *const json_schema_keys[] = {"type", "properties", "required", "$schema",
                                               "additionalProperties", NULL};

static size_t diag_mark(const anvil_cfg_ctx *c)
{
    return c->diags->n + c->diags->n_dropped + (c->oom_reported ? 1 : 0);
}

static size_t n_items(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item(anvil_cfg_ctx *c, const yaml_node_t *seq, size_t i)
{
    return anvil_cfg_node(c, seq->data.sequence.items.start[i]);
}

static void path_index(char out[ANVIL_CFG_PATH_MAX], const char *base, size_t i)
{
    snprintf(out, ANVIL_CFG_PATH_MAX, "%.*s[%zu]", ANVIL_CFG_PATH_MAX - 24, base, i);
}

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

/* A list node under key, or NULL after reporting what it was instead. */
static yaml_node_t *list_at(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, const char *what)
{
    char buf[80];
    if (n && n->type == YAML_SEQUENCE_NODE)
        return n;
    anvil_cfg_error(c, n, "%s: expected a list of %s, got %s", path, what,
                    anvil_cfg_describe(n, buf));
    return NULL;
}

/* The first key of map that belongs to a JSON Schema, or NULL. */
static const char *json_schema_key(anvil_cfg_ctx *c, yaml_node_t *map)
{
    for (size_t i = 0; json_schema_keys[i]; i++)
        if (anvil_cfg_get(c, map, json_schema_keys[i]))
            return json_schema_keys[i];
    return NULL;
}

/* ---- one field ----------------------------------------------------------- */

static void read_name(anvil_cfg_ctx *c, yaml_node_t *map, const char *path,
                      const anvil_output_schema *s, anvil_output_field *f)
{
    char p[ANVIL_CFG_PATH_MAX];
    anvil_cfg_path(p, path, "name");
    yaml_node_t *v = anvil_cfg_get(c, map, "name");
    if (!v) {
        anvil_cfg_error(c, map, "%s: missing (every field needs a name)", p);
        return;
    }
    if (!anvil_cfg_string(c, v, p, false, &f->name))
        return;
    if (!anvil_output_field_name_valid(f->name)) {
        anvil_cfg_error(c, v, "%s: invalid field name '%.64s%s' (1-%d letters, digits, '_' or "
                              "'-', starting with a letter or '_')", p, f->name,
                        strlen(f->name) > 64 ? "..." : "", ANVIL_OUTPUT_NAME_MAX);
        return;
    }
    const anvil_output_field *first = anvil_output_schema_field(s, f->name, strlen(f->name));
    if (first)
        anvil_cfg_error(c, v, "%s: duplicate field name '%s' (first declared at line %d)", p,
                        f->name, first->line);
}

static bool read_type(anvil_cfg_ctx *c, yaml_node_t *map, const char *path, anvil_output_field *f)
{
    char p[ANVIL_CFG_PATH_MAX], buf[80], *text = NULL;
    anvil_cfg_path(p, path, "type");
    yaml_node_t *v = anvil_cfg_get(c, map, "type");
    if (!v) {
        anvil_cfg_error(c, map, "%s: missing (one of " ANVIL_FIELD_TYPES_TEXT ")", p);
        return false;
    }
    /* `type: null` reads as YAML's null; the author meant the type. */
    if (v->type == YAML_SCALAR_NODE && !strcmp((const char *)v->data.scalar.value, "null")) {
        f->type = ANVIL_FIELD_NULL;
        return true;
    }
    if (!anvil_cfg_string(c, v, p, false, &text))
        return false;
    bool ok = anvil_field_type_parse(text, &f->type);
    if (!ok)
        anvil_cfg_error(c, v, "%s: unknown type %s (expected " ANVIL_FIELD_TYPES_TEXT ")", p,
                        anvil_cfg_describe(v, buf));
    free(text);
    return ok;
}

/* What an enum value must be, for messages: "a string", "an integer". */
static const char *type_article(anvil_field_type t)
{
    return t == ANVIL_FIELD_INTEGER ? "an integer" : t == ANVIL_FIELD_STRING ? "a string"
         : t == ANVIL_FIELD_NUMBER ? "a number" : "a boolean";
}

/* One enum value: a scalar of the field's type, not null, not a repeat. */
static bool enum_value_ok(anvil_cfg_ctx *c, yaml_node_t *n, const char *p, const cJSON *v,
                          const anvil_output_field *f, const cJSON *earlier)
{
    char buf[80];
    if (cJSON_IsNull(v)) {
        anvil_cfg_error(c, n, "%s: null is not an enum value (declare the field nullable: true "
                              "to allow null)", p);
        return false;
    }
    if (!anvil_field_value_fits(f->type, v)) {
        /* YAML typed the scalar; say how it was read, and how to get a string. */
        const char *read_as = cJSON_IsNumber(v) ? "the number " : cJSON_IsBool(v) ? "the boolean "
                            : "";
        bool unquoted = f->type == ANVIL_FIELD_STRING && !cJSON_IsString(v);
        anvil_cfg_error(c, n, "%s: expected %s (the field's type), got %s%.60s%s", p,
                        type_article(f->type), read_as,
                        *read_as ? (const char *)n->data.scalar.value : anvil_cfg_describe(n, buf),
                        unquoted ? " (quote it to make it a string)" : "");
        return false;
    }
    for (const cJSON *x = earlier->child; x; x = x->next) {
        if (cJSON_Compare(x, v, true)) {
            anvil_cfg_error(c, n, "%s: %s is already in the enum", p, anvil_cfg_describe(n, buf));
            return false;
        }
    }
    return true;
}

static void read_enum(anvil_cfg_ctx *c, yaml_node_t *map, const char *path, anvil_output_field *f,
                      bool type_ok)
{
    char p[ANVIL_CFG_PATH_MAX], ip[ANVIL_CFG_PATH_MAX];
    anvil_cfg_path(p, path, "enum");
    yaml_node_t *v = anvil_cfg_get(c, map, "enum");
    if (!v || !type_ok)
        return;
    if (!anvil_field_type_has_enum(f->type)) {
        anvil_cfg_error(c, v, "%s: only string, number, integer and boolean fields have an enum "
                              "(this field is %s)", p, anvil_field_type_name(f->type));
        return;
    }
    if (!(v = list_at(c, v, p, "values")))
        return;
    size_t count = n_items(v);
    if (count == 0 || count > ANVIL_OUTPUT_MAX_ENUM) {
        anvil_cfg_error(c, v, "%s: give 1 to %d values (got %zu)", p, ANVIL_OUTPUT_MAX_ENUM, count);
        return;
    }
    cJSON *values = cJSON_CreateArray();
    if (!values) {
        anvil_cfg_oom(c);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        path_index(ip, p, i);
        yaml_node_t *n = item(c, v, i);
        cJSON *x = anvil_cfg_scalar_json(c, n, ip);
        if (!x || !enum_value_ok(c, n, ip, x, f, values)) {
            cJSON_Delete(x);
            ok = false;
        } else if (!cJSON_AddItemToArray(values, x)) {
            cJSON_Delete(x);
            anvil_cfg_oom(c);
            ok = false;
        }
    }
    if (ok)
        f->enum_values = values;
    else
        cJSON_Delete(values);
}

static void read_flags(anvil_cfg_ctx *c, yaml_node_t *map, const char *path, anvil_output_field *f)
{
    char p[ANVIL_CFG_PATH_MAX], *text = NULL;
    yaml_node_t *v;
    anvil_cfg_path(p, path, "optional");
    if ((v = anvil_cfg_get(c, map, "optional")))
        anvil_cfg_bool(c, v, p, &f->optional);
    anvil_cfg_path(p, path, "nullable");
    if ((v = anvil_cfg_get(c, map, "nullable")))
        anvil_cfg_bool(c, v, p, &f->nullable);
    anvil_cfg_path(p, path, "description");
    if ((v = anvil_cfg_get(c, map, "description")) && anvil_cfg_string(c, v, p, true, &text)) {
        if (*text)
            f->description = text;   /* an empty one describes nothing */
        else
            free(text);
    }
}

/* Read item i of the field list into s->fields[s->n_fields]. A field
 * with a usable name is kept even when something else is wrong with it,
 * so a later field of the same name is still reported as a repeat (a
 * schema with any problem is discarded whole). */
static void read_field(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, anvil_output_schema *s)
{
    anvil_output_field *f = &s->fields[s->n_fields];
    *f = (anvil_output_field){.line = line_of(n)};
    if (!anvil_cfg_check_map(c, n, path, NULL, false))
        return;
    anvil_cfg_unknown_keys(c, n, path, field_keys);
    size_t mark = diag_mark(c);
    read_name(c, n, path, s, f);
    bool named = f->name && diag_mark(c) == mark;
    bool typed = read_type(c, n, path, f);
    read_flags(c, n, path, f);
    read_enum(c, n, path, f, typed);
    if (named) {
        s->n_fields++;
        return;
    }
    free(f->name);
    free(f->description);
    cJSON_Delete(f->enum_values);
}

/* ---- the declaration ----------------------------------------------------- */

static void read_fields(anvil_cfg_ctx *c, yaml_node_t *map, const char *path,
                        anvil_output_schema *s)
{
    char p[ANVIL_CFG_PATH_MAX], ip[ANVIL_CFG_PATH_MAX];
    anvil_cfg_path(p, path, "fields");
    yaml_node_t *v = anvil_cfg_get(c, map, "fields");
    if (!v) {
        anvil_cfg_error(c, map, "%s: missing (a list of {name, type, optional, nullable, "
                                "description, enum})", p);
        return;
    }
    if (!(v = list_at(c, v, p, "fields")))
        return;
    size_t count = n_items(v);
    if (count > ANVIL_OUTPUT_MAX_FIELDS) {
        anvil_cfg_error(c, v, "%s: at most %d fields (got %zu)", p, ANVIL_OUTPUT_MAX_FIELDS, count);
        return;
    }
    s->fields = calloc(count ? count : 1, sizeof *s->fields);
    if (!s->fields) {
        anvil_cfg_oom(c);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        path_index(ip, p, i);
        read_field(c, item(c, v, i), ip, s);
    }
}

anvil_output_schema *anvil_output_schema_load(anvil_cfg_ctx *c, yaml_node_t *n, const char *where)
{
    size_t mark = diag_mark(c);
    if (!anvil_cfg_check_map(c, n, where, NULL, false))
        return NULL;
    const char *js = anvil_cfg_get(c, n, "fields") ? NULL : json_schema_key(c, n);
    if (js) {
        anvil_cfg_error(c, n, "%s: '%s' belongs to a JSON Schema; declare its fields "
                              "instead: fields: [{name, type, optional, nullable, description, "
                              "enum}] (docs/workflows.md)", where, js);
        return NULL;
    }
    anvil_cfg_unknown_keys(c, n, where, schema_keys);
    anvil_output_schema *s = calloc(1, sizeof *s);
    if (!s) {
        anvil_cfg_oom(c);
        return NULL;
    }
    read_fields(c, n, where, s);
    if (diag_mark(c) == mark)
        return s;
    anvil_output_schema_free(s);
    return NULL;
}
