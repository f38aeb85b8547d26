/* test_webhook.c - events and their webhook delivery: HMAC-SHA-256 against
 * the RFC 4231 vectors; events added, listed newest first and paged, per
 * tenant; the webhook's URL rules; and delivery to a tiny HTTP receiver on
 * 127.0.0.1 (a thread with a listening socket) that answers a scripted
 * list of statuses: the body and its signature, a retry after a 500, giving
 * up after max attempts, a refused address never contacted, the state kept
 * across a reopen, and the background runner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vs_catalog.h"
#include "vs_events.h"
#include "vs_hash.h"
#include "vs_webhook.h"

/* ---- HMAC-SHA-256: RFC 4231 test cases 1-7 ------------------------------- */

/* Bytes of a hex string into out; returns the count. */
static size_t unhex(const char *h, uint8_t *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) sscanf(h + 2 * i, "%2hhx", &out[i]);
    return n;
}

static void test_hmac_rfc4231(void **state) {
    (void)state;
    static const struct {
        const char *key, *data, *mac;   /* hex; case 5 is truncated to 128 bits; key NULL: 131 x 0xaa */
    } v[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
         "a3b6167473100ee06e0c796c2955552b"},
        {NULL, /* 131 bytes of 0xaa */
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669"
         "727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {NULL, /* 131 bytes of 0xaa */
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b657920"
         "616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565647320"
         "746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c676f726974"
         "686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t key[200], data[200], mac[32];
        assert_true(strlen(v[i].data) / 2 <= sizeof data);
        char hex[65];
        size_t kn = v[i].key ? unhex(v[i].key, key) : 131, dn = unhex(v[i].data, data);
        if (!v[i].key) memset(key, 0xaa, kn);
        vs_hmac_sha256(key, kn, data, dn, mac);
        vs_hex(mac, 32, hex);
        assert_memory_equal(hex, v[i].mac, strlen(v[i].mac));
    }
}

/* ---- a receiver on 127.0.0.1 ------------------------------------------------ */

#define RX_MAX 16

/* One request as received. */
typedef struct rx_req {
    char event[64], ts[32], sig[96], ctype[64];
    char *body;
} rx_req;

typedef struct receiver {
    int fd, port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    int statuses[RX_MAX];   /* answer i of the script; past the end: the last one */
    int n_statuses;
    rx_req got[RX_MAX];
    int n_got;
} receiver;

/* The value of header name in the request head, into out. */
static void header_of(const char *head, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n")); p += 2)
        if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ') v++;
            size_t n = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), v);
            return;
        }
}

/* Reads one request from c, records it and answers the next status. */
static void serve_one(receiver *rx, int c) {
    char buf[65536];
    size_t n = 0;
    char *end = NULL;
    while (n + 1 < sizeof buf) {
        ssize_t k = read(c, buf + n, sizeof buf - 1 - n);
        if (k <= 0) return;
        n += (size_t)k;
        buf[n] = '\0';
        if ((end = strstr(buf, "\r\n\r\n"))) {
            char cl[32];
            header_of(buf, "Content-Length", cl, sizeof cl);
            size_t want = (size_t)(end + 4 - buf) + (size_t)atol(cl);
            if (n >= want) break;
        }
    }
    if (!end) return;
    pthread_mutex_lock(&rx->mu);
    int i = rx->n_got < RX_MAX ? rx->n_got++ : RX_MAX - 1;
    rx_req *r = &rx->got[i];
    free(r->body);
    header_of(buf, "X-Visage-Event", r->event, sizeof r->event);
    header_of(buf, "X-Visage-Timestamp", r->ts, sizeof r->ts);
    header_of(buf, "X-Visage-Signature", r->sig, sizeof r->sig);
    header_of(buf, "Content-Type", r->ctype, sizeof r->ctype);
    r->body = strdup(end + 4);
    int status = rx->statuses[i < rx->n_statuses ? i : rx->n_statuses - 1];
    pthread_mutex_unlock(&rx->mu);
    char reply[128];
    int m = snprintf(reply, sizeof reply, "HTTP/1.1 %d X\r\n%sContent-Length: 2\r\nConnection: close\r\n\r\nok",
                     status, status / 100 == 3 ? "Location: http://127.0.0.1:1/elsewhere\r\n" : "");
    if (write(c, reply, (size_t)m) < 0) return;
}

