/*
 * runtime/server/ui_mounts.c — see ui_mounts.h. The shell and the boot
 * config follow the upstream gateway's (its title escaping, and `<` as
 * \u003c in the JSON so a prop cannot close the script element). Files
 * are served only from inside the bundle directory: the relative path is
 * checked character by character and segment by segment, then the file's
 * real path (symlinks resolved) must lie under the directory's.
 */
#include "ui_mounts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "html_escape.h"
#include "json_print.h"

#define ASSET_DIR "__smithers_ui"
/* A bundle file larger than this is refused rather than held in memory. */
#define MAX_ASSET_BYTES (32u * 1024u * 1024u)

typedef struct mount {
    const anvil_ui_config *ui;
    const char *workflow;     /* NULL for the gateway's */
    size_t len;               /* of ui->path without a trailing '/' ("/" is 0) */
} mount;

static size_t mount_len(const char *path)
{
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    return n;
}

static bool under(const char *path, const mount *m)
{
    if (m->len == 0)
        return true;
    return !strncmp(path, m->ui->path, m->len) && (path[m->len] == '\0' || path[m->len] == '/');
}

/* The mount with the longest path holding `path`. */
static bool find_mount(const anvil_config *cfg, const char *path, mount *out)
{
    bool found = false;
    mount best = { 0 };
    /* The workflows' mounts, then (i == n_workflows) the gateway's. */
    for (size_t i = 0; i <= cfg->n_workflows; i++) {
        bool gateway = i == cfg->n_workflows;
        const anvil_ui_config *ui = gateway ? &cfg->ui : &cfg->workflows[i].ui;
        if (!ui->path || !ui->dir)
            continue;
        mount m = { ui, gateway ? NULL : cfg->workflows[i].name, mount_len(ui->path) };
        if (under(path, &m) && (!found || m.len > best.len)) {
            best = m;
            found = true;
        }
    }
    *out = best;
    return found;
}

/* "<mount>/__smithers_ui/" into buf. */
static void asset_base(const mount *m, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s/" ASSET_DIR "/", (int)m->len, m->ui->path);
}

static const char *content_type(const char *file)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".js", "text/javascript; charset=utf-8" }, { ".mjs", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" }, { ".html", "text/html; charset=utf-8" },
        { ".json", "application/json" }, { ".map", "application/json" },
        { ".svg", "image/svg+xml" }, { ".png", "image/png" }, { ".jpg", "image/jpeg" },
        { ".jpeg", "image/jpeg" }, { ".gif", "image/gif" }, { ".ico", "image/x-icon" },
        { ".webp", "image/webp" }, { ".woff", "font/woff" }, { ".woff2", "font/woff2" },
        { ".txt", "text/plain; charset=utf-8" }, { ".wasm", "application/wasm" },
    };
    const char *dot = strrchr(file, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* A relative path of plain segments: letters, digits, '.', '_', '-';
 * no empty, "." or ".." segment; no percent-escapes (never decoded). */
static bool plain_relative(const char *rel)
{
    if (!*rel)
        return false;
    for (const char *seg = rel; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++) {
            char ch = seg[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-'))
                return false;
        }
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return rel[strlen(rel) - 1] != '/';
}

static anvil_ui_outcome serve_asset(const mount *m, const char *rel, anvil_http_response *res,
                                    anvil_error *err)
{
    char dir[PATH_MAX], want[PATH_MAX * 2], real[PATH_MAX];
    if (!plain_relative(rel) || !realpath(m->ui->dir, dir) ||
        snprintf(want, sizeof want, "%s/%s", dir, rel) >= (int)sizeof want || !realpath(want, real)) {
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No such UI asset: %.200s", rel);
        return ANVIL_UI_REFUSED;
    }
    size_t dl = strlen(dir);
    struct stat st;
    if (strncmp(real, dir, dl) != 0 || real[dl] != '/' || stat(real, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        /* A symlink out of the bundle, or a directory: not served. */
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No such UI asset: %.200s", rel);
        return ANVIL_UI_REFUSED;
    }
    if ((uint64_t)st.st_size > MAX_ASSET_BYTES) {
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "UI asset %.200s is larger than %u bytes", rel,
                        MAX_ASSET_BYTES);
        return ANVIL_UI_REFUSED;
    }
    FILE *f = fopen(real, "rb");
    if (!f) {
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "UI asset %.200s cannot be read: %s", rel,
                        strerror(errno));
        return ANVIL_UI_REFUSED;
    }
    char buf[65536];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
        ok = evbuffer_add(res->body, buf, n) == 0;
    ok = ok && !ferror(f);
    fclose(f);
    if (!ok) {
        evbuffer_drain(res->body, evbuffer_get_length(res->body));
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "reading UI asset %.200s failed", rel);
        return ANVIL_UI_REFUSED;
    }
    res->status = 200;
    res->content_type = content_type(real);
    return ANVIL_UI_ANSWERED;
}

