/*
 * tests/unit/test_proc.c — runtime/engine/proc.c: real children under a real
 * libevent loop.
 *
 * Each test builds its own event_base, initialises the module on it, runs
 * the loop until every expected on_exit has arrived, and shuts down. A 20 s
 * timer breaks a stuck loop; it is a safety net, not a timing assertion.
 * The process ignores SIGPIPE like the server does, so the tests also prove
 * the child gets SIGPIPE back at its default.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "proc.h"
#include "unit.h"

#define SAFETY_S 20

typedef struct rec {
    int *pending;             /* shared countdown; the loop stops at 0 */
    struct event_base *base;
    int calls;
    int exit_code, term_signal;
    bool timed_out, killed;
    char *out, *err, *json;
    size_t out_len, err_len;
    bool out_trunc, err_trunc;
    size_t chunk_out, chunk_err;
    bool out_nul_ok;          /* result strings were NUL-terminated */
    /* for the on_exit chaining tests */
    anvil_proc *to_kill;
    const char *then_spawn;
    struct rec *next_rec;
} rec;

static char *dup_mem(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void on_output(void *ctx, anvil_proc_stream stream, const char *data, size_t len)
{
    rec *r = ctx;
    (void)data;
    if (stream == ANVIL_PROC_STDOUT)
        r->chunk_out += len;
    else
        r->chunk_err += len;
}

static anvil_proc_opts opts_for(const char *cmd, rec *r);

static void on_exit_cb(void *ctx, const anvil_proc_result *res)
{
    rec *r = ctx;
    r->calls++;
    r->exit_code = res->exit_code;
    r->term_signal = res->term_signal;
    r->timed_out = res->timed_out;
    r->killed = res->killed;
    r->out = dup_mem(res->out, res->out_len);
    r->err = dup_mem(res->err, res->err_len);
    r->out_len = res->out_len;
    r->err_len = res->err_len;
    r->out_trunc = res->out_truncated;
    r->err_trunc = res->err_truncated;
    r->out_nul_ok = res->out[res->out_len] == '\0' && res->err[res->err_len] == '\0';
    r->json = res->json_line ? dup_mem(res->json_line, strlen(res->json_line)) : NULL;
    CHECK(res->duration_ms >= 0);
    if (r->to_kill)
        anvil_proc_kill(r->to_kill);
    if (r->then_spawn) {
        anvil_proc_opts o = opts_for(r->then_spawn, r->next_rec);
        char err[256] = "";
        int rc = anvil_proc_spawn(&o, NULL, err, sizeof err);
        CHECK_INT(rc, 0);
        if (rc == 0)
            (*r->pending)++;
    }
    if (--*r->pending == 0)
        event_base_loopbreak(r->base);
}

static anvil_proc_opts opts_for(const char *cmd, rec *r)
{
    anvil_proc_opts o;
    memset(&o, 0, sizeof o);
    o.command = cmd;
    o.cwd = "/";
    o.on_output = on_output;
    o.on_exit = on_exit_cb;
    o.ctx = r;
    return o;
}

static void rec_init(rec *r, struct event_base *b, int *pending)
{
    memset(r, 0, sizeof *r);
    r->base = b;
    r->pending = pending;
}

static void rec_free(rec *r)
{
    free(r->out);
    free(r->err);
    free(r->json);
    r->out = r->err = r->json = NULL;
}

static struct event_base *begin(void)
{
    struct event_base *b = event_base_new();
    CHECK(b != NULL);
    CHECK_INT(anvil_proc_module_init(b), 0);
    return b;
}

static void safety_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fprintf(stderr, "test_proc: safety timeout hit\n");
    event_base_loopbreak(arg);
}

/* Runs the loop until *pending reaches 0 (or the safety net fires). */
static void run(struct event_base *b, int *pending)
{
    struct event *safety = evtimer_new(b, safety_cb, b);
    struct timeval tv = { SAFETY_S, 0 };
    CHECK(safety != NULL);
    if (!safety)
        return;
    evtimer_add(safety, &tv);
    if (*pending > 0)
        event_base_dispatch(b);
    CHECK_INT(*pending, 0);
    event_free(safety);
}

static void end(struct event_base *b)
{
    anvil_proc_module_shutdown();
    CHECK_INT(anvil_proc_running(), 0);
    event_base_free(b);
}

