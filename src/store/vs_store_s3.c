/* vs_store_s3.c - the s3:// blob store: the vs_store contract spoken to S3
 * or an S3-compatible server (MinIO, Ceph, s3rver) with libcurl, every request
 * signed with our own SigV4 code (vs_sigv4.c). Tuned for the pipeline's
 * objects (images and crops of tens to hundreds of KB) sent as single PUTs
 * over kept-alive connections; S3 owns atomicity and durability (a PUT that
 * answered 200 is whole and durable).
 *
 * Threading model: who locks what, and why
 *
 *   The store is shared by every worker and API thread. Its configuration
 *   (endpoint, credentials, region, bucket prefix, URL style) is written
 *   once by vs_store_s3_open - the only place that reads the environment -
 *   and only read after, unlocked. The one mutable thing is the pool of idle
 *   CURL easy handles under s3->mu, held only to push or pop a pointer: a
 *   call pops a handle (or makes one), runs its whole request, retries
 *   included, with no lock held, and pushes it back, so steady traffic reuses
 *   TCP/TLS connections and a handle is never used by two threads at once,
 *   which is all libcurl asks. curl_global_init runs once (pthread_once).
 *   Requests are signed per attempt with the clock of that attempt, on the
 *   calling thread; the signer has no state.
 * Rejected: one handle under a mutex (every GET would queue behind the
 *   slowest PUT); a fresh handle per call (a TCP, and for AWS a TLS,
 *   handshake per object); the multi interface (an event-loop thread to
 *   feed while callers block on their answer anyway); a curl share handle
 *   for the connection cache (its own lock callbacks for the same effect).
 *
 * Contract notes. Keys and buckets pass vs_store_key_ok; bucket names must
 * also be valid S3 names once prefixed ("s3://PREFIX" maps bucket b to
 * PREFIX-b). The four buckets of DESIGN.md are created at open, any other
 * on the first put that meets NoSuchBucket. Transport errors, 5xx and 429
 * are retried (exponential backoff with jitter); other 4xx never are.
 * Header signing is ours rather than CURLOPT_AWS_SIGV4: presigned URLs need
 * our signer anyway, a body streamed from a read callback is one libcurl's
 * signer cannot hash (it hashes POSTFIELDS), and the canonical query
 * (continuation tokens hold '+', '/', '=') then does not depend on which
 * libcurl release is installed. One signer is one thing to check against
 * the AWS examples; the tests also check it against libcurl's. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_buf.h"
#include "vs_pool.h"
#include "vs_redact.h"
#include "vs_hash.h"
#include "vs_s3_xml.h"
#include "vs_sigv4.h"
#include "vs_store_internal.h"

#define KEY_MAX 512
#define BUCKET_MAX 63              /* S3's limit on a bucket name, prefix included */
#define PREFIX_MAX 40
#define TRIES 4                    /* attempts per request */
#define BACKOFF_MS 100             /* first pause; doubles per attempt, jittered */
#define CONNECT_TIMEOUT_MS 5000L
#define TIMEOUT_MS 60000L          /* whole transfer */
#define HEALTH_TIMEOUT_MS 5000L
#define ERR_BODY_MAX ((size_t)64 << 10)  /* bytes of an error answer kept to find <Code> */
#define LIST_BODY_MAX ((size_t)32 << 20) /* one ListObjectsV2 page (1000 keys is ~300 KB) */
#define PREALLOC_MAX ((size_t)64 << 20)  /* trust a Content-Length this far when allocating */
#define TOKEN_MAX 2048             /* S3's are ~100 bytes; encoded, it still fits in URL_MAX */
#define POOL_MAX 8
#define PUT_LANES 8              /* PUTs of one put_many in flight at once */
#define CT_MAX 255
#define URL_MAX 12288

