/*
 * runtime/http/http_server.c — accept, frame, bound and time HTTP/1.1 requests.
 *
 * One connection is a small state machine: IDLE (keep-alive wait) -> HEAD
 * (bytes of a head arriving) -> BODY -> respond -> IDLE, or CLOSING once a
 * response that ends the connection is queued. A single timer per
 * connection enforces whichever deadline the state implies:
 * keep-alive idle, headersTimeout (first byte -> end of head) and
 * requestTimeout (first byte -> end of body). Requests are answered in
 * order, so pipelined requests need no reordering; they are handled by the
 * loop in process_input, never by recursion, so a buffer full of tiny
 * requests cannot grow the stack.
 *
 * Output is bounded too: once OUTPUT_PAUSE_BYTES of responses wait for a
 * client that does not read, no further request is read until they drain,
 * and the bufferevent's write timeout (requestTimeout without progress)
 * drops a client that stops reading altogether. A connection closed after
 * an early refusal (413, 400, 408, 431) first half-closes and discards what
 * the client is still sending for a moment (LINGER), so the refusal is not
 * destroyed by a TCP reset before the client reads it.
 *
 * A request the handler defers (anvil_http_defer) leaves the connection in
 * WAIT: reading stopped, no timer, until anvil_http_pending_answer writes
 * the answer and the machine goes on as if the handler had just returned.
 * The pending handle and the connection point at each other; freeing the
 * connection first unhooks it, so a late answer is dropped.
 */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "sigpipe.h"

/* ST_UPGRADE: a complete upgrade request waits, reading stopped, for the
 * answers to the requests pipelined before it to be written; only then is
 * the socket handed over, so none of them is lost. ST_WAIT: a deferred
 * request waits for its answer. */
enum conn_state { ST_IDLE, ST_HEAD, ST_BODY, ST_UPGRADE, ST_WAIT, ST_CLOSING, ST_LINGER };

/* Stop reading requests while this much response data is unsent. */
#define OUTPUT_PAUSE_BYTES (256u * 1024u)
/* How long a refused client may keep sending before we really close. */
#define LINGER_MS 2000
/* Back-off before accepting again after accept() ran out of descriptors. */
#define ACCEPT_RETRY_MS 200

typedef struct anvil_http_conn {
    struct anvil_http_server *srv;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    char peer[64];
    char log_id[32];               /* "http-N": the lines logged for it say so */

    /* current request */
    char *head_buf;                /* copy of the head, parsed in place */
    anvil_http_head head;
    bool keep_alive;
    bool chunked;
    uint64_t content_length;
    anvil_chunked chunk;
    struct evbuffer *body;
    struct timespec started;       /* first byte of this request */
    bool expect_continue;
    bool paused;                   /* reading stopped until output drains */
    bool draining;                 /* IDLE, but a response is still being written */
    bool linger;                   /* half-close and drain before closing */
    bool refused;                  /* over maxHttpConnections: answered 503, closing */
    struct anvil_http_pending *pending;  /* ST_WAIT: the answer to come */

    struct anvil_http_conn *prev, *next;
} conn;

struct anvil_http_pending {
    conn *c;                       /* NULL once the connection is gone */
};

struct anvil_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    anvil_http_options opt;
    int port;
    size_t n_conns;
    size_t n_refused;              /* of n_conns, those refused over the cap */
    conn *conns;
    char date[64];
    time_t date_at;
    struct event *accept_retry;    /* re-enables the listener after EMFILE */
    bool stopped;                  /* stop_accepting was called */
    unsigned long long conns_opened;   /* numbers the connections for the logs */
};

/* docs/metrics.md. Process-wide: there is one HTTP server. */
static anvil_gauge m_open;
static anvil_counter m_accepted, m_refused;
static anvil_counter m_answers[6];   /* by status class: 1xx..5xx (index 1..5) */

