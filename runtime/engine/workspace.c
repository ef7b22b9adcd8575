/*
 * runtime/engine/workspace.c — versioned run workspaces (workspace.h) on
 * libgit2.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "workspace.h"

#define COMMIT_REF "refs/heads/main"

/* Lazy initialisation (workspace.h says why). */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool initialised;

static int ready(char *err, size_t errlen)
{
    pthread_mutex_lock(&init_lock);
    if (!initialised)
        initialised = git_libgit2_init() >= 0;
    bool ok = initialised;
    pthread_mutex_unlock(&init_lock);
    if (!ok)
        snprintf(err, errlen, "libgit2 could not be initialised");
    return ok ? 0 : -1;
}

void anvil_workspace_shutdown(void)
{
    pthread_mutex_lock(&init_lock);
    if (initialised)
        git_libgit2_shutdown();
    initialised = false;
    pthread_mutex_unlock(&init_lock);
}

char *anvil_workspace_dir(const char *root, const char *run_id)
{
    char *out;
    return asprintf(&out, "%s/%s", root, run_id) < 0 ? NULL : out;
}

char *anvil_workspace_gitdir(const char *root, const char *run_id)
{
    /* Run ids never contain a dot, so <runId>.git cannot be another run's
     * working directory. */
    char *out;
    return asprintf(&out, "%s/%s.git", root, run_id) < 0 ? NULL : out;
}

/* err <- "<what>: <libgit2's last error>"; returns -1. */
static int git_fail(char *err, size_t errlen, const char *what)
{
    const git_error *e = git_error_last();
    snprintf(err, errlen, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
    return -1;
}

int anvil_workspace_make_dir(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0700) != 0 && errno != EEXIST) ? -1 : 0;
}

/* A task can nest directories deeper than any sane workspace; each level
 * holds a descriptor, so the walk stops here instead of running out. */
#define REMOVE_MAX_DEPTH 256

/* Remove `name` in the directory `parent`: a file or link by unlinkat, a
 * directory by emptying it first. The entries are opened relative to their
 * parent with O_NOFOLLOW, so a link swapped in meanwhile is not followed. */
static int remove_at(int parent, const char *name, int depth)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    if (depth >= REMOVE_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = remove_at(dirfd(d), de->d_name, depth + 1);
    int saved = errno;
    closedir(d);
    if (rc != 0) {
        errno = saved;
        return -1;
    }
    return (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) ? 0 : -1;
}

int anvil_workspace_remove(const char *path, char *err, size_t errlen)
{
    if (remove_at(AT_FDCWD, path, 0) == 0)
        return 0;
    snprintf(err, errlen, "removing %s: %s", path, strerror(errno));
    return -1;
}

/* Open the repository, creating it when `create` and it does not exist,
 * with `workdir` as its working directory (NULL: none needed). */
static int open_repo(git_repository **repo, const char *gitdir, const char *workdir, bool create,
                     char *err, size_t errlen)
{
    *repo = NULL;
    if (ready(err, errlen) != 0)
        return -1;
    struct stat sb;
    if (stat(gitdir, &sb) != 0) {
        if (!create) {
            snprintf(err, errlen, "workspace repository %s is missing", gitdir);
            return -1;
        }
        git_repository_init_options o;
        git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
        o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
        o.mode = GIT_REPOSITORY_INIT_SHARED_UMASK;
        o.initial_head = "main";
        if (git_repository_init_ext(repo, gitdir, &o) < 0)
            return git_fail(err, errlen, "creating the workspace repository");
    } else if (git_repository_open_bare(repo, gitdir) < 0) {
        return git_fail(err, errlen, "opening the workspace repository");
    }
    if (workdir) {
        if (anvil_workspace_make_dir(workdir) != 0) {
            snprintf(err, errlen, "cannot create workspace %s: %s", workdir, strerror(errno));
            git_repository_free(*repo);
            *repo = NULL;
            return -1;
        }
        if (git_repository_set_workdir(*repo, workdir, 0) < 0) {
            git_fail(err, errlen, "attaching the workspace");
            git_repository_free(*repo);
            *repo = NULL;
            return -1;
        }
    }
    return 0;
}

static int lookup_commit(git_repository *repo, const char *hex, git_commit **out, char *err,
                         size_t errlen)
{
    git_oid oid;
    if (git_oid_fromstr(&oid, hex) < 0) {
        snprintf(err, errlen, "workspace commit '%.60s' is not a commit id", hex);
        return -1;
    }
    if (git_commit_lookup(out, repo, &oid) < 0) {
        char what[96];
        snprintf(what, sizeof what, "reading workspace commit %.12s", hex);
        return git_fail(err, errlen, what);
    }
    return 0;
}