/* Spawns `cmd` with o, expecting success. */
static anvil_proc *spawn_ok(const anvil_proc_opts *o, int *pending)
{
    anvil_proc *p = NULL;
    char err[256] = "";
    int rc = anvil_proc_spawn(o, &p, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "spawn failed: %s\n", err);
        return NULL;
    }
    CHECK(p != NULL);
    CHECK(anvil_proc_pid(p) > 0);
    (*pending)++;
    return p;
}

/* Runs one command to completion with the given options. */
static void run_one(anvil_proc_opts *o, rec *r)
{
    struct event_base *b = begin();
    int pending = 0;
    rec_init(r, b, &pending);
    o->ctx = r;
    spawn_ok(o, &pending);
    run(b, &pending);
    CHECK_INT(r->calls, 1);
    end(b);
}

/* A pid is gone when /proc no longer has it or it is a zombie (it may be
 * reparented to an init that does not reap). Polls within the safety bound. */
static bool pid_gone(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    for (int i = 0; i < SAFETY_S * 100; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ---- tests ------------------------------------------------------------- */

static void test_echo(void)
{
    rec r;
    anvil_proc_opts o = opts_for("echo hello; echo oops >&2", &r);
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.term_signal, 0);
    CHECK_STR(r.out, "hello\n");
    CHECK_STR(r.err, "oops\n");
    CHECK(!r.out_trunc && !r.err_trunc && !r.timed_out && !r.killed);
    CHECK(r.out_nul_ok);
    CHECK_INT(r.chunk_out, r.out_len);
    CHECK_INT(r.chunk_err, r.err_len);
    CHECK(r.json == NULL);
    rec_free(&r);
}

static void test_exit_codes(void)
{
    struct event_base *b = begin();
    int pending = 0;
    rec a, c;
    rec_init(&a, b, &pending);
    rec_init(&c, b, &pending);
    anvil_proc_opts oa = opts_for("true", &a), oc = opts_for("exit 3", &c);
    spawn_ok(&oa, &pending);
    spawn_ok(&oc, &pending);
    CHECK_INT(anvil_proc_running(), 2);
    run(b, &pending);
    CHECK_INT(anvil_proc_running(), 0);
    CHECK_INT(a.exit_code, 0);
    CHECK_INT(c.exit_code, 3);
    CHECK_INT(c.term_signal, 0);
    CHECK(a.out_nul_ok && c.out_nul_ok);
    CHECK_INT(a.out_len, 0);
    rec_free(&a);
    rec_free(&c);
    end(b);
}

static void test_stdin(void)
{
    rec r;
    anvil_proc_opts o = opts_for("cat", &r);
    o.stdin_data = "abc\n";
    o.stdin_len = 4;
    run_one(&o, &r);
    CHECK_STR(r.out, "abc\n");
    rec_free(&r);

    /* 2 MiB through cat: needs the write event (EAGAIN) and simultaneous
     * reading, or parent and child deadlock on full pipes. */
    size_t n = (size_t)2 << 20;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (!big)
        return;
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 23);
    o = opts_for("cat", &r);
    o.stdin_data = big;
    o.stdin_len = n;
    o.max_output_bytes = (size_t)4 << 20;
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.out_len, n);
    CHECK(r.out && memcmp(r.out, big, n) == 0);
    CHECK(!r.out_trunc);
    rec_free(&r);

    /* A child that does not read: EPIPE is not an error. */
    o = opts_for("exit 0", &r);
    o.stdin_data = big;
    o.stdin_len = n;
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.term_signal, 0);
    rec_free(&r);

    o = opts_for("head -c 5", &r);
    o.stdin_data = big;
    o.stdin_len = n;
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.out, "abcde");
    rec_free(&r);
    free(big);
}

