/*
 * runtime/base/json_number.c — exact integers from JSON numbers
 * (json_number.h).
 */
#include <math.h>

#include "json_number.h"

bool anvil_double_exact_int(double d, int64_t *out)
{
    /* The range test comes first: only then is the cast defined. */
    if (!isfinite(d) || fabs(d) > ANVIL_JSON_SAFE_INT_MAX || floor(d) != d)
        return false;
    if (out)
        *out = (int64_t)d;
    return true;
}

bool anvil_json_exact_int(const cJSON *v, int64_t *out)
{
    return cJSON_IsNumber(v) && anvil_double_exact_int(v->valuedouble, out);
}
