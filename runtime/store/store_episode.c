/*
 * runtime/store/store_episode.c — the start and end of an episode of an
 * unavailable database (store_episode.h says why it is not simply "the
 * next successful commit").
 */
#include "store_episode.h"

bool anvil_store_episode_failed(anvil_store_episode *ep, int64_t pages, int64_t now_ms)
{
    if (pages < 0)
        pages = 0;
    ep->last_failed_ms = now_ms;
    if (ep->open) {
        if (pages < ep->need_pages)
            ep->need_pages = pages;
        return false;
    }
    ep->open = true;
    ep->need_pages = pages;
    ep->opened_ms = now_ms;
    return true;
}

bool anvil_store_episode_committed(anvil_store_episode *ep, int64_t pages, int64_t now_ms)
{
    if (!ep->open)
        return false;
    /* A write that failed for its size fits now; a failure that had no
     * size (a lock held past the busy timeout before anything was
     * written) needs 0 pages, so any commit ends it. */
    bool fits = pages >= ep->need_pages;
    bool quiet = now_ms - ep->last_failed_ms >= ANVIL_STORE_EPISODE_QUIET_MS;
    if (!fits && !quiet)
        return false;
    ep->open = false;
    return true;
}