static const char *const g_known_buckets[] = {"raw-images", "thumbnails", "face-crops", "face-thumbs"};
#define N_KNOWN (int)(sizeof g_known_buckets / sizeof g_known_buckets[0])

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe everywhere: run it once, on first open. */
static void curl_init_once(void) { g_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct s3_store {
    vs_store base;
    char scheme[8];      /* "http" or "https" */
    char *authority;     /* endpoint host[:port] as given, for URLs */
    char *host;          /* the same without a default port: the Host header we sign */
    int path_style;      /* 1: scheme://authority/bucket/key; 0: scheme://bucket.authority/key */
    char *access_key, *secret_key, *region;
    char prefix[PREFIX_MAX + 2]; /* "" or "PREFIX-" */
    pthread_mutex_t mu;          /* guards pool */
    CURL *pool[POOL_MAX];
    int n_pool;
    vs_pool *uploads;            /* put_many's PUTs in flight at once (network-bound) */
} s3_store;

/* One request and, once performed, its answer. */
typedef struct s3_call {
    const char *op;       /* "put", "get", ... for messages */
    const char *method;   /* "GET", "PUT", "HEAD", "DELETE" */
    const char *bucket;   /* S3 name (prefixed) */
    const char *key;      /* NULL for a request on the bucket */
    const vs_sigv4_kv *query;
    int n_query;
    const uint8_t *body;  /* PUT payload */
    size_t body_len;
    const char *content_type;
    int want_body;        /* keep a 2xx body (get, list); else it is dropped */
    size_t max_bytes;     /* cap on a kept 2xx body; past it the transfer is aborted */
    int tries;            /* 0: TRIES */
    long timeout_ms;      /* 0: TIMEOUT_MS */
    /* answer */
    long status;
    vs_buf answer;        /* the answer's body (no limit: on_body decides what to keep) */
    char code[64];        /* S3's <Code> of an error answer, "" when none */
} s3_call;

/* State of one transfer, seen by the curl callbacks. */
typedef struct xfer {
    CURL *h;
    s3_call *c;
    size_t upload_pos;
    int started;          /* the first body bytes have been seen */
    int is_2xx;
    int drop;             /* a 2xx body nobody asked for: read and dropped */
    int too_large, nomem;
    int setup_failed;     /* unsignable, or curl refused an option: retrying cannot help */
    curl_off_t declared;  /* Content-Length of a 2xx answer, -1 when none */
} xfer;

/* ---- small helpers --------------------------------------------------- */

/* Maps a store bucket to its S3 name (the deployment prefix in front) in
 * out; 0 when it is not a valid store bucket or, prefixed, not a valid S3
 * bucket name (3..63 of [a-z0-9.-], alphanumeric at both ends, no "..").
 * One segment, as for file://: a '/' would alias bucket "a" key "b/c". */
static int s3_bucket(const s3_store *s, const char *bucket, char out[BUCKET_MAX + 1]) {
    if (!vs_store_key_ok(bucket) || strchr(bucket, '/')) return 0;
    size_t n = strlen(bucket);
    for (size_t i = 0; i < n; i++) {
        char c = bucket[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return 0;
        if (c == '.' && (i == 0 || bucket[i - 1] == '.' || bucket[i - 1] == '-' || bucket[i + 1] == '-')) return 0;
    }
    int m = snprintf(out, BUCKET_MAX + 1, "%s%s", s->prefix, bucket);
    if (m < 3 || m > BUCKET_MAX) return 0;
    char first = out[0], last = out[m - 1];
    return ((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9')) &&
           ((last >= 'a' && last <= 'z') || (last >= '0' && last <= '9'));
}

/* Checks bucket and key for op and writes the S3 bucket name. */
static vs_err check_args(const s3_store *s, const char *op, const char *bucket, const char *key,
                         char sb[BUCKET_MAX + 1], vs_error *err) {
    char pb[160], pk[160];
    if (!s3_bucket(s, bucket, sb))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store %s: invalid bucket \"%s\" (S3 wants [a-z0-9.-], 3..63 with "
                       "the prefix)", op, vs_store_printable(bucket, pb, sizeof pb));
    if (!vs_store_key_ok(key))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store %s %s: invalid key \"%s\"", op, vs_store_printable(bucket, pb, sizeof pb),
                       vs_store_printable(key, pk, sizeof pk));
    return VS_OK;
}

/* 1 when a Content-Type can go into a header as is: printable ASCII. */
static int content_type_ok(const char *ct) {
    size_t n = strlen(ct);
    if (n == 0 || n > CT_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ct[i] < 0x20 || (unsigned char)ct[i] >= 0x7f) return 0;
    return 1;
}

/* Sleeps ms milliseconds. */
static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The pause before attempt+1: BACKOFF_MS doubled per attempt, the upper
 * half random ("equal jitter") so that workers that failed together do not
 * come back together. */
static long backoff_ms(int attempt) {
    long d = (long)BACKOFF_MS << (attempt - 1 < 10 ? attempt - 1 : 10);
    uint16_t r = 0;
    if (vs_random_bytes(&r, sizeof r) != 0) r = 0x8000;
    return d / 2 + (long)((d / 2) * (long)r / 65535);
}

/* ---- HTTP ------------------------------------------------------------ */

/* Pops an idle handle or makes one; NULL when curl cannot. */
static CURL *handle_take(s3_store *s) {
    CURL *h = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->n_pool > 0) h = s->pool[--s->n_pool];
    pthread_mutex_unlock(&s->mu);
    return h ? h : curl_easy_init();
}

/* Resets a handle (it keeps its connections and DNS cache) and returns it
 * to the pool, or frees it when the pool is full. */
static void handle_give(s3_store *s, CURL *h) {
    if (!h) return;
    curl_easy_reset(h);
    pthread_mutex_lock(&s->mu);
    if (s->n_pool < POOL_MAX) {
        s->pool[s->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (h) curl_easy_cleanup(h);
}

/* curl write callback: keeps a wanted 2xx body up to max_bytes, aborting
 * the transfer (return 0) as soon as the declared or received size passes
 * it; drops an unwanted one; keeps only the first ERR_BODY_MAX bytes of an
 * error answer (enough for its <Code>), dropping the rest without failing. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    s3_call *c = x->c;
    size_t n = size * nmemb;
    if (!x->started) {
        x->started = 1;
        long st = 0;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
        x->is_2xx = st >= 200 && st < 300;
        curl_off_t cl = -1;
        curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (x->is_2xx && !c->want_body) x->drop = 1; /* e.g. a PUT's answer: nothing we read */
        if (x->is_2xx && !x->drop) {
            x->declared = cl;
            if (cl >= 0 && (uint64_t)cl > (uint64_t)c->max_bytes) {
                x->too_large = 1;
                return 0;
            }
            if (cl > 0 && vs_buf_reserve(&c->answer, (size_t)cl < PREALLOC_MAX ? (size_t)cl : PREALLOC_MAX) != VS_OK) {
                x->nomem = 1;
                return 0;
            }
        }
    }
    size_t keep = n;
    if (x->drop) {
        keep = 0;
    } else if (x->is_2xx) {
        if (n > c->max_bytes - c->answer.len) {
            x->too_large = 1;
            return 0;
        }
    } else {
        keep = c->answer.len >= ERR_BODY_MAX ? 0 : (n < ERR_BODY_MAX - c->answer.len ? n : ERR_BODY_MAX - c->answer.len);
    }
    if (keep) {
        if (vs_buf_append(&c->answer, p, keep) != VS_OK) {
            x->nomem = 1;
            return 0;
        }
    }
    return n;
}

/* curl read callback: the PUT payload, straight from the caller's memory. */
static size_t on_upload(char *buf, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t left = x->c->body_len - x->upload_pos, n = size * nmemb;
    if (n > left) n = left;
    if (n) memcpy(buf, x->c->body + x->upload_pos, n);
    x->upload_pos += n;
    return n;
}

/* curl seek callback: rewinds the payload when curl must send it again. */
static int on_seek(void *ud, curl_off_t off, int origin) {
    xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->c->body_len) return CURL_SEEKFUNC_CANTSEEK;
    x->upload_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Builds, for c, the URL (url, cap bytes), the Host header value and the
 * path that is signed; 0 when they do not fit or out of memory. */
static int build_target(const s3_store *s, const s3_call *c, char *url, size_t cap, char *host, size_t hcap,
                        char *path, size_t pcap) {
    int n;
    if (s->path_style) {
        n = snprintf(path, pcap, "/%s%s%s", c->bucket, c->key ? "/" : "", c->key ? c->key : "");
        if (n < 0 || (size_t)n >= pcap) return 0;
        n = snprintf(host, hcap, "%s", s->host);
    } else {
        n = snprintf(path, pcap, "/%s", c->key ? c->key : "");
        if (n < 0 || (size_t)n >= pcap) return 0;
        n = snprintf(host, hcap, "%s.%s", c->bucket, s->host);
    }
    if (n < 0 || (size_t)n >= hcap) return 0;
    char *query = vs_sigv4_canonical_query(c->query, c->n_query);
    if (!query) return 0;
    size_t elen = vs_sigv4_uri_encode(path, 0, NULL, 0);
    char *epath = vs_malloc(elen + 1);
    if (!epath) {
        vs_free(query);
        return 0;
    }
    vs_sigv4_uri_encode(path, 0, epath, elen + 1);
    n = s->path_style ? snprintf(url, cap, "%s://%s%s%s%s", s->scheme, s->authority, epath, query[0] ? "?" : "", query)
                      : snprintf(url, cap, "%s://%s.%s%s%s%s", s->scheme, c->bucket, s->authority, epath,
                                 query[0] ? "?" : "", query);
    vs_free(epath);
    vs_free(query);
    return n > 0 && (size_t)n < cap;
}

/* One attempt of c on handle h: signs it at the current time and performs
 * it. Returns curl's result; the answer is in c, and x says whether the
 * body was refused for size or memory. */
static CURLcode attempt_once(s3_store *s, CURL *h, s3_call *c, const char *url, const char *host, const char *path,
                             const char *payload_hash, xfer *x, char *errbuf) {
    *x = (xfer){.h = h, .c = c, .declared = -1};
    vs_buf_clear(&c->answer);
    c->status = 0;
    errbuf[0] = '\0';
    curl_easy_reset(h);

    char date[VS_SIGV4_DATE];
    vs_sigv4_amz_date((int64_t)time(NULL), date);
    const vs_sigv4_kv signed_h[] = {{"host", host}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", date}};
    const vs_sigv4_request r = {.method = c->method, .path = path, .query = c->query, .n_query = c->n_query,
                                .headers = signed_h, .n_headers = 3, .payload_hash = payload_hash};
    const vs_sigv4_creds cr = {s->access_key, s->secret_key, s->region, "s3"};
    char auth[1024], line[1100];
    if (vs_sigv4_authorization(&cr, date, &r, auth, sizeof auth) != 0) {
        snprintf(errbuf, CURL_ERROR_SIZE, "cannot sign the request");
        x->setup_failed = 1;
        return CURLE_BAD_FUNCTION_ARGUMENT;
    }
    struct curl_slist *hl = NULL, *t;
    int ok = 1;
#define ADD(...)                                                                                                 \
    do {                                                                                                         \
        snprintf(line, sizeof line, __VA_ARGS__);                                                                \
        if (ok && (t = curl_slist_append(hl, line)) != NULL) hl = t;                                             \
        else ok = 0;                                                                                             \
    } while (0)
    ADD("Host: %s", host);
    ADD("x-amz-content-sha256: %s", payload_hash);
    ADD("x-amz-date: %s", date);
    ADD("Authorization: %s", auth);
    if (c->content_type) ADD("Content-Type: %s", c->content_type);
    if (c->body) ADD("Expect:"); /* no 100-continue round trip for our small objects */
#undef ADD
    if (!ok) {
        curl_slist_free_all(hl);
        x->nomem = 1;
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                                          \
    if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTPHEADER, hl);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : TIMEOUT_MS);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "visage/0.1");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    if (!strcmp(c->method, "PUT")) {
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_READFUNCTION, on_upload);
        SET(CURLOPT_READDATA, x);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, x);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
    } else if (!strcmp(c->method, "HEAD")) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, c->method);
    }
