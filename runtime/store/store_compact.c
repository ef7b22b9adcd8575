/*
 * runtime/store/store_compact.c — stripping the members a frame or an
 * event row's key already holds, and putting them back (store_compact.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_compact.h"

/* `json` opens with `prefix` (which ends in ',' or '}'): the rest, as an
 * object of its own ("{" + what follows the prefix), else NULL. */
static char *strip(const char *json, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(json, prefix, n) != 0)
        return NULL;
    const char *rest = json + n;
    if (prefix[n - 1] == '}')
        return *rest ? NULL : strdup("{}");
    size_t len = strlen(rest);
    if (len < 2 || rest[len - 1] != '}')   /* "{...,}" cannot round-trip */
        return NULL;
    char *out = malloc(len + 2);
    if (out) {
        out[0] = '{';
        memcpy(out + 1, rest, len + 1);
    }
    return out;
}

/* `head` (without its closing brace) followed by the members of `stored`. */
static char *join(const char *head, const char *stored)
{
    size_t hn = strlen(head);
    const char *members = stored[0] == '{' ? stored + 1 : stored;
    bool empty = members[0] == '}';
    size_t mn = strlen(members);
    char *out = malloc(hn + 1 + mn + 1);
    if (!out)
        return NULL;
    memcpy(out, head, hn);
    if (empty) {
        memcpy(out + hn, "}", 2);
    } else {
        out[hn] = ',';
        memcpy(out + hn + 1, members, mn + 1);
    }
    return out;
}

char *anvil_frame_compact(const char *json, const char *run_id, int64_t frame_no)
{
    char prefix[160];
    int n = snprintf(prefix, sizeof prefix, "{\"frameNo\":%lld,\"runId\":\"%s\",",
                     (long long)frame_no, run_id);
    return n > 0 && (size_t)n < sizeof prefix ? strip(json, prefix) : NULL;
}

char *anvil_frame_expand(const char *stored, const char *run_id, int64_t frame_no)
{
    if (strncmp(stored, "{\"frameNo\":", 11) == 0)
        return strdup(stored);   /* stored as recorded */
    char head[160];
    int n = snprintf(head, sizeof head, "{\"frameNo\":%lld,\"runId\":\"%s\"", (long long)frame_no,
                     run_id);
    return n > 0 && (size_t)n < sizeof head ? join(head, stored) : NULL;
}

char *anvil_payload_compact(const char *json, const char *run_id)
{
    char prefix[100];
    int n = snprintf(prefix, sizeof prefix, "{\"runId\":\"%s\",", run_id);
    if (n <= 0 || (size_t)n >= sizeof prefix)
        return NULL;
    char *out = strip(json, prefix);
    if (!out) {
        prefix[n - 1] = '}';   /* {"runId":"..."} alone */
        out = strip(json, prefix);
    }
    return out;
}

char *anvil_payload_expand(const char *stored, const char *run_id)
{
    char head[100];
    int n = snprintf(head, sizeof head, "{\"runId\":\"%s\"", run_id);
    return n > 0 && (size_t)n < sizeof head ? join(head, stored) : NULL;
}
