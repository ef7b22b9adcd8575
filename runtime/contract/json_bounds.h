/*
 * runtime/contract/json_bounds.h — reject hostile JSON before and after parsing.
 *
 * Depth is checked on the raw text, before cJSON recurses into it, so a
 * megabyte of '[' costs a linear scan and never a deep recursion. Array
 * length and string length are checked on the parsed tree. Messages name the
 * bound and where it was exceeded.
 */
#ifndef ANVIL_JSON_BOUNDS_H
#define ANVIL_JSON_BOUNDS_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct anvil_json_bounds {
    size_t max_depth;          /* nesting of arrays/objects */
    size_t max_array_length;
    size_t max_string_length;  /* bytes, for keys and values */
} anvil_json_bounds;

/* Defaults from the contract's x-smithers-bounds. */
anvil_json_bounds anvil_json_bounds_default(void);

/* Scan raw text; returns 0, or -1 with a message when nesting is too deep
 * or a string holds a NUL (which C strings cannot carry). */
int anvil_json_check_depth(const char *text, size_t len, size_t max_depth,
                           char *msg, size_t msglen);

/* Walk a parsed tree; returns 0, or -1 with a message and JSON path. */
int anvil_json_check_tree(const cJSON *root, const anvil_json_bounds *b,
                          const char *root_path, char *msg, size_t msglen,
                          char *path, size_t pathlen);

#endif
