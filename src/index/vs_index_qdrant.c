/* vs_index_qdrant.c - the Qdrant vector index backend: the vs_index contract
 * spoken over Qdrant's REST API (v1.x, port 6333) with libcurl and jansson,
 * for deployments where API and worker processes on several machines share
 * one index. Tuned for many small requests (one search, one image's points)
 * over kept-alive connections; Qdrant does the indexing and the durability.
 *
 * Threading model: who locks what, and why
 *
 *   The index holds no state a request changes except two caches, both under
 *   one mutex (qd.mu), held only to push or pop a pointer:
 *     pool   idle CURL easy handles (at most POOL_MAX). A call pops one (or
 *            makes one), runs its whole request with no lock held, and
 *            pushes it back; a handle keeps its connection cache, so steady
 *            traffic reuses TCP/TLS connections. A handle is never used by
 *            two threads at once, which is all libcurl asks.
 *     colls  name -> dimension of the collections this process has seen, so
 *            get can size vectors and upsert/search can check them without a
 *            round trip. ensure_collection adds entries (a collection never
 *            changes dimension: it refuses that); drop_collection removes its
 *            own, since the name may come back with another model. Another
 *            process dropping and re-creating a collection under this one is
 *            not seen (reindex runs with the other processes stopped).
 *   The URL, API key, header list and options are written once by open and
 *   read-only after, so calls read them unlocked. Every operation may thus run
 *   concurrently from any number of threads; ordering between concurrent
 *   writers is Qdrant's (last write wins per point id).
 * Rejected: one handle under a mutex (serialises every search behind the
 *   slowest upsert); a fresh handle per call (a new connection per search);
 *   the curl multi interface (one event loop thread to feed, more code, and
 *   callers block on their answer anyway); a curl share handle for the
 *   connection cache (needs its own lock callbacks for the same effect).
 *
 * Contract notes. Every point request made for a tenant (get, count, scroll,
 * search, deletes) carries the tenant condition, and every point that comes
 * back is checked against the filter again before a caller sees it. The
 * model and dim of a collection live in a reserved point (VS_QDRANT_META_ID)
 * whose payload has no tenant_id, so no tenant filter can ever match it:
 * {"_visage_collection":true,"model":"<model id>","dim":<n>}, vector the
 * unit vector e0 (wire format: vs_index_qdrant.h; describe reads it back).
 * Point ids: canonical UUIDs as they are, other ids as a derived UUID with
 * the original in payload "_visage_id" (stripped again from answers).
 * Transport errors, 5xx and 429 are retried with exponential backoff (every
 * request here is idempotent: upserts and deletes are by id or filter). The
 * deleted counts are an exact count taken just before the delete with the
 * same filter: a concurrent writer can make them off by its own points.
 * scroll walks Qdrant's point-id order: id order for UUID ids, the order of
 * the derived UUIDs for others (complete and stable, not alphabetical). */
#include "vs_index_qdrant.h"
#include "vs_index_internal.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_buf.h"
#include "vs_flat.h"
#include "vs_index_log.h"
#include "vs_qdrant_parse.h"

#define COLL_NAME_MAX VS_INDEX_COLL_NAME_MAX
#define POOL_MAX 16
#define RESP_MAX ((size_t)512 << 20) /* bytes of one answer (a big scroll page) */
#define QERR_MAX 160                 /* bytes of Qdrant's error text quoted in messages */
#define API_KEY_MAX 4096

typedef struct coll_dim {
    char name[COLL_NAME_MAX + 1];
    int dim;
} coll_dim;

typedef struct qd {
    vs_index base;
    char *url;                 /* base URL, no trailing '/' */
    char label[160];           /* the URL without user info, for messages */
    char *api_key;             /* NULL when QDRANT_API_KEY is unset or empty */
    struct curl_slist *headers;
    vs_qdrant_opts o;
    pthread_mutex_t mu;        /* guards pool and colls */
    CURL *pool[POOL_MAX];
    int n_pool;
    coll_dim *colls;
    int n_colls, cap_colls;
} qd;


