/* vs_health.h - the checks behind /readyz and the data dir's start-up
 * check, as small functions the server and tests share:
 *
 *  - vs_dir_check: is a directory writable and has it room? statvfs for the
 *    free space against a floor, plus a real write probe (create, write
 *    4 KiB, fsync, unlink), because free space alone misses a read-only
 *    mount, a dir owned by someone else, or a quota;
 *  - vs_err_text_is_storage: does an error message say the disk is full,
 *    read-only or failing (SQLITE_FULL, ENOSPC, EROFS, EIO)?
 *  - vs_dead_watch: how many dead letters appeared in a recent window,
 *    from samples of the queue's dead count taken when readiness is asked.
 *
 * No globals; the caller owns every struct and its locking. */
#ifndef VS_HEALTH_H
#define VS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

typedef enum vs_dir_state {
    VS_DIR_OK = 0,
    VS_DIR_UNWRITABLE = 1,   /* read-only, permission denied, missing, I/O error */
    VS_DIR_FULL = 2          /* ENOSPC/EDQUOT on the probe, or free space under the floor */
} vs_dir_state;

/* Checks dir: free space (statvfs, bytes available to this user) at
 * least min_free_bytes (0 = no floor), and a probe file
 * dir/.visage-probe-<pid> can be written and synced. On a problem writes
 * a message naming the path, the operation and the errno text into msg
 * (cap bytes). */
vs_dir_state vs_dir_check(const char *dir, uint64_t min_free_bytes, char *msg, size_t cap);

/* "disk_full" / "unwritable" / "ok". */
const char *vs_dir_state_name(vs_dir_state s);

/* 1 when an error message tells of storage that is full, read-only or
 * failing: a worker that sees these will fail on every message until an
 * operator acts, so readiness should say so. */
int vs_err_text_is_storage(const char *msg);

#define VS_DEAD_WATCH_SAMPLES 32

/* Samples (time, dead count). The window is split in
 * VS_DEAD_WATCH_SAMPLES-2 steps: at most one sample is kept per step. */
typedef struct vs_dead_watch {
    int64_t window_ms;                       /* how far back "new" reaches */
    int64_t t[VS_DEAD_WATCH_SAMPLES], dead[VS_DEAD_WATCH_SAMPLES];
    int n, next;
} vs_dead_watch;

/* window_ms <= 0: 5 minutes. */
void vs_dead_watch_init(vs_dead_watch *w, int64_t window_ms);

/* Records the dead count seen at now_ms and returns how many dead letters
 * appeared within the window: now's count minus the lowest count sampled
 * in the window (lowest, so an operator who clears the list is not
 * counted as growth later; 0 until a second sample exists). */
int64_t vs_dead_watch_add(vs_dead_watch *w, int64_t now_ms, int64_t dead);

#endif
