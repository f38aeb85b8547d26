/* vs_store_fs.c - the file://DIR blob store: object {bucket}/{key} is the file
 * DIR/{bucket}/{key}. Tuned for the embedded mode's few-hundred-KB images:
 * every put is atomic (temp file + rename) and durable (fsync of the file and
 * of its directory) before it returns, because a 202 for an image means it
 * is on disk.
 *
 * Threading: no locks. The only state is the root path, written once at open;
 * everything else lives on the caller's stack, and the filesystem arbitrates
 * between threads and processes: temp files have random names created with
 * O_EXCL, rename() is atomic, and a put that races with a del pruning the
 * now-empty directories just re-creates them and retries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_store_internal.h"

#define KEY_MAX 512
#define TMP_PREFIX ".vstmp."
#define TMP_PREFIX_LEN 7
#define PUT_RETRIES 16

typedef struct fs_store {
    vs_store base;
    char *root;      /* absolute, from realpath (so no trailing '/' unless it is "/") */
    size_t root_len;
} fs_store;

/* 1 when name (one path segment) is a put's temp file, hidden from list. */
static int is_tmp_name(const char *name) { return !strncmp(name, TMP_PREFIX, TMP_PREFIX_LEN); }

/* Checks bucket and key for op; a bucket is one segment here (a '/' in it
 * would alias bucket "a" key "b/c"), and no key segment may look like one of
 * our temp files, which list skips. */
static vs_err check_args(const char *op, const char *bucket, const char *key, vs_error *err) {
    char pb[160], pk[160];
    if (!vs_store_key_ok(bucket) || strchr(bucket, '/'))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store %s: invalid bucket \"%s\"", op,
                       vs_store_printable(bucket, pb, sizeof pb));
    int ok = vs_store_key_ok(key);
    for (const char *seg = key; ok && seg; seg = strchr(seg, '/'), seg = seg ? seg + 1 : NULL)
        if (is_tmp_name(seg)) ok = 0;
    if (!ok)
        return vs_fail(err, VS_ERR_INVALID_ARG, "store %s %s: invalid key \"%s\"", op, vs_store_printable(bucket, pb, sizeof pb),
                       vs_store_printable(key, pk, sizeof pk));
    return VS_OK;
}

/* Writes root/bucket/key into out; 0 when it does not fit. */
static int object_path(const fs_store *s, const char *bucket, const char *key, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/%s/%s", s->root, bucket, key);
    return n > 0 && (size_t)n < cap;
}

/* fsyncs a directory so that entries created, renamed or removed in it are
 * on disk. Returns 0 or -1 with errno set. */
static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Creates every missing directory of path below the first `keep` bytes (the
 * store root, which exists), mode 0700 (the folders name tenants and
 * hold biometric data: owner only, whatever the umask), fsyncing the parent of each one
 * created so the new entry is durable. Returns 0 or -1 with errno set. */