static const vs_index_ops qd_ops;
static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe everywhere: run it once, on first open. */
static void curl_init_once(void) { g_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int vs_index_is_qdrant(const vs_index *ix) { return ix && ix->ops == &qd_ops; }

/* ---- small checks ------------------------------------------------------- */

/* A canonical lower-case 8-4-4-4-12 UUID, the form Qdrant answers with. */
static int is_uuid(const char *s) {
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

void vs_qdrant_point_id(const char *id, char out[VS_UUID_STR]) {
    if (is_uuid(id)) {
        memcpy(out, id, VS_UUID_STR);
        return;
    }
    const char *parts[2] = {"visage-qdrant-point", id};
    vs_uuid_from(parts, 2, out);
}

/* Checks a filter as the embedded backend does: tenant required, no NaN. */
static vs_err filter_check(const vs_filter *f, const char *op, const char *name, vs_error *err) {
    if (!f || !f->tenant_id || !*f->tenant_id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s %s: the filter must name a tenant_id", op, name);
    if (isnan(f->min_quality)) return vs_fail(err, VS_ERR_INVALID_ARG, "%s %s: min_quality is NaN", op, name);
    return VS_OK;
}

/* ---- HTTP --------------------------------------------------------------- */

/* Pops an idle handle (reset, connections kept) or makes a new one. */
static CURL *handle_take(qd *q) {
    CURL *h = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->n_pool > 0) h = q->pool[--q->n_pool];
    pthread_mutex_unlock(&q->mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

/* Returns a handle to the pool, or frees it when the pool is full. */
static void handle_give(qd *q, CURL *h) {
    if (!h) return;
    pthread_mutex_lock(&q->mu);
    if (q->n_pool < POOL_MAX) {
        q->pool[q->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    if (h) curl_easy_cleanup(h);
}

/* One attempt of method url with body (NULL for none) into b. */
static CURLcode http_once(qd *q, CURL *h, const char *method, const char *url, const char *body, size_t body_len,
                          long timeout_ms, vs_buf_sink *b, long *status, char *errbuf) {
    vs_buf_clear(&b->buf);
    b->rc = VS_OK;
    b->buf.limit = RESP_MAX;
    *status = 0;
    errbuf[0] = '\0';
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                          \
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, q->headers);
    SET(CURLOPT_WRITEFUNCTION, vs_buf_curl_write);
    SET(CURLOPT_WRITEDATA, b);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, q->o.connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "visage/0.1");
    if (strcmp(method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SET(CURLOPT_POSTFIELDS, body ? body : "");
        if (strcmp(method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    if (rc != CURLE_OK) return rc;
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    return rc;
}

/* Sleeps ms milliseconds (backoff between attempts). */
static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Serialises body into a vs_malloc'ed compact string. */
static char *dump_json(const json_t *body, size_t *len) {
    size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
    char *s = n ? vs_malloc(n + 1) : NULL;
    if (!s) return NULL;
    if (json_dumpb(body, s, n, JSON_COMPACT) != n) {
        vs_free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Sends method path (with query) and body (NULL: none) to Qdrant, retrying
 * transport errors, 5xx and 429 with exponential backoff. On a 2xx answer
 * *out is the parsed answer, an object with a "result". A 404 fails with
 * VS_ERR_NOT_FOUND unless allow_404, when it returns VS_OK with *out NULL;
 * any other status fails with VS_ERR_BACKEND. *status (may be NULL) gets
 * the last HTTP status (0: no answer). Messages name op, collection, the
 * request, the status and Qdrant's own error text. */
static vs_err qd_call(qd *q, const char *op, const char *coll, const char *method, const char *path,
                      const json_t *body, int allow_404, long *status, json_t **out, vs_error *err) {
    *out = NULL;
    if (status) *status = 0;
    size_t blen = 0, ulen = strlen(q->url) + strlen(path) + 1;
    char *btxt = NULL, *url = vs_malloc(ulen);
    vs_buf_sink b = {0};
    char errbuf[CURL_ERROR_SIZE];
    vs_err rc = VS_OK;
    CURL *h = NULL;
    if (!url || (body && !(btxt = dump_json(body, &blen)))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "%s %s: out of memory building %s %s", op, coll, method, path);
        goto out;
    }
    snprintf(url, ulen, "%s%s", q->url, path);
    if (!(h = handle_take(q))) {
        rc = vs_fail(err, VS_ERR_BACKEND, "%s %s: curl_easy_init failed", op, coll);
        goto out;
    }
    long st = 0;
    CURLcode cr = CURLE_OK;
    int attempt = 1;
    for (;; attempt++) {
        cr = http_once(q, h, method, url, btxt, blen, q->o.timeout_ms, &b, &st, errbuf);
        int retry = cr != CURLE_OK ? !(b.rc != VS_OK || cr == CURLE_UNKNOWN_OPTION) : (st >= 500 || st == 429);
        if (!retry || attempt >= q->o.tries) break;
        sleep_ms(q->o.backoff_ms << (attempt - 1 < 16 ? attempt - 1 : 16));
    }
    if (status) *status = st;
    if (b.rc == VS_ERR_NOMEM) {
        rc = vs_fail(err, VS_ERR_NOMEM, "%s %s: out of memory reading the answer to %s %s", op, coll, method, path);
    } else if (b.rc == VS_ERR_TOO_LARGE) {
        rc = vs_fail(err, VS_ERR_TOO_LARGE, "%s %s: Qdrant's answer to %s %s is over %zu MiB", op, coll, method,
                     path, RESP_MAX >> 20);
    } else if (cr != CURLE_OK) {
        rc = vs_fail(err, VS_ERR_BACKEND, "%s %s: %s %s at Qdrant %s failed after %d tries: %s", op, coll, method,
                     path, q->label, attempt, errbuf[0] ? errbuf : curl_easy_strerror(cr));
    } else if (st == 404 && allow_404) {
        rc = VS_OK;
    } else if (st < 200 || st >= 300) {
        char why[QERR_MAX];
        vs_qdrant_reason((const char *)b.buf.data, b.buf.len, why, sizeof why);
        char tries[32] = "";
        if (attempt > 1) snprintf(tries, sizeof tries, " after %d tries", attempt);
        rc = vs_fail(err, st == 404 ? VS_ERR_NOT_FOUND : VS_ERR_BACKEND,
                     "%s %s: Qdrant %s answered HTTP %ld to %s %s%s: %s", op, coll, q->label, st, method, path, tries,
                     why);
    } else {
        char why[QERR_MAX];
        if (!(*out = vs_qdrant_answer((const char *)b.buf.data, b.buf.len, why, sizeof why)))
            rc = vs_fail(err, VS_ERR_BACKEND, "%s %s: malformed answer from Qdrant (HTTP %ld to %s %s): %s", op, coll,
                         st, method, path, why);
    }
out:
    handle_give(q, h);
    vs_free(url);
    vs_free(btxt);
    vs_buf_free(&b.buf);
    return rc;
}

/* ---- JSON helpers --------------------------------------------------------- */

/* A JSON array of the n floats of v. */
static json_t *vector_json(const float *v, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real((double)v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* {"key":key,"match":{"value":value}} */
static json_t *match_cond(const char *key, const char *value) {
    return json_pack("{s:s,s:{s:s}}", "key", key, "match", "value", value);
}

/* The Qdrant filter of f: tenant always, then the optional conditions, then
 * has_id (a JSON array, reference stolen) when given. */
static json_t *filter_json(const vs_filter *f, json_t *has_id) {
    json_t *must = json_array();
    json_t *flt = json_pack("{s:o}", "must", must);
    if (!flt) {
        json_decref(has_id);
        return NULL;
    }
    int bad = json_array_append_new(must, match_cond("tenant_id", f->tenant_id));
    if (f->site) bad |= json_array_append_new(must, match_cond("site", f->site));
    if (f->image_sha256) bad |= json_array_append_new(must, match_cond("image_sha256", f->image_sha256));
    if (f->min_quality > 0)
        bad |= json_array_append_new(
            must, json_pack("{s:s,s:{s:f}}", "key", "quality_score", "range", "gte", (double)f->min_quality));
    if (has_id) bad |= json_array_append_new(must, json_pack("{s:o}", "has_id", has_id));
    if (bad) {
        json_decref(flt);
        return NULL;
    }
    return flt;
}

/* ---- collections ---------------------------------------------------------- */

/* Remembers name's dimension (first writer wins: dims never change). */
static void cache_put(qd *q, const char *name, int dim) {
    pthread_mutex_lock(&q->mu);
    int found = 0;
    for (int i = 0; i < q->n_colls && !found; i++) found = strcmp(q->colls[i].name, name) == 0;
    if (!found && q->n_colls == q->cap_colls) {
        int cap = q->cap_colls ? q->cap_colls * 2 : 4;
        coll_dim *n = vs_realloc(q->colls, (size_t)cap * sizeof *n);
        if (n) q->colls = n, q->cap_colls = cap;
    }
    if (!found && q->n_colls < q->cap_colls) { /* out of memory: simply not cached */
        snprintf(q->colls[q->n_colls].name, sizeof q->colls[0].name, "%s", name);
        q->colls[q->n_colls++].dim = dim;
    }
    pthread_mutex_unlock(&q->mu);
}

/* Forgets name's dimension (the collection was dropped). */
static void cache_del(qd *q, const char *name) {
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->n_colls; i++)
        if (strcmp(q->colls[i].name, name) == 0) q->colls[i--] = q->colls[--q->n_colls];
    pthread_mutex_unlock(&q->mu);
}

/* The cached dimension of name, 0 if unknown. */
static int cache_get(qd *q, const char *name) {
    int dim = 0;
    pthread_mutex_lock(&q->mu);
    for (int i = 0; i < q->n_colls; i++)
        if (strcmp(q->colls[i].name, name) == 0) dim = q->colls[i].dim;
    pthread_mutex_unlock(&q->mu);
    return dim;
}

/* The dimension of collection name for op: cached, else from Qdrant (404:
 * VS_ERR_NOT_FOUND naming it, as the embedded backend does). */
static vs_err coll_dim_of(qd *q, const char *name, const char *op, int *dim, vs_error *err) {
    *dim = 0;
    if (!name) return vs_fail(err, VS_ERR_INVALID_ARG, "%s: no collection name", op);
    if (!vs_index_name_ok(name)) return vs_fail(err, VS_ERR_NOT_FOUND, "%s %.80s: no such collection (bad name)", op, name);
    if ((*dim = cache_get(q, name)) > 0) return VS_OK;
    char path[128];
    snprintf(path, sizeof path, "/collections/%s", name);
    json_t *root = NULL;
    vs_err rc = qd_call(q, op, name, "GET", path, NULL, 1, NULL, &root, err);
    if (rc != VS_OK) return rc;
    if (!root)
        return vs_fail(err, VS_ERR_NOT_FOUND, "%s %s: no such collection in Qdrant %s (call ensure_collection first)",
                       op, name, q->label);
    const char *distance;
    rc = vs_qdrant_vectors_of(root, op, name, dim, &distance, err);
    if (rc == VS_OK) cache_put(q, name, *dim);
    json_decref(root);
    return rc;
}

/* Creates the payload indexes of a new collection: tenant_id as the tenant
 * key (is_tenant: Qdrant co-locates each tenant's points), the filter
 * keywords, and quality_score as a float range. */
static vs_err create_indexes(qd *q, const char *name, vs_error *err) {
    static const char *const keywords[] = {"image_sha256", "p_hash_prefix", "site"};
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/index?wait=true", name);
    vs_err rc = VS_OK;
    for (int i = 0; i < 5 && rc == VS_OK; i++) {
        json_t *body, *root = NULL;
        if (i == 0)
            body = json_pack("{s:s,s:{s:s,s:b}}", "field_name", "tenant_id", "field_schema", "type", "keyword",
                             "is_tenant", 1);
        else if (i < 4)
            body = json_pack("{s:s,s:s}", "field_name", keywords[i - 1], "field_schema", "keyword");
        else
            body = json_pack("{s:s,s:s}", "field_name", "quality_score", "field_schema", "float");
        if (!body) return vs_fail(err, VS_ERR_NOMEM, "ensure_collection %s: out of memory", name);
        rc = qd_call(q, "ensure_collection", name, "PUT", path, body, 0, NULL, &root, err);
        if (rc == VS_OK) rc = vs_qdrant_update_done(root, "ensure_collection", name, err);
        json_decref(body);
        json_decref(root);
    }
    return rc;
}

/* Writes the collection record: the reserved point holding model and dim. */
static vs_err write_record(qd *q, const char *name, int dim, const char *model, vs_error *err) {
    float *v = vs_calloc((size_t)dim, sizeof *v);
    if (!v) return vs_fail(err, VS_ERR_NOMEM, "ensure_collection %s: out of memory", name);
    v[0] = 1.0f; /* a unit vector: Cosine normalises, and a zero vector has no direction */
    json_t *body = json_pack("{s:[{s:s,s:o,s:{s:b,s:s,s:i}}]}", "points", "id", VS_QDRANT_META_ID, "vector",
                             vector_json(v, dim), "payload", "_visage_collection", 1, "model", model, "dim", dim);
    vs_free(v);
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "ensure_collection %s: out of memory", name);
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points?wait=true", name);
    json_t *root = NULL;
    vs_err rc = qd_call(q, "ensure_collection", name, "PUT", path, body, 0, NULL, &root, err);
    if (rc == VS_OK) rc = vs_qdrant_update_done(root, "ensure_collection", name, err);
    json_decref(body);
    json_decref(root);
    return rc;
}

/* Exact number of points matching filter (a Qdrant filter object, or NULL
 * for all points of the collection). */
static vs_err count_raw(qd *q, const char *op, const char *name, const json_t *filter, int64_t *n, vs_error *err) {
    json_t *body = filter ? json_pack("{s:O,s:b}", "filter", filter, "exact", 1) : json_pack("{s:b}", "exact", 1);
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "%s %s: out of memory", op, name);
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points/count", name);
    json_t *root = NULL;
    vs_err rc = qd_call(q, op, name, "POST", path, body, 0, NULL, &root, err);
    json_decref(body);
    if (rc != VS_OK) return rc;
    rc = vs_qdrant_count_answer(root, op, name, n, err);
    json_decref(root);
    return rc;
}

/* Reads the collection record (the reserved point) of name: *root gets the
 * answer (the caller json_decrefs it) and *pay the record's payload inside
 * it, or NULL when the collection has no record. */
static vs_err read_record(qd *q, const char *op, const char *name, json_t **root, json_t **pay, vs_error *err) {
    *pay = NULL;
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points", name);
    json_t *body = json_pack("{s:[s],s:b,s:b}", "ids", VS_QDRANT_META_ID, "with_payload", 1, "with_vector", 0);
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "%s %s: out of memory", op, name);
    vs_err rc = qd_call(q, op, name, "POST", path, body, 0, NULL, root, err);
    json_decref(body);
    if (rc != VS_OK) return rc;
    return vs_qdrant_record_answer(*root, op, name, pay, err);
}

/* Checks the recorded model and dim of an existing collection against the
 * caller's; adopts an empty collection without a record (a creation that
 * was cut short) by finishing it. */
static vs_err check_record(qd *q, const char *name, int dim, const char *model, vs_error *err) {
    json_t *root = NULL, *pay = NULL;
    vs_err rc = read_record(q, "ensure_collection", name, &root, &pay, err);
    if (rc != VS_OK) goto out;
    if (!pay) {
        int64_t n = -1;
        rc = count_raw(q, "ensure_collection", name, NULL, &n, err);
        if (rc == VS_OK && n > 0)
            rc = vs_fail(err, VS_ERR_INVALID_ARG,
                         "ensure_collection %s: the Qdrant collection holds %lld points but no visage record of its "
                         "model (point %s); refusing to mix it with model \"%s\"",
                         name, (long long)n, VS_QDRANT_META_ID, model);
        if (rc == VS_OK) rc = create_indexes(q, name, err);
        if (rc == VS_OK) rc = write_record(q, name, dim, model, err);
        goto out;
    }
    const char *have = NULL;
    int have_dim = 0;
    rc = vs_qdrant_record_fields(pay, "ensure_collection", name, &have, &have_dim, err);
    if (rc == VS_OK && (strcmp(have, model) != 0 || have_dim != dim))
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "ensure_collection %s (Qdrant %s): asked for dim %d model \"%s\" but the collection has dim %d "
                     "model \"%.100s\" (never mix models)",
                     name, q->label, dim, model, have_dim, have);
out:
    json_decref(root);
    return rc;
}

/* Checks an existing collection (GET answer root): vector size and distance,
 * then the model record. */
static vs_err check_existing(qd *q, const json_t *root, const char *name, int dim, const char *model,
                             vs_error *err) {
    int have = 0;
    const char *dist = NULL;
    vs_err rc = vs_qdrant_vectors_of(root, "ensure_collection", name, &have, &dist, err);
    if (rc != VS_OK) return rc;
    if (have != dim)
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "ensure_collection %s (Qdrant %s): asked for dim %d model \"%s\" but the collection has dim %d "
                       "(never mix models)",
                       name, q->label, dim, model, have);
    if (strcmp(dist, "Cosine") != 0)
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "ensure_collection %s (Qdrant %s): the collection uses distance %.40s, visage needs Cosine",
                       name, q->label, dist);
    return check_record(q, name, dim, model, err);
}

/* ensure_collection: GET the collection; create it (vectors, payload
 * indexes, model record) on 404, else check its dim, distance and model. */
static vs_err qd_ensure_collection(vs_index *ix, const char *name, int dim, const char *model, vs_error *err) {
    qd *q = (qd *)ix;
    if (!vs_index_name_ok(name))
        return vs_fail(err, VS_ERR_INVALID_ARG, "ensure_collection %.80s: name must be 1-%d of [A-Za-z0-9_-]",
                       name ? name : "(null)", COLL_NAME_MAX);
    if (dim < 1 || dim > VS_LOG_DIM_MAX || !vs_index_text_ok(model, VS_LOG_MODEL_MAX))
        return vs_fail(err, VS_ERR_INVALID_ARG, "ensure_collection %s: dim %d (1-%d) or model \"%.100s\" out of range",
                       name, dim, VS_LOG_DIM_MAX, model ? model : "(null)");
    char path[128];
    snprintf(path, sizeof path, "/collections/%s", name);
    json_t *root = NULL;
    vs_err rc = qd_call(q, "ensure_collection", name, "GET", path, NULL, 1, NULL, &root, err);
    if (rc != VS_OK) return rc;
    if (root) {
        rc = check_existing(q, root, name, dim, model, err);
    } else {
        json_t *body = json_pack("{s:{s:i,s:s}}", "vectors", "size", dim, "distance", "Cosine");
        if (!body) return vs_fail(err, VS_ERR_NOMEM, "ensure_collection %s: out of memory", name);
        long st = 0;
        vs_error mine = {0};
        rc = qd_call(q, "ensure_collection", name, "PUT", path, body, 0, &st, &root, &mine);
        json_decref(body);
        json_decref(root);
        root = NULL;
        if (rc != VS_OK && (st == 409 || (st == 400 && strstr(mine.msg, "already exists")))) {
            /* another process created it between our GET and PUT: check theirs */
            rc = qd_call(q, "ensure_collection", name, "GET", path, NULL, 0, NULL, &root, err);
            if (rc == VS_OK) rc = check_existing(q, root, name, dim, model, err);
        } else if (rc != VS_OK) {
            if (err) *err = mine;
        } else {
            rc = create_indexes(q, name, err);
            if (rc == VS_OK) rc = write_record(q, name, dim, model, err);
        }
    }
    json_decref(root);
    if (rc == VS_OK) cache_put(q, name, dim);
    return rc;
}

/* describe: the model record of an existing collection. A collection
 * without one is NOT_FOUND while empty (a creation cut short, which
 * ensure_collection finishes) and refused once it holds points. */
static vs_err qd_describe(vs_index *ix, const char *name, int *dim, char model[VS_INDEX_MODEL_MAX + 1],
                          vs_error *err) {
    qd *q = (qd *)ix;
    vs_err rc = coll_dim_of(q, name, "describe", dim, err);
    if (rc != VS_OK) return rc;
    json_t *root = NULL, *pay = NULL;
    const char *have = NULL;
    int have_dim = 0;
    int64_t n = -1;
    rc = read_record(q, "describe", name, &root, &pay, err);
    if (rc == VS_OK && pay) rc = vs_qdrant_record_fields(pay, "describe", name, &have, &have_dim, err);
    if (rc == VS_OK && pay && have_dim != *dim)
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "describe %s: the collection record says dim %d, its vectors have %d",
                     name, have_dim, *dim);
    if (rc == VS_OK && pay) snprintf(model, VS_INDEX_MODEL_MAX + 1, "%s", have);
    if (rc == VS_OK && !pay) rc = count_raw(q, "describe", name, NULL, &n, err);
    if (rc == VS_OK && !pay)
        rc = n > 0 ? vs_fail(err, VS_ERR_INVALID_ARG,
                             "describe %s: the Qdrant collection holds %lld points but no visage record of its model "
                             "(point %s)",
                             name, (long long)n, VS_QDRANT_META_ID)
                   : vs_fail(err, VS_ERR_NOT_FOUND, "describe %s: the Qdrant collection has no visage record yet",
                             name);
    json_decref(root);
    return rc;
}

/* drop_collection: DELETE /collections/{name}; a 404 (or "result":false
 * from older Qdrants) means it was already gone. */
static vs_err qd_drop_collection(vs_index *ix, const char *name, vs_error *err) {
    qd *q = (qd *)ix;
    if (!vs_index_name_ok(name))
        return vs_fail(err, VS_ERR_INVALID_ARG, "drop_collection %.80s: name must be 1-%d of [A-Za-z0-9_-]",
                       name ? name : "(null)", COLL_NAME_MAX);
    char path[128];
    snprintf(path, sizeof path, "/collections/%s", name);
    json_t *root = NULL;
    cache_del(q, name);
    vs_err rc = qd_call(q, "drop_collection", name, "DELETE", path, NULL, 1, NULL, &root, err);
    json_decref(root);
    return rc;
}

/* ---- points --------------------------------------------------------------- */

/* Validates point i as the embedded backend does and builds its Qdrant form
 * {"id","vector","payload"} in *out, qid receiving the Qdrant id. */
static vs_err prep_point(const char *name, int dim, const vs_point *p, int i, char qid[VS_UUID_STR], json_t **out,
                         vs_error *err) {
    *out = NULL;
    const char *id = p->id ? p->id : "(null)";
    if (!p->id || !vs_index_text_ok(p->id, VS_POINT_ID_MAX - 1))
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d: id must be 1-%d printable bytes", name, i,
                       VS_POINT_ID_MAX - 1);
    if (!p->vector || !p->payload_json)
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d (%s): no vector or payload", name, i, id);
    for (int d = 0; d < dim; d++)
        if (!isfinite(p->vector[d]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d (%s): vector[%d] is not finite", name, i, id,
                           d);
    size_t len = strlen(p->payload_json);
    if (len > VS_LOG_PAYLOAD_MAX)
        return vs_fail(err, VS_ERR_TOO_LARGE, "upsert %s: point %d (%s): payload of %zu bytes over %u", name, i, id,
                       len, VS_LOG_PAYLOAD_MAX);
    vs_qdrant_point_id(p->id, qid);
    if (strcmp(qid, VS_QDRANT_META_ID) == 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d: id %s is reserved for the collection record",
                       name, i, id);
    json_error_t je;
    json_t *pay = json_loadb(p->payload_json, len, 0, &je);
    if (!pay || !json_is_object(pay)) {
        json_decref(pay);
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d (%s): payload is not a JSON object: %s", name, i,
                       id, pay ? "another JSON type" : je.text);
    }
    vs_err rc = VS_OK;
    json_t *t = json_object_get(pay, "tenant_id"), *site = json_object_get(pay, "site"),
           *sha = json_object_get(pay, "image_sha256"), *qs = json_object_get(pay, "quality_score");
    size_t sl = json_is_string(site) ? json_string_length(site) : 0;
    size_t hl = json_is_string(sha) ? json_string_length(sha) : 0;
    if (!json_is_string(t) || !vs_index_text_ok(json_string_value(t), VS_FLAT_TENANT_MAX)) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "upsert %s: point %d (%s): payload needs a string \"tenant_id\" of 1-%d printable bytes", name, i,
                     id, VS_FLAT_TENANT_MAX);
    } else if (sl > VS_FLAT_SITE_MAX || hl > VS_FLAT_SHA_MAX) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "upsert %s: point %d (%s): site (max %d) or image_sha256 (max %d) too long", name, i, id,
                     VS_FLAT_SITE_MAX, VS_FLAT_SHA_MAX);
    } else if (json_is_number(qs) && !isfinite((float)json_number_value(qs))) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: point %d (%s): quality_score is out of float range", name, i,
                     id);
    } else if (json_object_get(pay, "_visage_id") || json_object_get(pay, "_visage_collection")) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG,
                     "upsert %s: point %d (%s): payload keys \"_visage_id\" and \"_visage_collection\" are reserved",
                     name, i, id);
    } else if (strcmp(qid, p->id) != 0 && json_object_set_new(pay, "_visage_id", json_string(p->id)) != 0) {
        rc = vs_fail(err, VS_ERR_NOMEM, "upsert %s: point %d (%s): out of memory", name, i, id);
    }
    json_t *vec = rc == VS_OK ? vector_json(p->vector, dim) : NULL;
    if (rc == VS_OK && !(*out = json_pack("{s:s,s:o,s:o}", "id", qid, "vector", vec, "payload", pay))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "upsert %s: point %d (%s): out of memory", name, i, id);
        pay = NULL; /* json_pack's "o" consumed both even on failure */
    } else if (rc != VS_OK) {
        json_decref(pay);
    }
    return rc;
}

