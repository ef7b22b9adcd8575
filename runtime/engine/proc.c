/*
 * runtime/engine/proc.c — child processes driven by the libevent loop (proc.h).
 *
 * Owns: the SIGCHLD event on the server's base, the list of live children,
 * their pipes, capture buffers and timers. Starting the child lives in
 * proc_spawn.c, the last-JSON-line tracker in proc_jsonl.c. Nothing
 * here blocks the loop except anvil_proc_module_shutdown, which reaps the
 * groups it has just SIGKILLed.
 *
 * Completion (on_exit) is always delivered from a per-child event of its
 * own, never from inside the SIGCHLD walk or a pipe callback, so on_exit may
 * spawn new children or kill other ones without invalidating any iterator.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "errbuf.h"
#include "proc_internal.h"
#include "sigpipe.h"

#define DEFAULT_CAP ((size_t)1 << 20)
#define LINE_MIN_LIMIT ((size_t)1 << 20)
/* After the child is reaped, how long grandchildren may keep the pipes. */
#define GRACE_MS 500
/* Reads per callback: enough to drain a full pipe, few enough to let the
 * rest of the loop run when a child floods output. */
#define READS_PER_CB 16

typedef struct stream {
    int fd;              /* parent's read end, -1 once closed */
    struct event *ev;
    char *buf;           /* captured bytes, NUL-terminated when non-NULL */
    size_t len, alloc;
    bool truncated;
} stream;

struct anvil_proc {
    struct anvil_proc *prev, *next;
    pid_t pid;
    int64_t start_ms;
    size_t cap;

    int in_fd;           /* parent's write end, -1 once closed */
    struct event *in_ev;
    char *in_data;       /* private copy: the caller's buffer may not outlive spawn */
    size_t in_len, in_off;

    stream out, err;

    anvil_proc_jsonl jsonl; /* over stdout */

    struct event *timer_ev;  /* timeout before reap, grace period after */
    struct event *done_ev;   /* fires on_exit outside any other callback */
    bool reaped, done_scheduled;
    int status;
    bool status_known;   /* false if someone else reaped it (ECHILD) */
    bool timed_out, killed;

    void (*on_output)(void *, anvil_proc_stream, const char *, size_t);
    void (*on_exit)(void *, const anvil_proc_result *);
    void *ctx;
};

/* Module state: one loop, one list. */
static struct event_base *g_base;
static struct event *g_sigchld;
static anvil_proc *g_head;
static size_t g_running;
static char g_rbuf[65536];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_group(anvil_proc *p)
{
    /* The group first so grandchildren die too; the pid as well in case the
     * shell moved itself to another group. Only signal the pid while it is
     * unreaped: after that the number may belong to someone else. ESRCH on
     * an already-empty group is harmless. */
    kill(-p->pid, SIGKILL);
    if (!p->reaped)
        kill(p->pid, SIGKILL);
}

/* ---- completion -------------------------------------------------------- */

static void maybe_finish(anvil_proc *p)
{
    if (p->done_scheduled || !p->reaped || p->out.fd >= 0 || p->err.fd >= 0)
        return;
    p->done_scheduled = true;
    evtimer_del(p->timer_ev);
    event_active(p->done_ev, EV_TIMEOUT, 0);
}

static void set_reaped(anvil_proc *p, int status, bool known)
{
    p->reaped = true;
    p->status = status;
    p->status_known = known;
    evtimer_del(p->timer_ev); /* the timeout only applies to the child itself */
    if (p->out.fd >= 0 || p->err.fd >= 0) {
        struct timeval tv = { GRACE_MS / 1000, (GRACE_MS % 1000) * 1000 };
        evtimer_add(p->timer_ev, &tv);
    }
    maybe_finish(p);
}

static void try_reap(anvil_proc *p)
{
    if (p->reaped)
        return;
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid)
        set_reaped(p, st, true);
    else if (r < 0 && errno == ECHILD) /* reaped behind our back: status lost */
        set_reaped(p, 0, false);
}