static void test_json_line(void)
{
    rec r;
    anvil_proc_opts o = opts_for(
        "echo '{\"a\":1}'; echo done; echo '{\"b\":2}'; echo 'not {json}'; echo '{\"x\": }'", &r);
    run_one(&o, &r);
    CHECK_STR(r.json, "{\"b\":2}");
    rec_free(&r);

    /* CRLF, surrounding spaces, and a last line without '\n'. */
    o = opts_for("printf '  {\"c\":1}  \\r\\n'", &r);
    run_one(&o, &r);
    CHECK_STR(r.json, "{\"c\":1}");
    rec_free(&r);
    o = opts_for("echo '{\"c\":1}'; printf '{\"z\":3}'", &r);
    run_one(&o, &r);
    CHECK_STR(r.json, "{\"z\":3}");
    rec_free(&r);

    /* Not objects, or not one whole value. */
    o = opts_for("echo '{\"k\":0}'; echo '[1]'; echo '{\"a\":1} {\"b\":2}'; echo '\"{}\"'", &r);
    run_one(&o, &r);
    CHECK_STR(r.json, "{\"k\":0}");
    rec_free(&r);

    /* Tracked past the capture cap. */
    o = opts_for("echo hello; echo '{\"q\":5}'", &r);
    o.max_output_bytes = 4;
    run_one(&o, &r);
    CHECK_STR(r.out, "hell");
    CHECK(r.out_trunc);
    CHECK_INT(r.chunk_out, 4);
    CHECK_STR(r.json, "{\"q\":5}");
    rec_free(&r);

    /* A line over max(cap, 1 MiB) is ignored even though it is valid. */
    o = opts_for("echo '{\"small\":1}'; printf '{\"k\":\"'; head -c 1600000 /dev/zero | tr '\\0' x;"
                 " printf '\"}\\n'", &r);
    run_one(&o, &r);
    CHECK_STR(r.json, "{\"small\":1}");
    rec_free(&r);
    /* ... but accepted when the cap is larger than the line. */
    o = opts_for("printf '{\"k\":\"'; head -c 1600000 /dev/zero | tr '\\0' x; printf '\"}\\n'", &r);
    o.max_output_bytes = (size_t)2 << 20;
    run_one(&o, &r);
    CHECK(r.json != NULL && strlen(r.json) == 1600008);
    rec_free(&r);
}

static void test_output_cap(void)
{
    rec r;
    anvil_proc_opts o = opts_for("yes | head -c 3145728; echo done >&2", &r);
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.out_len, (size_t)1 << 20);
    CHECK(r.out_trunc);
    CHECK_INT(r.chunk_out, r.out_len);
    CHECK(r.out && r.out[0] == 'y' && r.out[1] == '\n');
    CHECK_STR(r.err, "done\n");
    CHECK(!r.err_trunc);
    CHECK(r.out_nul_ok);
    rec_free(&r);

    o = opts_for("yes | head -c 3145728; yes e | head -c 5000 >&2", &r);
    o.max_output_bytes = 1000;
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_INT(r.out_len, 1000);
    CHECK_INT(r.err_len, 1000);
    CHECK(r.out_trunc && r.err_trunc);
    CHECK_INT(r.chunk_out, 1000);
    CHECK_INT(r.chunk_err, 1000);
    rec_free(&r);

    /* Exactly at the cap is not truncated. */
    o = opts_for("printf 12345", &r);
    o.max_output_bytes = 5;
    run_one(&o, &r);
    CHECK_STR(r.out, "12345");
    CHECK(!r.out_trunc);
    rec_free(&r);
}

static void test_timeout(void)
{
    rec r;
    /* The grandchild prints its pid, then both sleep in the same group. */
    anvil_proc_opts o = opts_for("sleep 30 & echo $!; sleep 30", &r);
    o.timeout_ms = 200;
    run_one(&o, &r);
    CHECK(r.timed_out);
    CHECK(!r.killed);
    CHECK_INT(r.exit_code, -1);
    CHECK_INT(r.term_signal, SIGKILL);
    long gc = r.out ? strtol(r.out, NULL, 10) : 0;
    CHECK(gc > 0);
    if (gc > 0)
        CHECK(pid_gone(gc));
    rec_free(&r);
}

static void test_grandchild_holds_pipes(void)
{
    rec r;
    /* sh exits at once; the background sleep keeps stdout open. */
    anvil_proc_opts o = opts_for("sleep 30 & echo $!", &r);
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK(!r.timed_out && !r.killed);
    long gc = r.out ? strtol(r.out, NULL, 10) : 0;
    CHECK(gc > 0);
    if (gc > 0)
        CHECK(pid_gone(gc));
    rec_free(&r);
}

