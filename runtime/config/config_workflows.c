/*
 * runtime/config/config_workflows.c — the `workflows:` section of anvil.yaml.
 *
 * Owns turning each entry into an anvil_workflow_ref: name check, file path
 * resolved against the config directory, schedule, webhook and UI options,
 * and a first look at the workflow file (it exists, is YAML, has a mapping at
 * the top; its `name` and `description` are kept for listings). Validating
 * the workflow tree itself belongs to the workflow loader, not here.
 */
#include "config_workflows.h"
#include "config_yaml.h"
#include "cron_expr.h"

#include <stdlib.h>
#include <string.h>

static bool name_char(char ch, bool first)
{
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    return alnum || (!first && (ch == '_' || ch == '.' || ch == '-'));
}

/* ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ — names become URL segments and cron ids. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i], i == 0))
            return false;
    return true;
}

static void header_string(anvil_cfg_ctx *wc, yaml_node_t *root, const char *key, char **out)
{
    yaml_node_t *v = anvil_cfg_get(wc, root, key);
    if (v && v->type == YAML_SCALAR_NODE && !anvil_cfg_is_null(v))
        anvil_cfg_set_str(wc, out, (const char *)v->data.scalar.value);
}

/* The workflow file as far as the config needs it: it loads (a regular
 * file within the size and nesting limits, valid YAML) and its top level
 * is a mapping, whose name and description the registry shows. The full
 * check of the tree is workflow.c's, when the engine loads it. */
static void read_workflow_file(anvil_cfg_ctx *c, yaml_node_t *file_node, const char *path,
                               anvil_workflow_ref *w)
{
    char *text = NULL, why[160];
    size_t len = 0;
    /* A file that cannot be read is reported where the config names it. */
    if (anvil_cfg_read_file(w->file, ANVIL_WORKFLOW_MAX_BYTES, &text, &len, why, sizeof why) != 0) {
        anvil_cfg_error(c, file_node, "%s: cannot use %s: %s", path, w->file, why);
        return;
    }
    yaml_document_t doc;
    int parsed = anvil_cfg_parse_yaml(c->diags, w->file, path, text, len, &doc);
    free(text);
    if (parsed != 0)
        return;
    anvil_cfg_ctx wc = {.doc = &doc, .file = w->file, .diags = c->diags};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || anvil_cfg_is_null(root)) {
        anvil_diags_add(c->diags, w->file, 0, 0, "%s: workflow file is empty", path);
    } else if (root->type != YAML_MAPPING_NODE) {
        anvil_cfg_error(&wc, root, "%s: top level of a workflow file must be a mapping, got %s",
                        path, root->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar");
    } else {
        header_string(&wc, root, "name", &w->readable_name);
        header_string(&wc, root, "description", &w->description);
        w->file_ok = true;
    }
    if (wc.oom_reported)
        c->oom_reported = true;
    yaml_document_delete(&doc);
}

static void parse_run(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, anvil_webhook_config *h)
{
    static const char *const keys[] = {"enabled", "inputPath", NULL};
    char p[ANVIL_CFG_PATH_MAX];
    if (!anvil_cfg_check_map(c, n, path, keys, false))
        return;
    /* Writing a run block at all means "start runs"; enabled: false pauses it. */
    h->run_enabled = true;
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, n, "enabled"))) {
        anvil_cfg_path(p, path, "enabled");
        anvil_cfg_bool(c, v, p, &h->run_enabled);
    }
    if ((v = anvil_cfg_get(c, n, "inputPath"))) {
        anvil_cfg_path(p, path, "inputPath");
        anvil_cfg_string(c, v, p, false, &h->run_input_path);
    }
}

static void parse_signal(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                         anvil_webhook_config *h)
{
    static const char *const keys[] = {"name", "correlationIdPath", "runIdPath", "payloadPath", NULL};
    char **slots[] = {&h->signal_name, &h->signal_correlation_path, &h->signal_run_id_path,
                      &h->signal_payload_path};
    char p[ANVIL_CFG_PATH_MAX];
    if (!anvil_cfg_check_map(c, n, path, keys, false))
        return;
    if (!anvil_cfg_get(c, n, "name")) {
        anvil_cfg_path(p, path, "name");
        anvil_cfg_error(c, n, "%s: missing (a webhook signal needs a name)", p);
    }
    for (size_t i = 0; keys[i]; i++) {
        yaml_node_t *v = anvil_cfg_get(c, n, keys[i]);
        if (v) {
            anvil_cfg_path(p, path, keys[i]);
            anvil_cfg_string(c, v, p, false, slots[i]);
        }
    }
}

/* "" turns deduplication off. Asked for explicitly without a secret it is
 * a problem: only signed deliveries are recorded, since an unsigned one
 * could claim any delivery id and so suppress the real delivery. */
static void parse_delivery_id_header(anvil_cfg_ctx *c, yaml_node_t *v, const char *path,
                                     anvil_webhook_config *h)
{
    if (!anvil_cfg_header_name(c, v, path, true, &h->delivery_id_header))
        return;
    if (!h->delivery_id_header[0]) {
        free(h->delivery_id_header);
        h->delivery_id_header = NULL;
    } else if (!h->secret) {
        anvil_cfg_error(c, v, "%s: needs webhook.secret (only signed deliveries are "
                        "deduplicated; use \"\" to turn it off)", path);
    }
}

