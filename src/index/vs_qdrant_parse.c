/* vs_qdrant_parse.c - reading Qdrant's answers: pure functions of the
 * parsed answer (no HTTP, no state), so what a hostile or broken Qdrant
 * sends can be fuzzed alone. Every point that comes back is checked again
 * against the caller's filter (tenant first) before anyone sees it; answers
 * of any shape fail with VS_ERR_BACKEND, never crash. */
#include "vs_qdrant_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_buf.h"
#include "vs_index_internal.h"
#include "vs_index_log.h"
#include "vs_index_qdrant.h"

json_t *vs_qdrant_answer(const char *body, size_t len, char *why, size_t cap) {
    json_error_t je;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, 0, &je);
    if (!root) {
        snprintf(why, cap, "malformed JSON: %s at byte %d", je.text, je.position);
    } else if (!json_is_object(root) || !json_object_get(root, "result")) {
        json_decref(root);
        root = NULL;
        snprintf(why, cap, "no \"result\"");
    }
    return root;
}

vs_err vs_qdrant_count_answer(const json_t *root, const char *op, const char *name, int64_t *n, vs_error *err) {
    json_t *c = json_object_get(json_object_get(root, "result"), "count");
    if (!json_is_integer(c) || json_integer_value(c) < 0)
        return vs_fail(err, VS_ERR_BACKEND, "%s %s: malformed count answer from Qdrant (no result.count)", op, name);
    *n = (int64_t)json_integer_value(c);
    return VS_OK;
}

vs_err vs_qdrant_record_answer(json_t *root, const char *op, const char *name, json_t **pay, vs_error *err) {
    *pay = NULL;
    json_t *res = json_object_get(root, "result");
    if (!json_is_array(res))
        return vs_fail(err, VS_ERR_BACKEND, "%s %s: malformed answer from Qdrant (result not a list)", op, name);
    for (size_t i = 0; i < json_array_size(res); i++) {
        char qid[VS_POINT_ID_MAX];
        json_t *rec = json_array_get(res, i);
        if (vs_qdrant_rec_qid(rec, qid) && strcmp(qid, VS_QDRANT_META_ID) == 0) *pay = json_object_get(rec, "payload");
    }
    return VS_OK;
}

/* Copies into out (cap bytes) the reason Qdrant gave in an error answer:
 * "status":{"error":…} when the body is Qdrant JSON, else the start of the
 * body with control characters blanked. */
void vs_qdrant_reason(const char *body, size_t len, char *out, size_t cap) {
    out[0] = '\0';
    if (!body || len == 0) {
        snprintf(out, cap, "(empty body)");
        return;
    }
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *st = root ? json_object_get(root, "status") : NULL;
    json_t *e = json_is_object(st) ? json_object_get(st, "error") : NULL;
    if (json_is_string(e)) {
        snprintf(out, cap, "%s", json_string_value(e));
    } else {
        size_t k = len < cap - 1 ? len : cap - 1;
        for (size_t i = 0; i < k; i++) out[i] = ((unsigned char)body[i] < 0x20 || body[i] == 0x7f) ? ' ' : body[i];
        out[k] = '\0';
    }
    json_decref(root);
}

/* Fails unless a write answer says the operation completed (wait=true). */
vs_err vs_qdrant_update_done(const json_t *root, const char *op, const char *coll, vs_error *err) {
    json_t *r = json_object_get(root, "result");
    json_t *st = json_is_object(r) ? json_object_get(r, "status") : NULL;
    if (json_is_true(r) || (json_is_string(st) && strcmp(json_string_value(st), "completed") == 0)) return VS_OK;
    return vs_fail(err, VS_ERR_BACKEND, "%s %s: Qdrant did not report the write as completed (status %s)", op, coll,
                   json_is_string(st) ? json_string_value(st) : "missing");
}

/* Whether a point's payload (as Qdrant returned it) passes f: the backend's
 * own check that no answer can hand out another tenant's point. */
int vs_qdrant_payload_matches(const json_t *pay, const vs_filter *f) {
    json_t *t = json_object_get(pay, "tenant_id");
    if (!json_is_string(t) || strcmp(json_string_value(t), f->tenant_id) != 0) return 0;
    if (f->site) {
        json_t *s = json_object_get(pay, "site");
        if (!json_is_string(s) || strcmp(json_string_value(s), f->site) != 0) return 0;
    }
    if (f->image_sha256) {
        json_t *s = json_object_get(pay, "image_sha256");
        if (!json_is_string(s) || strcmp(json_string_value(s), f->image_sha256) != 0) return 0;
    }
    if (f->min_quality > 0) {
        json_t *s = json_object_get(pay, "quality_score");
        if (!json_is_number(s) || !(json_number_value(s) >= (double)f->min_quality)) return 0;
    }
    return 1;
}

