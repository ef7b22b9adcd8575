/*
 * runtime/contract/schema.c — the generic, table-driven codec for generated types.
 *
 * Decoding validates while it copies: type, required, additionalProperties
 * false, enum, const, minimum/maximum, length, nullable and the JSON type
 * masks that stand for oneOf/anyOf. The first failure stops decoding and is
 * reported with the JSON path of the offending value. Encoding is the
 * reverse walk and refuses to emit a response that lacks a required member,
 * because that is a handler bug the client must not see as success.
 *
 * This file must never trust the descriptor-external input: every cJSON
 * value is type-checked before it is read.
 *
 * Checking (anvil_schema_check) is the same walk with no destination: dst
 * is NULL all the way down, nothing is copied or allocated, and the
 * failures and their paths are exactly decoding's. Frames and event
 * payloads are checked this way, since only their verdict is wanted.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_number.h"
#include "schema.h"

typedef struct path_buf {
    char text[256];
    size_t len;
    bool truncated;
    size_t trunc_depth;   /* pushes since the path stopped fitting */
} path_buf;

/* Returned by a push that did not append (the path no longer fits): its pop
 * only leaves the truncated region, so the "..." marker is not left behind
 * on paths reported after it, and nothing is appended below a truncated
 * member as if it were its parent's child. */
#define PATH_TRUNCATED ((size_t)-1)

/* Keep the n bytes just written at the end of the path if they fitted. */
static size_t path_commit(path_buf *p, int n)
{
    if (n >= 0 && (size_t)n < sizeof p->text - p->len) {
        size_t saved = p->len;
        p->len += (size_t)n;
        return saved;
    }
    p->text[p->len] = '\0';
    p->trunc_depth++;
    p->truncated = true;
    return PATH_TRUNCATED;
}

/* Appended by hand, not with snprintf: a path is pushed for every member
 * decoded or checked, and formatting was the codec's largest cost on a
 * frame (bench/RESULTS.md, the WebSocket contract). */
static size_t path_push_member(path_buf *p, const char *name)
{
    if (p->trunc_depth)
        return path_commit(p, -1);
    size_t n = strlen(name);
    if (n + 1 >= sizeof p->text - p->len)
        return path_commit(p, -1);
    p->text[p->len] = '.';
    memcpy(p->text + p->len + 1, name, n + 1);
    return path_commit(p, (int)(n + 1));
}

static size_t path_push_index(path_buf *p, size_t i)
{
    if (p->trunc_depth)
        return path_commit(p, -1);
    return path_commit(p, snprintf(p->text + p->len, sizeof p->text - p->len, "[%zu]", i));
}

static void path_pop(path_buf *p, size_t saved)
{
    if (saved == PATH_TRUNCATED) {
        if (p->trunc_depth && --p->trunc_depth == 0)
            p->truncated = false;
        return;
    }
    p->len = saved;
    p->text[saved] = '\0';
}

