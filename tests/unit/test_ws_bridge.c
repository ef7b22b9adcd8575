/*
 * tests/unit/test_ws_bridge.c — runtime/ws/ws_bridge.c end to end: our HTTP
 * server hands upgrade requests to the bridge, and a minimal blocking
 * WebSocket client written here (handshake, masked and fragmented frames,
 * frame reading) talks to it over loopback from a second thread.
 *
 * The main thread runs the event loop (server, bridge callbacks); the
 * client thread does every CHECK while the loop runs, and talks to the
 * callbacks only through `fx` under its mutex. Every socket read has a
 * timeout and every wait a deadline, so a broken bridge fails the test
 * instead of hanging it.
 *
 * The bridge's own asserts (lock held, lws thread, core thread) are active
 * in the Debug build, so this also checks that every path keeps them.
 *
 * `test_ws_bridge mem N` instead opens N idle connections and prints the
 * heap and RSS growth per connection (run it without sanitizers).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "http_server.h"
#include "unit.h"
#include "ws_bridge.h"

#define MAX_PAYLOAD (256 * 1024)
#define MAX_CONNS 60
#define MAX_QUEUED (1024 * 1024)
#define N_CONCURRENT 50

/* RFC 6455 section 1.3 sample. */
static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/* ------------------------------------------------------------------ */
/* Server side (event loop thread)                                      */

typedef struct fixture {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* written by callbacks, read by the client thread */
    int opens, messages, closes;
    uint64_t last_open_id;
    char last_open_path[64];
    char last_open_header[64];
    char last_open_query[64];
    size_t last_message_len;
    char last_message[64];
    uint64_t last_close_id;
    int last_close_code;
    char last_close_reason[128];
    size_t connections;           /* anvil_ws_connections, sampled on the loop */
    int send_failures;
    int flood_sent;               /* messages queued before anvil_ws_send refused */
    int flood_done;
    /* loop-thread only */
    anvil_ws_bridge *bridge;
    struct event_base *base;
    int port;
    bool free_requested;
    bool freed;
} fixture;

static fixture fx;

static void handler(void *ctx, const anvil_http_request *req, anvil_http_response *res)
{
    (void)ctx;
    (void)req;
    res->status = 404;
    evbuffer_add_printf(res->body, "{\"ok\":false,\"error\":{\"code\":\"NotFound\"}}");
}

static void reject(void *ctx, const anvil_http_head *head, anvil_error_code code, int http_status,
                   const char *message, int64_t max_bytes, anvil_http_response *res)
{
    (void)ctx;
    (void)head;
    (void)code;
    (void)max_bytes;
    res->status = http_status;
    evbuffer_add_printf(res->body, "{\"ok\":false,\"error\":{\"message\":\"%s\"}}", message);
}

static void on_open(void *ctx, uint64_t id, const anvil_http_request *req)
{
    fixture *f = ctx;
    const char *h = anvil_http_header_get(req->head, "X-Test");
    pthread_mutex_lock(&f->mu);
    f->opens++;
    f->last_open_id = id;
    snprintf(f->last_open_path, sizeof f->last_open_path, "%s", req->path);
    snprintf(f->last_open_header, sizeof f->last_open_header, "%s", h ? h : "");
    snprintf(f->last_open_query, sizeof f->last_open_query, "%s", req->query ? req->query : "");
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static void on_message(void *ctx, uint64_t id, const char *data, size_t len)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->messages++;
    f->last_message_len = len;
    snprintf(f->last_message, sizeof f->last_message, "%.*s", (int)(len < 63 ? len : 63), data);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);

    if (len == 8 && memcmp(data, "close-me", 8) == 0) {
        anvil_ws_close(f->bridge, id, 4001, "bye now");
        return;
    }
    if (len == 5 && memcmp(data, "flood", 5) == 0) {
        /* The client does not read: the backlog must be refused once it
         * passes max_queued_bytes_per_conn (plus what the kernel took). */
        static char chunk[64 * 1024];
        memset(chunk, 'f', sizeof chunk);
        int sent = 0;
        while (sent < 2000 && anvil_ws_send(f->bridge, id, chunk, sizeof chunk) == 0)
            sent++;
        pthread_mutex_lock(&f->mu);
        f->flood_sent = sent;
        f->flood_done = 1;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->mu);
        return;
    }
    if (len == 5 && memcmp(data, "sleep", 5) == 0) {
        /* A slow core: the lws thread keeps reading until the undelivered
         * input passes max_payload, then pauses the socket. */
        struct timespec ts = { 0, 300 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (len > 4 && memcmp(data, "big:", 4) == 0) {
        /* Reply with a message much larger than the send chunk. */
        size_t n = (size_t)strtoul(data + 4, NULL, 10);
        char *big = malloc(n);
        if (big) {
            for (size_t i = 0; i < n; i++)
                big[i] = (char)('a' + i % 26);
            if (anvil_ws_send(f->bridge, id, big, n) != 0) {
                pthread_mutex_lock(&f->mu);
                f->send_failures++;
                pthread_mutex_unlock(&f->mu);
            }
            free(big);
        }
        return;
    }
    if (anvil_ws_send(f->bridge, id, data, len) != 0) {
        pthread_mutex_lock(&f->mu);
        f->send_failures++;
        pthread_mutex_unlock(&f->mu);
    }
}

static void on_close(void *ctx, uint64_t id, int code, const char *reason)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->closes++;
    f->last_close_id = id;
    f->last_close_code = code;
    snprintf(f->last_close_reason, sizeof f->last_close_reason, "%s", reason);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Samples the connection count for the client thread, and frees the
 * bridge when the client thread asks (bridge_free must run on the loop). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fixture *f = arg;
    size_t n = anvil_ws_connections(f->bridge);
    pthread_mutex_lock(&f->mu);
    f->connections = n;
    bool free_now = f->free_requested && !f->freed;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    if (free_now) {
        anvil_ws_bridge_free(f->bridge);
        pthread_mutex_lock(&f->mu);
        f->bridge = NULL;
        f->freed = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->mu);
    }
}