#undef SET
    if (rc != CURLE_OK) x->setup_failed = 1;
    else rc = curl_easy_perform(h);
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    if (c->status >= 300) vs_s3_error_code((const char *)c->answer.data, c->answer.len, c->code, sizeof c->code);
    return rc;
}

/* Performs c with retries: transport errors, 5xx and 429 are tried again
 * (TRIES in all, backoff between); any other answer is returned as is with
 * VS_OK, for the caller to judge its status. Fails with VS_ERR_TOO_LARGE
 * when a 2xx body passes max_bytes, and with VS_ERR_BACKEND naming the op,
 * bucket/key, HTTP status and S3 code (or curl's reason) when the last try
 * still failed. */
static vs_err s3_perform(s3_store *s, s3_call *c, vs_error *err) {
    char url[URL_MAX], host[BUCKET_MAX + 512], path[BUCKET_MAX + KEY_MAX + 4], errbuf[CURL_ERROR_SIZE];
    char pk[160];
    const char *k = c->key ? vs_store_printable(c->key, pk, sizeof pk) : "";
    const char *sep = c->key ? "/" : "";
    c->status = 0;
    c->code[0] = '\0';
    if (!build_target(s, c, url, sizeof url, host, sizeof host, path, sizeof path))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store %s %s%s%s: request too long", c->op, c->bucket, sep, k);
    char payload_hash[VS_SHA256_HEX];
    vs_sha256_hex(c->body ? (const void *)c->body : "", c->body ? c->body_len : 0, payload_hash);
    CURL *h = handle_take(s);
    if (!h) return vs_fail(err, VS_ERR_BACKEND, "store %s %s%s%s: curl_easy_init failed", c->op, c->bucket, sep, k);
    int tries = c->tries > 0 ? c->tries : TRIES, attempt = 1;
    CURLcode rc;
    xfer x;
    for (;; attempt++) {
        c->code[0] = '\0';
        rc = attempt_once(s, h, c, url, host, path, payload_hash, &x, errbuf);
        if (x.too_large || x.nomem || x.setup_failed) break;
        int retry = rc != CURLE_OK || c->status >= 500 || c->status == 429;
        if (!retry || attempt >= tries) break;
        sleep_ms(backoff_ms(attempt));
    }
    handle_give(s, h);
    if (x.too_large) {
        if (x.declared >= 0)
            return vs_fail(err, VS_ERR_TOO_LARGE, "store %s %s%s%s: %lld bytes, over the limit of %zu", c->op,
                           c->bucket, sep, k, (long long)x.declared, c->max_bytes);
        return vs_fail(err, VS_ERR_TOO_LARGE, "store %s %s%s%s: over the limit of %zu bytes", c->op, c->bucket, sep,
                       k, c->max_bytes);
    }
    if (x.nomem) return vs_fail(err, VS_ERR_NOMEM, "store %s %s%s%s: out of memory", c->op, c->bucket, sep, k);
    char tries_txt[32] = "";
    if (attempt > 1) snprintf(tries_txt, sizeof tries_txt, " after %d tries", attempt);
    if (rc != CURLE_OK)
        return vs_fail(err, VS_ERR_BACKEND, "store %s %s%s%s: %s %s at %s://%s failed%s: %s", c->op, c->bucket, sep,
                       k, c->method, c->key ? "object" : "bucket", s->scheme, s->authority, tries_txt,
                       errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (c->status >= 500 || c->status == 429)
        return vs_fail(err, VS_ERR_BACKEND, "store %s %s%s%s: HTTP %ld %s%s", c->op, c->bucket, sep, k, c->status,
                       c->code[0] ? c->code : "(no S3 error code)", tries_txt);
    return VS_OK;
}

/* The error for an answer the caller did not expect: VS_ERR_TOO_LARGE for
 * 413, else VS_ERR_BACKEND, naming op, bucket/key, status and S3 code. */
static vs_err status_fail(const s3_call *c, vs_error *err) {
    char pk[160];
    const char *k = c->key ? vs_store_printable(c->key, pk, sizeof pk) : "";
    return vs_fail(err, c->status == 413 ? VS_ERR_TOO_LARGE : VS_ERR_BACKEND, "store %s %s%s%s: HTTP %ld %s", c->op,
                   c->bucket, c->key ? "/" : "", k, c->status, c->code[0] ? c->code : "(no S3 error code)");
}

/* Frees an answer body. */
static void call_done(s3_call *c) {
    vs_buf_free(&c->answer);
}

/* ---- buckets ----------------------------------------------------------- */

/* Creates S3 bucket sb if missing. 409 BucketAlreadyOwnedByYou is success;
 * 409 BucketAlreadyExists (some servers say it for our own bucket too) is
 * success when we can HEAD the bucket, else it belongs to someone else. */
static vs_err ensure_bucket(s3_store *s, const char *sb, vs_error *err) {
    char conf[256] = "";
    if (strcmp(s->region, "us-east-1") != 0) /* elsewhere AWS wants the region in the body */
        snprintf(conf, sizeof conf,
                 "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                 "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
                 s->region);
    s3_call c = {.op = "create bucket", .method = "PUT", .bucket = sb, .body = (const uint8_t *)conf,
                 .body_len = strlen(conf), .content_type = conf[0] ? "application/xml" : NULL};
    vs_err rc = s3_perform(s, &c, err);
    if (rc == VS_OK && !(c.status >= 200 && c.status < 300) &&
        !(c.status == 409 && !strcmp(c.code, "BucketAlreadyOwnedByYou"))) {
        if (c.status == 409 && !strcmp(c.code, "BucketAlreadyExists")) {
            s3_call hc = {.op = "create bucket", .method = "HEAD", .bucket = sb};
            rc = s3_perform(s, &hc, err);
            if (rc == VS_OK && !(hc.status >= 200 && hc.status < 300))
                rc = vs_fail(err, VS_ERR_BACKEND, "store create bucket %s: it exists and is not ours (HEAD: HTTP %ld)",
                             sb, hc.status);
            call_done(&hc);
        } else {
            rc = status_fail(&c, err);
        }
    }
    call_done(&c);
    return rc;
}

/* ---- operations -------------------------------------------------------- */

/* One PUT of the whole object; S3 makes it atomic and durable before its
 * 200. A bucket that does not exist yet is created and the PUT sent again. */
static vs_err s3_put(vs_store *st, const char *bucket, const char *key, const void *data, size_t len,
                     const char *content_type, vs_error *err) {
    s3_store *s = (s3_store *)st;
    char sb[BUCKET_MAX + 1];
    vs_err rc = check_args(s, "put", bucket, key, sb, err);
    if (rc != VS_OK) return rc;
    if (!data && len) return vs_fail(err, VS_ERR_INVALID_ARG, "store put %s/%s: NULL data", bucket, key);
    if (!content_type) content_type = "application/octet-stream";
    if (!content_type_ok(content_type))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store put %s/%s: invalid content type", bucket, key);
    for (int round = 0;; round++) {
        s3_call c = {.op = "put", .method = "PUT", .bucket = sb, .key = key, .body = data ? data : (const void *)"",
                     .body_len = len, .content_type = content_type};
        rc = s3_perform(s, &c, err);
        int missing = rc == VS_OK && c.status == 404 && !strcmp(c.code, "NoSuchBucket");
        if (rc == VS_OK && !(c.status >= 200 && c.status < 300) && !(missing && round == 0)) rc = status_fail(&c, err);
        call_done(&c);
        if (rc != VS_OK || !missing || round > 0) return rc;
        rc = ensure_bucket(s, sb, err);
        if (rc != VS_OK) return rc;
    }
}

/* One share of a put_many: every PUT_LANES-th blob from its lane index;
 * the first failure of the lane is kept, and the lane stops there. */
typedef struct put_lanes {
    s3_store *s;
    const vs_blob *b;
    int n, lanes;
    vs_err rc[PUT_LANES];
    vs_error err[PUT_LANES];
} put_lanes;

static void put_lane(void *ctx, int lane) {
    put_lanes *p = ctx;
    for (int i = lane; i < p->n && p->rc[lane] == VS_OK; i += p->lanes)
        p->rc[lane] = s3_put(&p->s->base, p->b[i].bucket, p->b[i].key, p->b[i].data, p->b[i].len, NULL, &p->err[lane]);
}

/* The PUTs of a batch, PUT_LANES at a time: S3 latency, not bandwidth,
 * bounds a batch of small images, so they go in parallel. Each PUT is
 * durable when it returns; on failure some may have been written, which a
 * retried batch overwrites with the same bytes. */
static vs_err s3_put_many(vs_store *st, const vs_blob *b, int n, vs_error *err) {
    put_lanes p = {.s = (s3_store *)st, .b = b, .n = n, .lanes = n < PUT_LANES ? n : PUT_LANES};
    vs_pool_run(p.s->uploads, p.lanes, put_lane, &p);
    vs_err rc = VS_OK;
    for (int i = 0; i < p.lanes && rc == VS_OK; i++)
        if ((rc = p.rc[i]) != VS_OK && err) *err = p.err[i];
    return rc;
}

/* GET of a whole object, refusing one whose Content-Length passes max_bytes
 * before reading it and aborting one whose body grows past it. */
static vs_err s3_get(vs_store *st, const char *bucket, const char *key, size_t max_bytes, uint8_t **data,
                     size_t *len, vs_error *err) {
    s3_store *s = (s3_store *)st;
    *data = NULL;
    *len = 0;
    char sb[BUCKET_MAX + 1];
    vs_err rc = check_args(s, "get", bucket, key, sb, err);
    if (rc != VS_OK) return rc;
    s3_call c = {.op = "get", .method = "GET", .bucket = sb, .key = key, .want_body = 1, .max_bytes = max_bytes};
    rc = s3_perform(s, &c, err);
    if (rc == VS_OK && c.status == 404) {
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "store get %s/%s: no such object (%s)", bucket, key,
                     c.code[0] ? c.code : "HTTP 404");
    } else if (rc == VS_OK && !(c.status >= 200 && c.status < 300)) {
        rc = status_fail(&c, err);
    } else if (rc == VS_OK && !(*data = vs_buf_take(&c.answer, len))) { /* an empty object is still a buffer */
        rc = vs_fail(err, VS_ERR_NOMEM, "store get %s/%s", bucket, key);
    }
    call_done(&c);
    return rc;
}

