/*
 * runtime/base/json_parse.h — exactly one JSON value, nothing after it.
 *
 * cJSON stops at the end of the first value and ignores what follows, so
 * `{"a":1} junk` would parse. Request bodies, webhook bodies and WebSocket
 * frames must be one value with at most whitespace after it; this is the
 * one parser entry that enforces that.
 */
#ifndef ANVIL_JSON_PARSE_H
#define ANVIL_JSON_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef enum anvil_json_parse_status {
    ANVIL_JSON_OK = 0,
    ANVIL_JSON_INVALID,          /* not JSON (or out of memory in cJSON) */
    ANVIL_JSON_TRAILING          /* a value, then more than whitespace */
} anvil_json_parse_status;

/* Parse len bytes at text (no NUL needed). Returns the tree (the caller
 * frees it with cJSON_Delete) and ANVIL_JSON_OK in *status, or NULL and
 * the reason. */
cJSON *anvil_json_parse_exact(const char *text, size_t len, anvil_json_parse_status *status);

#endif
