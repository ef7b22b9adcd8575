/*
 * runtime/http/http_parse.c — bounded HTTP/1.1 head and chunked-body parsing.
 *
 * Strict where laxness has bitten servers before (RFC 9112 allows some of
 * it; proxies that read a message differently are how requests get
 * smuggled): every line ends in CRLF, never a bare LF; obsolete line
 * folding, whitespace before the colon and non-token header names are
 * refused; an HTTP/1.1 request has exactly one Host; chunk sizes are hex
 * digits only, with whitespace allowed only before an extension's ';'; and
 * trailer lines must be well-formed header fields, so a last chunk missing
 * its final CRLF cannot swallow the next request as "trailers".
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

static bool is_tchar(unsigned char c)
{
    if (isalnum(c))
        return true;
    return strchr("!#$%&'*+-.^_`|~", c) != NULL && c != '\0';
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Split off one CRLF-terminated line; returns NULL at the end, and sets
 * *bare_lf when the line ends in a LF without its CR. */
static char *next_line(char **cursor, char *end, bool *bare_lf)
{
    char *start = *cursor;
    if (start >= end)
        return NULL;
    char *nl = memchr(start, '\n', (size_t)(end - start));
    if (!nl)
        return NULL;
    *nl = '\0';
    if (nl > start && nl[-1] == '\r')
        nl[-1] = '\0';
    else
        *bare_lf = true;
    *cursor = nl + 1;
    return start;
}

/* RFC 3986 host [":" port] as far as a server must judge it: no
 * whitespace, no userinfo, path, query or fragment, nothing outside the
 * URI alphabet. Empty is valid (a target without an authority). */
static bool valid_host(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (!isalnum(*p) && !strchr("-._~!$&'()*+,;=%[]:", *p))
            return false;
    }
    return true;
}

/* RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any
 * request with more than one Host or an invalid one. */
static anvil_http_parse_status check_host(const anvil_http_head *h, const char **why)
{
    size_t n = anvil_http_header_count(h, "Host");
    if (n > 1) {
        *why = "more than one Host header";
        return ANVIL_HTTP_PARSE_BAD;
    }
    if (n == 0 && h->version_minor >= 1) {
        *why = "missing Host header (required in HTTP/1.1)";
        return ANVIL_HTTP_PARSE_BAD;
    }
    if (n == 1 && !valid_host(anvil_http_header_get(h, "Host"))) {
        *why = "invalid Host header";
        return ANVIL_HTTP_PARSE_BAD;
    }
    return ANVIL_HTTP_PARSE_OK;
}

anvil_http_parse_status anvil_http_parse_head(char *buf, size_t len,
                                              anvil_http_head *out,
                                              const char **why)
{
    static const char *unused;
    if (!why)
        why = &unused;
    memset(out, 0, sizeof *out);
    char *cur = buf, *end = buf + len;
    /* Everything below works on NUL-terminated pieces: a NUL would end a
     * line early and hide the rest of it from validation (RFC 9110 5.5). */
    if (memchr(buf, '\0', len)) {
        *why = "NUL byte in request head";
        return ANVIL_HTTP_PARSE_BAD;
    }

    bool bare_lf = false;
    char *line = next_line(&cur, end, &bare_lf);
    if (!line) {
        *why = "incomplete request line";
        return ANVIL_HTTP_PARSE_BAD;
    }
    if (bare_lf) {
        *why = "lines must end with CRLF, not a bare LF";
        return ANVIL_HTTP_PARSE_BAD;
    }
    char *sp1 = strchr(line, ' ');
    if (!sp1) {
        *why = "malformed request line";
        return ANVIL_HTTP_PARSE_BAD;
    }
    *sp1 = '\0';
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2) {
        *why = "malformed request line";
        return ANVIL_HTTP_PARSE_BAD;
    }
    *sp2 = '\0';
    char *version = sp2 + 1;
    if (!*line || !*target || strchr(version, ' ')) {
        *why = "malformed request line";
        return ANVIL_HTTP_PARSE_BAD;
    }
    for (const char *p = line; *p; p++) {
        if (!is_tchar((unsigned char)*p)) {
            *why = "invalid method";
            return ANVIL_HTTP_PARSE_BAD;
        }
    }
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            *why = "invalid request target";
            return ANVIL_HTTP_PARSE_BAD;
        }
    }
    if (strncmp(version, "HTTP/", 5) != 0) {
        *why = "malformed HTTP version";
        return ANVIL_HTTP_PARSE_BAD;
    }
    if (strcmp(version, "HTTP/1.1") == 0) {
        out->version_minor = 1;
    } else if (strcmp(version, "HTTP/1.0") == 0) {
        out->version_minor = 0;
    } else {
        *why = "only HTTP/1.0 and HTTP/1.1 are supported";
        return ANVIL_HTTP_PARSE_VERSION;
    }
    out->method = line;
    out->target = target;

    while ((line = next_line(&cur, end, &bare_lf)) != NULL) {
        if (bare_lf) {
            *why = "lines must end with CRLF, not a bare LF";
            return ANVIL_HTTP_PARSE_BAD;
        }
        if (*line == '\0') {
            /* The first empty line ends the head; bytes after it in the
             * buffer would be a caller framing error, never headers. */
            if (cur != end) {
                *why = "data after the end of the request head";
                return ANVIL_HTTP_PARSE_BAD;
            }
            return check_host(out, why);
        }
        if (*line == ' ' || *line == '\t') {
            *why = "obsolete header line folding is not accepted";
            return ANVIL_HTTP_PARSE_BAD;
        }
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            *why = "malformed header line";
            return ANVIL_HTTP_PARSE_BAD;
        }
        *colon = '\0';
        for (const char *p = line; *p; p++) {
            if (!is_tchar((unsigned char)*p)) {
                *why = "invalid header name";
                return ANVIL_HTTP_PARSE_BAD;
            }
        }
        char *value = trim(colon + 1);
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
                *why = "invalid character in header value";
                return ANVIL_HTTP_PARSE_BAD;
            }
        }
        if (out->n_headers == ANVIL_HTTP_MAX_HEADERS) {
            *why = "too many header fields";
            return ANVIL_HTTP_PARSE_TOO_MANY;
        }
        out->headers[out->n_headers].name = line;
        out->headers[out->n_headers].value = value;
        out->n_headers++;
    }
    *why = "head does not end with an empty line";
    return ANVIL_HTTP_PARSE_BAD;
}