typedef struct qid_ix {
    const char *qid;
    int i;
} qid_ix;

/* Orders by Qdrant id, then by position in the batch. */
static int cmp_qid_ix(const void *a, const void *b) {
    const qid_ix *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* upsert: validates every point first (all or none), then one PUT of the
 * batch with wait=true, so the points are durable and visible on return. */
static vs_err qd_upsert(vs_index *ix, const char *name, const vs_point *pts, int n, vs_error *err) {
    qd *q = (qd *)ix;
    int dim;
    vs_err rc = coll_dim_of(q, name, "upsert", &dim, err);
    if (rc != VS_OK) return rc;
    if (n < 0 || (n > 0 && !pts))
        return vs_fail(err, VS_ERR_INVALID_ARG, "upsert %s: %d points at %p", name, n, (void *)pts);
    if (n == 0) return VS_OK;
    char(*qids)[VS_UUID_STR] = vs_calloc((size_t)n, sizeof *qids);
    json_t **forms = vs_calloc((size_t)n, sizeof *forms);
    qid_ix *order = vs_calloc((size_t)n, sizeof *order);
    json_t *body = NULL, *arr = NULL, *root = NULL;
    if (!qids || !forms || !order) {
        rc = vs_fail(err, VS_ERR_NOMEM, "upsert %s: out of memory for %d points", name, n);
        goto out;
    }
    for (int i = 0; i < n && rc == VS_OK; i++) rc = prep_point(name, dim, &pts[i], i, qids[i], &forms[i], err);
    if (rc != VS_OK) goto out;
    /* Within one batch the last occurrence of an id wins (as embedded):
     * send only that one, in batch order. */
    for (int i = 0; i < n; i++) order[i] = (qid_ix){qids[i], i};
    qsort(order, (size_t)n, sizeof *order, cmp_qid_ix);
    for (int k = 0; k + 1 < n; k++)
        if (strcmp(order[k].qid, order[k + 1].qid) == 0) {
            json_decref(forms[order[k].i]);
            forms[order[k].i] = NULL;
        }
    arr = json_array();
    for (int i = 0; i < n && arr; i++)
        if (forms[i] && json_array_append(arr, forms[i]) != 0) rc = VS_ERR_NOMEM;
    if (!arr || rc != VS_OK || !(body = json_pack("{s:O}", "points", arr))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "upsert %s: out of memory for %d points", name, n);
        goto out;
    }
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points?wait=true", name);
    rc = qd_call(q, "upsert", name, "PUT", path, body, 0, NULL, &root, err);
    if (rc == VS_OK) rc = vs_qdrant_update_done(root, "upsert", name, err);
out:
    for (int i = 0; forms && i < n; i++) json_decref(forms[i]);
    vs_free(forms);
    vs_free(qids);
    vs_free(order);
    json_decref(arr);
    json_decref(body);
    json_decref(root);
    return rc;
}

