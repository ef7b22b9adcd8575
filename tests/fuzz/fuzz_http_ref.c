/*
 * tests/fuzz/fuzz_http_ref.c — a second reading of the front door's rules,
 * for the HTTP fuzzer to compare runtime/http/ against (see the header).
 *
 * Written apart from the real code and shaped differently on purpose: the
 * chunked body is read a whole line at a time (find the CRLF, then judge
 * the line) where the real decoder is a byte-at-a-time state machine, and
 * the request framing is a plain loop over the bytes. A rule both readings
 * get wrong the same way is unlikely; a rule one of them gets wrong makes
 * the fuzzer abort. The bounds (line lengths, trailer count) are the
 * decoder's, counted the way it counts them.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fuzz_http_ref.h"
#include "http_parse.h"

#define TRAILERS_MAX 64

static bool tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ws(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Field-value bytes (and quoted-string bytes): no control but HTAB, no DEL. */
static bool vchar_or_ws(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static size_t skip_ws(const uint8_t *p, size_t i, size_t n)
{
    while (i < n && ws(p[i]))
        i++;
    return i;
}

static size_t skip_token(const uint8_t *p, size_t i, size_t n)
{
    while (i < n && tchar(p[i]))
        i++;
    return i;
}

/* chunk-size [ chunk-ext ]: RFC 9112 7.1 and 7.1.1, BWS only before ';'
 * and around '='. */
static bool size_line(const uint8_t *p, size_t n, uint64_t *size)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < n; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            break;
        if (v > UINT64_MAX / 16)
            return false;
        v = v * 16 + (uint64_t)d;
    }
    if (i == 0)
        return false;
    *size = v;
    for (;;) {
        size_t j = skip_ws(p, i, n);
        if (j == n)
            return j == i;           /* no whitespace at the end */
        if (p[j] != ';')
            return false;
        i = skip_ws(p, j + 1, n);
        j = skip_token(p, i, n);
        if (j == i)
            return false;            /* a name is a token */
        i = j;
        j = skip_ws(p, i, n);
        if (j == n || p[j] != '=')
            continue;                /* the loop wants ';' or the end */
        i = skip_ws(p, j + 1, n);
        if (i < n && p[i] == '"') {
            for (i++;; i++) {
                if (i == n)
                    return false;    /* unterminated */
                if (p[i] == '"')
                    break;
                if (p[i] == '\\' && ++i == n)
                    return false;
                if (!vchar_or_ws(p[i]))
                    return false;
            }
            i++;
        } else {
            j = skip_token(p, i, n);
            if (j == i)
                return false;
            i = j;
        }
    }
}

static bool trailer_line(const uint8_t *p, size_t n)
{
    size_t i = skip_token(p, 0, n);
    if (i == 0 || i == n || p[i] != ':')
        return false;
    static const char *const forbidden[] = { "content-length", "transfer-encoding", "host", "trailer" };
    for (size_t k = 0; k < sizeof forbidden / sizeof forbidden[0]; k++)
        if (strlen(forbidden[k]) == i && strncasecmp((const char *)p, forbidden[k], i) == 0)
            return false;
    for (i++; i < n; i++)
        if (!vchar_or_ws(p[i]))
            return false;
    return true;
}

/* The line at in[pos..): its length before the CR in *n. REF_DONE when a
 * whole CRLF line is there, REF_MORE when it may still come, REF_BAD for
 * a bare LF, a CR without its LF, or a line the decoder finds too long:
 * it fails on the line's byte number LINE_MAX + 1, counting the CR when
 * cr_counts (size lines), not counting it otherwise (trailers). */
#define LINE_MAX_BYTES 1024

static ref_status line_at(const uint8_t *in, size_t len, size_t pos, bool cr_counts, size_t *n)
{
    size_t i = pos;
    while (i < len && in[i] != '\r' && in[i] != '\n')
        i++;
    *n = i - pos;
    if (*n > LINE_MAX_BYTES)
        return REF_BAD;
    if (i == len)
        return REF_MORE;
    if (in[i] == '\n' || (cr_counts && *n + 1 > LINE_MAX_BYTES))
        return REF_BAD;
    if (i + 1 == len)
        return REF_MORE;
    return in[i + 1] == '\n' ? REF_DONE : REF_BAD;
}