static void test_kill(void)
{
    struct event_base *b = begin();
    int pending = 0;
    rec r;
    rec_init(&r, b, &pending);
    anvil_proc_opts o = opts_for("sleep 30", &r);
    anvil_proc *p = spawn_ok(&o, &pending);
    if (p)
        anvil_proc_kill(p);
    run(b, &pending);
    CHECK(r.killed);
    CHECK(!r.timed_out);
    CHECK_INT(r.exit_code, -1);
    CHECK_INT(r.term_signal, SIGKILL);
    rec_free(&r);

    /* Killing another proc from on_exit. */
    rec a, c;
    rec_init(&a, b, &pending);
    rec_init(&c, b, &pending);
    anvil_proc_opts oc = opts_for("sleep 30", &c), oa = opts_for("true", &a);
    a.to_kill = spawn_ok(&oc, &pending);
    spawn_ok(&oa, &pending);
    run(b, &pending);
    CHECK_INT(a.exit_code, 0);
    CHECK(c.killed);
    CHECK_INT(c.term_signal, SIGKILL);
    rec_free(&a);
    rec_free(&c);
    end(b);
}

static void test_cwd_and_env(void)
{
    char tmpl[] = "/tmp/anvil_proc_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (!dir)
        return;
    char real[PATH_MAX];
    CHECK(realpath(dir, real) != NULL);
    char want[PATH_MAX + 2];
    snprintf(want, sizeof want, "%s\n", real);

    rec r;
    anvil_proc_opts o = opts_for("pwd -P", &r);
    o.cwd = dir;
    run_one(&o, &r);
    CHECK_STR(r.out, want);
    rec_free(&r);
    rmdir(dir);

    setenv("ANVIL_PROC_INHERITED", "yes", 1);
    setenv("ANVIL_PROC_REPLACED", "old", 1);
    char e1[] = "ANVIL_PROC_EXTRA=hello world", e2[] = "ANVIL_PROC_REPLACED=new";
    char *const env[] = { e1, e2, NULL };
    o = opts_for("echo \"$ANVIL_PROC_EXTRA|$ANVIL_PROC_INHERITED|$ANVIL_PROC_REPLACED\";"
                 " env | grep -c '^ANVIL_PROC_REPLACED='", &r);
    o.env = env;
    run_one(&o, &r);
    CHECK_STR(r.out, "hello world|yes|new\n1\n");
    rec_free(&r);
    unsetenv("ANVIL_PROC_INHERITED");
    unsetenv("ANVIL_PROC_REPLACED");
}

static void test_child_setup(void)
{
    rec r;
    /* SIGPIPE is at its default in the child: `yes` dies silently instead
     * of complaining about EPIPE. */
    anvil_proc_opts o = opts_for("yes | head -c 1 >/dev/null", &r);
    run_one(&o, &r);
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.err, "");
    rec_free(&r);

    /* Mask cleared and ignored signals reset. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    o = opts_for("kill -USR1 $$; echo alive", &r);
    run_one(&o, &r);
    CHECK_INT(r.term_signal, SIGUSR1);
    CHECK_STR(r.out, "");
    rec_free(&r);
    sigprocmask(SIG_SETMASK, &old, NULL);

    struct sigaction ign, prev;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGUSR2, &ign, &prev);
    o = opts_for("kill -USR2 $$; echo alive", &r);
    run_one(&o, &r);
    CHECK_INT(r.term_signal, SIGUSR2);
    rec_free(&r);
    sigaction(SIGUSR2, &prev, NULL);

    /* An fd the server opened without O_CLOEXEC does not leak, nor does any
     * other. The shell probes its fds with the `[` builtin: a pipeline or a
     * glob would open fds of its own. */
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    CHECK_INT(dup2(fd, 200), 200);
    close(fd);
    o = opts_for("if [ -e /proc/$$/fd/200 ]; then echo leaked; else echo clean; fi;"
                 " n=3; while [ $n -lt 1024 ]; do"
                 " [ -e /proc/$$/fd/$n ] && printf '%s ' $n; n=$((n+1)); done", &r);
    run_one(&o, &r);
    CHECK_STR(r.out, "clean\n");
    rec_free(&r);
    close(200);

    /* Its own process group: pgid == pid. */
    struct event_base *b = begin();
    int pending = 0;
    rec_init(&r, b, &pending);
    o = opts_for("cut -d' ' -f5 /proc/$$/stat", &r);
    anvil_proc *p = spawn_ok(&o, &pending);
    char want[32] = "";
    if (p)
        snprintf(want, sizeof want, "%d\n", anvil_proc_pid(p));
    run(b, &pending);
    CHECK_STR(r.out, want);
    rec_free(&r);
    end(b);
}