/* DELETE; S3 answers 204 whether or not the object was there, some
 * compatible servers 404, both fine. */
static vs_err s3_del(vs_store *st, const char *bucket, const char *key, vs_error *err) {
    s3_store *s = (s3_store *)st;
    char sb[BUCKET_MAX + 1];
    vs_err rc = check_args(s, "del", bucket, key, sb, err);
    if (rc != VS_OK) return rc;
    s3_call c = {.op = "del", .method = "DELETE", .bucket = sb, .key = key};
    rc = s3_perform(s, &c, err);
    if (rc == VS_OK && !(c.status >= 200 && c.status < 300) && c.status != 404) rc = status_fail(&c, err);
    call_done(&c);
    return rc;
}

/* HEAD of the object: 200 -> 1, 404 -> 0. */
static vs_err s3_exists(vs_store *st, const char *bucket, const char *key, int *exists, vs_error *err) {
    s3_store *s = (s3_store *)st;
    *exists = 0;
    char sb[BUCKET_MAX + 1];
    vs_err rc = check_args(s, "exists", bucket, key, sb, err);
    if (rc != VS_OK) return rc;
    s3_call c = {.op = "exists", .method = "HEAD", .bucket = sb, .key = key};
    rc = s3_perform(s, &c, err);
    if (rc == VS_OK) {
        if (c.status >= 200 && c.status < 300) *exists = 1;
        else if (c.status != 404) rc = status_fail(&c, err);
    }
    call_done(&c);
    return rc;
}