/* ------------------------------------------------------------------ */
/* Client side (client thread)                                          */

static void ms_from_now(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait (bounded) until *field reaches at least want. */
static bool wait_int_at_least(const int *field, int want, int ms)
{
    struct timespec dl;
    ms_from_now(&dl, ms);
    pthread_mutex_lock(&fx.mu);
    int rc = 0;
    while (*field < want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&fx.cond, &fx.mu, &dl);
    bool ok = *field >= want;
    pthread_mutex_unlock(&fx.mu);
    return ok;
}

static bool wait_connections(size_t want, int ms)
{
    struct timespec dl;
    ms_from_now(&dl, ms);
    pthread_mutex_lock(&fx.mu);
    int rc = 0;
    while (fx.connections != want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&fx.cond, &fx.mu, &dl);
    bool ok = fx.connections == want;
    pthread_mutex_unlock(&fx.mu);
    return ok;
}

static int get_int(const int *field)
{
    pthread_mutex_lock(&fx.mu);
    int v = *field;
    pthread_mutex_unlock(&fx.mu);
    return v;
}

static int cl_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_full(int fd, void *data, size_t len)
{
    char *p = data;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read an HTTP response head (and, for non-101, the body by
 * Content-Length) into buf. Returns the status or -1. */
static int read_http_response(int fd, char *buf, size_t cap, char *body, size_t body_cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        if (read_full(fd, buf + len, 1) != 0)
            return -1;
        len++;
        buf[len] = '\0';
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    if (body && body_cap) {
        body[0] = '\0';
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl) {
            size_t n = (size_t)strtoul(cl + 17, NULL, 10);
            if (n < body_cap && read_full(fd, body, n) == 0)
                body[n] = '\0';
        }
    }
    return status;
}

static bool has_header(const char *resp, const char *line)
{
    return strcasestr(resp, line) != NULL;
}

static int cl_request_upgrade(int fd, const char *path, const char *extra_headers)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive, Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: %s\r\n%s\r\n",
                     path, ws_key, extra_headers ? extra_headers : "");
    return write_all(fd, req, (size_t)n);
}

/* Connect and complete the handshake; returns fd or -1. */
static int cl_open(int port, char *resp, size_t cap)
{
    char local[2048];
    if (!resp) {
        resp = local;
        cap = sizeof local;
    }
    int fd = cl_connect(port, 5000);
    if (fd < 0)
        return -1;
    if (cl_request_upgrade(fd, "/", NULL) != 0 ||
        read_http_response(fd, resp, cap, NULL, 0) != 101) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cl_send_frame(int fd, int opcode, bool fin, const void *data, size_t len)
{
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    memcpy(hdr + h, mask, 4);
    h += 4;
    unsigned char *buf = malloc(h + len + 1);
    if (!buf)
        return -1;
    memcpy(buf, hdr, h);
    const unsigned char *src = data;
    for (size_t i = 0; i < len; i++)
        buf[h + i] = src[i] ^ mask[i % 4];
    int rc = write_all(fd, buf, h + len);
    free(buf);
    return rc;
}

static int cl_send_text(int fd, const char *text)
{
    return cl_send_frame(fd, 1, true, text, strlen(text));
}

static int cl_send_close(int fd, int code, const char *reason)
{
    unsigned char p[125];
    size_t rl = strlen(reason);
    if (rl > 123)
        rl = 123;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)code;
    memcpy(p + 2, reason, rl);
    return cl_send_frame(fd, 8, true, p, rl + 2);
}

