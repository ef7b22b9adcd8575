/*
 * runtime/http/http_parse.c — bounded HTTP/1.1 head and chunked-body parsing.
 *
 * Strict where laxness has bitten servers before (RFC 9112 allows some of
 * it; proxies that read a message differently are how requests get
 * smuggled): every line ends in CRLF, never a bare LF or a stray CR; the
 * version is HTTP/<digit>.<digit>; obsolete line folding, whitespace before
 * the colon and non-token header names are refused; an HTTP/1.1 request has
 * exactly one Host, and every Host is a well-formed, non-empty host[:port];
 * chunk sizes are hex digits only, whitespace may follow them only before
 * an extension's ';', and extensions must follow the RFC 9112 7.1.1 grammar
 * (then they are ignored); trailer lines must be well-formed header fields
 * other than the framing and routing ones, so a last chunk missing its final
 * CRLF cannot swallow the next request as "trailers". docs/http.md lists
 * the rules.
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

/* Split off one CRLF-terminated line; returns NULL at the end. Sets *bad
 * (to the reason) when the line ends in a LF without its CR, or holds a CR
 * anywhere else: a recipient that took a lone CR or LF for a line end
 * would see different lines than we do. */
static char *next_line(char **cursor, char *end, const char **bad)
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
    else if (!*bad)
        *bad = "lines must end with CRLF, not a bare LF";
    if (!*bad && strchr(start, '\r'))
        *bad = "a CR must be followed by LF";
    *cursor = nl + 1;
    return start;
}

/* The IP-literal of RFC 3986 as far as a server must judge it: an IPv6
 * address (hex digits, ':' and '.' for an IPv4 tail). IPvFuture is refused:
 * no client sends it to us. */
static const char *skip_ip_literal(const char *p)
{
    const char *close = strchr(p, ']');
    if (!close || close == p + 1)
        return NULL;
    for (const char *q = p + 1; q < close; q++)
        if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
            return NULL;
    return close + 1;
}

/* uri-host [":" port] (RFC 9110 7.2, RFC 3986 3.2.2): an IP-literal, or a
 * reg-name of unreserved, sub-delims and %XX; then at most one ':' and a
 * port of 1 to 5 digits up to 65535. An empty host is refused: an http URI
 * must have one (RFC 9110 4.2.1), so it is an "invalid field value". No
 * userinfo, path, query, fragment or whitespace. */
