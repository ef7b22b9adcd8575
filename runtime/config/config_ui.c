/*
 * runtime/config/config_ui.c — see config_ui.h.
 */
#include "config_ui.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json_print.h"

/* A YAML node as JSON: mappings become objects, sequences arrays, scalars
 * by the core schema. NULL after a reported problem. */
static cJSON *node_json(anvil_cfg_ctx *c, yaml_node_t *n, const char *where, int depth)
{
    if (depth > 16) {
        anvil_cfg_error(c, n, "%s: nested too deep", where);
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE)
        return anvil_cfg_scalar_json(c, n, where);
    if (n->type == YAML_SEQUENCE_NODE) {
        cJSON *a = cJSON_CreateArray();
        int i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; a && it < n->data.sequence.items.top;
             it++, i++) {
            char p[ANVIL_CFG_PATH_MAX];
            snprintf(p, sizeof p, "%s[%d]", where, i);
            cJSON *v = node_json(c, anvil_cfg_node(c, *it), p, depth + 1);
            if (!v) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    if (!anvil_cfg_check_map(c, n, where, NULL, false))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    size_t i = 0;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; o && pr < n->data.mapping.pairs.top;
         pr++, i++) {
        if (!anvil_cfg_first_key(c, n, i))
            continue;
        yaml_node_t *k = anvil_cfg_node(c, pr->key);
        const char *key = (const char *)k->data.scalar.value;
        char p[ANVIL_CFG_PATH_MAX];
        anvil_cfg_path(p, where, key);
        cJSON *v = node_json(c, anvil_cfg_node(c, pr->value), p, depth + 1);
        if (!v) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(o, key, v);
    }
    return o;
}

void anvil_config_parse_ui(anvil_cfg_ctx *c, yaml_node_t *n, const char *where,
                           const char *fallback, anvil_ui_config *out)
{
    static const char *const keys[] = {"path", "dir", "title", "props", NULL};
    if (!anvil_cfg_check_map(c, n, where, keys, false))
        return;
    char p[ANVIL_CFG_PATH_MAX];
    yaml_node_t *v;
    anvil_cfg_path(p, where, "path");
    if ((v = anvil_cfg_get(c, n, "path"))) {
        anvil_cfg_url_path(c, v, p, &out->path);
    } else if (!(out->path = strdup(fallback))) {
        anvil_cfg_oom(c);
        return;
    }
    anvil_cfg_path(p, where, "dir");
    if (!(v = anvil_cfg_get(c, n, "dir"))) {
        anvil_cfg_error(c, n, "%s: missing (the directory of the prebuilt bundle to serve)", p);
    } else {
        char *rel = NULL;
        if (anvil_cfg_string(c, v, p, false, &rel)) {
            struct stat st;
            if (!(out->dir = anvil_cfg_resolve(c, rel)))
                anvil_cfg_oom(c);
            else if (stat(out->dir, &st) != 0 || !S_ISDIR(st.st_mode))
                anvil_cfg_error(c, v, "%s: \"%s\" is not a directory", p, rel);
        }
        free(rel);
    }
    anvil_cfg_path(p, where, "title");
    if ((v = anvil_cfg_get(c, n, "title")))
        anvil_cfg_string(c, v, p, false, &out->title);
    anvil_cfg_path(p, where, "props");
    cJSON *props = NULL;
    if ((v = anvil_cfg_get(c, n, "props"))) {
        if (v->type != YAML_MAPPING_NODE)
            anvil_cfg_error(c, v, "%s: expected a mapping", p);
        else
            props = node_json(c, v, p, 0);
    }
    out->props_json = props ? anvil_json_print(props) : strdup("{}");
    cJSON_Delete(props);
    if (!out->props_json)
        anvil_cfg_oom(c);
}

void anvil_ui_config_clear(anvil_ui_config *u)
{
    free(u->path);
    free(u->dir);
    free(u->title);
    free(u->props_json);
    memset(u, 0, sizeof *u);
}