static void *receiver_main(void *arg) {
    receiver *rx = arg;
    while (!atomic_load(&rx->stop)) {
        struct pollfd p = {rx->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(rx->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(rx, c);
        close(c);
    }
    return NULL;
}

/* Starts a receiver answering the n statuses in turn. */
static receiver *receiver_start(const int *statuses, int n) {
    receiver *rx = calloc(1, sizeof *rx);
    memcpy(rx->statuses, statuses, (size_t)n * sizeof *statuses);
    rx->n_statuses = n;
    pthread_mutex_init(&rx->mu, NULL);
    rx->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(rx->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(rx->fd, 8), 0);
    getsockname(rx->fd, (struct sockaddr *)&a, &al);
    rx->port = ntohs(a.sin_port);
    pthread_create(&rx->thread, NULL, receiver_main, rx);
    return rx;
}

static int receiver_count(receiver *rx) {
    pthread_mutex_lock(&rx->mu);
    int n = rx->n_got;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

static void receiver_stop(receiver *rx) {
    atomic_store(&rx->stop, 1);
    pthread_join(rx->thread, NULL);
    close(rx->fd);
    for (int i = 0; i < RX_MAX; i++) free(rx->got[i].body);
    pthread_mutex_destroy(&rx->mu);
    free(rx);
}

/* ---- fixture: a catalog in a temporary dir ---------------------------------- */

typedef struct fixture {
    char dir[64];
    vs_catalog *c;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vs_webhook_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    vs_error e = {0};
    if (vs_catalog_open(f->dir, &f->c, &e) != VS_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char p[160];
    vs_catalog_close(f->c);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/catalog.db%s", f->dir, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The listed state of one event: the callback keeps the one with id. */
typedef struct seen {
    int64_t id;
    int found, n;
    vs_delivery_state state;
    int attempts;
    char last_error[256], kind[64];
    int64_t ids[16];
} seen;

static int see(void *ctx, const vs_event *ev) {
    seen *s = ctx;
    if (s->n < 16) s->ids[s->n] = ev->id;
    s->n++;
    if (ev->id == s->id) {
        s->found = 1;
        s->state = ev->state;
        s->attempts = ev->attempts;
        snprintf(s->last_error, sizeof s->last_error, "%s", ev->last_error ? ev->last_error : "");
        snprintf(s->kind, sizeof s->kind, "%s", ev->kind);
    }
    return 0;
}

static seen event_state(vs_catalog *c, const char *tenant, int64_t id) {
    seen s = {.id = id};
    vs_error e = {0};
    assert_int_equal(vs_event_list(c, tenant, 0, 1000, see, &s, &e), VS_OK);
    assert_true(s.found);
    return s;
}

#define DETAIL                                                                                                   \
    "{\"person_id\":\"p1\",\"face_id\":\"f1\",\"image_sha256\":\"" SHA_A                                         \
    "\",\"site\":\"news\",\"source_url\":\"https://e.org/a.jpg\",\"page_url\":\"https://e.org/\"}"
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void set_hook(vs_catalog *c, const char *tenant, int port, vs_webhook *w) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", port);
    vs_error e = {0};
    assert_int_equal(vs_webhook_set(c, tenant, url, w, &e), VS_OK);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_events_add_and_list(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    int64_t id = 0, ids[5];
    assert_int_equal(vs_event_add(f->c, "t1", "Bad Kind", "{}", &id, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "[1]", &id, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{bad", &id, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_event_add(f->c, "../x", "person_seen", "{}", &id, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", NULL, &id, &e), VS_ERR_INVALID_ARG);
    char *big = malloc(VS_EVENT_DETAIL_MAX + 16);
    memset(big, ' ', VS_EVENT_DETAIL_MAX + 15);
    big[0] = '{', big[VS_EVENT_DETAIL_MAX + 14] = '}', big[VS_EVENT_DETAIL_MAX + 15] = '\0';
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", big, &id, &e), VS_ERR_TOO_LARGE);
    free(big);
    for (int i = 0; i < 5; i++) assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &ids[i], &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t2", "person_seen", "{}", &id, &e), VS_OK);
    /* no webhook: state none */
    seen s = event_state(f->c, "t1", ids[0]);
    assert_int_equal(s.state, VS_DELIVERY_NONE);
    assert_int_equal(s.n, 5); /* t2's is not listed */
    assert_true(s.ids[0] == ids[4] && s.ids[4] == ids[0]); /* newest first */
    /* paging: before the third newest */
    seen p = {.id = -1};
    assert_int_equal(vs_event_list(f->c, "t1", ids[2], 2, see, &p, &e), VS_OK);
    assert_int_equal(p.n, 2);
    assert_true(p.ids[0] == ids[1] && p.ids[1] == ids[0]);
    assert_int_equal(vs_event_list(f->c, "t1", 0, 0, see, &p, &e), VS_ERR_INVALID_ARG);
    /* nothing due without a webhook */
    vs_event_due d;
    int found = 1;
    int64_t next = -1;
    assert_int_equal(vs_event_next_due(f->c, vs_wall_ms(), NULL, &d, &found, &next, &e), VS_OK);
    assert_int_equal(found, 0);
    assert_int_equal(next, 0);
}

/* Detail of the listed event id, as text. */
typedef struct detail_of {
    int64_t id;
    char detail[512];
} detail_of;

static int see_detail(void *ctx, const vs_event *ev) {
    detail_of *d = ctx;
    if (ev->id == d->id) snprintf(d->detail, sizeof d->detail, "%s", ev->detail_json);
    return 0;
}

static void test_erasure_forgets_event_detail(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_webhook w;
    assert_int_equal(vs_webhook_set(f->c, "t1", "https://hooks.example.org/a", &w, &e), VS_OK);
    int64_t by_image, by_face, other, other_tenant;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &by_image, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{\"face_id\":\"f9\",\"image_sha256\":\"b\"}", &by_face, &e),
                     VS_OK);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{\"face_id\":\"f2\"}", &other, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t2", "person_seen", DETAIL, &other_tenant, &e), VS_OK);
    assert_int_equal(vs_event_forget(f->c, "t1", SHA_A, NULL, &e), VS_OK);
    assert_int_equal(vs_event_forget(f->c, "t1", NULL, "f9", &e), VS_OK);
    assert_int_equal(vs_event_forget(f->c, "t1", SHA_A, NULL, &e), VS_OK); /* again: idempotent */
    int64_t gone[2] = {by_image, by_face};
    for (int i = 0; i < 2; i++) {
        detail_of d = {.id = gone[i]};
        assert_int_equal(vs_event_list(f->c, "t1", 0, 100, see_detail, &d, &e), VS_OK);
        assert_string_equal(d.detail, "{\"erased\":true}");
        seen s = event_state(f->c, "t1", gone[i]);
        assert_int_equal(s.state, VS_DELIVERY_FAILED);
        assert_string_equal(s.last_error, "erased before delivery");
    }
    assert_int_equal(event_state(f->c, "t1", other).state, VS_DELIVERY_PENDING);
    detail_of d = {.id = other_tenant};
    assert_int_equal(vs_event_list(f->c, "t2", 0, 100, see_detail, &d, &e), VS_OK);
    assert_non_null(strstr(d.detail, SHA_A)); /* another tenant's events are not touched */
}

static void test_webhook_crud_and_url_rules(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_webhook w, w2, g;
    assert_int_equal(vs_webhook_get(f->c, "t1", &g, &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_webhook_delete(f->c, "t1", &e), VS_ERR_NOT_FOUND);
    assert_int_equal(vs_webhook_set(f->c, "t1", "https://hooks.example.org/a", &w, &e), VS_OK);
    assert_int_equal(strncmp(w.secret, "whsec_", 6), 0);
    assert_int_equal(strlen(w.secret), 70);
    assert_int_equal(vs_webhook_set(f->c, "t1", "https://hooks.example.org/b", &w2, &e), VS_OK);
    assert_string_not_equal(w.secret, w2.secret); /* a PUT rotates the secret */
    assert_int_equal(vs_webhook_get(f->c, "t1", &g, &e), VS_OK);
    assert_string_equal(g.url, "https://hooks.example.org/b");
    assert_string_equal(g.secret, w2.secret);
    /* an event pending when the webhook goes is failed, not sent later */
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{}", &id, &e), VS_OK);
    assert_int_equal(event_state(f->c, "t1", id).state, VS_DELIVERY_PENDING);
    assert_int_equal(vs_webhook_delete(f->c, "t1", &e), VS_OK);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_FAILED);
    assert_non_null(strstr(s.last_error, "webhook removed"));

    assert_int_equal(vs_webhook_url_check("https://hooks.example.org/x", NULL, &e), VS_OK);
    assert_int_equal(vs_webhook_url_check("http://93.184.216.34/x", NULL, &e), VS_OK);
    assert_int_equal(vs_webhook_url_check("ftp://hooks.example.org/x", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("not a url", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("http://10.0.0.1/x", NULL, &e), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(e.msg, "address not allowed"));
    assert_int_equal(vs_webhook_url_check("http://127.0.0.1:9/x", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("http://[::1]:9/x", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("http://169.254.169.254/x", NULL, &e), VS_ERR_INVALID_ARG);
    assert_int_equal(vs_webhook_url_check("http://127.0.0.1:9/x", "127.0.0.1/32", &e), VS_OK);
}

/* The receiver got event id from tenant t1, signed with secret. */
static void check_request(const rx_req *r, const char *secret, int64_t id) {
    assert_string_equal(r->event, "person_seen");
    assert_string_equal(r->ctype, "application/json");
    char sig[VS_WEBHOOK_SIG_MAX];
    vs_webhook_signature(secret, atoll(r->ts), r->body, strlen(r->body), sig);
    assert_string_equal(r->sig, sig);
    /* and independently of vs_webhook_signature: HMAC over "ts.body" */
    char msg[8192];
    int n = snprintf(msg, sizeof msg, "%s.%s", r->ts, r->body);
    uint8_t mac[32];
    char hex[65];
    vs_hmac_sha256(secret, strlen(secret), msg, (size_t)n, mac);
    vs_hex(mac, 32, hex);
    assert_string_equal(r->sig + 7, hex);
    assert_true(llabs(atoll(r->ts) - vs_wall_ms() / 1000) < 60);
    json_t *b = json_loads(r->body, 0, NULL);
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(b, "id")), id);
    assert_string_equal(json_string_value(json_object_get(b, "tenant")), "t1");
    assert_string_equal(json_string_value(json_object_get(b, "kind")), "person_seen");
    assert_true(json_integer_value(json_object_get(b, "at")) > 0);
    json_t *d = json_object_get(b, "detail");
    assert_string_equal(json_string_value(json_object_get(d, "person_id")), "p1");
    assert_string_equal(json_string_value(json_object_get(d, "image_sha256")), SHA_A);
    json_decref(b);
}

static void test_delivery_signed(void **state) {
    fixture *f = *state;
    int ok[] = {200};
    receiver *rx = receiver_start(ok, 1);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32"};
    int found = 0;
    int64_t next = 0;
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 1);
    assert_int_equal(receiver_count(rx), 1);
    check_request(&rx->got[0], w.secret, id);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_DELIVERED);
    assert_int_equal(s.attempts, 1);
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 0); /* delivered once only */
    receiver_stop(rx);
}

static void test_retry_after_500(void **state) {
    fixture *f = *state;
    int script[] = {500, 204};
    receiver *rx = receiver_start(script, 2);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32", .backoff_ms = 200};
    int found = 0;
    int64_t next = 0;
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_PENDING);
    assert_int_equal(s.attempts, 1);
    assert_non_null(strstr(s.last_error, "HTTP 500"));
    /* not due before the backoff */
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 0);
    assert_true(next > vs_wall_ms() && next <= vs_wall_ms() + 200);
    usleep(250 * 1000);
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 1);
    s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_DELIVERED);
    assert_int_equal(s.attempts, 2);
    assert_int_equal(receiver_count(rx), 2);
    check_request(&rx->got[1], w.secret, id);
    receiver_stop(rx);
}

static void test_gives_up_after_max_attempts(void **state) {
    fixture *f = *state;
    int script[] = {503};
    receiver *rx = receiver_start(script, 1);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32", .backoff_ms = 1, .max_attempts = 3};
    for (int i = 0; i < 50; i++) {
        int found = 0;
        int64_t next = 0;
        assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
        if (!found && !next) break; /* nothing pending any more */
        if (!found) usleep(5000);
    }
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_FAILED);
    assert_int_equal(s.attempts, 3);
    assert_non_null(strstr(s.last_error, "503"));
    assert_int_equal(receiver_count(rx), 3);
    receiver_stop(rx);
}

