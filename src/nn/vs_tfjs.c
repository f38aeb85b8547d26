/* vs_tfjs.c - reads a TF.js graph model: model.json (graph + weights manifest)
 * and the concatenated .bin shards it names. Saved files are untrusted input:
 * every shape, byte count and offset is checked against what was read before
 * anything is copied. Weights come out as float32 (float16 and uint8/uint16
 * affine-quantised weights are expanded) or int32 (shape/axis constants). */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_image.h"
#include "vs_nn_internal.h"

#define VS_TF_MAX_SHARD_BYTES (512u << 20)
#define VS_TF_MAX_ELEMENTS (256u << 20)

/* Decodes standard base64 (TF.js stores string attrs this way) into out. */
static void b64_decode(const char *in, char *out, size_t cap) {
    static const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *in && *in != '='; in++) {
        const char *p = strchr(tab, *in);
        if (!p) break;
        acc = (acc << 6) | (unsigned)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 < cap) out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
}

/* Reads an integer list attr ({"list":{"i":["1","2"]}}) into v (at most max). */
static int attr_ints(json_t *attr, const char *key, int *v, int max) {
    json_t *l = json_object_get(json_object_get(json_object_get(attr, key), "list"), "i");
    if (!json_is_array(l)) return 0;
    int n = 0;
    size_t i;
    json_t *x;
    json_array_foreach(l, i, x) {
        if (n >= max) break;
        v[n++] = json_is_string(x) ? atoi(json_string_value(x)) : (int)json_integer_value(x);
    }
    return n;
}

/* Reads a base64 string attr ({"s":"U0FNRQ=="}). */
static void attr_str(json_t *attr, const char *key, char *out, size_t cap) {
    json_t *s = json_object_get(json_object_get(attr, key), "s");
    out[0] = '\0';
    if (json_is_string(s)) b64_decode(json_string_value(s), out, cap);
}

static int attr_bool(json_t *attr, const char *key) {
    return json_is_true(json_object_get(json_object_get(attr, key), "b"));
}

/* Copies a producer name without the control-dependency "^" and ":N" suffix. */
static char *clean_input_name(const char *s) {
    if (*s == '^') s++;
    char *d = vs_strdup(s);
    if (!d) return NULL;
    char *colon = strrchr(d, ':');
    if (colon && colon[1] >= '0' && colon[1] <= '9') *colon = '\0';
    return d;
}

/* Fills one node from its JSON object. */
static vs_err parse_node(json_t *jn, vs_tf_node *n, vs_error *err) {
    const char *name = json_string_value(json_object_get(jn, "name"));
    const char *op = json_string_value(json_object_get(jn, "op"));
    if (!name || !op) return vs_fail(err, VS_ERR_MODEL, "model.json: node without name or op");
    n->name = vs_strdup(name);
    n->op = vs_strdup(op);
    if (!n->name || !n->op) return vs_fail(err, VS_ERR_NOMEM, "model.json: node %s", name);
    json_t *ins = json_object_get(jn, "input");
    size_t ni = json_is_array(ins) ? json_array_size(ins) : 0;
    if (ni > 64) return vs_fail(err, VS_ERR_MODEL, "model.json: node %s has %zu inputs", name, ni);
    n->inputs = vs_calloc(ni ? ni : 1, sizeof(char *));
    if (!n->inputs) return vs_fail(err, VS_ERR_NOMEM, "model.json: node %s", name);
    for (size_t i = 0; i < ni; i++) {
        const char *s = json_string_value(json_array_get(ins, i));
        if (!s) return vs_fail(err, VS_ERR_MODEL, "model.json: node %s input %zu is not a string", name, i);
        if (*s == '^') continue; /* control dependency: no data */
        n->inputs[n->n_inputs] = clean_input_name(s);
        if (!n->inputs[n->n_inputs]) return vs_fail(err, VS_ERR_NOMEM, "model.json: node %s", name);
        n->n_inputs++;
    }
    json_t *attr = json_object_get(jn, "attr");
    n->has_strides = attr_ints(attr, "strides", n->strides, 4) == 4;
    n->has_dilations = attr_ints(attr, "dilations", n->dilations, 4) == 4;
    n->has_ksize = attr_ints(attr, "ksize", n->ksize, 4) == 4;
    attr_ints(attr, "explicit_paddings", n->explicit_pad, 8);
    attr_str(attr, "padding", n->padding, sizeof n->padding);
    char fmt[16];
    attr_str(attr, "data_format", fmt, sizeof fmt);
    if (fmt[0] && strcmp(fmt, "NHWC") != 0)
        return vs_fail(err, VS_ERR_UNSUPPORTED, "model.json: node %s (%s) uses data_format %s, only NHWC is supported",
                       name, op, fmt);
    json_t *fl = json_object_get(json_object_get(json_object_get(attr, "fused_ops"), "list"), "s");
    size_t i;
    json_t *x;
    json_array_foreach(fl, i, x) {
        if (n->n_fused >= 3) return vs_fail(err, VS_ERR_UNSUPPORTED, "model.json: node %s fuses more than 3 ops", name);
        if (json_is_string(x)) b64_decode(json_string_value(x), n->fused[n->n_fused++], sizeof n->fused[0]);
    }
    n->n_axes = attr_ints(attr, "squeeze_dims", n->axes, 4);
    n->keep_dims = attr_bool(attr, "keep_dims");
    n->transpose_a = attr_bool(attr, "transpose_a");
    n->transpose_b = attr_bool(attr, "transpose_b");
    json_t *la = json_object_get(json_object_get(attr, "leakyrelu_alpha"), "f");
    n->leaky_alpha = json_is_number(la) ? (float)json_number_value(la) : 0.2f;
    json_t *dims = json_object_get(json_object_get(json_object_get(attr, "shape"), "shape"), "dim");
    json_array_foreach(dims, i, x) {
        if (n->shape_ndim >= VS_NN_MAX_DIMS) return vs_fail(err, VS_ERR_UNSUPPORTED, "model.json: node %s has rank > 4", name);
        json_t *sz = json_object_get(x, "size");
        n->shape[n->shape_ndim++] = json_is_string(sz) ? atoi(json_string_value(sz)) : (int)json_integer_value(sz);
    }
    return VS_OK;
}

