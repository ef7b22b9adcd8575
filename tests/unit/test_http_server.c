/*
 * tests/unit/test_http_server.c — connection lifecycle of runtime/http/http_server.c
 * with callbacks no HTTP route offers yet (the WebSocket upgrade hand-off),
 * on a real loopback socket and event loop.
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
    f->taken_fd = fd;
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

static anvil_http_server *start(struct event_base *base, fixture *f, bool with_upgrade)
{
    anvil_http_options opt = {
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

int main(void)
{
    with_server(true, upgrade_hand_off);
    with_server(false, overlong_path_keeps_the_connection_usable);
    with_server(false, deferred_answer_keeps_pipelined_order);
    with_server(false, deferred_answer_after_the_server);
    with_server(false, deferred_answer_after_the_client);
    UNIT_DONE();
}