typedef struct cl_frame {
    int opcode;
    bool fin;
    unsigned char *data;          /* malloc'd, NUL-terminated */
    size_t len;
} cl_frame;

/* Read one frame. Returns 0 or -1 (timeout, EOF, bad frame). */
static int cl_read_frame(int fd, cl_frame *f)
{
    unsigned char h[2];
    f->data = NULL;
    if (read_full(fd, h, 2) != 0)
        return -1;
    f->fin = (h[0] & 0x80) != 0;
    f->opcode = h[0] & 0x0f;
    if (h[1] & 0x80)
        return -1; /* servers must not mask */
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        unsigned char e[2];
        if (read_full(fd, e, 2) != 0)
            return -1;
        len = (uint64_t)e[0] << 8 | e[1];
    } else if (len == 127) {
        unsigned char e[8];
        if (read_full(fd, e, 8) != 0)
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | e[i];
    }
    if (len > 64 * 1024 * 1024)
        return -1;
    f->len = (size_t)len;
    f->data = malloc(f->len + 1);
    if (!f->data || read_full(fd, f->data, f->len) != 0) {
        free(f->data);
        f->data = NULL;
        return -1;
    }
    f->data[f->len] = '\0';
    return 0;
}

typedef struct cl_msg {
    int opcode;                   /* 1 text, 8 close, -1 error/EOF */
    char *data;
    size_t len;
    int close_code;
    char close_reason[128];
    int pings;
    int fragments;
} cl_msg;

/* Read the next text message (reassembled) or close frame; answers pings
 * unless `answer_pings` is false. */
static void cl_read_msg(int fd, cl_msg *m, bool answer_pings)
{
    memset(m, 0, sizeof *m);
    m->opcode = -1;
    size_t cap = 0;
    for (;;) {
        cl_frame f;
        if (cl_read_frame(fd, &f) != 0)
            return;
        if (f.opcode == 9) {
            m->pings++;
            if (answer_pings)
                cl_send_frame(fd, 10, true, f.data, f.len);
            free(f.data);
            continue;
        }
        if (f.opcode == 10) {
            free(f.data);
            continue;
        }
        if (f.opcode == 8) {
            m->opcode = 8;
            if (f.len >= 2) {
                m->close_code = f.data[0] << 8 | f.data[1];
                snprintf(m->close_reason, sizeof m->close_reason, "%.*s", (int)(f.len - 2),
                         (const char *)f.data + 2);
            }
            free(f.data);
            return;
        }
        m->fragments++;
        if (m->len + f.len + 1 > cap) {
            cap = (m->len + f.len + 1) * 2;
            char *nd = realloc(m->data, cap);
            if (!nd) {
                free(f.data);
                return;
            }
            m->data = nd;
        }
        memcpy(m->data + m->len, f.data, f.len);
        m->len += f.len;
        m->data[m->len] = '\0';
        free(f.data);
        if (f.fin) {
            m->opcode = 1;
            return;
        }
    }
}

/* Read until a close frame; answer it; return its code (or -1). */
static int cl_expect_close(int fd, char *reason, size_t cap)
{
    for (int i = 0; i < 16; i++) {
        cl_msg m;
        cl_read_msg(fd, &m, true);
        free(m.data);
        if (m.opcode == 8) {
            if (reason)
                snprintf(reason, cap, "%s", m.close_reason);
            cl_send_close(fd, m.close_code ? m.close_code : 1000, "");
            return m.close_code;
        }
        if (m.opcode < 0)
            return -1;
    }
    return -1;
}

