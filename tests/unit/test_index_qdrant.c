/* test_index_qdrant.c - the Qdrant backend against a fake Qdrant served by
 * this test on 127.0.0.1 (libmicrohttpd, ephemeral port): the fake records
 * every request (method, path, query, api-key, JSON body) and answers from a
 * per-test script of canned answers (the JSON files in tests/data/qdrant). We assert the
 * exact requests sent and how answers, errors and garbage are handled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_err.h"
#include "vs_index.h"
#include "vs_index_qdrant.h"

#define COLL "faces_v1"
#define MODEL "faceres@test"
#define KEY "test-key-123"
#define MAXQ 128

/* Fails with the index's message when the code is not `want`. */
#define assert_rc(expr, want, e)                                                                                \
    do {                                                                                                        \
        vs_err rc_ = (expr);                                                                                    \
        if (rc_ != (want)) fail_msg("%s: got %s, want %s (%s)", #expr, vs_err_name(rc_), vs_err_name(want),   \
                                    (e).msg);                                                                   \
    } while (0)
#define assert_ok(expr, e) assert_rc(expr, VS_OK, e)
#define assert_has(hay, needle)                                                                                 \
    do {                                                                                                        \
        if (!strstr((hay), (needle))) fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));            \
    } while (0)

/* ---- the fake Qdrant ---------------------------------------------------- */

typedef struct canned {
    unsigned status;
    char *body;
    int delay_ms;
} canned;

typedef struct req {
    char method[8];
    char path[256];
    char query[128];
    char api_key[64];
    char *body;
} req;

static struct fake {
    struct MHD_Daemon *d;
    int port;
    char url[64];
    pthread_mutex_t mu;
    canned q[MAXQ];
    int nq, head;
    int repeat_last;   /* the last canned answer serves every further request */
    req r[MAXQ];
    int nr;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct upload {
    char *buf;
    size_t n;
} upload;

/* Appends "k=v" pairs of the query string in arrival order. */
static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
    (void)kind;
    char *q = cls;
    size_t n = strlen(q);
    snprintf(q + n, 128 - n, "%s%s=%s", n ? "&" : "", k, v ? v : "");
    return MHD_YES;
}

/* Records the request, then answers with the next canned answer. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **con_cls) {
    (void)cls, (void)version;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof *u);
        return MHD_YES;
    }
    if (*data_size) {
        u->buf = realloc(u->buf, u->n + *data_size + 1);
        memcpy(u->buf + u->n, data, *data_size);
        u->n += *data_size;
        u->buf[u->n] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    canned c = {599, "{\"status\":{\"error\":\"fake: no canned answer left\"},\"time\":0}", 0};
    pthread_mutex_lock(&g.mu);
    if (g.nr < MAXQ) {
        req *r = &g.r[g.nr++];
        memset(r, 0, sizeof *r);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg, r->query);
        const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key");
        snprintf(r->api_key, sizeof r->api_key, "%s", k ? k : "");
        r->body = u->buf ? strdup(u->buf) : NULL;
    }
    if (g.head < g.nq)
        c = g.q[g.head++];
    else if (g.repeat_last && g.nq > 0)
        c = g.q[g.nq - 1];
    char *body = strdup(c.body); /* a later fake_reset may free the script while we sleep */
    pthread_mutex_unlock(&g.mu);
    if (c.delay_ms) usleep((useconds_t)c.delay_ms * 1000);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", body[0] == '{' ? "application/json" : "text/plain");
    enum MHD_Result ret = MHD_queue_response(conn, c.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Frees a connection's upload buffer when its request is done. */
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls, (void)conn, (void)t;
    upload *u = *con_cls;
    if (u) free(u->buf);
    free(u);
    *con_cls = NULL;
}

/* Forgets the script and the recorded requests. */
static void fake_reset(void) {
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < g.nq; i++) free(g.q[i].body);
    for (int i = 0; i < g.nr; i++) free(g.r[i].body);
    g.nq = g.head = g.nr = g.repeat_last = 0;
    pthread_mutex_unlock(&g.mu);
}

