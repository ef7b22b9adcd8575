/*
 * runtime/engine/workspace.h — versioned run workspaces (libgit2).
 *
 * A run's tasks execute in <root>/<runId>/. When its workflow versions the
 * workspace (the default), each ended task attempt commits the whole
 * directory to a repository kept beside it, <root>/<runId>.git: outside the
 * directory, so a task cannot see, break or rewrite the history (`git`
 * inside the workspace finds no repository, as before). Commits form one
 * line per run; each names the run, node, iteration and attempt, and its
 * parent is the run's previous commit as recorded in the database (the
 * database, not a git ref, says which commit is current: after a rewind the
 * next commit continues from the rewound one). refs/heads/main follows for
 * people who open the repository with git; nothing reads it.
 *
 * Commit ids travel as 40-character hex strings. Every function opens the
 * repository itself and holds nothing between calls, so the loop thread
 * (commits, diffs) and a rewind's worker thread (checkout) never share
 * libgit2 state; a run's commits and its rewind never overlap (a rewind
 * waits for the run's tasks).
 *
 * Errors: -1 with a message in err (the caller answers VcsError); the
 * diff's -2 means "larger than max_bytes" (PayloadTooLarge).
 */
#ifndef ANVIL_WORKSPACE_H
#define ANVIL_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>

#include "anvil_types.h"

#define ANVIL_COMMIT_HEX 41     /* 40 hex digits and a NUL */

/* libgit2 is initialised by the first function below that needs it (any
 * thread), not at startup: git_libgit2_init takes about 10 ms here, which
 * a server that may never commit should not pay before it answers.
 * Shutdown releases it while no other thread uses it (the engine's end);
 * a later use initialises it again. */
void anvil_workspace_shutdown(void);

/* Where a run's working directory and repository live (malloc'd; NULL when
 * out of memory). */
char *anvil_workspace_dir(const char *root, const char *run_id);
char *anvil_workspace_gitdir(const char *root, const char *run_id);

/* Create a working directory and its missing parents (mode 0700). 0, or
 * -1 with errno set. */
int anvil_workspace_make_dir(const char *path);

/* Remove `path` and everything under it (deleteRun). Symbolic links are
 * removed, never followed, so a task's link cannot make this reach
 * outside the run's directory. A path already gone is success. 0, or -1
 * with a message in err (what was removed stays removed). */
int anvil_workspace_remove(const char *path, char *err, size_t errlen);

/* Commit the whole working directory (every file, ignore rules do not
 * apply) as a child of `parent` (NULL: the first commit), creating the
 * repository on first use. out gets the new commit's id. */
int anvil_workspace_commit(const char *gitdir, const char *workdir, const char *parent,
                           const char *message, char out[ANVIL_COMMIT_HEX], char *err,
                           size_t errlen);

/* The diff from commit `from` (NULL: an empty workspace) to `to`: *sum
 * and one anvil_diff_file per changed file (*files malloc'd, *n of them,
 * each member malloc'd: the layout the generated response types free).
 * patch is the file's unified diff (git format; for a binary file the
 * "Binary files ... differ" line). -2 when the patches add up to more than
 * max_bytes (err says how much, *bytes_reached too when not NULL: the size
 * the patches had come to when the limit was passed; nothing is returned). */
int anvil_workspace_diff(const char *gitdir, const char *from, const char *to, size_t max_bytes,
                         size_t *bytes_reached, anvil_diff_summary *sum, anvil_diff_file **files,
                         size_t *n, char *err, size_t errlen);

/* The first parent of `commit`: *has_parent false (out "") for the run's
 * first commit. */
int anvil_workspace_parent(const char *gitdir, const char *commit, char out[ANVIL_COMMIT_HEX],
                           bool *has_parent, char *err, size_t errlen);

/* Make the working directory exactly commit's tree (NULL: empty): files of
 * the tree are written, every other file is removed. Does not touch the
 * database. */
int anvil_workspace_checkout(const char *gitdir, const char *workdir, const char *commit,
                             char *err, size_t errlen);

/* Whether `gitdir` holds a repository with commit `commit` (NULL: only
 * that the repository opens). */
bool anvil_workspace_has(const char *gitdir, const char *commit);

#endif
