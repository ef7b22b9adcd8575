/*
 * tests/fuzz/fuzz_http_stream.h — the HTTP fuzzer's connection modes
 * (fuzz_http_stream.c), called from fuzz_http.c.
 */
#ifndef ANVIL_FUZZ_HTTP_STREAM_H
#define ANVIL_FUZZ_HTTP_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* `in` as one client's bytes to the real server, sent at once and in
 * `step`-byte pieces (step >= 1); aborts on a broken invariant. */
void fuzz_http_stream(const uint8_t *in, size_t len, size_t step);

/* `in` on a connection past maxHttpConnections (1, held by another): one
 * 503 and a close, then room again once the other goes. */
void fuzz_http_over_cap(const uint8_t *in, size_t len);

#endif