void anvil_http_metrics_render(anvil_metrics_out *o)
{
    const anvil_metric_value values[] = {
        { "anvil_http_connections_open", "gauge",
          "HTTP connections open now.",
          (double)anvil_gauge_get(&m_open) },
        { "anvil_http_connections_accepted_total", "counter",
          "HTTP connections accepted since the start.",
          (double)anvil_counter_get(&m_accepted) },
        { "anvil_http_connections_refused_total", "counter",
          "HTTP connections answered 503 over maxHttpConnections.",
          (double)anvil_counter_get(&m_refused) },
    };
    anvil_metrics_values(o, values, sizeof values / sizeof values[0]);
    anvil_metrics_family(o, "anvil_http_responses_total", "counter",
                         "HTTP responses written, by status class.");
    static const char *const classes[] = { NULL, "1xx", "2xx", "3xx", "4xx", "5xx" };
    for (int i = 1; i <= 5; i++) {
        const char *labels[] = { "code", classes[i], NULL };
        anvil_metrics_sample(o, "anvil_http_responses_total", labels,
                             (double)anvil_counter_get(&m_answers[i]));
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

int anvil_http_response_header(anvil_http_response *res, const char *name, const char *value)
{
    if (res->n_headers >= ANVIL_HTTP_MAX_EXTRA_HEADERS ||
        strlen(name) >= sizeof res->headers[0].name ||
        strlen(value) >= sizeof res->headers[0].value)
        return -1;
    /* Header injection guard: values come from our own code, but never let a
     * CR or LF through. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -1;
    strcpy(res->headers[res->n_headers].name, name);
    strcpy(res->headers[res->n_headers].value, value);
    res->n_headers++;
    return 0;
}

static const char *http_date(anvil_http_server *s)
{
    time_t now = time(NULL);
    if (now != s->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_at = now;
    }
    return s->date;
}

static void conn_free(conn *c)
{
    anvil_http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    anvil_gauge_add(&m_open, -1);
    if (c->refused)
        s->n_refused--;
    if (c->pending)
        c->pending->c = NULL;      /* the answer, when it comes, is dropped */
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->body)
        evbuffer_free(c->body);
    free(c->head_buf);
    free(c);
}

static void arm_timer(conn *c, int64_t ms)
{
    if (ms <= 0) {
        evtimer_del(c->timer);
        return;
    }
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(c->timer, &tv);
}

static int64_t elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void reset_request(conn *c)
{
    free(c->head_buf);
    c->head_buf = NULL;
    memset(&c->head, 0, sizeof c->head);
    c->chunked = false;
    c->content_length = 0;
    c->expect_continue = false;
    anvil_chunked_init(&c->chunk);
    evbuffer_drain(c->body, evbuffer_get_length(c->body));
}

/* Output goes out through send_queued, and EV_WRITE is enabled only while
 * some of it waits for the socket (on_write disables it once drained).
 * An answer the socket takes whole, the usual case, then costs one write
 * and no write event: enabling one and disabling it after the write were
 * two epoll_ctl calls per request. A closing connection's last answer
 * still goes through EV_WRITE, whose drain (on_write) closes it. */
static void send_queued(conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0)
        return;
    /* With EV_WRITE on, bytes are already waiting and these go after them. */
    if (c->state != ST_CLOSING && !(bufferevent_get_enabled(c->bev) & EV_WRITE)) {
        /* The bufferevent keeps its output's front frozen so that only it
         * drains it; it is idle, so we may. A failure leaves the bytes
         * queued: EV_WRITE meets the error and on_event ends the
         * connection. */
        evbuffer_unfreeze(out, 1);
        (void)evbuffer_write(out, bufferevent_getfd(c->bev));
        evbuffer_freeze(out, 1);
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(c->bev, EV_WRITE);
}

/* One access-log line for an answered request (accessLog). */
static void log_access(conn *c, int status, size_t body_len)
{
    const anvil_http_head *h = &c->head;
    char path[512] = "", st[8], bytes[24], ms[24];
    const char *rpc = NULL;
    if (h->target) {
        size_t n = strcspn(h->target, "?");
        snprintf(path, sizeof path, "%.*s", (int)(n < sizeof path ? n : sizeof path - 1), h->target);
        if (!strncmp(path, "/v1/rpc/", 8) && path[8])
            rpc = path + 8;
    }
    snprintf(st, sizeof st, "%d", status);
    snprintf(bytes, sizeof bytes, "%zu", body_len);
    snprintf(ms, sizeof ms, "%lld", (long long)elapsed_ms(&c->started));
    const char *fields[] = {
        "httpMethod", h->method, "path", h->target ? path : NULL, "status", st, "bytes", bytes,
        "durationMs", ms, "peer", c->peer,
        "requestId", h->method ? anvil_http_header_get(h, "x-request-id") : NULL,
        "method", rpc, NULL,
    };
    anvil_log_fields(ANVIL_LOG_INFO, fields, "%s %s %d", h->method ? h->method : "-",
                     h->target ? path : "-", status);
}

static void write_response(conn *c, anvil_http_response *res)
{
    anvil_http_server *s = c->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* Once the server stops accepting, each answer is a connection's last:
     * shutdown waits for connections, and keep-alive would keep them. */
    bool close_after = res->close || !c->keep_alive || s->stopped;
    size_t body_len = evbuffer_get_length(res->body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Date: %s\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "X-Smithers-API-Version: v1\r\n"
                        "Cache-Control: %s\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "%s%s",
                        res->status, reason_phrase(res->status), http_date(s),
                        res->content_type ? res->content_type : "application/json",
                        body_len, res->cache_control ? res->cache_control : "no-store",
                        close_after ? "Connection: close\r\n"
                        : c->head.version_minor == 0 ? "Connection: keep-alive\r\n" : "",
                        res->static_headers ? res->static_headers : "");
    for (size_t i = 0; i < res->n_headers; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", res->headers[i].name, res->headers[i].value);
    evbuffer_add(out, "\r\n", 2);
    bool head_only = c->head.method && strcmp(c->head.method, "HEAD") == 0;
    if (res->status >= 100 && res->status < 600)
        anvil_counter_inc(&m_answers[res->status / 100]);
    if (s->opt.access_log)
        log_access(c, res->status, head_only ? 0 : body_len);
    if (!head_only)
        evbuffer_add_buffer(out, res->body);
    if (close_after) {
        c->state = ST_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        /* A client that never reads the reply must not pin the socket. */
        arm_timer(c, s->opt.request_timeout_ms);
    }
    send_queued(c);
}

/* Close without freeing: callers further up the stack still hold c. The
 * timer (or on_write, once the output drains) frees it from the loop. */
static void close_soon(conn *c)
{
    c->state = ST_CLOSING;
    c->linger = false;
    bufferevent_disable(c->bev, EV_READ);
    struct timeval now = { 0, 0 };
    evtimer_add(c->timer, &now);
}

static void respond_with_reject(conn *c, anvil_error_code code, int status,
                                const char *message, int64_t max_bytes, bool close)
{
    anvil_http_response res = { .status = status, .body = evbuffer_new() };
    if (!res.body) {
        close_soon(c);
        return;
    }
    /* Refused before the request was read to its end: the client may still
     * be sending, and closing on unread data would reset the connection. */
    if (close)
        c->linger = true;
    c->srv->opt.reject(c->srv->opt.ctx, c->head.method ? &c->head : NULL, code, status,
                       message, max_bytes, &res);
    res.status = status;
    res.close = res.close || close;
    write_response(c, &res);
    evbuffer_free(res.body);
}

/* Only a WebSocket upgrade on the WebSocket path goes to the upgrade
 * callback (anvil_http_wants_websocket). Any other Upgrade (h2c, a
 * websocket elsewhere, anything on HTTP/1.0) is ignored as RFC 9110 7.8
 * allows, and the request is answered over HTTP/1.1 like any other. */
static bool wants_websocket(const conn *c)
{
    return c->srv->opt.upgrade && anvil_http_wants_websocket(&c->head, c->srv->opt.upgrade_path);
}

static void request_done(conn *c);
static void process_input(conn *c);

static void dispatch(conn *c)
{
    anvil_http_server *s = c->srv;
    bool upgrade = wants_websocket(c);
    if (upgrade && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        /* Earlier answers are still queued: on_write comes back here once
         * they are out. The request deadline bounds the wait (read_body
         * stopped the timer before dispatching). */
        c->state = ST_UPGRADE;
        bufferevent_disable(c->bev, EV_READ);
        int64_t left = s->opt.request_timeout_ms - elapsed_ms(&c->started);
        arm_timer(c, left > 0 ? left : 1);
        return;
    }
    anvil_http_response res = { .status = 200, .body = evbuffer_new() };
    /* NUL-terminate the body for the handler. */
    if (!res.body || evbuffer_add(c->body, "", 1) != 0) {
        if (res.body)
            evbuffer_free(res.body);
        close_soon(c);
        return;
    }
    size_t blen = evbuffer_get_length(c->body);
    const char *body = (const char *)evbuffer_pullup(c->body, -1);

    char *target = c->head.target;
    char *q = strchr(target, '?');
    char path_buf[2048];
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    if (plen >= sizeof path_buf) {
        /* Answered like any other request (then the next one is read):
         * no route is this long. */
        s->opt.reject(s->opt.ctx, &c->head, ANVIL_ERR_NOT_FOUND, 404, "Request path is too long",
                      0, &res);
        res.status = 404;
    } else {
        memcpy(path_buf, target, plen);
        path_buf[plen] = '\0';

        anvil_http_request req = {
            .head = &c->head, .method = c->head.method, .path = path_buf,
            .query = q ? q + 1 : NULL, .body = body ? body : "", .body_len = blen ? blen - 1 : 0,
            .peer = c->peer,
        };
        if (upgrade) {
            assert(evbuffer_get_length(bufferevent_get_output(c->bev)) == 0);
            struct evbuffer *in = bufferevent_get_input(c->bev);
            size_t extra_len = evbuffer_get_length(in);
            const char *extra = extra_len ? (const char *)evbuffer_pullup(in, -1) : "";
            evutil_socket_t fd = bufferevent_getfd(c->bev);
            if (s->opt.upgrade(s->opt.ctx, fd, &req, extra, extra_len, &res) == 0) {
                /* The socket now belongs to the upgrade target: forget the
                 * fd and free our side from the loop, not here, because
                 * read_body and process_input may still be on the stack. */
                bufferevent_setfd(c->bev, -1);
                evbuffer_drain(in, extra_len);
                evbuffer_free(res.body);
                close_soon(c);
                return;
            }
            /* Refused: what follows on this connection was meant for a
             * WebSocket, never read it as more HTTP requests. */
            res.close = true;
        } else {
            res.conn = c;
            s->opt.handler(s->opt.ctx, &req, &res);
            if (res.deferred) {
                evbuffer_free(res.body);
                c->pending = res.deferred;
                c->state = ST_WAIT;
                bufferevent_disable(c->bev, EV_READ);
                evtimer_del(c->timer);
                return;
            }
        }
    }
    write_response(c, &res);
    evbuffer_free(res.body);
    request_done(c);
}

anvil_http_pending *anvil_http_defer(anvil_http_response *res)
{
    assert(res->conn && !res->deferred);
    anvil_http_pending *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = res->conn;
    res->deferred = p;
    return p;
}

void anvil_http_pending_answer(anvil_http_pending *p, anvil_http_response *res)
{
    conn *c = p->c;
    assert(!c || c->pending == p);
    free(p);
    if (!c)
        return;
    c->pending = NULL;
    assert(c->state == ST_WAIT);
    if (!res) {
        close_soon(c);
        return;
    }
    anvil_log_ctx prev = anvil_log_ctx_push(&(anvil_log_ctx){ .conn_id = c->log_id });
    write_response(c, res);
    anvil_log_ctx_restore(prev);
    if (c->state == ST_CLOSING)
        return;
    request_done(c);
    /* Requests pipelined behind this one may already be buffered. */
    bufferevent_enable(c->bev, EV_READ);
    process_input(c);
}

/* The answer is queued: get ready for the next request. */
static void request_done(conn *c)
{
    if (c->state == ST_CLOSING)
        return;
    reset_request(c);
    c->state = ST_IDLE;
    /* The keep-alive wait starts now; on_timer leaves a connection alone
     * while its response is still being written, and on_write restarts the
     * wait once it is. process_input's loop reads any pipelined request. */
    c->draining = evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
    arm_timer(c, c->srv->opt.keep_alive_timeout_ms);
}

static int body_sink(void *ctx, const char *data, size_t len)
{
    return evbuffer_add((struct evbuffer *)ctx, data, len);
}

static void start_body(conn *c)
{
    anvil_http_server *s = c->srv;
    const char *te = anvil_http_header_get(&c->head, "Transfer-Encoding");
    const char *cl = anvil_http_header_get(&c->head, "Content-Length");
    const char *conn_hdr = anvil_http_header_get(&c->head, "Connection");
    (void)conn_hdr;
    c->keep_alive = c->head.version_minor >= 1
                        ? !anvil_http_header_has_token(&c->head, "Connection", "close")
                        : anvil_http_header_has_token(&c->head, "Connection", "keep-alive");

    if (te) {
        /* Ambiguous framing is how requests get smuggled: refuse it. And
         * HTTP/1.0 has no transfer codings (RFC 9112 6.1: faulty framing). */
        if (cl || anvil_http_header_count(&c->head, "Transfer-Encoding") > 1 ||
            strcasecmp(te, "chunked") != 0 || c->head.version_minor == 0) {
            respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 400,
                                "Unsupported Transfer-Encoding (only a lone \"chunked\" is accepted)",
                                0, true);
            return;
        }
        c->chunked = true;
    } else if (cl) {
        if (anvil_http_header_count(&c->head, "Content-Length") > 1 ||
            !anvil_http_parse_content_length(cl, &c->content_length)) {
            respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 400, "Invalid Content-Length", 0, true);
            return;
        }
        if (c->content_length > s->opt.max_body_bytes) {
            char msg[128];
            snprintf(msg, sizeof msg, "Request payload exceeds %llu bytes.",
                     (unsigned long long)s->opt.max_body_bytes);
            respond_with_reject(c, ANVIL_ERR_PAYLOAD_TOO_LARGE, 413, msg,
                                (int64_t)s->opt.max_body_bytes, true);
            return;
        }
    }
    const char *expect = anvil_http_header_get(&c->head, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && c->head.version_minor >= 1 &&
        (c->chunked || c->content_length > 0)) {
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
        send_queued(c);
    }
    c->state = ST_BODY;
}