__attribute__((format(printf, 3, 4)))
static int fail(anvil_schema_error *err, const path_buf *p, const char *fmt, ...)
{
    if (err) {
        /* A path that did not fit ends in "..." so nobody mistakes it for
         * the full location. */
        snprintf(err->path, sizeof err->path, "%s%s", p->text, p->truncated ? "..." : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsBool(j))
        return "boolean";
    if (cJSON_IsNumber(j)) {
        return anvil_json_exact_int(j, NULL) ? "integer" : "number";
    }
    if (cJSON_IsString(j))
        return "string";
    if (cJSON_IsArray(j))
        return "array";
    if (cJSON_IsObject(j))
        return "object";
    return "invalid";
}

static const char *kind_name(anvil_kind k)
{
    switch (k) {
    case ANVIL_KIND_STRING: return "string";
    case ANVIL_KIND_INTEGER: return "integer";
    case ANVIL_KIND_NUMBER: return "number";
    case ANVIL_KIND_BOOLEAN: return "boolean";
    case ANVIL_KIND_OBJECT: return "object";
    case ANVIL_KIND_ARRAY: return "array";
    case ANVIL_KIND_JSON: return "JSON value";
    }
    return "value";
}

static bool json_matches_mask(const cJSON *j, unsigned mask)
{
    if (cJSON_IsNull(j))
        return mask & ANVIL_JT_NULL;
    if (cJSON_IsBool(j))
        return mask & ANVIL_JT_BOOLEAN;
    if (cJSON_IsNumber(j)) {
        if (mask & ANVIL_JT_NUMBER)
            return isfinite(j->valuedouble);
        return (mask & ANVIL_JT_INTEGER) && anvil_json_exact_int(j, NULL);
    }
    if (cJSON_IsString(j))
        return mask & ANVIL_JT_STRING;
    if (cJSON_IsArray(j))
        return mask & ANVIL_JT_ARRAY;
    if (cJSON_IsObject(j))
        return mask & ANVIL_JT_OBJECT;
    return false;
}

static void mask_names(unsigned mask, char *out, size_t outlen)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { ANVIL_JT_OBJECT, "object" }, { ANVIL_JT_ARRAY, "array" },
        { ANVIL_JT_STRING, "string" }, { ANVIL_JT_NUMBER, "number" },
        { ANVIL_JT_INTEGER, "integer" }, { ANVIL_JT_BOOLEAN, "boolean" },
        { ANVIL_JT_NULL, "null" },
    };
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(mask & names[i].bit))
            continue;
        int n = snprintf(out + used, outlen - used, "%s%s", used ? " or " : "", names[i].name);
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

/* Length in code points of a UTF-8 string (continuation bytes not counted). */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

static bool const_matches(const cJSON *j, const char *const_json)
{
    /* A plain string constant (every const of the contract but booleans:
     * "req", "v1", "RunEvent") is compared in place: a frame's type is
     * checked on every call, and parsing the constant each time cost more
     * than the rest of the frame check. */
    size_t n = strlen(const_json);
    if (n >= 2 && const_json[0] == '"' && const_json[n - 1] == '"' && !memchr(const_json, '\\', n))
        return cJSON_IsString(j) && strlen(j->valuestring) == n - 2 &&
               memcmp(j->valuestring, const_json + 1, n - 2) == 0;
    cJSON *want = cJSON_Parse(const_json);
    if (!want)
        return false;
    bool ok = cJSON_Compare(j, want, true);
    cJSON_Delete(want);
    return ok;
}

static void set_has(void *base, int32_t has_offset, bool v)
{
    if (base && has_offset >= 0)
        *(bool *)((char *)base + has_offset) = v;
}

static bool get_has(const void *base, int32_t has_offset)
{
    return has_offset < 0 ? true : *(const bool *)((const char *)base + has_offset);
}

/* Array value layout: { T *items; size_t count; }. */
static void *array_items(const void *v)
{
    void *items;
    memcpy(&items, v, sizeof items);
    return items;
}

static size_t array_count(const void *v)
{
    size_t count;
    memcpy(&count, (const char *)v + sizeof(void *), sizeof count);
    return count;
}

static void array_set(void *v, void *items, size_t count)
{
    memcpy(v, &items, sizeof items);
    memcpy((char *)v + sizeof(void *), &count, sizeof count);
}

/* Does the value at `v` (of schema s) count as present? Pointer kinds carry
 * presence themselves; others rely on the has_ flag checked by the caller. */
static bool pointer_present(const anvil_schema *s, const void *v)
{
    void *ptr;
    memcpy(&ptr, v, sizeof ptr);
    (void)s;
    return ptr != NULL;
}

static bool is_pointer_kind(const anvil_schema *s)
{
    return s->kind == ANVIL_KIND_STRING || s->kind == ANVIL_KIND_JSON;
}

static int decode_value(const anvil_schema *s, const cJSON *j, void *dst,
                        path_buf *p, anvil_schema_error *err);