/* ListObjectsV2 of the keys starting with prefix, page by page (1000 keys
 * per page on S3) following continuation tokens. A missing bucket lists
 * nothing, as a missing directory does for file://. */
static vs_err s3_list(vs_store *st, const char *bucket, const char *prefix, vs_store_list_cb cb, void *ctx,
                      vs_error *err) {
    s3_store *s = (s3_store *)st;
    char sb[BUCKET_MAX + 1], pb[160], pp[160];
    if (!prefix) prefix = "";
    if (!s3_bucket(s, bucket, sb))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store list: invalid bucket \"%s\"", vs_store_printable(bucket, pb, sizeof pb));
    if (!vs_store_prefix_ok(prefix))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store list %s: invalid prefix \"%s\"", bucket,
                       vs_store_printable(prefix, pp, sizeof pp));
    char *token = vs_malloc(TOKEN_MAX), *prev = vs_malloc(TOKEN_MAX);
    if (!token || !prev) {
        vs_free(token);
        vs_free(prev);
        return vs_fail(err, VS_ERR_NOMEM, "store list %s", bucket);
    }
    token[0] = '\0';
    vs_err rc = VS_OK;
    for (int stopped = 0; !stopped;) {
        vs_sigv4_kv q[3] = {{"list-type", "2"}};
        int nq = 1;
        if (prefix[0]) q[nq++] = (vs_sigv4_kv){"prefix", prefix};
        if (token[0]) q[nq++] = (vs_sigv4_kv){"continuation-token", token};
        s3_call c = {.op = "list", .method = "GET", .bucket = sb, .query = q, .n_query = nq, .want_body = 1,
                     .max_bytes = LIST_BODY_MAX};
        rc = s3_perform(s, &c, err);
        if (rc == VS_OK && c.status == 404 && !strcmp(c.code, "NoSuchBucket")) {
            call_done(&c);
            break;
        }
        if (rc == VS_OK && !(c.status >= 200 && c.status < 300)) rc = status_fail(&c, err);
        if (rc == VS_OK) {
            memcpy(prev, token, strlen(token) + 1);
            rc = vs_s3_list_page(sb, prefix, c.answer.data ? (const char *)c.answer.data : "", c.answer.len, cb, ctx, &stopped, token,
                           TOKEN_MAX, err);
            if (rc == VS_OK && !stopped && token[0] && !strcmp(token, prev))
                rc = vs_fail(err, VS_ERR_BACKEND, "store list %s: the server repeated a continuation token", sb);
        }
        call_done(&c);
        if (rc != VS_OK || !token[0]) break;
    }
    vs_free(token);
    vs_free(prev);
    return rc;
}