/* Returns true when a full request was dispatched or the connection ended. */
static bool read_body(conn *c)
{
    anvil_http_server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (!c->chunked) {
        size_t have = evbuffer_get_length(in);
        if (have < c->content_length)
            return false;
        evbuffer_remove_buffer(in, c->body, (size_t)c->content_length);
        evtimer_del(c->timer);
        dispatch(c);
        return true;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1)
            break;
        size_t used = 0;
        anvil_chunked_status st = anvil_chunked_feed(&c->chunk, vec.iov_base, vec.iov_len,
                                                     s->opt.max_body_bytes, body_sink, c->body,
                                                     &used);
        evbuffer_drain(in, used);
        if (st == ANVIL_CHUNKED_TOO_LARGE) {
            char msg[128];
            snprintf(msg, sizeof msg, "Request payload exceeds %llu bytes.",
                     (unsigned long long)s->opt.max_body_bytes);
            respond_with_reject(c, ANVIL_ERR_PAYLOAD_TOO_LARGE, 413, msg,
                                (int64_t)s->opt.max_body_bytes, true);
            return true;
        }
        if (st == ANVIL_CHUNKED_BAD) {
            respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 400, "Malformed chunked body", 0, true);
            return true;
        }
        if (st == ANVIL_CHUNKED_DONE) {
            evtimer_del(c->timer);
            dispatch(c);
            return true;
        }
    }
    return false;
}