static anvil_ui_outcome serve_shell(const mount *m, anvil_http_response *res, anvil_error *err)
{
    char base[600], mount_path[520];
    asset_base(m, base, sizeof base);
    snprintf(mount_path, sizeof mount_path, "%.*s", (int)(m->len ? m->len : 1), m->len ? m->ui->path : "/");
    cJSON *boot = cJSON_CreateObject();
    cJSON *props = cJSON_Parse(m->ui->props_json ? m->ui->props_json : "{}");
    bool ok = boot && props && cJSON_AddStringToObject(boot, "apiVersion", "v1") &&
              cJSON_AddStringToObject(boot, "kind", m->workflow ? "workflow" : "gateway") &&
              (m->workflow ? cJSON_AddStringToObject(boot, "workflowKey", m->workflow)
                           : cJSON_AddNullToObject(boot, "workflowKey")) &&
              cJSON_AddStringToObject(boot, "mountPath", mount_path) &&
              cJSON_AddStringToObject(boot, "rpcPath", "/v1/rpc") &&
              cJSON_AddStringToObject(boot, "wsPath", "/") &&
              cJSON_AddStringToObject(boot, "assetBasePath", base);
    if (ok) {
        cJSON_AddItemToObject(boot, "props", props);
        props = NULL;
    }
    char *json = ok ? anvil_json_print(boot) : NULL;
    cJSON_Delete(props);
    cJSON_Delete(boot);
    if (!json) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        return ANVIL_UI_REFUSED;
    }
    struct evbuffer *b = res->body;
    char title[300];
    if (m->ui->title)
        snprintf(title, sizeof title, "%s", m->ui->title);
    else if (m->workflow)
        snprintf(title, sizeof title, "%s | Anvil", m->workflow);
    else
        snprintf(title, sizeof title, "Anvil");
    evbuffer_add_printf(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                           "<title>");
    anvil_html_escape_add(b, title);
    evbuffer_add_printf(b, "</title>\n</head>\n<body>\n<div id=\"root\"></div>\n"
                           "<script>globalThis.__SMITHERS_GATEWAY_UI__=");
    /* `<` as \u003c: a prop holding "</script>" cannot end the element. */
    for (const char *p = json; *p; p++) {
        if (*p == '<')
            evbuffer_add(b, "\\u003c", 6);
        else
            evbuffer_add(b, p, 1);
    }
    free(json);
    evbuffer_add_printf(b, ";</script>\n<script type=\"module\" src=\"");
    char src[700];
    snprintf(src, sizeof src, "%sclient.js", base);
    anvil_html_escape_add(b, src);
    evbuffer_add_printf(b, "\"></script>\n</body>\n</html>\n");
    res->status = 200;
    res->content_type = "text/html; charset=utf-8";
    return ANVIL_UI_ANSWERED;
}

anvil_ui_outcome anvil_ui_route(const anvil_config *cfg, const anvil_http_request *req,
                                anvil_http_response *res, anvil_error *err)
{
    mount m;
    if (!find_mount(cfg, req->path, &m))
        return ANVIL_UI_NOT_MINE;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return ANVIL_UI_WRONG_METHOD;
    char base[600];
    asset_base(&m, base, sizeof base);
    size_t bl = strlen(base);
    if (!strncmp(req->path, base, bl))
        return serve_asset(&m, req->path + bl, res, err);
    /* The asset folder itself, without a file: nothing to serve. */
    if (!strncmp(req->path, base, bl - 1) && req->path[bl - 1] == '\0') {
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No such UI asset");
        return ANVIL_UI_REFUSED;
    }
    return serve_shell(&m, res, err);
}
