/*
 * runtime/config/config.c — anvil.yaml: defaults, the top-level keys, and clearing.
 *
 * Owns anvil_config_defaults/load/clear, the listen-address and duration
 * parsers, and the top-level keys. The auth section lives in config_auth.c,
 * workflows in config_workflows.c, the YAML readers in config_yaml.c.
 * Loading never stops at the first problem: every section is checked and
 * each problem lands in the caller's diagnostics list.
 */
#include "config.h"
#include "config_auth.h"
#include "config_retention.h"
#include "config_workflows.h"
#include "config_yaml.h"
#include "log.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static char **strv_of(const char *const *src, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        if (!(v[i] = strdup(src[i]))) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
    }
    return v;
}

int anvil_config_defaults(anvil_config *cfg)
{
    static const char *const features[] = {"streaming", "runs"};
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_port = 7331;
    cfg->protocol = 1;
    cfg->heartbeat_ms = 15000;
    cfg->max_body_bytes = 1048576;
    cfg->max_payload = 1048576;
    cfg->max_connections = 1000;
    cfg->max_http_connections = 4096;
    cfg->shutdown_grace_ms = 5000;
    cfg->event_window_size = 10000;
    cfg->headers_timeout_ms = 30000;
    cfg->request_timeout_ms = 60000;
    cfg->console_enabled = true;
    cfg->listen_host = strdup("127.0.0.1");
    cfg->database = strdup("anvil.db");
    cfg->console_path = strdup("/console");
    cfg->features = strv_of(features, 2);
    cfg->n_features = cfg->features ? 2 : 0;
    cfg->allowed_origins = calloc(1, sizeof *cfg->allowed_origins);
    int auth_rc = anvil_config_auth_defaults(&cfg->auth);
    if (!cfg->listen_host || !cfg->database || !cfg->console_path || !cfg->features ||
        !cfg->allowed_origins || auth_rc != 0) {
        anvil_config_clear(cfg);
        return -1;
    }
    return 0;
}

int anvil_parse_listen(const char *s, char **host, int *port)
{
    const char *h, *h_end, *p;
    if (!s)
        return -1;
    if (s[0] == '[') {
        h = s + 1;
        h_end = strchr(h, ']');
        if (!h_end || h_end == h || h_end[1] != ':')
            return -1;
        for (const char *q = h; q < h_end; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return -1;
        if (!memchr(h, ':', (size_t)(h_end - h)))
            return -1;
        p = h_end + 2;
    } else {
        h = s;
        h_end = strrchr(s, ':');
        if (!h_end)
            return -1;
        for (const char *q = h; q < h_end; q++)
            if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_')
                return -1;
        p = h_end + 1;
    }
    if (!*p || strlen(p) > 5)
        return -1;
    long v = 0;
    for (const char *q = p; *q; q++) {
        if (!isdigit((unsigned char)*q))
            return -1;
        v = v * 10 + (*q - '0');
    }
    if (v > 65535)
        return -1;
    /* ":port" means every interface, as in Go and Docker listen addresses. */
    char *copy = h_end == h ? strdup("0.0.0.0") : strndup(h, (size_t)(h_end - h));
    if (!copy)
        return -1;
    *host = copy;
    *port = (int)v;
    return 0;
}

static void parse_console(anvil_cfg_ctx *c, yaml_node_t *n, anvil_config *cfg)
{
    static const char *const keys[] = {"enabled", "path", NULL};
    if (!anvil_cfg_check_map(c, n, "console", keys, false))
        return;
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, n, "enabled")))
        anvil_cfg_bool(c, v, "console.enabled", &cfg->console_enabled);
    if ((v = anvil_cfg_get(c, n, "path")) &&
        anvil_cfg_url_path(c, v, "console.path", &cfg->console_path)) {
        /* Request paths are matched as sent, never percent-decoded, and a
         * browser encodes anything outside these: such a path could never
         * be reached from one. */
        size_t ok = strspn(cfg->console_path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789._~-/");
        if (cfg->console_path[ok])
            anvil_cfg_error(c, v, "console.path: '%c' in \"%.60s\": only letters, digits and . _ ~ - / "
                            "(a browser would percent-encode it)", cfg->console_path[ok],
                            cfg->console_path);
    }
}

static void parse_metrics(anvil_cfg_ctx *c, yaml_node_t *n, anvil_config *cfg)
{
    static const char *const keys[] = {"open", NULL};
    if (!anvil_cfg_check_map(c, n, "metrics", keys, false))
        return;
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, n, "open")))
        anvil_cfg_bool(c, v, "metrics.open", &cfg->metrics_open);
}

