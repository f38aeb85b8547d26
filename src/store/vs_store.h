/* vs_store.h - the blob store contract: buckets and keys as in DESIGN.md
 * (raw-images/{tenant}/{sha256}.{ext}, face-crops/..., thumbnails/...),
 * behind a small vtable so the pipeline never knows which backend it holds.
 * Backends: file://DIR and s3:// (S3, MinIO, Ceph: VISAGE_S3_ENDPOINT,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, VISAGE_S3_PATH_STYLE;
 * see vs_store_open). All functions are safe to call from several threads
 * at once on one store. */
#ifndef VS_STORE_H
#define VS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

typedef struct vs_store vs_store;

/* One object of a put_many call. */
typedef struct vs_blob {
    const char *bucket;
    const char *key;
    const void *data;
    size_t len;
} vs_blob;

/* Called once per key by list; return non-zero to stop early. */
typedef int (*vs_store_list_cb)(void *ctx, const char *key, size_t size);

typedef struct vs_store_ops {
    /* Writes the whole object atomically: readers see the old or the new one,
     * never a part; after success it survives a crash (fsync; for s3:// the
     * PUT's 200). content_type may be NULL (application/octet-stream). */
    vs_err (*put)(vs_store *s, const char *bucket, const char *key, const void *data, size_t len,
                  const char *content_type, vs_error *err);
    /* Writes several objects, each atomically, and makes them all durable
     * together (group commit: one sync for the batch instead of one per
     * object; s3:// has none and simply puts each). On failure some may have
     * been written, none is partial. */
    vs_err (*put_many)(vs_store *s, const vs_blob *blobs, int n, vs_error *err);
    /* Reads a whole object into a new buffer (vs_free), at most max_bytes:
     * missing -> VS_ERR_NOT_FOUND, larger -> VS_ERR_TOO_LARGE. */
    vs_err (*get)(vs_store *s, const char *bucket, const char *key, size_t max_bytes, uint8_t **data,
                  size_t *len, vs_error *err);
    /* Deleting a missing object is not an error. */
    vs_err (*del)(vs_store *s, const char *bucket, const char *key, vs_error *err);
    vs_err (*exists)(vs_store *s, const char *bucket, const char *key, int *exists, vs_error *err);
    /* Every key of bucket starting with prefix, in no particular order. */
    vs_err (*list)(vs_store *s, const char *bucket, const char *prefix, vs_store_list_cb cb, void *ctx,
                   vs_error *err);
    /* 1 when the backend answers (for /readyz). */
    int (*healthy)(vs_store *s);
    /* Optional (NULL when the backend has none, e.g. file://): a URL a
     * browser can GET the object from until expires_unix, without our
     * server (S3 SigV4 query signing). Returns 0 and writes out on success;
     * -1 (out "") for an invalid bucket/key, an expiry in the past or more
     * than 7 days ahead (S3's limit), or a URL longer than cap. */
    int (*presign_get)(vs_store *s, const char *bucket, const char *key, int64_t expires_unix, char *out,
                       size_t cap);
    void (*close)(vs_store *s);
} vs_store_ops;

struct vs_store {
    const vs_store_ops *ops;
};

/* Opens a store from its URL: "file:///abs/dir", "file://rel/dir", "s3://"
 * (buckets named as in DESIGN.md) or "s3://PREFIX" (bucket b is the S3
 * bucket PREFIX-b, so deployments can share an account). s3:// reads its
 * settings from the environment at open (VISAGE_S3_ENDPOINT, default
 * https://s3.<region>.amazonaws.com; AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, required; AWS_REGION, default us-east-1;
 * VISAGE_S3_PATH_STYLE, 1 = http://endpoint/bucket/key, the default with an
 * endpoint, 0 = http://bucket.endpoint/key) and creates the four buckets
 * when missing, so a server that is down fails here. Transport errors, 5xx
 * and 429 are retried with backoff (4 tries) before VS_ERR_BACKEND.
 * Unknown scheme -> VS_ERR_UNSUPPORTED naming it. */
vs_err vs_store_open(const char *url, vs_store **out, vs_error *err);

/* Keys and bucket names are checked before any backend sees them: no "..",
 * no leading "/", no NUL/control characters, 1..512 bytes. Also refused, as
 * they alias or escape on a filesystem: "." segments, empty segments
 * ("a//b", trailing "/") and backslashes. The file:// backend further wants
 * a bucket to be one segment (no '/') and no key segment starting with
 * ".vstmp." (its temp files). */
int vs_store_key_ok(const char *key);
/* A list prefix: the key rules, except that it may be empty or end in '/'. */
int vs_store_prefix_ok(const char *prefix);

static inline vs_err vs_store_put(vs_store *s, const char *b, const char *k, const void *d, size_t n,
                                  const char *ct, vs_error *e) { return s->ops->put(s, b, k, d, n, ct, e); }
static inline vs_err vs_store_put_many(vs_store *s, const vs_blob *b, int n, vs_error *e) {
    return s->ops->put_many(s, b, n, e);
}
static inline vs_err vs_store_get(vs_store *s, const char *b, const char *k, size_t max, uint8_t **d,
                                  size_t *n, vs_error *e) { return s->ops->get(s, b, k, max, d, n, e); }
static inline vs_err vs_store_del(vs_store *s, const char *b, const char *k, vs_error *e) {
    return s->ops->del(s, b, k, e);
}
static inline void vs_store_close(vs_store *s) { if (s) s->ops->close(s); }

/* Signed, expiring URL path for a blob, served by the API:
 * "/api/v1/blobs/{bucket}/{key}?expires={unix}&sig={hex hmac-sha256}".
 * The signature covers bucket, key and expiry with the server secret. */
void vs_presign_path(const uint8_t *secret, size_t secret_len, const char *bucket, const char *key,
                     int64_t expires_unix, char *out, size_t cap);
/* 1 when sig matches and expires_unix >= now_unix. */
int vs_presign_check(const uint8_t *secret, size_t secret_len, const char *bucket, const char *key,
                     int64_t expires_unix, const char *sig_hex, int64_t now_unix);

#endif