/* Healthy when one quick signed HEAD of a bucket gets an answer that shows
 * the server up and our signature accepted: 2xx, or 404 (no such bucket). */
static int s3_healthy(vs_store *st) {
    s3_store *s = (s3_store *)st;
    char sb[BUCKET_MAX + 1];
    if (!s3_bucket(s, g_known_buckets[0], sb)) return 0;
    s3_call c = {.op = "health", .method = "HEAD", .bucket = sb, .tries = 1, .timeout_ms = HEALTH_TIMEOUT_MS};
    vs_err rc = s3_perform(s, &c, NULL);
    int ok = rc == VS_OK && ((c.status >= 200 && c.status < 300) || c.status == 404);
    call_done(&c);
    return ok;
}

/* A presigned GET URL (SigV4 query signing, UNSIGNED-PAYLOAD, signed
 * header host) valid from now until expires_unix; -1 when bucket or key are
 * invalid, the expiry is past or more than 7 days away (S3's limit), or the
 * URL does not fit in cap. */
static int s3_presign_get(vs_store *st, const char *bucket, const char *key, int64_t expires_unix, char *out,
                          size_t cap) {
    s3_store *s = (s3_store *)st;
    if (!out || cap == 0) return -1;
    out[0] = '\0';
    char sb[BUCKET_MAX + 1];
    if (check_args(s, "presign", bucket, key, sb, NULL) != VS_OK) return -1;
    int64_t now = (int64_t)time(NULL);
    if (expires_unix - now < 1 || expires_unix - now > VS_SIGV4_MAX_EXPIRES) return -1;
    s3_call c = {.bucket = sb, .key = key};
    char url[URL_MAX], host[BUCKET_MAX + 512], path[BUCKET_MAX + KEY_MAX + 4];
    if (!build_target(s, &c, url, sizeof url, host, sizeof host, path, sizeof path)) return -1;
    char date[VS_SIGV4_DATE];
    vs_sigv4_amz_date(now, date);
    const vs_sigv4_creds cr = {s->access_key, s->secret_key, s->region, "s3"};
    char *q = vs_sigv4_presign_query(&cr, date, expires_unix - now, host, "GET", path);
    if (!q) return -1;
    int n = snprintf(out, cap, "%s?%s", url, q);
    vs_free(q);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Frees the store (objects stay in S3); the secret is wiped first. */
static void s3_close(vs_store *st) {
    s3_store *s = (s3_store *)st;
    if (!s) return;
    vs_pool_free(s->uploads);
    for (int i = 0; i < s->n_pool; i++) curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->mu);
    if (s->secret_key) memset(s->secret_key, 0, strlen(s->secret_key));
    vs_free(s->authority);
    vs_free(s->host);
    vs_free(s->access_key);
    vs_free(s->secret_key);
    vs_free(s->region);
    vs_free(s);
}

