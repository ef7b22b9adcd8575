/*
 * runtime/contract/frame.c — one request frame read and checked (frame.h).
 *
 * Owns the order of the frame checks and their messages: bounds on the raw
 * text, one exact JSON value, bounds on the tree, an object, then the
 * members. Must not look a method up or decode params (rpc.c does, after).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "anvil_contract.h"
#include "frame.h"
#include "json_bounds.h"
#include "json_parse.h"

int anvil_invalid_at(anvil_error *e, const char *path, const char *msg)
{
    anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "%s: %s", path, msg);
    anvil_error_detail_str(e, "path", path);
    return -1;
}

static bool method_name_valid(const char *s)
{
    /* ^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*$ */
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    bool seg_start = true;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (seg_start) {
            if (c < 'a' || c > 'z')
                return false;
            seg_start = false;
        } else if (c == '.') {
            seg_start = true;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return !seg_start;
}

static int check_method_name(const char *name, anvil_error *e)
{
    if (method_name_valid(name))
        return 0;
    anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "Invalid method name \"%.64s\"", name);
    anvil_error_detail_str(e, "path", "$.method");
    return -1;
}

/* Bounds, exact parse, bounds again, an object: f->root, or -1. */
static int parse(const char *text, size_t len, const anvil_frame_rules *r, anvil_request_frame *f,
                 anvil_error *e)
{
    char msg[160], path[256];
    anvil_json_bounds bounds = anvil_json_bounds_default();
    /* Depth on the raw text, before cJSON recurses into it. */
    if (anvil_json_check_depth(text, len, bounds.max_depth, msg, sizeof msg) != 0) {
        anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "%s", msg);
        if (strstr(msg, "depth"))
            anvil_error_detail_int(e, "maxDepth", (int64_t)bounds.max_depth);
        return -1;
    }
    /* /v1/rpc/{method} with no body at all means "no params". */
    size_t ws = 0;
    while (ws < len && text[ws] && strchr(" \t\r\n", text[ws]))
        ws++;
    if (r->forced_method && ws == len) {
        text = "{}";
        len = 2;
    }
    anvil_json_parse_status parsed;
    f->root = anvil_json_parse_exact(text, len, &parsed);
    if (parsed == ANVIL_JSON_TRAILING)
        return anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST,
                               "%s is not valid JSON: unexpected data after the JSON value", r->noun);
    if (!f->root)
        return anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "%s is not valid JSON", r->noun);
    if (anvil_json_check_tree(f->root, &bounds, "$", msg, sizeof msg, path, sizeof path) != 0)
        return anvil_invalid_at(e, path, msg);
    if (!cJSON_IsObject(f->root))
        return anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "%s must be a JSON object", r->noun);
    return 0;
}

static int read_id(const cJSON *root, bool required, anvil_request_frame *f, anvil_error *e)
{
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!jid)
        return required ? anvil_invalid_at(e, "$.id", "required property \"id\" is missing") : 0;
    if (!cJSON_IsString(jid))
        return anvil_invalid_at(e, "$.id", "expected string");
    if (strlen(jid->valuestring) > ANVIL_BOUND_MAX_FRAME_ID_LENGTH) {
        char msg[64];
        snprintf(msg, sizeof msg, "frame id exceeds %d characters", ANVIL_BOUND_MAX_FRAME_ID_LENGTH);
        return anvil_invalid_at(e, "$.id", msg);
    }
    f->id = jid->valuestring;
    return 0;
}

/* Only the four members, and type (when present) is "req". */
static int check_members(const cJSON *root, anvil_error *e)
{
    for (const cJSON *m = root->child; m; m = m->next) {
        if (strcmp(m->string, "id") && strcmp(m->string, "method") && strcmp(m->string, "params") &&
            strcmp(m->string, "type")) {
            char where[160];
            snprintf(where, sizeof where, "$.%s", m->string);
            return anvil_invalid_at(e, where, "unknown frame member (allowed: type, id, method, params)");
        }
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (type && !(cJSON_IsString(type) && strcmp(type->valuestring, "req") == 0))
        return anvil_invalid_at(e, "$.type", "must be \"req\"");
    return 0;
}

int anvil_frame_read(const char *text, size_t len, const anvil_frame_rules *rules,
                     anvil_request_frame *f, anvil_error *e)
{
    /* Messages need the noun; bare params have no id of their own to require. */
    assert(rules->noun && !(rules->forced_method && rules->id_required));
    memset(f, 0, sizeof *f);
    if (parse(text, len, rules, f, e) != 0)
        return -1;
    const cJSON *root = f->root;
    const cJSON *jmethod = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (rules->forced_method && !jmethod) {
        f->bare = true;
        f->params = root;
        f->method = rules->forced_method;
        return check_method_name(f->method, e);
    }
    /* Checked first when required, so every later error can carry it. */
    if (rules->id_required && read_id(root, true, f, e) != 0)
        return -1;
    if (check_members(root, e) != 0)
        return -1;
    if (!rules->id_required && read_id(root, false, f, e) != 0)
        return -1;
    f->params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (f->params && !cJSON_IsObject(f->params))
        return anvil_invalid_at(e, "$.params", "expected object");
    if (!jmethod)
        return anvil_invalid_at(e, "$.method", "required property \"method\" is missing");
    if (!cJSON_IsString(jmethod))
        return anvil_invalid_at(e, "$.method", "expected string");
    f->method = jmethod->valuestring;
    return check_method_name(f->method, e);
}
