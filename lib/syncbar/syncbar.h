/*
 * syncbar: a durability barrier for an object store on this machine's disk.
 *
 * Why. An S3 service acknowledges a PUT once the object is durable. The local stack's
 * store, versitygw v1.8.0 over a directory, does not fsync: an object it acknowledged
 * may still be only in the page cache, and a power cut in the next seconds loses it while
 * the database row that names it (PostgreSQL fsyncs) survives. A syncbar closes that gap
 * when the store's directory is on a filesystem of this machine: syncbar_wait() returns
 * once everything written to that filesystem before the call is on disk (syncfs(2) on a
 * directory there; any directory of that filesystem will do, so the store's own private
 * directory needs no permission). The Resource Service waits on it after the object is
 * written and before it commits the row and answers 200, and after a copy to PERMANENT
 * before the row moves and the old object is deleted.
 *
 * Group commit. Concurrent callers share syncs: a caller needs a sync that *started*
 * after it called (one already running may have begun before its write ended), so it
 * either starts one or waits for the next; N waiters cost at most two syncs, not N.
 *
 * Disabled (syncbar_new with path NULL or ""), syncbar_wait returns 0 at once: for a
 * remote store that is durable on acknowledgement (S3, a store in another container).
 *
 * Thread-safe. The owner frees it after the last wait.
 */
#ifndef FERMATA_SYNCBAR_H
#define FERMATA_SYNCBAR_H

#include <stdint.h>

typedef struct syncbar syncbar;

/* The sync itself: 0 or -errno. NULL means syncfs(fd). For tests. */
typedef int (*syncbar_fn)(void *ud, int fd);

/* path: a directory on the store's filesystem (NULL or "" disables the barrier). Returns
 * 0 and *out, or -errno when the directory cannot be opened (the caller refuses to start:
 * a configured barrier that does nothing would be a silent lie). */
int syncbar_new(const char *path, syncbar_fn fn, void *ud, syncbar **out);
void syncbar_free(syncbar *b); /* NULL ok */

/* Returns once a sync that started after this call has finished: 0, or its -errno (EIO:
 * the disk lost writes; the caller must not acknowledge). */
int syncbar_wait(syncbar *b);

/* Syncs run so far (for metrics and tests). */
uint64_t syncbar_count(syncbar *b);

#endif
