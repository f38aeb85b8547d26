/* vs_nn_build.c - graphs written in C for models shipped as weights only.
 *
 * face-api ships its networks as a TF.js weights manifest and keeps the layer
 * order in its JavaScript. A model file of ours reads the weights with
 * vs_nn_weight and writes the layers with the calls below; they append nodes
 * to a vs_tf_graph exactly as model.json would have described them, so the
 * same lowering (shape inference, activation fusion) and the same XNNPACK
 * executor run them. Errors are sticky: the first one is kept, every later
 * call returns -1, and vs_nn_builder_finish reports it. */
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_nn_internal.h"

struct vs_nn_builder {
    vs_tf_graph g;
    int cap_nodes, cap_weights;
    int n_scratch, cap_scratch;
    float **scratch;    /* vs_nn_scratch buffers */
    vs_err rc;          /* first failure, VS_OK while none */
    vs_error err;
    char path[1024];    /* the manifest, for messages */
};

static int fail(vs_nn_builder *b, vs_err rc, const char *what) {
    if (b->rc == VS_OK) {
        b->rc = rc;
        vs_fail(&b->err, rc, "%s: %s", b->path, what);
    }
    return -1;
}

vs_err vs_nn_builder_open(const char *manifest_path, vs_nn_builder **out, vs_error *err) {
    *out = NULL;
    vs_nn_builder *b = vs_calloc(1, sizeof *b);
    if (!b) return vs_fail(err, VS_ERR_NOMEM, "model builder");
    snprintf(b->path, sizeof b->path, "%s", manifest_path);
    vs_err rc = vs_tf_manifest_load(manifest_path, &b->g, err);
    if (rc != VS_OK) {
        vs_free(b);
        return rc;
    }
    b->cap_weights = b->g.n_weights + 1; /* the manifest loader allocated one spare */
    *out = b;
    return VS_OK;
}

void vs_nn_builder_free(vs_nn_builder *b) {
    if (!b) return;
    vs_tf_graph_free(&b->g);
    for (int i = 0; i < b->n_scratch; i++) vs_free(b->scratch[i]);
    vs_free(b->scratch);
    vs_free(b);
}

const float *vs_nn_weight(vs_nn_builder *b, const char *name, int ndim, const int *dims) {
    if (b->rc != VS_OK) return NULL;
    const vs_tf_weight *w = vs_tf_find_weight(&b->g, name);
    char msg[256];
    if (!w || w->is_int || !w->f32) {
        snprintf(msg, sizeof msg, "weight %s is missing or not float", name);
        fail(b, VS_ERR_MODEL, msg);
        return NULL;
    }
    int ok = w->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = w->dims[i] == dims[i];
    if (!ok) {
        snprintf(msg, sizeof msg, "weight %s does not have the expected shape", name);
        fail(b, VS_ERR_MODEL, msg);
        return NULL;
    }
    return w->f32;
}

float *vs_nn_scratch(vs_nn_builder *b, size_t n) {
    if (b->rc != VS_OK) return NULL;
    if (b->n_scratch == b->cap_scratch) {
        int cap = b->cap_scratch ? b->cap_scratch * 2 : 16;
        float **ns = vs_realloc(b->scratch, (size_t)cap * sizeof *ns);
        if (!ns) {
            fail(b, VS_ERR_NOMEM, "scratch weights");
            return NULL;
        }
        b->scratch = ns;
        b->cap_scratch = cap;
    }
    float *p = vs_calloc(n ? n : 1, sizeof(float));
    if (!p) fail(b, VS_ERR_NOMEM, "scratch weights");
    else b->scratch[b->n_scratch++] = p;
    return p;
}

/* Appends a node named "n<index>" of op with the given inputs (node ids). */
static int add_node(vs_nn_builder *b, const char *op, int n_in, const int *in) {
    if (b->rc != VS_OK) return -1;
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0 || in[i] >= b->g.n_nodes) return fail(b, VS_ERR_INVALID_ARG, "a layer's input is not a node");
    if (b->g.n_nodes == b->cap_nodes) {
        int cap = b->cap_nodes ? b->cap_nodes * 2 : 64;
        vs_tf_node *nn = vs_realloc(b->g.nodes, (size_t)cap * sizeof *nn);
        if (!nn) return fail(b, VS_ERR_NOMEM, "graph nodes");
        b->g.nodes = nn;
        b->cap_nodes = cap;
    }
    int id = b->g.n_nodes;
    vs_tf_node *n = &b->g.nodes[id];
    memset(n, 0, sizeof *n);
    char name[32];
    snprintf(name, sizeof name, "n%d", id);
    n->name = vs_strdup(name);
    n->op = vs_strdup(op);
    n->inputs = vs_calloc((size_t)(n_in ? n_in : 1), sizeof(char *));
    b->g.n_nodes++; /* owned by the graph from here, freed with it */
    if (!n->name || !n->op || !n->inputs) return fail(b, VS_ERR_NOMEM, "graph node");
    for (int i = 0; i < n_in; i++) {
        n->inputs[i] = vs_strdup(b->g.nodes[in[i]].name);
        if (!n->inputs[i]) return fail(b, VS_ERR_NOMEM, "graph node");
        n->n_inputs++;
    }
    return id;
}