/* The Qdrant id of a returned point as text (UUID string or integer). */
int vs_qdrant_rec_qid(const json_t *rec, char out[VS_POINT_ID_MAX]) {
    json_t *id = json_object_get(rec, "id");
    if (json_is_string(id) && json_string_length(id) < VS_POINT_ID_MAX) {
        snprintf(out, VS_POINT_ID_MAX, "%s", json_string_value(id));
        return 1;
    }
    if (json_is_integer(id) && json_integer_value(id) >= 0) {
        snprintf(out, VS_POINT_ID_MAX, "%lld", (long long)json_integer_value(id));
        return 1;
    }
    return 0;
}

/* The visage id of a returned point: payload "_visage_id" if there, else its
 * Qdrant id; 0 when the record has no usable id or the two disagree. */
static int rec_id(const json_t *rec, char out[VS_POINT_ID_MAX]) {
    char qid[VS_POINT_ID_MAX];
    if (!vs_qdrant_rec_qid(rec, qid)) return 0;
    json_t *vid = json_object_get(json_object_get(rec, "payload"), "_visage_id");
    if (!vid) {
        memcpy(out, qid, VS_POINT_ID_MAX);
        return 1;
    }
    if (!json_is_string(vid) || !vs_index_text_ok(json_string_value(vid), VS_POINT_ID_MAX - 1)) return 0;
    char want[VS_UUID_STR];
    vs_qdrant_point_id(json_string_value(vid), want);
    if (strcmp(want, qid) != 0) return 0;
    snprintf(out, VS_POINT_ID_MAX, "%s", json_string_value(vid));
    return 1;
}

/* Copies the record's vector (exactly dim numbers) into out. */
static int rec_vector(const json_t *rec, int dim, float *out) {
    json_t *v = json_object_get(rec, "vector");
    if (!json_is_array(v) || json_array_size(v) != (size_t)dim) return 0;
    for (int d = 0; d < dim; d++) {
        json_t *x = json_array_get(v, (size_t)d);
        if (!json_is_number(x)) return 0;
        out[d] = (float)json_number_value(x);
    }
    return 1;
}

/* Text being built: a failed append sets nomem and later ones do nothing. */
typedef struct sbuf {
    vs_buf b;
    int nomem;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (!b->nomem && vs_buf_append(&b->b, s, n) != VS_OK) b->nomem = 1;
}

/* Appends s (len bytes, valid UTF-8 as jansson guarantees) as a JSON string. */
static void sb_string(sbuf *b, const char *s, size_t len) {
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f) continue;
        sb_put(b, s + run, i - run);
        char esc[8];
        if (ch == '"' || ch == '\\')
            snprintf(esc, sizeof esc, "\\%c", ch);
        else
            snprintf(esc, sizeof esc, "\\u%04x", ch);
        sb_put(b, esc, strlen(esc));
        run = i + 1;
    }
    sb_put(b, s + run, len - run);
    sb_put(b, "\"", 1);
}

/* Appends v as compact JSON, reals in their shortest round-trip form
 * (Qdrant answers 0.9, jansson would print 0.90000000000000002). */
static void sb_json(sbuf *b, const json_t *v) {
    char num[40];
    const char *key;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        sb_put(b, "{", 1);
        i = 0;
        json_object_foreach((json_t *)v, key, x) {
            if (i++) sb_put(b, ",", 1);
            sb_string(b, key, strlen(key));
            sb_put(b, ":", 1);
            sb_json(b, x);
        }
        sb_put(b, "}", 1);
        break;
    case JSON_ARRAY:
        sb_put(b, "[", 1);
        json_array_foreach(v, i, x) {
            if (i) sb_put(b, ",", 1);
            sb_json(b, x);
        }
        sb_put(b, "]", 1);
        break;
    case JSON_STRING: sb_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sb_put(b, num, strlen(num));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, d);
            if (strtod(num, NULL) == d) break;
        }
        if (!strpbrk(num, ".eE")) strcat(num, ".0"); /* stays a real */
        sb_put(b, num, strlen(num));
        break;
    }
    case JSON_TRUE: sb_put(b, "true", 4); break;
    case JSON_FALSE: sb_put(b, "false", 5); break;
    default: sb_put(b, "null", 4); break;
    }
}