/* IEEE half -> float, including subnormals, inf and NaN. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Reads one manifest entry's bytes at *off of blob into w, expanding quantised
 * encodings. Advances *off. */
static vs_err read_weight(json_t *jw, const uint8_t *blob, size_t blob_len, size_t *off,
                          vs_tf_weight *w, vs_error *err) {
    const char *name = json_string_value(json_object_get(jw, "name"));
    const char *dtype = json_string_value(json_object_get(jw, "dtype"));
    if (!name || !dtype) return vs_fail(err, VS_ERR_MODEL, "model.json: weight without name or dtype");
    w->name = vs_strdup(name);
    if (!w->name) return vs_fail(err, VS_ERR_NOMEM, "weight %s", name);
    json_t *shape = json_object_get(jw, "shape");
    size_t nd = json_array_size(shape);
    if (nd > VS_NN_MAX_DIMS) return vs_fail(err, VS_ERR_UNSUPPORTED, "weight %s: rank %zu > 4", name, nd);
    size_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        json_int_t d = json_integer_value(json_array_get(shape, i));
        if (d < 0 || d > (json_int_t)VS_TF_MAX_ELEMENTS || !vs_mul_size(count, (size_t)d, &count) ||
            count > VS_TF_MAX_ELEMENTS)
            return vs_fail(err, VS_ERR_MODEL, "weight %s: bad shape", name);
        w->dims[i] = (int)d;
    }
    w->ndim = (int)nd;
    w->count = count;
    json_t *q = json_object_get(jw, "quantization");
    const char *qd = q ? json_string_value(json_object_get(q, "dtype")) : NULL;
    size_t esz = qd ? (strcmp(qd, "uint8") == 0 ? 1 : 2) : 4;
    if (qd && strcmp(qd, "uint8") && strcmp(qd, "uint16") && strcmp(qd, "float16"))
        return vs_fail(err, VS_ERR_UNSUPPORTED, "weight %s: quantization %s", name, qd);
    size_t bytes = count * esz;
    if (*off > blob_len || blob_len - *off < bytes)
        return vs_fail(err, VS_ERR_MODEL, "weight %s: needs %zu bytes at offset %zu, weight shards hold %zu "
                       "(truncated .bin? re-run scripts/fetch-models.sh)", name, bytes, *off, blob_len);
    const uint8_t *p = blob + *off;
    *off += bytes;
    if (strcmp(dtype, "int32") == 0 && !qd) {
        w->is_int = 1;
        w->i32 = vs_calloc(count, 4);
        if (!w->i32) return vs_fail(err, VS_ERR_NOMEM, "weight %s", name);
        memcpy(w->i32, p, bytes);
        return VS_OK;
    }
    if (strcmp(dtype, "float32") != 0 && strcmp(dtype, "int32") != 0)
        return vs_fail(err, VS_ERR_UNSUPPORTED, "weight %s: dtype %s", name, dtype);
    w->f32 = vs_calloc(count, sizeof(float));
    if (!w->f32) return vs_fail(err, VS_ERR_NOMEM, "weight %s", name);
    if (!qd) memcpy(w->f32, p, bytes);
    else if (strcmp(qd, "float16") == 0) {
        for (size_t i = 0; i < count; i++) w->f32[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    } else {
        float scale = (float)json_number_value(json_object_get(q, "scale"));
        float min = (float)json_number_value(json_object_get(q, "min"));
        for (size_t i = 0; i < count; i++) {
            unsigned v = esz == 1 ? p[i] : (unsigned)(p[2 * i] | p[2 * i + 1] << 8);
            w->f32[i] = (float)v * scale + min;
        }
    }
    if (strcmp(dtype, "int32") == 0) { /* quantised int32: keep as ints */
        w->is_int = 1;
        w->i32 = vs_calloc(count, 4);
        if (!w->i32) return vs_fail(err, VS_ERR_NOMEM, "weight %s", name);
        for (size_t i = 0; i < count; i++) w->i32[i] = (int32_t)lrintf(w->f32[i]);
    }
    return VS_OK;
}