static int make_dirs(char *path, size_t keep) {
    size_t n = strlen(path);
    for (size_t i = keep + 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        int rc = mkdir(path, 0700);
        int e = errno;
        if (rc == 0) {
            char *slash = strrchr(path, '/');
            if (slash && slash != path) {
                *slash = '\0';
                rc = fsync_dir(path);
                *slash = '/';
            } else {
                rc = fsync_dir(slash ? "/" : ".");
            }
            e = errno;
        } else if (e == EEXIST) {
            rc = 0;
        }
        path[i] = saved;
        if (rc != 0) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

/* Writes all n bytes, retrying short writes and EINTR; 0 or -1 with errno. */
static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates a uniquely named temp file in dir (made if missing) and returns its
 * fd, its name in tmp. Retries when a concurrent del pruned a directory
 * between our mkdirs or between the mkdir and the open (once the temp file
 * is in, rmdir cannot remove its directory), or on the 2^-64 chance of a
 * name clash. */
static int open_temp(const fs_store *s, char *dir, char *tmp, size_t cap) {
    for (int attempt = 0; attempt < PUT_RETRIES; attempt++) {
        if (make_dirs(dir, s->root_len) != 0) {
            if (errno == ENOENT) continue; /* a parent was pruned between two mkdirs */
            return -1;
        }
        uint8_t rnd[8];
        char hex[17];
        if (vs_random_bytes(rnd, sizeof rnd) != 0) {
            errno = EIO;
            return -1;
        }
        vs_hex(rnd, sizeof rnd, hex);
        int n = snprintf(tmp, cap, "%s/" TMP_PREFIX "%s", dir, hex);
        if (n < 0 || (size_t)n >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* renamed to the blob: owner only */
        if (fd >= 0) return fd;
        if (errno != ENOENT && errno != EEXIST) return -1;
    }
    return -1;
}

/* Writes the object to a temp file beside it, (sync: fsyncs it), renames it
 * over the target and (sync: fsyncs the directory): readers see the old or
 * the new bytes; with sync, after return a crash keeps the new ones. */
static vs_err put_one(fs_store *s, const char *bucket, const char *key, const void *data, size_t len, int sync,
                      vs_error *err) {
    vs_err rc = check_args("put", bucket, key, err);
    if (rc != VS_OK) return rc;
    if (!data && len) return vs_fail(err, VS_ERR_INVALID_ARG, "store put %s/%s: NULL data", bucket, key);
    char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
    if (!object_path(s, bucket, key, path, sizeof path))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store put %s/%s: path too long", bucket, key);
    memcpy(dir, path, strlen(path) + 1);
    *strrchr(dir, '/') = '\0';

    int fd = open_temp(s, dir, tmp, sizeof tmp);
    if (fd < 0) return vs_fail(err, VS_ERR_IO, "store put %s/%s: %s", bucket, key, strerror(errno));
    const char *step = "write";
    int ok = write_all(fd, data, len) == 0;
    if (ok && sync) {
        step = "fsync";
        ok = fsync(fd) == 0;
    }
    int e = errno;
    if (close(fd) != 0 && ok) {
        step = "close";
        ok = 0;
        e = errno;
    }
    if (ok) {
        step = "rename";
        ok = rename(tmp, path) == 0;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        return vs_fail(err, VS_ERR_IO, "store put %s/%s: %s: %s", bucket, key, step, strerror(e));
    }
    /* ENOENT: a concurrent del of this very key removed it and pruned the
     * directory - the put happened, then the del */
    if (sync && fsync_dir(dir) != 0 && errno != ENOENT)
        return vs_fail(err, VS_ERR_IO, "store put %s/%s: fsync directory: %s", bucket, key, strerror(errno));
    return VS_OK;
}

/* One durable put. content_type is not kept: readers go by the key's extension. */
static vs_err fs_put(vs_store *st, const char *bucket, const char *key, const void *data, size_t len,
                     const char *content_type, vs_error *err) {
    (void)content_type;
    return put_one((fs_store *)st, bucket, key, data, len, 1, err);
}

/* Group commit: every object written and renamed without its own fsync,
 * then one syncfs() of the store's filesystem, which returns once all dirty
 * data and metadata (the renames included) are on disk. For N small objects
 * that is one journal commit instead of 2N. */
static vs_err fs_put_many(vs_store *st, const vs_blob *b, int n, vs_error *err) {
    fs_store *s = (fs_store *)st;
    for (int i = 0; i < n; i++) {
        vs_err rc = put_one(s, b[i].bucket, b[i].key, b[i].data, b[i].len, n == 1, err);
        if (rc != VS_OK) return rc;
    }
    if (n <= 1) return VS_OK;
    int fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return vs_fail(err, VS_ERR_IO, "store put of %d objects: syncfs: %s", n, strerror(e));
    }
    close(fd);
    return VS_OK;
}

/* Reads a whole object, refusing (before allocating) one larger than
 * max_bytes; never allocates more than the size stat reported. */
static vs_err fs_get(vs_store *st, const char *bucket, const char *key, size_t max_bytes, uint8_t **data,
                     size_t *len, vs_error *err) {
    fs_store *s = (fs_store *)st;
    *data = NULL;
    *len = 0;
    vs_err rc = check_args("get", bucket, key, err);
    if (rc != VS_OK) return rc;
    char path[PATH_MAX];
    if (!object_path(s, bucket, key, path, sizeof path))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store get %s/%s: path too long", bucket, key);
    /* O_NONBLOCK: a FIFO planted in the tree must not hang a worker. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return vs_fail(err, VS_ERR_NOT_FOUND, "store get %s/%s: no such object", bucket, key);
        return vs_fail(err, VS_ERR_IO, "store get %s/%s: %s", bucket, key, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = vs_fail(err, VS_ERR_IO, "store get %s/%s: stat: %s", bucket, key, strerror(errno));
        goto out;
    }
    if (S_ISDIR(sb.st_mode)) {
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "store get %s/%s: no such object (a directory)", bucket, key);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = vs_fail(err, VS_ERR_IO, "store get %s/%s: not a regular file", bucket, key);
        goto out;
    }
    if ((uint64_t)sb.st_size > (uint64_t)max_bytes) {
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "store get %s/%s: %lld bytes, over the limit of %zu", bucket, key,
                     (long long)sb.st_size, max_bytes);
        goto out;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *buf = vs_malloc(size ? size : 1);
    if (!buf) {
        rc = vs_fail(err, VS_ERR_NOMEM, "store get %s/%s: %zu bytes", bucket, key, size);
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = vs_fail(err, VS_ERR_IO, "store get %s/%s: read: %s", bucket, key, strerror(errno));
            vs_free(buf);
            goto out;
        }
        if (r == 0) break; /* shrank under us: objects are replaced, not truncated, so only by hand */
        got += (size_t)r;
    }
    *data = buf;
    *len = got;
out:
    close(fd);
    return rc;
}

/* Removes an object (missing is fine), then the directories it leaves empty,
 * up to but not including the bucket; errors there are ignored because an
 * empty directory is harmless and a concurrent put may just have filled it. */
static vs_err fs_del(vs_store *st, const char *bucket, const char *key, vs_error *err) {
    fs_store *s = (fs_store *)st;
    vs_err rc = check_args("del", bucket, key, err);
    if (rc != VS_OK) return rc;
    char path[PATH_MAX];
    if (!object_path(s, bucket, key, path, sizeof path))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store del %s/%s: path too long", bucket, key);
    if (unlink(path) != 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR) return VS_OK;
        return vs_fail(err, VS_ERR_IO, "store del %s/%s: %s", bucket, key, strerror(errno));
    }
    size_t bucket_end = s->root_len + 1 + strlen(bucket);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    (void)fsync_dir(path); /* erasure should survive a crash; best effort */
    while (strlen(path) > bucket_end) {
        if (rmdir(path) != 0) break;
        *strrchr(path, '/') = '\0';
    }
    return VS_OK;
}

