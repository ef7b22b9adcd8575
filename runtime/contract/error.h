/*
 * runtime/contract/error.h — the contract error a failed call carries to the wire.
 *
 * Codes come from the generated error map (generated/anvil_errors.h), so the
 * HTTP status and legacy spelling are never hand-written. Details are extra
 * members merged into the error object (path, requiredScope, refresh,
 * maxBytes). Ownership: the error owns its message and details; callers
 * release them with anvil_error_clear.
 */
#ifndef ANVIL_ERROR_H
#define ANVIL_ERROR_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "anvil_errors.h"

typedef struct anvil_error {
    bool set;
    anvil_error_code code;
    char *message;        /* heap; never NULL once set (falls back to a static) */
    cJSON *details;       /* object of extra members, or NULL */
} anvil_error;

/* Set code and message; replaces any earlier error. Always returns -1 so
 * callers can `return anvil_error_set(...)`. */
int anvil_error_set(anvil_error *e, anvil_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Attach a detail member (string or integer). Silently skipped when out of
 * memory: details refine an error, the code and message still go out. */
void anvil_error_detail_str(anvil_error *e, const char *key, const char *value);
void anvil_error_detail_int(anvil_error *e, const char *key, int64_t value);

/* {version, code, legacyCode, message, ...details} as a new cJSON object, or
 * NULL when out of memory. */
cJSON *anvil_error_to_json(const anvil_error *e);

/* HTTP status of the error's code. */
int anvil_error_http_status(const anvil_error *e);

void anvil_error_clear(anvil_error *e);

#endif
