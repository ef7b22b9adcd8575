/*
 * tests/unit/test_http_parse.c — request heads and chunked bodies, including
 * the malformed shapes that enable request smuggling.
 */
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "unit.h"

static anvil_http_parse_status parse(const char *text, anvil_http_head *h, char **keep)
{
    *keep = strdup(text);
    return anvil_http_parse_head(*keep, strlen(*keep), h, NULL);
}

static void test_heads(void)
{
    anvil_http_head h;
    char *buf;
    CHECK(parse("POST /v1/rpc/getRun?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n"
                "Connection: keep-alive, Upgrade\r\nX-Empty:\r\n\r\n", &h, &buf) == ANVIL_HTTP_PARSE_OK);
    CHECK_STR(h.method, "POST");
    CHECK_STR(h.target, "/v1/rpc/getRun?x=1");
    CHECK_INT(h.version_minor, 1);
    CHECK_INT(h.n_headers, 4);
    CHECK_STR(anvil_http_header_get(&h, "content-length"), "12");
    CHECK_STR(anvil_http_header_get(&h, "x-empty"), "");
    CHECK(anvil_http_header_has_token(&h, "connection", "upgrade"));
    CHECK(anvil_http_header_has_token(&h, "Connection", "KEEP-ALIVE"));
    CHECK(!anvil_http_header_has_token(&h, "Connection", "close"));
    CHECK(anvil_http_header_get(&h, "missing") == NULL);
    free(buf);

    /* HTTP/1.0 needs no Host. */
    CHECK(parse("GET / HTTP/1.0\r\n\r\n", &h, &buf) == ANVIL_HTTP_PARSE_OK);
    CHECK_INT(h.version_minor, 0);
    free(buf);
    CHECK(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &h, &buf) == ANVIL_HTTP_PARSE_OK);
    free(buf);
    CHECK(parse("GET / HTTP/1.1\r\nHost: [::1]:7331\r\n\r\n", &h, &buf) == ANVIL_HTTP_PARSE_OK);
    free(buf);

    static const struct { const char *text; anvil_http_parse_status want; } bad[] = {
        { "GET / HTTP/2.0\r\n\r\n", ANVIL_HTTP_PARSE_VERSION },
        { "GET /\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET  / HTTP/1.1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "G(T / HTTP/1.1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nNoColon\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\n: empty-name\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET /a\x7f HTTP/1.1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nX: y\r\n", ANVIL_HTTP_PARSE_BAD },
        /* Bare LF line ends (RFC 9112 2.2 allows them; we do not). */
        { "GET / HTTP/1.0\n\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        /* Host: required once in HTTP/1.1, never twice, never malformed. */
        { "GET / HTTP/1.1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        anvil_http_parse_status st = parse(bad[i].text, &h, &buf);
        if (st != bad[i].want)
            fprintf(stderr, "case %zu: got %d want %d\n", i, (int)st, (int)bad[i].want);
        CHECK(st == bad[i].want);
        free(buf);
    }

    /* The first empty line ends the head: a caller that hands over more
     * (e.g. a bare-LF head followed by a pipelined CRLF request) is told,
     * instead of the rest being silently dropped. */
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n", &h, &buf) ==
          ANVIL_HTTP_PARSE_BAD);
    free(buf);

    /* A NUL would cut a line short and hide the rest from validation. */
    {
        static const char nul_value[] = "GET / HTTP/1.1\r\nX: a\0\x01\r\n\r\n";
        static const char nul_version[] = "GET / HTTP/1.1\0junk\r\n\r\n";
        const char *cases[] = { nul_value, nul_version };
        size_t lens[] = { sizeof nul_value - 1, sizeof nul_version - 1 };
        for (size_t i = 0; i < 2; i++) {
            char *copy = malloc(lens[i]);
            memcpy(copy, cases[i], lens[i]);
            CHECK(anvil_http_parse_head(copy, lens[i], &h, NULL) == ANVIL_HTTP_PARSE_BAD);
            free(copy);
        }
    }

    /* 65 headers: one over the bound */
    char big[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 65; i++) {
        char line[32];
        snprintf(line, sizeof line, "X-%d: v\r\n", i);
        strcat(big, line);
    }
    strcat(big, "\r\n");
    CHECK(parse(big, &h, &buf) == ANVIL_HTTP_PARSE_TOO_MANY);
    free(buf);
}

static void test_content_length(void)
{
    uint64_t n;
    CHECK(anvil_http_parse_content_length("0", &n) && n == 0);
    CHECK(anvil_http_parse_content_length("1048576", &n) && n == 1048576);
    CHECK(anvil_http_parse_content_length("18446744073709551615", &n) && n == UINT64_MAX);
    CHECK(!anvil_http_parse_content_length("18446744073709551616", &n));
    CHECK(!anvil_http_parse_content_length("-1", &n));
    CHECK(!anvil_http_parse_content_length("+1", &n));
    CHECK(!anvil_http_parse_content_length("1,1", &n));
    CHECK(!anvil_http_parse_content_length("", &n));
    CHECK(!anvil_http_parse_content_length("0x10", &n));
}

typedef struct sink_buf { char data[256]; size_t len; } sink_buf;

static int sink(void *ctx, const char *d, size_t n)
{
    sink_buf *b = ctx;
    if (b->len + n >= sizeof b->data)
        return -1;
    memcpy(b->data + b->len, d, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static anvil_chunked_status run_chunked(const char *in, size_t step, uint64_t max, sink_buf *out,
                                        size_t *total_consumed)
{
    anvil_chunked c;
    anvil_chunked_init(&c);
    memset(out, 0, sizeof *out);
    size_t len = strlen(in), off = 0;
    anvil_chunked_status st = ANVIL_CHUNKED_MORE;
    while (off < len) {
        size_t n = len - off < step ? len - off : step, used = 0;
        st = anvil_chunked_feed(&c, in + off, n, max, sink, out, &used);
        off += used;
        if (st != ANVIL_CHUNKED_MORE)
            break;
    }
    *total_consumed = off;
    return st;
}

static void test_chunked(void)
{
    sink_buf out;
    size_t used;
    const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    /* Byte-at-a-time and all-at-once must agree. */
    for (size_t step = 1; step <= 64; step *= 4) {
        CHECK(run_chunked(body, step, 100, &out, &used) == ANVIL_CHUNKED_DONE);
        CHECK_STR(out.data, "hello, world");
        CHECK_INT(used, strlen(body) - 4);   /* stops before the pipelined "NEXT" */
    }
    CHECK(run_chunked("A\r\n0123456789\r\n0\r\n\r\n", 3, 100, &out, &used) == ANVIL_CHUNKED_DONE);
    CHECK_STR(out.data, "0123456789");

    /* the decoded total, not the wire size, is bounded */
    CHECK(run_chunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 4, 9, &out, &used) == ANVIL_CHUNKED_TOO_LARGE);
    CHECK(run_chunked("FFFFFFFFFFFFFFFF\r\n", 4, 1 << 20, &out, &used) == ANVIL_CHUNKED_TOO_LARGE);
    CHECK(run_chunked("10000000000000000\r\n", 4, 1 << 20, &out, &used) == ANVIL_CHUNKED_BAD);

    static const char *bad[] = {
        "5\nhello\r\n0\r\n\r\n",        /* bare LF after size */
        "-5\r\nhello\r\n0\r\n\r\n",     /* sign */
        "5\r\nhelloXX0\r\n\r\n",        /* missing CRLF after data */
        "\r\n",                         /* no digits */
        "g\r\n",                        /* not hex */
        " 5\r\nhello\r\n0\r\n\r\n",     /* leading space */
        "2 5\r\nhello\r\n0\r\n\r\n",    /* a space inside the size is not an extension */
        "5 x\r\nhello\r\n0\r\n\r\n",    /* after whitespace only ';' may follow */
        "5 \r\nhello\r\n0\r\n\r\n",     /* ... and it must follow */
        /* The last chunk without its final CRLF: the next pipelined
         * request must not be taken for trailers. */
        "0\r\nPOST /rpc HTTP/1.1\r\nHost: x\r\n\r\n",
        "0\r\nNoColon\r\n\r\n",          /* trailer without ':' */
        "0\r\n: v\r\n\r\n",              /* empty trailer name */
        "0\r\nX-Bad Name: v\r\n\r\n",    /* space in a trailer name */
        "0\r\nX: a\x01b\r\n\r\n",       /* control character in a trailer value */
        "0\r\nX: v\n\r\n",                /* bare LF after a trailer */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        anvil_chunked_status st = run_chunked(bad[i], 2, 100, &out, &used);
        if (st != ANVIL_CHUNKED_BAD)
            fprintf(stderr, "chunked case %zu: got %d\n", i, (int)st);
        CHECK(st == ANVIL_CHUNKED_BAD);
    }
    /* whitespace before an extension, and well-formed trailers, are fine */
    CHECK(run_chunked("5 ;a=b\r\nhello\r\n0\r\nX-One: 1\r\nX-Two:\r\n\r\n", 1, 100, &out,
                      &used) == ANVIL_CHUNKED_DONE);
    CHECK_STR(out.data, "hello");
    /* incomplete input asks for more */
    CHECK(run_chunked("5\r\nhel", 100, 100, &out, &used) == ANVIL_CHUNKED_MORE);
}

int main(void)
{
    test_heads();
    test_content_length();
    test_chunked();
    UNIT_DONE();
}