/* True when the server closed the TCP connection (EOF) in time. */
static bool cl_sees_eof(int fd)
{
    char buf[256];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

/* ------------------------------------------------------------------ */
/* The checks                                                           */

static void test_plain_and_refused(int port)
{
    char resp[2048], body[512];
    /* A plain request goes to the ordinary handler. */
    int fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(write_all(fd, req, sizeof req - 1) == 0);
        CHECK_INT(read_http_response(fd, resp, sizeof resp, body, sizeof body), 404);
        close(fd);
    }
    /* Upgrade without a key: 400 from the bridge. */
    fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                           "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n";
        CHECK(write_all(fd, req, sizeof req - 1) == 0);
        CHECK_INT(read_http_response(fd, resp, sizeof resp, body, sizeof body), 400);
        CHECK(has_header(resp, "X-Smithers-API-Version: v1"));
        CHECK(strstr(body, "\"ok\":false") != NULL);
        close(fd);
    }
    /* Not a WebSocket upgrade at all: the HTTP server ignores it (RFC 9110
     * 7.8) and its own handler answers (404 in this test), so the bridge
     * never sees it. */
    fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                           "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
        CHECK(write_all(fd, req, sizeof req - 1) == 0);
        CHECK_INT(read_http_response(fd, resp, sizeof resp, body, sizeof body), 404);
        close(fd);
    }
    /* Wrong version: 400 naming the supported one. */
    fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                         "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: %s\r\n\r\n", ws_key);
        CHECK(write_all(fd, req, (size_t)n) == 0);
        CHECK_INT(read_http_response(fd, resp, sizeof resp, body, sizeof body), 400);
        CHECK(has_header(resp, "Sec-WebSocket-Version: 13"));
        close(fd);
    }
    CHECK_INT(get_int(&fx.opens), 0);
}

static void test_handshake_echo_fragments(int port)
{
    char resp[2048];
    int fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(cl_request_upgrade(fd, "/?token=abc", "X-Test: seen\r\n") == 0);
    CHECK_INT(read_http_response(fd, resp, sizeof resp, NULL, 0), 101);
    CHECK(has_header(resp, "X-Smithers-API-Version: v1"));
    char accept_line[128];
    snprintf(accept_line, sizeof accept_line, "Sec-WebSocket-Accept: %s", ws_accept);
    CHECK(has_header(resp, accept_line));
    CHECK(wait_int_at_least(&fx.opens, 1, 5000));
    pthread_mutex_lock(&fx.mu);
    CHECK_STR(fx.last_open_path, "/");
    CHECK_STR(fx.last_open_query, "token=abc");
    CHECK_STR(fx.last_open_header, "seen");
    uint64_t id = fx.last_open_id;
    pthread_mutex_unlock(&fx.mu);

    /* Echo. */
    cl_msg m;
    CHECK(cl_send_text(fd, "hello") == 0);
    cl_read_msg(fd, &m, true);
    CHECK_INT(m.opcode, 1);
    CHECK_STR(m.data, "hello");
    free(m.data);

    /* One message in three fragments arrives once, whole. */
    int before = get_int(&fx.messages);
    CHECK(cl_send_frame(fd, 1, false, "abc", 3) == 0);
    CHECK(cl_send_frame(fd, 0, false, "def", 3) == 0);
    CHECK(cl_send_frame(fd, 0, true, "ghi", 3) == 0);
    cl_read_msg(fd, &m, true);
    CHECK_INT(m.opcode, 1);
    CHECK_STR(m.data, "abcdefghi");
    free(m.data);
    pthread_mutex_lock(&fx.mu);
    CHECK_INT(fx.messages, before + 1);
    CHECK_INT(fx.last_message_len, 9);
    CHECK_STR(fx.last_message, "abcdefghi");
    pthread_mutex_unlock(&fx.mu);

    /* A large inbound message (many lws rx chunks) and a large outbound
     * one (several frames). */
    size_t big = 200 * 1024;
    char *payload = malloc(big + 1);
    CHECK(payload != NULL);
    if (payload) {
        for (size_t i = 0; i < big; i++)
            payload[i] = (char)('A' + i % 26);
        payload[big] = '\0';
        CHECK(cl_send_frame(fd, 1, true, payload, big) == 0);
        cl_read_msg(fd, &m, true);
        CHECK_INT(m.opcode, 1);
        CHECK_INT(m.len, big);
        CHECK(m.data && memcmp(m.data, payload, big) == 0);
        free(m.data);
        free(payload);
    }
    CHECK(cl_send_text(fd, "big:100000") == 0);
    cl_read_msg(fd, &m, true);
    CHECK_INT(m.opcode, 1);
    CHECK_INT(m.len, 100000);
    CHECK(m.fragments > 1);
    CHECK(m.data && m.data[0] == 'a' && m.data[99999] == (char)('a' + 99999 % 26));
    free(m.data);

    /* Client-initiated close reaches on_close with the client's code. */
    int closes = get_int(&fx.closes);
    CHECK(cl_send_close(fd, 1000, "done") == 0);
    cl_read_msg(fd, &m, true);
    free(m.data);
    CHECK_INT(m.opcode, 8);
    CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
    pthread_mutex_lock(&fx.mu);
    CHECK(fx.last_close_id == id);
    CHECK_INT(fx.last_close_code, 1000);
    CHECK_STR(fx.last_close_reason, "done");
    pthread_mutex_unlock(&fx.mu);
    CHECK(cl_sees_eof(fd));
    close(fd);
}