/* Concatenates the shard files of every manifest group, in order. */
static vs_err read_shards(json_t *manifest, const char *dir, uint8_t **out, size_t *out_len,
                          vs_error *err) {
    uint8_t *blob = NULL;
    size_t len = 0;
    size_t gi, pi;
    json_t *grp, *path;
    json_array_foreach(manifest, gi, grp) {
        json_array_foreach(json_object_get(grp, "paths"), pi, path) {
            const char *p = json_string_value(path);
            if (!p || strstr(p, "..") || p[0] == '/') {
                vs_free(blob);
                return vs_fail(err, VS_ERR_MODEL, "model.json: bad shard path %s", p ? p : "(null)");
            }
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", dir, p);
            uint8_t *part = NULL;
            size_t plen = 0;
            vs_err rc = vs_read_file(full, VS_TF_MAX_SHARD_BYTES, &part, &plen, err);
            if (rc != VS_OK) {
                vs_free(blob);
                if (rc == VS_ERR_IO) rc = vs_fail(err, VS_ERR_MODEL, "%s: cannot read weight shard (%s); "
                                                  "run scripts/fetch-models.sh", full, strerror(errno));
                return rc;
            }
            uint8_t *nb = vs_realloc(blob, len + plen);
            if (!nb) {
                vs_free(part);
                vs_free(blob);
                return vs_fail(err, VS_ERR_NOMEM, "%s", full);
            }
            blob = nb;
            memcpy(blob + len, part, plen);
            len += plen;
            vs_free(part);
        }
    }
    *out = blob;
    *out_len = len;
    return VS_OK;
}

/* Reads every weight of a manifest (array of groups) into g->weights; the
 * bytes come from `weights` if non-NULL, otherwise from the shard files in dir. */
static vs_err parse_weights(json_t *manifest, const char *dir, const void *weights, size_t weights_len,
                            vs_tf_graph *g, vs_error *err) {
    uint8_t *blob = NULL;
    vs_err rc = VS_OK;
    size_t blob_len = weights_len;
    const uint8_t *wp = weights;
    if (!wp) {
        if ((rc = read_shards(manifest, dir, &blob, &blob_len, err)) != VS_OK) return rc;
        wp = blob;
    }
    size_t nw = 0, gi, wi;
    json_t *grp, *jw;
    json_array_foreach(manifest, gi, grp) nw += json_array_size(json_object_get(grp, "weights"));
    g->weights = vs_calloc(nw + 1, sizeof *g->weights);
    if (!g->weights) { rc = vs_fail(err, VS_ERR_NOMEM, "model.json weights"); goto out; }
    size_t off = 0;
    json_array_foreach(manifest, gi, grp) {
        json_array_foreach(json_object_get(grp, "weights"), wi, jw) {
            g->n_weights++;
            if ((rc = read_weight(jw, wp, blob_len, &off, &g->weights[g->n_weights - 1], err)) != VS_OK) goto out;
        }
    }
    if (off != blob_len)
        rc = vs_fail(err, VS_ERR_MODEL, "weight shards hold %zu bytes but the manifest describes %zu", blob_len, off);
out:
    vs_free(blob);
    return rc;
}