/* Length of the head at the start of `in` (request line through the first
 * empty line, LF or CRLF), looking only at its first `limit` bytes: 0 when
 * no empty line is there yet. The first empty line ends the head whatever
 * follows, so a bare-LF head cannot swallow the next request (or a body
 * holding CRLFCRLF) into itself. */
static size_t find_head_end(struct evbuffer *in, size_t avail, size_t limit)
{
    size_t scan = avail < limit ? avail : limit;
    struct evbuffer_ptr stop;
    if (evbuffer_ptr_set(in, &stop, scan, EVBUFFER_PTR_SET) != 0)
        return 0;
    struct evbuffer_ptr lf = evbuffer_search_range(in, "\n\n", 2, NULL, &stop);
    struct evbuffer_ptr crlf = evbuffer_search_range(in, "\n\r\n", 3, NULL, &stop);
    size_t best = 0;
    if (lf.pos >= 0)
        best = (size_t)lf.pos + 2;
    if (crlf.pos >= 0 && (best == 0 || (size_t)crlf.pos + 3 < best))
        best = (size_t)crlf.pos + 3;
    return best;
}

/* Read and answer as many buffered requests as possible. Iterative: a
 * dispatched request returns here and the loop takes the next one. Never
 * frees c: anything that ends the connection here goes through CLOSING
 * (close_soon or a close response), and the loop's callbacks free it. */