int anvil_workspace_commit(const char *gitdir, const char *workdir, const char *parent,
                           const char *message, char out[ANVIL_COMMIT_HEX], char *err,
                           size_t errlen)
{
    git_repository *repo = NULL;
    git_index *idx = NULL;
    git_tree *tree = NULL;
    git_commit *pc = NULL;
    git_signature *sig = NULL;
    git_reference *ref = NULL;
    int rc = -1;
    if (open_repo(&repo, gitdir, workdir, true, err, errlen) != 0)
        return -1;
    char *all[] = { "*" };
    git_strarray paths = { all, 1 };
    git_oid tree_oid, commit_oid;
    /* add_all stages new and changed files (FORCE: ignore rules do not
     * hide a task's files), update_all drops the deleted ones; both skip
     * files whose stat data says they are unchanged. */
    if (git_repository_index(&idx, repo) < 0 ||
        git_index_add_all(idx, &paths, GIT_INDEX_ADD_FORCE, NULL, NULL) < 0 ||
        git_index_update_all(idx, &paths, NULL, NULL) < 0 || git_index_write(idx) < 0 ||
        git_index_write_tree(&tree_oid, idx) < 0 || git_tree_lookup(&tree, repo, &tree_oid) < 0) {
        git_fail(err, errlen, "staging the workspace");
        goto done;
    }
    if (parent && lookup_commit(repo, parent, &pc, err, errlen) != 0)
        goto done;
    if (git_signature_new(&sig, "Anvil", "anvil@localhost", (git_time_t)time(NULL), 0) < 0) {
        git_fail(err, errlen, "signing the commit");
        goto done;
    }
    const git_commit *parents[1] = { pc };
    if (git_commit_create(&commit_oid, repo, NULL, sig, sig, "UTF-8", message, tree, pc ? 1 : 0,
                          parents) < 0) {
        git_fail(err, errlen, "committing the workspace");
        goto done;
    }
    /* For people browsing with git; the database is the record. */
    if (git_reference_create(&ref, repo, COMMIT_REF, &commit_oid, 1, "anvil attempt") < 0)
        git_error_clear();
    git_oid_tostr(out, ANVIL_COMMIT_HEX, &commit_oid);
    rc = 0;
done:
    git_reference_free(ref);
    git_signature_free(sig);
    git_commit_free(pc);
    git_tree_free(tree);
    git_index_free(idx);
    git_repository_free(repo);
    return rc;
}

/* ---- diffs ----------------------------------------------------------------- */

static const char *status_name(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return "added";
    case GIT_DELTA_DELETED:
        return "deleted";
    default:
        return "modified";   /* modified, type change (no rename detection) */
    }
}

static int fill_file(anvil_diff_file *f, const git_diff_delta *d, git_patch *patch, size_t *bytes)
{
    git_buf buf = { 0 };
    size_t a = 0, r = 0;
    if (git_patch_line_stats(NULL, &a, &r, patch) < 0 || git_patch_to_buf(&buf, patch) < 0) {
        git_buf_dispose(&buf);
        return -1;
    }
    const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
    f->path = strdup(path ? path : "");
    f->status = strdup(status_name(d->status));
    f->binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
    f->insertions = (int64_t)a;
    f->deletions = (int64_t)r;
    f->patch = strdup(buf.ptr ? buf.ptr : "");
    *bytes += buf.size + strlen(f->path ? f->path : "");
    git_buf_dispose(&buf);
    return f->path && f->status && f->patch ? 0 : -1;
}

static void free_files(anvil_diff_file *files, size_t n)
{
    for (size_t i = 0; files && i < n; i++) {
        free(files[i].path);
        free(files[i].status);
        free(files[i].patch);
    }
    free(files);
}