static bool valid_host(const char *v)
{
    const char *p = v;
    if (*p == '[') {
        p = skip_ip_literal(p);
        if (!p)
            return false;
    } else {
        for (; *p && *p != ':'; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '%') {
                if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                    return false;
                p += 2;
            } else if (!isalnum(ch) && !strchr("-._~!$&'()*+,;=", ch)) {
                return false;
            }
        }
        if (p == v)
            return false;
    }
    if (*p == '\0')
        return true;
    if (*p != ':')
        return false;
    unsigned long port = 0;
    size_t digits = 0;
    for (p++; *p; p++) {
        if (*p < '0' || *p > '9' || ++digits > 5)
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return digits > 0 && port <= 65535;
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
        *why = "invalid Host header (expected host or host:port)";
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

    const char *bad_line = NULL;
    char *line = next_line(&cur, end, &bad_line);
    if (!line) {
        *why = "incomplete request line";
        return ANVIL_HTTP_PARSE_BAD;
    }
    if (bad_line) {
        *why = bad_line;
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
    /* A URI is ASCII (RFC 3986): anything else is percent-encoded. */
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            *why = "invalid request target";
            return ANVIL_HTTP_PARSE_BAD;
        }
    }
    /* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3): anything
     * else is malformed (400); a well-formed version other than 1.0 and
     * 1.1 is one we do not speak (505). */
    if (strncmp(version, "HTTP/", 5) != 0 || strlen(version) != 8 ||
        !isdigit((unsigned char)version[5]) || version[6] != '.' ||
        !isdigit((unsigned char)version[7])) {
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

    while ((line = next_line(&cur, end, &bad_line)) != NULL) {
        if (bad_line) {
            *why = bad_line;
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

bool anvil_http_wants_websocket(const anvil_http_head *h, const char *ws_path)
{
    if (!h->method || strcmp(h->method, "GET") != 0 || h->version_minor < 1)
        return false;
    if (ws_path) {
        const char *q = strchr(h->target, '?');
        size_t plen = q ? (size_t)(q - h->target) : strlen(h->target);
        if (plen != strlen(ws_path) || strncmp(h->target, ws_path, plen) != 0)
            return false;
    }
    return anvil_http_header_has_token(h, "Connection", "upgrade") &&
           anvil_http_header_has_token(h, "Upgrade", "websocket");
}

/* Decoder states. Within CH_SIZE, line_state says where in
 * chunk-size [ chunk-ext ] CRLF (RFC 9112 7.1, 7.1.1) the line is. */
enum { CH_SIZE = 0, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_TRAILER_LF, CH_DONE };
enum {
    SZ_DIGITS = 0,   /* hex digits; the only state before the first one */
    SZ_WS,           /* BWS after the size: only ';' may follow */
    EXT_START,       /* after ';', BWS, then a name */
    EXT_NAME,        /* in chunk-ext-name (a token) */
    EXT_NAME_WS,     /* BWS after the name: '=' or ';' */
    EXT_VAL_START,   /* after '=', BWS, then a token or quoted-string */
    EXT_TOKEN,       /* in a token value */
    EXT_QUOTED,      /* in a quoted-string value */
    EXT_QUOTED_ESC,  /* after a backslash in it */
    EXT_QUOTED_END,  /* after its closing quote */
    EXT_VAL_WS,      /* BWS after a value: only ';' may follow */
};

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

/* One byte of a chunk-size line other than its CR (and never a LF, which
 * the caller refuses): false when the line can no longer be well-formed.
 * Extensions are checked against the grammar and then ignored: none is
 * defined that we understand, and a lax reading of them ("2 5" as 2, a
 * control character passed over) is where parsers disagree. */
static bool size_line_byte(anvil_chunked *c, unsigned char ch)
{
    bool ws = ch == ' ' || ch == '\t';
    switch (c->line_state) {
    case SZ_DIGITS: {
        int v = hexval((char)ch);
        if (v >= 0) {
            if (c->remaining > (UINT64_MAX >> 4))
                return false;   /* the size would overflow */
            c->remaining = (c->remaining << 4) | (uint64_t)v;
            c->saw_digit = true;
            return true;
        }
        if (!c->saw_digit)
            return false;       /* no leading whitespace, sign or "0x" */
        if (ws)
            c->line_state = SZ_WS;
        else if (ch == ';')
            c->line_state = EXT_START;
        else
            return false;
        return true;
    }
    case SZ_WS:
        if (ch == ';')
            c->line_state = EXT_START;
        return ws || ch == ';';
    case EXT_START:
        if (is_tchar(ch))
            c->line_state = EXT_NAME;
        return ws || is_tchar(ch);
    case EXT_NAME:
        if (is_tchar(ch))
            return true;
        if (ws)
            c->line_state = EXT_NAME_WS;
        else if (ch == '=')
            c->line_state = EXT_VAL_START;
        else if (ch == ';')
            c->line_state = EXT_START;
        else
            return false;
        return true;
    case EXT_NAME_WS:
        if (ch == '=')
            c->line_state = EXT_VAL_START;
        else if (ch == ';')
            c->line_state = EXT_START;
        else if (!ws)
            return false;
        return true;
    case EXT_VAL_START:
        if (ch == '"')
            c->line_state = EXT_QUOTED;
        else if (is_tchar(ch))
            c->line_state = EXT_TOKEN;
        else if (!ws)
            return false;
        return true;
    case EXT_TOKEN:
        if (is_tchar(ch))
            return true;
        if (ws)
            c->line_state = EXT_VAL_WS;
        else if (ch == ';')
            c->line_state = EXT_START;
        else
            return false;
        return true;
    case EXT_QUOTED:
        /* qdtext: HTAB, SP, VCHAR but '"' and '\\', obs-text */
        if (ch == '"')
            c->line_state = EXT_QUOTED_END;
        else if (ch == '\\')
            c->line_state = EXT_QUOTED_ESC;
        else if (ch < 0x20 ? ch != '\t' : ch == 0x7f)
            return false;
        return true;
    case EXT_QUOTED_ESC:
        if (ch < 0x20 ? ch != '\t' : ch == 0x7f)
            return false;
        c->line_state = EXT_QUOTED;
        return true;
    case EXT_QUOTED_END:
    case EXT_VAL_WS:
        if (ws)
            c->line_state = EXT_VAL_WS;
        else if (ch == ';')
            c->line_state = EXT_START;
        else
            return false;
        return true;
    default:
        return false;
    }
}

/* May the size line end (CR) here? Not after whitespace ("5 " or "5;a "),
 * nor after a ';' or '=' with nothing behind it, nor inside a quote. */
static bool size_line_may_end(const anvil_chunked *c)
{
    switch (c->line_state) {
    case SZ_DIGITS:
        return c->saw_digit;
    case EXT_NAME:
    case EXT_TOKEN:
    case EXT_QUOTED_END:
        return true;
    default:
        return false;
    }
}

/* Trailer fields that only mean something in the header section: framing
 * (a merged Content-Length or Transfer-Encoding is a smuggled length) and
 * routing (RFC 9110 6.5.1). We ignore trailers, but refuse these rather
 * than forward the ambiguity to anything that reads the message after us. */
static bool forbidden_trailer(const char *name)
{
    return strcasecmp(name, "content-length") == 0 ||
           strcasecmp(name, "transfer-encoding") == 0 || strcasecmp(name, "host") == 0 ||
           strcasecmp(name, "trailer") == 0;
}

/* One byte of a trailer line other than its CR: false when the line can no
 * longer be a header field (token ':' field-value). A request line (spaces
 * in the "name", no ':') is refused, so a last chunk without its final CRLF
 * cannot eat the next pipelined request. */
static bool trailer_byte(anvil_chunked *c, unsigned char ch)
{
    if (c->in_trailer_value)
        return !((ch < 0x20 && ch != '\t') || ch == 0x7f);
    if (ch == ':') {
        if (c->line_len == 1)
            return false;   /* empty name */
        c->trailer_name[c->name_len < sizeof c->trailer_name ? c->name_len
                                                              : sizeof c->trailer_name - 1] = '\0';
        if (c->name_len < sizeof c->trailer_name && forbidden_trailer(c->trailer_name))
            return false;
        c->in_trailer_value = true;
        return true;
    }
    if (!is_tchar(ch))
        return false;
    if (c->name_len < sizeof c->trailer_name)
        c->trailer_name[c->name_len] = (char)ch;
    c->name_len++;
    return true;
}

anvil_chunked_status anvil_chunked_feed(anvil_chunked *c, const char *in, size_t len,
                                        uint64_t max_total, anvil_chunked_sink sink,
                                        void *ctx, size_t *consumed)
{
    size_t i = 0;
    anvil_chunked_status st = ANVIL_CHUNKED_MORE;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE:
            if (++c->line_len > CHUNK_LINE_MAX) {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            if (ch == '\r') {
                if (!size_line_may_end(c)) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->state = CH_SIZE_LF;
            } else if (ch == '\n' || !size_line_byte(c, ch)) {
                st = ANVIL_CHUNKED_BAD;   /* a bare LF, or not the grammar */
                goto out;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') {
                st = ANVIL_CHUNKED_BAD;
                goto out;
            }
            i++;
            c->line_len = 0;
            c->line_state = SZ_DIGITS;
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
            if (ch == '\r') {
                if (c->line_len > 0 && !c->in_trailer_value) {
                    st = ANVIL_CHUNKED_BAD;
                    goto out;
                }
                c->state = CH_TRAILER_LF;
            } else if (++c->line_len > CHUNK_LINE_MAX || !trailer_byte(c, ch)) {
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
            c->name_len = 0;
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