/* A frame sent right behind the upgrade request, in the same write, reaches
 * the HTTP server as bytes past the head and must be handed on to lws. */
static void test_pipelined_frame(int port)
{
    int fd = cl_connect(port, 5000);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", ws_key);
    /* Frame "early", masked with 0x12345678. */
    unsigned char frame[] = { 0x81, 0x85, 0x12, 0x34, 0x56, 0x78,
                              'e' ^ 0x12, 'a' ^ 0x34, 'r' ^ 0x56, 'l' ^ 0x78, 'y' ^ 0x12 };
    memcpy(req + n, frame, sizeof frame);
    CHECK(write_all(fd, req, (size_t)n + sizeof frame) == 0);
    char resp[1024];
    CHECK_INT(read_http_response(fd, resp, sizeof resp, NULL, 0), 101);
    cl_msg m;
    cl_read_msg(fd, &m, true);
    CHECK_INT(m.opcode, 1);
    CHECK_STR(m.data, "early");
    free(m.data);
    cl_send_close(fd, 1000, "");
    CHECK(cl_sees_eof(fd));
    close(fd);
}

static void test_too_large(int port)
{
    /* One frame over max_payload. */
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        int closes = get_int(&fx.closes);
        size_t n = MAX_PAYLOAD + 1;
        char *p = calloc(1, n);
        memset(p, 'x', n);
        /* The server may close before reading it all: ignore send errors. */
        cl_send_frame(fd, 1, true, p, n);
        free(p);
        char reason[128] = "";
        CHECK_INT(cl_expect_close(fd, reason, sizeof reason), 1009);
        CHECK(strstr(reason, "maxPayload") != NULL);
        CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
        pthread_mutex_lock(&fx.mu);
        CHECK_INT(fx.last_close_code, 1009);
        pthread_mutex_unlock(&fx.mu);
        close(fd);
    }
    /* Fragments that only together exceed it. */
    fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        int messages = get_int(&fx.messages);
        int closes = get_int(&fx.closes);
        size_t n = 64 * 1024;
        char *p = calloc(1, n);
        memset(p, 'y', n);
        bool first = true;
        for (int i = 0; i < 5; i++) {
            if (cl_send_frame(fd, first ? 1 : 0, i == 4, p, n) != 0)
                break;
            first = false;
        }
        free(p);
        CHECK_INT(cl_expect_close(fd, NULL, 0), 1009);
        CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
        CHECK_INT(get_int(&fx.messages), messages);
        pthread_mutex_lock(&fx.mu);
        CHECK_INT(fx.last_close_code, 1009);
        pthread_mutex_unlock(&fx.mu);
        close(fd);
    }
}

static void test_server_close(int port)
{
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    int closes = get_int(&fx.closes);
    /* A message queued before the close is still delivered first. */
    CHECK(cl_send_text(fd, "close-me") == 0);
    char reason[128] = "";
    CHECK_INT(cl_expect_close(fd, reason, sizeof reason), 4001);
    CHECK_STR(reason, "bye now");
    CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
    pthread_mutex_lock(&fx.mu);
    CHECK_INT(fx.last_close_code, 4001);
    pthread_mutex_unlock(&fx.mu);
    CHECK(cl_sees_eof(fd));
    close(fd);
}

static void test_backpressure(int port)
{
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(cl_send_text(fd, "flood") == 0);
    CHECK(wait_int_at_least(&fx.flood_done, 1, 10000));
    int sent = get_int(&fx.flood_sent);
    /* Refused well before 2000 * 64 KiB; at least the queue limit went in. */
    CHECK(sent >= MAX_QUEUED / (64 * 1024));
    CHECK(sent < 2000);
    int closes = get_int(&fx.closes);
    close(fd);
    CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
}