/* exists = 1 for a regular file at bucket/key, 0 when missing. */
static vs_err fs_exists(vs_store *st, const char *bucket, const char *key, int *exists, vs_error *err) {
    fs_store *s = (fs_store *)st;
    *exists = 0;
    vs_err rc = check_args("exists", bucket, key, err);
    if (rc != VS_OK) return rc;
    char path[PATH_MAX];
    if (!object_path(s, bucket, key, path, sizeof path))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store exists %s/%s: path too long", bucket, key);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return VS_OK;
        return vs_fail(err, VS_ERR_IO, "store exists %s/%s: %s", bucket, key, strerror(errno));
    }
    *exists = S_ISREG(sb.st_mode);
    return VS_OK;
}

typedef struct walk_ctx {
    const char *bucket;
    const char *prefix;
    size_t prefix_len;
    vs_store_list_cb cb;
    void *cb_ctx;
    int stopped;
    char key[KEY_MAX + 2 + NAME_MAX]; /* key of the directory being walked, relative to the bucket */
    vs_error *err;
} walk_ctx;

/* Walks the directory open as fd whose key (relative to the bucket) is
 * w->key[0..klen), reporting files whose key starts with the prefix and
 * descending only into directories that can hold such keys. Takes fd. */
static vs_err walk(walk_ctx *w, int fd, size_t klen) {
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return vs_fail(w->err, VS_ERR_IO, "store list %s/%s: %s", w->bucket, w->key, strerror(e));
    }
    vs_err rc = VS_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) rc = vs_fail(w->err, VS_ERR_IO, "store list %s/%.*s: %s", w->bucket, (int)klen, w->key,
                                    strerror(errno));
            break;
        }
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..") || is_tmp_name(name)) continue;
        size_t nlen = strlen(name);
        size_t sep = klen ? 1 : 0;
        if (klen + sep + nlen > KEY_MAX) continue; /* cannot be a valid key */
        if (sep) w->key[klen] = '/';
        memcpy(w->key + klen + sep, name, nlen + 1);
        size_t clen = klen + sep + nlen;
        /* a name that disagrees with the prefix can neither be a match nor
         * lead to one: skip it without a stat (a tenant folder of 100k
         * images is listed for each erased one) */
        if (memcmp(w->key, w->prefix, clen < w->prefix_len ? clen : w->prefix_len) != 0) continue;
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue; /* deleted while we walked */
            rc = vs_fail(w->err, VS_ERR_IO, "store list %s/%s: %s", w->bucket, w->key, strerror(errno));
            break;
        }
        /* from here the name agrees with the prefix on their common length */
        if (S_ISREG(sb.st_mode)) {
            if (clen >= w->prefix_len && vs_store_key_ok(w->key) && w->cb(w->cb_ctx, w->key, (size_t)sb.st_size)) {
                w->stopped = 1;
                break;
            }
        } else if (S_ISDIR(sb.st_mode)) {
            /* descend when "key/" can still lead to the prefix */
            if (clen < w->prefix_len && w->prefix[clen] != '/') continue;
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (errno == ENOENT) continue; /* pruned by a del */
                rc = vs_fail(w->err, VS_ERR_IO, "store list %s/%s: %s", w->bucket, w->key, strerror(errno));
                break;
            }
            rc = walk(w, sub, clen);
            if (rc != VS_OK || w->stopped) break;
        }
    }
    closedir(d);
    return rc;
}

