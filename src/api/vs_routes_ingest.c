/* vs_routes_ingest.c - POST /api/v1/ingest and /api/v1/ingest/batch: get the
 * image (inline base64, multipart, URL or bucket+key of the tenant), check it
 * is an image within the limits, store it under raw-images/{tenant}/{sha256},
 * record it, queue it, answer 202. The heavy work happens in the workers. */
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_redact.h"
#include "vs_routes.h"

#define MAX_BATCH 1000

/* One item's outcome: accepted with (id, sha) or rejected with status+message. */
typedef struct item_result {
    int status;          /* 202, or the HTTP status of the rejection */
    char code[48];
    char message[512];
    vs_ingest_msg msg;
    uint8_t *data;       /* the image bytes until committed (vs_free) */
    size_t len;
    int duplicate;       /* already processed for this tenant: not queued again */
} item_result;

static void item_fail(item_result *ir, int status, const char *code, const char *msg) {
    ir->status = status;
    snprintf(ir->code, sizeof ir->code, "%s", code);
    snprintf(ir->message, sizeof ir->message, "%s", msg);
}

static void item_fail_err(item_result *ir, vs_err rc, const vs_error *e) {
    switch (rc) {
    case VS_ERR_TOO_LARGE: item_fail(ir, 413, "too_large", e->msg); break;
    case VS_ERR_UNSUPPORTED: item_fail(ir, 415, "unsupported_media_type", e->msg); break;
    case VS_ERR_NOT_FOUND: item_fail(ir, 404, "not_found", e->msg); break;
    case VS_ERR_IO:
    case VS_ERR_BACKEND: item_fail(ir, 503, "backend_unavailable", e->msg); break;
    default: item_fail(ir, 400, "bad_request", e->msg); break;
    }
}

/* Reads the bytes of one item: image_b64, url or bucket+key (the schema
 * has made sure at most one of them is given). */
static int item_bytes(vs_req *r, json_t *it, uint8_t **data, size_t *len, item_result *ir) {
    vs_app *a = r->app;
    const char *b64 = json_string_value(json_object_get(it, "image_b64"));
    const char *url = json_string_value(json_object_get(it, "url"));
    const char *bucket = json_string_value(json_object_get(it, "bucket"));
    const char *key = json_string_value(json_object_get(it, "key"));
    vs_error e = {0};
    if (!bucket != !key) {
        item_fail(ir, 400, "bad_request", bucket ? "key: required with bucket" : "bucket: required with key");
        return -1;
    }
    if (b64) {
        if (vs_base64_decode(b64, strlen(b64), data, len) != 0) {
            item_fail(ir, 400, "bad_request", "image_b64 is not valid base64");
            return -1;
        }
        return 0;
    }
    if (url) {
        vs_fetch_opts fo = {.max_bytes = a->cfg.max_body_bytes, .timeout_ms = 15000, .max_redirects = 5,
                            .allow_cidrs = a->cfg.fetch_allow_cidrs};
        vs_fetch_result fr = {0};
        vs_err rc = vs_fetch_url(url, &fo, &fr, &e);
        if (rc != VS_OK) {
            if (rc == VS_ERR_UNSUPPORTED) item_fail(ir, 400, "url_not_allowed", e.msg);
            else if (rc == VS_ERR_IO) item_fail(ir, 502, "fetch_failed", e.msg);
            else item_fail_err(ir, rc, &e);
            return -1;
        }
        *data = fr.data;
        *len = fr.len;
        fr.data = NULL;
        vs_fetch_result_free(&fr);
        if (!json_object_get(it, "source_url")) vs_url_redact(url, ir->msg.source_url, sizeof ir->msg.source_url);
        return 0;
    }
    if (bucket && key) {
        /* Only the tenant's own objects: a key is "<tenant>/..." */
        size_t tl = strlen(r->tenant);
        if (strncmp(key, r->tenant, tl) != 0 || key[tl] != '/') {
            item_fail(ir, 403, "forbidden", "key must start with your tenant id followed by '/'");
            return -1;
        }
        vs_err rc = vs_store_get(a->store, bucket, key, a->cfg.max_body_bytes, data, len, &e);
        if (rc != VS_OK) {
            item_fail_err(ir, rc, &e);
            return -1;
        }
        return 0;
    }
    item_fail(ir, 400, "bad_request", "give exactly one of image_b64, url, or bucket and key");
    return -1;
}