static void test_concurrent(void)
{
    enum { N = 50 };
    struct event_base *b = begin();
    int pending = 0;
    static rec rs[N];
    char cmds[N][64];
    for (int i = 0; i < N; i++) {
        rec_init(&rs[i], b, &pending);
        snprintf(cmds[i], sizeof cmds[i], "echo child-%d; exit %d", i, i % 7);
        anvil_proc_opts o = opts_for(cmds[i], &rs[i]);
        spawn_ok(&o, &pending);
    }
    CHECK_INT(anvil_proc_running(), N);
    run(b, &pending);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof want, "child-%d\n", i);
        CHECK_INT(rs[i].calls, 1);
        CHECK_INT(rs[i].exit_code, i % 7);
        CHECK_STR(rs[i].out, want);
        rec_free(&rs[i]);
    }
    end(b);
}

static void test_spawn_failures(void)
{
    struct event_base *b = begin();
    rec r;
    int pending = 0;
    rec_init(&r, b, &pending);
    anvil_proc_opts o = opts_for("echo hi", &r);
    o.cwd = "/nonexistent/anvil/dir";
    anvil_proc *p = (anvil_proc *)&r; /* must be reset to NULL */
    char err[256] = "";
    CHECK_INT(anvil_proc_spawn(&o, &p, err, sizeof err), -1);
    CHECK(p == NULL);
    CHECK(strstr(err, "/nonexistent/anvil/dir") != NULL);
    CHECK_INT(anvil_proc_running(), 0);

    o.cwd = "/dev/null";
    CHECK_INT(anvil_proc_spawn(&o, NULL, err, sizeof err), -1);
    char bad[] = "NOEQUALS";
    char *const env[] = { bad, NULL };
    o.cwd = "/";
    o.env = env;
    CHECK_INT(anvil_proc_spawn(&o, NULL, err, sizeof err), -1);
    o.env = NULL;
    o.command = NULL;
    CHECK_INT(anvil_proc_spawn(&o, NULL, err, sizeof err), -1);
    CHECK_INT(r.calls, 0);
    end(b);

    /* Not initialised. */
    o = opts_for("true", &r);
    CHECK_INT(anvil_proc_spawn(&o, NULL, err, sizeof err), -1);
    CHECK(anvil_proc_module_init(NULL) == -1);
}

static void test_spawn_from_on_exit(void)
{
    struct event_base *b = begin();
    int pending = 0;
    rec first, second;
    rec_init(&first, b, &pending);
    rec_init(&second, b, &pending);
    first.then_spawn = "echo second";
    first.next_rec = &second;
    anvil_proc_opts o = opts_for("exit 1", &first);
    spawn_ok(&o, &pending);
    run(b, &pending);
    CHECK_INT(first.exit_code, 1);
    CHECK_INT(second.calls, 1);
    CHECK_STR(second.out, "second\n");
    rec_free(&first);
    rec_free(&second);
    end(b);
}

static void test_shutdown_kills(void)
{
    struct event_base *b = begin();
    int pending = 0;
    rec r;
    rec_init(&r, b, &pending);
    anvil_proc_opts o = opts_for("sleep 30 & sleep 30", &r);
    o.stdin_data = "x";
    o.stdin_len = 1;
    anvil_proc *p = spawn_ok(&o, &pending);
    int pid = p ? anvil_proc_pid(p) : -1;
    end(b); /* no loop run at all: shutdown must kill, reap and free */
    CHECK_INT(r.calls, 0);
    if (pid > 0) {
        errno = 0;
        CHECK_INT(waitpid(pid, NULL, WNOHANG), -1);
        CHECK_INT(errno, ECHILD);
    }
}

/* Every pipe the module opened must be closed again. */
static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the server does */
    int fds_before = count_fds();
    test_echo();
    test_exit_codes();
    test_stdin();
    test_json_line();
    test_output_cap();
    test_timeout();
    test_grandchild_holds_pipes();
    test_kill();
    test_cwd_and_env();
    test_child_setup();
    test_concurrent();
    test_spawn_failures();
    test_spawn_from_on_exit();
    test_shutdown_kills();
    CHECK_INT(count_fds(), fds_before);
    UNIT_DONE();
}