static void test_slow_core(int port)
{
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    enum { N = 40, SZ = 16 * 1024 };
    char *p = malloc(SZ + 1);
    CHECK(cl_send_text(fd, "sleep") == 0);
    for (int i = 0; i < N && p; i++) {
        memset(p, 'a' + i % 26, SZ);
        p[SZ] = '\0';
        int n = snprintf(p, 16, "%d:", i);
        p[n] = 'x';
        CHECK(cl_send_frame(fd, 1, true, p, SZ) == 0);
    }
    free(p);
    cl_msg m;
    cl_read_msg(fd, &m, true);
    CHECK_STR(m.data, "sleep");
    free(m.data);
    int in_order = 0;
    for (int i = 0; i < N; i++) {
        char want[16];
        int n = snprintf(want, sizeof want, "%d:", i);
        cl_read_msg(fd, &m, true);
        if (m.opcode == 1 && m.len == SZ && memcmp(m.data, want, (size_t)n) == 0)
            in_order++;
        free(m.data);
    }
    CHECK_INT(in_order, N);
    cl_send_close(fd, 1000, "");
    CHECK(cl_sees_eof(fd));
    close(fd);
}

static void test_concurrent(int port)
{
    int fds[N_CONCURRENT];
    int opens = get_int(&fx.opens);
    /* All handshakes in flight at once. */
    for (int i = 0; i < N_CONCURRENT; i++) {
        fds[i] = cl_connect(port, 5000);
        CHECK(fds[i] >= 0);
        if (fds[i] >= 0)
            CHECK(cl_request_upgrade(fds[i], "/", NULL) == 0);
    }
    int ok = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        char resp[1024];
        if (fds[i] >= 0 && read_http_response(fds[i], resp, sizeof resp, NULL, 0) == 101)
            ok++;
    }
    CHECK_INT(ok, N_CONCURRENT);
    CHECK(wait_int_at_least(&fx.opens, opens + N_CONCURRENT, 5000));
    CHECK(wait_connections(N_CONCURRENT, 5000));
    for (int i = 0; i < N_CONCURRENT; i++) {
        char text[32];
        snprintf(text, sizeof text, "client-%d", i);
        if (fds[i] >= 0)
            CHECK(cl_send_text(fds[i], text) == 0);
    }
    int echoed = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        char text[32];
        snprintf(text, sizeof text, "client-%d", i);
        cl_msg m;
        if (fds[i] < 0)
            continue;
        cl_read_msg(fds[i], &m, true);
        if (m.opcode == 1 && m.data && strcmp(m.data, text) == 0)
            echoed++;
        free(m.data);
    }
    CHECK_INT(echoed, N_CONCURRENT);
    int closes = get_int(&fx.closes);
    for (int i = 0; i < N_CONCURRENT; i++) {
        if (fds[i] >= 0) {
            cl_send_close(fds[i], 1000, "");
            close(fds[i]);
        }
    }
    CHECK(wait_int_at_least(&fx.closes, closes + N_CONCURRENT, 5000));
    CHECK(wait_connections(0, 5000));
}

static void test_max_connections(int port)
{
    int fds[MAX_CONNS];
    /* Handshakes not read yet still count: send all, read none. */
    for (int i = 0; i < MAX_CONNS; i++) {
        fds[i] = cl_connect(port, 5000);
        CHECK(fds[i] >= 0);
        if (fds[i] >= 0)
            CHECK(cl_request_upgrade(fds[i], "/", NULL) == 0);
    }
    CHECK(wait_connections(MAX_CONNS, 5000));
    char resp[2048], body[512];
    int extra = cl_connect(port, 5000);
    CHECK(extra >= 0);
    if (extra >= 0) {
        CHECK(cl_request_upgrade(extra, "/", NULL) == 0);
        CHECK_INT(read_http_response(extra, resp, sizeof resp, body, sizeof body), 503);
        CHECK(has_header(resp, "X-Smithers-API-Version: v1"));
        CHECK(has_header(resp, "Content-Type: application/json"));
        CHECK(body[0] == '{');
        close(extra);
    }
    int ok = 0;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (fds[i] >= 0 && read_http_response(fds[i], resp, sizeof resp, NULL, 0) == 101)
            ok++;
    }
    CHECK_INT(ok, MAX_CONNS);
    /* Abrupt disconnects (no close frame) are noticed too: 1006. */
    int closes = get_int(&fx.closes);
    for (int i = 0; i < MAX_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CHECK(wait_int_at_least(&fx.closes, closes + MAX_CONNS, 5000));
    pthread_mutex_lock(&fx.mu);
    CHECK_INT(fx.last_close_code, 1006);
    pthread_mutex_unlock(&fx.mu);
    CHECK(wait_connections(0, 5000));
    /* A slot is free again. */
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        cl_send_close(fd, 1000, "");
        close(fd);
    }
    CHECK(wait_connections(0, 5000));
}

