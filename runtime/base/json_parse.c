/*
 * runtime/base/json_parse.c — one JSON value and nothing after it
 * (json_parse.h).
 */
#include "json_parse.h"

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

cJSON *anvil_json_parse_exact(const char *text, size_t len, anvil_json_parse_status *status)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        *status = ANVIL_JSON_INVALID;
        return NULL;
    }
    const char *stop = text + len;
    while (end < stop && json_space(*end))
        end++;
    if (end != stop) {
        cJSON_Delete(root);
        *status = ANVIL_JSON_TRAILING;
        return NULL;
    }
    *status = ANVIL_JSON_OK;
    return root;
}