static void read_requests(conn *c)
{
    anvil_http_server *s = c->srv;
    for (;;) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->state == ST_CLOSING)
            return;
        if (c->state == ST_LINGER) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        size_t avail = evbuffer_get_length(in);
        if (c->state == ST_IDLE) {
            if (avail == 0)
                return;
            /* A client that sends requests but does not read the answers
             * must not make us buffer answers without bound: stop reading
             * until what is queued has been written (on_write resumes). */
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= OUTPUT_PAUSE_BYTES) {
                c->paused = true;
                bufferevent_disable(c->bev, EV_READ);
                return;
            }
            /* Tolerate empty lines before a request (RFC 9112 2.2: some
             * clients send a CRLF after a body), but only whole CRLFs: a
             * bare LF or CR is no more a line end here than in the head. */
            unsigned char first[2];
            evbuffer_copyout(in, first, avail < 2 ? avail : 2);
            if (first[0] == '\r' || first[0] == '\n') {
                if (first[0] == '\r' && avail < 2)
                    return;   /* wait for the byte after the CR */
                if (first[0] == '\n' || first[1] != '\n') {
                    respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 400,
                                        first[0] == '\n' ? "lines must end with CRLF, not a bare LF"
                                                         : "a CR must be followed by LF",
                                        0, true);
                    return;
                }
                evbuffer_drain(in, 2);
                continue;
            }
            c->state = ST_HEAD;
            clock_gettime(CLOCK_MONOTONIC, &c->started);
            arm_timer(c, s->opt.headers_timeout_ms);
        }
        if (c->state == ST_HEAD) {
            size_t head_len = find_head_end(in, avail, s->opt.max_head_bytes);
            if (head_len == 0) {
                if (avail >= s->opt.max_head_bytes)
                    respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 431,
                                        "Request head is too large", 0, true);
                return;
            }
            c->head_buf = malloc(head_len + 1);
            if (!c->head_buf) {
                close_soon(c);
                return;
            }
            evbuffer_remove(in, c->head_buf, head_len);
            c->head_buf[head_len] = '\0';
            const char *why = NULL;
            anvil_http_parse_status ps = anvil_http_parse_head(c->head_buf, head_len, &c->head, &why);
            if (ps != ANVIL_HTTP_PARSE_OK) {
                int status = ps == ANVIL_HTTP_PARSE_TOO_MANY ? 431
                           : ps == ANVIL_HTTP_PARSE_VERSION ? 505 : 400;
                memset(&c->head, 0, sizeof c->head);
                respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, status, why, 0, true);
                return;
            }
            /* Head done: from here the request deadline applies. */
            int64_t left = s->opt.request_timeout_ms - elapsed_ms(&c->started);
            arm_timer(c, left > 0 ? left : 1);
            start_body(c);
            continue;
        }
        if (c->state == ST_BODY) {
            if (!read_body(c))
                return;
            continue;   /* now IDLE (next request) or CLOSING */
        }
        return;
    }
}