/* Copies the optional text fields of an item into the message. */
static int item_fields(json_t *it, item_result *ir) {
    static const struct { const char *name; size_t off, cap; } f[] = {
        {"site", offsetof(vs_ingest_msg, site), sizeof(((vs_ingest_msg *)0)->site)},
        {"source_url", offsetof(vs_ingest_msg, source_url), sizeof(((vs_ingest_msg *)0)->source_url)},
        {"page_url", offsetof(vs_ingest_msg, page_url), sizeof(((vs_ingest_msg *)0)->page_url)},
        {"external_image_id", offsetof(vs_ingest_msg, external_id), sizeof(((vs_ingest_msg *)0)->external_id)},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        json_t *v = json_object_get(it, f[i].name);
        if (!v) continue;
        if (!json_is_string(v) || strlen(json_string_value(v)) >= f[i].cap) {
            char m[128];
            snprintf(m, sizeof m, "%s must be a string shorter than %zu bytes", f[i].name, f[i].cap);
            item_fail(ir, 400, "bad_request", m);
            return -1;
        }
        memcpy((char *)&ir->msg + f[i].off, json_string_value(v), strlen(json_string_value(v)) + 1);
    }
    return 0;
}

/* Validates one image and fills ir->msg ready to store and queue; takes
 * data (kept in ir until commit_items). full_decode: decode every pixel
 * (single ingest: catches truncated files now) instead of reading only the
 * header (batch: speed). */
static void accept_bytes(vs_req *r, uint8_t *data, size_t len, int full_decode, item_result *ir) {
    vs_app *a = r->app;
    vs_error e = {0};
    vs_image_format fmt;
    int w, h;
    vs_decode_opts o = {.max_pixels = a->cfg.max_pixels};
    ir->data = data;
    ir->len = len;
    if (len == 0) return item_fail(ir, 400, "bad_request", "the image is empty (0 bytes)");
    vs_err rc = vs_image_probe(data, len, &o, &fmt, &w, &h, &e);
    if (rc == VS_OK && full_decode) {
        /* every byte is entropy-decoded even at 1/8 scale, so a truncated
         * or damaged file still fails, for a fraction of the inverse DCT */
        vs_decoded d;
        rc = vs_image_decode_scaled(data, len, &o, 1, &d, &e);
        vs_image_free(&d.img);
    }
    if (rc != VS_OK) return item_fail_err(ir, rc, &e);
    vs_ingest_msg *m = &ir->msg;
    snprintf(m->tenant, sizeof m->tenant, "%s", r->tenant);
    vs_sha256_hex(data, len, m->sha256);
    snprintf(m->bucket, sizeof m->bucket, "raw-images");
    vs_raw_key(r->tenant, m->sha256, fmt, m->key, sizeof m->key);
    ir->status = 202;
}

/* Makes the accepted items durable and queues them, a batch at a time: one
 * group-committed store write for all raw images, one catalog transaction,
 * one queue push. Any failure fails every item of the batch (503): the
 * client retries the batch; re-sending is idempotent (same sha256). */
