/*
 * runtime/contract/frame.h — read one request frame: the JSON bounds, one
 * exact JSON value, and the frame's members (type, id, method, params).
 *
 * Every transport reads its frames here, so a frame is refused the same way
 * and with the same contract error over HTTP and over the WebSocket. What
 * differs between them is in anvil_frame_rules, with the frame schema the
 * contract gives each transport. Nothing here knows a
 * method: the method table, scopes and params decoding are rpc.c's.
 *
 * Ownership: the frame's pointers point into f->root, which the caller
 * frees with cJSON_Delete whatever the result (NULL when the text was not
 * JSON).
 */
#ifndef ANVIL_FRAME_H
#define ANVIL_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

typedef struct anvil_frame_rules {
    const char *noun;            /* what messages call the text: "Request body", "Frame" */
    const char *forced_method;   /* named by the path (/v1/rpc/{method}): the body may
                                  * then be the params alone; NULL otherwise */
    bool id_required;            /* the frame must carry its own id (WebSocket: nothing
                                  * else correlates the answer); the schema requires it too */
    const struct anvil_schema *schema; /* the frame's schema in the contract (generated,
                                  * anvil_websocket.h): the members are checked against it */
} anvil_frame_rules;

typedef struct anvil_request_frame {
    cJSON *root;                 /* the parsed text */
    const char *id;              /* $.id once it passed its checks; else NULL */
    const char *method;          /* the method to call: $.method, or forced_method */
    const cJSON *params;         /* $.params (an object), the bare body, or NULL */
    bool bare;                   /* the body was forced_method's params alone */
} anvil_request_frame;

/* Read len bytes at text (no NUL needed). 0 with *f filled, or -1 with the
 * InvalidRequest error of the first problem in e; f->id is then the
 * frame's id when it is a string within the bound, for the answer. */
int anvil_frame_read(const char *text, size_t len, const anvil_frame_rules *rules,
                     anvil_request_frame *f, anvil_error *e);

/* InvalidRequest "path: msg" with the path as a detail, as every frame and
 * params check reports it. Returns -1. */
int anvil_invalid_at(anvil_error *e, const char *path, const char *msg);

#endif