/* get: retrieves the point by its Qdrant id and hands it out only if it is
 * the tenant's and really that id (another tenant's -> VS_ERR_NOT_FOUND). */
static vs_err qd_get(vs_index *ix, const char *name, const char *tenant_id, const char *id, float *vector_out,
                     char **payload_out, vs_error *err) {
    qd *q = (qd *)ix;
    if (payload_out) *payload_out = NULL;
    int dim;
    vs_err rc = coll_dim_of(q, name, "get", &dim, err);
    if (rc != VS_OK) return rc;
    if (!tenant_id || !*tenant_id || !id)
        return vs_fail(err, VS_ERR_INVALID_ARG, "get %s: tenant_id and id are required", name);
    if (!vs_index_text_ok(id, VS_POINT_ID_MAX - 1))
        return vs_fail(err, VS_ERR_NOT_FOUND, "get %s: no point %.80s for tenant %.80s", name, id, tenant_id);
    char qid[VS_UUID_STR], path[128];
    vs_qdrant_point_id(id, qid);
    snprintf(path, sizeof path, "/collections/%s/points", name);
    json_t *body = json_pack("{s:[s],s:b,s:b}", "ids", qid, "with_payload", 1, "with_vector", vector_out != NULL);
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "get %s: out of memory", name);
    json_t *root = NULL;
    rc = qd_call(q, "get", name, "POST", path, body, 0, NULL, &root, err);
    json_decref(body);
    if (rc != VS_OK) return rc;
    rc = vs_qdrant_get_answer(root, name, tenant_id, id, qid, dim, vector_out, payload_out, err);
    json_decref(root);
    return rc;
}