static const vs_store_ops s3_ops = {
    .put = s3_put,
    .put_many = s3_put_many,
    .get = s3_get,
    .del = s3_del,
    .exists = s3_exists,
    .list = s3_list,
    .healthy = s3_healthy,
    .presign_get = s3_presign_get,
    .close = s3_close,
};

/* ---- open ---------------------------------------------------------------- */

/* getenv, with "" read as unset. */
static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* Splits endpoint "http(s)://host[:port][/]" into s->scheme, s->authority
 * and s->host (the authority less a default port). */
static vs_err parse_endpoint(s3_store *s, const char *ep, vs_error *err) {
    char shown[128]; /* ep for messages, user-info hidden before it is cut to fit */
    vs_url_redact(ep, shown, sizeof shown);
    const char *rest;
    if (!strncmp(ep, "http://", 7)) {
        strcpy(s->scheme, "http");
        rest = ep + 7;
    } else if (!strncmp(ep, "https://", 8)) {
        strcpy(s->scheme, "https");
        rest = ep + 8;
    } else {
        return vs_fail(err, VS_ERR_INVALID_ARG, "store s3: VISAGE_S3_ENDPOINT \"%s\" must start with http:// or "
                       "https://", shown);
    }
    size_t n = strcspn(rest, "/");
    if (n == 0 || n > 255 || (rest[n] && strcmp(rest + n, "/") != 0))
        return vs_fail(err, VS_ERR_INVALID_ARG, "store s3: VISAGE_S3_ENDPOINT \"%s\" must be scheme://host[:port] "
                       "with no path", shown);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rest[i];
        if (c <= 0x20 || c >= 0x7f || c == '@' || c == '?' || c == '#' || c == '\\')
            return vs_fail(err, VS_ERR_INVALID_ARG, "store s3: VISAGE_S3_ENDPOINT \"%s\": bad host", shown);
    }
    s->authority = vs_malloc(n + 1);
    s->host = vs_malloc(n + 1);
    if (!s->authority || !s->host) return vs_fail(err, VS_ERR_NOMEM, "store s3: endpoint");
    memcpy(s->authority, rest, n);
    s->authority[n] = '\0';
    memcpy(s->host, rest, n + 1);
    s->host[n] = '\0';
    /* clients leave a default port out of Host, so the signed host must too */
    const char *dflt = strcmp(s->scheme, "http") ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (n > dl && !strcmp(s->host + n - dl, dflt)) s->host[n - dl] = '\0';
    return VS_OK;
}