static void parse_top(anvil_cfg_ctx *c, yaml_node_t *root, anvil_config *cfg)
{
    static const char *const keys[] = {
        "listen", "database", "protocol", "features", "heartbeatMs", "maxBodyBytes",
        "maxPayload", "maxConnections", "maxHttpConnections", "eventWindowSize", "headersTimeout",
        "requestTimeout", "shutdownGraceMs", "allowedOrigins", "auth", "console", "workflows", "retention",
        "logFormat", "accessLog", "metrics", "ui", NULL,
    };
    static const struct { const char *key; size_t offset; int64_t min; } ints[] = {
        {"heartbeatMs", offsetof(anvil_config, heartbeat_ms), 1},
        {"maxBodyBytes", offsetof(anvil_config, max_body_bytes), 1},
        {"maxPayload", offsetof(anvil_config, max_payload), 1},
        {"maxConnections", offsetof(anvil_config, max_connections), 1},
        {"maxHttpConnections", offsetof(anvil_config, max_http_connections), 1},
        {"eventWindowSize", offsetof(anvil_config, event_window_size), 1},
        {"headersTimeout", offsetof(anvil_config, headers_timeout_ms), 1},
        {"requestTimeout", offsetof(anvil_config, request_timeout_ms), 1},
        {"shutdownGraceMs", offsetof(anvil_config, shutdown_grace_ms), 0},
    };
    if (!anvil_cfg_check_map(c, root, "", keys, false))
        return;
    yaml_node_t *v;
    if ((v = anvil_cfg_get(c, root, "listen"))) {
        char *s = NULL, *host = NULL;
        int port;
        if (anvil_cfg_string(c, v, "listen", false, &s)) {
            if (anvil_parse_listen(s, &host, &port) == 0) {
                free(cfg->listen_host);
                cfg->listen_host = host;
                cfg->listen_port = port;
            } else {
                anvil_cfg_error(c, v, "listen: expected host:port (e.g. 127.0.0.1:7331, "
                                "[::1]:7331 or :7331), got \"%.80s\"", s);
            }
        }
        free(s);
    }
    if ((v = anvil_cfg_get(c, root, "database")))
        anvil_cfg_string(c, v, "database", false, &cfg->database);
    if ((v = anvil_cfg_get(c, root, "protocol"))) {
        int64_t p;
        if (anvil_cfg_int(c, v, "protocol", 1, INT_MAX, &p))
            cfg->protocol = (int)p;
    }
    if ((v = anvil_cfg_get(c, root, "features")))
        anvil_cfg_strlist(c, v, "features", &cfg->features, &cfg->n_features);
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if ((v = anvil_cfg_get(c, root, ints[i].key)))
            anvil_cfg_int(c, v, ints[i].key, ints[i].min, INT32_MAX,
                          (int64_t *)((char *)cfg + ints[i].offset));
    }
    if ((v = anvil_cfg_get(c, root, "logFormat")) &&
        anvil_cfg_string(c, v, "logFormat", false, &cfg->log_format) &&
        anvil_log_format_parse(cfg->log_format) < 0)
        anvil_cfg_error(c, v, "logFormat: expected text or json, got \"%.40s\"", cfg->log_format);
    if ((v = anvil_cfg_get(c, root, "accessLog")))
        anvil_cfg_bool(c, v, "accessLog", &cfg->access_log);
    if ((v = anvil_cfg_get(c, root, "metrics")))
        parse_metrics(c, v, cfg);
    if ((v = anvil_cfg_get(c, root, "ui")))
        anvil_config_parse_ui(c, v, "ui", "/", &cfg->ui);
    if ((v = anvil_cfg_get(c, root, "allowedOrigins")))
        anvil_cfg_origins(c, v, "allowedOrigins", &cfg->allowed_origins, &cfg->n_allowed_origins);
    if ((v = anvil_cfg_get(c, root, "auth")))
        anvil_config_parse_auth(c, v, &cfg->auth);
    if ((v = anvil_cfg_get(c, root, "console")))
        parse_console(c, v, cfg);
    if ((v = anvil_cfg_get(c, root, "workflows")) && !anvil_cfg_is_null(v))
        anvil_config_parse_workflows(c, v, &cfg->workflows, &cfg->n_workflows);
    /* After workflows: its overrides name them. */
    if ((v = anvil_cfg_get(c, root, "retention")))
        anvil_config_parse_retention(c, v, &cfg->retention, cfg->workflows, cfg->n_workflows);
}

