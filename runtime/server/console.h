/*
 * runtime/server/console.h — the operator console (docs/console.md) at the
 * config's `console.path`: the page itself for the path and anything under
 * it that is not an asset, and the compiled-in files under
 * <path>/assets/<version>/. The page runs only scripts and styles from
 * this origin (its Content-Security-Policy), talks to /v1/rpc and the
 * WebSocket with the token the operator types in, and keeps that token in
 * the tab's session storage.
 */
#ifndef ANVIL_CONSOLE_H
#define ANVIL_CONSOLE_H

#include "config.h"
#include "error.h"
#include "http_server.h"
#include "ui_mounts.h"

/* NOT_MINE when the console is disabled or the path is not under it;
 * otherwise as anvil_ui_route. */
anvil_ui_outcome anvil_console_route(const anvil_config *cfg, const anvil_http_request *req,
                                     anvil_http_response *res, anvil_error *err);

#endif
