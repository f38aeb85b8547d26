/* vs_index.c - picks the vector index backend from its URL (DESIGN.md:
 * VISAGE_INDEX=embedded | http(s)://qdrant:6333) and the helpers shared by all
 * backends. */
#include "vs_index.h"

#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_index_embedded.h"
#include "vs_index_internal.h"
#include "vs_index_qdrant.h"

vs_err vs_index_open(const char *url, const char *data_dir, vs_index **out, vs_error *err) {
    return vs_index_open_with(url, data_dir, NULL, out, err);
}

vs_err vs_index_open_with(const char *url, const char *data_dir, const vs_index_opts *opts, vs_index **out,
                          vs_error *err) {
    if (!out) return vs_fail(err, VS_ERR_INVALID_ARG, "index open: no output pointer");
    *out = NULL;
    if (!url || !*url) return vs_fail(err, VS_ERR_INVALID_ARG, "index open: empty index URL");
    if (strcmp(url, "embedded") == 0) {
        if (!data_dir || !*data_dir)
            return vs_fail(err, VS_ERR_INVALID_ARG, "index open embedded: a data directory is required");
        return vs_index_embedded_open_with(data_dir, opts, out, err);
    }
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return vs_index_qdrant_open(url, NULL, out, err);
    return vs_fail(err, VS_ERR_UNSUPPORTED, "index open %s: unknown index URL (want \"embedded\" or http(s)://)",
                   url);
}

void vs_hits_free(vs_hit *hits, int n) {
    if (!hits) return;
    for (int i = 0; i < n; i++) vs_free(hits[i].payload_json);
    vs_free(hits);
}

vs_err vs_index_scroll_all(vs_index *ix, const char *coll, const vs_filter *f, int page, vs_point_cb cb, void *ctx,
                           vs_error *err) {
    char next[VS_POINT_ID_MAX] = "", after[VS_POINT_ID_MAX];
    vs_err rc;
    do {
        snprintf(after, sizeof after, "%s", next);
        rc = ix->ops->scroll(ix, coll, f, after[0] ? after : NULL, page, cb, ctx, next, err);
    } while (rc == VS_OK && next[0]);
    return rc == VS_ERR_NOT_FOUND ? VS_OK : rc;
}

vs_err vs_index_ann_stats(vs_index *ix, const char *coll, vs_ann_stats *st, vs_error *err) {
    if (!ix || !coll || !st) return vs_fail(err, VS_ERR_INVALID_ARG, "index ann stats: no index or collection");
    if (vs_index_is_embedded(ix)) return vs_index_embedded_ann_stats(ix, coll, st, err);
    return vs_fail(err, VS_ERR_UNSUPPORTED, "index ann stats %s: the backend keeps its own graphs", coll);
}

vs_err vs_index_validate(vs_index *ix, const char *coll, vs_error *err) {
    if (!ix || !coll) return vs_fail(err, VS_ERR_INVALID_ARG, "index validate: no index or collection");
    if (vs_index_is_embedded(ix)) return vs_index_embedded_validate(ix, coll, err);
    return vs_fail(err, VS_ERR_UNSUPPORTED, "index validate %s: this backend has no validator", coll);
}

int vs_index_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > VS_INDEX_COLL_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-'))
            return 0;
    }
    return 1;
}

int vs_index_text_ok(const char *s, size_t max) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}
