/*
 * runtime/client/client_ws_loop.c — a WebSocket connection driven for an
 * event loop: the service thread and the hand-over of frames both ways.
 *
 * Debian's libwebsockets has no libevent integration, so the connection
 * gets a thread that does nothing but lws_service. The two threads share
 * only `shared` under `lock`:
 *   loop -> thread: frames to send (`out`), then lws_cancel_service, whose
 *     EVENT_WAIT_CANCELLED callback moves them to the socket (on_wake);
 *   thread -> loop: frames received (`in`) and the end of the connection,
 *     then one byte on a pipe the base watches; the loop drains the list.
 * Answers are matched to waiting calls by id on the loop thread, which
 * alone touches `pending`.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "client_internal.h"
#include "client_ws_internal.h"
#include "schema.h"

typedef struct pending {
    struct pending *next;
    char id[32];
    const anvil_method *m;
    anvil_client_done_fn done;
    void *arg;
} pending;

struct anvil_client_ws_loop {
    anvil_client_ws *ws;
    struct event_base *base;
    struct event *wake_ev;
    int pipe_fd[2];
    pthread_t thread;
    anvil_client_event_fn on_event;
    anvil_client_closed_fn on_closed;
    void *arg;
    pending *pending;           /* loop thread only */
    unsigned long next_id;      /* loop thread only */
    bool closed_reported;       /* loop thread only */

    pthread_mutex_t lock;
    struct {
        anvil_client_ws_msg *out_head, *out_tail;   /* texts to send */
        anvil_client_ws_msg *in_head, *in_tail;     /* frames received */
        bool closed;
        char reason[256];
        bool stop;
    } shared;
};

static void append(anvil_client_ws_msg **head, anvil_client_ws_msg **tail, anvil_client_ws_msg *m)
{
    m->next = NULL;
    if (*tail)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
}

static void poke(anvil_client_ws_loop *l)
{
    char b = 1;
    /* A full pipe already holds a wake-up; nothing is lost. */
    while (write(l->pipe_fd[1], &b, 1) < 0 && errno == EINTR)
        ;
}

/* Service thread: lws_cancel_service woke us; send what the loop queued. */
static void on_wake(anvil_client_ws *ws)
{
    anvil_client_ws_loop *l = ws->loop;
    pthread_mutex_lock(&l->lock);
    anvil_client_ws_msg *m = l->shared.out_head;
    l->shared.out_head = l->shared.out_tail = NULL;
    pthread_mutex_unlock(&l->lock);
    while (m) {
        anvil_client_ws_msg *next = m->next;
        if (anvil_client_ws_queue_text(ws, m->text) != 0)
            snprintf(ws->close_reason, sizeof ws->close_reason, "out of memory");
        free(m->text);
        free(m);
        m = next;
    }
}

static void *service_thread(void *arg)
{
    anvil_client_ws_loop *l = arg;
    anvil_client_ws *ws = l->ws;
    for (;;) {
        pthread_mutex_lock(&l->lock);
        bool stop = l->shared.stop;
        pthread_mutex_unlock(&l->lock);
        if (stop)
            break;
        if (ws->state != WS_CLOSED)
            lws_service(ws->ctx, 0);
        bool got = ws->in_head != NULL, closed = ws->state == WS_CLOSED;
        if (got || closed) {
            pthread_mutex_lock(&l->lock);
            for (anvil_client_ws_msg *m = ws->in_head, *next; m; m = next) {
                next = m->next;
                append(&l->shared.in_head, &l->shared.in_tail, m);
            }
            ws->in_head = ws->in_tail = NULL;
            if (closed && !l->shared.closed) {
                l->shared.closed = true;
                snprintf(l->shared.reason, sizeof l->shared.reason, "%s",
                         ws->close_reason[0] ? ws->close_reason : "closed");
            }
            pthread_mutex_unlock(&l->lock);
            poke(l);
        }
        if (closed)
            break;   /* nothing more will arrive; stop waits for us anyway */
    }
    return NULL;
}