/* A 3xx is a failed try: the server is not bounced anywhere. */
static void test_redirect_not_followed(void **state) {
    fixture *f = *state;
    int script[] = {302};
    receiver *rx = receiver_start(script, 1);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32"};
    int found = 0;
    int64_t next = 0;
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_PENDING);
    assert_string_equal(s.last_error, "HTTP 302 (redirects are not followed)");
    assert_int_equal(receiver_count(rx), 1);
    receiver_stop(rx);
}

/* A receiver that never answers costs one timeout, then a failed try. */
static void test_timeout(void **state) {
    fixture *f = *state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0); /* listens, never accepts */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    vs_webhook w;
    set_hook(f->c, "t1", ntohs(a.sin_port), &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32", .timeout_ms = 300};
    int found = 0;
    int64_t next = 0, t0 = vs_now_ms();
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_true(vs_now_ms() - t0 < 3000);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_PENDING);
    assert_non_null(strstr(s.last_error, "timeout"));
    close(lfd);
}

static void test_refused_address_not_contacted(void **state) {
    fixture *f = *state;
    int ok[] = {200};
    receiver *rx = receiver_start(ok, 1);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w); /* the catalog stores it; delivery checks the address */
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = NULL, .backoff_ms = 1};
    int found = 0;
    int64_t next = 0;
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 1);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_FAILED); /* at once: retrying cannot help */
    assert_int_equal(s.attempts, 1);
    assert_non_null(strstr(s.last_error, "address not allowed"));
    usleep(100 * 1000);
    assert_int_equal(receiver_count(rx), 0);
    receiver_stop(rx);
}

