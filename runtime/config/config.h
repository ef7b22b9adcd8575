/*
 * runtime/config/config.h — the anvil.yaml configuration, parsed with libyaml.
 *
 * Names follow the upstream GatewayOptions (see docs/config.md). Loading
 * validates every key and collects every problem with its file and line, so
 * `anvil check-config` lists them all. Relative paths (database, workflow
 * files) are resolved against the directory of the config file.
 *
 * Ownership: anvil_config_load fills caller-owned storage; release it with
 * anvil_config_clear. Strings inside are owned by the config.
 */
#ifndef ANVIL_CONFIG_H
#define ANVIL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "clock.h"
#include "diag.h"
#include "retention.h"
#include "workflow_ref.h"

typedef struct anvil_config {
    char *path;                  /* config file as given, NULL = defaults only */
    char *listen_host;           /* default "127.0.0.1" */
    int listen_port;             /* default 7331 */
    char *database;              /* default "anvil.db" (resolved) */
    int protocol;                /* default 1 */
    char **features;             /* default ["streaming", "runs"] */
    size_t n_features;
    int64_t heartbeat_ms;        /* default 15000 */
    int64_t max_body_bytes;      /* default 1048576 */
    int64_t max_payload;         /* default 1048576 */
    int64_t max_connections;     /* default 1000 */
    int64_t max_http_connections; /* default 4096; HTTP/1.1 connections at once */
    int64_t shutdown_grace_ms;   /* default 5000; how long SIGTERM lets tasks finish */
    int64_t event_window_size;   /* default 10000 */
    int64_t headers_timeout_ms;  /* default 30000 */
    int64_t request_timeout_ms;  /* default 60000 */
    char **allowed_origins;
    size_t n_allowed_origins;
    anvil_auth_config auth;      /* mode ANVIL_AUTH_OPEN when `auth` is absent */
    bool console_enabled;        /* default true */
    char *log_format;            /* "text" (default) or "json"; NULL = text */
    bool access_log;             /* default false: a line per HTTP request */
    bool metrics_open;           /* default false: GET /metrics needs observability:read */
    anvil_ui_config ui;          /* the gateway's UI mount; ui.path NULL = none */
    char *console_path;          /* default "/console" */
    anvil_workflow_ref *workflows;
    size_t n_workflows;
    anvil_retention_config retention;   /* enabled false when the section is absent */
} anvil_config;

/* Fill *cfg with the defaults above (no file). Returns 0 or -1 (OOM). */
int anvil_config_defaults(anvil_config *cfg);

/*
 * Load and validate `path`. Every problem is appended to *diags with file and
 * line. Returns 0 when the file is valid (diags empty), -1 otherwise; *cfg is
 * filled as far as possible either way and must be cleared.
 */
int anvil_config_load(const char *path, anvil_config *cfg, anvil_diags *diags);

/* Parse "host:port" (also "[::1]:port" and ":port"). Returns 0 or -1. */
int anvil_parse_listen(const char *s, char **host, int *port);

/* anvil_parse_duration_ms ("500ms", "30s", "15m", "24h", "7d") is
 * clock.h's: the retention section reads durations too. */

void anvil_config_clear(anvil_config *cfg);

#endif