static void fail_pending(anvil_client_ws_loop *l, const char *why)
{
    anvil_client_error err = { .code_id = -1 };
    anvil_client_err_set(&err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: %s", l->ws->c->url, why);
    while (l->pending) {
        pending *p = l->pending;
        l->pending = p->next;
        p->done(&err, NULL, p->arg);
        free(p);
    }
    anvil_client_error_clear(&err);
}

/* Loop thread: an answer to one of our calls. */
static void answer(anvil_client_ws_loop *l, cJSON *frame)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(frame, "id");
    pending **pp = &l->pending;
    while (*pp && !(cJSON_IsString(id) && !strcmp((*pp)->id, id->valuestring)))
        pp = &(*pp)->next;
    pending *p = *pp;
    if (!p)
        return;   /* not ours (or already failed): nobody waits for it */
    *pp = p->next;
    anvil_client_error err = { .code_id = -1 };
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(frame, "ok");
    void *res = calloc(1, p->m->response->size ? p->m->response->size : 1);
    anvil_schema_error se;
    if (!res) {
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
        p->done(&err, NULL, p->arg);
    } else if (!cJSON_IsTrue(ok)) {
        anvil_client_err_from_json(&err, cJSON_GetObjectItemCaseSensitive(frame, "error"), 0);
        p->done(&err, NULL, p->arg);
    } else if (anvil_schema_decode(p->m->response, cJSON_GetObjectItemCaseSensitive(frame, "payload"), res,
                                   "$.payload", &se) != 0) {
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_PROTOCOL, "%s answer does not match the contract: %s",
                             p->m->name, se.message);
        p->done(&err, NULL, p->arg);
    } else {
        p->done(NULL, res, p->arg);
        anvil_schema_free(p->m->response, res);
    }
    free(res);
    anvil_client_error_clear(&err);
    free(p);
}

static void event_frame(anvil_client_ws_loop *l, cJSON *frame)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(frame, "event");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(frame, "seq");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(frame, "stateVersion");
    if (!cJSON_IsString(name) || !l->on_event)
        return;
    anvil_client_event ev = {
        .event = name->valuestring,
        .payload = cJSON_GetObjectItemCaseSensitive(frame, "payload"),
        .seq = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : 0,
        .state_version = cJSON_IsNumber(sv) ? (int64_t)sv->valuedouble : 0,
    };
    l->on_event(&ev, l->arg);
}

/* Loop thread: the pipe is readable. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    anvil_client_ws_loop *l = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&l->lock);
    anvil_client_ws_msg *m = l->shared.in_head;
    l->shared.in_head = l->shared.in_tail = NULL;
    bool closed = l->shared.closed;
    char reason[256];
    snprintf(reason, sizeof reason, "%s", l->shared.reason);
    pthread_mutex_unlock(&l->lock);
    while (m) {
        anvil_client_ws_msg *next = m->next;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m->frame, "type");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "res"))
            answer(l, m->frame);
        else if (cJSON_IsString(type) && !strcmp(type->valuestring, "event"))
            event_frame(l, m->frame);
        cJSON_Delete(m->frame);
        free(m);
        m = next;
    }
    if (closed && !l->closed_reported) {
        l->closed_reported = true;
        fail_pending(l, reason);
        anvil_client_error err = { .code_id = -1 };
        anvil_client_err_set(&err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: %s", l->ws->c->url, reason);
        if (l->on_closed)
            l->on_closed(&err, l->arg);
        anvil_client_error_clear(&err);
    }
}

int anvil_client_ws_loop_start(anvil_client_ws *ws, struct event_base *base,
                               anvil_client_event_fn on_event, anvil_client_closed_fn on_closed,
                               void *arg, anvil_client_ws_loop **out, anvil_client_error *err)
{
    *out = NULL;
    if (!ws || !base || ws->loop)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "attach needs an open, unattached connection and a base");
    if (ws->state == WS_CLOSED)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s: %s", ws->c->url,
                                    ws->close_reason[0] ? ws->close_reason : "closed");
    anvil_client_ws_loop *l = calloc(1, sizeof *l);
    if (!l)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    l->ws = ws;
    l->base = base;
    l->on_event = on_event;
    l->on_closed = on_closed;
    l->arg = arg;
    l->pipe_fd[0] = l->pipe_fd[1] = -1;
    if (pipe2(l->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0 ||
        !(l->wake_ev = event_new(base, l->pipe_fd[0], EV_READ | EV_PERSIST, on_readable, l)) ||
        event_add(l->wake_ev, NULL) != 0 || pthread_mutex_init(&l->lock, NULL) != 0) {
        if (l->wake_ev)
            event_free(l->wake_ev);
        for (int i = 0; i < 2; i++)
            if (l->pipe_fd[i] >= 0)
                close(l->pipe_fd[i]);
        free(l);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot set up the event loop hand-over");
    }
    ws->loop = l;
    ws->on_wake = on_wake;
    /* Frames that arrived while the owner used the connection blocking
     * (events after hello) are the loop's first. */
    for (anvil_client_ws_msg *m = ws->in_head, *next; m; m = next) {
        next = m->next;
        append(&l->shared.in_head, &l->shared.in_tail, m);
    }
    ws->in_head = ws->in_tail = NULL;
    if (l->shared.in_head)
        poke(l);
    if (pthread_create(&l->thread, NULL, service_thread, l) != 0) {
        ws->loop = NULL;
        ws->on_wake = NULL;
        l->shared.stop = true;
        anvil_client_ws_loop_stop(l);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "cannot start the service thread");
    }
    *out = l;
    return 0;
}