static void test_state_survives_reopen(void **state) {
    fixture *f = *state;
    int script[] = {500, 200};
    receiver *rx = receiver_start(script, 2);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_error e = {0};
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32", .backoff_ms = 50};
    int found = 0;
    int64_t next = 0;
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    vs_catalog_close(f->c);
    assert_int_equal(vs_catalog_open(f->dir, &f->c, &e), VS_OK);
    seen s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_PENDING);
    assert_int_equal(s.attempts, 1);
    usleep(80 * 1000);
    assert_int_equal(vs_webhook_deliver_one(f->c, &cfg, NULL, &found, &next, &e), VS_OK);
    assert_int_equal(found, 1);
    s = event_state(f->c, "t1", id);
    assert_int_equal(s.state, VS_DELIVERY_DELIVERED);
    assert_int_equal(s.attempts, 2);
    receiver_stop(rx);
}

/* Tenants in turn: after a try of t1's, a due event of t2 comes before
 * t1's older ones; with no other tenant due, t1's come again. */
static void test_tenants_take_turns(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    vs_webhook w;
    assert_int_equal(vs_webhook_set(f->c, "t1", "https://hooks.example.org/1", &w, &e), VS_OK);
    assert_int_equal(vs_webhook_set(f->c, "t2", "https://hooks.example.org/2", &w, &e), VS_OK);
    int64_t a1, a2, b1;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{}", &a1, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{}", &a2, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t2", "person_seen", "{}", &b1, &e), VS_OK);
    vs_event_due d;
    int found = 0;
    int64_t later = vs_wall_ms() + 1000;
    assert_int_equal(vs_event_next_due(f->c, later, NULL, &d, &found, NULL, &e), VS_OK);
    assert_true(found && d.id == a1); /* no turn yet: the most due */
    vs_event_due_clear(&d);
    assert_int_equal(vs_event_next_due(f->c, later, "t1", &d, &found, NULL, &e), VS_OK);
    assert_true(found && d.id == b1); /* t1 just had a try: t2's goes first */
    assert_string_equal(d.tenant, "t2");
    vs_event_due_clear(&d);
    assert_int_equal(vs_event_next_due(f->c, later, "t2", &d, &found, NULL, &e), VS_OK);
    assert_true(found && d.id == a1);
    vs_event_due_clear(&d);
    assert_int_equal(vs_event_attempt(f->c, b1, VS_DELIVERY_DELIVERED, 0, NULL, &e), VS_OK);
    assert_int_equal(vs_event_next_due(f->c, later, "t1", &d, &found, NULL, &e), VS_OK);
    assert_true(found && d.id == a1); /* nobody else due: t1 again */
    vs_event_due_clear(&d);
    (void)a2;
}

