/*
 * tests/unit/test_http_server.c — connection lifecycle of runtime/http/http_server.c
 * with callbacks no HTTP route offers yet (the WebSocket upgrade hand-off),
 * on a real loopback socket (or a socketpair, where a small send buffer
 * must hold answers back) and event loop: which upgrades are handed over,
 * that answers queued before one are written first, the connection cap,
 * and the front-door refusals only a connection can show (stray line ends
 * between requests, a request swallowed as trailers).
 *
 * The upgrade case is a use-after-free check: the connection used to be
 * freed inside dispatch() while read_body() and process_input() were still
 * on the stack and read it afterwards. It is caught by the sanitizer build.
 * So are the deferred-answer cases: an answer that comes after its
 * connection (or the whole server) is gone must be dropped, not written.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "http_server.h"
#include "unit.h"

typedef struct fixture {
    int handled;
    int upgrade_at;                /* `handled` when the upgrade came */
    anvil_http_pending *pending;   /* the request to /later, deferred */
    int upgraded;
    evutil_socket_t taken_fd;
    char last_path[64];
    char extra[64];
} fixture;

static void handler(void *ctx, const anvil_http_request *req, anvil_http_response *res)
{
    fixture *f = ctx;
    f->handled++;
    snprintf(f->last_path, sizeof f->last_path, "%s", req->path);
    if (strcmp(req->path, "/later") == 0 && (f->pending = anvil_http_defer(res)) != NULL)
        return;
    if (strcmp(req->path, "/big") == 0) {
        /* Far more than the small socketpair buffer takes at once. */
        for (int i = 0; i < 64; i++)
            evbuffer_add_printf(res->body, "%01023d\n", i);
    }
    evbuffer_add_printf(res->body, "{\"path\":\"%s\"}", req->path);
}

/* Answer the deferred request with {"late":true}. */
static void answer_later(fixture *f)
{
    anvil_http_response res = { .status = 200, .body = evbuffer_new() };
    evbuffer_add_printf(res.body, "{\"late\":true}");
    anvil_http_pending_answer(f->pending, &res);
    f->pending = NULL;
    evbuffer_free(res.body);
}

/* What the socket holds now, without waiting. */
static size_t read_now(int fd, char *buf, size_t len)
{
    size_t got = 0;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    fcntl(fd, F_SETFL, flags);
    buf[got] = '\0';
    return got;
}

static void reject(void *ctx, const anvil_http_head *head, anvil_error_code code, int http_status,
                   const char *message, int64_t max_bytes, anvil_http_response *res)
{
    (void)ctx;
    (void)head;
    (void)code;
    (void)max_bytes;
    res->status = http_status;
    evbuffer_add_printf(res->body, "{\"error\":\"%s\"}", message);
}

