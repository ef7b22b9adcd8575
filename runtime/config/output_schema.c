/*
 * runtime/config/output_schema.c — declared output fields and the check of
 * a row against them (output_schema.h).
 *
 * Owns the type vocabulary, the field-name rule, and the messages a
 * mismatching row produces. Pure functions over cJSON: no YAML (the
 * loader's), no engine state (the engine calls the check when an attempt
 * produced its row).
 */
#include "output_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_number.h"
#include "json_print.h"

/* Longest piece of a value quoted back in a message. */
#define SHOW_MAX 40
/* Longest enum list quoted back in a message. */
#define ENUM_SHOW_MAX 160

static const char *const type_names[] = {
    [ANVIL_FIELD_STRING] = "string",   [ANVIL_FIELD_NUMBER] = "number",
    [ANVIL_FIELD_INTEGER] = "integer", [ANVIL_FIELD_BOOLEAN] = "boolean",
    [ANVIL_FIELD_OBJECT] = "object",   [ANVIL_FIELD_ARRAY] = "array",
    [ANVIL_FIELD_NULL] = "null",       [ANVIL_FIELD_UNKNOWN] = "unknown",
};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

const char *anvil_field_type_name(anvil_field_type t)
{
    return (size_t)t < N_TYPES ? type_names[t] : "unknown";
}

const char *anvil_field_type_wire(anvil_field_type t)
{
    return t == ANVIL_FIELD_INTEGER ? "number" : anvil_field_type_name(t);
}

bool anvil_field_type_parse(const char *s, anvil_field_type *out)
{
    for (size_t i = 0; s && i < N_TYPES; i++) {
        if (!strcmp(s, type_names[i])) {
            *out = (anvil_field_type)i;
            return true;
        }
    }
    return false;
}

bool anvil_output_field_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > ANVIL_OUTPUT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        bool later = (ch >= '0' && ch <= '9') || ch == '-';
        if (!letter && (i == 0 || !later))
            return false;
    }
    return true;
}

bool anvil_field_type_has_enum(anvil_field_type t)
{
    return t == ANVIL_FIELD_STRING || t == ANVIL_FIELD_NUMBER || t == ANVIL_FIELD_INTEGER ||
           t == ANVIL_FIELD_BOOLEAN;
}

bool anvil_field_value_fits(anvil_field_type t, const cJSON *v)
{
    switch (t) {
    case ANVIL_FIELD_STRING:  return cJSON_IsString(v);
    case ANVIL_FIELD_NUMBER:  return cJSON_IsNumber(v);
    case ANVIL_FIELD_INTEGER: return anvil_json_exact_int(v, NULL);
    case ANVIL_FIELD_BOOLEAN: return cJSON_IsBool(v);
    case ANVIL_FIELD_OBJECT:  return cJSON_IsObject(v);
    case ANVIL_FIELD_ARRAY:   return cJSON_IsArray(v);
    case ANVIL_FIELD_NULL:    return cJSON_IsNull(v);
    case ANVIL_FIELD_UNKNOWN: return v != NULL;
    }
    return false;
}

const anvil_output_field *anvil_output_schema_field(const anvil_output_schema *s,
                                                    const char *name, size_t len)
{
    for (size_t i = 0; s && i < s->n_fields; i++) {
        const char *f = s->fields[i].name;
        if (strlen(f) == len && !memcmp(f, name, len))
            return &s->fields[i];
    }
    return NULL;
}

/* ---- messages ------------------------------------------------------------ */

/* The problems of one row, appended to the caller's buffer and cut with
 * "..." when it is full. */
typedef struct problems {
    char *buf;
    size_t len;
    size_t used;
    int count;
    bool cut;
    char *first;                   /* gets the first problem's path; may be NULL */
    size_t first_len;
} problems;

/* Room for a problem's path: the caller's root, then a field name
 * (ANVIL_OUTPUT_NAME_MAX) or a quoted member name cut to SHOW_MAX. */
#define PATH_MAX_LEN 256