int anvil_client_ws_loop_call(anvil_client_ws_loop *l, const anvil_method *m, const void *req,
                              anvil_client_done_fn done, void *arg, anvil_client_error *err)
{
    if (!m || !req || !done)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "a call needs a method, a request and a callback");
    if (l->closed_reported)
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "WebSocket to %s is closed", l->ws->c->url);
    anvil_schema_error se;
    cJSON *params = anvil_schema_encode(m->request, req, &se);
    if (!params) {
        anvil_client_err_set(err, ANVIL_CLIENT_ERR_USAGE, "%s request: %s", m->name, se.message);
        if (err)
            err->path = strdup(se.path);
        return -1;
    }
    pending *p = calloc(1, sizeof *p);
    anvil_client_ws_msg *msg = calloc(1, sizeof *msg);
    cJSON *frame = cJSON_CreateObject();
    char *text = NULL;
    if (p && msg && frame) {
        snprintf(p->id, sizeof p->id, "l%lu", ++l->next_id);
        if (cJSON_AddStringToObject(frame, "type", "req") && cJSON_AddStringToObject(frame, "id", p->id) &&
            cJSON_AddStringToObject(frame, "method", m->name)) {
            cJSON_AddItemToObject(frame, "params", params);
            params = NULL;
            text = cJSON_PrintUnformatted(frame);
        }
    }
    cJSON_Delete(params);
    cJSON_Delete(frame);
    if (!text) {
        free(p);
        free(msg);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    p->m = m;
    p->done = done;
    p->arg = arg;
    p->next = l->pending;
    l->pending = p;
    msg->text = text;
    pthread_mutex_lock(&l->lock);
    append(&l->shared.out_head, &l->shared.out_tail, msg);
    pthread_mutex_unlock(&l->lock);
    lws_cancel_service(l->ws->ctx);
    return 0;
}

void anvil_client_ws_loop_stop(anvil_client_ws_loop *l)
{
    if (!l)
        return;
    bool started = l->ws->loop == l;
    pthread_mutex_lock(&l->lock);
    l->shared.stop = true;
    pthread_mutex_unlock(&l->lock);
    if (started) {
        lws_cancel_service(l->ws->ctx);
        pthread_join(l->thread, NULL);
        l->ws->loop = NULL;
        l->ws->on_wake = NULL;
    }
    /* Frames not yet handed over are dropped: the caller detached. */
    for (anvil_client_ws_msg *m = l->shared.out_head, *next; m; m = next) {
        next = m->next;
        free(m->text);
        free(m);
    }
    for (anvil_client_ws_msg *m = l->shared.in_head, *next; m; m = next) {
        next = m->next;
        cJSON_Delete(m->frame);
        free(m);
    }
    fail_pending(l, "detached from the event loop");
    event_free(l->wake_ev);
    close(l->pipe_fd[0]);
    close(l->pipe_fd[1]);
    pthread_mutex_destroy(&l->lock);
    free(l);
}
