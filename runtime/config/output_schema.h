/*
 * runtime/config/output_schema.h — a task's declared output fields (the
 * `outputSchema` of a workflow task, docs/workflows.md) and the check of an
 * output row against them.
 *
 * The declaration is the upstream's output descriptor written out: a list
 * of fields, each with a name, a type, `optional`, `nullable`, an optional
 * description and an optional enum. getNodeOutput answers it as
 * `schema: {fields: [...]}`; the engine holds every row the task produces
 * to it. Reading it from YAML is output_schema_load.h's job; this file
 * knows no YAML.
 *
 * The rules (the upstream validates rows with a Zod object, and these are
 * that object's rules):
 *   - the row is an object; a field that is not `optional` must be present;
 *   - a present value has the field's type, or is null when the field is
 *     `nullable` (an optional field that is not nullable may be absent, not
 *     null);
 *   - with an enum, the value (unless null) is one of the enum's values;
 *   - members the schema does not declare are dropped from the row
 *     (anvil_output_schema_strip), as a Zod object strips unknown keys.
 *
 * Ownership: a schema owns its fields and every string and cJSON in them;
 * anvil_output_schema_free releases it all.
 */
#ifndef ANVIL_OUTPUT_SCHEMA_H
#define ANVIL_OUTPUT_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* Bounds on a declaration: real outputs are far below them. */
#define ANVIL_OUTPUT_MAX_FIELDS 256
#define ANVIL_OUTPUT_MAX_ENUM 256
#define ANVIL_OUTPUT_NAME_MAX 64

typedef enum anvil_field_type {
    ANVIL_FIELD_STRING = 0,
    ANVIL_FIELD_NUMBER,            /* any JSON number */
    ANVIL_FIELD_INTEGER,           /* a number that is an exact integer within +/-2^53 */
    ANVIL_FIELD_BOOLEAN,
    ANVIL_FIELD_OBJECT,            /* any JSON object; its members are not described */
    ANVIL_FIELD_ARRAY,             /* any JSON array; its items are not described */
    ANVIL_FIELD_NULL,              /* only null */
    ANVIL_FIELD_UNKNOWN            /* any JSON value, null included */
} anvil_field_type;

typedef struct anvil_output_field {
    char *name;                    /* matches anvil_output_field_name_valid */
    anvil_field_type type;
    bool optional;                 /* may be absent */
    bool nullable;                 /* may be null */
    char *description;             /* or NULL */
    cJSON *enum_values;            /* a non-empty array of distinct values of `type`
                                      (string, number, integer or boolean), or NULL */
    int line;                      /* where it is declared, for load-time messages */
} anvil_output_field;

typedef struct anvil_output_schema {
    anvil_output_field *fields;    /* in declaration order; names are distinct */
    size_t n_fields;
} anvil_output_schema;

/* The type as written in a workflow file ("integer"), and as the
 * descriptor reports it: the upstream's vocabulary (string, number,
 * boolean, object, array, null, unknown) has no integer, so an integer
 * field is reported as "number", as the upstream reports a Zod int. */
const char *anvil_field_type_name(anvil_field_type t);
const char *anvil_field_type_wire(anvil_field_type t);
/* A type name as written in a file; false for anything else. */
bool anvil_field_type_parse(const char *s, anvil_field_type *out);
/* Every name anvil_field_type_parse accepts, for messages. */
#define ANVIL_FIELD_TYPES_TEXT "string, number, integer, boolean, object, array, null or unknown"

/* ^[A-Za-z_][A-Za-z0-9_-]{0,63}$: the characters of a template path
 * segment, so every declared field can be read as ${outputs.<node>.<name>}. */
bool anvil_output_field_name_valid(const char *s);

/* Whether a value of t may carry an enum (string, number, integer, boolean). */
bool anvil_field_type_has_enum(anvil_field_type t);

/* Whether v has type t (null has type null and unknown only; nullability
 * is the field's business, not the type's). */
bool anvil_field_value_fits(anvil_field_type t, const cJSON *v);

/* The field named by the first len bytes of name, or NULL. */
const anvil_output_field *anvil_output_schema_field(const anvil_output_schema *s,
                                                    const char *name, size_t len);

/* The declared names for messages: "a, b, c" (cut with "..." to len),
 * or "none". */
void anvil_output_schema_names(const anvil_output_schema *s, char *out, size_t len);

/* Values the caller cannot judge yet: anvil_output_schema_check counts a
 * field whose value it returns true for as present and valid (the loader
 * passes one that spots unexpanded templates in a static row). */
typedef bool (*anvil_output_defer_fn)(const cJSON *value);

/* Check row against s. Returns 0 when it matches. Otherwise -1, and err
 * gets every problem, in declaration order, each naming its JSON path and
 * what was expected, separated by "; ", e.g.
 *   $.score: expected number, got string "12"; $.summary: missing (a required string)
 * (cut to errlen with "..."). defer may be NULL. */
int anvil_output_schema_check(const anvil_output_schema *s, const cJSON *row,
                              anvil_output_defer_fn defer, char *err, size_t errlen);

/* The check of a caller's object against a declaration used as an input
 * contract (a workflow's inputSchema): the same rules, and a member the
 * schema does not declare is a problem too, since dropping it would hide
 * a caller's typo. Paths start at root ("$.params.input"; NULL = "$").
 * Returns 0 or -1 with every problem in err as above; path (may be NULL)
 * gets the first problem's path on its own, for an error's `path`. */
int anvil_output_schema_check_strict(const anvil_output_schema *s, const cJSON *obj,
                                     const char *root, char *err, size_t errlen,
                                     char *path, size_t pathlen);

/* Remove the members of row (an object) that s does not declare, and any
 * repeat of a declared member after its first (the one the check saw). */
void anvil_output_schema_strip(const anvil_output_schema *s, cJSON *row);

/* Release s and everything in it; NULL is fine. */
void anvil_output_schema_free(anvil_output_schema *s);

#endif