/* Counts, then deletes, the points matching filter (a Qdrant filter object,
 * tenant condition included); *deleted gets the count. */
static vs_err delete_where(qd *q, const char *op, const char *name, const json_t *filter, int64_t *deleted,
                           vs_error *err) {
    int64_t n = 0;
    vs_err rc = count_raw(q, op, name, filter, &n, err);
    if (rc != VS_OK || n == 0) return rc;
    json_t *body = json_pack("{s:O}", "filter", filter), *root = NULL;
    if (!body) return vs_fail(err, VS_ERR_NOMEM, "%s %s: out of memory", op, name);
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points/delete?wait=true", name);
    rc = qd_call(q, op, name, "POST", path, body, 0, NULL, &root, err);
    if (rc == VS_OK) rc = vs_qdrant_update_done(root, op, name, err);
    if (rc == VS_OK) *deleted = n;
    json_decref(body);
    json_decref(root);
    return rc;
}

/* delete_ids: one filter of the tenant AND has_id, so a tenant can never
 * delete another's points; ids that cannot exist are left out. */
static vs_err qd_delete_ids(vs_index *ix, const char *name, const char *tenant_id, const char *const *ids, int n,
                            int64_t *deleted, vs_error *err) {
    qd *q = (qd *)ix;
    int64_t dummy;
    if (!deleted) deleted = &dummy;
    *deleted = 0;
    int dim;
    vs_err rc = coll_dim_of(q, name, "delete_ids", &dim, err);
    if (rc != VS_OK) return rc;
    if (!tenant_id || !*tenant_id || n < 0 || (n > 0 && !ids))
        return vs_fail(err, VS_ERR_INVALID_ARG, "delete_ids %s: tenant_id and ids are required", name);
    for (int i = 0; i < n; i++)
        if (!ids[i]) return vs_fail(err, VS_ERR_INVALID_ARG, "delete_ids %s: id %d is NULL", name, i);
    json_t *has = json_array();
    int k = 0;
    for (int i = 0; i < n && has; i++) {
        if (!vs_index_text_ok(ids[i], VS_POINT_ID_MAX - 1)) continue; /* cannot exist */
        char qid[VS_UUID_STR];
        vs_qdrant_point_id(ids[i], qid);
        if (json_array_append_new(has, json_string(qid)) != 0) {
            json_decref(has);
            has = NULL;
        }
        k++;
    }
    if (!has) return vs_fail(err, VS_ERR_NOMEM, "delete_ids %s: out of memory", name);
    if (k == 0) {
        json_decref(has);
        return VS_OK;
    }
    vs_filter f = {.tenant_id = tenant_id};
    json_t *flt = filter_json(&f, has);
    if (!flt) return vs_fail(err, VS_ERR_NOMEM, "delete_ids %s: out of memory", name);
    rc = delete_where(q, "delete_ids", name, flt, deleted, err);
    json_decref(flt);
    return rc;
}