vs_err vs_store_s3_open(const char *spec, vs_store **out, vs_error *err) {
    *out = NULL;
    if (!spec) spec = "";
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_rc != CURLE_OK)
        return vs_fail(err, VS_ERR_BACKEND, "store s3://%.64s: curl_global_init: %s", spec,
                       curl_easy_strerror(g_curl_rc));
    /* "s3://" or "s3://PREFIX" (a trailing '/' is allowed) */
    size_t plen = strlen(spec);
    if (plen && spec[plen - 1] == '/') plen--;
    if (plen > PREFIX_MAX)
        return vs_fail(err, VS_ERR_INVALID_ARG, "store s3://%.64s: bucket prefix longer than %d", spec, PREFIX_MAX);
    for (size_t i = 0; i < plen; i++) {
        char c = spec[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0)))
            return vs_fail(err, VS_ERR_INVALID_ARG, "store s3://%.64s: the bucket prefix may only hold a-z, 0-9 and "
                           "'-' (not first)", spec);
    }
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    const char *region = env("AWS_REGION");
    if (!region) region = env("AWS_DEFAULT_REGION");
    if (!region) region = "us-east-1";
    const char *endpoint = env("VISAGE_S3_ENDPOINT"), *style = env("VISAGE_S3_PATH_STYLE");
    if (!ak || !sk)
        return vs_fail(err, VS_ERR_INVALID_ARG, "store s3://%.*s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be "
                       "set", (int)plen, spec);
    const vs_sigv4_creds probe = {ak, sk, region, "s3"};
    char date[VS_SIGV4_DATE], sig[VS_SIGV4_SIG_HEX], sh[8];
    vs_sigv4_amz_date(0, date);
    const vs_sigv4_kv h[] = {{"host", "x"}};
    const vs_sigv4_request r = {"GET", "/", NULL, 0, h, 1, "UNSIGNED-PAYLOAD"};
    if (vs_sigv4_sign(&probe, date, &r, sig, sh, sizeof sh) != 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "store s3: AWS_ACCESS_KEY_ID or AWS_REGION holds characters a "
                       "credential scope cannot (spaces, '/', ',', control characters)");

    s3_store *s = vs_calloc(1, sizeof *s);
    if (!s) return vs_fail(err, VS_ERR_NOMEM, "store s3");
    s->base.ops = &s3_ops;
    pthread_mutex_init(&s->mu, NULL);
    s->uploads = vs_pool_new(PUT_LANES - 1); /* NULL: put_many runs its lanes one after another */
    if (plen) snprintf(s->prefix, sizeof s->prefix, "%.*s-", (int)plen, spec);
    vs_err rc = VS_OK;
    s->access_key = vs_strdup(ak);
    s->secret_key = vs_strdup(sk);
    s->region = vs_strdup(region);
    if (!s->access_key || !s->secret_key || !s->region) {
        rc = vs_fail(err, VS_ERR_NOMEM, "store s3");
        goto fail;
    }
    char dflt[160];
    if (!endpoint) {
        snprintf(dflt, sizeof dflt, "https://s3.%s.amazonaws.com", region);
        endpoint = dflt;
    }
    if ((rc = parse_endpoint(s, endpoint, err)) != VS_OK) goto fail;
    s->path_style = endpoint != dflt; /* an explicit endpoint (MinIO, s3rver) defaults to path style */
    if (style) {
        if (!strcmp(style, "1") || !strcmp(style, "true")) {
            s->path_style = 1;
        } else if (!strcmp(style, "0") || !strcmp(style, "false")) {
            s->path_style = 0;
        } else {
            rc = vs_fail(err, VS_ERR_INVALID_ARG, "store s3: VISAGE_S3_PATH_STYLE must be 1 or 0, not \"%.20s\"",
                         style);
            goto fail;
        }
    }
    for (int i = 0; i < N_KNOWN; i++) {
        char sb[BUCKET_MAX + 1];
        if (!s3_bucket(s, g_known_buckets[i], sb)) {
            rc = vs_fail(err, VS_ERR_INVALID_ARG, "store s3://%.*s: prefix too long for bucket %s", (int)plen, spec,
                         g_known_buckets[i]);
            goto fail;
        }
        if ((rc = ensure_bucket(s, sb, err)) != VS_OK) goto fail;
    }
    *out = &s->base;
    return VS_OK;
fail:
    s3_close(&s->base);
    return rc;
}