/*
 * Sections are checked in a fixed order, not document order; sort what this
 * load added so check-config reads top to bottom: the config file first,
 * then each workflow file in the order it was first mentioned. Stable, and
 * the lists are short, so insertion sort.
 */
static size_t file_rank(const anvil_diags *d, size_t from, const anvil_diag *g,
                        const char *config)
{
    if (!g->file || !strcmp(g->file, config))
        return 0;
    for (size_t i = from; i < d->n; i++)
        if (d->items[i].file && !strcmp(d->items[i].file, g->file))
            return i + 1;
    return d->n + 1;
}

static bool diag_before(const anvil_diags *d, size_t from, const anvil_diag *a,
                        const anvil_diag *b, const char *config)
{
    size_t ra = file_rank(d, from, a, config), rb = file_rank(d, from, b, config);
    if (ra != rb)
        return ra < rb;
    return a->line != b->line ? a->line < b->line : a->column < b->column;
}

static void sort_diags(anvil_diags *d, size_t from, const char *config)
{
    /* Ranks are first appearances, which moving items would change; sort a
     * copy keyed on the original order. */
    size_t n = d->n - from;
    anvil_diag *orig = malloc(n * sizeof *orig);
    if (!orig)
        return;
    memcpy(orig, d->items + from, n * sizeof *orig);
    anvil_diags view = {.items = orig, .n = n};
    for (size_t i = 1; i < n; i++) {
        anvil_diag g = d->items[from + i];
        size_t j = i;
        while (j > 0 && diag_before(&view, 0, &g, &d->items[from + j - 1], config)) {
            d->items[from + j] = d->items[from + j - 1];
            j--;
        }
        d->items[from + j] = g;
    }
    free(orig);
}

/* Directory part of path, or NULL when path has none (relative to cwd). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

int anvil_config_load(const char *path, anvil_config *cfg, anvil_diags *diags)
{
    size_t before = diags->n + diags->n_dropped, first = diags->n;
    if (anvil_config_defaults(cfg) != 0) {
        anvil_diags_add(diags, path, 0, 0, "out of memory while loading");
        return -1;
    }
    anvil_cfg_ctx c = {.file = path, .diags = diags};
    char *dir = dir_of(path);
    c.dir = dir;
    if (!(cfg->path = strdup(path)) || (strchr(path, '/') && !dir))
        anvil_cfg_oom(&c);
    yaml_document_t doc;
    if (anvil_cfg_load_yaml(diags, path, NULL, ANVIL_CONFIG_MAX_BYTES, &doc) == 0) {
        c.doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        /* An empty file is a valid config: every default applies. */
        if (root && !anvil_cfg_is_null(root))
            parse_top(&c, root, cfg);
        yaml_document_delete(&doc);
    }
    char *db = anvil_cfg_resolve(&c, cfg->database);
    if (db) {
        free(cfg->database);
        cfg->database = db;
    } else {
        anvil_cfg_oom(&c);
    }
    free(dir);
    if (anvil_auth_config_prepare(&cfg->auth) != 0)
        anvil_diags_add(diags, path, 0, 0, "out of memory while hashing the configured tokens");
    if (diags->n - first > 1)
        sort_diags(diags, first, path);
    return diags->n + diags->n_dropped > before ? -1 : 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void workflow_clear(anvil_workflow_ref *w)
{
    free(w->name);
    free(w->file);
    free(w->schedule);
    free(w->webhook.secret);
    free(w->webhook.signature_header);
    free(w->webhook.signature_prefix);
    free(w->webhook.delivery_id_header);
    free(w->webhook.run_input_path);
    free(w->webhook.signal_name);
    free(w->webhook.signal_correlation_path);
    free(w->webhook.signal_run_id_path);
    free(w->webhook.signal_payload_path);
    anvil_ui_config_clear(&w->ui);
    free(w->description);
    free(w->readable_name);
}

void anvil_config_clear(anvil_config *cfg)
{
    free(cfg->path);
    free(cfg->listen_host);
    free(cfg->database);
    strv_free(cfg->features, cfg->n_features);
    strv_free(cfg->allowed_origins, cfg->n_allowed_origins);
    anvil_auth_config_clear(&cfg->auth);
    free(cfg->console_path);
    free(cfg->log_format);
    anvil_ui_config_clear(&cfg->ui);
    for (size_t i = 0; i < cfg->n_workflows; i++)
        workflow_clear(&cfg->workflows[i]);
    free(cfg->workflows);
    anvil_retention_config_clear(&cfg->retention);
    memset(cfg, 0, sizeof *cfg);
}
