/*
 * tests/fuzz/fuzz_http.c — libFuzzer target for the HTTP/1.1 parser
 * (runtime/http/http_parse.c): request heads and chunked bodies, the front
 * door every byte from the network goes through first.
 *
 * Input layout: byte 0 picks the mode (even: a request head, odd: a
 * chunked body), byte 1 a feed step for the chunked decoder; the rest is
 * the input. Besides the sanitizers' checks, it aborts when:
 *   - a head parses OK without a method, a target, a version 0/1 or with
 *     more headers than the bound, or without exactly one Host on HTTP/1.1;
 *   - the chunked decoder's verdict, output or consumed length differs
 *     between feeding everything at once and feeding it in small steps
 *     (a decoder whose answer depends on how TCP split the bytes is how
 *     requests get smuggled), or it consumes past its input or decodes past
 *     its limit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if ((data[0] & 1) == 0) {
        fuzz_head(in, len);
        return 0;
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
    return 0;
}