/* read_requests with the connection named in the lines it logs. */
static void process_input(conn *c)
{
    anvil_log_ctx prev = anvil_log_ctx_push(&(anvil_log_ctx){ .conn_id = c->log_id });
    read_requests(c);
    anvil_log_ctx_restore(prev);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

/* The response that ends the connection has been written. */
static void finish_close(conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if ((!c->linger && evbuffer_get_length(in) == 0) || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        conn_free(c);
        return;
    }
    /* Closing a socket with unread data makes the kernel send a reset,
     * which can destroy the response before the client reads it. Send our
     * FIN instead and discard input until the client closes or LINGER_MS. */
    c->state = ST_LINGER;
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    int64_t ms = c->srv->opt.request_timeout_ms;
    arm_timer(c, ms > 0 && ms < LINGER_MS ? ms : LINGER_MS);
}

/* Called when the output buffer has drained completely. */
static void on_write(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    /* Drained: the next answer is written at once again (send_queued). */
    bufferevent_disable(bev, EV_WRITE);
    if (c->state == ST_CLOSING) {
        finish_close(c);
        return;
    }
    if (c->state == ST_UPGRADE) {
        dispatch(c);
        return;
    }
    /* (libevent 2.1 also calls this once right after EV_WRITE is enabled
     * on a new connection, with nothing written: hence `draining`.) */
    if (c->state == ST_IDLE && (c->draining || c->paused)) {
        /* Idle from now on; and resume reading if output had filled up. */
        c->draining = false;
        arm_timer(c, c->srv->opt.keep_alive_timeout_ms);
        if (c->paused) {
            c->paused = false;
            bufferevent_enable(bev, EV_READ);
            process_input(c);
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn *c = arg;
    if ((what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) &&
        c->state != ST_LINGER && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        /* The client half-closed after sending requests: everything it sent
         * has been read, so finish writing the answers, then close. */
        c->state = ST_CLOSING;
        c->linger = false;
        bufferevent_disable(bev, EV_READ);
        arm_timer(c, c->srv->opt.request_timeout_ms);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn *c = arg;
    anvil_http_server *s = c->srv;
    switch (c->state) {
    case ST_IDLE:
        /* Not idle while a response is still being written: on_write
         * restarts the wait once it is, and the write timeout drops a
         * client that stops reading. */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            return;
        conn_free(c);
        return;
    case ST_CLOSING:
    case ST_LINGER:
        conn_free(c);
        return;
    case ST_WAIT:
        return;   /* no deadline while the answer is being worked out */
    case ST_HEAD: {
        char msg[96];
        snprintf(msg, sizeof msg, "Request headers not received within headersTimeout (%lld ms)",
                 (long long)s->opt.headers_timeout_ms);
        memset(&c->head, 0, sizeof c->head);
        respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 408, msg, 0, true);
        return;
    }
    case ST_UPGRADE:
    case ST_BODY: {
        char msg[96];
        snprintf(msg, sizeof msg, "Request not received within requestTimeout (%lld ms)",
                 (long long)s->opt.request_timeout_ms);
        respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 408, msg, 0, true);
        return;
    }
    }
}

/* Serve fd as a new connection; the server owns fd from here. */
static int conn_open(anvil_http_server *s, evutil_socket_t fd, const char *peer)
{
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return -1;
    }
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(s->base, on_timer, c);
    c->body = evbuffer_new();
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    anvil_gauge_add(&m_open, 1);
    anvil_counter_inc(&m_accepted);
    if (!c->bev || !c->timer || !c->body) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return -1;
    }
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    snprintf(c->log_id, sizeof c->log_id, "http-%llu", ++s->conns_opened);
    c->state = ST_IDLE;
    anvil_chunked_init(&c->chunk);
    /* Stop reading once far more than one request could need is buffered;
     * reading resumes as the buffer drains. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             (size_t)s->opt.max_body_bytes + s->opt.max_head_bytes + 65536);
    /* Writing that makes no progress for requestTimeout ends the
     * connection (BEV_EVENT_TIMEOUT): a client that does not read its
     * responses cannot pin them in memory. */
    if (s->opt.request_timeout_ms > 0) {
        struct timeval wtv = { (time_t)(s->opt.request_timeout_ms / 1000),
                               (suseconds_t)((s->opt.request_timeout_ms % 1000) * 1000) };
        bufferevent_set_timeouts(c->bev, NULL, &wtv);
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* EV_WRITE (on by default) only while output waits (send_queued). */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    if (s->opt.max_connections && s->n_conns - s->n_refused > s->opt.max_connections) {
        /* Over the cap: answer at once and close, rather than leave the
         * client queued in the backlog with no word. Connections handed to
         * the WebSocket are no longer counted here, nor refused ones while
         * they linger, so a flood does not keep the cap shut. */
        c->refused = true;
        s->n_refused++;
        anvil_counter_inc(&m_refused);
        char msg[96];
        snprintf(msg, sizeof msg, "Too many HTTP connections (maxHttpConnections %zu)",
                 s->opt.max_connections);
        respond_with_reject(c, ANVIL_ERR_BUSY, 503, msg, 0, true);
        return 0;
    }
    /* A fresh connection must send its first head within headersTimeout. */
    arm_timer(c, s->opt.headers_timeout_ms);
    return 0;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    anvil_http_server *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char peer[64] = "";
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(peer, sizeof peer, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        char ip[INET6_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(peer, sizeof peer, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    conn_open(s, fd, peer);
}

int anvil_http_server_adopt(anvil_http_server *s, evutil_socket_t fd, const char *peer)
{
    if (evutil_make_socket_nonblocking(fd) != 0) {
        evutil_closesocket(fd);
        return -1;
    }
    return conn_open(s, fd, peer ? peer : "");
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_http_server *s = arg;
    if (!s->stopped && s->listener)
        evconnlistener_enable(s->listener);
}

/* accept() failed with something other than EAGAIN/EINTR/ECONNABORTED.
 * Without this callback libevent only logs, and the listening socket stays
 * readable: out of descriptors (EMFILE), the loop would spin at full CPU
 * writing a warning per iteration. Pause accepting briefly instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    anvil_http_server *s = arg;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(l);
    struct timeval tv = { ACCEPT_RETRY_MS / 1000, (ACCEPT_RETRY_MS % 1000) * 1000 };
    if (!s->accept_retry || evtimer_add(s->accept_retry, &tv) != 0) {
        if (!s->stopped)
            evconnlistener_enable(l);
        return;
    }
    time_t now = time(NULL);
    static time_t logged_at;
    if (now != logged_at) {   /* at most one line a second */
        logged_at = now;
        anvil_log(ANVIL_LOG_WARN, "accept failed: %s; pausing accepts for %d ms",
                  evutil_socket_error_to_string(err), ACCEPT_RETRY_MS);
    }
}

anvil_http_server *anvil_http_server_new(struct event_base *base, const char *host, int port,
                                         const anvil_http_options *opt, char *err, size_t errlen)
{
    if (!opt->handler || !opt->reject) {
        snprintf(err, errlen, "http server needs a handler and a reject callback");
        return NULL;
    }
    /* Answers are written straight to the socket (send_queued): a client
     * gone meanwhile must be EPIPE, not the end of the process. */
    if (anvil_sigpipe_ignore() != 0) {
        snprintf(err, errlen, "cannot ignore SIGPIPE");
        return NULL;
    }
    anvil_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base = base;
    s->opt = *opt;
    if (!s->opt.max_head_bytes)
        s->opt.max_head_bytes = 16384;
    if (s->opt.keep_alive_timeout_ms <= 0)
        s->opt.keep_alive_timeout_ms = 5000;
    if (!host)
        return s;   /* no listener: connections come from anvil_http_server_adopt */

    struct sockaddr_storage ss;
    int sslen;
    char spec[300];
    memset(&ss, 0, sizeof ss);
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "listen port %d is out of range", port);
        free(s);
        return NULL;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    /* "localhost" is loopback by definition (RFC 6761); do not depend on a
     * resolver or /etc/hosts to say so (minimal roots have neither). */
    if (strcasecmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sslen = sizeof *in4;
        snprintf(spec, sizeof spec, "%s:%d", host, port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *in6;
        snprintf(spec, sizeof spec, "[%s]:%d", host, port);
    } else {
        /* A name such as "localhost": the first address it resolves to. */
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
        int gai = getaddrinfo(host, NULL, &hints, &ai);
        if (gai != 0 || !ai || ai->ai_addrlen > sizeof ss) {
            snprintf(err, errlen, "cannot listen on \"%s\": %s", host,
                     gai ? gai_strerror(gai) : "no usable address");
            if (ai)
                freeaddrinfo(ai);
            free(s);
            return NULL;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sslen = (int)ai->ai_addrlen;
        freeaddrinfo(ai);
        if (ss.ss_family == AF_INET6)
            in6->sin6_port = htons((uint16_t)port);
        else
            in4->sin_port = htons((uint16_t)port);
        snprintf(spec, sizeof spec, "%s:%d", host, port);
    }
    s->listener = evconnlistener_new_bind(base, on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                          1024, (struct sockaddr *)&ss, sslen);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        free(s);
        return NULL;
    }
    s->accept_retry = evtimer_new(base, on_accept_retry, s);
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return s;
}

int anvil_http_server_port(const anvil_http_server *s)
{
    return s->port;
}

void anvil_http_server_stop_accepting(anvil_http_server *s)
{
    s->stopped = true;
    if (s->accept_retry)
        evtimer_del(s->accept_retry);
    if (s->listener)
        evconnlistener_disable(s->listener);
    /* Idle keep-alive connections (nothing read of a next request, nothing
     * left to write) are closed now; the others end after their answer. */
    for (conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
    }
}

size_t anvil_http_server_connections(const anvil_http_server *s)
{
    return s->n_conns;
}

void anvil_http_server_free(anvil_http_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    if (s->accept_retry)
        event_free(s->accept_retry);
    if (s->listener)
        evconnlistener_free(s->listener);
    free(s);
}