/* delete_filter: the filter as given (tenant included), counted first. */
static vs_err qd_delete_filter(vs_index *ix, const char *name, const vs_filter *f, int64_t *deleted, vs_error *err) {
    qd *q = (qd *)ix;
    int64_t dummy;
    if (!deleted) deleted = &dummy;
    *deleted = 0;
    int dim;
    vs_err rc = coll_dim_of(q, name, "delete_filter", &dim, err);
    if (rc != VS_OK || (rc = filter_check(f, "delete_filter", name, err)) != VS_OK) return rc;
    json_t *flt = filter_json(f, NULL);
    if (!flt) return vs_fail(err, VS_ERR_NOMEM, "delete_filter %s: out of memory", name);
    rc = delete_where(q, "delete_filter", name, flt, deleted, err);
    json_decref(flt);
    return rc;
}

/* count: an exact count (not Qdrant's estimate) of the filter. */
static vs_err qd_count(vs_index *ix, const char *name, const vs_filter *f, int64_t *n, vs_error *err) {
    qd *q = (qd *)ix;
    int dim;
    vs_err rc = coll_dim_of(q, name, "count", &dim, err);
    if (rc != VS_OK || (rc = filter_check(f, "count", name, err)) != VS_OK) return rc;
    if (!n) return vs_fail(err, VS_ERR_INVALID_ARG, "count %s: no output", name);
    json_t *flt = filter_json(f, NULL);
    if (!flt) return vs_fail(err, VS_ERR_NOMEM, "count %s: out of memory", name);
    rc = count_raw(q, "count", name, flt, n, err);
    json_decref(flt);
    return rc;
}