/* A Const node and its weight entry; exactly one of f32 / i32 is copied in. */
static int add_const(vs_nn_builder *b, const float *f32, const int32_t *i32, int ndim, const int *dims) {
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)dims[i];
    int id = add_node(b, "Const", 0, NULL);
    if (id < 0) return -1;
    if (b->g.n_weights == b->cap_weights) {
        int cap = b->cap_weights * 2;
        vs_tf_weight *nw = vs_realloc(b->g.weights, (size_t)cap * sizeof *nw);
        if (!nw) return fail(b, VS_ERR_NOMEM, "graph constants");
        b->g.weights = nw;
        b->cap_weights = cap;
    }
    vs_tf_weight *w = &b->g.weights[b->g.n_weights];
    memset(w, 0, sizeof *w);
    b->g.n_weights++;
    w->name = vs_strdup(b->g.nodes[id].name);
    if (f32) w->f32 = vs_malloc(count * sizeof(float));
    else w->i32 = vs_malloc(count * sizeof(int32_t));
    if (!w->name || (!w->f32 && !w->i32)) return fail(b, VS_ERR_NOMEM, "graph constant");
    if (f32) memcpy(w->f32, f32, count * sizeof(float));
    else memcpy(w->i32, i32, count * sizeof(int32_t));
    w->is_int = i32 != NULL;
    w->ndim = ndim;
    for (int i = 0; i < ndim; i++) w->dims[i] = dims[i];
    w->count = count;
    return id;
}

int vs_nn_input(vs_nn_builder *b, int h, int w, int c) {
    int id = add_node(b, "Placeholder", 0, NULL);
    if (id < 0) return -1;
    vs_tf_node *n = &b->g.nodes[id];
    n->shape_ndim = 4;
    n->shape[0] = 1;
    n->shape[1] = h;
    n->shape[2] = w;
    n->shape[3] = c;
    return id;
}

int vs_nn_conv(vs_nn_builder *b, int x, const float *hwio, const float *bias, int kh, int kw, int cin, int cout,
               int stride, int same, int relu) {
    if (!hwio) return fail(b, VS_ERR_INVALID_ARG, "conv without weights");
    int fd[4] = {kh, kw, cin, cout}, bd[1] = {cout};
    int f = add_const(b, hwio, NULL, 4, fd);
    int bi = bias ? add_const(b, bias, NULL, 1, bd) : -1;
    int ins[3] = {x, f, bi};
    int id = add_node(b, "_FusedConv2D", bias ? 3 : 2, ins);
    if (id < 0) return -1;
    vs_tf_node *n = &b->g.nodes[id];
    n->has_strides = 1;
    n->strides[0] = n->strides[3] = 1;
    n->strides[1] = n->strides[2] = stride;
    snprintf(n->padding, sizeof n->padding, "%s", same ? "SAME" : "VALID");
    if (bias) snprintf(n->fused[n->n_fused++], sizeof n->fused[0], "BiasAdd");
    if (relu) snprintf(n->fused[n->n_fused++], sizeof n->fused[0], "Relu");
    return id;
}

int vs_nn_relu(vs_nn_builder *b, int x) { return add_node(b, "Relu", 1, &x); }

int vs_nn_add(vs_nn_builder *b, int x, int y, int relu) {
    int ins[2] = {x, y};
    int id = add_node(b, "AddV2", 2, ins);
    return relu && id >= 0 ? vs_nn_relu(b, id) : id;
}

int vs_nn_maxpool(vs_nn_builder *b, int x, int k, int stride, int same) {
    int id = add_node(b, "MaxPool", 1, &x);
    if (id < 0) return -1;
    vs_tf_node *n = &b->g.nodes[id];
    n->has_ksize = n->has_strides = 1;
    n->ksize[0] = n->ksize[3] = n->strides[0] = n->strides[3] = 1;
    n->ksize[1] = n->ksize[2] = k;
    n->strides[1] = n->strides[2] = stride;
    snprintf(n->padding, sizeof n->padding, "%s", same ? "SAME" : "VALID");
    return id;
}

int vs_nn_pad(vs_nn_builder *b, int x, int top, int bottom, int left, int right) {
    const int32_t pads[8] = {0, 0, top, bottom, left, right, 0, 0};
    int pd[2] = {4, 2};
    int ins[2] = {x, add_const(b, NULL, pads, 2, pd)};
    return add_node(b, "Pad", 2, ins);
}

int vs_nn_mean_hw(vs_nn_builder *b, int x) {
    const int32_t axes[2] = {1, 2};
    int ad[1] = {2};
    int ins[2] = {x, add_const(b, NULL, axes, 1, ad)};
    return add_node(b, "Mean", 2, ins);
}

int vs_nn_matmul(vs_nn_builder *b, int x, const float *w_io, int cin, int cout) {
    if (!w_io) return fail(b, VS_ERR_INVALID_ARG, "matmul without weights");
    int wd[2] = {cin, cout};
    int wc = add_const(b, w_io, NULL, 2, wd);
    int ins[2] = {x, wc};
    return add_node(b, "MatMul", 2, ins);
}

vs_err vs_nn_builder_finish(vs_nn_builder *b, int output, vs_model **out, vs_error *err) {
    *out = NULL;
    if (b->rc == VS_OK && (output < 0 || output >= b->g.n_nodes)) fail(b, VS_ERR_INVALID_ARG, "no output node");
    if (b->rc != VS_OK) {
        if (err) *err = b->err;
        return b->rc;
    }
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {b->g.nodes[output].name}};
    return vs_model_from_graph(&b->g, &o, out, err);
}
