/* test_store_s3.c - the s3:// blob store end to end. Against a real s3rver
 * (npm, tests/s3; started here on 127.0.0.1 with a free port): the store
 * contract (contract_store.h, each test under a bucket prefix of its own),
 * then buckets made at open, listing across ListObjectsV2 pages with
 * concurrent writers, S3's bucket-name rules, presigned URLs fetched with
 * plain libcurl, path-style and virtual-host style URLs.
 * Against a tiny fake S3 (libmicrohttpd on 127.0.0.1, ephemeral port) that
 * verifies every SigV4 signature it receives the way S3 does - from the
 * request as it arrived - : retries on 500/503/429 and transport errors,
 * no retry on 4xx, bounded time, XML entities and continuation tokens,
 * bodies that grow past the limit, tampered presigned URLs, and libcurl's
 * own CURLOPT_AWS_SIGV4 signature accepted by our verifier. Nothing outside
 * loopback is contacted. s3rver missing fails the test, naming the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contract_store.h"
#include "vs_hash.h"
#include "vs_sigv4.h"

#define SETUP_HINT "(cd tests/s3 && npm ci) - needs node (Debian: apt-get install nodejs npm)"
#define N_PAGED 1100 /* > 1000: s3rver, like S3, pages ListObjectsV2 at 1000 keys */
#define PUT_THREADS 4

static pid_t g_s3rver = -1;
static int g_s3rver_port;
static char g_dir[64]; /* s3rver's data directory */
static vs_store *g_s3; /* s3rver, bucket prefix "vt" */

/* ---- helpers -------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* A TCP port on 127.0.0.1 nobody listens on right now. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof sin;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* 1 when something accepts connections on 127.0.0.1:port. */
static int port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Points the s3:// backend at 127.0.0.1:port with s3rver's credentials. */
static void s3_env(int port) {
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    setenv("VISAGE_S3_ENDPOINT", ep, 1);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    unsetenv("VISAGE_S3_PATH_STYLE");
}

static vs_store *open_store(int port, const char *url) {
    s3_env(port);
    vs_store *s = NULL;
    vs_error e = {0};
    if (vs_store_open(url, &s, &e) != VS_OK) fprintf(stderr, "open %s: %s\n", url, e.msg);
    return s;
}

/* Plain libcurl GET of url: the status, and the body in body (cap bytes). */
static long http_get(const char *url, char *body, size_t cap);

/* ---- the fake S3 ---------------------------------------------------------- */

typedef struct fake_conn {
    uint8_t *body;
    size_t len, cap;
} fake_conn;

static struct MHD_Daemon *g_fake;
static int g_fake_port;
static atomic_int g_fake_requests; /* requests to /flaky */
static atomic_int g_fail_left;     /* scripted failures still to answer */
static atomic_int g_fail_status;
static const char *volatile g_fail_code = "InternalError";
static atomic_int g_bad_sigs;    /* signatures that did not verify */
static atomic_int g_signed_ok;   /* signatures that did */
static char g_list_token_seen[256];

/* Collects the query arguments of a request. */
typedef struct qargs {
    vs_sigv4_kv kv[16];
    int n;
    const char *sig; /* X-Amz-Signature, not part of what is signed */
} qargs;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    qargs *q = cls;
    if (!strcmp(key, "X-Amz-Signature")) {
        q->sig = value;
    } else if (q->n < 16) {
        q->kv[q->n++] = (vs_sigv4_kv){key, value ? value : ""};
    }
    return MHD_YES;
}

/* Verifies the SigV4 signature of a request the way S3 does: from the
 * request as received (decoded path, decoded query arguments, header
 * values), re-canonicalised and signed with the secret of the access key
 * (S3RVER/S3RVER). Header-signed requests also have their payload hash
 * checked against the body. Returns 1 verified, 0 bad, -1 unsigned. */
