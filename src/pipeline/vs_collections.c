/* vs_collections.c - the names of the active collections and the embedder
 * they pin (see vs_collections.h). Runs once per process start and once
 * per reindex: a few catalog and index lookups. */
#include "vs_collections.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"

static const char *const k_fields[4] = {"faces", "identities", "samples", "blocks"};
static const char *const k_stems[4] = {"faces", "identities", "identity_samples", "erase_blocks"};

/* The 4 name buffers of c, in k_fields order. */
static char *slot(vs_collections *c, int i) {
    char *s[4] = {c->faces, c->identities, c->samples, c->blocks};
    return s[i];
}

void vs_collections_gen(int n, vs_collections *c) {
    for (int i = 0; i < 4; i++) snprintf(slot(c, i), VS_COLL_NAME_MAX, "%s_v%d", k_stems[i], n < 1 ? 1 : n);
}

int vs_collections_generation(const vs_collections *c) {
    const char *v = strrchr(c->faces, 'v');
    int n = v && v > c->faces && v[-1] == '_' ? atoi(v + 1) : 0;
    return n >= 1 ? n : 1;
}

void vs_collections_list(const vs_collections *c, const char *names[4]) {
    names[0] = c->faces;
    names[1] = c->identities;
    names[2] = c->samples;
    names[3] = c->blocks;
}

char *vs_collections_json(const vs_collections *c) {
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", k_fields[0], c->faces, k_fields[1], c->identities, k_fields[2],
                          c->samples, k_fields[3], c->blocks);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

vs_err vs_collections_parse(const char *json, vs_collections *c, vs_error *err) {
    json_error_t je;
    json_t *o = json_loads(json ? json : "", 0, &je);
    vs_err rc = json_is_object(o) ? VS_OK : vs_fail(err, VS_ERR_CORRUPT, "collections setting is not a JSON object");
    for (int i = 0; rc == VS_OK && i < 4; i++) {
        const char *v = json_string_value(json_object_get(o, k_fields[i]));
        if (!v || !*v || strlen(v) >= VS_COLL_NAME_MAX)
            rc = vs_fail(err, VS_ERR_CORRUPT, "collections setting: \"%s\" is missing or not a name", k_fields[i]);
        else snprintf(slot(c, i), VS_COLL_NAME_MAX, "%s", v);
    }
    json_decref(o);
    return rc;
}

vs_err vs_collections_load(vs_catalog *cat, vs_collections *c, vs_error *err) {
    char *v = NULL;
    vs_err rc = vs_setting_get(cat, VS_SETTING_COLLECTIONS, &v, err);
    if (rc == VS_ERR_NOT_FOUND) { /* a data dir from before the setting */
        vs_collections_gen(1, c);
        return VS_OK;
    }
    if (rc == VS_OK) rc = vs_collections_parse(v, c, err);
    vs_free(v);
    return rc;
}

vs_err vs_collections_newest(vs_index *ix, vs_collections *c, vs_error *err) {
    vs_collections_gen(1, c);
    for (int n = VS_COLL_GEN_PROBE; n >= 1; n--) {
        vs_collections g;
        int dim = 0;
        char model[VS_INDEX_MODEL_MAX + 1];
        vs_collections_gen(n, &g);
        vs_err rc = ix->ops->describe(ix, g.faces, &dim, model, err);
        if (rc == VS_ERR_NOT_FOUND) continue;
        if (rc == VS_OK) *c = g;
        return rc;
    }
    return VS_OK;
}

/* The model id of the first existing collection of c; model[0] = '\0' and
 * *which = NULL when none exists. */
static vs_err pinned_model(vs_index *ix, const vs_collections *c, char model[VS_INDEX_MODEL_MAX + 1],
                           const char **which, vs_error *err) {
    const char *names[4];
    vs_collections_list(c, names);
    model[0] = '\0';
    *which = NULL;
    for (int i = 0; i < 4; i++) {
        int dim = 0;
        vs_err rc = ix->ops->describe(ix, names[i], &dim, model, err);
        if (rc == VS_ERR_NOT_FOUND) continue;
        if (rc == VS_OK) *which = names[i];
        return rc;
    }
    return VS_OK;
}

vs_err vs_collections_embedder(vs_index *ix, const vs_collections *c, const char *wanted, vs_embedder *out,
                               vs_error *err) {
    int want = VS_EMBEDDER_DEFAULT;
    if (wanted && *wanted && (want = vs_embedder_find(wanted)) < 0)
        return vs_fail(err, VS_ERR_INVALID_ARG, "embedder \"%.80s\" is not one of dlib, faceres", wanted);
    char model[VS_INDEX_MODEL_MAX + 1];
    const char *which = NULL;
    vs_err rc = pinned_model(ix, c, model, &which, err);
    if (rc != VS_OK) return rc;
    if (!which) { /* nothing indexed yet: the data dir takes the one asked for */
        *out = (vs_embedder)want;
        return VS_OK;
    }
    int have = vs_embedder_find(model);
    if (have < 0)
        return vs_fail(err, VS_ERR_UNSUPPORTED,
                       "collection %s was made by model \"%.100s\", which this build of visage does not have", which,
                       model);
    if (wanted && *wanted && have != want)
        return vs_fail(err, VS_ERR_INVALID_ARG,
                       "VISAGE_EMBEDDER asks for %s (%s) but this data dir's collection %s was made by %s (%s); "
                       "unset it to use %s, or move the data to %s with `visage reindex --embedder %s`",
                       vs_embedder_get((vs_embedder)want)->name, vs_embedder_get((vs_embedder)want)->model_id, which,
                       vs_embedder_get((vs_embedder)have)->name, model, vs_embedder_get((vs_embedder)have)->name,
                       vs_embedder_get((vs_embedder)want)->name, vs_embedder_get((vs_embedder)want)->name);
    *out = (vs_embedder)have;
    return VS_OK;
}