static int decode_object(const anvil_schema *s, const cJSON *j, void *dst,
                         path_buf *p, anvil_schema_error *err)
{
    /* Presence bitmap for duplicate and required checks; descriptors with
     * more than 64 fields fall back to scanning (none exist today). */
    unsigned char seen_small[64] = { 0 };
    unsigned char *seen = s->n_fields <= sizeof seen_small ? seen_small : calloc(s->n_fields, 1);
    if (!seen)
        return fail(err, p, "out of memory");
    cJSON *extra = NULL;
    int rc = 0;

    for (const cJSON *m = j->child; m; m = m->next) {
        const char *key = m->string ? m->string : "";
        size_t saved = path_push_member(p, key);
        size_t fi = 0;
        while (fi < s->n_fields && strcmp(s->fields[fi].name, key) != 0)
            fi++;
        if (fi == s->n_fields) {
            if (!s->additional) {
                char allowed[160] = "";
                size_t used = 0;
                for (size_t k = 0; k < s->n_fields; k++) {
                    int n = snprintf(allowed + used, sizeof allowed - used, "%s%s",
                                     k ? ", " : "", s->fields[k].name);
                    if (n < 0 || (size_t)n >= sizeof allowed - used)
                        break;
                    used += (size_t)n;
                }
                rc = s->n_fields
                    ? fail(err, p, "unknown property \"%s\" (allowed: %s)", key, allowed)
                    : fail(err, p, "unknown property \"%s\" (this object takes no properties)", key);
                goto out;
            }
            if (!dst) {
                path_pop(p, saved);
                continue;
            }
            if (!extra && !(extra = cJSON_CreateObject())) {
                rc = fail(err, p, "out of memory");
                goto out;
            }
            cJSON *copy = cJSON_Duplicate(m, true);
            if (!copy || !cJSON_AddItemToObject(extra, key, copy)) {
                cJSON_Delete(copy);
                rc = fail(err, p, "out of memory");
                goto out;
            }
            path_pop(p, saved);
            continue;
        }
        const anvil_field *f = &s->fields[fi];
        if (seen[fi]) {
            rc = fail(err, p, "duplicate property \"%s\"", key);
            goto out;
        }
        seen[fi] = 1;
        void *slot = dst ? (char *)dst + f->offset : NULL;
        if (cJSON_IsNull(m) && f->schema->nullable && f->schema->kind != ANVIL_KIND_JSON) {
            /* null for a nullable typed field reads as "absent". */
            set_has(dst, f->has_offset, false);
        } else {
            if (decode_value(f->schema, m, slot, p, err) != 0) {
                rc = -1;
                goto out;
            }
            set_has(dst, f->has_offset, true);
        }
        path_pop(p, saved);
    }

    for (size_t fi = 0; fi < s->n_fields; fi++) {
        if (s->fields[fi].required && !seen[fi]) {
            size_t saved = path_push_member(p, s->fields[fi].name);
            rc = fail(err, p, "required property \"%s\" is missing", s->fields[fi].name);
            path_pop(p, saved);
            goto out;
        }
    }
    if (dst && s->extra_offset >= 0)
        memcpy((char *)dst + s->extra_offset, &extra, sizeof extra);
    else
        cJSON_Delete(extra);
    extra = NULL;

out:
    cJSON_Delete(extra);
    if (seen != seen_small)
        free(seen);
    return rc;
}

