/*
 * runtime/store/store_episode.h — when the database became unavailable and
 * when it is available again, so each is logged once (pure: no SQLite, no
 * clock; store_db.c feeds it).
 *
 * A full disk is not all or nothing. SQLite appends a commit's pages to
 * the WAL (or grows the file), and a commit succeeds while its pages fit in
 * the room already allocated: during a full disk, small writes keep
 * succeeding in between failing large ones (tests/integration/
 * test_engine.py StorageFull: a 58-page launch commits just after a
 * 100-page write failed, with 2 KiB of rlimit left). Ending the episode at
 * any successful commit therefore logged "available again" and then
 * "unavailable" again within a millisecond, several times per episode.
 *
 * So an episode ends only with evidence that what failed would now work:
 * a commit at least as large (in pages written) as the smallest write that
 * failed in the episode; or, failing that, any commit after a quiet period
 * without a failure (longer than the engine's longest repair back-off, so
 * a run write that still failed would have been retried and seen), which
 * ends an episode whose only failure was one large write nobody repeated.
 */
#ifndef ANVIL_STORE_EPISODE_H
#define ANVIL_STORE_EPISODE_H

#include <stdbool.h>
#include <stdint.h>

/* No failure for this long, then any commit ends the episode. */
#define ANVIL_STORE_EPISODE_QUIET_MS 60000

typedef struct anvil_store_episode {
    bool open;              /* unavailable was logged, available again not yet */
    int64_t need_pages;     /* the smallest write that failed in the episode */
    int64_t opened_ms;      /* monotonic time of its first failure */
    int64_t last_failed_ms; /* and of its last */
} anvil_store_episode;

/* A write that had written (or was writing) `pages` pages failed because
 * the database was unavailable, at monotonic time now_ms. Returns true
 * when this opens an episode: the caller logs the cause. */
bool anvil_store_episode_failed(anvil_store_episode *ep, int64_t pages, int64_t now_ms);

/* A commit of `pages` pages succeeded at monotonic time now_ms. Returns
 * true when this ends the open episode: the caller logs the recovery. */
bool anvil_store_episode_committed(anvil_store_episode *ep, int64_t pages, int64_t now_ms);

#endif