static int upgrade(void *ctx, evutil_socket_t fd, const anvil_http_request *req, const char *extra,
                   size_t extra_len, anvil_http_response *res)
{
    (void)req;
    (void)res;
    fixture *f = ctx;
    f->upgraded++;
    f->upgrade_at = f->handled;
    f->taken_fd = fd;
    snprintf(f->last_path, sizeof f->last_path, "%s", req->path);
    snprintf(f->extra, sizeof f->extra, "%.*s", (int)extra_len, extra);
    return 0;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void run_loop(struct event_base *base, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static size_t g_max_connections;   /* for the next start() */

static anvil_http_server *start(struct event_base *base, fixture *f, bool with_upgrade)
{
    anvil_http_options opt = {
        .max_connections = g_max_connections,
        .upgrade_path = "/ws",
        .max_body_bytes = 4096,
        .headers_timeout_ms = 5000,
        .request_timeout_ms = 5000,
        .handler = handler,
        .reject = reject,
        .upgrade = with_upgrade ? upgrade : NULL,
        .ctx = f,
    };
    char err[256];
    anvil_http_server *s = anvil_http_server_new(base, "127.0.0.1", 0, &opt, err, sizeof err);
    if (!s)
        fprintf(stderr, "server: %s\n", err);
    return s;
}

static void send_all(int fd, const char *text)
{
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len);
}

/* One scenario on a fresh loop and server; it may free the server itself
 * (and then sets *ps to NULL). */
typedef void (*scenario_fn)(struct event_base *base, anvil_http_server **ps, fixture *f);

static void with_server(bool with_upgrade, scenario_fn fn)
{
    struct event_base *base = event_base_new();
    fixture f = { .taken_fd = -1 };
    anvil_http_server *s = start(base, &f, with_upgrade);
    CHECK(s != NULL);
    if (s)
        fn(base, &s, &f);
    anvil_http_server_free(s);
    event_base_free(base);
}

static void upgrade_hand_off(struct event_base *base, anvil_http_server **ps, fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    CHECK(fd >= 0);
    send_all(fd, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                 "Upgrade: websocket\r\n\r\nframe-bytes");
    run_loop(base, 200);
    CHECK_INT(f->upgraded, 1);
    CHECK_INT(f->handled, 0);
    CHECK_STR(f->extra, "frame-bytes");
    CHECK_INT(anvil_http_server_connections(*ps), 0);
    /* The server forgot the socket without closing it: it is still ours. */
    CHECK(f->taken_fd >= 0);
    if (f->taken_fd >= 0) {
        CHECK(write(f->taken_fd, "x", 1) == 1);
        close(f->taken_fd);
    }
    close(fd);
}

static void overlong_path_keeps_the_connection_usable(struct event_base *base,
                                                      anvil_http_server **ps, fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    CHECK(fd >= 0);
    char req[4096];
    snprintf(req, sizeof req, "GET /%03000d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    send_all(fd, req);
    run_loop(base, 100);
    send_all(fd, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    run_loop(base, 100);
    /* The second request reaches the handler (it used to re-run the first). */
    CHECK_INT(f->handled, 1);
    CHECK_STR(f->last_path, "/next");
    close(fd);
}

static void deferred_answer_keeps_pipelined_order(struct event_base *base, anvil_http_server **ps,
                                                  fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    CHECK(fd >= 0);
    send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
    run_loop(base, 100);
    /* The pipelined request waits behind the deferred one; nothing is sent. */
    CHECK_INT(f->handled, 1);
    CHECK(f->pending != NULL);
    char buf[2048];
    CHECK_INT(read_now(fd, buf, sizeof buf), 0);
    if (f->pending)
        answer_later(f);
    run_loop(base, 100);
    CHECK_INT(f->handled, 2);
    CHECK_STR(f->last_path, "/now");
    read_now(fd, buf, sizeof buf);
    char *late = strstr(buf, "{\"late\":true}");
    char *now = strstr(buf, "{\"path\":\"/now\"}");
    CHECK(late != NULL && now != NULL && late < now);
    CHECK_INT(anvil_http_server_connections(*ps), 1);   /* kept alive */
    close(fd);
}

/* The server is freed first: the answer finds no connection. */
static void deferred_answer_after_the_server(struct event_base *base, anvil_http_server **ps,
                                             fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    run_loop(base, 100);
    CHECK(f->pending != NULL);
    anvil_http_server_free(*ps);
    *ps = NULL;
    if (f->pending)
        answer_later(f);
    close(fd);
}

/* The client hangs up first: the answer's write fails and the connection
 * goes. */
static void deferred_answer_after_the_client(struct event_base *base, anvil_http_server **ps,
                                             fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
    run_loop(base, 100);
    CHECK(f->pending != NULL);
    CHECK_INT(anvil_http_server_connections(*ps), 1);
    struct linger lg = { 1, 0 };   /* reset, so the answer's write fails */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    run_loop(base, 50);
    if (f->pending)
        answer_later(f);
    run_loop(base, 200);
    CHECK_INT(anvil_http_server_connections(*ps), 0);
}

/* Run the loop and read what fd receives until it closes, `until` (when
 * not NULL) has arrived, or `ms` pass. Returns the bytes read; *closed
 * says whether the server closed. Waits end on what they wait for, so a
 * slow (sanitizer) build only makes them slower, never wrong. */
static size_t collect_until(struct event_base *base, int fd, char *buf, size_t len, int ms,
                            bool *closed, const char *until)
{
    size_t got = 0;
    *closed = false;
    buf[0] = '\0';
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    for (int waited = 0; waited < ms && !*closed && !(until && strstr(buf, until)); waited += 10) {
        run_loop(base, 10);
        for (;;) {
            ssize_t n = got + 1 < len ? read(fd, buf + got, len - 1 - got) : -1;
            if (n == 0)
                *closed = true;
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
        }
    }
    fcntl(fd, F_SETFL, flags);
    buf[got] = '\0';
    return got;
}

static size_t collect(struct event_base *base, int fd, char *buf, size_t len, int ms, bool *closed)
{
    return collect_until(base, fd, buf, len, ms, closed, NULL);
}

/* Run the loop until *v reaches want (or ms pass). */
static void wait_for(struct event_base *base, const int *v, int want, int ms)
{
    for (int waited = 0; waited < ms && *v < want; waited += 10)
        run_loop(base, 10);
}

/* A connected socketpair end adopted by the server; the other end is ours.
 * The server's send buffer is small, so answers wait for us to read. */
static int adopt_pair(anvil_http_server *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (anvil_http_server_adopt(s, sv[0], "pair") != 0) {
        close(sv[1]);
        return -1;
    }
    return sv[1];
}

#define WS_UPGRADE(path, version) \
    "GET " path " HTTP/" version "\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n" \
    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"

/* Answers queued before an upgrade are written before the hand-off: the
 * upgrade waits while they cannot be sent, and the new owner of the socket
 * writes only after them. */
static void upgrade_waits_for_queued_answers(struct event_base *base, anvil_http_server **ps,
                                             fixture *f)
{
    int fd = adopt_pair(*ps);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    send_all(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
                 WS_UPGRADE("/ws", "1.1") "frame-bytes");
    wait_for(base, &f->handled, 2, 5000);
    run_loop(base, 100);
    /* Both requests are answered, but their answers do not fit in the
     * socket until we read: the upgrade has not happened yet. */
    CHECK_INT(f->handled, 2);
    CHECK_INT(f->upgraded, 0);
    static char buf[128 * 1024];
    size_t got = 0;
    bool closed = false;
    for (int i = 0; i < 200 && f->upgraded == 0; i++)
        got += collect(base, fd, buf + got, sizeof buf - got, 10, &closed);
    CHECK_INT(f->upgraded, 1);
    CHECK_INT(f->upgrade_at, 2);
    CHECK_STR(f->extra, "frame-bytes");
    /* The new owner writes on the socket: its bytes come after both answers. */
    if (f->taken_fd >= 0) {
        CHECK(write(f->taken_fd, "<ws>", 4) == 4);
        close(f->taken_fd);
        f->taken_fd = -1;
    }
    got += collect(base, fd, buf + got, sizeof buf - got, 5000, &closed);
    CHECK(closed);
    const char *first = strstr(buf, "HTTP/1.1 200 OK\r\n");
    const char *big = strstr(buf, "{\"path\":\"/big\"}");
    const char *after = strstr(buf, "{\"path\":\"/after\"}");
    const char *ws = strstr(buf, "<ws>");
    CHECK(first == buf);
    CHECK(big && after && ws && big < after && after < ws);
    CHECK(ws && ws + 4 == buf + got);   /* nothing after the new owner's bytes */
    CHECK_INT(anvil_http_server_connections(*ps), 0);
    close(fd);
}

/* Only a websocket upgrade on the WebSocket's path (a GET, HTTP/1.1) is
 * handed over; every other Upgrade is an ordinary request on a connection
 * that stays usable. */
static void only_websocket_upgrades_on_the_path_are_handed_over(struct event_base *base,
                                                                anvil_http_server **ps, fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    CHECK(fd >= 0);
    send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
                 "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                 WS_UPGRADE("/health", "1.1")
                 WS_UPGRADE("/ws/", "1.1")
                 "POST /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 "Content-Length: 0\r\n\r\n"
                 WS_UPGRADE("/ws", "1.0")
                 WS_UPGRADE("/ws?token=1", "1.1"));
    char buf[8192];
    bool closed;
    size_t got = 0;
    for (int i = 0; i < 500 && f->upgraded == 0; i++)
        got += collect(base, fd, buf + got, sizeof buf - got, 10, &closed);
    CHECK_INT(f->handled, 6);
    CHECK_INT(f->upgraded, 1);
    CHECK_INT(f->upgrade_at, 6);
    CHECK_STR(f->last_path, "/ws");
    /* Six ordinary answers, in order, then the hand-off. */
    const char *p = buf;
    static const char *const paths[] = { "/health", "/ws", "/health", "/ws/", "/ws", "/ws" };
    for (size_t i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"path\":\"%s\"}", paths[i]);
        const char *at = p ? strstr(p, want) : NULL;
        CHECK(at != NULL);
        p = at ? at + strlen(want) : NULL;
    }
    CHECK(strstr(buf, "Connection: close") == NULL);
    if (f->taken_fd >= 0)
        close(f->taken_fd);
    close(fd);
}

/* Without an upgrade callback nothing is handed over at all. */
static void no_upgrade_callback_means_ordinary_requests(struct event_base *base,
                                                        anvil_http_server **ps, fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    send_all(fd, WS_UPGRADE("/ws", "1.1"));
    char buf[2048];
    bool closed;
    collect_until(base, fd, buf, sizeof buf, 5000, &closed, "{\"path\":\"/ws\"}");
    CHECK_INT(f->handled, 1);
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK(!closed);
    close(fd);
}

/* maxHttpConnections: the connection past the cap is answered 503 (the
 * reject callback's JSON) and closed; closing one makes room again. */
static void connection_cap(struct event_base *base, anvil_http_server **ps, fixture *f)
{
    int port = anvil_http_server_port(*ps);
    int a = connect_to(port), b = connect_to(port);
    char buf[2048];
    bool closed;
    send_all(a, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    send_all(b, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    collect_until(base, a, buf, sizeof buf, 5000, &closed, "{\"path\":\"/a\"}");
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    collect_until(base, b, buf, sizeof buf, 5000, &closed, "{\"path\":\"/b\"}");
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK_INT(anvil_http_server_connections(*ps), 2);

    int c = connect_to(port);
    send_all(c, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    collect(base, c, buf, sizeof buf, 5000, &closed);
    CHECK(strstr(buf, "HTTP/1.1 503 Service Unavailable\r\n") == buf);
    CHECK(strstr(buf, "Connection: close\r\n") != NULL);
    CHECK(strstr(buf, "{\"error\":\"Too many HTTP connections (maxHttpConnections 2)\"}") != NULL);
    CHECK(closed);
    CHECK_INT(f->handled, 2);   /* the refused request never reached the handler */
    close(c);

    /* An adopted socket counts like an accepted one. */
    int d = adopt_pair(*ps);
    collect(base, d, buf, sizeof buf, 5000, &closed);
    CHECK(strstr(buf, "HTTP/1.1 503 ") == buf);
    close(d);

    /* Room again once a goes (and the refused ones): wait until the
     * server has seen them close rather than for a fixed time. */
    close(a);
    for (int i = 0; i < 500 && anvil_http_server_connections(*ps) > 1; i++)
        run_loop(base, 10);
    CHECK_INT(anvil_http_server_connections(*ps), 1);
    int e = connect_to(port);
    send_all(e, "GET /e HTTP/1.1\r\nHost: x\r\n\r\n");
    collect_until(base, e, buf, sizeof buf, 5000, &closed, "{\"path\":\"/e\"}");
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK_STR(f->last_path, "/e");
    close(b);
    close(e);
}

/* Between requests only whole CRLFs are skipped: a bare LF or CR there
 * is refused like one in a head, and nothing after it is read. */
static void stray_line_ends_between_requests(struct event_base *base, anvil_http_server **ps,
                                             fixture *f)
{
    static const struct { const char *sep; int handled; const char *why; } cases[] = {
        { "\r\n\r\n", 2, NULL },
        { "\n", 1, "lines must end with CRLF, not a bare LF" },
        { "\r\n\n", 1, "lines must end with CRLF, not a bare LF" },
        { "\rG", 1, "a CR must be followed by LF" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->handled = 0;
        int fd = connect_to(anvil_http_server_port(*ps));
        char req[256];
        snprintf(req, sizeof req, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n%sGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                 cases[i].sep);
        send_all(fd, req);
        char buf[4096];
        bool closed;
        collect_until(base, fd, buf, sizeof buf, 5000, &closed,
                      cases[i].why ? NULL : "{\"path\":\"/b\"}");
        CHECK_INT(f->handled, cases[i].handled);
        if (cases[i].why) {
            char want[128];
            snprintf(want, sizeof want, "HTTP/1.1 400 Bad Request\r\n");
            CHECK(strstr(buf, want) != NULL);
            snprintf(want, sizeof want, "{\"error\":\"%s\"}", cases[i].why);
            CHECK(strstr(buf, want) != NULL);
            CHECK(closed);
        } else {
            CHECK(!closed);
        }
        close(fd);
    }
}

/* A last chunk without its final CRLF, then a pipelined request: the
 * request is not taken for trailers (and answered), the body is refused. */
static void request_is_never_swallowed_as_trailers(struct event_base *base,
                                                   anvil_http_server **ps, fixture *f)
{
    int fd = connect_to(anvil_http_server_port(*ps));
    send_all(fd, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "2\r\n{}\r\n0\r\n"
                 "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[4096];
    bool closed;
    collect(base, fd, buf, sizeof buf, 5000, &closed);
    CHECK_INT(f->handled, 0);
    CHECK(strstr(buf, "HTTP/1.1 400 Bad Request\r\n") == buf);
    CHECK(strstr(buf, "{\"error\":\"Malformed chunked body\"}") != NULL);
    CHECK(strstr(buf + 1, "HTTP/1.1") == NULL);   /* one answer only */
    CHECK(closed);
    close(fd);
}

int main(void)
{
    with_server(true, upgrade_hand_off);
    with_server(false, overlong_path_keeps_the_connection_usable);
    with_server(false, deferred_answer_keeps_pipelined_order);
    with_server(false, deferred_answer_after_the_server);
    with_server(false, deferred_answer_after_the_client);
    with_server(true, upgrade_waits_for_queued_answers);
    with_server(true, only_websocket_upgrades_on_the_path_are_handed_over);
    with_server(false, no_upgrade_callback_means_ordinary_requests);
    with_server(false, stray_line_ends_between_requests);
    with_server(false, request_is_never_swallowed_as_trailers);
    g_max_connections = 2;
    with_server(false, connection_cap);
    g_max_connections = 0;
    UNIT_DONE();
}