static int verify_sigv4(struct MHD_Connection *conn, const char *method, const char *url, const fake_conn *fc) {
    qargs q = {0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const vs_sigv4_creds creds = {"S3RVER", "S3RVER", "us-east-1", "s3"};
    char sig[VS_SIGV4_SIG_HEX], sh[256];
    if (q.sig) { /* presigned */
        const char *date = NULL, *expires = NULL, *cred = NULL;
        for (int i = 0; i < q.n; i++) {
            if (!strcmp(q.kv[i].name, "X-Amz-Date")) date = q.kv[i].value;
            if (!strcmp(q.kv[i].name, "X-Amz-Expires")) expires = q.kv[i].value;
            if (!strcmp(q.kv[i].name, "X-Amz-Credential")) cred = q.kv[i].value;
        }
        if (!date || !expires || !cred || strncmp(cred, "S3RVER/", 7) != 0) return 0;
        struct tm tm = {0};
        if (!strptime(date, "%Y%m%dT%H%M%SZ", &tm)) return 0;
        if ((int64_t)timegm(&tm) + atoll(expires) < (int64_t)time(NULL)) return 0; /* expired */
        const vs_sigv4_kv h[] = {{"host", MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host")}};
        if (!h[0].value) return 0;
        const vs_sigv4_request r = {method, url, q.kv, q.n, h, 1, "UNSIGNED-PAYLOAD"};
        if (vs_sigv4_sign(&creds, date, &r, sig, sh, sizeof sh) != 0) return 0;
        return vs_secure_streq(sig, q.sig);
    }
    if (!auth) return -1;
    /* AWS4-HMAC-SHA256 Credential=AK/D/R/S/aws4_request, SignedHeaders=a;b, Signature=hex */
    char ak[64], d8[16], region[32], service[32], names[256], given[80];
    if (sscanf(auth,
               "AWS4-HMAC-SHA256 Credential=%63[^/]/%15[^/]/%31[^/]/%31[^/]/aws4_request, SignedHeaders=%255[^,], "
               "Signature=%79s",
               ak, d8, region, service, names, given) != 6)
        return 0;
    if (strcmp(ak, "S3RVER") != 0) return 0;
    const char *date = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-amz-date");
    const char *payload = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-amz-content-sha256");
    char body_hash[VS_SHA256_HEX];
    vs_sha256_hex(fc && fc->body ? (const void *)fc->body : "", fc ? fc->len : 0, body_hash);
    if (!payload) payload = body_hash;
    else if (strcmp(payload, "UNSIGNED-PAYLOAD") != 0 && strcmp(payload, body_hash) != 0) return 0;
    if (!date || strncmp(date, d8, 8) != 0) return 0;
    vs_sigv4_kv h[16];
    int nh = 0;
    for (char *save = NULL, *n = strtok_r(names, ";", &save); n && nh < 16; n = strtok_r(NULL, ";", &save)) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, n);
        if (!v) return 0;
        h[nh++] = (vs_sigv4_kv){n, v};
    }
    const vs_sigv4_creds c2 = {"S3RVER", "S3RVER", region, service};
    const vs_sigv4_request r = {method, url, q.kv, q.n, h, nh, payload};
    if (vs_sigv4_sign(&c2, date, &r, sig, sh, sizeof sh) != 0) return 0;
    return vs_secure_streq(sig, given);
}

static enum MHD_Result fake_reply(struct MHD_Connection *conn, unsigned status, const char *body, const char *ctype) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result fake_error(struct MHD_Connection *conn, unsigned status, const char *code) {
    char xml[256];
    snprintf(xml, sizeof xml,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>injected</Message></Error>",
             code);
    return fake_reply(conn, status, xml, "application/xml");
}

/* 1 MiB, chunked, no Content-Length: only the running total can stop it. */
static ssize_t big_chunks(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)cls;
    if (pos >= (1u << 20)) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = (1u << 20) - (size_t)pos < max ? (1u << 20) - (size_t)pos : max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

/* Two hand-made ListObjectsV2 pages: entities in keys, keys a store would
 * never write (skipped), and a continuation token full of characters that
 * must be percent-encoded on the way back. */
static const char *list_page_1 =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>listing</Name><Prefix>p/</Prefix><KeyCount>4</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>true</IsTruncated><NextContinuationToken>1+tok/en=&amp;x==</NextContinuationToken>"
    "<Contents><Key>p/a&amp;b&lt;c&gt;&quot;d&apos;e.jpg</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>p/&#233;t&#xE9;.jpg</Key><Size>0</Size></Contents>"
    "<Contents><Key>p/../escape</Key><Size>1</Size></Contents>"
    "<Contents><Key>p/bad&#10;line</Key><Size>1</Size></Contents>"
    "</ListBucketResult>";
static const char *list_page_2 =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>listing</Name>"
    "<IsTruncated>false</IsTruncated>"
    "<Contents><Key>p/last</Key><Size>18446744073709551615</Size></Contents></ListBucketResult>";

static void fake_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)conn, (void)toe;
    fake_conn *fc = *con_cls;
    if (fc) {
        free(fc->body);
        free(fc);
    }
    *con_cls = NULL;
}

/* The fake S3, path-style: PUT/HEAD of a bucket succeed; /flaky/KEY answers
 * g_fail_left scripted errors, then succeeds; /chunky/big streams 1 MiB
 * chunked; GET /listing lists the two pages above; every signature is
 * verified and a bad one answered 403 SignatureDoesNotMatch. */
