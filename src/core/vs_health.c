/* vs_health.c - readiness checks (see vs_health.h): a data dir that is
 * writable with room to spare, storage errors recognised by their text,
 * and the growth of the dead-letter list. Cheap enough for a probe called
 * every few seconds once the caller caches vs_dir_check for a second. */
#include "vs_health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ENOSPC and EDQUOT mean "full"; anything else means "cannot write". */
static vs_dir_state state_of_errno(int e) { return e == ENOSPC || e == EDQUOT ? VS_DIR_FULL : VS_DIR_UNWRITABLE; }

/* Creates, writes 4 KiB to, syncs and removes a probe file in dir. */
static vs_dir_state write_probe(const char *dir, char *msg, size_t cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/.visage-probe-%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, cap, "data dir %s is not writable: create %s: %s", dir, path, strerror(e));
        return state_of_errno(e);
    }
    static const char zeros[4096];
    const char *op = "write";
    int e = 0;
    if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros) e = errno ? errno : ENOSPC;
    else if (op = "fsync", fsync(fd) != 0) e = errno;
    close(fd);
    unlink(path);
    if (!e) return VS_DIR_OK;
    vs_dir_state st = state_of_errno(e);
    snprintf(msg, cap, "data dir %s %s: %s %s: %s", dir, st == VS_DIR_FULL ? "is full" : "is not writable", op, path,
             strerror(e));
    return st;
}

vs_dir_state vs_dir_check(const char *dir, uint64_t min_free_bytes, char *msg, size_t cap) {
    if (cap) msg[0] = '\0';
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0) {
        snprintf(msg, cap, "data dir %s: statvfs: %s", dir, strerror(errno));
        return VS_DIR_UNWRITABLE;
    }
    uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    if (sv.f_flag & ST_RDONLY) {
        snprintf(msg, cap, "data dir %s is not writable: it is on a read-only file system", dir);
        return VS_DIR_UNWRITABLE;
    }
    vs_dir_state st = write_probe(dir, msg, cap);
    if (st != VS_DIR_OK) return st;
    if (min_free_bytes && avail < min_free_bytes) {
        snprintf(msg, cap, "data dir %s is nearly full: %llu MB free, below the floor of %llu MB (VISAGE_MIN_FREE_MB)",
                 dir, (unsigned long long)(avail >> 20), (unsigned long long)(min_free_bytes >> 20));
        return VS_DIR_FULL;
    }
    return VS_DIR_OK;
}

const char *vs_dir_state_name(vs_dir_state s) {
    return s == VS_DIR_FULL ? "disk_full" : s == VS_DIR_UNWRITABLE ? "unwritable" : "ok";
}

int vs_err_text_is_storage(const char *msg) {
    static const char *const marks[] = {
        "database or disk is full",        /* SQLITE_FULL */
        "No space left on device",         /* ENOSPC */
        "Disk quota exceeded",             /* EDQUOT */
        "Read-only file system",           /* EROFS */
        "attempt to write a readonly database", /* SQLITE_READONLY */
        "disk I/O error",                  /* SQLITE_IOERR */
        "Input/output error",              /* EIO */
    };
    if (!msg) return 0;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (strcasestr(msg, marks[i])) return 1;
    return 0;
}

void vs_dead_watch_init(vs_dead_watch *w, int64_t window_ms) {
    memset(w, 0, sizeof *w);
    w->window_ms = window_ms > 0 ? window_ms : 5 * 60 * 1000;
}

int64_t vs_dead_watch_add(vs_dead_watch *w, int64_t now_ms, int64_t dead) {
    int64_t step = w->window_ms / (VS_DEAD_WATCH_SAMPLES - 2);
    int last = (w->next + VS_DEAD_WATCH_SAMPLES - 1) % VS_DEAD_WATCH_SAMPLES;
    if (w->n == 0 || now_ms - w->t[last] >= step) { /* keep one sample per step */
        w->t[w->next] = now_ms;
        w->dead[w->next] = dead;
        w->next = (w->next + 1) % VS_DEAD_WATCH_SAMPLES;
        if (w->n < VS_DEAD_WATCH_SAMPLES) w->n++;
    }
    int64_t low = dead;
    for (int i = 0; i < w->n; i++)
        if (now_ms - w->t[i] <= w->window_ms && w->dead[i] < low) low = w->dead[i];
    return dead - low;
}
