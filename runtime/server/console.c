/*
 * runtime/server/console.c — see console.h.
 *
 * Caching: the page is `no-cache` (always asked again, it is small) and
 * names its scripts and styles under assets/<version>/, a hash of all the
 * console's files, so those are cacheable for good: a new build has new
 * URLs. An asset URL with another version is a 404, not the current file,
 * so a page from an older build never runs against a newer build's code.
 */
#include "console.h"

#include <assert.h>
#include <string.h>

#include "console_assets.h"
#include "html_escape.h"

/* Only this origin's scripts and styles; fetch and the WebSocket only to
 * this origin (CSP Level 3 'self' covers ws:/wss: to the same host);
 * no plugins, frames, forms posting elsewhere or <base> rewriting; and,
 * with Trusted Types and no policy allowed, no string ever reaches an
 * HTML or script sink (innerHTML, eval, ...): the browser refuses it. */
static const char page_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n";

static const anvil_console_asset *find_asset(const char *rel)
{
    for (size_t i = 0; i < anvil_console_n_assets; i++)
        if (!strcmp(anvil_console_assets[i].path, rel))
            return &anvil_console_assets[i];
    return NULL;
}

static anvil_ui_outcome not_found(const char *path, anvil_error *err)
{
    anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No such console asset: %.200s", path);
    return ANVIL_UI_REFUSED;
}

/* The answer, once its body is in res (rc 0) or could not be (rc != 0). */
static anvil_ui_outcome answer(anvil_http_response *res, int rc, const char *content_type,
                               const char *cache_control, anvil_error *err)
{
    if (rc != 0) {
        /* Whatever made it in would precede the error's JSON. */
        evbuffer_drain(res->body, evbuffer_get_length(res->body));
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        return ANVIL_UI_REFUSED;
    }
    res->status = 200;
    res->content_type = content_type;
    res->cache_control = cache_control;
    res->static_headers = page_headers;
    return ANVIL_UI_ANSWERED;
}

/* index.html with %BASE% (the console's path, no trailing '/') and
 * %VERSION% filled in; the path is HTML-escaped, since it is the
 * operator's text. */
static anvil_ui_outcome serve_page(const char *base, size_t base_len, anvil_http_response *res,
                                   anvil_error *err)
{
    const anvil_console_asset *index = find_asset("index.html");
    assert(index);   /* scripts/embed-console.py refuses a console without one */
    char base_text[512];
    if (base_len >= sizeof base_text) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "console.path is longer than %zu bytes",
                        sizeof base_text - 1);
        return ANVIL_UI_REFUSED;
    }
    memcpy(base_text, base, base_len);
    base_text[base_len] = '\0';
    const char *p = (const char *)index->data;
    int rc = 0;
    while (rc == 0 && *p) {
        const char *mark = strchr(p, '%');
        size_t plain = mark ? (size_t)(mark - p) : strlen(p);
        rc = evbuffer_add(res->body, p, plain);
        p += plain;
        if (!mark || rc != 0)
            break;
        if (!strncmp(p, "%BASE%", 6)) {
            rc = anvil_html_escape_add(res->body, base_text);
            p += 6;
        } else if (!strncmp(p, "%VERSION%", 9)) {
            rc = evbuffer_add(res->body, anvil_console_version, strlen(anvil_console_version));
            p += 9;
        } else {
            rc = evbuffer_add(res->body, "%", 1);
            p++;
        }
    }
    return answer(res, rc, index->content_type, "no-cache", err);
}

anvil_ui_outcome anvil_console_route(const anvil_config *cfg, const anvil_http_request *req,
                                     anvil_http_response *res, anvil_error *err)
{
    if (!cfg->console_enabled || !cfg->console_path)
        return ANVIL_UI_NOT_MINE;
    const char *base = cfg->console_path;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    const char *path = req->path;
    if (strncmp(path, base, n) != 0 || (path[n] != '\0' && path[n] != '/'))
        return ANVIL_UI_NOT_MINE;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return ANVIL_UI_WRONG_METHOD;
    const char *rest = path + n;           /* "", "/", "/assets/..." or another page */
    static const char assets[] = "/assets/";
    if (!strcmp(rest, "/assets"))
        return not_found(path, err);
    if (strncmp(rest, assets, sizeof assets - 1) != 0)
        return serve_page(base, n, res, err);
    const char *v = rest + sizeof assets - 1;
    size_t vl = strlen(anvil_console_version);
    if (strncmp(v, anvil_console_version, vl) != 0 || v[vl] != '/')
        return not_found(path, err);
    /* index.html is a template (serve_page fills it), never a file. */
    const anvil_console_asset *a = find_asset(v + vl + 1);
    if (!a || !strcmp(a->path, "index.html"))
        return not_found(path, err);
    int rc = evbuffer_add_reference(res->body, a->data, a->len, NULL, NULL);
    return answer(res, rc, a->content_type, "public, max-age=31536000, immutable", err);
}