/* The payload text handed to callers: the record's payload without the
 * backend's own "_visage_id", compact, in a vs_malloc'ed string. */
static char *payload_text(json_t *pay) {
    json_object_del(pay, "_visage_id");
    sbuf b = {0};
    sb_json(&b, pay);
    if (b.nomem) {
        vs_buf_free(&b.b);
        return NULL;
    }
    return (char *)b.b.data;
}

/* Reads config.params.vectors of a GET /collections/{name} answer: the
 * size and distance of its single unnamed vector. */
vs_err vs_qdrant_vectors_of(const json_t *root, const char *op, const char *name, int *dim, const char **distance,
                            vs_error *err) {
    json_t *v = json_object_get(
        json_object_get(json_object_get(json_object_get(root, "result"), "config"), "params"), "vectors");
    json_t *size = json_object_get(v, "size"), *dist = json_object_get(v, "distance");
    if (!json_is_integer(size) || json_integer_value(size) < 1 || json_integer_value(size) > VS_LOG_DIM_MAX ||
        !json_is_string(dist))
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "%s %s: the Qdrant collection has no single unnamed vector (config.params.vectors.size and "
                       "distance); it was not made by visage",
                       op, name);
    *dim = (int)json_integer_value(size);
    *distance = json_string_value(dist);
    return VS_OK;
}

/* The model and dim of a record payload; a malformed record fails op. */
vs_err vs_qdrant_record_fields(const json_t *pay, const char *op, const char *name, const char **model, int *dim,
                               vs_error *err) {
    json_t *m = json_object_get(pay, "model"), *d = json_object_get(pay, "dim");
    if (!json_is_true(json_object_get(pay, "_visage_collection")) || !json_is_string(m) || !json_is_integer(d) ||
        json_integer_value(d) < 1 || json_integer_value(d) > VS_LOG_DIM_MAX)
        return vs_fail(err, VS_ERR_INVALID_ARG, "%s %s: the collection record (point %s) is malformed", op, name,
                       VS_QDRANT_META_ID);
    *model = json_string_value(m);
    *dim = (int)json_integer_value(d);
    return VS_OK;
}


vs_err vs_qdrant_get_answer(json_t *root, const char *name, const char *tenant_id, const char *id,
                            const char *qid, int dim, float *vector_out, char **payload_out, vs_error *err) {
    vs_err rc = VS_OK;
    json_t *res = json_object_get(root, "result"), *found = NULL;
    vs_filter f = {.tenant_id = tenant_id};
    if (!json_is_array(res)) {
        rc = vs_fail(err, VS_ERR_BACKEND, "get %s: malformed answer from Qdrant (result not a list)", name);
        return rc;
    }
    for (size_t i = 0; i < json_array_size(res) && !found; i++) {
        json_t *rec = json_array_get(res, i);
        char rq[VS_POINT_ID_MAX], rid[VS_POINT_ID_MAX];
        if (vs_qdrant_rec_qid(rec, rq) && strcmp(rq, qid) == 0 && rec_id(rec, rid) && strcmp(rid, id) == 0 &&
            vs_qdrant_payload_matches(json_object_get(rec, "payload"), &f))
            found = rec;
    }
    if (!found) {
        rc = vs_fail(err, VS_ERR_NOT_FOUND, "get %s: no point %s for tenant %.80s", name, id, tenant_id);
        return rc;
    }
    if (vector_out && !rec_vector(found, dim, vector_out)) {
        rc = vs_fail(err, VS_ERR_BACKEND, "get %s: point %s: Qdrant returned no vector of dim %d", name, id, dim);
        return rc;
    }
    if (payload_out && !(*payload_out = payload_text(json_object_get(found, "payload"))))
        rc = vs_fail(err, VS_ERR_NOMEM, "get %s: out of memory", name);
    return rc;
}

