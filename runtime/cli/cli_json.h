/*
 * runtime/cli/cli_json.h — JSON for people and scripts: two-space indented
 * output (cJSON_Print aligns with tabs), numbers and strings exactly as the
 * server's own printer writes them.
 */
#ifndef ANVIL_CLI_JSON_H
#define ANVIL_CLI_JSON_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "schema.h"

/* Write v indented by two spaces per level, and a newline. Returns 0, or
 * -1 when out of memory. */
int anvil_cli_json_write(FILE *out, const cJSON *v);

/* Encode a decoded value with its descriptor and write it as above. */
int anvil_cli_json_write_value(FILE *out, const anvil_schema *schema, const void *value);

#endif