const char *anvil_http_header_get(const anvil_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

size_t anvil_http_header_count(const anvil_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            n++;
    return n;
}

bool anvil_http_header_has_token(const anvil_http_head *h, const char *name,
                                 const char *token)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i < h->n_headers; i++) {
        if (strcasecmp(h->headers[i].name, name) != 0)
            continue;
        const char *p = h->headers[i].value;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *start = p;
            while (*p && *p != ',')
                p++;
            const char *stop = p;
            while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
                stop--;
            if ((size_t)(stop - start) == tlen && strncasecmp(start, token, tlen) == 0)
                return true;
        }
    }
    return false;
}

bool anvil_http_parse_content_length(const char *v, uint64_t *out)
{
    if (!v || !*v)
        return false;
    uint64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t d = (uint64_t)(*p - '0');
        if (n > UINT64_MAX / 10 || (n == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

enum { CH_SIZE = 0, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF, CH_DONE };

#define CHUNK_LINE_MAX 1024
#define CHUNK_TRAILERS_MAX 64

void anvil_chunked_init(anvil_chunked *c)
{
    memset(c, 0, sizeof *c);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

anvil_chunked_status anvil_chunked_feed(anvil_chunked *c, const char *in, size_t len,
                                        uint64_t max_total, anvil_chunked_sink sink,
                                        void *ctx, size_t *consumed)
{
    size_t i = 0;
    anvil_chunked_status st = ANVIL_CHUNKED_MORE;
    while (i < len) {
        char ch = in[i];
        switch (c->state) {
        case CH_SIZE:
            if (++c->line_len > CHUNK_LINE_MAX) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            if (ch == '\r') {
                if (c->after_ws && !c->in_ext) {
                    st = ANVIL_CHUNKED_BAD;   /* "5 " with no extension after it */
                    goto out;
                }
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            } else if (c->in_ext) {
                /* chunk extensions are ignored */
            } else if (ch == ';') {
                c->in_ext = true;
            } else if (ch == ' ' || ch == '\t') {
                /* Whitespace may only come between the size and a ';'
                 * (BWS before chunk-ext): "2 5" is not 0x25, nor 2. */
                if (!c->saw_digit) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->after_ws = true;
            } else if (c->after_ws) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            } else {
                int v = hexval(ch);
                if (v < 0 || c->remaining > (UINT64_MAX >> 4)) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->remaining = (c->remaining << 4) | (uint64_t)v;
                c->saw_digit = true;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n' || !c->saw_digit) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            i++;
            c->line_len = 0;
            c->in_ext = false;
            c->after_ws = false;
            c->saw_digit = false;
            if (c->remaining == 0) {
                c->state = CH_TRAILER;
            } else {
                if (c->remaining > max_total || c->total > max_total - c->remaining) {
                    st = ANVIL_CHUNKED_TOO_LARGE;
                    goto out;
                }
                c->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = len - i;
            if ((uint64_t)take > c->remaining)
                take = (size_t)c->remaining;
            if (sink && sink(ctx, in + i, take) != 0) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            c->remaining -= take;
            c->total += take;
            i += take;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r') {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n') {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            c->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            /* A trailer line is a header field: token ':' field-value. A
             * request line (no ':', spaces in the "name") is refused, so a
             * last chunk without its final CRLF cannot eat the next
             * pipelined request. */
            if (ch == '\r') {
                if (c->line_len > 0 && !c->in_trailer_value) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->state = CH_TRAILER_LF;
            } else if (++c->line_len > CHUNK_LINE_MAX) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            } else if (c->in_trailer_value) {
                unsigned char u = (unsigned char)ch;
                if ((u < 0x20 && u != '\t') || u == 0x7f) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
            } else if (ch == ':') {
                if (c->line_len == 1) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->in_trailer_value = true;
            } else if (!is_tchar((unsigned char)ch)) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            i++;
            if (c->line_len == 0) {
                c->state = CH_DONE;
                st = ANVIL_CHUNKED_DONE;
                goto out;
            }
            if (++c->trailer_lines > CHUNK_TRAILERS_MAX) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            c->line_len = 0;
            c->in_trailer_value = false;
            c->state = CH_TRAILER;
            break;
        default:
            st = ANVIL_CHUNKED_DONE;
            goto out;
        }
    }
out:
    if (consumed)
        *consumed = i;
    return st;
}
