/*
 * runtime/contract/json_bounds.c — depth, width and length limits for request JSON.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "anvil_contract.h"
#include "json_bounds.h"

anvil_json_bounds anvil_json_bounds_default(void)
{
    anvil_json_bounds b = {
        .max_depth = ANVIL_BOUND_MAX_DEPTH,
        .max_array_length = ANVIL_BOUND_MAX_ARRAY_LENGTH,
        .max_string_length = ANVIL_BOUND_MAX_STRING_LENGTH,
    };
    return b;
}

int anvil_json_check_depth(const char *text, size_t len, size_t max_depth,
                           char *msg, size_t msglen)
{
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped) {
                escaped = false;
                /* cJSON hands strings to C as NUL-terminated, so "a\u0000b"
                 * would silently become "a": refuse it instead. */
                if (c == 'u' && i + 4 < len && memcmp(text + i + 1, "0000", 4) == 0) {
                    snprintf(msg, msglen, "JSON strings must not contain \\u0000 (NUL)");
                    return -1;
                }
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            } else if (c == '\0') {
                snprintf(msg, msglen, "JSON strings must not contain a raw NUL byte");
                return -1;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                snprintf(msg, msglen, "JSON nesting depth exceeds the limit of %zu", max_depth);
                return -1;
            }
        } else if (c == ']' || c == '}') {
            if (depth)
                depth--;
        }
    }
    return 0;
}

static int walk(const cJSON *j, const anvil_json_bounds *b, char *path, size_t pathlen,
                size_t used, char *msg, size_t msglen)
{
    if (cJSON_IsString(j) && j->valuestring && strlen(j->valuestring) > b->max_string_length) {
        snprintf(msg, msglen, "string length exceeds the limit of %zu bytes", b->max_string_length);
        return -1;
    }
    if (!cJSON_IsArray(j) && !cJSON_IsObject(j))
        return 0;
    size_t n = 0;
    for (const cJSON *c = j->child; c; c = c->next)
        n++;
    if (cJSON_IsArray(j) && n > b->max_array_length) {
        snprintf(msg, msglen, "array length %zu exceeds the limit of %zu", n, b->max_array_length);
        return -1;
    }
    size_t i = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        int w;
        if (cJSON_IsArray(j)) {
            w = snprintf(path + used, pathlen - used, "[%zu]", i);
        } else {
            if (c->string && strlen(c->string) > b->max_string_length) {
                snprintf(msg, msglen, "member name length exceeds the limit of %zu bytes",
                         b->max_string_length);
                return -1;
            }
            w = snprintf(path + used, pathlen - used, ".%s", c->string ? c->string : "");
        }
        size_t next = (w < 0 || (size_t)w >= pathlen - used) ? pathlen - 1 : used + (size_t)w;
        if (walk(c, b, path, pathlen, next, msg, msglen) != 0)
            return -1;
        path[used] = '\0';
    }
    return 0;
}

int anvil_json_check_tree(const cJSON *root, const anvil_json_bounds *b,
                          const char *root_path, char *msg, size_t msglen,
                          char *path, size_t pathlen)
{
    int w = snprintf(path, pathlen, "%s", root_path ? root_path : "$");
    size_t used = (w < 0) ? 0 : ((size_t)w < pathlen ? (size_t)w : pathlen - 1);
    return walk(root, b, path, pathlen, used, msg, msglen);
}