/* scroll: one page of the tenant's points in Qdrant id order, delivered to
 * cb with no lock held; *next is the last id delivered when more remain. */
static vs_err qd_scroll(vs_index *ix, const char *name, const vs_filter *f, const char *after_id, int limit,
                        vs_point_cb cb, void *ctx, char next[VS_POINT_ID_MAX], vs_error *err) {
    qd *q = (qd *)ix;
    /* Qdrant's offset is inclusive, ours exclusive: ask from after_id itself
     * for one point more than the page, and skip after_id when it comes.
     * (Mapped before next is cleared: the caller may pass one buffer.) */
    char after_q[VS_UUID_STR] = "";
    if (after_id && vs_index_text_ok(after_id, VS_POINT_ID_MAX - 1)) vs_qdrant_point_id(after_id, after_q);
    if (next) next[0] = '\0';
    int dim;
    vs_err rc = coll_dim_of(q, name, "scroll", &dim, err);
    if (rc != VS_OK || (rc = filter_check(f, "scroll", name, err)) != VS_OK) return rc;
    if (limit < 1 || limit == 0x7fffffff || !cb || !next)
        return vs_fail(err, VS_ERR_INVALID_ARG, "scroll %s: limit must be >= 1 with a callback and next buffer", name);
    json_t *flt = filter_json(f, NULL), *root = NULL;
    json_t *body = flt ? json_pack("{s:o,s:i,s:b,s:b}", "filter", flt, "limit", limit + 1, "with_payload", 1,
                                   "with_vector", 1)
                       : NULL;
    float *vec = vs_malloc((size_t)dim * sizeof *vec);
    if (!body || !vec || (after_q[0] && json_object_set_new(body, "offset", json_string(after_q)) != 0)) {
        rc = vs_fail(err, VS_ERR_NOMEM, "scroll %s: out of memory", name);
        goto out;
    }
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points/scroll", name);
    rc = qd_call(q, "scroll", name, "POST", path, body, 0, NULL, &root, err);
    if (rc != VS_OK) goto out;
    rc = vs_qdrant_scroll_answer(root, name, f, dim, after_q, limit, vec, cb, ctx, next, err);
out:
    json_decref(body);
    json_decref(root);
    vs_free(vec);
    return rc;
}

/* search: Qdrant's top-k under the filter, re-checked here (tenant, filter,
 * threshold, id mapping) and sorted best first. */
static vs_err qd_search(vs_index *ix, const char *name, const float *query, const vs_filter *f, int top_k,
                        float threshold, vs_hit **hits, int *n_hits, vs_error *err) {
    qd *q = (qd *)ix;
    if (hits) *hits = NULL;
    if (n_hits) *n_hits = 0;
    int dim;
    vs_err rc = coll_dim_of(q, name, "search", &dim, err);
    if (rc != VS_OK || (rc = filter_check(f, "search", name, err)) != VS_OK) return rc;
    if (!query || !hits || !n_hits || top_k < 1 || isnan(threshold))
        return vs_fail(err, VS_ERR_INVALID_ARG, "search %s: need a query, outputs, top_k >= 1 (got %d), a threshold",
                       name, top_k);
    for (int d = 0; d < dim; d++)
        if (!isfinite(query[d]))
            return vs_fail(err, VS_ERR_INVALID_ARG, "search %s: query[%d] is not finite", name, d);
    json_t *flt = filter_json(f, NULL), *root = NULL;
    json_t *body = flt ? json_pack("{s:o,s:o,s:i,s:f,s:b,s:b}", "vector", vector_json(query, dim), "filter", flt,
                                   "limit", top_k, "score_threshold", (double)threshold, "with_payload", 1,
                                   "with_vector", 0)
                       : NULL;
    /* Qdrant's own switch for a full scan instead of its HNSW graph */
    if (body && f->exact && json_object_set_new(body, "params", json_pack("{s:b}", "exact", 1)) != 0) {
        json_decref(body);
        body = NULL;
    }
    if (!body) {
        rc = vs_fail(err, VS_ERR_NOMEM, "search %s: out of memory", name);
        goto out;
    }
    char path[128];
    snprintf(path, sizeof path, "/collections/%s/points/search", name);
    rc = qd_call(q, "search", name, "POST", path, body, 0, NULL, &root, err);
    if (rc != VS_OK) goto out;
    rc = vs_qdrant_search_answer(root, name, f, threshold, top_k, hits, n_hits, err);
out:
    json_decref(body);
    json_decref(root);
    return rc;
}

