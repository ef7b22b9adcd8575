/*
 * runtime/engine/proc_internal.h — pieces of the process module shared between
 * runtime/proc.c (event handling), runtime/proc_spawn.c (starting the child)
 * and runtime/proc_jsonl.c (the last-JSON-line tracker). Not for other
 * modules: the public interface is proc.h.
 */
#ifndef ANVIL_PROC_INTERNAL_H
#define ANVIL_PROC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proc.h"

/* Tracks complete stdout lines and keeps the last one that is a JSON object.
 * Zero-initialise, then set limit (lines with more raw bytes are ignored). */
typedef struct anvil_proc_jsonl {
    char *line;       /* current line from its first non-space byte */
    size_t len, alloc;
    size_t raw;       /* raw bytes of the current line, leading spaces included */
    size_t limit;
    bool started;     /* a non-space byte of this line was seen */
    bool skip;        /* this line cannot be a candidate; discard to '\n' */
    char *best;       /* the last object line, trimmed, or NULL */
} anvil_proc_jsonl;

/* Feeds stdout bytes; every '\n' ends a line. */
void anvil_proc_jsonl_feed(anvil_proc_jsonl *j, const char *d, size_t n);
/* Ends the current line (EOF: a final line without '\n' counts). */
void anvil_proc_jsonl_end(anvil_proc_jsonl *j);
void anvil_proc_jsonl_free(anvil_proc_jsonl *j);

/* pipe2(O_CLOEXEC) with both ends moved above fd 2. 0 / -1 (errno). */
int anvil_proc_make_pipe(int fds[2]);
int anvil_proc_set_nonblock(int fd);

/* Starts /bin/sh -c o->command in its own process group, in o->cwd, with
 * stdio on in[0] / out[1] / err[1], default signals, an empty mask, no other
 * fds, and environ plus o->env. 0 and *pid, or an errno value. */
int anvil_proc_start_sh(const anvil_proc_opts *o, const int in[2], const int out[2],
                        const int err[2], pid_t *pid);

#endif
