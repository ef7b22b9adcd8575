/*
 * tests/fuzz/fuzz_http_stream.c — the HTTP fuzzer's connection modes: the
 * input is what a client sends on one connection to the real server
 * (runtime/http/http_server.c, over a socketpair), so the rules only a
 * connection shows are fuzzed too: pipelining, stray line ends between
 * requests, which upgrades are handed over, the answers written before a
 * hand-off, and the connection cap.
 *
 * Each input runs twice, sent all at once and in small pieces with the
 * loop turning in between, and it aborts when:
 *   - what the client receives is not a sequence of whole responses, each
 *     answered request's exactly once and in order (the handler numbers
 *     them), with nothing after a "Connection: close" answer;
 *   - the handler sees a request the WebSocket side should have had, or
 *     the upgrade callback one it should not (this file's own reading of
 *     the rule: GET, HTTP/1.1, path /ws, Connection: upgrade, Upgrade:
 *     websocket), or anything reaches the handler after a hand-off;
 *   - at the hand-off, an answer to an earlier request is still unwritten
 *     (the new owner's first bytes must follow every answer), or the
 *     bytes the new owner gets are not exactly the rest of the input;
 *   - an HTTP/1.1 request reaches the handler without exactly one Host;
 *   - the requests handled (method, target, body length) and the
 *     hand-off differ from what a second, simpler reading of the framing
 *     rules finds in the same bytes (fuzz_http_ref.c): a request smuggled
 *     in, one lost, or a connection that went on where it must end;
 *   - the two runs differ (what a client receives must not depend on how
 *     TCP split its bytes);
 *   - over the cap, the connection gets anything but one 503 and a close,
 *     or the cap does not free up when a connection goes.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "fuzz_http_ref.h"
#include "fuzz_http_stream.h"
#include "http_server.h"

/* Say which invariant broke (and where), then crash for libFuzzer. */
#define FAIL(why) fail_at(__LINE__, why)

static void fail_at(int line, const char *why)
{
    fprintf(stderr, "fuzz_http_stream.c:%d: %s\n", line, why);
    abort();
}

#define WS_PATH "/ws"
#define HANDOFF_MARK "\n<handed over>\n"
#define MAX_INPUT 65536

typedef struct stream_run {
    const uint8_t *in;
    size_t len;
    size_t written;                /* bytes of `in` sent so far */
    bool write_done;               /* all sent and our side shut */
    int handled;                   /* handler calls */
    int upgraded;                  /* hand-offs taken */
    int upgrade_at;                /* `handled` at the hand-off */
    struct event_base *base;
    int client;                    /* our end of the connection */
    struct event *client_ev;
    struct evbuffer *received;     /* what the client got */
    bool client_eof;
    int ws_fd;                     /* the handed-over socket, until its EOF */
    struct event *ws_ev;
    struct evbuffer *taken;        /* what the new owner read on it */
    char transcript[2 * MAX_INPUT]; /* the callbacks' record (fuzz_http_ref.h) */
    size_t transcript_len;
} stream_run;

#define MAX_HEAD 1024
#define MAX_BODY 4096

static void record(stream_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void record(stream_run *r, const char *fmt, ...)
{
    size_t room = sizeof r->transcript - r->transcript_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->transcript + r->transcript_len, room, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < room)
        r->transcript_len += (size_t)n;
}

static bool has_token(const anvil_http_head *h, const char *name, const char *token)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i < h->n_headers; i++) {
        if (strcasecmp(h->headers[i].name, name) != 0)
            continue;
        const char *p = h->headers[i].value;
        for (;;) {
            while (*p == ' ' || *p == '\t')
                p++;
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == tlen && strncasecmp(p, token, tlen) == 0)
                return true;
            if (!end)
                break;
            p = end + 1;
        }
    }
    return false;
}

/* The rule, read independently of the server's own predicate. */
static bool should_hand_over(const anvil_http_request *req)
{
    return strcmp(req->method, "GET") == 0 && req->head->version_minor == 1 &&
           strcmp(req->path, WS_PATH) == 0 && has_token(req->head, "Connection", "upgrade") &&
           has_token(req->head, "Upgrade", "websocket");
}

static size_t count_host(const anvil_http_head *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_headers; i++)
        n += strcasecmp(h->headers[i].name, "Host") == 0;
    return n;
}

static void mark_head_only(const anvil_http_head *h, anvil_http_response *res)
{
    if (h && h->method && strcmp(h->method, "HEAD") == 0)
        anvil_http_response_header(res, "X-Head", "1");
}

