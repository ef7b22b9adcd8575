/*
 * runtime/engine/proc.h — child processes driven by the libevent loop.
 *
 * Runs `/bin/sh -c COMMAND` in its own process group with non-blocking
 * pipes for stdin, stdout and stderr, reaps it on SIGCHLD, and never blocks
 * the loop. Output is streamed to a callback and captured up to a cap; the
 * last stdout line that parses as a JSON object is kept whatever the cap.
 * Timeouts and kills hit the whole process group, so grandchildren die too.
 *
 * Ownership: anvil_proc_spawn returns a handle owned by the module; it stays
 * valid until on_exit has returned, after which it is freed. on_exit is
 * called exactly once per successful spawn.
 */
#ifndef ANVIL_PROC_H
#define ANVIL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

typedef struct anvil_proc anvil_proc;

typedef enum anvil_proc_stream { ANVIL_PROC_STDOUT = 1, ANVIL_PROC_STDERR = 2 } anvil_proc_stream;

typedef struct anvil_proc_result {
    int exit_code;             /* exit status, or -1 when killed by a signal */
    int term_signal;           /* the signal, or 0 */
    bool timed_out;            /* killed because timeout_ms passed */
    bool killed;               /* killed by anvil_proc_kill */
    const char *out;           /* captured stdout (first max_output_bytes), NUL-terminated */
    size_t out_len;
    bool out_truncated;
    const char *err;           /* captured stderr, likewise */
    size_t err_len;
    bool err_truncated;
    const char *json_line;     /* last stdout line that parses as a JSON object, or NULL */
    int64_t duration_ms;
} anvil_proc_result;

typedef struct anvil_proc_opts {
    const char *command;                 /* run with /bin/sh -c */
    const char *cwd;                     /* must exist */
    const char *stdin_data;              /* written to stdin, which is then closed */
    size_t stdin_len;
    size_t max_output_bytes;             /* capture cap per stream (0 = 1 MiB) */
    int64_t timeout_ms;                  /* 0 = none */
    char *const *env;                    /* extra "K=V" entries added to the
                                            inherited environment, NULL-terminated; may be NULL */
    /* Chunks as they arrive (only the captured part; may be NULL). */
    void (*on_output)(void *ctx, anvil_proc_stream stream, const char *data, size_t len);
    /* Once, after the process exited and both pipes reached EOF. The result
     * and its strings are valid during the call only. */
    void (*on_exit)(void *ctx, const anvil_proc_result *result);
    void *ctx;
} anvil_proc_opts;

/* Install the SIGCHLD handler on `base`. Call once before spawning. 0 / -1. */
int anvil_proc_module_init(struct event_base *base);

/* Kill (SIGKILL) every running process group and release the module; on_exit
 * is not called after this. For shutdown. */
void anvil_proc_module_shutdown(void);

/* Start a child. Returns 0 and sets *out, or -1 with a message. */
int anvil_proc_spawn(const anvil_proc_opts *o, anvil_proc **out, char *err, size_t errlen);

/* SIGKILL the process group; on_exit still follows (with killed set). */
void anvil_proc_kill(anvil_proc *p);

/* Process id, for logs. */
int anvil_proc_pid(const anvil_proc *p);

/* Number of children running. */
size_t anvil_proc_running(void);

#endif
