/* fuzz_qdrant.c - libFuzzer target for what the Qdrant backend reads from
 * Qdrant (src/index/vs_qdrant_parse.c): the body as an error answer and,
 * when it is an answer object, through every reader (write status, count,
 * collection record and vectors, get, scroll, search). Properties: no
 * point of another tenant is ever handed out; hits are at or above the
 * threshold, best first, at most top_k; vectors have exactly dim floats.
 * Build and run: tests/fuzz/run.sh qdrant [seconds] */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_index_qdrant.h"
#include "vs_qdrant_parse.h"

#define DIM 4
#define TENANT "acme"

/* Aborts unless payload text is a JSON object of TENANT. */
static void check_payload(const char *txt) {
    json_t *o = json_loads(txt, 0, NULL);
    const char *t = json_string_value(json_object_get(o, "tenant_id"));
    if (!t || strcmp(t, TENANT) != 0) abort();
    if (json_object_get(o, "_visage_id")) abort(); /* the backend's own field never leaks */
    json_decref(o);
}

static int on_point(void *ctx, const char *id, const float *v, const char *payload) {
    int *n = ctx;
    volatile float s = 0;
    for (int d = 0; d < DIM; d++) s += v[d];
    (void)s;
    if (!id || !*id) abort();
    check_payload(payload);
    return ++*n == 3;
}

/* A fresh parse for each reader: readers strip "_visage_id" in place. */
static json_t *parse(const char *body, size_t len) {
    char why[160];
    return vs_qdrant_answer(body, len, why, sizeof why);
}

static void readers(const char *body, size_t len) {
    json_t *root = parse(body, len);
    if (!root) return;
    int64_t n;
    int dim;
    const char *s;
    json_t *pay;
    (void)vs_qdrant_update_done(root, "op", "c", NULL);
    if (vs_qdrant_count_answer(root, "op", "c", &n, NULL) == VS_OK && n < 0) abort();
    if (vs_qdrant_vectors_of(root, "op", "c", &dim, &s, NULL) == VS_OK && (dim < 1 || !s)) abort();
    if (vs_qdrant_record_answer(root, "op", "c", &pay, NULL) == VS_OK && pay &&
        vs_qdrant_record_fields(pay, "op", "c", &s, &dim, NULL) == VS_OK && (dim < 1 || !s))
        abort();
    json_decref(root);

    char qid[VS_UUID_STR];
    vs_qdrant_point_id("face-1", qid);
    float vec[DIM];
    char *txt = NULL;
    if ((root = parse(body, len))) {
        if (vs_qdrant_get_answer(root, "c", TENANT, "face-1", qid, DIM, vec, &txt, NULL) == VS_OK) check_payload(txt);
        vs_free(txt);
        json_decref(root);
    }
    vs_filter f = {.tenant_id = TENANT, .min_quality = 0.5f};
    if ((root = parse(body, len))) {
        char next[VS_POINT_ID_MAX];
        int got = 0;
        (void)vs_qdrant_scroll_answer(root, "c", &f, DIM, "", 5, vec, on_point, &got, next, NULL);
        json_decref(root);
    }
    if ((root = parse(body, len))) {
        vs_hit *h = NULL;
        int nh = 0;
        if (vs_qdrant_search_answer(root, "c", &f, 0.25f, 3, &h, &nh, NULL) == VS_OK) {
            if (nh < 0 || nh > 3) abort();
            for (int i = 0; i < nh; i++) {
                if (!(h[i].score >= 0.25f) || (i && h[i].score > h[i - 1].score)) abort();
                check_payload(h[i].payload_json);
            }
            vs_hits_free(h, nh);
        }
        json_decref(root);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = malloc(size ? size : 1); /* own allocation: ASan sees reads past the end */
    if (!body) return 0;
    memcpy(body, data, size);
    char why[64];
    vs_qdrant_reason(body, size, why, sizeof why);
    if (!memchr(why, 0, sizeof why)) abort();
    readers(body, size);
    free(body);
    return 0;
}