static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_data_size,
                                    void **con_cls) {
    (void)cls, (void)version;
    fake_conn *fc = *con_cls;
    if (!fc) {
        *con_cls = fc = calloc(1, sizeof *fc);
        return fc ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        if (fc->len + *upload_data_size > fc->cap) {
            fc->cap = (fc->len + *upload_data_size) * 2;
            fc->body = realloc(fc->body, fc->cap);
        }
        memcpy(fc->body + fc->len, upload_data, *upload_data_size);
        fc->len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    int v = verify_sigv4(conn, method, url, fc);
    if (v == 0) {
        atomic_fetch_add(&g_bad_sigs, 1);
        return fake_error(conn, 403, "SignatureDoesNotMatch");
    }
    if (v == 1) atomic_fetch_add(&g_signed_ok, 1);
    if (!strchr(url + 1, '/')) { /* the bucket itself */
        if (!strcmp(url, "/listing") && !strcmp(method, "GET")) {
            const char *tok = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "continuation-token");
            if (!tok) return fake_reply(conn, 200, list_page_1, "application/xml");
            snprintf(g_list_token_seen, sizeof g_list_token_seen, "%s", tok);
            return fake_reply(conn, 200, list_page_2, "application/xml");
        }
        return fake_reply(conn, 200, "", NULL);
    }
    if (!strncmp(url, "/flaky", 6)) { /* /flaky/k: 200 after the script; /flaky2/k: 404 after it */
        atomic_fetch_add(&g_fake_requests, 1);
        if (atomic_load(&g_fail_left) > 0) {
            atomic_fetch_sub(&g_fail_left, 1);
            return fake_error(conn, (unsigned)atomic_load(&g_fail_status), g_fail_code);
        }
        if (url[6] != '/') return fake_error(conn, 404, "NoSuchKey");
        return fake_reply(conn, 200, strcmp(method, "GET") ? "" : "flaky-body", NULL);
    }
    if (!strcmp(url, "/chunky/big")) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, big_chunks, NULL, NULL);
        enum MHD_Result ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strncmp(url, "/signed/", 8)) return fake_reply(conn, 200, "signed-body", "text/plain");
    return fake_error(conn, 404, "NoSuchKey");
}

/* Starts a fake S3 daemon on 127.0.0.1 with an ephemeral port. */
static struct MHD_Daemon *start_daemon(int *port) {
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                                            NULL, fake_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                                            MHD_OPTION_NOTIFY_COMPLETED, fake_done, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    *port = info ? info->port : 0;
    return d;
}

static int start_fake(void) {
    g_fake = start_daemon(&g_fake_port);
    return g_fake && g_fake_port > 0 ? 0 : -1;
}

/* ---- s3rver ---------------------------------------------------------------- */

/* Starts s3rver from tests/s3 on a free port with a fresh data directory
 * and waits until it accepts connections; -1 (with the reason and the
 * setup command on stderr) when node or s3rver is missing or it dies. */