static void handler(void *ctx, const anvil_http_request *req, anvil_http_response *res)
{
    stream_run *r = ctx;
    if (r->upgraded)
        FAIL("a request was read after the hand-off");
    if (should_hand_over(req))
        FAIL("a WebSocket upgrade on the WebSocket's path reached the handler");
    if (req->head->version_minor == 1 ? count_host(req->head) != 1 : count_host(req->head) > 1)
        FAIL("a request without exactly one Host reached the handler");
    record(r, "H %s %s %zu\n", req->method, req->head->target, req->body_len);
    char seq[16];
    snprintf(seq, sizeof seq, "%d", ++r->handled);
    anvil_http_response_header(res, "X-Seq", seq);
    mark_head_only(req->head, res);
    evbuffer_add_printf(res->body, "{\"seq\":%d,\"body\":%zu}", r->handled, req->body_len);
}

static void reject(void *ctx, const anvil_http_head *head, anvil_error_code code, int status,
                   const char *message, int64_t max_bytes, anvil_http_response *res)
{
    (void)ctx;
    (void)code;
    (void)max_bytes;
    res->status = status;
    mark_head_only(head, res);
    evbuffer_add_printf(res->body, "{\"error\":\"%s\"}", message);
}

static void stop_if_done(stream_run *r)
{
    if (r->write_done && r->client_eof && r->ws_fd < 0)
        event_base_loopbreak(r->base);
}

static void on_ws_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    stream_run *r = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        evbuffer_add(r->taken, buf, (size_t)n);
        return;
    }
    event_del(r->ws_ev);
    close(r->ws_fd);
    r->ws_fd = -1;
    stop_if_done(r);
}

/* Take the socket like the WebSocket side would: send something first (so
 * the client sees where HTTP ended), then read what the client sends. An
 * "X-Refuse" header makes it refuse instead. */
static int upgrade(void *ctx, evutil_socket_t fd, const anvil_http_request *req, const char *extra,
                   size_t extra_len, anvil_http_response *res)
{
    stream_run *r = ctx;
    if (r->upgraded)
        FAIL("a second hand-off");
    if (!should_hand_over(req))
        FAIL("a request that is no WebSocket upgrade on its path was handed over");
    if (anvil_http_header_get(req->head, "X-Refuse")) {
        record(r, "R\n");
        res->status = 403;
        evbuffer_add_printf(res->body, "{\"refused\":true}");
        return -1;
    }
    record(r, "U\n");
    r->upgraded++;
    r->upgrade_at = r->handled;
    r->ws_fd = fd;
    evbuffer_add(r->taken, extra, extra_len);
    if (send(fd, HANDOFF_MARK, strlen(HANDOFF_MARK), MSG_NOSIGNAL) != (ssize_t)strlen(HANDOFF_MARK))
        FAIL("a socketpair with room: the write cannot fall short");
    shutdown(fd, SHUT_WR);
    r->ws_ev = event_new(r->base, fd, EV_READ | EV_PERSIST, on_ws_read, r);
    if (!r->ws_ev || event_add(r->ws_ev, NULL) != 0)
        FAIL("out of memory");
    return 0;
}

static void on_client_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    stream_run *r = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        evbuffer_add(r->received, buf, (size_t)n);
        return;
    }
    /* EOF, or a reset by a server that closed with our bytes unread */
    event_del(r->client_ev);
    r->client_eof = true;
    stop_if_done(r);
}

static void send_upto(stream_run *r, size_t upto)
{
    /* On after our side saw EOF too: a WebSocket side that took the
     * socket may shut its writing and still read the rest. */
    while (r->written < upto) {
        ssize_t n = send(r->client, r->in + r->written, upto - r->written, MSG_NOSIGNAL);
        if (n <= 0)
            break;   /* the server is gone; the rest is never read */
        r->written += (size_t)n;
    }
    if (upto == r->len && !r->write_done) {
        shutdown(r->client, SHUT_WR);
        r->write_done = true;
        stop_if_done(r);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    FAIL("the server never finished with the connection");
}

static anvil_http_server *new_server(stream_run *r, size_t max_connections)
{
    anvil_http_options opt = {
        .max_body_bytes = MAX_BODY,
        .max_head_bytes = MAX_HEAD,
        .headers_timeout_ms = 3000,
        .request_timeout_ms = 3000,
        .keep_alive_timeout_ms = 3000,
        .max_connections = max_connections,
        .handler = handler,
        .reject = reject,
        .upgrade = upgrade,
        .upgrade_path = WS_PATH,
        .ctx = r,
    };
    char err[128];
    anvil_http_server *s = anvil_http_server_new(r->base, NULL, 0, &opt, err, sizeof err);
    if (!s)
        FAIL("cannot create the server");
    return s;
}

/* A socketpair: one end adopted by the server, the other returned. */
static int connect_pair(anvil_http_server *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
        anvil_http_server_adopt(s, sv[0], "fuzz") != 0 ||
        fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK) != 0)
        FAIL("cannot connect a socketpair");
    return sv[1];
}

