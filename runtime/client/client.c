/*
 * runtime/client/client.c — the client handle: its URL, token, event base
 * and timeout. Owns nothing else; calls are client_http.c and
 * client_call.c, the WebSocket client_ws.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define DEFAULT_TIMEOUT_S 30

int anvil_client_parse_url(const char *url, char **host, int *port, anvil_client_error *err)
{
    *host = NULL;
    *port = 80;
    if (!url || strncmp(url, "http://", 7) != 0)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL must look like http://HOST:PORT, got %s",
                                    url ? url : "(none)");
    const char *h = url + 7;
    size_t rest = strcspn(h, "/?#");
    /* A path other than "/" would be silently ignored: refuse it instead. */
    if (h[rest] && strcmp(h + rest, "/") != 0)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL must have no path: %s", url);
    const char *end = h + rest, *colon = NULL, *hs = h, *he;
    if (*h == '[') {
        const char *rb = memchr(h, ']', rest);
        if (!rb)
            return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL has an unclosed [: %s", url);
        hs = h + 1;
        he = rb;
        if (rb + 1 < end && rb[1] != ':')
            return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL must look like http://HOST:PORT, got %s", url);
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', rest);
        he = colon ? colon : end;
    }
    if (he == hs)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL has no host: %s", url);
    if (colon) {
        char *stop = NULL;
        errno = 0;
        long p = strtol(colon + 1, &stop, 10);
        if (colon + 1 == end || stop != end || errno || p < 1 || p > 65535)
            return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "URL has a bad port: %s", url);
        *port = (int)p;
    }
    *host = strndup(hs, (size_t)(he - hs));
    if (!*host)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    return 0;
}

int anvil_client_new(const char *url, const char *token, struct event_base *base,
                     anvil_client **out, anvil_client_error *err)
{
    *out = NULL;
    if (token && strpbrk(token, "\r\n"))
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "the token contains a line break");
    anvil_client *c = calloc(1, sizeof *c);
    if (!c)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    if (anvil_client_parse_url(url, &c->host, &c->port, err) != 0) {
        free(c);
        return -1;
    }
    c->url = strdup(url);
    c->token = token ? strdup(token) : NULL;
    if (!c->url || (token && !c->token)) {
        anvil_client_free(c);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    c->base = base;
    c->timeout_s = DEFAULT_TIMEOUT_S;
    *out = c;
    return 0;
}

void anvil_client_free(anvil_client *c)
{
    if (!c)
        return;
    free(c->url);
    free(c->host);
    free(c->token);
    free(c);
}

void anvil_client_set_timeout(anvil_client *c, int seconds)
{
    c->timeout_s = seconds > 0 ? seconds : DEFAULT_TIMEOUT_S;
}

const char *anvil_client_host(const anvil_client *c) { return c->host; }
int anvil_client_port(const anvil_client *c) { return c->port; }
const char *anvil_client_token(const anvil_client *c) { return c->token; }
