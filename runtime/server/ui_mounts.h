/*
 * runtime/server/ui_mounts.h — the UI mounts of the config: the gateway's
 * `ui` and each workflow's, serving a prebuilt browser bundle under
 * <mount>/__smithers_ui/ and, for every other path under the mount, the
 * HTML shell with globalThis.__SMITHERS_GATEWAY_UI__ (docs/config.md#ui-mounts).
 */
#ifndef ANVIL_UI_MOUNTS_H
#define ANVIL_UI_MOUNTS_H

#include "config.h"
#include "error.h"
#include "http_server.h"

typedef enum anvil_ui_outcome {
    ANVIL_UI_NOT_MINE,        /* no mount holds the path: route on */
    ANVIL_UI_ANSWERED,        /* res holds the page or the file */
    ANVIL_UI_REFUSED,         /* *err says why (NotFound: no such asset, or outside the bundle) */
    ANVIL_UI_WRONG_METHOD,    /* only GET and HEAD */
} anvil_ui_outcome;

anvil_ui_outcome anvil_ui_route(const anvil_config *cfg, const anvil_http_request *req,
                                anvil_http_response *res, anvil_error *err);

#endif