static void commit_items(vs_req *r, item_result *items, int n, int64_t *ids) {
    vs_app *a = r->app;
    vs_blob *blobs = vs_calloc((size_t)(n ? n : 1), sizeof *blobs);
    const char **shas = vs_calloc((size_t)(n ? n : 1), sizeof *shas), **exts = vs_calloc((size_t)(n ? n : 1), sizeof *exts);
    char **bodies = vs_calloc((size_t)(n ? n : 1), sizeof *bodies);
    int *which = vs_calloc((size_t)(n ? n : 1), sizeof *which);
    int64_t *kid = vs_calloc((size_t)(n ? n : 1), sizeof *kid);
    int *done = vs_calloc((size_t)(n ? n : 1), sizeof *done);
    vs_error e = {0};
    vs_err rc = blobs && shas && exts && bodies && which && kid && done ? VS_OK : vs_fail(&e, VS_ERR_NOMEM, "ingest batch");
    int k = 0;
    for (int i = 0; rc == VS_OK && i < n; i++) {
        item_result *it = &items[i];
        if (it->status != 202) continue;
        blobs[k] = (vs_blob){it->msg.bucket, it->msg.key, it->data, it->len};
        shas[k] = it->msg.sha256;
        exts[k] = it->msg.external_id[0] ? it->msg.external_id : NULL;
        if (!(bodies[k] = vs_ingest_msg_json(&it->msg))) rc = vs_fail(&e, VS_ERR_NOMEM, "ingest batch");
        which[k++] = i;
    }
    if (rc == VS_OK && k) rc = vs_store_put_many(a->store, blobs, k, &e);
    if (rc == VS_OK && k) rc = vs_image_records_queue(a->catalog, r->tenant, shas, exts, k, done, &e);
    /* exact duplicates of this tenant (already done) are not queued again;
     * erased images are refused, and the raw copy just written is removed */
    for (int j = 0; rc == VS_OK && j < k; j++) {
        if (done[j] != 2) continue;
        vs_store_del(a->store, blobs[j].bucket, blobs[j].key, NULL);
        char msg[256];
        snprintf(msg, sizeof msg, "image %s was erased for this tenant and is not indexed again "
                 "(DELETE /api/v1/images/%s?suppress=false lifts that)", shas[j], shas[j]);
        item_fail(&items[which[j]], 409, "erased", msg);
    }
    char **todo = vs_calloc((size_t)(k ? k : 1), sizeof *todo);
    int64_t *todo_ids = vs_calloc((size_t)(k ? k : 1), sizeof *todo_ids);
    int nt = 0;
    if (rc == VS_OK && (!todo || !todo_ids)) rc = vs_fail(&e, VS_ERR_NOMEM, "ingest batch");
    for (int j = 0; rc == VS_OK && j < k; j++)
        if (!done[j]) todo[nt++] = bodies[j];
    if (rc == VS_OK && nt) rc = a->queue->ops->push(a->queue, (const char *const *)todo, nt, todo_ids, &e);
    int k_erased = 0;
    for (int j = 0, t = 0; j < k; j++) {
        if (rc != VS_OK) item_fail(&items[which[j]], rc == VS_ERR_NOMEM ? 500 : 503, rc == VS_ERR_NOMEM ? "internal" : "backend_unavailable", e.msg);
        else if (done[j] == 1) items[which[j]].duplicate = 1;
        else if (done[j] == 2) k_erased++; /* refused above */
        else ids[which[j]] = todo_ids[t++];
        free(bodies[j]);
    }
    vs_free(todo);
    vs_free(todo_ids);
    vs_free(done);
    if (rc == VS_OK) atomic_fetch_add(&a->ingest_accepted, k - k_erased);
    vs_free(blobs);
    vs_free(shas);
    vs_free(exts);
    vs_free(bodies);
    vs_free(which);
    vs_free(kid);
}

/* Processes one JSON item up to "ready to queue". */
static void prepare_item(vs_req *r, json_t *it, int full_decode, item_result *ir) {
    uint8_t *data = NULL;
    size_t len = 0;
    char why[512];
    memset(ir, 0, sizeof *ir);
    if (vs_schema_check(&vs_schema_ingest_item, it, why, sizeof why) != 0)
        return item_fail(ir, 400, "bad_request", why);
    if (item_fields(it, ir) != 0 || item_bytes(r, it, &data, &len, ir) != 0) {
        vs_free(data);
        return;
    }
    accept_bytes(r, data, len, full_decode, ir);
}