static int decode_value(const anvil_schema *s, const cJSON *j, void *dst,
                        path_buf *p, anvil_schema_error *err)
{
    if (s->const_json && !const_matches(j, s->const_json))
        return fail(err, p, "must be %s", s->const_json);

    switch (s->kind) {
    case ANVIL_KIND_STRING: {
        if (!cJSON_IsString(j))
            return fail(err, p, "expected string, got %s", json_type_name(j));
        const char *v = j->valuestring;
        if (s->n_enum) {
            size_t i = 0;
            while (i < s->n_enum && strcmp(s->enum_values[i], v) != 0)
                i++;
            if (i == s->n_enum) {
                char allowed[200] = "";
                size_t used = 0;
                for (size_t k = 0; k < s->n_enum; k++) {
                    int n = snprintf(allowed + used, sizeof allowed - used, "%s\"%s\"",
                                     k ? ", " : "", s->enum_values[k]);
                    if (n < 0 || (size_t)n >= sizeof allowed - used)
                        break;
                    used += (size_t)n;
                }
                return fail(err, p, "must be one of %s", allowed);
            }
        }
        if (s->min_length >= 0 || s->max_length >= 0) {
            size_t len = utf8_length(v);
            if (s->min_length >= 0 && len < (size_t)s->min_length)
                return fail(err, p, "must be at least %d characters", (int)s->min_length);
            if (s->max_length >= 0 && len > (size_t)s->max_length)
                return fail(err, p, "must be at most %d characters", (int)s->max_length);
        }
        if (!dst)
            return 0;
        char *copy = strdup(v);
        if (!copy)
            return fail(err, p, "out of memory");
        memcpy(dst, &copy, sizeof copy);
        return 0;
    }
    case ANVIL_KIND_INTEGER: {
        if (!cJSON_IsNumber(j))
            return fail(err, p, "expected integer, got %s", json_type_name(j));
        double d = j->valuedouble;
        if (!isfinite(d) || floor(d) != d)
            return fail(err, p, "expected integer, got number");
        if (!anvil_double_exact_int(d, NULL))
            return fail(err, p, "integer is outside the exact range +/-2^53");
        if (s->has_minimum && d < s->minimum)
            return fail(err, p, "must be >= %.17g", s->minimum);
        if (s->has_maximum && d > s->maximum)
            return fail(err, p, "must be <= %.17g", s->maximum);
        int64_t v = (int64_t)d;
        if (dst)
            memcpy(dst, &v, sizeof v);
        return 0;
    }
    case ANVIL_KIND_NUMBER: {
        if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
            return fail(err, p, "expected number, got %s", json_type_name(j));
        double d = j->valuedouble;
        if (s->has_minimum && d < s->minimum)
            return fail(err, p, "must be >= %.17g", s->minimum);
        if (s->has_maximum && d > s->maximum)
            return fail(err, p, "must be <= %.17g", s->maximum);
        if (dst)
            memcpy(dst, &d, sizeof d);
        return 0;
    }
    case ANVIL_KIND_BOOLEAN: {
        if (!cJSON_IsBool(j))
            return fail(err, p, "expected boolean, got %s", json_type_name(j));
        bool v = cJSON_IsTrue(j);
        if (dst)
            memcpy(dst, &v, sizeof v);
        return 0;
    }
    case ANVIL_KIND_OBJECT:
        if (!cJSON_IsObject(j))
            return fail(err, p, "expected object, got %s", json_type_name(j));
        return decode_object(s, j, dst, p, err);
    case ANVIL_KIND_ARRAY: {
        if (!cJSON_IsArray(j))
            return fail(err, p, "expected array, got %s", json_type_name(j));
        size_t count = (size_t)cJSON_GetArraySize(j);
        if (!dst) {
            size_t i = 0;
            for (const cJSON *e = j->child; e; e = e->next, i++) {
                size_t saved = path_push_index(p, i);
                if (cJSON_IsNull(e) && s->items->nullable && s->items->kind != ANVIL_KIND_JSON)
                    return fail(err, p, "null array elements are not representable for %s items",
                                kind_name(s->items->kind));
                if (decode_value(s->items, e, NULL, p, err) != 0)
                    return -1;
                path_pop(p, saved);
            }
            return 0;
        }
        if (count == 0) {
            array_set(dst, NULL, 0);
            return 0;
        }
        char *items = calloc(count, s->item_size);
        if (!items)
            return fail(err, p, "out of memory");
        size_t i = 0;
        for (const cJSON *e = j->child; e; e = e->next, i++) {
            size_t saved = path_push_index(p, i);
            if (cJSON_IsNull(e) && s->items->nullable && s->items->kind != ANVIL_KIND_JSON) {
                array_set(dst, items, i);
                return fail(err, p, "null array elements are not representable for %s items",
                            kind_name(s->items->kind));
            }
            if (decode_value(s->items, e, items + i * s->item_size, p, err) != 0) {
                /* Hand everything decoded so far, including the partly
                 * decoded element (zeroed storage), to dst so the caller's
                 * free releases it. */
                array_set(dst, items, i + 1);
                return -1;
            }
            path_pop(p, saved);
        }
        array_set(dst, items, count);
        return 0;
    }
    case ANVIL_KIND_JSON: {
        if (!json_matches_mask(j, s->json_types)) {
            char want[96];
            mask_names(s->json_types, want, sizeof want);
            return fail(err, p, "expected %s, got %s", want, json_type_name(j));
        }
        if (!dst)
            return 0;
        cJSON *copy = cJSON_Duplicate(j, true);
        if (!copy)
            return fail(err, p, "out of memory");
        memcpy(dst, &copy, sizeof copy);
        return 0;
    }
    }
    return fail(err, p, "unsupported schema kind");
}