static int start_s3rver(void) {
    char js[512];
    snprintf(js, sizeof js, "%s/tests/s3/node_modules/s3rver/bin/s3rver.js", VS_SOURCE_DIR);
    if (access(js, R_OK) != 0) {
        fprintf(stderr, "test_store_s3: s3rver is not installed (%s missing); run: " SETUP_HINT "\n", js);
        return -1;
    }
    strcpy(g_dir, "/tmp/vs_test_s3_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    g_s3rver_port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", g_s3rver_port);
    g_s3rver = fork();
    if (g_s3rver < 0) return -1;
    if (g_s3rver == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(126);
        /* s3rver 3.7.1 makes ListObjectsV2 continuation tokens with DES, which
         * OpenSSL 3 keeps in its legacy provider: without it every truncated
         * listing answers 500 (ERR_OSSL_EVP_UNSUPPORTED). --service-endpoint
         * localhost: BUCKET.s3.localhost is virtual-host style (libcurl
         * resolves *.localhost to loopback itself) */
        execlp("node", "node", "--openssl-legacy-provider", js, "--address", "127.0.0.1", "--port", port,
               "--directory", g_dir, "--service-endpoint", "localhost", "--silent", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) { /* 20 s */
        int status;
        if (waitpid(g_s3rver, &status, WNOHANG) == g_s3rver) {
            g_s3rver = -1;
            fprintf(stderr, "test_store_s3: s3rver exited at start (%s %d); is node installed? run: " SETUP_HINT "\n",
                    WIFEXITED(status) ? "status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return -1;
        }
        if (port_open(g_s3rver_port)) return 0;
        usleep(50 * 1000);
    }
    fprintf(stderr, "test_store_s3: s3rver did not listen on 127.0.0.1:%d within 20 s\n", g_s3rver_port);
    return -1;
}

static int group_setup(void **state) {
    (void)state;
    setenv("NO_PROXY", "127.0.0.1,localhost", 1); /* never send loopback traffic through a proxy */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (start_fake() != 0) {
        fprintf(stderr, "test_store_s3: cannot start the fake S3 on 127.0.0.1\n");
        return -1;
    }
    if (start_s3rver() != 0) return -1;
    g_s3 = open_store(g_s3rver_port, "s3://vt");
    return g_s3 ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    vs_store_close(g_s3);
    if (g_s3rver > 0) {
        kill(g_s3rver, SIGTERM);
        waitpid(g_s3rver, NULL, 0);
    }
    if (g_dir[0]) nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (g_fake) MHD_stop_daemon(g_fake);
    curl_global_cleanup();
    return 0;
}

static size_t sink(char *p, size_t size, size_t n, void *ud) {
    char **b = ud;
    size_t len = size * n, room = (size_t)(b[1] - b[0]);
    size_t k = len < room ? len : room;
    memcpy(b[0], p, k);
    b[0] += k;
    return len;
}

static long http_get(const char *url, char *body, size_t cap) {
    CURL *h = curl_easy_init();
    char *b[2] = {body, body + cap - 1};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long st = 0;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    *b[0] = '\0';
    curl_easy_cleanup(h);
    return st;
}

/* ---- against s3rver --------------------------------------------------------- */

/* Each contract test gets a store of its own: a fresh bucket prefix. */
static int setup(void **state) {
    static int n;
    char url[32];
    snprintf(url, sizeof url, "s3://c%d", ++n);
    fixture *f = calloc(1, sizeof *f);
    f->s = open_store(g_s3rver_port, url);
    /* s3rver writes an overwritten object in place, so a GET racing the PUT
     * can read a mix with a consistent length; S3 and MinIO replace objects
     * atomically. The file backend runs this check. */
    f->peer_not_atomic = "s3rver rewrites objects in place (S3 and MinIO do not)";
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state) {
    fixture *f = *state;
    vs_store_close(f->s);
    free(f);
    return 0;
}

/* Opening made the four buckets, prefixed; opening again (they exist: s3rver
 * says BucketAlreadyExists even to their owner) and without a prefix works. */
static void test_buckets_created(void **state) {
    (void)state;
    const char *names[] = {"vt-raw-images", "vt-thumbnails", "vt-face-crops", "vt-face-thumbs",
                           "raw-images",    "thumbnails",    "face-crops",    "face-thumbs"};
    char p[256];
    struct stat sb;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
    }
    vs_store *again = open_store(g_s3rver_port, "s3://vt/");
    assert_non_null(again);
    assert_true(again->ops->healthy(again));
    vs_store_close(again);
    vs_store *plain = open_store(g_s3rver_port, "s3://");
    assert_non_null(plain);
    for (int i = 4; i < 8; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        assert_int_equal(stat(p, &sb), 0);
    }
    assert_int_equal(put_str(plain, "raw-images", "t/x.jpg", "plain"), VS_OK);
    char *got = get_str(plain, "raw-images", "t/x.jpg");
    assert_string_equal(got, "plain");
    vs_free(got);
    assert_null(get_str(g_s3, "raw-images", "t/x.jpg")); /* the prefixed deployment does not see it */
    vs_store_close(plain);
}

/* Puts page/{from..to-1} into thumbnails; one of several threads sharing
 * the store (and its handle pool). */
typedef struct put_range {
    vs_store *s;
    int from, to, failures;
} put_range;

static void *put_range_run(void *arg) {
    put_range *r = arg;
    char key[64];
    for (int i = r->from; i < r->to; i++) {
        vs_error e = {0};
        snprintf(key, sizeof key, "page/%05d.jpg", i);
        if (vs_store_put(r->s, "thumbnails", key, "p", 1, "image/jpeg", &e) != VS_OK) {
            fprintf(stderr, "put %s: %s\n", key, e.msg);
            r->failures++;
        }
    }
    return NULL;
}

/* More keys than one ListObjectsV2 page, put by PUT_THREADS threads at
 * once: every key listed once, across the continuation token (s3rver's are
 * base64: '+', '/', '='); stopping early, on either page. */
static void test_list_pages(void **state) {
    (void)state;
    vs_store *s = g_s3;
    vs_error e = {0};
    int64_t t0 = now_ms();
    pthread_t th[PUT_THREADS];
    put_range r[PUT_THREADS];
    for (int t = 0; t < PUT_THREADS; t++) {
        r[t] = (put_range){s, t * N_PAGED / PUT_THREADS, (t + 1) * N_PAGED / PUT_THREADS, 0};
        assert_int_equal(pthread_create(&th[t], NULL, put_range_run, &r[t]), 0);
    }
    for (int t = 0; t < PUT_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(r[t].failures, 0);
    }
    assert_int_equal(put_str(s, "thumbnails", "pagf/outside", "x"), VS_OK);
    listing l;
    listing_init(&l, N_PAGED + 10);
    vs_err lrc = do_list(s, "thumbnails", "page/", &l, &e);
    if (lrc != VS_OK) fprintf(stderr, "list: %s\n", e.msg);
    assert_int_equal(lrc, VS_OK);
    assert_int_equal(l.n, N_PAGED);
    char *seen = calloc(N_PAGED, 1);
    for (int i = 0; i < l.n; i++) {
        int k = -1;
        assert_int_equal(sscanf(l.keys[i], "page/%05d.jpg", &k), 1);
        assert_true(k >= 0 && k < N_PAGED);
        assert_false(seen[k]);
        seen[k] = 1;
        assert_int_equal(l.sizes[i], 1);
    }
    free(seen);
    l.stop_after = 1005; /* on the second page */
    assert_int_equal(do_list(s, "thumbnails", "page/", &l, &e), VS_OK);
    assert_int_equal(l.n, 1005);
    l.stop_after = 3;
    assert_int_equal(do_list(s, "thumbnails", "", &l, &e), VS_OK);
    assert_int_equal(l.n, 3);
    l.stop_after = 0;
    assert_int_equal(do_list(s, "thumbnails", "page/010", &l, &e), VS_OK); /* 01000..01099 */
    assert_int_equal(l.n, 100);
    listing_free(&l);
    fprintf(stderr, "note: %d puts and 4 listings in %lld ms\n", N_PAGED, (long long)(now_ms() - t0));
}

/* S3's own refusals, before any request: bucket names S3 would not take
 * (and a test prefix makes no name valid), and a content type that would
 * inject a header. */
static void test_s3_names(void **state) {
    (void)state;
    vs_error e = {0};
    const char *bad_buckets[] = {"", "Raw-Images", "a/b", "..", "raw_images", "raw-images-", "a..b",
                                 "an-extremely-long-bucket-name-that-is-way-over-the-s3-limit-xx"};
    for (size_t i = 0; i < sizeof bad_buckets / sizeof bad_buckets[0]; i++) {
        assert_int_equal(vs_store_put(g_s3, bad_buckets[i], "k", "x", 1, NULL, &e), VS_ERR_INVALID_ARG);
        assert_non_null(strstr(e.msg, "invalid bucket"));
    }
    assert_int_equal(vs_store_put(g_s3, "raw-images", "k", "x", 1, "text/plain\r\nX-Evil: 1", &e),
                     VS_ERR_INVALID_ARG);
}

/* A presigned URL serves the object to plain libcurl, no credentials;
 * s3rver refuses an unknown access key and an expired URL. (s3rver 3.7.1
 * does not check V4 signatures themselves: the fake S3 test below does.) */
static void test_presign_s3rver(void **state) {
    (void)state;
    vs_store *s = g_s3;
    assert_int_equal(put_str(s, "face-crops", "t4/a b+c.jpg", "crop bytes"), VS_OK);
    char url[2048], body[256];
    assert_int_equal(s->ops->presign_get(s, "face-crops", "t4/a b+c.jpg", time(NULL) + 600, url, sizeof url), 0);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/vt-face-crops/t4/a%%20b%%2Bc.jpg?X-Amz-Algorithm=", g_s3rver_port);
    assert_memory_equal(url, want, strlen(want));
    assert_true(strstr(url, "X-Amz-Expires=600&") || strstr(url, "X-Amz-Expires=599&")); /* a second may tick */
    assert_non_null(strstr(url, "&X-Amz-SignedHeaders=host&X-Amz-Signature="));
    assert_int_equal(http_get(url, body, sizeof body), 200);
    assert_string_equal(body, "crop bytes");
    /* unknown access key */
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", url);
    char *cred = strstr(bad, "X-Amz-Credential=S3RVER");
    assert_non_null(cred);
    cred[17] = 'Z';
    assert_int_equal(http_get(bad, body, sizeof body), 403);
    /* expired: dated a day back */
    snprintf(bad, sizeof bad, "%s", url);
    char *date = strstr(bad, "X-Amz-Date=");
    assert_non_null(date);
    struct tm tm;
    time_t yesterday = time(NULL) - 86400;
    gmtime_r(&yesterday, &tm);
    char d[VS_SIGV4_DATE];
    strftime(d, sizeof d, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date + 11, d, 16);
    assert_int_equal(http_get(bad, body, sizeof body), 403);
    assert_non_null(strstr(body, "AccessDenied"));
}

/* Virtual-host style (VISAGE_S3_PATH_STYLE=0): the bucket in the host name,
 * http://vh-raw-images.s3.localhost:PORT/key, for requests and presigned
 * URLs alike. */
static void test_virtual_host_style(void **state) {
    (void)state;
    char ep[64];
    s3_env(g_s3rver_port);
    snprintf(ep, sizeof ep, "http://s3.localhost:%d", g_s3rver_port);
    setenv("VISAGE_S3_ENDPOINT", ep, 1);
    setenv("VISAGE_S3_PATH_STYLE", "0", 1);
    vs_store *s = NULL;
    vs_error e = {0};
    vs_err rc = vs_store_open("s3://vh", &s, &e);
    unsetenv("VISAGE_S3_PATH_STYLE");
    if (rc != VS_OK) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, VS_OK);
    char p[256];
    struct stat sb;
    snprintf(p, sizeof p, "%s/vh-face-thumbs", g_dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(put_str(s, "raw-images", "t6/a b.jpg", "vhost"), VS_OK);
    char *got = get_str(s, "raw-images", "t6/a b.jpg");
    assert_non_null(got);
    assert_string_equal(got, "vhost");
    vs_free(got);
    assert_int_equal(exists(s, "raw-images", "t6/a b.jpg"), 1);
    listing l;
    listing_init(&l, 4);
    assert_int_equal(do_list(s, "raw-images", "t6/", &l, &e), VS_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "t6/a b.jpg");
    listing_free(&l);
    char url[2048], body[64], want[96];
    assert_int_equal(s->ops->presign_get(s, "raw-images", "t6/a b.jpg", time(NULL) + 60, url, sizeof url), 0);
    snprintf(want, sizeof want, "http://vh-raw-images.s3.localhost:%d/t6/a%%20b.jpg?", g_s3rver_port);
    assert_memory_equal(url, want, strlen(want));
    assert_int_equal(http_get(url, body, sizeof body), 200);
    assert_string_equal(body, "vhost");
    assert_int_equal(vs_store_del(s, "raw-images", "t6/a b.jpg", &e), VS_OK);
    assert_int_equal(exists(s, "raw-images", "t6/a b.jpg"), 0);
    assert_true(s->ops->healthy(s));
    vs_store_close(s);
    s3_env(g_s3rver_port);
}

/* ---- against the fake S3 ------------------------------------------------------ */

/* Every request the store sends verifies; presigned URLs verify and a
 * tampered one (signature, key, expiry) gets 403. */
static void test_signatures_verify(void **state) {
    (void)state;
    atomic_store(&g_bad_sigs, 0);
    atomic_store(&g_signed_ok, 0);
    vs_store *s = open_store(g_fake_port, "s3://");
    assert_non_null(s);
    vs_error e = {0};
    const char *key = "t5/\xc3\xa9 x+y=z&w~.jpg";
    assert_int_equal(vs_store_put(s, "signed", key, "payload", 7, "image/jpeg", &e), VS_OK);
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(vs_store_get(s, "signed", key, 100, &d, &n, &e), VS_OK);
    assert_memory_equal(d, "signed-body", n);
    vs_free(d);
    int x = 0;
    assert_int_equal(s->ops->exists(s, "signed", key, &x, &e), VS_OK);
    assert_int_equal(vs_store_del(s, "signed", key, &e), VS_OK);
    assert_int_equal(atomic_load(&g_bad_sigs), 0);
    assert_true(atomic_load(&g_signed_ok) >= 4 + 4); /* 4 bucket PUTs at open, then 4 calls */

    char url[2048], body[256];
    assert_int_equal(s->ops->presign_get(s, "signed", key, time(NULL) + 300, url, sizeof url), 0);
    assert_int_equal(http_get(url, body, sizeof body), 200);
    assert_string_equal(body, "signed-body");
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", url);
    char *sig = strstr(bad, "X-Amz-Signature=") + 16;
    sig[5] = sig[5] == '0' ? '1' : '0';
    assert_int_equal(http_get(bad, body, sizeof body), 403);
    assert_non_null(strstr(body, "SignatureDoesNotMatch"));
    snprintf(bad, sizeof bad, "%s", url);
    char *k = strstr(bad, "/t5/");
    k[1] = 'T'; /* another object, same signature */
    assert_int_equal(http_get(bad, body, sizeof body), 403);
    snprintf(bad, sizeof bad, "%s", url);
    char *ex = strstr(bad, "X-Amz-Expires=");
    ex[14] = ex[14] == '9' ? '8' : '9'; /* longer or shorter life */
    assert_int_equal(http_get(bad, body, sizeof body), 403);
    assert_int_equal(atomic_load(&g_bad_sigs), 3);
    vs_store_close(s);
}

/* libcurl's own SigV4 header signing (an independent implementation)
 * produces the signature our verifier computes. */
static void test_curl_sigv4_agrees(void **state) {
    (void)state;
    atomic_store(&g_bad_sigs, 0);
    atomic_store(&g_signed_ok, 0);
    char url[256], body[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/signed/curl-check.jpg", g_fake_port);
    CURL *h = curl_easy_init();
    char *b[2] = {body, body + sizeof body - 1};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(h, CURLOPT_USERPWD, "S3RVER:S3RVER");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long st = 0;
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(h);
    *b[0] = '\0';
    assert_int_equal(st, 200);
    assert_string_equal(body, "signed-body");
    assert_int_equal(atomic_load(&g_signed_ok), 1);
    assert_int_equal(atomic_load(&g_bad_sigs), 0);
}

/* Scripts the fake: the next `n` requests to /flaky answer status/code. */
static void script(int n, int status, const char *code) {
    atomic_store(&g_fake_requests, 0);
    atomic_store(&g_fail_status, status);
    g_fail_code = code;
    atomic_store(&g_fail_left, n);
}

static void test_retries(void **state) {
    (void)state;
    vs_store *s = open_store(g_fake_port, "s3://");
    assert_non_null(s);
    vs_error e = {0};
    /* 500 twice, then 200: the put succeeds on the third try */
    script(2, 500, "InternalError");
    assert_int_equal(vs_store_put(s, "flaky", "t/a.jpg", "abc", 3, NULL, &e), VS_OK);
    assert_int_equal(atomic_load(&g_fake_requests), 3);
    /* 503 SlowDown and 429 are retried too */
    script(1, 503, "SlowDown");
    assert_int_equal(vs_store_put(s, "flaky", "t/b.jpg", "abc", 3, NULL, &e), VS_OK);
    assert_int_equal(atomic_load(&g_fake_requests), 2);
    script(3, 429, "TooManyRequests");
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(vs_store_get(s, "flaky", "t/b.jpg", 100, &d, &n, &e), VS_OK);
    assert_memory_equal(d, "flaky-body", n);
    vs_free(d);
    assert_int_equal(atomic_load(&g_fake_requests), 4);
    /* always 500: VS_ERR_BACKEND after 4 tries, naming op, key, status and
     * code, in bounded time (backoff 100+200+400 ms, jittered down to half) */
    script(1000, 500, "InternalError");
    int64_t t0 = now_ms();
    e = (vs_error){0};
    assert_int_equal(vs_store_put(s, "flaky", "t/c.jpg", "abc", 3, NULL, &e), VS_ERR_BACKEND);
    int64_t took = now_ms() - t0;
    assert_int_equal(atomic_load(&g_fake_requests), 4);
    assert_true(took >= 350 && took < 5000);
    assert_non_null(strstr(e.msg, "put"));
    assert_non_null(strstr(e.msg, "flaky/t/c.jpg"));
    assert_non_null(strstr(e.msg, "HTTP 500"));
    assert_non_null(strstr(e.msg, "InternalError"));
    assert_non_null(strstr(e.msg, "after 4 tries"));
    /* a 4xx other than 429 is never retried */
    script(1000, 403, "AccessDenied");
    assert_int_equal(vs_store_put(s, "flaky", "t/d.jpg", "abc", 3, NULL, &e), VS_ERR_BACKEND);
    assert_int_equal(atomic_load(&g_fake_requests), 1);
    assert_non_null(strstr(e.msg, "HTTP 403 AccessDenied"));
    script(1000, 400, "InvalidArgument");
    assert_int_equal(vs_store_get(s, "flaky", "t/d.jpg", 100, &d, &n, &e), VS_ERR_BACKEND);
    assert_int_equal(atomic_load(&g_fake_requests), 1);
    /* a 503 then a 404: not found, after one retry */
    script(1, 503, "ServiceUnavailable");
    assert_int_equal(vs_store_get(s, "flaky2", "x", 100, &d, &n, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(atomic_load(&g_fake_requests), 2);
    script(0, 200, "");
    vs_store_close(s);
}

/* Nobody listening: open fails (it creates the buckets) with
 * VS_ERR_BACKEND naming curl's reason, after the retries, in bounded time. */
static void test_transport_errors(void **state) {
    (void)state;
    int port = free_port();
    s3_env(port);
    vs_store *s = NULL;
    vs_error e = {0};
    int64_t t0 = now_ms();
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_BACKEND);
    assert_null(s);
    assert_true(now_ms() - t0 < 10000);
    assert_non_null(strstr(e.msg, "create bucket"));
    assert_non_null(strstr(e.msg, "after 4 tries"));
    fprintf(stderr, "note: %s\n", e.msg);
    /* a store whose server goes away: healthy says no, quickly */
    int p2 = 0;
    struct MHD_Daemon *d = start_daemon(&p2);
    assert_non_null(d);
    vs_store *f = open_store(p2, "s3://");
    assert_non_null(f);
    assert_true(f->ops->healthy(f));
    MHD_stop_daemon(d);
    t0 = now_ms();
    assert_false(f->ops->healthy(f));
    assert_true(now_ms() - t0 < 2000);
    e = (vs_error){0};
    assert_int_equal(put_str(f, "raw-images", "k", "v"), VS_ERR_BACKEND);
    vs_store_close(f);
}

/* A chunked body with no Content-Length is cut off once it passes the
 * limit; a small enough limit over the declared length is refused up front. */
static void test_growing_body(void **state) {
    (void)state;
    vs_store *s = open_store(g_fake_port, "s3://");
    assert_non_null(s);
    vs_error e = {0};
    uint8_t *d = NULL;
    size_t n = 0;
    int64_t t0 = now_ms();
    assert_int_equal(vs_store_get(s, "chunky", "big", 64 * 1024, &d, &n, &e), VS_ERR_TOO_LARGE);
    assert_null(d);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(vs_store_get(s, "chunky", "big", 2u << 20, &d, &n, &e), VS_OK);
    assert_int_equal(n, 1u << 20);
    vs_free(d);
    vs_store_close(s);
}

/* Hand-made listing pages: XML entities decoded (named and numeric), keys
 * that are not store keys skipped, the continuation token sent back intact. */
static void test_list_xml(void **state) {
    (void)state;
    vs_store *s = open_store(g_fake_port, "s3://");
    assert_non_null(s);
    vs_error e = {0};
    listing l;
    listing_init(&l, 8);
    g_list_token_seen[0] = '\0';
    assert_int_equal(do_list(s, "listing", "p/", &l, &e), VS_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "p/a&b<c>\"d'e.jpg");
    assert_int_equal(l.sizes[0], 12);
    assert_string_equal(l.keys[1], "p/\xc3\xa9t\xc3\xa9.jpg");
    assert_int_equal(l.sizes[1], 0);
    assert_string_equal(l.keys[2], "p/last");
    assert_int_equal(l.sizes[2], SIZE_MAX);
    assert_string_equal(g_list_token_seen, "1+tok/en=&x==");
    listing_free(&l);
    vs_store_close(s);
}

/* Configuration errors name what is wrong. */
static void test_open_errors(void **state) {
    (void)state;
    vs_store *s = NULL;
    vs_error e = {0};
    s3_env(g_fake_port);
    assert_int_equal(vs_store_open("s3://Bad_Prefix", &s, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_store_open("s3://-x", &s, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_store_open("s3://this-prefix-is-far-too-long-for-any-bucket-name", &s, &e),
                     VS_ERR_INVALID_ARG);
    setenv("VISAGE_S3_PATH_STYLE", "maybe", 1);
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "VISAGE_S3_PATH_STYLE"));
    s3_env(g_fake_port);
    setenv("VISAGE_S3_ENDPOINT", "ftp://127.0.0.1:1", 1);
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_INVALID_ARG);
    setenv("VISAGE_S3_ENDPOINT", "http://127.0.0.1:1/some/path", 1);
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_INVALID_ARG);
    setenv("VISAGE_S3_ENDPOINT", "http://user@127.0.0.1:1", 1);
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_INVALID_ARG);
    s3_env(g_fake_port);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(vs_store_open("s3://", &s, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "AWS_SECRET_ACCESS_KEY"));
    assert_null(s);
    s3_env(g_fake_port);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        CONTRACT_STORE_TESTS(setup, teardown),
        cmocka_unit_test(test_buckets_created),   cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_s3_names),          cmocka_unit_test(test_presign_s3rver),
        cmocka_unit_test(test_virtual_host_style), cmocka_unit_test(test_signatures_verify),
        cmocka_unit_test(test_curl_sigv4_agrees), cmocka_unit_test(test_retries),
        cmocka_unit_test(test_transport_errors),  cmocka_unit_test(test_growing_body),
        cmocka_unit_test(test_list_xml),          cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