static void test_ping(int port)
{
    /* ping_interval_s is 1: an idle connection sees a PING; one that never
     * answers is hung up on (2 * 1 + 1 s without valid traffic). */
    int fd = cl_open(port, NULL, 0);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    struct timeval tv = { 6, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cl_frame f;
    CHECK(cl_read_frame(fd, &f) == 0);
    CHECK_INT(f.opcode, 9);
    free(f.data);
    int closes = get_int(&fx.closes);
    /* Do not answer: expect the server to drop us. */
    bool dropped = false;
    for (int i = 0; i < 8; i++) {
        if (cl_read_frame(fd, &f) != 0) {
            dropped = true;
            break;
        }
        int op = f.opcode;
        free(f.data);
        if (op == 8) {
            dropped = true;
            break;
        }
    }
    CHECK(dropped);
    CHECK(wait_int_at_least(&fx.closes, closes + 1, 5000));
    close(fd);
}

static void test_free_with_open_connections(int port)
{
    enum { N = 3 };
    int fds[N];
    int opens = get_int(&fx.opens);
    for (int i = 0; i < N; i++) {
        fds[i] = cl_open(port, NULL, 0);
        CHECK(fds[i] >= 0);
    }
    CHECK(wait_int_at_least(&fx.opens, opens + N, 5000));
    /* One more in the middle of its handshake. */
    int half = cl_connect(port, 5000);
    CHECK(half >= 0);
    const char partial[] = "GET / HTTP/1.1\r\nHost: x\r\n";
    if (half >= 0)
        CHECK(write_all(half, partial, sizeof partial - 1) == 0);

    pthread_mutex_lock(&fx.mu);
    fx.free_requested = true;
    pthread_mutex_unlock(&fx.mu);
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0)
            continue;
        char reason[128] = "";
        CHECK_INT(cl_expect_close(fds[i], reason, sizeof reason), 1001);
        close(fds[i]);
    }
    struct timespec dl;
    ms_from_now(&dl, 5000);
    pthread_mutex_lock(&fx.mu);
    int rc = 0;
    while (!fx.freed && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&fx.cond, &fx.mu, &dl);
    CHECK(fx.freed);
    pthread_mutex_unlock(&fx.mu);
    if (half >= 0)
        close(half);
}

static void *client_main(void *arg)
{
    (void)arg;
    int port = fx.port;
    test_plain_and_refused(port);
    test_handshake_echo_fragments(port);
    test_pipelined_frame(port);
    test_too_large(port);
    test_server_close(port);
    test_backpressure(port);
    test_slow_core(port);
    test_concurrent(port);
    test_max_connections(port);
    test_ping(port);
    pthread_mutex_lock(&fx.mu);
    CHECK_INT(fx.send_failures, 0);
    pthread_mutex_unlock(&fx.mu);
    test_free_with_open_connections(port);
    event_base_loopexit(fx.base, NULL);
    return NULL;
}

/* ------------------------------------------------------------------ */

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fprintf(stderr, "test_ws_bridge: watchdog fired\n");
    event_base_loopbreak(arg);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

typedef struct mem_job {
    int port, n;
    int *fds;
    int opened;
    size_t heap_before, heap_after;
    long rss_before, rss_after;
} mem_job;

static void *mem_client(void *arg)
{
    mem_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        j->fds[i] = cl_connect(j->port, 5000);
        if (j->fds[i] >= 0 && cl_request_upgrade(j->fds[i], "/", NULL) == 0) {
            char resp[1024];
            if (read_http_response(j->fds[i], resp, sizeof resp, NULL, 0) == 101)
                j->opened++;
        }
    }
    wait_int_at_least(&fx.opens, j->n, 10000);
    /* Let the lws thread settle (handshake ah released). */
    struct timespec ts = { 1, 0 };
    nanosleep(&ts, NULL);
    event_base_loopexit(fx.base, NULL);
    return NULL;
}

