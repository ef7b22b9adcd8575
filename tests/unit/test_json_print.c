/*
 * tests/unit/test_json_print.c — the fast printer writes what cJSON writes
 * for strings and structure, byte for byte; numbers read back exactly.
 * (cJSON 1.7.15 itself does not: it prints 2^53-1 as 9.00719925474099e+15
 * and 0.30000000000000004 as 0.3, because its round-trip check allows a
 * relative error. Timestamps and counters must survive, so we do not copy
 * that.)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "unit.h"

static void same_as_cjson(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    CHECK(j != NULL);
    if (!j)
        return;
    char *ours = anvil_json_print(j), *theirs = cJSON_PrintUnformatted(j);
    CHECK_STR(ours, theirs);
    free(ours);
    free(theirs);
    cJSON_Delete(j);
}

static void number_round_trips(double d)
{
    cJSON *n = cJSON_CreateNumber(d);
    char *text = anvil_json_print(n);
    CHECK(text != NULL);
    if (text) {
        double back = strtod(text, NULL);
        if (back != d)
            fprintf(stderr, "%.17g printed as %s\n", d, text);
        CHECK(back == d);
    }
    free(text);
    cJSON_Delete(n);
}

int main(void)
{
    same_as_cjson("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"},\"f\":[],\"g\":{}}");
    same_as_cjson("[\"quote\\\" backslash\\\\ slash/ nl\\n tab\\t cr\\r bs\\b ff\\f\"]");
    same_as_cjson("[\"\\u0001\\u001f control\", \"\\u00e9 caf\\u00e9 \\ud83d\\ude00\"]");
    same_as_cjson("[0,1,-1,1710000000000,1.5,-0.25,3.14159]");
    same_as_cjson("{\"\":\"empty key\",\"k\\\"ey\":1}");

    double samples[] = { 0, 1, -1, 42, 1710000000000.0, 9007199254740991.0, -9007199254740991.0,
                         9007199254740992.0, 1e21, 1e-7, 0.1, 0.30000000000000004, 2.0 / 3.0,
                         -123.456, 1e308, 1.7976931348623157e308, 4.9e-324 };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        number_round_trips(samples[i]);

    /* integers are written without an exponent or a fraction */
    cJSON *n = cJSON_CreateNumber(1710000000000.0);
    char *t = anvil_json_print(n);
    CHECK_STR(t, "1710000000000");
    free(t);
    cJSON_Delete(n);
    n = cJSON_CreateNumber(-9007199254740991.0);
    t = anvil_json_print(n);
    CHECK_STR(t, "-9007199254740991");
    free(t);
    cJSON_Delete(n);

    /* non-finite numbers become null, as cJSON prints them */
    n = cJSON_CreateNumber(NAN);
    t = anvil_json_print(n);
    CHECK_STR(t, "null");
    free(t);
    cJSON_Delete(n);

    CHECK(anvil_json_print(NULL) == NULL);
    UNIT_DONE();
}