static void problem_at(problems *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append "path: what" to the list. */
static void problem_at(problems *p, const char *path, const char *fmt, ...)
{
    char what[512], one[PATH_MAX_LEN + 520];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(one, sizeof one, "%s: %s", path, what);
    if (p->count == 0 && p->first && p->first_len)
        snprintf(p->first, p->first_len, "%s", path);
    const char *sep = p->count++ ? "; " : "";
    if (p->cut || !p->buf || p->len == 0)
        return;
    int n = snprintf(p->buf + p->used, p->len - p->used, "%s%s", sep, one);
    if (n >= 0 && (size_t)n < p->len - p->used) {
        p->used += (size_t)n;
        return;
    }
    /* Cut on a UTF-8 boundary: the message ends up in JSON events. */
    p->cut = true;
    if (p->len < 4)
        return;
    size_t at = p->len - 4;
    while (at > 0 && ((unsigned char)p->buf[at] & 0xC0) == 0x80)
        at--;
    memcpy(p->buf + at, "...", 4);
}

/* A scalar's JSON text, cut to SHOW_MAX bytes (on a UTF-8 boundary). */
static void show_scalar(const cJSON *v, char out[SHOW_MAX + 8])
{
    char *text = anvil_json_print(v);
    if (!text) {
        snprintf(out, SHOW_MAX + 8, "(a value)");
        return;
    }
    size_t n = strlen(text);
    if (n > SHOW_MAX) {
        n = SHOW_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    snprintf(out, SHOW_MAX + 8, "%.*s%s", (int)n, text, n < strlen(text) ? "..." : "");
    free(text);
}

/* What a value is, for "got ...": its JSON type, and for scalars the value
 * itself (`string "12"` says at once that the number was quoted). */
static const char *describe(const cJSON *v, char out[SHOW_MAX + 32])
{
    char shown[SHOW_MAX + 8];
    const char *kind = cJSON_IsString(v) ? "string" : cJSON_IsNumber(v) ? "number"
                     : cJSON_IsBool(v) ? "boolean" : NULL;
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsObject(v))
        return "object";
    if (cJSON_IsArray(v))
        return "array";
    if (!kind)
        return "an invalid value";
    show_scalar(v, shown);
    snprintf(out, SHOW_MAX + 32, "%s %s", kind, shown);
    return out;
}

/* `"low", "medium", "high"`, cut with "..." past ENUM_SHOW_MAX bytes. */
static void show_enum(const cJSON *values, char out[ENUM_SHOW_MAX + 8])
{
    size_t used = 0;
    out[0] = '\0';
    for (const cJSON *x = values ? values->child : NULL; x; x = x->next) {
        char shown[SHOW_MAX + 8];
        show_scalar(x, shown);
        int n = snprintf(out + used, ENUM_SHOW_MAX - used, "%s%s", used ? ", " : "", shown);
        if (n < 0 || (size_t)n >= ENUM_SHOW_MAX - used) {
            snprintf(out + used, ENUM_SHOW_MAX + 8 - used, "%s...", used ? ", " : "");
            return;
        }
        used += (size_t)n;
    }
}

/* ---- the check ----------------------------------------------------------- */

static bool in_enum(const cJSON *values, const cJSON *v)
{
    for (const cJSON *x = values->child; x; x = x->next)
        if (cJSON_Compare(x, v, true))
            return true;
    return false;
}

static void check_field(const anvil_output_field *f, const cJSON *v, const char *root,
                        problems *p)
{
    char got[SHOW_MAX + 32], at[PATH_MAX_LEN];
    const char *want = anvil_field_type_name(f->type);
    snprintf(at, sizeof at, "%s.%s", root, f->name);
    if (!v) {
        if (!f->optional)
            problem_at(p, at, "missing (a required %s)", want);
        return;
    }
    if (cJSON_IsNull(v) && (f->nullable || f->type == ANVIL_FIELD_NULL ||
                            f->type == ANVIL_FIELD_UNKNOWN))
        return;
    if (cJSON_IsNull(v)) {
        problem_at(p, at, "expected %s, got null (the field is not nullable)", want);
        return;
    }
    if (!anvil_field_value_fits(f->type, v)) {
        bool big = f->type == ANVIL_FIELD_INTEGER && cJSON_IsNumber(v);
        problem_at(p, at, "expected %s%s, got %s", want,
                   big ? " (a whole number within +/-2^53)" : "", describe(v, got));
        return;
    }
    if (f->enum_values && !in_enum(f->enum_values, v)) {
        char list[ENUM_SHOW_MAX + 8];
        show_enum(f->enum_values, list);
        problem_at(p, at, "expected one of %s, got %s", list, describe(v, got));
    }
}

/* The path of member `name` under root: $.x.name when the name could be a
 * field's, else $.x["..."] with the name JSON-quoted (and cut), so a
 * member named with dots, quotes or controls still reads as one segment. */
static void member_path(const char *root, const char *name, char *out, size_t len)
{
    if (anvil_output_field_name_valid(name)) {
        snprintf(out, len, "%s.%s", root, name);
        return;
    }
    char shown[SHOW_MAX + 8];
    cJSON *tmp = cJSON_CreateString(name);
    if (!tmp) {
        snprintf(out, len, "%s[?]", root);
        return;
    }
    show_scalar(tmp, shown);
    cJSON_Delete(tmp);
    snprintf(out, len, "%s[%s]", root, shown);
}

void anvil_output_schema_names(const anvil_output_schema *s, char *out, size_t len)
{
    size_t used = 0;
    snprintf(out, len, "none");
    for (size_t i = 0; s && i < s->n_fields; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? ", " : "", s->fields[i].name);
        if (n < 0 || (size_t)n >= len - used) {
            snprintf(out + (used < len - 4 ? used : len - 4), 4, "...");
            return;
        }
        used += (size_t)n;
    }
}

