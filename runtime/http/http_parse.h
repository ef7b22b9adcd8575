/*
 * runtime/http/http_parse.h — HTTP/1.1 request heads and chunked bodies, parsed
 * with hard bounds and no I/O.
 *
 * Kept apart from the connection code so it can be unit-tested and fuzzed on
 * plain byte strings. The head parser works in place on a caller buffer that
 * holds one complete head (request line through the empty line); names and
 * values point into that buffer, NUL-terminated.
 */
#ifndef ANVIL_HTTP_PARSE_H
#define ANVIL_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANVIL_HTTP_MAX_HEADERS 64

typedef struct anvil_http_header {
    char *name;        /* as sent; compare case-insensitively */
    char *value;       /* surrounding whitespace removed */
} anvil_http_header;

typedef struct anvil_http_head {
    char *method;
    char *target;      /* request-target as sent, e.g. "/v1/rpc/getRun?x=1" */
    int version_minor; /* HTTP/1.<minor>; 0 or 1 */
    anvil_http_header headers[ANVIL_HTTP_MAX_HEADERS];
    size_t n_headers;
} anvil_http_head;

typedef enum anvil_http_parse_status {
    ANVIL_HTTP_PARSE_OK = 0,
    ANVIL_HTTP_PARSE_BAD,            /* malformed: answer 400 */
    ANVIL_HTTP_PARSE_TOO_MANY,       /* too many headers: answer 431 */
    ANVIL_HTTP_PARSE_VERSION         /* not HTTP/1.x: answer 505 */
} anvil_http_parse_status;

/* Parse buf[0..len): one head, request line through the first empty line
 * and nothing after it. Modifies buf. *why says what was wrong. */
anvil_http_parse_status anvil_http_parse_head(char *buf, size_t len,
                                              anvil_http_head *out,
                                              const char **why);

/* Header value by case-insensitive name (first occurrence), or NULL. */
const char *anvil_http_header_get(const anvil_http_head *h, const char *name);

/* Number of headers with that name. */
size_t anvil_http_header_count(const anvil_http_head *h, const char *name);

/* True when a comma-separated header (e.g. Connection) holds token. */
bool anvil_http_header_has_token(const anvil_http_head *h, const char *name,
                                 const char *token);

/* Parse a Content-Length value: digits only, no sign, no overflow. */
bool anvil_http_parse_content_length(const char *v, uint64_t *out);

/* Is this request a WebSocket upgrade for the WebSocket side? Only a GET
 * on HTTP/1.1 (a server ignores Upgrade on HTTP/1.0, RFC 9110 7.8) whose
 * path (the target up to '?') is ws_path (NULL: any path), with
 * Connection: upgrade and Upgrade: websocket. Any other Upgrade (h2c, or a
 * websocket on another path) is an ordinary request. */
bool anvil_http_wants_websocket(const anvil_http_head *h, const char *ws_path);

/* Incremental chunked transfer decoding. Feed bytes; decoded data is handed
 * to `sink`. The size line is hex digits, then optionally extensions in
 * the RFC 9112 7.1.1 grammar (checked, then ignored); every line ends in
 * CRLF. Stops at the end of the trailers, which are checked as header
 * fields (name ':' value; not Content-Length, Transfer-Encoding, Host or
 * Trailer) and otherwise ignored. */
typedef struct anvil_chunked {
    int state;
    int line_state;          /* where in the size line (http_parse.c) */
    uint64_t remaining;      /* bytes left in the current chunk */
    uint64_t total;          /* decoded bytes so far */
    size_t line_len;         /* bytes of the current size/trailer line */
    unsigned trailer_lines;
    bool saw_digit;
    bool in_trailer_value;   /* past the current trailer line's ':' */
    char trailer_name[20];   /* the current trailer's name, if it fits */
    size_t name_len;         /* its full length */
} anvil_chunked;

typedef enum anvil_chunked_status {
    ANVIL_CHUNKED_MORE = 0,   /* all input consumed, need more */
    ANVIL_CHUNKED_DONE,       /* body complete; *consumed says where it ended */
    ANVIL_CHUNKED_BAD,        /* malformed */
    ANVIL_CHUNKED_TOO_LARGE   /* decoded size would exceed the limit */
} anvil_chunked_status;

typedef int (*anvil_chunked_sink)(void *ctx, const char *data, size_t len);

void anvil_chunked_init(anvil_chunked *c);

/* Decode from in[0..len). *consumed gets the bytes used. A sink returning
 * non-zero stops decoding with ANVIL_CHUNKED_BAD. */
anvil_chunked_status anvil_chunked_feed(anvil_chunked *c, const char *in, size_t len,
                                        uint64_t max_total, anvil_chunked_sink sink,
                                        void *ctx, size_t *consumed);

#endif
