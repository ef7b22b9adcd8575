/*
 * runtime/http_server.c — accept, frame, bound and time HTTP/1.1 requests.
 *
 * One connection is a small state machine: IDLE (keep-alive wait) -> HEAD
 * (bytes of a head arriving) -> BODY -> respond -> IDLE, or CLOSING once a
 * response that ends the connection is queued. A single timer per
 * connection enforces whichever deadline the state implies:
 * keep-alive idle, headersTimeout (first byte -> end of head) and
 * requestTimeout (first byte -> end of body). Requests are answered in
 * order, so pipelined requests need no reordering.
 */
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

enum conn_state { ST_IDLE, ST_HEAD, ST_BODY, ST_CLOSING };

typedef struct conn {
    struct anvil_http_server *srv;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    char peer[64];

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

    struct conn *prev, *next;
} conn;

struct anvil_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    anvil_http_options opt;
    int port;
    size_t n_conns;
    conn *conns;
    char date[64];
    time_t date_at;
};

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

static void write_response(conn *c, anvil_http_response *res)
{
    anvil_http_server *s = c->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool close_after = res->close || !c->keep_alive;
    size_t body_len = evbuffer_get_length(res->body);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Date: %s\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "X-Smithers-API-Version: v1\r\n"
                        "Cache-Control: no-store\r\n"
                        "X-Content-Type-Options: nosniff\r\n"
                        "%s",
                        res->status, reason_phrase(res->status), http_date(s),
                        res->content_type ? res->content_type : "application/json",
                        body_len, close_after ? "Connection: close\r\n" : "");
    for (size_t i = 0; i < res->n_headers; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", res->headers[i].name, res->headers[i].value);
    evbuffer_add(out, "\r\n", 2);
    bool head_only = c->head.method && strcmp(c->head.method, "HEAD") == 0;
    if (!head_only)
        evbuffer_add_buffer(out, res->body);
    if (close_after) {
        c->state = ST_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        /* A client that never reads the reply must not pin the socket. */
        arm_timer(c, s->opt.request_timeout_ms);
    }
}

static void respond_with_reject(conn *c, anvil_error_code code, int status,
                                const char *message, int64_t max_bytes, bool close)
{
    anvil_http_response res = { .status = status, .body = evbuffer_new() };
    if (!res.body) {
        conn_free(c);
        return;
    }
    c->srv->opt.reject(c->srv->opt.ctx, c->head.method ? &c->head : NULL, code, status,
                       message, max_bytes, &res);
    res.status = status;
    res.close = res.close || close;
    write_response(c, &res);
    evbuffer_free(res.body);
}

static void process_input(conn *c);