static int check_row(const anvil_output_schema *s, const cJSON *row, const char *root,
                     anvil_output_defer_fn defer, bool strict, problems *p)
{
    char got[SHOW_MAX + 32];
    if (p->buf && p->len)
        p->buf[0] = '\0';
    if (p->first && p->first_len)
        p->first[0] = '\0';
    if (!cJSON_IsObject(row)) {
        problem_at(p, root, "expected object, got %s", describe(row, got));
        return -1;
    }
    for (size_t i = 0; s && i < s->n_fields; i++) {
        const anvil_output_field *f = &s->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, f->name);
        if (v && defer && defer(v))
            continue;
        check_field(f, v, root, p);
    }
    for (const cJSON *m = row->child; strict && m; m = m->next) {
        if (m->string && anvil_output_schema_field(s, m->string, strlen(m->string)))
            continue;
        char at[PATH_MAX_LEN], names[160];
        member_path(root, m->string ? m->string : "", at, sizeof at);
        anvil_output_schema_names(s, names, sizeof names);
        problem_at(p, at, "not a declared field (declared: %s)", names);
    }
    return p->count ? -1 : 0;
}

int anvil_output_schema_check(const anvil_output_schema *s, const cJSON *row,
                              anvil_output_defer_fn defer, char *err, size_t errlen)
{
    problems p = {.buf = err, .len = errlen};
    return check_row(s, row, "$", defer, false, &p);
}

int anvil_output_schema_check_strict(const anvil_output_schema *s, const cJSON *obj,
                                     const char *root, char *err, size_t errlen,
                                     char *path, size_t pathlen)
{
    problems p = {.buf = err, .len = errlen, .first = path, .first_len = pathlen};
    return check_row(s, obj, root && *root ? root : "$", NULL, true, &p);
}

void anvil_output_schema_strip(const anvil_output_schema *s, cJSON *row)
{
    if (!s || !cJSON_IsObject(row))
        return;
    cJSON *m = row->child;
    while (m) {
        cJSON *next = m->next;
        /* A repeated member is dropped too: the check saw only the first. */
        bool keep = m->string && anvil_output_schema_field(s, m->string, strlen(m->string)) &&
                    cJSON_GetObjectItemCaseSensitive(row, m->string) == m;
        if (!keep)
            cJSON_Delete(cJSON_DetachItemViaPointer(row, m));
        m = next;
    }
}

void anvil_output_schema_free(anvil_output_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_fields; i++) {
        free(s->fields[i].name);
        free(s->fields[i].description);
        cJSON_Delete(s->fields[i].enum_values);
    }
    free(s->fields);
    free(s);
}