vs_err vs_qdrant_scroll_answer(json_t *root, const char *name, const vs_filter *f, int dim,
                               const char *after_q, int limit, float *vec, vs_point_cb cb, void *ctx,
                               char next[VS_POINT_ID_MAX], vs_error *err) {
    vs_err rc = VS_OK;
    json_t *res = json_object_get(root, "result");
    json_t *pts = json_object_get(res, "points"), *nxt = json_object_get(res, "next_page_offset");
    if (!json_is_array(pts)) {
        rc = vs_fail(err, VS_ERR_BACKEND, "scroll %s: malformed answer from Qdrant (no result.points list)", name);
        return rc;
    }
    int delivered = 0, stopped = 0, more = nxt && !json_is_null(nxt), skipped = 0;
    char last[VS_POINT_ID_MAX] = "";
    for (size_t i = 0; i < json_array_size(pts) && !stopped; i++) {
        json_t *rec = json_array_get(pts, i), *pay = json_object_get(rec, "payload");
        char rq[VS_POINT_ID_MAX], rid[VS_POINT_ID_MAX];
        if (after_q[0] && vs_qdrant_rec_qid(rec, rq) && strcmp(rq, after_q) == 0) continue;
        if (delivered == limit) {
            more = 1;
            break;
        }
        if (!json_is_object(pay) || !rec_id(rec, rid) || !vs_qdrant_payload_matches(pay, f) || !rec_vector(rec, dim, vec)) {
            skipped++; /* not ours or malformed: never handed out */
            continue;
        }
        char *txt = payload_text(pay);
        if (!txt) {
            rc = vs_fail(err, VS_ERR_NOMEM, "scroll %s: out of memory", name);
            return rc;
        }
        delivered++;
        memcpy(last, rid, VS_POINT_ID_MAX);
        if (cb(ctx, rid, vec, txt)) stopped = 1;
        vs_free(txt);
    }
    if (stopped || (more && delivered > 0)) {
        memcpy(next, last, VS_POINT_ID_MAX);
    } else if (more) {
        rc = vs_fail(err, VS_ERR_BACKEND,
                     "scroll %s: Qdrant returned a page of %d points none of which matches the filter of tenant %.80s",
                     name, skipped, f->tenant_id);
    }
    return rc;
}

typedef struct rank {
    float score;
    int i;
} rank;

/* Best score first; equal scores keep Qdrant's order. */
static int cmp_rank(const void *a, const void *b) {
    const rank *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

vs_err vs_qdrant_search_answer(json_t *root, const char *name, const vs_filter *f, float threshold, int top_k,
                               vs_hit **hits, int *n_hits, vs_error *err) {
    vs_hit *out = NULL;
    rank *order = NULL;
    int n = 0, k = 0;
    vs_err rc = VS_OK;
    *hits = NULL;
    *n_hits = 0;
    json_t *res = json_object_get(root, "result");
    if (!json_is_array(res)) {
        rc = vs_fail(err, VS_ERR_BACKEND, "search %s: malformed answer from Qdrant (result not a list)", name);
        goto out;
    }
    size_t m = json_array_size(res);
    if (m && !(order = vs_calloc(m, sizeof *order))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "search %s: out of memory for %zu hits", name, m);
        goto out;
    }
    for (size_t i = 0; i < m; i++) { /* keep only well-formed hits that pass the filter */
        json_t *rec = json_array_get(res, i), *sc = json_object_get(rec, "score");
        char rid[VS_POINT_ID_MAX];
        if (!json_is_number(sc) || !isfinite(json_number_value(sc)) || json_number_value(sc) < (double)threshold ||
            !json_is_object(json_object_get(rec, "payload")) || !rec_id(rec, rid) ||
            !vs_qdrant_payload_matches(json_object_get(rec, "payload"), f))
            continue;
        order[k++] = (rank){(float)json_number_value(sc), (int)i};
    }
    if (k > 1) qsort(order, (size_t)k, sizeof *order, cmp_rank);
    if (k > top_k) k = top_k;
    if (k > 0 && !(out = vs_calloc((size_t)k, sizeof *out))) {
        rc = vs_fail(err, VS_ERR_NOMEM, "search %s: out of memory for %d hits", name, k);
        goto out;
    }
    for (; n < k; n++) {
        json_t *rec = json_array_get(res, (size_t)order[n].i);
        rec_id(rec, out[n].id);
        out[n].score = order[n].score;
        if (!(out[n].payload_json = payload_text(json_object_get(rec, "payload")))) {
            rc = vs_fail(err, VS_ERR_NOMEM, "search %s: out of memory copying payloads", name);
            goto out;
        }
    }
out:
    vs_free(order);
    if (rc != VS_OK) {
        vs_hits_free(out, out ? k : 0); /* calloc'ed: unfilled payloads are NULL */
        return rc;
    }
    *hits = out;
    *n_hits = n;
    return VS_OK;
}