/* The walk decode and check share: dst NULL only checks. */
static int walk_root(const anvil_schema *schema, const cJSON *json, void *dst,
                     const char *root_path, anvil_schema_error *err)
{
    path_buf p = { .len = 0, .truncated = false };
    int n = snprintf(p.text, sizeof p.text, "%s", root_path ? root_path : "$");
    p.len = (n < 0) ? 0 : ((size_t)n < sizeof p.text ? (size_t)n : sizeof p.text - 1);
    if (err) {
        err->path[0] = '\0';
        err->message[0] = '\0';
    }
    if (!json)
        return fail(err, &p, "required value is missing");
    if (cJSON_IsNull(json) && schema->nullable && schema->kind != ANVIL_KIND_JSON)
        return 0;
    return decode_value(schema, json, dst, &p, err);
}

int anvil_schema_decode(const anvil_schema *schema, const cJSON *json,
                        void *dst, const char *root_path,
                        anvil_schema_error *err)
{
    if (walk_root(schema, json, dst, root_path, err) != 0) {
        anvil_schema_free(schema, dst);
        return -1;
    }
    return 0;
}

int anvil_schema_check(const anvil_schema *schema, const cJSON *json, const char *root_path,
                       anvil_schema_error *err)
{
    return walk_root(schema, json, NULL, root_path, err);
}

static cJSON *encode_value(const anvil_schema *s, const void *v, path_buf *p,
                           anvil_schema_error *err);

static cJSON *encode_object(const anvil_schema *s, const void *v, path_buf *p,
                            anvil_schema_error *err)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj) {
        fail(err, p, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < s->n_fields; i++) {
        const anvil_field *f = &s->fields[i];
        const void *slot = (const char *)v + f->offset;
        bool present = is_pointer_kind(f->schema) ? pointer_present(f->schema, slot)
                                                  : get_has(v, f->has_offset);
        size_t saved = path_push_member(p, f->name);
        cJSON *child = NULL;
        if (!present) {
            if (!f->required) {
                path_pop(p, saved);
                continue;
            }
            if (!f->schema->nullable) {
                fail(err, p, "required response member \"%s\" was not set", f->name);
                cJSON_Delete(obj);
                return NULL;
            }
            child = cJSON_CreateNull();
        } else {
            child = encode_value(f->schema, slot, p, err);
            if (!child) {
                cJSON_Delete(obj);
                return NULL;
            }
        }
        if (!child || !cJSON_AddItemToObject(obj, f->name, child)) {
            cJSON_Delete(child);
            cJSON_Delete(obj);
            fail(err, p, "out of memory");
            return NULL;
        }
        path_pop(p, saved);
    }
    if (s->extra_offset >= 0) {
        const cJSON *extra;
        memcpy(&extra, (const char *)v + s->extra_offset, sizeof extra);
        for (const cJSON *m = extra ? extra->child : NULL; m; m = m->next) {
            if (!m->string || cJSON_GetObjectItemCaseSensitive(obj, m->string))
                continue;   /* declared members win over extras */
            cJSON *copy = cJSON_Duplicate(m, true);
            if (!copy || !cJSON_AddItemToObject(obj, m->string, copy)) {
                cJSON_Delete(copy);
                cJSON_Delete(obj);
                fail(err, p, "out of memory");
                return NULL;
            }
        }
    }
    return obj;
}