/* How many events the tenant lists. */
static int event_count(vs_catalog *c, const char *tenant) {
    seen s = {.id = -1};
    vs_error e = {0};
    assert_int_equal(vs_event_list(c, tenant, 0, 1000, see, &s, &e), VS_OK);
    return s.n;
}

/* Retention: only events that are done (delivered, failed, none) and older
 * than the cut go; a pending one stays however old it is. */
static void test_prune_keeps_pending(void **state) {
    fixture *f = *state;
    vs_error e = {0};
    int64_t none1, none2, pending, removed = -1;
    assert_int_equal(vs_event_add(f->c, "t2", "person_seen", "{}", &none1, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{}", &none2, &e), VS_OK);
    vs_webhook w;
    assert_int_equal(vs_webhook_set(f->c, "t1", "https://hooks.example.org/a", &w, &e), VS_OK);
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", "{}", &pending, &e), VS_OK);
    /* a cut before they were added removes nothing */
    assert_int_equal(vs_event_prune(f->c, vs_wall_ms() - 60000, &removed, &e), VS_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(event_count(f->c, "t1"), 2);
    /* a cut after: the two done ones go (both tenants), the pending one stays */
    assert_int_equal(vs_event_prune(f->c, vs_wall_ms() + 60000, &removed, &e), VS_OK);
    assert_int_equal(removed, 2);
    seen s = event_state(f->c, "t1", pending);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.state, VS_DELIVERY_PENDING);
    assert_int_equal(event_count(f->c, "t2"), 0);
    (void)none1, (void)none2;
    /* once it is given up, it goes too */
    assert_int_equal(vs_event_attempt(f->c, pending, VS_DELIVERY_FAILED, 0, "test", &e), VS_OK);
    assert_int_equal(vs_event_prune(f->c, vs_wall_ms() + 60000, &removed, &e), VS_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(event_count(f->c, "t1"), 0);
}

static void test_runner_delivers(void **state) {
    fixture *f = *state;
    int script[] = {500, 200};
    receiver *rx = receiver_start(script, 2);
    vs_webhook w;
    set_hook(f->c, "t1", rx->port, &w);
    vs_webhook_cfg cfg = {.allow_cidrs = "127.0.0.1/32", .backoff_ms = 20, .poll_ms = 50};
    vs_webhook_runner *r = NULL;
    vs_error e = {0};
    assert_int_equal(vs_webhook_runner_start(f->c, &cfg, &r, &e), VS_OK);
    int64_t id;
    assert_int_equal(vs_event_add(f->c, "t1", "person_seen", DETAIL, &id, &e), VS_OK);
    seen s;
    for (int i = 0; i < 200; i++) {
        s = event_state(f->c, "t1", id);
        if (s.state != VS_DELIVERY_PENDING) break;
        usleep(20 * 1000);
    }
    vs_webhook_runner_stop(r);
    assert_int_equal(s.state, VS_DELIVERY_DELIVERED);
    assert_int_equal(s.attempts, 2);
    receiver_stop(rx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test_setup_teardown(test_events_add_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_crud_and_url_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure_forgets_event_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up_after_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirect_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_address_not_contacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants_take_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runner_delivers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