/* Qdrant's readiness probe (GET /readyz, Qdrant >= 1.5): one short try. */
static int qd_healthy(vs_index *ix) {
    qd *q = (qd *)ix;
    size_t ulen = strlen(q->url) + sizeof "/readyz";
    char *url = vs_malloc(ulen);
    CURL *h = url ? handle_take(q) : NULL;
    int ok = 0;
    if (h) {
        vs_buf_sink b = {0};
        long st = 0;
        char errbuf[CURL_ERROR_SIZE];
        snprintf(url, ulen, "%s/readyz", q->url);
        long t = q->o.timeout_ms < 5000 ? q->o.timeout_ms : 5000;
        ok = http_once(q, h, "GET", url, NULL, 0, t, &b, &st, errbuf) == CURLE_OK && st >= 200 && st < 300;
        vs_buf_free(&b.buf);
    }
    handle_give(q, h);
    vs_free(url);
    return ok;
}

/* close: frees the pooled handles and wipes the API key copy. */
static void qd_close(vs_index *ix) {
    qd *q = (qd *)ix;
    if (!q) return;
    for (int i = 0; i < q->n_pool; i++) curl_easy_cleanup(q->pool[i]);
    curl_slist_free_all(q->headers);
    if (q->api_key) {
        volatile char *p = q->api_key;
        while (*p) *p++ = 0; /* do not leave the key in freed memory */
        vs_free(q->api_key);
    }
    vs_free(q->url);
    vs_free(q->colls);
    pthread_mutex_destroy(&q->mu);
    vs_free(q);
}

static const vs_index_ops qd_ops = {
    .ensure_collection = qd_ensure_collection,
    .describe = qd_describe,
    .drop_collection = qd_drop_collection,
    .upsert = qd_upsert,
    .get = qd_get,
    .delete_ids = qd_delete_ids,
    .delete_filter = qd_delete_filter,
    .count = qd_count,
    .scroll = qd_scroll,
    .search = qd_search,
    .healthy = qd_healthy,
    .close = qd_close,
};

/* Fills q->label with url minus any user:password@ part. */
static void make_label(qd *q, const char *url) {
    const char *auth = strstr(url, "://") + 3, *end = auth + strcspn(auth, "/");
    const char *at = memchr(auth, '@', (size_t)(end - auth));
    snprintf(q->label, sizeof q->label, "%.*s%.100s", (int)(auth - url), url, at ? at + 1 : auth);
}

vs_err vs_index_qdrant_open(const char *url, const vs_qdrant_opts *opts, vs_index **out, vs_error *err) {
    *out = NULL;
    if (!url) return vs_fail(err, VS_ERR_INVALID_ARG, "index open: no URL");
    size_t skip = strncmp(url, "http://", 7) == 0 ? 7 : strncmp(url, "https://", 8) == 0 ? 8 : 0;
    if (!skip || !vs_index_text_ok(url, 2048) || strpbrk(url, " ?#") || url[skip] == '\0' || url[skip] == '/')
        return vs_fail(err, VS_ERR_INVALID_ARG, "index open %.200s: want http(s)://host[:port][/prefix]", url);
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_rc != CURLE_OK)
        return vs_fail(err, VS_ERR_BACKEND, "index open %.200s: curl_global_init: %s", url,
                       curl_easy_strerror(g_curl_rc));
    const char *key = getenv("QDRANT_API_KEY");
    if (key && *key && !vs_index_text_ok(key, API_KEY_MAX))
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "index open %.200s: QDRANT_API_KEY has control characters or is over %d bytes", url,
                       API_KEY_MAX);
    qd *q = vs_calloc(1, sizeof *q);
    if (!q) return vs_fail(err, VS_ERR_NOMEM, "index open %.200s: out of memory", url);
    q->base.ops = &qd_ops;
    pthread_mutex_init(&q->mu, NULL);
    q->o = opts ? *opts : (vs_qdrant_opts){0};
    if (q->o.connect_timeout_ms <= 0) q->o.connect_timeout_ms = 5000;
    if (q->o.timeout_ms <= 0) q->o.timeout_ms = 60000;
    if (q->o.tries <= 0) q->o.tries = 4;
    if (q->o.backoff_ms <= 0) q->o.backoff_ms = 100;
    size_t n = strlen(url);
    while (n > skip && url[n - 1] == '/') n--;
    make_label(q, url);
    q->url = vs_malloc(n + 1);
    if (q->url) memcpy(q->url, url, n), q->url[n] = '\0';
    if (key && *key) q->api_key = vs_strdup(key);
    int bad = !q->url || (key && *key && !q->api_key);
    struct curl_slist *h = NULL;
    const char *hdrs[] = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0] && !bad; i++) {
        struct curl_slist *t = curl_slist_append(h, hdrs[i]);
        if (!t) bad = 1;
        else h = t;
    }
    if (!bad && q->api_key) {
        size_t hl = strlen(q->api_key) + sizeof "api-key: ";
        char *line = vs_malloc(hl);
        struct curl_slist *t = NULL;
        if (line) {
            snprintf(line, hl, "api-key: %s", q->api_key);
            t = curl_slist_append(h, line); /* copies the line */
            memset(line, 0, hl);
            vs_free(line);
        }
        if (!t) bad = 1;
        else h = t;
    }
    q->headers = h;
    if (bad) {
        qd_close(&q->base);
        return vs_fail(err, VS_ERR_NOMEM, "index open %.200s: out of memory", url);
    }
    *out = &q->base;
    return VS_OK;
}
