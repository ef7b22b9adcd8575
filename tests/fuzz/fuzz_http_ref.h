/*
 * tests/fuzz/fuzz_http_ref.h — a second reading of the front door's rules
 * (fuzz_http_ref.c) for the HTTP fuzzer to compare the real code against:
 * line by line where the real decoder goes byte by byte, written from
 * docs/http.md rather than from runtime/http/.
 */
#ifndef ANVIL_FUZZ_HTTP_REF_H
#define ANVIL_FUZZ_HTTP_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ref_status {
    REF_MORE,        /* the input may yet become valid */
    REF_DONE,        /* a complete body; *used says where it ended */
    REF_BAD,         /* malformed, whatever follows */
    REF_TOO_LARGE    /* a chunk takes the body past `max` */
} ref_status;

/* A chunked body at the start of in[0..len): sizes, extensions, data,
 * trailers, with the decoder's bounds (lines, trailer count). The decoded
 * data goes to out (room for max bytes), its length to *out_len. */
ref_status ref_chunked(const uint8_t *in, size_t len, size_t max, uint8_t *out, size_t *out_len,
                       size_t *used);

/* The requests a server with these limits hands to its handler for one
 * connection's bytes, as the transcript the stream fuzzer's callbacks
 * write: "H <method> <target> <body length>\n" per request handled, then
 * "U\n" (handed over to ws_path) or "R\n" (an upgrade with X-Refuse, which
 * the fuzzer's callback refuses), and nothing after the connection must
 * end. Returns the transcript's length (written to out, cap bytes). */
size_t ref_transcript(const uint8_t *in, size_t len, size_t max_head, size_t max_body,
                      const char *ws_path, char *out, size_t cap);

#endif
