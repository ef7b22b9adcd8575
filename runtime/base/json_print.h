/*
 * runtime/base/json_print.h — compact JSON text from a cJSON tree, fast.
 *
 * Same output as cJSON_PrintUnformatted for every value, except numbers are
 * formatted without the sprintf/sscanf round trip cJSON does for each one:
 * integral values within +/-2^53 are written as integers directly, others
 * with the shortest of %.15g / %.17g that reads back exactly. Responses
 * carry many millisecond timestamps, which made printing the hot spot.
 *
 * Ownership: the returned string is malloc'd; the caller frees it.
 */
#ifndef ANVIL_JSON_PRINT_H
#define ANVIL_JSON_PRINT_H

#include <cjson/cJSON.h>

/* NULL when out of memory or the tree is invalid. */
char *anvil_json_print(const cJSON *item);
/* s (UTF-8) as a JSON string literal, quotes included, escaped as
 * anvil_json_print does. The caller frees it; NULL when out of memory. */
char *anvil_json_quote(const char *s);

#endif
