/*
 * tests/unit/test_json_bounds.c — depth on raw text, width and length on
 * the parsed tree, each named in the message.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "json_bounds.h"
#include "unit.h"

static char *repeat(const char *open, size_t n, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc(n * (lo + lc) + 1), *p = s;
    for (size_t i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    for (size_t i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

int main(void)
{
    char msg[160], path[256];
    anvil_json_bounds b = anvil_json_bounds_default();
    CHECK_INT(b.max_depth, 32);
    CHECK_INT(b.max_array_length, 256);

    char *ok = repeat("[", 32, "]"), *deep = repeat("[", 33, "]"), *obj = repeat("{\"a\":", 33, "}");
    CHECK(anvil_json_check_depth(ok, strlen(ok), 32, msg, sizeof msg) == 0);
    CHECK(anvil_json_check_depth(deep, strlen(deep), 32, msg, sizeof msg) != 0);
    CHECK_STR(msg, "JSON nesting depth exceeds the limit of 32");
    CHECK(anvil_json_check_depth(obj, strlen(obj), 32, msg, sizeof msg) != 0);
    /* brackets inside strings do not count, escaped quotes do not end them */
    const char *str = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[\"}";
    CHECK(anvil_json_check_depth(str, strlen(str), 2, msg, sizeof msg) == 0);
    /* a million brackets is a linear scan, not a stack overflow */
    char *huge = repeat("[", 1000000, "]");
    CHECK(anvil_json_check_depth(huge, strlen(huge), 32, msg, sizeof msg) != 0);
    free(huge);
    free(ok);
    free(deep);
    free(obj);

    /* NUL inside strings cannot survive as a C string: refused, while an
     * escaped backslash followed by "u0000" is ordinary text */
    const char *nul = "{\"runId\":\"a\\u0000b\"}";
    CHECK(anvil_json_check_depth(nul, strlen(nul), 32, msg, sizeof msg) != 0);
    CHECK_STR(msg, "JSON strings must not contain \\u0000 (NUL)");
    const char *text = "{\"runId\":\"a\\\\u0000b\"}";
    CHECK(anvil_json_check_depth(text, strlen(text), 32, msg, sizeof msg) == 0);
    const char raw[] = "{\"a\":\"x\0y\"}";
    CHECK(anvil_json_check_depth(raw, sizeof raw - 1, 32, msg, sizeof msg) != 0);

    /* width */
    char *arr = malloc(4096);
    strcpy(arr, "{\"x\":{\"list\":[");
    for (int i = 0; i < 257; i++)
        strcat(arr, i ? ",1" : "1");
    strcat(arr, "]}}");
    cJSON *j = cJSON_Parse(arr);
    CHECK(anvil_json_check_tree(j, &b, "$", msg, sizeof msg, path, sizeof path) != 0);
    CHECK_STR(msg, "array length 257 exceeds the limit of 256");
    CHECK_STR(path, "$.x.list");
    cJSON_Delete(j);
    free(arr);

    /* string length, value and key */
    anvil_json_bounds small = { .max_depth = 32, .max_array_length = 256, .max_string_length = 4 };
    j = cJSON_Parse("{\"a\":[\"ok\",\"toolong\"]}");
    CHECK(anvil_json_check_tree(j, &small, "$", msg, sizeof msg, path, sizeof path) != 0);
    CHECK_STR(path, "$.a[1]");
    CHECK_STR(msg, "string length exceeds the limit of 4 bytes");
    cJSON_Delete(j);
    j = cJSON_Parse("{\"longkey\":1}");
    CHECK(anvil_json_check_tree(j, &small, "$", msg, sizeof msg, path, sizeof path) != 0);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"a\":[\"ok\",{\"b\":\"fine\"}]}");
    CHECK(anvil_json_check_tree(j, &small, "$", msg, sizeof msg, path, sizeof path) == 0);
    cJSON_Delete(j);
    UNIT_DONE();
}