/* Parses the graph JSON; weights come from `weights` if non-NULL, otherwise
 * from the shard files next to the JSON in `dir`. */
vs_err vs_tf_graph_parse(const char *json, size_t len, const char *dir, const void *weights,
                         size_t weights_len, vs_tf_graph *g, vs_error *err) {
    memset(g, 0, sizeof *g);
    json_error_t jerr;
    vs_err rc = VS_OK;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return vs_fail(err, VS_ERR_MODEL, "model.json: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
    json_t *nodes = json_object_get(json_object_get(root, "modelTopology"), "node");
    json_t *manifest = json_object_get(root, "weightsManifest");
    if (!json_is_array(nodes) || !json_is_array(manifest)) {
        rc = vs_fail(err, VS_ERR_MODEL, "model.json: not a TF.js graph model (no modelTopology.node or weightsManifest)");
        goto out;
    }
    g->nodes = vs_calloc(json_array_size(nodes) + 1, sizeof *g->nodes);
    if (!g->nodes) { rc = vs_fail(err, VS_ERR_NOMEM, "model.json nodes"); goto out; }
    size_t i;
    json_t *x;
    json_array_foreach(nodes, i, x) {
        g->n_nodes++;
        if ((rc = parse_node(x, &g->nodes[i], err)) != VS_OK) goto out;
    }
    if ((rc = parse_weights(manifest, dir, weights, weights_len, g, err)) != VS_OK) goto out;
    json_t *outs = json_object_get(json_object_get(root, "signature"), "outputs");
    if (json_is_object(outs) && json_object_size(outs) > 0) {
        g->outputs = vs_calloc(json_object_size(outs), sizeof(char *));
        if (!g->outputs) { rc = vs_fail(err, VS_ERR_NOMEM, "model.json outputs"); goto out; }
        const char *key;
        json_object_foreach(outs, key, x) {
            const char *nm = json_string_value(json_object_get(x, "name"));
            g->outputs[g->n_outputs] = clean_input_name(nm ? nm : key);
            if (!g->outputs[g->n_outputs]) { rc = vs_fail(err, VS_ERR_NOMEM, "model.json outputs"); goto out; }
            g->n_outputs++;
        }
    }
out:
    json_decref(root);
    if (rc != VS_OK) vs_tf_graph_free(g);
    return rc;
}

vs_err vs_tf_manifest_load(const char *path, vs_tf_graph *g, vs_error *err) {
    memset(g, 0, sizeof *g);
    uint8_t *text = NULL;
    size_t len = 0;
    vs_err rc = vs_read_file(path, VS_MODEL_JSON_MAX, &text, &len, err);
    if (rc != VS_OK) {
        if (rc == VS_ERR_IO || rc == VS_ERR_NOT_FOUND)
            rc = vs_fail(err, VS_ERR_MODEL, "%s: cannot read weights manifest (%s); run scripts/fetch-models.sh or set "
                         "VISAGE_MODELS", path, strerror(errno));
        return rc;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)text, len, 0, &jerr);
    vs_free(text);
    if (!root) return vs_fail(err, VS_ERR_MODEL, "%s: %s at line %d column %d", path, jerr.text, jerr.line, jerr.column);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    if (!json_is_array(root)) rc = vs_fail(err, VS_ERR_MODEL, "%s: not a weights manifest (a JSON array of groups)", path);
    else rc = parse_weights(root, dirname(dir), NULL, 0, g, err);
    json_decref(root);
    if (rc != VS_OK) vs_tf_graph_free(g);
    return rc;
}

void vs_tf_graph_free(vs_tf_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        vs_tf_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_inputs; j++) vs_free(n->inputs[j]);
        vs_free(n->inputs);
        vs_free(n->name);
        vs_free(n->op);
    }
    for (int i = 0; i < g->n_weights; i++) {
        vs_free(g->weights[i].name);
        vs_free(g->weights[i].f32);
        vs_free(g->weights[i].i32);
    }
    for (int i = 0; i < g->n_outputs; i++) vs_free(g->outputs[i]);
    vs_free(g->outputs);
    vs_free(g->nodes);
    vs_free(g->weights);
    memset(g, 0, sizeof *g);
}

int vs_tf_find_node(const vs_tf_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

const vs_tf_weight *vs_tf_find_weight(const vs_tf_graph *g, const char *name) {
    for (int i = 0; i < g->n_weights; i++)
        if (strcmp(g->weights[i].name, name) == 0) return &g->weights[i];
    return NULL;
}
