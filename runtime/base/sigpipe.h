/*
 * runtime/base/sigpipe.h — writes to a closed pipe or socket fail with
 * EPIPE instead of killing the process.
 */
#ifndef ANVIL_SIGPIPE_H
#define ANVIL_SIGPIPE_H

/* Ignore SIGPIPE unless the host installed a handler of its own (then it
 * is theirs to decide). The server ignores it at startup; the layers that
 * write to peers (the HTTP server, task pipes) call this for other hosts,
 * such as the tests. 0, or -1 when sigaction fails. */
int anvil_sigpipe_ignore(void);

#endif