/* Reads fixture tests/data/qdrant/name. */
static char *fixture(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/qdrant/%s", VS_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("fixture %s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Queues a canned answer with this body text (copied). */
static void answer_text(unsigned status, const char *body, int delay_ms) {
    pthread_mutex_lock(&g.mu);
    assert_true(g.nq < MAXQ);
    g.q[g.nq++] = (canned){status, strdup(body), delay_ms};
    pthread_mutex_unlock(&g.mu);
}

/* Queues a canned answer read from a fixture file. */
static void answer(unsigned status, const char *name) {
    char *s = fixture(name);
    answer_text(status, s, 0);
    free(s);
}

/* Queues fixture name with its one occurrence of `from` replaced by `to`. */
static void answer_fixture_with(unsigned status, const char *name, const char *from, const char *to) {
    char *s = fixture(name), *at = strstr(s, from);
    if (!at) fail_msg("fixture %s has no %s", name, from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *t = malloc(n);
    snprintf(t, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    answer_text(status, t, 0);
    free(s);
    free(t);
}

/* How many requests the fake has recorded so far. */
static int n_requests(void) {
    pthread_mutex_lock(&g.mu);
    int n = g.nr;
    pthread_mutex_unlock(&g.mu);
    return n;
}

/* Asserts request i: method, path, query ("" for none), the api-key header,
 * and a body equal (as JSON) to want_json (NULL: no body). */
static void assert_req(int i, const char *method, const char *path, const char *query, const char *want_json) {
    if (i >= n_requests()) fail_msg("request %d was never sent (%d recorded)", i, n_requests());
    req *r = &g.r[i];
    assert_string_equal(r->method, method);
    assert_string_equal(r->path, path);
    assert_string_equal(r->query, query);
    assert_string_equal(r->api_key, KEY);
    if (!want_json) {
        assert_true(!r->body || !*r->body);
        return;
    }
    if (!r->body) fail_msg("request %d (%s %s) has no body", i, method, path);
    json_error_t je;
    json_t *got = json_loads(r->body, 0, &je), *want = json_loads(want_json, 0, &je);
    if (!want) fail_msg("bad expected JSON: %s", je.text);
    if (!got || !json_equal(got, want))
        fail_msg("request %d %s %s:\n sent %s\n want %s", i, method, path, r->body, want_json);
    json_decref(got);
    json_decref(want);
}

/* Opens the backend on the fake with QDRANT_API_KEY set (then unset: the key
 * must have been read once, at open) and fast retries. */
static vs_index *open_fake(void) {
    vs_index *ix = NULL;
    vs_error e = {0};
    setenv("QDRANT_API_KEY", KEY, 1);
    vs_qdrant_opts o = {.timeout_ms = 2000, .connect_timeout_ms = 1000, .tries = 4, .backoff_ms = 1};
    assert_ok(vs_index_qdrant_open(g.url, &o, &ix, &e), e);
    unsetenv("QDRANT_API_KEY");
    return ix;
}

/* Opens and ensure_collection's an existing collection; forgets the requests. */
static vs_index *open_ready(void) {
    fake_reset();
    vs_index *ix = open_fake();
    answer(200, "collection_info.json");
    answer(200, "record.json");
    vs_error e = {0};
    assert_ok(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), e);
    assert_int_equal(n_requests(), 2);
    fake_reset();
    return ix;
}

/* Starts the fake on 127.0.0.1, port chosen by the kernel. */
static int setup(void **state) {
    (void)state;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
                           NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED, completed,
                           NULL, MHD_OPTION_END);
    if (!g.d) return -1;
    g.port = MHD_get_daemon_info(g.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(g.url, sizeof g.url, "http://127.0.0.1:%d", g.port);
    return 0;
}

/* Stops the fake (waiting for its connection threads). */
static int teardown(void **state) {
    (void)state;
    if (g.d) MHD_stop_daemon(g.d);
    fake_reset();
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_point_ids(void **state) {
    (void)state;
    char q[VS_UUID_STR];
    vs_qdrant_point_id("p-000001", q); /* the fixtures quote these */
    assert_string_equal(q, "c394052b-78f2-5b47-b07a-720c83327198");
    vs_qdrant_point_id("p-000002", q);
    assert_string_equal(q, "607c1335-cea1-5b12-801a-2e34874008c3");
    vs_qdrant_point_id("p-000003", q);
    assert_string_equal(q, "d8223992-7441-5807-ba39-8383107d3751");
    vs_qdrant_point_id("p-000005", q);
    assert_string_equal(q, "74318594-be3f-50fa-9e57-3ad0a7dacd1b");
    /* canonical UUIDs pass through; anything else (upper case too) is derived */
    vs_qdrant_point_id("9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b", q);
    assert_string_equal(q, "9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b");
    vs_qdrant_point_id("9B7C1F4E-2A3D-4E5F-8A6B-7C8D9E0F1A2B", q);
    assert_string_not_equal(q, "9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b");
    char face[VS_UUID_STR];
    vs_face_id("tenant-a", "abc", 0, face);
    vs_qdrant_point_id(face, q);
    assert_string_equal(q, face);
}

static void test_open_and_health(void **state) {
    (void)state;
    fake_reset();
    vs_index *ix = NULL;
    vs_error e = {0};
    unsetenv("QDRANT_API_KEY");
    char url[80];
    snprintf(url, sizeof url, "%s/", g.url); /* trailing slash is fine */
    assert_ok(vs_index_open(url, NULL, &ix, &e), e);
    assert_true(vs_index_is_qdrant(ix));
    answer_text(200, "all shards are ready", 0);
    answer_text(503, "some shards are not ready", 0);
    assert_int_equal(ix->ops->healthy(ix), 1);
    assert_int_equal(ix->ops->healthy(ix), 0);
    assert_int_equal(n_requests(), 2);
    assert_string_equal(g.r[0].method, "GET");
    assert_string_equal(g.r[0].path, "/readyz");
    assert_string_equal(g.r[0].api_key, ""); /* no key configured: no header */
    ix->ops->close(ix);
    /* bad URLs */
    assert_rc(vs_index_open("http://", NULL, &ix, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(vs_index_open("http://127.0.0.1:1/x?y=1", NULL, &ix, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(vs_index_open("ftp://127.0.0.1", NULL, &ix, &e), VS_ERR_UNSUPPORTED, e);
    setenv("QDRANT_API_KEY", "bad\r\nX-Injected: 1", 1);
    assert_rc(vs_index_open(g.url, NULL, &ix, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "QDRANT_API_KEY");
    unsetenv("QDRANT_API_KEY");
    /* nothing listening: unhealthy, not a hang */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
    getsockname(s, (struct sockaddr *)&sin, &sl);
    close(s); /* the port is now (very likely) closed */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sin.sin_port));
    assert_ok(vs_index_open(url, NULL, &ix, &e), e);
    assert_int_equal(ix->ops->healthy(ix), 0);
    ix->ops->close(ix);
}

static void test_ensure_creates(void **state) {
    (void)state;
    fake_reset();
    vs_index *ix = open_fake();
    answer(404, "collection_not_found.json");
    answer(200, "collection_created.json");
    for (int i = 0; i < 6; i++) answer(200, "update_completed.json"); /* 5 indexes + the record */
    vs_error e = {0};
    assert_ok(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), e);
    assert_int_equal(n_requests(), 8);
    assert_req(0, "GET", "/collections/faces_v1", "", NULL);
    assert_req(1, "PUT", "/collections/faces_v1", "", "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}");
    assert_req(2, "PUT", "/collections/faces_v1/index", "wait=true",
               "{\"field_name\":\"tenant_id\",\"field_schema\":{\"type\":\"keyword\",\"is_tenant\":true}}");
    assert_req(3, "PUT", "/collections/faces_v1/index", "wait=true",
               "{\"field_name\":\"image_sha256\",\"field_schema\":\"keyword\"}");
    assert_req(4, "PUT", "/collections/faces_v1/index", "wait=true",
               "{\"field_name\":\"p_hash_prefix\",\"field_schema\":\"keyword\"}");
    assert_req(5, "PUT", "/collections/faces_v1/index", "wait=true",
               "{\"field_name\":\"site\",\"field_schema\":\"keyword\"}");
    assert_req(6, "PUT", "/collections/faces_v1/index", "wait=true",
               "{\"field_name\":\"quality_score\",\"field_schema\":\"float\"}");
    /* the model record: no tenant_id, so no tenant filter can match it */
    assert_req(7, "PUT", "/collections/faces_v1/points", "wait=true",
               "{\"points\":[{\"id\":\"" VS_QDRANT_META_ID "\",\"vector\":[1.0,0.0,0.0,0.0],"
               "\"payload\":{\"_visage_collection\":true,\"model\":\"faceres@test\",\"dim\":4}}]}");
    /* the dim is now known: a count costs one request */
    answer(200, "count_0.json");
    vs_filter f = {.tenant_id = "tenant-a"};
    int64_t n = -1;
    assert_ok(ix->ops->count(ix, COLL, &f, &n, &e), e);
    assert_int_equal(n, 0);
    assert_int_equal(n_requests(), 9);
    ix->ops->close(ix);
}

static void test_ensure_existing(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    /* the same check again, now by request inspection */
    answer(200, "collection_info.json");
    answer(200, "record.json");
    assert_ok(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), e);
    assert_req(0, "GET", "/collections/faces_v1", "", NULL);
    assert_req(1, "POST", "/collections/faces_v1/points", "",
               "{\"ids\":[\"" VS_QDRANT_META_ID "\"],\"with_payload\":true,\"with_vector\":false}");
    /* dim mismatch, read from config.params.vectors.size: refused naming both */
    fake_reset();
    answer(200, "collection_info.json");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 8, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "dim 8");
    assert_has(e.msg, "dim 4");
    assert_int_equal(n_requests(), 1);
    /* model mismatch, read from the record: refused naming both */
    fake_reset();
    answer(200, "collection_info.json");
    answer(200, "record_other_model.json");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "faceres@test");
    assert_has(e.msg, "arcface@v2");
    /* another distance */
    fake_reset();
    answer_fixture_with(200, "collection_info.json", "\"Cosine\"", "\"Dot\"");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "Cosine");
    /* named vectors: not a visage collection */
    fake_reset();
    answer(200, "collection_named_vectors.json");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    /* points but no record: refused */
    fake_reset();
    answer(200, "collection_info.json");
    answer(200, "retrieve_empty.json");
    answer(200, "count_3.json");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "3 points");
    assert_req(2, "POST", "/collections/faces_v1/points/count", "", "{\"exact\":true}");
    /* empty and no record (a creation cut short): finished */
    fake_reset();
    answer(200, "collection_info.json");
    answer(200, "retrieve_empty.json");
    answer(200, "count_0.json");
    for (int i = 0; i < 6; i++) answer(200, "update_completed.json");
    assert_ok(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), e);
    assert_int_equal(n_requests(), 9);
    assert_req(8, "PUT", "/collections/faces_v1/points", "wait=true",
               "{\"points\":[{\"id\":\"" VS_QDRANT_META_ID "\",\"vector\":[1.0,0.0,0.0,0.0],"
               "\"payload\":{\"_visage_collection\":true,\"model\":\"faceres@test\",\"dim\":4}}]}");
    /* created concurrently by another process: theirs is checked */
    fake_reset();
    answer(404, "collection_not_found.json");
    answer(409, "collection_exists.json");
    answer(200, "collection_info.json");
    answer(200, "record_other_model.json");
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "arcface@v2");
    assert_int_equal(n_requests(), 4);
    /* bad arguments are refused before any request */
    fake_reset();
    assert_rc(ix->ops->ensure_collection(ix, "../evil", 4, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(ix->ops->ensure_collection(ix, COLL, 0, MODEL, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, "", &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static void test_describe_and_drop(void **state) {
    (void)state;
    fake_reset();
    vs_index *ix = open_fake();
    vs_error e = {0};
    int dim = 0;
    char model[VS_INDEX_MODEL_MAX + 1] = "";
    /* an existing collection: its size from the collection, model from the record */
    answer(200, "collection_info.json");
    answer(200, "record.json");
    assert_ok(ix->ops->describe(ix, COLL, &dim, model, &e), e);
    assert_int_equal(dim, 4);
    assert_string_equal(model, MODEL);
    assert_req(0, "GET", "/collections/faces_v1", "", NULL);
    assert_req(1, "POST", "/collections/faces_v1/points", "",
               "{\"ids\":[\"" VS_QDRANT_META_ID "\"],\"with_payload\":true,\"with_vector\":false}");
    /* the dim is cached now: only the record is read again */
    fake_reset();
    answer(200, "record_other_model.json");
    assert_ok(ix->ops->describe(ix, COLL, &dim, model, &e), e);
    assert_string_equal(model, "arcface@v2");
    assert_int_equal(n_requests(), 1);
    /* dropped: DELETE, and the cached dim is forgotten (the name may come back with another model) */
    fake_reset();
    answer(200, "collection_deleted.json");
    assert_ok(ix->ops->drop_collection(ix, COLL, &e), e);
    assert_req(0, "DELETE", "/collections/faces_v1", "", NULL);
    answer(404, "collection_not_found.json");
    assert_rc(ix->ops->describe(ix, COLL, &dim, model, &e), VS_ERR_NOT_FOUND, e);
    assert_has(e.msg, "faces_v1");
    assert_req(1, "GET", "/collections/faces_v1", "", NULL);
    /* dropping one that is gone is fine (a drop cut short is finished by the next) */
    fake_reset();
    answer(404, "collection_not_found.json");
    assert_ok(ix->ops->drop_collection(ix, COLL, &e), e);
    /* no record: empty is "not made yet", with points it is refused */
    fake_reset();
    answer(200, "collection_info.json");
    answer(200, "retrieve_empty.json");
    answer(200, "count_0.json");
    assert_rc(ix->ops->describe(ix, COLL, &dim, model, &e), VS_ERR_NOT_FOUND, e);
    fake_reset();
    answer(200, "retrieve_empty.json");
    answer(200, "count_3.json");
    assert_rc(ix->ops->describe(ix, COLL, &dim, model, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "3 points");
    /* a record that disagrees with the collection's vectors */
    fake_reset();
    answer_fixture_with(200, "record.json", "\"dim\": 4", "\"dim\": 8");
    assert_rc(ix->ops->describe(ix, COLL, &dim, model, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "dim 8");
    /* a server error is not "gone" */
    fake_reset();
    for (int i = 0; i < 4; i++) answer(500, "error_500.json");
    assert_rc(ix->ops->drop_collection(ix, COLL, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "drop_collection faces_v1");
    fake_reset();
    assert_rc(ix->ops->drop_collection(ix, "../evil", &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static const float V1[4] = {0.5f, 0.5f, 0.5f, 0.5f};
static const float V2[4] = {0.5f, -0.5f, 0.5f, -0.5f};

static void test_upsert(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    vs_point pts[3] = {
        {"9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b", V1, "{\"tenant_id\":\"tenant-a\",\"site\":\"a.example\"}"},
        {"p-000001", V2, "{\"tenant_id\":\"tenant-a\",\"bbox\":[1,2,3,4]}"},
        {"p-000001", V1, " {\"tenant_id\":\"tenant-a\",\"quality_score\":0.5} "}, /* last one wins */
    };
    answer(200, "update_completed.json");
    assert_ok(ix->ops->upsert(ix, COLL, pts, 3, &e), e);
    assert_int_equal(n_requests(), 1);
    assert_req(0, "PUT", "/collections/faces_v1/points", "wait=true",
               "{\"points\":["
               "{\"id\":\"9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b\",\"vector\":[0.5,0.5,0.5,0.5],"
               "\"payload\":{\"tenant_id\":\"tenant-a\",\"site\":\"a.example\"}},"
               "{\"id\":\"c394052b-78f2-5b47-b07a-720c83327198\",\"vector\":[0.5,0.5,0.5,0.5],"
               "\"payload\":{\"tenant_id\":\"tenant-a\",\"quality_score\":0.5,\"_visage_id\":\"p-000001\"}}]}");
    /* wait=true must come back "completed" */
    fake_reset();
    answer(200, "update_acknowledged.json");
    assert_rc(ix->ops->upsert(ix, COLL, pts, 1, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "acknowledged");
    /* bad points: refused whole, nothing sent */
    fake_reset();
    float nanv[4] = {NAN, 0, 0, 0};
    vs_point bad[2] = {{"ok-1", V1, "{\"tenant_id\":\"tenant-a\"}"}, {"bad", V1, "{\"site\":\"x\"}"}};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "tenant_id");
    assert_has(e.msg, COLL);
    bad[1] = (vs_point){"bad", V1, "not json"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad", nanv, "{\"tenant_id\":\"tenant-a\"}"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad", V1, "{\"tenant_id\":\"tenant-a\",\"quality_score\":1e300}"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){"bad", V1, "{\"tenant_id\":\"tenant-a\",\"_visage_id\":\"spoof\"}"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    bad[1] = (vs_point){VS_QDRANT_META_ID, V1, "{\"tenant_id\":\"tenant-a\"}"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "reserved");
    bad[1] = (vs_point){"0123456789012345678901234567890123456789012345678901234567890123", V1,
                        "{\"tenant_id\":\"tenant-a\"}"};
    assert_rc(ix->ops->upsert(ix, COLL, bad, 2, &e), VS_ERR_INVALID_ARG, e);
    assert_ok(ix->ops->upsert(ix, COLL, bad, 0, &e), e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static void test_get(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    float v[4];
    char *pay = NULL;
    answer(200, "retrieve_point.json");
    assert_ok(ix->ops->get(ix, COLL, "tenant-a", "p-000001", v, &pay, &e), e);
    assert_req(0, "POST", "/collections/faces_v1/points", "",
               "{\"ids\":[\"c394052b-78f2-5b47-b07a-720c83327198\"],\"with_payload\":true,\"with_vector\":true}");
    assert_memory_equal(v, V1, sizeof v);
    assert_string_equal(pay, "{\"tenant_id\":\"tenant-a\",\"image_sha256\":\"sha-1\",\"site\":\"a.example\","
                             "\"face_index\":0,\"quality_score\":0.9,\"bbox\":[1,2,3,4]}");
    vs_free(pay);
    /* the same answer for another tenant: not found, outputs untouched */
    fake_reset();
    answer(200, "retrieve_point.json");
    pay = (char *)"sentinel";
    assert_rc(ix->ops->get(ix, COLL, "tenant-b", "p-000001", NULL, &pay, &e), VS_ERR_NOT_FOUND, e);
    assert_null(pay);
    assert_req(0, "POST", "/collections/faces_v1/points", "",
               "{\"ids\":[\"c394052b-78f2-5b47-b07a-720c83327198\"],\"with_payload\":true,\"with_vector\":false}");
    /* an answer about another id is not this one */
    fake_reset();
    answer(200, "retrieve_point.json");
    assert_rc(ix->ops->get(ix, COLL, "tenant-a", "p-000002", NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    fake_reset();
    answer(200, "retrieve_empty.json");
    assert_rc(ix->ops->get(ix, COLL, "tenant-a", "p-000001", NULL, NULL, &e), VS_ERR_NOT_FOUND, e);
    assert_has(e.msg, "p-000001");
    fake_reset();
    assert_rc(ix->ops->get(ix, COLL, NULL, "p-000001", NULL, NULL, &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static void test_search(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    vs_hit *hits = NULL;
    int n = -1;
    vs_filter f = {.tenant_id = "tenant-a", .site = "a.example", .min_quality = 0.5f};
    answer(200, "search_hits.json");
    assert_ok(ix->ops->search(ix, COLL, V1, &f, 10, 0.25f, &hits, &n, &e), e);
    assert_req(0, "POST", "/collections/faces_v1/points/search", "",
               "{\"vector\":[0.5,0.5,0.5,0.5],\"filter\":{\"must\":["
               "{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}},"
               "{\"key\":\"site\",\"match\":{\"value\":\"a.example\"}},"
               "{\"key\":\"quality_score\",\"range\":{\"gte\":0.5}}]},"
               "\"limit\":10,\"score_threshold\":0.25,\"with_payload\":true,\"with_vector\":false}");
    /* tenant-b's hit, the id/_visage_id mismatch, the hit without payload and
     * the one under the threshold are all dropped */
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].id, "p-000001");
    assert_float_equal(hits[0].score, 0.98f, 1e-6);
    assert_string_equal(hits[0].payload_json, "{\"tenant_id\":\"tenant-a\",\"image_sha256\":\"sha-1\",\"site\":"
                                              "\"a.example\",\"quality_score\":0.9,\"face_index\":0}");
    assert_string_equal(hits[1].id, "9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b");
    assert_float_equal(hits[1].score, 0.87f, 1e-6);
    for (int i = 0; i < n; i++) assert_null(strstr(hits[i].payload_json, "tenant-b"));
    vs_hits_free(hits, n);
    /* top_k cuts; the image filter replaces site/quality */
    fake_reset();
    answer(200, "search_hits.json");
    vs_filter fs = {.tenant_id = "tenant-a", .image_sha256 = "sha-1"};
    assert_ok(ix->ops->search(ix, COLL, V2, &fs, 1, -1.0f, &hits, &n, &e), e);
    assert_req(0, "POST", "/collections/faces_v1/points/search", "",
               "{\"vector\":[0.5,-0.5,0.5,-0.5],\"filter\":{\"must\":["
               "{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}},"
               "{\"key\":\"image_sha256\",\"match\":{\"value\":\"sha-1\"}}]},"
               "\"limit\":1,\"score_threshold\":-1.0,\"with_payload\":true,\"with_vector\":false}");
    assert_int_equal(n, 1);
    assert_string_equal(hits[0].id, "p-000001");
    vs_hits_free(hits, n);
    /* a tenant that only sees foreign hits gets none */
    fake_reset();
    answer(200, "search_hits.json");
    vs_filter fz = {.tenant_id = "tenant-z"};
    assert_ok(ix->ops->search(ix, COLL, V1, &fz, 10, -1.0f, &hits, &n, &e), e);
    assert_int_equal(n, 0);
    assert_null(hits);
    /* refused before sending */
    fake_reset();
    vs_filter none = {0};
    assert_rc(ix->ops->search(ix, COLL, V1, &none, 10, 0, &hits, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_has(e.msg, "tenant_id");
    assert_rc(ix->ops->search(ix, COLL, V1, &f, 0, 0, &hits, &n, &e), VS_ERR_INVALID_ARG, e);
    float nanq[4] = {0, NAN, 0, 0};
    assert_rc(ix->ops->search(ix, COLL, nanq, &f, 10, 0, &hits, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static void test_count_delete(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    int64_t n = -1;
    vs_filter f = {.tenant_id = "tenant-a"};
    answer(200, "count_3.json");
    assert_ok(ix->ops->count(ix, COLL, &f, &n, &e), e);
    assert_int_equal(n, 3);
    assert_req(0, "POST", "/collections/faces_v1/points/count", "",
               "{\"filter\":{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}}]},\"exact\":true}");
    /* delete_ids: the tenant condition and the ids in one filter, counted first */
    fake_reset();
    answer(200, "count_3.json");
    answer(200, "update_completed.json");
    const char *ids[4] = {"p-000001", "p-000002", "9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b",
                          "0123456789012345678901234567890123456789012345678901234567890123"};
    const char *flt = "{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}},"
                      "{\"has_id\":[\"c394052b-78f2-5b47-b07a-720c83327198\",\"607c1335-cea1-5b12-801a-2e34874008c3\","
                      "\"9b7c1f4e-2a3d-4e5f-8a6b-7c8d9e0f1a2b\"]}]}";
    char want[1024];
    assert_ok(ix->ops->delete_ids(ix, COLL, "tenant-a", ids, 4, &n, &e), e);
    assert_int_equal(n, 3);
    snprintf(want, sizeof want, "{\"filter\":%s,\"exact\":true}", flt);
    assert_req(0, "POST", "/collections/faces_v1/points/count", "", want);
    snprintf(want, sizeof want, "{\"filter\":%s}", flt);
    assert_req(1, "POST", "/collections/faces_v1/points/delete", "wait=true", want);
    assert_int_equal(n_requests(), 2);
    /* nothing matches: no delete request */
    fake_reset();
    answer(200, "count_0.json");
    assert_ok(ix->ops->delete_ids(ix, COLL, "tenant-b", ids, 2, &n, &e), e);
    assert_int_equal(n, 0);
    assert_int_equal(n_requests(), 1);
    assert_has(g.r[0].body, "\"value\":\"tenant-b\"");
    /* delete_filter: image erasure */
    fake_reset();
    answer(200, "count_3.json");
    answer(200, "update_completed.json");
    vs_filter fi = {.tenant_id = "tenant-a", .image_sha256 = "sha-1"};
    assert_ok(ix->ops->delete_filter(ix, COLL, &fi, &n, &e), e);
    assert_int_equal(n, 3);
    flt = "{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}},"
          "{\"key\":\"image_sha256\",\"match\":{\"value\":\"sha-1\"}}]}";
    snprintf(want, sizeof want, "{\"filter\":%s,\"exact\":true}", flt);
    assert_req(0, "POST", "/collections/faces_v1/points/count", "", want);
    snprintf(want, sizeof want, "{\"filter\":%s}", flt);
    assert_req(1, "POST", "/collections/faces_v1/points/delete", "wait=true", want);
    /* refused before sending */
    fake_reset();
    vs_filter none = {0};
    assert_rc(ix->ops->delete_filter(ix, COLL, &none, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(ix->ops->delete_ids(ix, COLL, NULL, ids, 1, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_rc(ix->ops->count(ix, COLL, NULL, &n, &e), VS_ERR_INVALID_ARG, e);
    assert_ok(ix->ops->delete_ids(ix, COLL, "tenant-a", ids, 0, &n, &e), e);
    assert_int_equal(n, 0);
    assert_int_equal(n_requests(), 0);
    /* a collection this process never saw is looked up first; 404 -> not found */
    answer(404, "collection_not_found.json");
    assert_rc(ix->ops->count(ix, "other_v1", &f, &n, &e), VS_ERR_NOT_FOUND, e);
    assert_has(e.msg, "other_v1");
    assert_req(0, "GET", "/collections/other_v1", "", NULL);
    ix->ops->close(ix);
}

typedef struct acc {
    char ids[8][VS_POINT_ID_MAX];
    float vecs[8][4];
    int n, stop_after;
} acc;

static int acc_cb(void *ctx, const char *id, const float *vec, const char *payload) {
    acc *a = ctx;
    assert_non_null(strstr(payload, "\"tenant_id\":\"tenant-a\""));
    assert_null(strstr(payload, "_visage_id"));
    if (a->n < 8) {
        snprintf(a->ids[a->n], VS_POINT_ID_MAX, "%s", id);
        memcpy(a->vecs[a->n], vec, sizeof a->vecs[0]);
    }
    a->n++;
    return a->stop_after && a->n >= a->stop_after;
}

static void test_scroll(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    vs_filter f = {.tenant_id = "tenant-a"};
    acc a = {0};
    char next[VS_POINT_ID_MAX];
    answer(200, "scroll_page1.json");
    assert_ok(ix->ops->scroll(ix, COLL, &f, NULL, 2, acc_cb, &a, next, &e), e);
    assert_req(0, "POST", "/collections/faces_v1/points/scroll", "",
               "{\"filter\":{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}}]},"
               "\"limit\":3,\"with_payload\":true,\"with_vector\":true}");
    assert_int_equal(a.n, 2);
    assert_string_equal(a.ids[0], "p-000002");
    assert_string_equal(a.ids[1], "p-000005");
    assert_memory_equal(a.vecs[0], V2, sizeof V2);
    assert_string_equal(next, "p-000005");
    /* page 2 starts at the last id seen (Qdrant's offset is inclusive: it is skipped) */
    fake_reset();
    answer(200, "scroll_page2.json");
    a.n = 0;
    char after[VS_POINT_ID_MAX];
    memcpy(after, next, sizeof after);
    assert_ok(ix->ops->scroll(ix, COLL, &f, after, 2, acc_cb, &a, next, &e), e);
    assert_req(0, "POST", "/collections/faces_v1/points/scroll", "",
               "{\"filter\":{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}}]},"
               "\"limit\":3,\"with_payload\":true,\"with_vector\":true,"
               "\"offset\":\"74318594-be3f-50fa-9e57-3ad0a7dacd1b\"}");
    assert_int_equal(a.n, 2); /* tenant-b's point in the page was never delivered */
    assert_string_equal(a.ids[0], "p-000001");
    assert_string_equal(a.ids[1], "p-000003");
    assert_string_equal(next, "");
    /* the callback stops early: next is where it stopped */
    fake_reset();
    answer(200, "scroll_page1.json");
    acc b = {.stop_after = 1};
    assert_ok(ix->ops->scroll(ix, COLL, &f, NULL, 10, acc_cb, &b, next, &e), e);
    assert_int_equal(b.n, 1);
    assert_string_equal(next, "p-000002");
    /* last page, nothing after it */
    fake_reset();
    acc c = {0};
    answer_fixture_with(200, "scroll_page1.json", "\"d8223992-7441-5807-ba39-8383107d3751\"\n", "null\n");
    assert_ok(ix->ops->scroll(ix, COLL, &f, NULL, 3, acc_cb, &c, next, &e), e);
    assert_int_equal(c.n, 3);
    assert_string_equal(next, "");
    fake_reset();
    assert_rc(ix->ops->scroll(ix, COLL, &f, NULL, 0, acc_cb, &c, next, &e), VS_ERR_INVALID_ARG, e);
    assert_int_equal(n_requests(), 0);
    ix->ops->close(ix);
}

static void test_retries_and_errors(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    vs_error e = {0};
    vs_filter f = {.tenant_id = "tenant-a"};
    int64_t n = -1;
    const char *want = "{\"filter\":{\"must\":[{\"key\":\"tenant_id\",\"match\":{\"value\":\"tenant-a\"}}]},"
                       "\"exact\":true}";
    /* 500 then 200: retried, the same request twice */
    answer(500, "error_500.json");
    answer(200, "count_3.json");
    assert_ok(ix->ops->count(ix, COLL, &f, &n, &e), e);
    assert_int_equal(n, 3);
    assert_int_equal(n_requests(), 2);
    assert_req(0, "POST", "/collections/faces_v1/points/count", "", want);
    assert_req(1, "POST", "/collections/faces_v1/points/count", "", want);
    /* 429 likewise */
    fake_reset();
    answer(429, "error_429.json");
    answer(200, "count_0.json");
    assert_ok(ix->ops->count(ix, COLL, &f, &n, &e), e);
    assert_int_equal(n_requests(), 2);
    /* persistent 500: 4 tries, then an error naming op, collection, status and reason */
    fake_reset();
    for (int i = 0; i < 4; i++) answer(500, "error_500.json");
    assert_rc(ix->ops->count(ix, COLL, &f, &n, &e), VS_ERR_BACKEND, e);
    assert_int_equal(n_requests(), 4);
    assert_has(e.msg, "count faces_v1");
    assert_has(e.msg, "HTTP 500");
    assert_has(e.msg, "after 4 tries");
    assert_has(e.msg, "1 of 1 read operations failed");
    /* a 400 is not retried */
    fake_reset();
    answer(400, "error_400.json");
    vs_point p = {"p-000001", V1, "{\"tenant_id\":\"tenant-a\"}"};
    assert_rc(ix->ops->upsert(ix, COLL, &p, 1, &e), VS_ERR_BACKEND, e);
    assert_int_equal(n_requests(), 1);
    assert_has(e.msg, "HTTP 400");
    assert_has(e.msg, "Vector dimension error");
    /* malformed JSON and answers without "result": clear errors, no retry */
    fake_reset();
    answer(200, "malformed.json");
    assert_rc(ix->ops->count(ix, COLL, &f, &n, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "malformed JSON");
    assert_int_equal(n_requests(), 1);
    fake_reset();
    answer(200, "no_result.json");
    assert_rc(ix->ops->count(ix, COLL, &f, &n, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "result");
    fake_reset();
    answer(200, "search_empty.json"); /* a list where a count belongs */
    assert_rc(ix->ops->count(ix, COLL, &f, &n, &e), VS_ERR_BACKEND, e);
    fake_reset();
    answer(200, "count_3.json"); /* an object where a list belongs */
    vs_hit *hits = NULL;
    int nh = 0;
    assert_rc(ix->ops->search(ix, COLL, V1, &f, 5, 0, &hits, &nh, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "malformed");
    /* a slow answer times out and is retried */
    ix->ops->close(ix);
    fake_reset();
    setenv("QDRANT_API_KEY", KEY, 1);
    vs_qdrant_opts o = {.timeout_ms = 150, .tries = 4, .backoff_ms = 1};
    assert_ok(vs_index_qdrant_open(g.url, &o, &ix, &e), e);
    unsetenv("QDRANT_API_KEY");
    char *slow = fixture("count_3.json");
    answer_text(200, slow, 600);
    free(slow);
    answer(200, "collection_info.json");
    answer(200, "count_3.json");
    assert_ok(ix->ops->count(ix, COLL, &f, &n, &e), e); /* GET (slow, retried), then count */
    assert_int_equal(n, 3);
    assert_int_equal(n_requests(), 3);
    assert_req(1, "GET", "/collections/faces_v1", "", NULL);
    ix->ops->close(ix);
    /* nothing listening: transport error after 4 tries */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
    getsockname(s, (struct sockaddr *)&sin, &sl);
    close(s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sin.sin_port));
    assert_ok(vs_index_qdrant_open(url, &o, &ix, &e), e);
    assert_rc(ix->ops->ensure_collection(ix, COLL, 4, MODEL, &e), VS_ERR_BACKEND, e);
    assert_has(e.msg, "ensure_collection faces_v1");
    assert_has(e.msg, "after 4 tries");
    ix->ops->close(ix);
}

typedef struct worker {
    vs_index *ix;
    int ok;
} worker;

/* Runs searches in a loop; counts the ones with the two expected hits. */
static void *search_loop(void *arg) {
    worker *w = arg;
    vs_filter f = {.tenant_id = "tenant-a"};
    for (int i = 0; i < 20; i++) {
        vs_hit *hits = NULL;
        int n = 0;
        vs_error e = {0};
        if (w->ix->ops->search(w->ix, COLL, V1, &f, 10, 0.25f, &hits, &n, &e) == VS_OK && n == 2 &&
            strcmp(hits[0].id, "p-000001") == 0)
            w->ok++;
        vs_hits_free(hits, n);
    }
    return NULL;
}

static void test_concurrent_searches(void **state) {
    (void)state;
    vs_index *ix = open_ready();
    answer(200, "search_hits.json");
    pthread_mutex_lock(&g.mu);
    g.repeat_last = 1;
    pthread_mutex_unlock(&g.mu);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ix, 0};
        pthread_create(&th[i], NULL, search_loop, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 20);
    }
    assert_int_equal(n_requests(), 80);
    ix->ops->close(ix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_ids),
        cmocka_unit_test(test_open_and_health),
        cmocka_unit_test(test_ensure_creates),
        cmocka_unit_test(test_ensure_existing),
        cmocka_unit_test(test_describe_and_drop),
        cmocka_unit_test(test_upsert),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_count_delete),
        cmocka_unit_test(test_scroll),
        cmocka_unit_test(test_retries_and_errors),
        cmocka_unit_test(test_concurrent_searches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