ref_status ref_chunked(const uint8_t *in, size_t len, size_t max, uint8_t *out, size_t *out_len,
                       size_t *used)
{
    size_t pos = 0, n;
    *out_len = 0;
    *used = 0;
    for (;;) {
        ref_status st = line_at(in, len, pos, true, &n);
        uint64_t size = 0;
        bool valid = size_line(in + pos, n, &size);
        bool have_cr = pos + n < len && in[pos + n] == '\r';
        if (st == REF_BAD || (have_cr && !valid))
            return REF_BAD;
        if (st == REF_MORE)
            return REF_MORE;
        pos += n + 2;
        if (size == 0)
            break;
        if (size > max || *out_len > max - size)
            return REF_TOO_LARGE;
        if (len - pos < size)
            return REF_MORE;
        memcpy(out + *out_len, in + pos, (size_t)size);
        *out_len += (size_t)size;
        pos += (size_t)size;
        if (pos < len && in[pos] != '\r')
            return REF_BAD;
        if (pos + 1 < len && in[pos + 1] != '\n')
            return REF_BAD;
        if (pos + 2 > len)
            return REF_MORE;
        pos += 2;
    }
    for (int lines = 0;; lines++) {
        ref_status st = line_at(in, len, pos, false, &n);
        bool have_cr = pos + n < len && in[pos + n] == '\r';
        if (st == REF_BAD || (have_cr && n > 0 && !trailer_line(in + pos, n)))
            return REF_BAD;
        if (st == REF_MORE)
            return REF_MORE;
        pos += n + 2;
        if (n == 0) {
            *used = pos;
            return REF_DONE;
        }
        if (lines + 1 > TRAILERS_MAX)
            return REF_BAD;
    }
}

/* The first "\n\n" or "\n\r\n" that ends within in[0..scan): the head's
 * length, or 0. */
static size_t head_end(const uint8_t *in, size_t scan)
{
    for (size_t i = 0; i + 1 < scan; i++) {
        if (in[i] != '\n')
            continue;
        if (in[i + 1] == '\n')
            return i + 2;
        if (i + 2 < scan && in[i + 1] == '\r' && in[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool token_in(const anvil_http_head *h, const char *name, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < h->n_headers; i++) {
        if (strcasecmp(h->headers[i].name, name) != 0)
            continue;
        for (const char *p = h->headers[i].value; *p;) {
            while (*p == ',' || ws((uint8_t)*p))
                p++;
            size_t k = strcspn(p, ",");
            size_t t = k;
            while (t && ws((uint8_t)p[t - 1]))
                t--;
            if (t == tl && strncasecmp(p, token, tl) == 0)
                return true;
            p += k;
        }
    }
    return false;
}

static size_t count(const anvil_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        n += strcasecmp(h->headers[i].name, name) == 0;
    return n;
}

size_t ref_transcript(const uint8_t *in, size_t len, size_t max_head, size_t max_body,
                      const char *ws_path, char *out, size_t cap)
{
    size_t pos = 0, w = 0;
    static char head_buf[65536];
    static uint8_t body[65536];
    out[0] = '\0';
    for (;;) {
        /* Between requests: whole CRLFs only. */
        while (pos < len && (in[pos] == '\r' || in[pos] == '\n')) {
            if (in[pos] == '\n' || (pos + 1 < len && in[pos + 1] != '\n'))
                return w;            /* 400 */
            if (pos + 1 == len)
                return w;            /* waits for the LF; EOF */
            pos += 2;
        }
        if (pos == len)
            return w;
        size_t avail = len - pos, scan = avail < max_head ? avail : max_head;
        size_t hl = head_end(in + pos, scan);
        if (hl == 0)
            return w;                /* 431, or EOF inside the head */
        memcpy(head_buf, in + pos, hl);
        head_buf[hl] = '\0';
        pos += hl;
        anvil_http_head h;
        if (anvil_http_parse_head(head_buf, hl, &h, NULL) != ANVIL_HTTP_PARSE_OK)
            return w;
        const char *te = anvil_http_header_get(&h, "Transfer-Encoding");
        const char *cl = anvil_http_header_get(&h, "Content-Length");
        size_t body_len = 0;
        if (te) {
            if (cl || count(&h, "Transfer-Encoding") > 1 || strcasecmp(te, "chunked") != 0 ||
                h.version_minor == 0)
                return w;
            size_t used;
            if (ref_chunked(in + pos, len - pos, max_body, body, &body_len, &used) != REF_DONE)
                return w;
            pos += used;
        } else if (cl) {
            uint64_t v;
            if (count(&h, "Content-Length") > 1 || !anvil_http_parse_content_length(cl, &v) ||
                v > max_body || v > len - pos)
                return w;
            body_len = (size_t)v;
            pos += body_len;
        }
        const char *q = strchr(h.target, '?');
        size_t plen = q ? (size_t)(q - h.target) : strlen(h.target);
        if (strcmp(h.method, "GET") == 0 && h.version_minor == 1 && strlen(ws_path) == plen &&
            strncmp(h.target, ws_path, plen) == 0 && token_in(&h, "Connection", "upgrade") &&
            token_in(&h, "Upgrade", "websocket")) {
            w += (size_t)snprintf(out + w, cap - w, "%s",
                                  anvil_http_header_get(&h, "X-Refuse") ? "R\n" : "U\n");
            return w < cap ? w : cap - 1;
        }
        int n = snprintf(out + w, cap - w, "H %s %s %zu\n", h.method, h.target, body_len);
        if (n < 0 || (size_t)n >= cap - w)
            return w;
        w += (size_t)n;
        bool keep_alive = h.version_minor >= 1 ? !token_in(&h, "Connection", "close")
                                               : token_in(&h, "Connection", "keep-alive");
        if (!keep_alive)
            return w;
    }
}
