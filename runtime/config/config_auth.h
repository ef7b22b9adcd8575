/*
 * runtime/config/config_auth.h — the `auth` section of anvil.yaml.
 *
 * Ownership: the parsed strings belong to the auth config; the config's
 * owner clears it with anvil_auth_config_clear.
 */
#ifndef ANVIL_CONFIG_AUTH_H
#define ANVIL_CONFIG_AUTH_H

#include <yaml.h>

#include "auth.h"
#include "config_yaml.h"

/* Read `auth` into *auth, reporting every problem through c. */
void anvil_config_parse_auth(anvil_cfg_ctx *c, yaml_node_t *n, anvil_auth_config *auth);

/* Fill the defaults of the selected mode (claim names, default role...).
 * 0, or -1 when out of memory. */
int anvil_config_auth_defaults(anvil_auth_config *auth);

#endif
