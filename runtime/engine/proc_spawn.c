/*
 * runtime/engine/proc_spawn.c — starting a child for the process module.
 *
 * Owns the posix_spawn recipe: /bin/sh -c in a new process group, the cwd,
 * stdio on pipes, every other fd closed, default signal dispositions and an
 * empty mask, environ plus extras. posix_spawn rather than fork: glibc uses
 * a vfork-style clone, which is cheap for a large server and reports
 * failures of the file actions (a missing cwd) and of execve back to us.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np / addclosefrom_np */
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_internal.h"

/* addchdir_np arrived in glibc 2.29; without it cwd cannot be set in the
 * child through posix_spawn, so refuse to build rather than run tasks in the
 * wrong directory. closefrom_np (2.34) is optional: see below. */
#if defined(__GLIBC__) && !__GLIBC_PREREQ(2, 29)
#error "runtime/proc_spawn.c needs glibc >= 2.29 (posix_spawn_file_actions_addchdir_np)"
#endif

extern char **environ;

/* Pipes are O_CLOEXEC so no other child inherits them, and kept above 2 so
 * the dup2 actions onto 0..2 can never clobber one another. */
int anvil_proc_make_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (fds[i] > 2)
            continue;
        int nfd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (nfd < 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
        close(fds[i]);
        fds[i] = nfd;
    }
    return 0;
}

int anvil_proc_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* environ plus the extras; an extra replaces an inherited entry of the same
 * name. Pointers only: posix_spawn copies the strings. */
static char **build_env(char *const *extra)
{
    size_t ne = 0, nx = 0;
    while (environ && environ[ne])
        ne++;
    while (extra && extra[nx])
        nx++;
    char **env = calloc(ne + nx + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        bool replaced = false;
        for (size_t j = 0; j < nx && !replaced; j++) {
            size_t kl = (size_t)(strchr(extra[j], '=') - extra[j]);
            replaced = strncmp(environ[i], extra[j], kl + 1) == 0;
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++)
        env[k++] = extra[j];
    env[k] = NULL;
    return env;
}

/* Fills *pid or returns an errno value (see proc_internal.h). */
int anvil_proc_start_sh(const anvil_proc_opts *o, const int in[2], const int out[2],
                        const int err[2], pid_t *pid)
{
    char **env = build_env(o->env);
    char *cmd = strdup(o->command);
    char arg0[] = "sh", arg1[] = "-c";
    char *argv[] = { arg0, arg1, cmd, NULL };
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    int rc = ENOMEM;
    if (!env || !cmd)
        goto out;
    if ((rc = posix_spawnattr_init(&attr)) != 0)
        goto out;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        posix_spawnattr_destroy(&attr);
        goto out;
    }
    /* Own process group (so kill(-pgid) reaches grandchildren and terminal
     * signals to the server don't), every signal back to SIG_DFL (the server
     * ignores SIGPIPE; a child must die of it), and an empty mask. */
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                  POSIX_SPAWN_SETSIGMASK)) ||
        (rc = posix_spawnattr_setpgroup(&attr, 0)) ||
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) ||
        (rc = posix_spawnattr_setsigmask(&attr, &none)) ||
        (rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2)))
        goto destroy;
    if (o->cwd && (rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd)))
        goto destroy;
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    /* The server has many fds and not every library opens with O_CLOEXEC. */
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)))
        goto destroy;
#endif
    /* glibc reports failures of the file actions and of execve as the return
     * value (the vfork-style child shares memory), so a bad cwd is an error
     * here, not an exit status 127. */
    rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, env);
destroy:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
out:
    free(cmd);
    free(env);
    return rc;
}
