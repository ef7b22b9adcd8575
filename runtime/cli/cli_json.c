/*
 * runtime/cli/cli_json.c — indented JSON (cli_json.h). Containers are laid
 * out here; every scalar is printed by base/json_print.c, so a number or a
 * string reads exactly as it does on the wire.
 */
#include <stdlib.h>

#include "cli_json.h"
#include "json_print.h"

static int write_value(FILE *out, const cJSON *v, int depth)
{
    bool obj = cJSON_IsObject(v);
    if (!obj && !cJSON_IsArray(v)) {
        char *s = anvil_json_print(v);
        if (!s)
            return -1;
        fputs(s, out);
        free(s);
        return 0;
    }
    if (!v->child) {
        fputs(obj ? "{}" : "[]", out);
        return 0;
    }
    fputs(obj ? "{\n" : "[\n", out);
    for (const cJSON *c = v->child; c; c = c->next) {
        fprintf(out, "%*s", (depth + 1) * 2, "");
        if (obj) {
            cJSON key = { .type = cJSON_String, .valuestring = c->string };
            char *k = anvil_json_print(&key);
            if (!k)
                return -1;
            fprintf(out, "%s: ", k);
            free(k);
        }
        if (write_value(out, c, depth + 1) != 0)
            return -1;
        fputs(c->next ? ",\n" : "\n", out);
    }
    fprintf(out, "%*s%s", depth * 2, "", obj ? "}" : "]");
    return 0;
}

int anvil_cli_json_write(FILE *out, const cJSON *v)
{
    if (write_value(out, v, 0) != 0)
        return -1;
    fputc('\n', out);
    return 0;
}

int anvil_cli_json_write_value(FILE *out, const anvil_schema *schema, const void *value)
{
    anvil_schema_error se;
    cJSON *j = anvil_schema_encode(schema, value, &se);
    if (!j)
        return -1;
    /* Top-level arrays and scalars are wrapped in a struct whose value sits
     * at offset 0; the encoder already unwraps them. */
    int rc = anvil_cli_json_write(out, j);
    cJSON_Delete(j);
    return rc;
}