void vs_route_ingest(vs_req *r) {
    item_result ir;
    memset(&ir, 0, sizeof ir);
    json_t *body = vs_req_body(r, VS_BODY_JSON | VS_BODY_FORM | VS_BODY_IMAGE, &vs_schema_ingest_item,
                               &vs_schema_ingest_form);
    if (!body) return;
    if (vs_media_type_is(vs_req_header(r, "Content-Type"), "application/json")) {
        prepare_item(r, body, 1, &ir);
    } else { /* the image is the body or the form's "image"; a form's text fields */
        uint8_t *data = NULL;
        size_t len = 0;
        int got = vs_req_image(r, NULL, &data, &len);
        if (got <= 0) {
            json_decref(body);
            vs_free(data);
            if (got == 0)
                vs_reply_error(r, 400, "bad_request",
                               "image: required (send JSON {url | image_b64 | bucket+key}, multipart field 'image', or "
                               "an image body)");
            return;
        }
        if (item_fields(body, &ir) != 0) vs_free(data);
        else accept_bytes(r, data, len, 1, &ir);
    }
    json_decref(body);
    int64_t id = 0;
    if (ir.status == 202) commit_items(r, &ir, 1, &id);
    vs_free(ir.data);
    if (ir.status != 202) return vs_reply_error(r, ir.status, ir.code, "%s", ir.message);
    char mid[32];
    snprintf(mid, sizeof mid, "%lld", (long long)id);
    if (ir.duplicate) /* nothing new to do: the record already says what was found */
        return vs_reply_json(r, 202, json_pack("{s:n,s:s,s:s}", "message_id", "image_sha256", ir.msg.sha256, "status",
                                               "duplicate"));
    vs_reply_json(r, 202, json_pack("{s:s,s:s,s:s}", "message_id", mid, "image_sha256", ir.msg.sha256, "status", "queued"));
}

void vs_route_ingest_batch(vs_req *r) {
    json_t *body = vs_req_body(r, VS_BODY_JSON, &vs_schema_ingest_batch, NULL);
    if (!body) return;
    json_t *items = json_object_get(body, "items");
    size_t n = json_array_size(items);
    if (n == 0 || n > MAX_BATCH) { /* the schema says so too: kept in step with MAX_BATCH here */
        json_decref(body);
        return vs_reply_error(r, 400, "bad_request", "items: must hold 1 to %d items", MAX_BATCH);
    }
    item_result *res = vs_calloc(n, sizeof *res);
    int64_t *ids = vs_calloc(n, sizeof *ids);
    if (!res || !ids) {
        vs_free(res);
        vs_free(ids);
        json_decref(body);
        return vs_reply_error(r, 500, "internal", "out of memory");
    }
    for (size_t i = 0; i < n; i++) prepare_item(r, json_array_get(items, i), 0, &res[i]);
    commit_items(r, res, (int)n, ids);
    json_t *acc = json_array(), *rej = json_array();
    for (size_t i = 0; i < n; i++) {
        if (res[i].status == 202) {
            char mid[32];
            snprintf(mid, sizeof mid, "%lld", (long long)ids[i]);
            json_t *a = json_pack("{s:i,s:s,s:s,s:s}", "index", (int)i, "message_id", mid, "image_sha256",
                                  res[i].msg.sha256, "status", res[i].duplicate ? "duplicate" : "queued");
            if (res[i].duplicate) json_object_set_new(a, "message_id", json_null());
            json_array_append_new(acc, a);
        } else {
            json_array_append_new(rej, json_pack("{s:i,s:i,s:{s:s,s:s}}", "index", (int)i, "status", res[i].status,
                                                 "error", "code", res[i].code, "message", res[i].message));
        }
    }
    for (size_t i = 0; i < n; i++) vs_free(res[i].data);
    vs_free(res);
    vs_free(ids);
    json_decref(body);
    vs_reply_json(r, 202, json_pack("{s:o,s:o}", "accepted", acc, "rejected", rej));
}
