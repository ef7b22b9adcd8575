/*
 * runtime/contract/frame.c — one request frame read and checked (frame.h).
 *
 * Owns the order of the frame checks: bounds on the raw text, one exact
 * JSON value, bounds on the tree, an object, then the members, checked by
 * the generic codec against the transport's frame schema from the contract
 * (RequestFrame for HTTP, WsRequestFrame for the WebSocket), and last the
 * method name's pattern (x-smithers-bounds). Must not look a method up or
 * decode params (rpc.c does, after).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "anvil_contract.h"
#include "frame.h"
#include "json_bounds.h"
#include "json_parse.h"
#include "schema.h"

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

/* The frame's id when it is one the answer can carry (a string within the
 * bound; the schema says the same, this only picks it up early). */
static void pick_id(const cJSON *root, anvil_request_frame *f)
{
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!cJSON_IsString(jid))
        return;
    size_t n = 0;   /* code points, as the schema's maxLength counts */
    for (const unsigned char *p = (const unsigned char *)jid->valuestring; *p; p++)
        if ((*p & 0xC0) != 0x80 && ++n > ANVIL_BOUND_MAX_FRAME_ID_LENGTH)
            return;
    f->id = jid->valuestring;
}

int anvil_frame_read(const char *text, size_t len, const anvil_frame_rules *rules,
                     anvil_request_frame *f, anvil_error *e)
{
    /* Messages need the noun; bare params have no id of their own to require. */
    assert(rules->noun && rules->schema && !(rules->forced_method && rules->id_required));
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
    /* Every error the frame gets carries its id when the id is usable,
     * whatever else is wrong. */
    pick_id(root, f);
    anvil_schema_error se;
    if (anvil_schema_check(rules->schema, root, "$", &se) != 0)
        return anvil_invalid_at(e, se.path, se.message);
    /* The contract's frame schemas require method to be a string and
     * params an object; a spec edit that loosened them must still not let
     * anything else through to the dispatcher. */
    f->params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!cJSON_IsString(jmethod))
        return anvil_invalid_at(e, "$.method", "expected string");
    if (f->params && !cJSON_IsObject(f->params))
        return anvil_invalid_at(e, "$.params", "expected object");
    f->method = jmethod->valuestring;
    return check_method_name(f->method, e);
}
