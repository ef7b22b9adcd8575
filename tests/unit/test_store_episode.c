/*
 * tests/unit/test_store_episode.c — the episodes of an unavailable database
 * (store/store_episode.c): opened once by the first failure, not ended by a
 * commit smaller than what failed (a full disk still has room for those),
 * ended by a commit as large as the smallest failed write, by any commit
 * after the quiet period, and by any commit when what failed wrote nothing
 * (a lock held past the busy timeout).
 */
#include "store_episode.h"
#include "unit.h"

#define T0 INT64_C(1000000)

/* The sequence StorageFull met: a 100-page write fails, a 58-page launch
 * still fits and commits, the 100-page write fails again, then 58-page
 * launches fail too; once space is back, a 58-page launch ends it. */
static void test_full_disk(void)
{
    anvil_store_episode ep = {0};
    CHECK(!anvil_store_episode_committed(&ep, 10, T0));   /* nothing open */
    CHECK(anvil_store_episode_failed(&ep, 100, T0));       /* opens: log it */
    CHECK(!anvil_store_episode_failed(&ep, 100, T0 + 1));  /* the same commit's second report */
    CHECK(!anvil_store_episode_committed(&ep, 58, T0 + 2)); /* fit in the room left */
    CHECK(ep.open);
    CHECK(!anvil_store_episode_failed(&ep, 100, T0 + 3));
    CHECK(!anvil_store_episode_failed(&ep, 58, T0 + 4));
    CHECK_INT(ep.need_pages, 58);
    CHECK(!anvil_store_episode_committed(&ep, 12, T0 + 5)); /* still smaller */
    CHECK(anvil_store_episode_committed(&ep, 58, T0 + 6));  /* space is back: log it */
    CHECK(!ep.open);
    CHECK(!anvil_store_episode_committed(&ep, 58, T0 + 7)); /* logged once */
    /* a later failure is a new episode, logged again */
    CHECK(anvil_store_episode_failed(&ep, 30, T0 + 8));
    CHECK_INT(ep.opened_ms, T0 + 8);
}

/* One large write failed and nobody repeated it: smaller commits end the
 * episode once no failure has been seen for the quiet period. */
static void test_quiet_period(void)
{
    anvil_store_episode ep = {0};
    CHECK(anvil_store_episode_failed(&ep, 5000, T0));
    CHECK(!anvil_store_episode_committed(&ep, 40, T0 + ANVIL_STORE_EPISODE_QUIET_MS - 1));
    CHECK(!anvil_store_episode_failed(&ep, 5000, T0 + 100));   /* restarts the quiet period */
    CHECK(!anvil_store_episode_committed(&ep, 40, T0 + ANVIL_STORE_EPISODE_QUIET_MS + 99));
    CHECK(anvil_store_episode_committed(&ep, 40, T0 + ANVIL_STORE_EPISODE_QUIET_MS + 100));
}

/* A lock held past the busy timeout fails BEGIN before anything is written:
 * the next commit of any size shows the database is back. */
static void test_failure_without_pages(void)
{
    anvil_store_episode ep = {0};
    CHECK(anvil_store_episode_failed(&ep, 0, T0));
    CHECK(anvil_store_episode_committed(&ep, 0, T0 + 1));
    CHECK(anvil_store_episode_failed(&ep, -1, T0 + 2));     /* no count: as 0 */
    CHECK_INT(ep.need_pages, 0);
    CHECK(anvil_store_episode_committed(&ep, 3, T0 + 3));
}

int main(void)
{
    test_full_disk();
    test_quiet_period();
    test_failure_without_pages();
    UNIT_DONE();
}