static void parse_webhook(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                          anvil_workflow_ref *w)
{
    static const char *const keys[] = {
        "secret", "signatureHeader", "signaturePrefix", "deliveryIdHeader", "run", "signal", NULL,
    };
    anvil_webhook_config *h = &w->webhook;
    char p[ANVIL_CFG_PATH_MAX];
    if (!anvil_cfg_check_map(c, n, path, keys, false))
        return;
    w->has_webhook = true;
    /* GitHub's names, like the other defaults: a GitHub webhook needs
     * only its secret to be verified and deduplicated. */
    if (!anvil_cfg_set_str(c, &h->signature_header, "x-hub-signature-256") ||
        !anvil_cfg_set_str(c, &h->signature_prefix, "sha256=") ||
        !anvil_cfg_set_str(c, &h->delivery_id_header, "x-github-delivery"))
        return;
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, n, "secret"))) {
        anvil_cfg_path(p, path, "secret");
        anvil_cfg_string(c, v, p, false, &h->secret);
    }
    if ((v = anvil_cfg_get(c, n, "signatureHeader"))) {
        anvil_cfg_path(p, path, "signatureHeader");
        anvil_cfg_header_name(c, v, p, false, &h->signature_header);
    }
    if ((v = anvil_cfg_get(c, n, "deliveryIdHeader"))) {
        anvil_cfg_path(p, path, "deliveryIdHeader");
        parse_delivery_id_header(c, v, p, h);
    }
    if ((v = anvil_cfg_get(c, n, "signaturePrefix"))) {
        anvil_cfg_path(p, path, "signaturePrefix");
        anvil_cfg_string(c, v, p, true, &h->signature_prefix);
    }
    if ((v = anvil_cfg_get(c, n, "run"))) {
        anvil_cfg_path(p, path, "run");
        parse_run(c, v, p, h);
    }
    if ((v = anvil_cfg_get(c, n, "signal"))) {
        anvil_cfg_path(p, path, "signal");
        parse_signal(c, v, p, h);
    }
}

static void parse_workflow(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                           anvil_workflow_ref *w)
{
    static const char *const keys[] = {"file", "schedule", "webhook", "ui", NULL};
    char p[ANVIL_CFG_PATH_MAX];
    if (!anvil_cfg_check_map(c, n, path, keys, false))
        return;
    yaml_node_t *v;
    anvil_cfg_path(p, path, "file");
    if (!(v = anvil_cfg_get(c, n, "file"))) {
        anvil_cfg_error(c, n, "%s: missing (every workflow needs a file)", p);
    } else {
        char *rel = NULL;
        if (anvil_cfg_string(c, v, p, false, &rel)) {
            if (!(w->file = anvil_cfg_resolve(c, rel)))
                anvil_cfg_oom(c);
            else
                read_workflow_file(c, v, p, w);
        }
        free(rel);
    }
    if ((v = anvil_cfg_get(c, n, "schedule"))) {
        anvil_cfg_path(p, path, "schedule");
        if (anvil_cfg_string(c, v, p, false, &w->schedule) && w->schedule) {
            anvil_cron cron;
            char perr[200];
            if (anvil_cron_parse(w->schedule, &cron, perr, sizeof perr) != 0)
                anvil_cfg_error(c, v, "%s: invalid cron pattern \"%s\": %s", p, w->schedule, perr);
        }
    }
    if ((v = anvil_cfg_get(c, n, "webhook"))) {
        anvil_cfg_path(p, path, "webhook");
        parse_webhook(c, v, p, w);
    }
    if ((v = anvil_cfg_get(c, n, "ui"))) {
        anvil_cfg_path(p, path, "ui");
        char fallback[ANVIL_CFG_PATH_MAX];
        snprintf(fallback, sizeof fallback, "/workflows/%s", w->name ? w->name : "");
        anvil_config_parse_ui(c, v, p, fallback, &w->ui);
    }
}

void anvil_config_parse_workflows(anvil_cfg_ctx *c, yaml_node_t *n, anvil_workflow_ref **refs_out,
                                  size_t *n_refs)
{
    if (!anvil_cfg_check_map(c, n, "workflows", NULL, false))
        return;
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    anvil_workflow_ref *refs = calloc(count ? count : 1, sizeof *refs);
    if (!refs) {
        anvil_cfg_oom(c);
        return;
    }
    *refs_out = refs;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = anvil_cfg_node(c, pair->key);
        if (!anvil_cfg_first_key(c, n, i) || k->type != YAML_SCALAR_NODE ||
            !k->data.scalar.length || anvil_cfg_is_null(k))
            continue;
        const char *name = (const char *)k->data.scalar.value;
        char path[ANVIL_CFG_PATH_MAX];
        anvil_cfg_path(path, "workflows", name);
        if (!valid_name(name))
            anvil_cfg_error(c, k, "%s: invalid workflow name (use 1-64 letters, digits, '_', "
                            "'.' or '-', starting with a letter or digit)", path);
        anvil_workflow_ref *w = &refs[*n_refs];
        if (!(w->name = strdup(name))) {
            anvil_cfg_oom(c);
            continue;
        }
        w->line = (int)k->start_mark.line + 1;
        (*n_refs)++;
        parse_workflow(c, anvil_cfg_node(c, pair->value), path, w);
    }
}
