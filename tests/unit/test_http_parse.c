/*
 * tests/unit/test_http_parse.c — request heads and chunked bodies, including
 * the malformed shapes that enable request smuggling, and which requests
 * count as WebSocket upgrades. docs/http.md lists the rules these check.
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
    /* Well-formed hosts: names, addresses, IPv6 literals, ports. */
    static const char *const good_hosts[] = {
        "a", "localhost:7331", "127.0.0.1", "127.0.0.1:65535", "[::1]", "[::1]:7331",
        "[::ffff:10.0.0.1]:80", "xn--bcher-kva.example", "a%2Db", "under_score.example:0",
    };
    for (size_t i = 0; i < sizeof good_hosts / sizeof good_hosts[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good_hosts[i]);
        anvil_http_parse_status st = parse(text, &h, &buf);
        if (st != ANVIL_HTTP_PARSE_OK)
            fprintf(stderr, "host \"%s\": got %d\n", good_hosts[i], (int)st);
        CHECK(st == ANVIL_HTTP_PARSE_OK);
        free(buf);
    }

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
        { "GET / HTTP/1.1\r\nHost:\r\n\r\n", ANVIL_HTTP_PARSE_BAD },         /* empty */
        { "GET / HTTP/1.0\r\nHost: \r\n\r\n", ANVIL_HTTP_PARSE_BAD },        /* empty, 1.0 too */
        { "GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a:000080\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a:-1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: []\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: [v1.x]\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a]\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", ANVIL_HTTP_PARSE_OK },
        /* A CR is part of a CRLF, nowhere else. */
        { "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", ANVIL_HTTP_PARSE_BAD },
        /* HTTP-version is "HTTP/" DIGIT "." DIGIT: otherwise malformed,
         * not merely unsupported. */
        { "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/11.1\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / http/1.1\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
        { "GET / HTTP/1.2\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_VERSION },
        /* A request target is ASCII. */
        { "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ANVIL_HTTP_PARSE_BAD },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        anvil_http_parse_status st = parse(bad[i].text, &h, &buf);
        if (st != bad[i].want)
            fprintf(stderr, "case %zu: got %d want %d\n", i, (int)st, (int)bad[i].want);
        CHECK(st == bad[i].want);
        free(buf);
    }

    /* The refusal says why (the 400's message). */
    {
        static const struct { const char *text, *why; } whys[] = {
            { "GET / HTTP/1.1\nHost: a\r\n\r\n", "lines must end with CRLF, not a bare LF" },
            { "GET / HTTP/1.1\r\nHost: a\n\r\n", "lines must end with CRLF, not a bare LF" },
            { "GET / HTTP/1.1\r\nHost: a\r\n\n", "lines must end with CRLF, not a bare LF" },
            { "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "a CR must be followed by LF" },
            { "GET / HTTP/1.1\r\n\r\n", "missing Host header (required in HTTP/1.1)" },
            { "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "more than one Host header" },
            { "GET / HTTP/1.1\r\nHost:\r\n\r\n", "invalid Host header (expected host or host:port)" },
        };
        for (size_t i = 0; i < sizeof whys / sizeof whys[0]; i++) {
            char *copy = strdup(whys[i].text);
            const char *why = NULL;
            CHECK(anvil_http_parse_head(copy, strlen(copy), &h, &why) == ANVIL_HTTP_PARSE_BAD);
            CHECK_STR(why, whys[i].why);
            free(copy);
        }
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

/* Which requests the server hands to the WebSocket side. */
static void test_wants_websocket(void)
{
    static const struct { const char *text; const char *ws_path; bool want; } cases[] = {
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "/", true },
        { "GET /?x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\n"
          "Upgrade: WebSocket\r\n\r\n", "/", true },
        { "GET /health HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
          NULL, true },
        /* another path: an ordinary request */
        { "GET /health HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
          "/", false },
        { "GET // HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "/", false },
        /* h2c, or any other protocol, even on the WebSocket's path */
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
          "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", "/", false },
        { "GET /health HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", NULL, false },
        /* not GET, HTTP/1.0, or half of the pair */
        { "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "/", false },
        { "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "/", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", "/", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", "/", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgraded\r\nUpgrade: websocket\r\n\r\n", "/", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        anvil_http_head h;
        char *buf;
        CHECK(parse(cases[i].text, &h, &buf) == ANVIL_HTTP_PARSE_OK);
        bool got = anvil_http_wants_websocket(&h, cases[i].ws_path);
        if (got != cases[i].want)
            fprintf(stderr, "websocket case %zu: got %d\n", i, (int)got);
        CHECK(got == cases[i].want);
        free(buf);
    }
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
    const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: x\r\n\r\nNEXT";
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
    /* a size that fits but exceeds the limit is 413, not 400 */
    CHECK(run_chunked("0000000000000000FFFFFFFFFFFFFFFF\r\n", 4, 1 << 20, &out, &used) ==
          ANVIL_CHUNKED_TOO_LARGE);

    static const char *bad[] = {
        /* bare LF (or a stray CR) as a line end, on every kind of line */
        "5\nhello\r\n0\r\n\r\n",        /* after the size */
        "5;a\nhello\r\n0\r\n\r\n",      /* after an extension */
        "5\r\r\nhello\r\n0\r\n\r\n",    /* CR CR LF */
        "5\r\nhello\n0\r\n\r\n",        /* after the data */
        "5\r\nhello\r0\r\n\r\n",        /* CR without LF after the data */
        "0\r\nX: v\n\r\n",                /* after a trailer */
        "0\r\n\n",                        /* the final empty line */
        "0\r\nX: a\rb\r\n\r\n",           /* a CR inside a trailer */
        /* the size: hex digits only, nothing before, only an extension after */
        "-5\r\nhello\r\n0\r\n\r\n",     /* sign */
        "+5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",    /* C prefix */
        "5\r\nhelloXX0\r\n\r\n",        /* missing CRLF after data */
        "\r\n",                         /* no digits */
        ";a\r\n",                       /* an extension without a size */
        "g\r\n",                        /* not hex */
        "5g\r\nhello\r\n0\r\n\r\n",     /* trailing junk */
        " 5\r\nhello\r\n0\r\n\r\n",     /* leading space */
        "\t5\r\nhello\r\n0\r\n\r\n",
        "2 5\r\nhello\r\n0\r\n\r\n",    /* a space inside the size is not an extension */
        "5 x\r\nhello\r\n0\r\n\r\n",    /* after whitespace only ';' may follow */
        "5 \r\nhello\r\n0\r\n\r\n",     /* ... and it must follow */
        "10000000000000000\r\n",        /* 2^64: overflow */
        "00000000000000001ffffffffffffffff\r\n",
        /* extensions: ';' name [ '=' token / quoted-string ], BWS only
         * around ';' and '=' */
        "5;\r\nhello\r\n0\r\n\r\n",     /* no name */
        "5; \r\nhello\r\n0\r\n\r\n",
        "5;=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",   /* no value */
        "5;a \r\nhello\r\n0\r\n\r\n",   /* trailing whitespace */
        "5;a=b \r\nhello\r\n0\r\n\r\n",
        "5;a=b c\r\nhello\r\n0\r\n\r\n",
        "5;a b\r\nhello\r\n0\r\n\r\n",
        "5;a\x01\r\nhello\r\n0\r\n\r\n", /* control characters */
        "5;a=\x7f\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\r\nhello\r\n0\r\n\r\n",  /* unterminated quote */
        "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
        "5;a=b=c\r\nhello\r\n0\r\n\r\n",
        "5;a@b\r\nhello\r\n0\r\n\r\n",  /* not a token */
        /* The last chunk without its final CRLF: the next pipelined
         * request must not be taken for trailers. */
        "0\r\nPOST /rpc HTTP/1.1\r\nHost: x\r\n\r\n",
        "0\r\nGET /health HTTP/1.1\r\n\r\n",
        "0\r\nNoColon\r\n\r\n",          /* trailer without ':' */
        "0\r\n: v\r\n\r\n",              /* empty trailer name */
        "0\r\nX-Bad Name: v\r\n\r\n",    /* space in a trailer name */
        "0\r\nX : v\r\n\r\n",            /* space before the colon */
        "0\r\n folded\r\n\r\n",          /* obsolete folding */
        "0\r\nX: a\x01b\r\n\r\n",       /* control character in a trailer value */
        /* framing and routing fields have no business in trailers */
        "0\r\nContent-Length: 5\r\n\r\n",
        "0\r\ntransfer-encoding: chunked\r\n\r\n",
        "0\r\nHOST: x\r\n\r\n",
        "0\r\nTrailer: X\r\n\r\n",
    };
    /* However the bytes are split, the verdict is the same. */
    static const size_t steps[] = { 1, 2, 3, 1000 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            anvil_chunked_status st = run_chunked(bad[i], steps[k], 100, &out, &used);
            if (st != ANVIL_CHUNKED_BAD)
                fprintf(stderr, "chunked case %zu step %zu: got %d\n", i, steps[k], (int)st);
            CHECK(st == ANVIL_CHUNKED_BAD);
        }
    }
    /* The pipelined request after a last chunk missing its CRLF is never
     * read as a trailer: decoding stops at its first space. */
    CHECK(run_chunked("0\r\nGET /x HTTP/1.1\r\n", 1, 100, &out, &used) == ANVIL_CHUNKED_BAD);
    CHECK_INT(used, 6);

    static const char *good[] = {
        "5 ;a=b\r\nhello\r\n0\r\nX-One: 1\r\nX-Two:\r\n\r\n",   /* BWS before ';' */
        "5;a\r\nhello\r\n0\r\n\r\n",
        "5;a=b;c\r\nhello\r\n0\r\n\r\n",
        "5 ; a = b ;\tc=d\r\nhello\r\n0;last\r\n\r\n",
        "5;a=\"x y;\\\"z\"\r\nhello\r\n0\r\n\r\n",  /* quoted, with an escape */
        "5;a=\"\"\r\nhello\r\n0\r\n\r\n",
        "0005\r\nhello\r\n000\r\n\r\n",
        "5\r\nhello\r\n0\r\nX-Content-Length: 5\r\n\r\n",       /* only the exact names */
        "5\r\nhello\r\n0\r\nContent-Length-Is-Not-This: 5\r\n\r\n",
        "5\r\nhello\r\n0\r\nX: \t a b \x80\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            anvil_chunked_status st = run_chunked(good[i], steps[k], 100, &out, &used);
            if (st != ANVIL_CHUNKED_DONE)
                fprintf(stderr, "good chunked case %zu step %zu: got %d\n", i, steps[k], (int)st);
            CHECK(st == ANVIL_CHUNKED_DONE);
            CHECK_STR(out.data, "hello");
            CHECK_INT(used, strlen(good[i]));
        }
    }
    /* incomplete input asks for more */
    CHECK(run_chunked("5\r\nhel", 100, 100, &out, &used) == ANVIL_CHUNKED_MORE);
}

int main(void)
{
    test_heads();
    test_wants_websocket();
    test_content_length();
    test_chunked();
    UNIT_DONE();
}