static cJSON *encode_value(const anvil_schema *s, const void *v, path_buf *p,
                           anvil_schema_error *err)
{
    cJSON *out = NULL;
    switch (s->kind) {
    case ANVIL_KIND_STRING: {
        const char *str;
        memcpy(&str, v, sizeof str);
        out = str ? cJSON_CreateString(str) : cJSON_CreateNull();
        break;
    }
    case ANVIL_KIND_INTEGER: {
        int64_t i;
        memcpy(&i, v, sizeof i);
        out = cJSON_CreateNumber((double)i);
        break;
    }
    case ANVIL_KIND_NUMBER: {
        double d;
        memcpy(&d, v, sizeof d);
        if (!isfinite(d)) {
            fail(err, p, "response number is not finite");
            return NULL;
        }
        out = cJSON_CreateNumber(d);
        break;
    }
    case ANVIL_KIND_BOOLEAN: {
        bool b;
        memcpy(&b, v, sizeof b);
        out = cJSON_CreateBool(b);
        break;
    }
    case ANVIL_KIND_OBJECT:
        return encode_object(s, v, p, err);
    case ANVIL_KIND_ARRAY: {
        out = cJSON_CreateArray();
        if (!out)
            break;
        const char *items = array_items(v);
        size_t count = array_count(v);
        for (size_t i = 0; i < count; i++) {
            size_t saved = path_push_index(p, i);
            cJSON *e = encode_value(s->items, items + i * s->item_size, p, err);
            if (!e) {
                cJSON_Delete(out);
                return NULL;
            }
            if (!cJSON_AddItemToArray(out, e)) {
                cJSON_Delete(e);
                cJSON_Delete(out);
                fail(err, p, "out of memory");
                return NULL;
            }
            path_pop(p, saved);
        }
        return out;
    }
    case ANVIL_KIND_JSON: {
        const cJSON *j;
        memcpy(&j, v, sizeof j);
        out = j ? cJSON_Duplicate(j, true) : cJSON_CreateNull();
        break;
    }
    }
    if (!out)
        fail(err, p, "out of memory");
    return out;
}

cJSON *anvil_schema_encode(const anvil_schema *schema, const void *src,
                           anvil_schema_error *err)
{
    path_buf p = { .text = "$", .len = 1, .truncated = false };
    if (err) {
        err->path[0] = '\0';
        err->message[0] = '\0';
    }
    return encode_value(schema, src, &p, err);
}

static void free_value(const anvil_schema *s, void *v)
{
    switch (s->kind) {
    case ANVIL_KIND_STRING: {
        char *str;
        memcpy(&str, v, sizeof str);
        free(str);
        break;
    }
    case ANVIL_KIND_JSON: {
        cJSON *j;
        memcpy(&j, v, sizeof j);
        cJSON_Delete(j);
        break;
    }
    case ANVIL_KIND_OBJECT:
        for (size_t i = 0; i < s->n_fields; i++)
            free_value(s->fields[i].schema, (char *)v + s->fields[i].offset);
        if (s->extra_offset >= 0) {
            cJSON *extra;
            memcpy(&extra, (char *)v + s->extra_offset, sizeof extra);
            cJSON_Delete(extra);
        }
        break;
    case ANVIL_KIND_ARRAY: {
        char *items = array_items(v);
        size_t count = array_count(v);
        for (size_t i = 0; i < count; i++)
            free_value(s->items, items + i * s->item_size);
        free(items);
        break;
    }
    default:
        break;
    }
}

void anvil_schema_free(const anvil_schema *schema, void *v)
{
    if (!v)
        return;
    free_value(schema, v);
    memset(v, 0, schema->size);
}
