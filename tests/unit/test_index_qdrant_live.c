/* test_index_qdrant_live.c - the index contract (contract_index.h: exact
 * top-k against brute force, tenant isolation, filters, replace/delete,
 * scroll, reopen, concurrency) run against a real Qdrant named by QDRANT_URL
 * (QDRANT_API_KEY when it needs one). Without QDRANT_URL every test is
 * reported as skipped. Each test works in its own throw-away collection,
 * dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <unistd.h>

#include "contract_index.h"
#include "vs_index_qdrant.h"

#define SKIP_MSG "SKIPPED: set QDRANT_URL to run against a live Qdrant"

static const char *no_qdrant(void) {
    return getenv("QDRANT_URL") && *getenv("QDRANT_URL") ? NULL : SKIP_MSG;
}

/* Sends DELETE /collections/{coll} straight to Qdrant (test cleanup only). */
static void drop_collection(fx *f) {
    const char *base = getenv("QDRANT_URL"), *key = getenv("QDRANT_API_KEY");
    char url[512], hdr[512];
    snprintf(url, sizeof url, "%s/collections/%s", base, f->coll);
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    if (key && *key) {
        snprintf(hdr, sizeof hdr, "api-key: %s", key);
        hs = curl_slist_append(hs, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_perform(h);
    if (sink) fclose(sink);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
}

/* A collection named after the test, gone if a crashed run left it. */
static void qd_create(fx *f, const char *tag) {
    snprintf(f->coll, sizeof f->coll, "visage_live_%s_%d_%ld", tag, (int)getpid(), (long)time(NULL) % 100000);
    drop_collection(f);
}

static vs_index *qd_connect(fx *f) {
    (void)f;
    vs_index *ix = NULL;
    vs_error e = {0};
    assert_ok(vs_index_open(getenv("QDRANT_URL"), NULL, &ix, &e), e);
    assert_true(vs_index_is_qdrant(ix));
    return ix;
}

static const index_backend qdrant = {
    .missing = no_qdrant, .create = qd_create, .connect = qd_connect, .destroy = drop_collection,
};

int main(void) {
    if (no_qdrant()) printf("%s\n", SKIP_MSG);
    const struct CMUnitTest tests[] = {
        CONTRACT_INDEX_TESTS(&qdrant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