int anvil_workspace_diff(const char *gitdir, const char *from, const char *to, size_t max_bytes,
                         size_t *bytes_reached, anvil_diff_summary *sum,
                         anvil_diff_file **files_out, size_t *n_out, char *err, size_t errlen)
{
    *files_out = NULL;
    *n_out = 0;
    memset(sum, 0, sizeof *sum);
    git_repository *repo = NULL;
    git_commit *fc = NULL, *tc = NULL;
    git_tree *ft = NULL, *tt = NULL;
    git_diff *diff = NULL;
    anvil_diff_file *files = NULL;
    size_t n = 0;
    int rc = -1;
    if (open_repo(&repo, gitdir, NULL, false, err, errlen) != 0)
        return -1;
    if ((from && lookup_commit(repo, from, &fc, err, errlen) != 0) ||
        lookup_commit(repo, to, &tc, err, errlen) != 0)
        goto done;
    if ((fc && git_commit_tree(&ft, fc) < 0) || git_commit_tree(&tt, tc) < 0) {
        git_fail(err, errlen, "reading the workspace tree");
        goto done;
    }
    git_diff_options o;
    git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
    if (git_diff_tree_to_tree(&diff, repo, ft, tt, &o) < 0) {
        git_fail(err, errlen, "diffing the workspace");
        goto done;
    }
    size_t total = git_diff_num_deltas(diff), bytes = 0;
    if (total && !(files = calloc(total, sizeof *files))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (; n < total; n++) {
        git_patch *patch = NULL;
        if (git_patch_from_diff(&patch, diff, n) < 0 || !patch) {
            git_fail(err, errlen, "building a patch");
            goto done;
        }
        int frc = fill_file(&files[n], git_patch_get_delta(patch), patch, &bytes);
        git_patch_free(patch);
        if (frc != 0) {
            n++;   /* its strings are freed with the others */
            git_fail(err, errlen, "formatting a patch");
            goto done;
        }
        sum->insertions += files[n].insertions;
        sum->deletions += files[n].deletions;
        if (bytes > max_bytes) {
            n++;
            snprintf(err, errlen,
                     "the diff is larger than the %zu-byte limit (maxPayload): its first %zu of "
                     "%zu files come to %zu bytes", max_bytes, n, total, bytes);
            if (bytes_reached)
                *bytes_reached = bytes;
            rc = -2;
            goto done;
        }
    }
    sum->files_changed = (int64_t)n;
    *files_out = files;
    *n_out = n;
    files = NULL;
    n = 0;
    rc = 0;
done:
    if (rc != 0)
        memset(sum, 0, sizeof *sum);
    free_files(files, n);
    git_diff_free(diff);
    git_tree_free(ft);
    git_tree_free(tt);
    git_commit_free(fc);
    git_commit_free(tc);
    git_repository_free(repo);
    return rc;
}

int anvil_workspace_parent(const char *gitdir, const char *commit, char out[ANVIL_COMMIT_HEX],
                           bool *has_parent, char *err, size_t errlen)
{
    git_repository *repo = NULL;
    git_commit *c = NULL;
    *has_parent = false;
    out[0] = '\0';
    if (open_repo(&repo, gitdir, NULL, false, err, errlen) != 0)
        return -1;
    int rc = lookup_commit(repo, commit, &c, err, errlen);
    if (rc == 0 && git_commit_parentcount(c) > 0) {
        git_oid_tostr(out, ANVIL_COMMIT_HEX, git_commit_parent_id(c, 0));
        *has_parent = true;
    }
    git_commit_free(c);
    git_repository_free(repo);
    return rc;
}

/* ---- checkout ---------------------------------------------------------------- */

int anvil_workspace_checkout(const char *gitdir, const char *workdir, const char *commit,
                             char *err, size_t errlen)
{
    git_repository *repo = NULL;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    git_treebuilder *tb = NULL;
    git_reference *ref = NULL;
    int rc = -1;
    if (open_repo(&repo, gitdir, workdir, true, err, errlen) != 0)
        return -1;
    if (commit) {
        if (lookup_commit(repo, commit, &c, err, errlen) != 0)
            goto done;
        if (git_commit_tree(&tree, c) < 0) {
            git_fail(err, errlen, "reading the workspace tree");
            goto done;
        }
    } else {
        git_oid empty;
        if (git_treebuilder_new(&tb, repo, NULL) < 0 || git_treebuilder_write(&empty, tb) < 0 ||
            git_tree_lookup(&tree, repo, &empty) < 0) {
            git_fail(err, errlen, "building the empty tree");
            goto done;
        }
    }
    git_checkout_options o;
    git_checkout_options_init(&o, GIT_CHECKOUT_OPTIONS_VERSION);
    /* FORCE rewrites what differs, REMOVE_* deletes every file the tree
     * does not have: the directory ends up exactly the tree. */
    o.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED |
                          GIT_CHECKOUT_REMOVE_IGNORED;
    if (git_checkout_tree(repo, (const git_object *)tree, &o) < 0) {
        git_fail(err, errlen, "checking out the workspace");
        goto done;
    }
    if (c && git_reference_create(&ref, repo, COMMIT_REF, git_commit_id(c), 1, "anvil rewind") < 0)
        git_error_clear();
    rc = 0;
done:
    git_reference_free(ref);
    git_treebuilder_free(tb);
    git_tree_free(tree);
    git_commit_free(c);
    git_repository_free(repo);
    return rc;
}

bool anvil_workspace_has(const char *gitdir, const char *commit)
{
    git_repository *repo = NULL;
    char err[64];
    if (open_repo(&repo, gitdir, NULL, false, err, sizeof err) != 0) {
        git_error_clear();
        return false;
    }
    bool ok = true;
    if (commit) {
        git_commit *c = NULL;
        ok = lookup_commit(repo, commit, &c, err, sizeof err) == 0;
        git_commit_free(c);
        git_error_clear();
    }
    git_repository_free(repo);
    return ok;
}