static void close_in(anvil_proc *p)
{
    if (p->in_ev) {
        event_free(p->in_ev);
        p->in_ev = NULL;
    }
    if (p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
}

static void close_stream(anvil_proc *p, stream *s)
{
    if (s->fd < 0)
        return;
    event_free(s->ev);
    s->ev = NULL;
    close(s->fd);
    s->fd = -1;
    if (s == &p->out)
        anvil_proc_jsonl_end(&p->jsonl); /* the final line without '\n' still counts */
}

static void after_stream_closed(anvil_proc *p)
{
    if (p->out.fd < 0 && p->err.fd < 0 && !p->reaped)
        try_reap(p); /* usually the child has just exited; don't wait for SIGCHLD */
    maybe_finish(p);
}

static void free_proc(anvil_proc *p)
{
    close_in(p);
    close_stream(p, &p->out);
    close_stream(p, &p->err);
    if (p->timer_ev)
        event_free(p->timer_ev);
    if (p->done_ev)
        event_free(p->done_ev);
    free(p->in_data);
    free(p->out.buf);
    free(p->err.buf);
    anvil_proc_jsonl_free(&p->jsonl);
    free(p);
}

static void unlink_proc(anvil_proc *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        g_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    g_running--;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_proc *p = arg;
    /* Detach first: on_exit may spawn (the slot is free), kill others, or
     * even shut the module down, and none of that may touch p. */
    unlink_proc(p);
    close_in(p);
    event_free(p->timer_ev);
    p->timer_ev = NULL;
    event_free(p->done_ev); /* safe from its own, non-persistent callback */
    p->done_ev = NULL;

    anvil_proc_result r;
    memset(&r, 0, sizeof r);
    if (p->status_known && WIFEXITED(p->status)) {
        r.exit_code = WEXITSTATUS(p->status);
    } else if (p->status_known && WIFSIGNALED(p->status)) {
        r.exit_code = -1;
        r.term_signal = WTERMSIG(p->status);
    } else {
        r.exit_code = -1;
    }
    r.timed_out = p->timed_out;
    r.killed = p->killed;
    r.out = p->out.buf ? p->out.buf : "";
    r.out_len = p->out.len;
    r.out_truncated = p->out.truncated;
    r.err = p->err.buf ? p->err.buf : "";
    r.err_len = p->err.len;
    r.err_truncated = p->err.truncated;
    r.json_line = p->jsonl.best;
    r.duration_ms = mono_ms() - p->start_ms;
    if (p->on_exit)
        p->on_exit(p->ctx, &r);
    free_proc(p);
}

/* ---- pipes --------------------------------------------------------------- */

static void capture(anvil_proc *p, stream *s, anvil_proc_stream which, const char *d, size_t n)
{
    if (which == ANVIL_PROC_STDOUT)
        anvil_proc_jsonl_feed(&p->jsonl, d, n); /* the JSON line is tracked whatever the cap */
    size_t room = p->cap - s->len;
    size_t take = n < room ? n : room;
    if (take < n)
        s->truncated = true;
    if (!take)
        return;
    if (s->len + take + 1 > s->alloc) {
        size_t na = s->alloc ? s->alloc : 4096;
        while (na < s->len + take + 1)
            na *= 2;
        if (na > p->cap + 1)
            na = p->cap + 1;
        char *nb = realloc(s->buf, na);
        if (!nb) { /* out of memory: report it as truncation, keep draining */
            s->truncated = true;
            return;
        }
        s->buf = nb;
        s->alloc = na;
    }
    memcpy(s->buf + s->len, d, take);
    s->len += take;
    s->buf[s->len] = '\0';
    if (p->on_output)
        p->on_output(p->ctx, which, d, take);
}

/* Reads what is there; past the cap the bytes are discarded, but still read,
 * so the child never blocks on a full pipe. Returns true at EOF/error. */
static bool drain(anvil_proc *p, stream *s)
{
    anvil_proc_stream which = s == &p->out ? ANVIL_PROC_STDOUT : ANVIL_PROC_STDERR;
    for (int i = 0; i < READS_PER_CB; i++) {
        ssize_t n = read(s->fd, g_rbuf, sizeof g_rbuf);
        if (n > 0) {
            capture(p, s, which, g_rbuf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        return true; /* EOF, or an error that no further read will fix */
    }
    return false;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    anvil_proc *p = arg;
    stream *s = fd == p->out.fd ? &p->out : &p->err;
    if (drain(p, s)) {
        close_stream(p, s);
        after_stream_closed(p);
    }
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_proc *p = arg;
    while (p->in_off < p->in_len) {
        ssize_t n = write(p->in_fd, p->in_data + p->in_off, p->in_len - p->in_off);
        if (n > 0) {
            p->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the persistent write event calls us again */
        break; /* EPIPE: the child did not read it all, which is its business */
    }
    close_in(p);
    free(p->in_data);
    p->in_data = NULL;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_proc *p = arg;
    if (!p->reaped) {
        /* The timeout: kill, then wait for the reap and EOF as usual. */
        p->timed_out = true;
        kill_group(p);
        return;
    }
    /* Grace over: grandchildren still hold the pipes. Kill them, keep what
     * is already buffered in the pipes, and finish without waiting. */
    kill_group(p);
    if (p->out.fd >= 0)
        drain(p, &p->out);
    if (p->err.fd >= 0)
        drain(p, &p->err);
    close_stream(p, &p->out);
    close_stream(p, &p->err);
    maybe_finish(p);
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    /* Only our own pids: other code may run children and wait for them.
     * try_reap never runs user callbacks, so walking the list is safe. */
    for (anvil_proc *p = g_head; p; p = p->next)
        try_reap(p);
}

static void close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int anvil_proc_spawn(const anvil_proc_opts *o, anvil_proc **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!g_base) {
        anvil_errbuf_set(err, errlen, "process module not initialised");
        return -1;
    }
    if (!o || !o->command) {
        anvil_errbuf_set(err, errlen, "no command");
        return -1;
    }
    for (char *const *e = o->env; e && *e; e++)
        if (!strchr(*e, '=')) {
            anvil_errbuf_set(err, errlen, "environment entry '%s' has no '='", *e);
            return -1;
        }
    /* Checked up front for a clear message; posix_spawn would also fail. */
    if (o->cwd) {
        struct stat st;
        int e = stat(o->cwd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (e) {
            anvil_errbuf_set(err, errlen, "working directory '%s': %s", o->cwd, strerror(e));
            return -1;
        }
    }

    anvil_proc *p = calloc(1, sizeof *p);
    int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
    if (!p)
        goto oom;
    p->in_fd = p->out.fd = p->err.fd = -1;
    p->cap = o->max_output_bytes ? o->max_output_bytes : DEFAULT_CAP;
    p->jsonl.limit = p->cap > LINE_MIN_LIMIT ? p->cap : LINE_MIN_LIMIT;
    p->on_output = o->on_output;
    p->on_exit = o->on_exit;
    p->ctx = o->ctx;
    if (o->stdin_len && !o->stdin_data) {
        anvil_errbuf_set(err, errlen, "stdin_len without stdin_data");
        goto fail;
    }
    if (o->stdin_len) {
        if (!(p->in_data = malloc(o->stdin_len)))
            goto oom;
        memcpy(p->in_data, o->stdin_data, o->stdin_len);
        p->in_len = o->stdin_len;
    }
    /* The parent's ends are non-blocking; the child's stay blocking. */
    if (anvil_proc_make_pipe(pin) < 0 || anvil_proc_make_pipe(pout) < 0 ||
        anvil_proc_make_pipe(perr) < 0 || anvil_proc_set_nonblock(pin[1]) < 0 ||
        anvil_proc_set_nonblock(pout[0]) < 0 || anvil_proc_set_nonblock(perr[0]) < 0) {
        anvil_errbuf_set(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    /* Events before the spawn: once the child runs, nothing may fail. */
    if (o->stdin_len && !(p->in_ev = event_new(g_base, pin[1], EV_WRITE | EV_PERSIST, write_cb, p)))
        goto oom;
    if (!(p->out.ev = event_new(g_base, pout[0], EV_READ | EV_PERSIST, read_cb, p)) ||
        !(p->err.ev = event_new(g_base, perr[0], EV_READ | EV_PERSIST, read_cb, p)) ||
        !(p->timer_ev = evtimer_new(g_base, timer_cb, p)) ||
        !(p->done_ev = event_new(g_base, -1, 0, done_cb, p)))
        goto oom;

    int rc = anvil_proc_start_sh(o, pin, pout, perr, &p->pid);
    if (rc) {
        anvil_errbuf_set(err, errlen, "cannot start /bin/sh: %s", strerror(rc));
        goto fail;
    }
    p->start_ms = mono_ms();
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    p->in_fd = pin[1];
    p->out.fd = pout[0];
    p->err.fd = perr[0];
    if (!o->stdin_len)
        close_in(p); /* the child sees EOF at once */

    struct timeval tv = { 0, 0 };
    if (o->timeout_ms > 0) {
        tv.tv_sec = (time_t)(o->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(o->timeout_ms % 1000) * 1000;
    }
    if ((p->in_ev && event_add(p->in_ev, NULL) < 0) || event_add(p->out.ev, NULL) < 0 ||
        event_add(p->err.ev, NULL) < 0 || (o->timeout_ms > 0 && evtimer_add(p->timer_ev, &tv) < 0)) {
        /* Cannot watch it, so it must not run unwatched. The group is fresh
         * and SIGKILLed, so the blocking wait is short. */
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        anvil_errbuf_set(err, errlen, "cannot register the child's events");
        free_proc(p);
        return -1;
    }

    p->next = g_head;
    if (g_head)
        g_head->prev = p;
    g_head = p;
    g_running++;
    if (out)
        *out = p;
    return 0;

oom:
    anvil_errbuf_set(err, errlen, "out of memory");
fail:
    close_pair(pin);
    close_pair(pout);
    close_pair(perr);
    if (p) {
        /* The pipe ends were never handed to p; only its events remain. */
        p->in_fd = p->out.fd = p->err.fd = -1;
        if (p->in_ev)
            event_free(p->in_ev);
        if (p->out.ev)
            event_free(p->out.ev);
        if (p->err.ev)
            event_free(p->err.ev);
        p->in_ev = p->out.ev = p->err.ev = NULL;
        free_proc(p);
    }
    return -1;
}

/* ---- control ------------------------------------------------------------- */

void anvil_proc_kill(anvil_proc *p)
{
    if (!p || p->done_scheduled)
        return; /* already finished; on_exit is on its way */
    if (!p->reaped)
        p->killed = true; /* only when it was actually still running */
    kill_group(p);
}

int anvil_proc_pid(const anvil_proc *p)
{
    return p ? (int)p->pid : -1;
}

size_t anvil_proc_running(void)
{
    return g_running;
}

int anvil_proc_module_init(struct event_base *base)
{
    if (!base)
        return -1;
    if (g_base)
        return g_base == base ? 0 : -1;
    /* A write to a child that closed stdin must be EPIPE, never a fatal
     * SIGPIPE. */
    if (anvil_sigpipe_ignore() != 0)
        return -1;
    g_sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, NULL);
    if (!g_sigchld)
        return -1;
    if (evsignal_add(g_sigchld, NULL) < 0) {
        event_free(g_sigchld);
        g_sigchld = NULL;
        return -1;
    }
    g_base = base;
    return 0;
}

void anvil_proc_module_shutdown(void)
{
    anvil_proc *p = g_head;
    g_head = NULL;
    while (p) {
        anvil_proc *next = p->next;
        if (!p->reaped || p->out.fd >= 0 || p->err.fd >= 0)
            kill_group(p);
        if (!p->reaped) {
            pid_t r;
            do
                r = waitpid(p->pid, NULL, 0);
            while (r < 0 && errno == EINTR);
        }
        free_proc(p);
        p = next;
    }
    g_running = 0;
    if (g_sigchld) {
        event_free(g_sigchld);
        g_sigchld = NULL;
    }
    g_base = NULL;
}
