/*
 * runtime/contract/schema.h — descriptor tables for generated types, and the one
 * generic codec that walks them.
 *
 * The generator (codegen/) emits a plain C struct plus an anvil_schema
 * descriptor for every schema in openapi.yaml. This file defines what a
 * descriptor holds; schema.c decodes cJSON into structs (validating as it
 * goes), encodes structs back to cJSON, and frees them. A bug fixed here is
 * fixed for every message, which is why nothing else parses params by hand.
 *
 * Value layout by kind (what sits at a field's offset):
 *   STRING  char *            NULL when absent (owned)
 *   INTEGER int64_t           plus bool has_<f> when optional or nullable
 *   NUMBER  double            likewise
 *   BOOLEAN bool              likewise
 *   OBJECT  struct (embedded) likewise; additionalProperties:true objects
 *                             keep unknown members in `cJSON *_extra`
 *   ARRAY   { T *items; size_t count; }   likewise
 *   JSON    cJSON *           NULL when absent; JSON null is a cJSON null
 *                             node; used for "any JSON" (oneOf/anyOf) and
 *                             free-form objects (no properties)
 * A top-level request/response type is always a struct: objects are the
 * struct itself, other kinds are wrapped so the value sits at offset 0.
 *
 * Ownership: anvil_schema_decode allocates into caller-provided zeroed
 * storage; anvil_schema_free releases what the value owns (not the storage).
 */
#ifndef ANVIL_SCHEMA_H
#define ANVIL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef enum anvil_kind {
    ANVIL_KIND_STRING = 0,
    ANVIL_KIND_INTEGER,
    ANVIL_KIND_NUMBER,
    ANVIL_KIND_BOOLEAN,
    ANVIL_KIND_OBJECT,
    ANVIL_KIND_ARRAY,
    ANVIL_KIND_JSON
} anvil_kind;

/* JSON type mask for ANVIL_KIND_JSON values. */
enum {
    ANVIL_JT_NULL = 1u << 0,
    ANVIL_JT_BOOLEAN = 1u << 1,
    ANVIL_JT_INTEGER = 1u << 2,   /* integral numbers */
    ANVIL_JT_NUMBER = 1u << 3,    /* any number (implies integer) */
    ANVIL_JT_STRING = 1u << 4,
    ANVIL_JT_ARRAY = 1u << 5,
    ANVIL_JT_OBJECT = 1u << 6,
    ANVIL_JT_ANY = 0x7fu
};

struct anvil_schema;

typedef struct anvil_field {
    const char *name;                 /* JSON member name */
    const struct anvil_schema *schema;
    uint32_t offset;                  /* offsetof the value */
    int32_t has_offset;               /* offsetof bool has_<name>, or -1 */
    bool required;
} anvil_field;

typedef struct anvil_schema {
    const char *name;                 /* for messages, e.g. "LaunchRunRequest" */
    anvil_kind kind;
    bool nullable;                    /* JSON null is accepted */
    uint32_t size;                    /* sizeof the C value at the field offset */

    /* STRING */
    const char *const *enum_values;
    uint16_t n_enum;
    int32_t min_length;               /* code points; -1 = none */
    int32_t max_length;               /* code points; -1 = none */

    /* const: the JSON text the value must equal (e.g. "true", "\"v1\"") */
    const char *const_json;

    /* INTEGER, NUMBER */
    bool has_minimum;
    double minimum;
    bool has_maximum;
    double maximum;

    /* OBJECT */
    const anvil_field *fields;
    uint16_t n_fields;
    bool additional;                  /* additionalProperties: true */
    int32_t extra_offset;             /* offsetof cJSON *_extra, or -1 */

    /* ARRAY */
    const struct anvil_schema *items;
    uint32_t item_size;

    /* JSON */
    unsigned json_types;              /* ANVIL_JT_* mask */
} anvil_schema;

/* Why decoding failed: the JSON path of the first offending value and a
 * message naming the rule it broke. */
typedef struct anvil_schema_error {
    char path[260];           /* a path that did not fit ends in "..." */
    char message[256];
} anvil_schema_error;

/*
 * Decode `json` as a value of `schema` into zeroed storage `dst` (at least
 * schema->size bytes; for top-level types pass the struct). `root_path` names
 * the value in messages ("$.params"). Returns 0, or -1 with *err filled; on
 * failure dst is left freed and zeroed. Out-of-memory is reported as an error
 * whose message starts with "out of memory".
 */
int anvil_schema_decode(const anvil_schema *schema, const cJSON *json,
                        void *dst, const char *root_path,
                        anvil_schema_error *err);

/*
 * Check `json` against `schema` without decoding it: the same rules, the
 * same first failure and path as anvil_schema_decode, but nothing is
 * copied or allocated. 0, or -1 with *err filled.
 */
int anvil_schema_check(const anvil_schema *schema, const cJSON *json, const char *root_path,
                       anvil_schema_error *err);

/*
 * Encode the value at `src` to a new cJSON tree (caller deletes). Returns
 * NULL with *err filled when a required member is missing or memory runs out.
 */
cJSON *anvil_schema_encode(const anvil_schema *schema, const void *src,
                           anvil_schema_error *err);

/* Release everything the value at `v` owns and zero it. */
void anvil_schema_free(const anvil_schema *schema, void *v);

#endif
