/*
 * runtime/config/config_retention.c — the `retention` section of
 * anvil.yaml (config_retention.h, retention.h): its keys, their checks,
 * and the limits that apply to one workflow.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config_retention.h"

anvil_retention_limits anvil_retention_for(const anvil_retention_config *r, const char *workflow)
{
    anvil_retention_limits out = r->defaults;
    for (size_t i = 0; i < r->n_workflows; i++) {
        const anvil_retention_override *o = &r->workflows[i];
        if (strcmp(o->workflow, workflow) != 0)
            continue;
        if (o->limits.has_max_age)
            out.max_age_ms = o->limits.max_age_ms;
        if (o->limits.has_max_runs)
            out.max_runs = o->limits.max_runs;
        break;
    }
    return out;
}

void anvil_retention_config_clear(anvil_retention_config *r)
{
    for (size_t i = 0; i < r->n_workflows; i++)
        free(r->workflows[i].workflow);
    free(r->workflows);
    memset(r, 0, sizeof *r);
}

/* `maxAge`: a duration ("30d", "12h", "90s") or 0 for no limit. */
static void parse_max_age(anvil_cfg_ctx *c, yaml_node_t *v, const char *path,
                          anvil_retention_limits *l)
{
    char *s = NULL;
    if (!anvil_cfg_string(c, v, path, false, &s))
        return;
    int64_t ms = 0;
    if (anvil_parse_duration_ms(s, &ms) != 0)
        anvil_cfg_error(c, v, "%s: expected a duration such as 30d, 12h or 90s (or 0 for no "
                        "limit), got \"%.40s\"", path, s);
    else if (ms != 0 && ms < 1000)
        anvil_cfg_error(c, v, "%s: at least 1s (or 0 for no limit), got \"%.40s\"", path, s);
    else {
        l->max_age_ms = ms;
        l->has_max_age = true;
    }
    free(s);
}

static void parse_limits(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                         anvil_retention_limits *l, bool top)
{
    static const char *const top_keys[] = {"maxAge", "maxRuns", "workflows", NULL};
    static const char *const keys[] = {"maxAge", "maxRuns", NULL};
    if (!anvil_cfg_check_map(c, n, path, top ? top_keys : keys, false))
        return;
    char p[ANVIL_CFG_PATH_MAX];
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, n, "maxAge"))) {
        anvil_cfg_path(p, path, "maxAge");
        /* A plain 0 is an integer to YAML, but means what "0" means. */
        if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 1 && v->data.scalar.value[0] == '0') {
            l->max_age_ms = 0;
            l->has_max_age = true;
        } else {
            parse_max_age(c, v, p, l);
        }
    }
    if ((v = anvil_cfg_get(c, n, "maxRuns"))) {
        anvil_cfg_path(p, path, "maxRuns");
        if (anvil_cfg_int(c, v, p, 0, 2147483647, &l->max_runs))
            l->has_max_runs = true;
    }
}

static bool configured(const anvil_workflow_ref *refs, size_t n_refs, const char *name)
{
    for (size_t i = 0; i < n_refs; i++)
        if (refs[i].name && strcmp(refs[i].name, name) == 0)
            return true;
    return false;
}

static void parse_overrides(anvil_cfg_ctx *c, yaml_node_t *n, anvil_retention_config *r,
                            const anvil_workflow_ref *refs, size_t n_refs)
{
    if (anvil_cfg_is_null(n) || !anvil_cfg_check_map(c, n, "retention.workflows", NULL, false))
        return;
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (!(r->workflows = calloc(count ? count : 1, sizeof *r->workflows))) {
        anvil_cfg_oom(c);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = anvil_cfg_node(c, pair->key);
        if (!anvil_cfg_first_key(c, n, i) || k->type != YAML_SCALAR_NODE || !k->data.scalar.length ||
            anvil_cfg_is_null(k))
            continue;
        const char *name = (const char *)k->data.scalar.value;
        char path[ANVIL_CFG_PATH_MAX];
        anvil_cfg_path(path, "retention.workflows", name);
        if (!configured(refs, n_refs, name)) {
            anvil_cfg_error(c, k, "%s: no workflow '%.64s' is configured under workflows", path, name);
            continue;
        }
        anvil_retention_override *o = &r->workflows[r->n_workflows];
        if (!(o->workflow = strdup(name))) {
            anvil_cfg_oom(c);
            continue;
        }
        r->n_workflows++;
        parse_limits(c, anvil_cfg_node(c, pair->value), path, &o->limits, false);
    }
}

void anvil_config_parse_retention(anvil_cfg_ctx *c, yaml_node_t *n, anvil_retention_config *r,
                                  const anvil_workflow_ref *refs, size_t n_refs)
{
    if (anvil_cfg_is_null(n))
        return;
    r->enabled = true;
    parse_limits(c, n, "retention", &r->defaults, true);
    yaml_node_t *v;
    if (n->type == YAML_MAPPING_NODE && (v = anvil_cfg_get(c, n, "workflows")))
        parse_overrides(c, v, r, refs, n_refs);
}
