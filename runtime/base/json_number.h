/*
 * runtime/base/json_number.h — is this JSON number an integer we can hold?
 *
 * cJSON keeps every number as a double. Converting a double outside the
 * int64_t range to int64_t is undefined behaviour in C, so the habit
 * `(double)(int64_t)d == d` is itself a bug for |d| >= 2^63 (1e300, -1e19).
 * This is the one test the codebase uses: finite, integral, and within
 * +/-2^53, the range in which a double holds every integer exactly (the
 * same bound the contract codec applies to `integer` fields).
 */
#ifndef ANVIL_JSON_NUMBER_H
#define ANVIL_JSON_NUMBER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* 2^53: beyond it a double cannot tell neighbouring integers apart. */
#define ANVIL_JSON_SAFE_INT_MAX 9007199254740992.0

/* True when d is an exact integer within +/-2^53; then *out (if not NULL)
 * receives it. Never converts a value out of range. */
bool anvil_double_exact_int(double d, int64_t *out);

/* The same for a cJSON item: false for non-numbers. */
bool anvil_json_exact_int(const cJSON *v, int64_t *out);

#endif