static void dispatch(conn *c)
{
    anvil_http_server *s = c->srv;
    evbuffer_add(c->body, "", 1);   /* NUL-terminate for the handler */
    size_t blen = evbuffer_get_length(c->body);
    const char *body = (const char *)evbuffer_pullup(c->body, -1);

    char *target = c->head.target;
    char *q = strchr(target, '?');
    char path_buf[2048];
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    if (plen >= sizeof path_buf) {
        respond_with_reject(c, ANVIL_ERR_NOT_FOUND, 404, "Request path is too long", 0, false);
        return;
    }
    memcpy(path_buf, target, plen);
    path_buf[plen] = '\0';

    anvil_http_request req = {
        .head = &c->head, .method = c->head.method, .path = path_buf,
        .query = q ? q + 1 : NULL, .body = body ? body : "", .body_len = blen ? blen - 1 : 0,
        .peer = c->peer,
    };
    anvil_http_response res = { .status = 200, .body = evbuffer_new() };
    if (!res.body) {
        conn_free(c);
        return;
    }

    bool upgrade = anvil_http_header_has_token(&c->head, "Connection", "upgrade") &&
                   anvil_http_header_get(&c->head, "Upgrade") != NULL;
    if (upgrade && s->opt.upgrade) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t extra_len = evbuffer_get_length(in);
        const char *extra = extra_len ? (const char *)evbuffer_pullup(in, -1) : "";
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (s->opt.upgrade(s->opt.ctx, fd, &req, extra, extra_len, &res) == 0) {
            /* The socket now belongs to the upgrade target: free our side
             * without closing the fd. */
            bufferevent_setfd(c->bev, -1);
            evbuffer_free(res.body);
            conn_free(c);
            return;
        }
    } else {
        s->opt.handler(s->opt.ctx, &req, &res);
    }
    write_response(c, &res);
    evbuffer_free(res.body);
    if (c->state == ST_CLOSING)
        return;
    reset_request(c);
    c->state = ST_IDLE;
    arm_timer(c, s->opt.keep_alive_timeout_ms);
    process_input(c);   /* a pipelined request may already be buffered */
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
        /* Ambiguous framing is how requests get smuggled: refuse it. */
        if (cl || anvil_http_header_count(&c->head, "Transfer-Encoding") > 1 ||
            strcasecmp(te, "chunked") != 0) {
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

static void process_input(conn *c)
{
    anvil_http_server *s = c->srv;
    for (;;) {
        if (c->state == ST_CLOSING)
            return;
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t avail = evbuffer_get_length(in);
        if (c->state == ST_IDLE) {
            if (avail == 0)
                return;
            /* Tolerate stray CRLFs between pipelined requests (RFC 9112 2.2). */
            unsigned char first;
            evbuffer_copyout(in, &first, 1);
            if (first == '\r' || first == '\n') {
                evbuffer_drain(in, 1);
                continue;
            }
            c->state = ST_HEAD;
            clock_gettime(CLOCK_MONOTONIC, &c->started);
            arm_timer(c, s->opt.headers_timeout_ms);
        }
        if (c->state == ST_HEAD) {
            struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            size_t head_len;
            if (end.pos >= 0) {
                head_len = (size_t)end.pos + 4;
            } else {
                struct evbuffer_ptr lf = evbuffer_search(in, "\n\n", 2, NULL);
                if (lf.pos < 0) {
                    if (avail > s->opt.max_head_bytes) {
                        respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 431,
                                            "Request head is too large", 0, true);
                    }
                    return;
                }
                head_len = (size_t)lf.pos + 2;
            }
            if (head_len > s->opt.max_head_bytes) {
                respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 431, "Request head is too large", 0, true);
                return;
            }
            c->head_buf = malloc(head_len + 1);
            if (!c->head_buf) {
                conn_free(c);
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
            if (c->state == ST_CLOSING || c->state != ST_IDLE)
                return;
            /* dispatch() already processed pipelined input */
            return;
        }
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    if (c->state == ST_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    conn *c = arg;
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
    case ST_CLOSING:
        conn_free(c);
        return;
    case ST_HEAD: {
        char msg[96];
        snprintf(msg, sizeof msg, "Request headers not received within headersTimeout (%lld ms)",
                 (long long)s->opt.headers_timeout_ms);
        memset(&c->head, 0, sizeof c->head);
        respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 408, msg, 0, true);
        return;
    }
    case ST_BODY: {
        char msg[96];
        snprintf(msg, sizeof msg, "Request not received within requestTimeout (%lld ms)",
                 (long long)s->opt.request_timeout_ms);
        respond_with_reject(c, ANVIL_ERR_INVALID_REQUEST, 408, msg, 0, true);
        return;
    }
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)salen;
    anvil_http_server *s = arg;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
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
    if (!c->bev || !c->timer || !c->body) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        char ip[INET6_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    c->state = ST_IDLE;
    anvil_chunked_init(&c->chunk);
    /* Stop reading once far more than one request could need is buffered;
     * reading resumes as the buffer drains. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             (size_t)s->opt.max_body_bytes + s->opt.max_head_bytes + 65536);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* A fresh connection must send its first head within headersTimeout. */
    arm_timer(c, s->opt.headers_timeout_ms);
}

anvil_http_server *anvil_http_server_new(struct event_base *base, const char *host, int port,
                                         const anvil_http_options *opt, char *err, size_t errlen)
{
    if (!opt->handler || !opt->reject) {
        snprintf(err, errlen, "http server needs a handler and a reject callback");
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
    if (s->listener)
        evconnlistener_disable(s->listener);
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
    if (s->listener)
        evconnlistener_free(s->listener);
    free(s);
}