/* Lists the keys of bucket starting with prefix, walking only the
 * directory the prefix names (and below). A missing bucket lists nothing. */
static vs_err fs_list(vs_store *st, const char *bucket, const char *prefix, vs_store_list_cb cb, void *ctx,
                      vs_error *err) {
    fs_store *s = (fs_store *)st;
    char pb[160], pp[160];
    if (!prefix) prefix = "";
    if (!vs_store_key_ok(bucket) || strchr(bucket, '/'))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store list: invalid bucket \"%s\"", vs_store_printable(bucket, pb, sizeof pb));
    if (!vs_store_prefix_ok(prefix))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store list %s: invalid prefix \"%s\"", bucket,
                       vs_store_printable(prefix, pp, sizeof pp));
    walk_ctx *w = vs_calloc(1, sizeof *w);
    if (!w) return vs_fail(err, VS_ERR_NOMEM, "store list %s", bucket);
    *w = (walk_ctx){.bucket = bucket, .prefix = prefix, .prefix_len = strlen(prefix), .cb = cb, .cb_ctx = ctx,
                    .err = err};
    /* the directory part of the prefix: "t/ab" -> "t", "t/" -> "t", "ab" -> "" */
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) : 0;
    memcpy(w->key, prefix, dlen);
    w->key[dlen] = '\0';
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s%s%s", s->root, bucket, dlen ? "/" : "", w->key);
    vs_err rc = VS_OK;
    if (n < 0 || (size_t)n >= sizeof path) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "store list %s: prefix too long", bucket);
    } else {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            rc = walk(w, fd, dlen);
        else if (errno != ENOENT && errno != ENOTDIR)
            rc = vs_fail(err, VS_ERR_IO, "store list %s/%s: %s", bucket, w->key, strerror(errno));
    }
    vs_free(w);
    return rc;
}

/* Healthy when the root is still a directory we can create files in. */
static int fs_healthy(vs_store *st) {
    fs_store *s = (fs_store *)st;
    struct stat sb;
    return stat(s->root, &sb) == 0 && S_ISDIR(sb.st_mode) && access(s->root, W_OK | X_OK) == 0;
}

/* Frees the store; objects stay on disk. */
static void fs_close(vs_store *st) {
    fs_store *s = (fs_store *)st;
    vs_free(s->root);
    vs_free(s);
}

static const vs_store_ops fs_ops = {
    .put = fs_put,
    .put_many = fs_put_many,
    .get = fs_get,
    .del = fs_del,
    .exists = fs_exists,
    .list = fs_list,
    .healthy = fs_healthy,
    .close = fs_close,
};

vs_err vs_store_fs_open(const char *dir, vs_store **out, vs_error *err) {
    *out = NULL;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof path) return vs_fail(err, VS_ERR_INVALID_ARG, "store file://%s: path too long", dir);
    while (n > 1 && path[n - 1] == '/') path[--n] = '\0';
    /* make it (and its parents) if missing; keep=0 walks from the start, and
     * a leading '/' gives an empty first component that mkdir("") skips */
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        if (errno != ENOENT || make_dirs(path, 0) != 0)
            return vs_fail(err, VS_ERR_IO, "store file://%s: mkdir: %s", dir, strerror(errno));
    }
    char *abs = realpath(path, NULL);
    if (!abs) return vs_fail(err, VS_ERR_IO, "store file://%s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(abs, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        free(abs);
        return vs_fail(err, VS_ERR_IO, "store file://%s: not a directory", dir);
    }
    fs_store *s = vs_calloc(1, sizeof *s);
    char *root = s ? vs_strdup(abs) : NULL;
    free(abs); /* realpath's malloc, not ours */
    if (!root) {
        vs_free(s);
        return vs_fail(err, VS_ERR_NOMEM, "store file://%s", dir);
    }
    s->base.ops = &fs_ops;
    s->root = root;
    s->root_len = strlen(root);
    *out = &s->base;
    return VS_OK;
}
