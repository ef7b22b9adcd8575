/*
 * runtime/config/config_ui.h — a `ui` mount: the gateway's (default path
 * "/") or a workflow's (default "/workflows/<key>"), serving a prebuilt
 * browser bundle with its boot config (docs/config.md#ui-mounts).
 */
#ifndef ANVIL_CONFIG_UI_H
#define ANVIL_CONFIG_UI_H

#include <yaml.h>

#include "config_yaml.h"

typedef struct anvil_ui_config {
    char *path;        /* mount path ("/" or without a trailing "/"); NULL = no UI */
    char *dir;         /* absolute path of the bundle directory */
    char *title;       /* the page title, or NULL for the default */
    char *props_json;  /* a JSON object, "{}" by default */
} anvil_ui_config;

/* Parse the mapping at n (config path `where`) into *out: `dir` (required,
 * an existing directory, relative to the config file), `path` (default
 * `fallback`), `title`, `props` (a mapping). Problems are reported on c. */
void anvil_config_parse_ui(anvil_cfg_ctx *c, yaml_node_t *n, const char *where,
                           const char *fallback, anvil_ui_config *out);
void anvil_ui_config_clear(anvil_ui_config *u);

#endif
