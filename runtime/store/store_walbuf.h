/*
 * runtime/store/store_walbuf.h — a SQLite VFS that appends a commit's WAL
 * frames in one write.
 *
 * SQLite appends each WAL frame as two writes (its 24-byte header, then
 * its page), so a group-commit batch of 20 dirty pages cost 40 pwrite
 * calls, a third of a launch's CPU on a VM where every system call is
 * dear (bench/RESULTS.md, "Launches"). This VFS wraps the default one and
 * gathers consecutive frames of a WAL file in memory, then writes them at
 * once when the frame that commits the transaction is complete, inside
 * that frame's own write call. So:
 *
 *   - a COMMIT returns only after its frames are in the file (the OS's
 *     page cache, as before: synchronous=NORMAL), and before SQLite
 *     publishes the commit in the shared WAL index, so other connections
 *     and processes never see a frame that is not in the file, and a
 *     kill -9 after COMMIT loses nothing;
 *   - a failed write (a full disk) fails that COMMIT, as it would have
 *     without the buffer;
 *   - any other access to the WAL (a read, a sync, a truncate, a size,
 *     a file control, a close) writes what is gathered first, and any
 *     write that does not follow the frame pattern goes through as it
 *     came, after what is gathered: an unexpected pattern only loses the
 *     saving, never a write.
 *
 * Only the WAL file is buffered; the database file, the shared-memory
 * index and every other file go straight to the wrapped VFS.
 */
#ifndef ANVIL_STORE_WALBUF_H
#define ANVIL_STORE_WALBUF_H

/* Register the VFS (once; later calls only return its name) and return
 * the name to pass to sqlite3_open_v2, or NULL when SQLite has no default
 * VFS to wrap or registration failed (open with the default then). The
 * name is static. */
const char *anvil_store_walbuf_vfs(void);

#endif
