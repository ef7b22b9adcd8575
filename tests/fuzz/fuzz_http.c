/*
 * tests/fuzz/fuzz_http.c — libFuzzer target for the HTTP/1.1 front door:
 * the parser (runtime/http/http_parse.c) on request heads and chunked
 * bodies, and the server (runtime/http/http_server.c) on whole
 * connections (fuzz_http_stream.c), the code every byte from the network
 * goes through first.
 *
 * Input layout: byte 0 picks the mode (& 3: 0 a request head, 1 a chunked
 * body, 2 one connection's bytes, 3 a connection over maxHttpConnections),
 * byte 1 a feed step; the rest is the input. Besides the sanitizers'
 * checks, it aborts when:
 *   - a head parses OK without a method, a target, a version 0/1 or with
 *     more headers than the bound, without exactly one Host on HTTP/1.1,
 *     with an empty Host, or with a LF not preceded by CR (or a CR not
 *     followed by LF) anywhere in it;
 *   - the chunked decoder's verdict, output or consumed length differs
 *     between feeding everything at once and feeding it in small steps
 *     (a decoder whose answer depends on how TCP split the bytes is how
 *     requests get smuggled), it consumes past its input or decodes past
 *     its limit, a body it calls complete does not end in CRLF CRLF, or
 *     its verdict differs from a second, line-by-line reading of the
 *     rules (fuzz_http_ref.c);
 *   - a connection breaks one of the rules fuzz_http_stream.c lists.
 * The seeds (http_corpus/) name the rule they exercise; docs/http.md
 * lists the rules.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_http_ref.h"
#include "fuzz_http_stream.h"
#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096

typedef struct sink_buf {
    char data[MAX_BODY + 1];
    size_t len;
} sink_buf;

static int sink(void *ctx, const char *d, size_t n)
{
    sink_buf *b = ctx;
    if (b->len + n > MAX_BODY)
        abort();   /* the decoder promised to stop at the limit */
    memcpy(b->data + b->len, d, n);
    b->len += n;
    return 0;
}

static anvil_chunked_status decode(const uint8_t *in, size_t len, size_t step, sink_buf *out,
                                   size_t *used)
{
    anvil_chunked c;
    anvil_chunked_init(&c);
    out->len = 0;
    *used = 0;
    anvil_chunked_status st = ANVIL_CHUNKED_MORE;
    while (*used < len && st == ANVIL_CHUNKED_MORE) {
        size_t n = len - *used < step ? len - *used : step, got = 0;
        st = anvil_chunked_feed(&c, (const char *)in + *used, n, MAX_BODY, sink, out, &got);
        if (got > n)
            abort();
        *used += got;
        if (st == ANVIL_CHUNKED_MORE && got != n)
            abort();   /* MORE means everything given was consumed */
    }
    return st;
}

static void fuzz_head(const uint8_t *in, size_t len)
{
    char *buf = malloc(len + 1);
    if (!buf)
        return;
    memcpy(buf, in, len);
    buf[len] = '\0';
    anvil_http_head h;
    const char *why = NULL;
    if (anvil_http_parse_head(buf, len, &h, &why) == ANVIL_HTTP_PARSE_OK) {
        if (!h.method || !*h.method || !h.target || !*h.target || h.version_minor < 0 ||
            h.version_minor > 1 || h.n_headers > ANVIL_HTTP_MAX_HEADERS)
            abort();
        if (h.version_minor == 1 && anvil_http_header_count(&h, "Host") != 1)
            abort();
        if (anvil_http_header_count(&h, "Host") > 1)
            abort();
        const char *host = anvil_http_header_get(&h, "Host");
        if (host && !*host)
            abort();
        /* Every line ended in CRLF: no LF without its CR, no CR without
         * its LF (in the caller's copy; the parser wrote NULs into buf). */
        for (size_t i = 0; i < len; i++)
            if ((in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) ||
                (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n')))
                abort();
    } else if (!why) {
        abort();   /* every refusal says why */
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *in = data + 2;
    size_t len = size - 2;
    switch (data[0] & 3) {
    case 0:
        fuzz_head(in, len);
        return 0;
    case 2:
        fuzz_http_stream(in, len, (size_t)(data[1] % 31) + 1);
        return 0;
    case 3:
        fuzz_http_over_cap(in, len);
        return 0;
    default:
        break;
    }
    size_t step = (size_t)(data[1] % 7) + 1;
    static sink_buf whole, steps;
    size_t used_whole, used_steps;
    anvil_chunked_status a = decode(in, len, len ? len : 1, &whole, &used_whole);
    anvil_chunked_status b = decode(in, len, step, &steps, &used_steps);
    if (a != b || used_whole != used_steps || whole.len != steps.len ||
        memcmp(whole.data, steps.data, whole.len) != 0) {
        fprintf(stderr, "chunked decoding depends on the feed: %d/%d, used %zu/%zu, out %zu/%zu\n",
                (int)a, (int)b, used_whole, used_steps, whole.len, steps.len);
        abort();
    }
    /* A complete body ends with the empty line after the last chunk (or
     * after its trailers). */
    if (a == ANVIL_CHUNKED_DONE && (used_whole < 5 || memcmp(in + used_whole - 4, "\r\n\r\n", 4) != 0))
        abort();
    /* The verdict agrees with a second, line-by-line reading of the rules
     * (fuzz_http_ref.c); where that one still waits for the rest of a
     * line, the decoder may already have refused it. */
    static uint8_t ref_out[MAX_BODY];
    size_t ref_len, ref_used;
    ref_status r = ref_chunked(in, len, MAX_BODY, ref_out, &ref_len, &ref_used);
    bool agree = r == REF_DONE ? a == ANVIL_CHUNKED_DONE && ref_used == used_whole &&
                                     ref_len == whole.len && memcmp(ref_out, whole.data, ref_len) == 0
               : r == REF_BAD ? a == ANVIL_CHUNKED_BAD
               : r == REF_TOO_LARGE ? a == ANVIL_CHUNKED_TOO_LARGE
               : a == ANVIL_CHUNKED_MORE || a == ANVIL_CHUNKED_BAD;
    if (!agree) {
        fprintf(stderr, "chunked decoder says %d, the reference %d\n", (int)a, (int)r);
        abort();
    }
    return 0;
}