static int mem_mode(int n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * n + 100)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    anvil_ws_options o = { .max_payload = 1 << 20, .max_connections = (size_t)n + 10,
                           .ping_interval_s = 30 };
    anvil_ws_callbacks cb = { .on_open = on_open, .on_message = on_message, .on_close = on_close,
                              .ctx = &fx };
    char err[256];
    fx.bridge = anvil_ws_bridge_new(fx.base, &o, &cb, err, sizeof err);
    anvil_http_options ho = { .max_body_bytes = 4096, .headers_timeout_ms = 5000,
                              .request_timeout_ms = 5000, .keep_alive_timeout_ms = 5000,
                              .handler = handler, .reject = reject,
                              .upgrade = anvil_ws_bridge_upgrade, .ctx = fx.bridge };
    anvil_http_server *s = anvil_http_server_new(fx.base, "127.0.0.1", 0, &ho, err, sizeof err);
    if (!fx.bridge || !s) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    mem_job j = { .port = anvil_http_server_port(s), .n = n, .fds = calloc((size_t)n, sizeof(int)) };
    /* Warm up allocator and lws pools with one connection first. */
    malloc_trim(0);
    j.heap_before = mallinfo2().uordblks;
    j.rss_before = rss_kib();
    pthread_t t;
    pthread_create(&t, NULL, mem_client, &j);
    event_base_dispatch(fx.base);
    pthread_join(t, NULL);
    j.heap_after = mallinfo2().uordblks;
    j.rss_after = rss_kib();
    printf("idle connections: %d opened (%zu counted)\n", j.opened, anvil_ws_connections(fx.bridge));
    printf("heap in use: +%zu bytes = %.2f KiB per connection\n", j.heap_after - j.heap_before,
           (double)(j.heap_after - j.heap_before) / 1024.0 / n);
    printf("RSS: +%ld KiB = %.2f KiB per connection (client sockets are in this process too)\n",
           j.rss_after - j.rss_before, (double)(j.rss_after - j.rss_before) / n);
    for (int i = 0; i < n; i++)
        if (j.fds[i] >= 0)
            close(j.fds[i]);
    free(j.fds);
    anvil_ws_bridge_free(fx.bridge);
    anvil_http_server_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }
    pthread_mutex_init(&fx.mu, NULL);
    pthread_cond_init(&fx.cond, NULL);
    fx.base = event_base_new();
    if (!fx.base)
        return 1;
    if (argc == 3 && strcmp(argv[1], "mem") == 0) {
        int rc = mem_mode(atoi(argv[2]));
        event_base_free(fx.base);
        return rc;
    }

    anvil_ws_options o = {
        .max_payload = MAX_PAYLOAD,
        .max_connections = MAX_CONNS,
        .max_queued_bytes_per_conn = MAX_QUEUED,
        .ping_interval_s = 1,
        .path = "/",
    };
    anvil_ws_callbacks cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close, .ctx = &fx,
    };
    char err[256] = "";
    fx.bridge = anvil_ws_bridge_new(fx.base, &o, &cb, err, sizeof err);
    CHECK(fx.bridge != NULL);
    if (!fx.bridge) {
        fprintf(stderr, "bridge: %s\n", err);
        UNIT_DONE();
    }
    anvil_http_options ho = {
        .max_body_bytes = 4096,
        .headers_timeout_ms = 5000,
        .request_timeout_ms = 5000,
        .keep_alive_timeout_ms = 5000,
        .handler = handler,
        .reject = reject,
        .upgrade = anvil_ws_bridge_upgrade,
        .ctx = fx.bridge,
    };
    anvil_http_server *s = anvil_http_server_new(fx.base, "127.0.0.1", 0, &ho, err, sizeof err);
    CHECK(s != NULL);
    if (!s) {
        fprintf(stderr, "server: %s\n", err);
        anvil_ws_bridge_free(fx.bridge);
        UNIT_DONE();
    }
    fx.port = anvil_http_server_port(s);

    struct event *tick = event_new(fx.base, -1, EV_PERSIST, on_tick, &fx);
    struct timeval tick_tv = { 0, 10 * 1000 };
    event_add(tick, &tick_tv);
    struct event *watchdog = evtimer_new(fx.base, on_watchdog, fx.base);
    struct timeval wd_tv = { 90, 0 };
    evtimer_add(watchdog, &wd_tv);

    pthread_t client;
    CHECK(pthread_create(&client, NULL, client_main, NULL) == 0);
    event_base_dispatch(fx.base);
    pthread_join(client, NULL);

    if (!fx.freed)
        anvil_ws_bridge_free(fx.bridge);
    event_free(tick);
    event_free(watchdog);
    anvil_http_server_free(s);
    event_base_free(fx.base);
    pthread_cond_destroy(&fx.cond);
    pthread_mutex_destroy(&fx.mu);
    UNIT_DONE();
}