/* Send the input (in `step`-byte pieces, 0 = at once) on one connection
 * and run until the server is done with it. */
static void run_stream(stream_run *r, const uint8_t *in, size_t len, size_t step,
                       size_t max_connections, bool hold_one)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->len = len;
    r->ws_fd = -1;
    r->base = event_base_new();
    r->received = evbuffer_new();
    r->taken = evbuffer_new();
    if (!r->base || !r->received || !r->taken)
        FAIL("out of memory");
    anvil_http_server *s = new_server(r, max_connections);
    int holder = hold_one ? connect_pair(s) : -1;
    r->client = connect_pair(s);
    r->client_ev = event_new(r->base, r->client, EV_READ | EV_PERSIST, on_client_read, r);
    struct event *deadline = evtimer_new(r->base, on_deadline, r);
    struct timeval tv = { 8, 0 };
    if (!r->client_ev || !deadline || event_add(r->client_ev, NULL) != 0 || evtimer_add(deadline, &tv) != 0)
        FAIL("out of memory");
    if (step == 0) {
        send_upto(r, len);
    } else {
        while (r->written < len) {
            size_t before = r->written;
            send_upto(r, r->written + step < len ? r->written + step : len);
            event_base_loop(r->base, EVLOOP_NONBLOCK);
            if (r->written == before)
                break;
        }
        send_upto(r, len);
    }
    if (!(r->write_done && r->client_eof && r->ws_fd < 0))
        event_base_dispatch(r->base);

    if (hold_one) {
        if (r->handled != 0 || r->upgraded != 0)
            FAIL("the refused connection's requests are never read");
        /* The cap frees up once the held connection goes. */
        close(holder);
        close(r->client);
        r->client = -1;
        struct timeval tick = { 0, 1000 };
        for (int i = 0; i < 1000 && anvil_http_server_connections(s) > 0; i++) {
            event_base_loopexit(r->base, &tick);
            event_base_dispatch(r->base);
        }
        if (anvil_http_server_connections(s) != 0)
            FAIL("connections stay counted after they closed");
        int again = connect_pair(s);
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        if (send(again, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
            FAIL("cannot send");
        for (int i = 0; i < 1000 && r->handled == 0; i++) {
            event_base_loopexit(r->base, &tick);
            event_base_dispatch(r->base);
        }
        if (r->handled != 1)
            FAIL("no room under the cap after the held connection closed");
        close(again);
    }
    anvil_http_server_free(s);
    event_free(deadline);
    event_free(r->client_ev);
    if (r->ws_ev)
        event_free(r->ws_ev);
    if (r->ws_fd >= 0)
        close(r->ws_fd);
    if (r->client >= 0)
        close(r->client);
    event_base_free(r->base);
}

/* An evbuffer's bytes in one piece ("" when empty, never NULL). */
static const char *bytes_of(struct evbuffer *b)
{
    const char *p = evbuffer_get_length(b) ? (const char *)evbuffer_pullup(b, -1) : "";
    if (!p)
        FAIL("out of memory");
    return p;
}

static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; p + n <= end; p++)
        if (memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

/* The value of header `name` (with ": ") in head[0..end), or NULL. */
static const char *header_in(const char *head, const char *end, const char *name)
{
    const char *p = find(head, end, name);
    return p ? p + strlen(name) : NULL;
}

/* What the client received: whole responses, numbered answers in order,
 * nothing after a close, then the hand-off mark if there was one. Returns
 * the number of numbered answers. */
static int check_responses(const stream_run *r, const char *p, size_t n)
{
    const char *end = p + n;
    int seq = 0;
    bool closed = false;
    if (r->upgraded) {
        size_t mlen = strlen(HANDOFF_MARK);
        if (n < mlen || memcmp(end - mlen, HANDOFF_MARK, mlen) != 0)
            FAIL("the new owner's bytes come last");
        end -= mlen;
    }
    while (p < end) {
        if (closed)
            FAIL("bytes after a Connection: close answer");
        if (end - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0)
            FAIL("not a response where one should start");
        const char *head_end = find(p, end, "\r\n\r\n");
        if (!head_end)
            FAIL("a response cut short");
        head_end += 4;
        int status = atoi(p + 9);
        if (status == 100) {
            p = head_end;
            continue;
        }
        const char *cl = header_in(p, head_end, "\r\nContent-Length: ");
        if (status < 200 || status > 599 || !cl)
            FAIL("a response without a final status or Content-Length");
        size_t body = header_in(p, head_end, "\r\nX-Head: 1\r\n") ? 0 : strtoul(cl, NULL, 10);
        const char *num = header_in(p, head_end, "\r\nX-Seq: ");
        if (num && atoi(num) != ++seq)
            FAIL("an answer lost, repeated or out of order");
        closed = header_in(p, head_end, "\r\nConnection: close\r\n") != NULL;
        if ((size_t)(end - head_end) < body)
            FAIL("a response body cut short");
        p = head_end + body;
    }
    if (seq != r->handled)
        FAIL("an answered request's answer never arrived");
    if (r->upgraded && r->upgrade_at != seq)
        FAIL("requests answered after the hand-off");
    return seq;
}

/* received without its Date lines (the clock may tick between runs). */
static struct evbuffer *without_dates(struct evbuffer *received)
{
    struct evbuffer *out = evbuffer_new();
    size_t n = evbuffer_get_length(received);
    const char *p = bytes_of(received), *end = p + n;
    if (!out)
        FAIL("out of memory");
    while (p < end) {
        const char *d = find(p, end, "\r\nDate: ");
        const char *stop = d ? find(d + 2, end, "\r\n") : NULL;
        if (!stop) {
            evbuffer_add(out, p, (size_t)(end - p));
            break;
        }
        evbuffer_add(out, p, (size_t)(d - p));
        p = stop;
    }
    return out;
}

/* The requests the handler got (and the hand-off) are the ones the
 * reference framing finds in the same bytes: nothing smuggled in, nothing
 * lost, the connection ended where the rules end it. */
static void check_transcript(const stream_run *r)
{
    static char want[sizeof r->transcript];
    size_t n = ref_transcript(r->in, r->len, MAX_HEAD, MAX_BODY, WS_PATH, want, sizeof want);
    if (n != r->transcript_len || memcmp(want, r->transcript, n) != 0) {
        fprintf(stderr, "server:\n%.*s\nreference:\n%.*s\n", (int)r->transcript_len, r->transcript,
                (int)n, want);
        FAIL("the server framed the requests differently from the reference");
    }
}

static void check_run(const stream_run *r)
{
    size_t n = evbuffer_get_length(r->received);
    check_responses(r, bytes_of(r->received), n);
    check_transcript(r);
    if (r->upgraded) {
        /* The new owner got exactly the rest of the input, from the byte
         * after the upgrade request: none lost, none also read as HTTP. */
        size_t t = evbuffer_get_length(r->taken);
        if (t > r->len || memcmp(bytes_of(r->taken), r->in + r->len - t, t) != 0)
            FAIL("the new owner did not get exactly the rest of the input");
    }
}

static void free_run(stream_run *r)
{
    evbuffer_free(r->received);
    evbuffer_free(r->taken);
}

void fuzz_http_stream(const uint8_t *in, size_t len, size_t step)
{
    static bool once;
    if (!once) {
        signal(SIGPIPE, SIG_IGN);   /* a write to a connection already closed */
        once = true;
    }
    if (len > MAX_INPUT)
        len = MAX_INPUT;
    static stream_run whole, pieces;
    run_stream(&whole, in, len, 0, 0, false);
    check_run(&whole);
    run_stream(&pieces, in, len, step, 0, false);
    check_run(&pieces);
    struct evbuffer *a = without_dates(whole.received), *b = without_dates(pieces.received);
    size_t an = evbuffer_get_length(a), bn = evbuffer_get_length(b);
    if (whole.handled != pieces.handled || whole.upgraded != pieces.upgraded || an != bn ||
        memcmp(bytes_of(a), bytes_of(b), an) != 0) {
        fprintf(stderr, "%d/%d handled, %zu/%zu bytes\n", whole.handled, pieces.handled, an, bn);
        FAIL("the answers depend on how the bytes were split");
    }
    evbuffer_free(a);
    evbuffer_free(b);
    free_run(&whole);
    free_run(&pieces);
}

void fuzz_http_over_cap(const uint8_t *in, size_t len)
{
    static stream_run r;
    if (len > MAX_INPUT)
        len = MAX_INPUT;
    run_stream(&r, in, len, 0, 1, true);
    /* handled is 1: the request sent once the cap had freed up */
    size_t n = evbuffer_get_length(r.received);
    const char *p = bytes_of(r.received), *end = p + n;
    if (r.upgraded || n < 13 || memcmp(p, "HTTP/1.1 503 ", 13) != 0 ||
        !find(p, end, "\r\nConnection: close\r\n") ||
        !find(p, end, "{\"error\":\"Too many HTTP connections (maxHttpConnections 1)\"}"))
        FAIL("past the cap, something other than the 503");
    const char *head_end = find(p, end, "\r\n\r\n");
    const char *cl = head_end ? header_in(p, head_end, "\r\nContent-Length: ") : NULL;
    if (!cl || head_end + 4 + strtoul(cl, NULL, 10) != end)
        FAIL("one answer, and nothing after it");
    free_run(&r);
}
