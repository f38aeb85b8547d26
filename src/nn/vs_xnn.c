/* vs_xnn.c - loads a model (file -> graph -> plan) and builds XNNPACK
 * runtimes from the plan.
 *
 * Threading: a vs_model is read-only after vs_model_load and may be shared by
 * any number of threads. Each vs_runtime owns its XNNPACK runtime, its
 * optional pthreadpool and its input/output buffers, and must be used by one
 * thread at a time; a worker pool gives each worker its own runtime (XNNPACK
 * packs weights per runtime, ~1x the model size each). We do not share one
 * runtime behind a lock: inference is the whole job of a worker, so a lock
 * would serialise the pool. xnn_initialize runs once, under pthread_once. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <xnnpack.h>

#include "vs_alloc.h"
#include "vs_hash.h"
#include "vs_image.h"
#include "vs_nn_internal.h"


static pthread_once_t xnn_once = PTHREAD_ONCE_INIT;
static enum xnn_status xnn_init_status = xnn_status_uninitialized;

static void xnn_init_once(void) { xnn_init_status = xnn_initialize(NULL); }

struct vs_runtime {
    const vs_model *m;
    pthreadpool_t pool;
    xnn_runtime_t rt;
    float *input;
    float *outputs[VS_NN_MAX_OUTPUTS];
    struct xnn_external_value ext[VS_NN_MAX_OUTPUTS + 1];
    uint64_t runs;  /* vs_runtime_clock */
    int64_t ns;
};

static size_t shape_count(const vs_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->dims[i];
    return n;
}

void vs_model_free(vs_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_bufs; i++) vs_free(m->bufs[i]);
    for (int i = 0; i < m->n_outputs; i++) vs_free(m->output_names[i]);
    vs_free(m->bufs);
    vs_free(m->vals);
    vs_free(m->ops);
    vs_free(m);
}

/* Common tail of every loader: lowers a parsed or built graph into a new model. */
vs_err vs_model_from_graph(vs_tf_graph *g, const vs_model_opts *opts, vs_model **out, vs_error *err) {
    vs_model *m = vs_calloc(1, sizeof *m);
    if (!m) return vs_fail(err, VS_ERR_NOMEM, "model");
    vs_err rc = vs_lower(g, opts, m, err);
    if (rc != VS_OK) {
        vs_model_free(m);
        return rc;
    }
    /* Names in ops point into the graph, which is about to go away. */
    for (int i = 0; i < m->n_ops; i++) m->ops[i].node = NULL;
    *out = m;
    return VS_OK;
}

vs_err vs_model_load_mem(const char *json, size_t json_len, const void *weights, size_t weights_len,
                         const vs_model_opts *opts, vs_model **out, vs_error *err) {
    vs_tf_graph g;
    *out = NULL;
    vs_err rc = vs_tf_graph_parse(json, json_len, ".", weights ? weights : "", weights_len, &g, err);
    if (rc != VS_OK) return rc;
    rc = vs_model_from_graph(&g, opts, out, err);
    vs_tf_graph_free(&g);
    return rc;
}

vs_err vs_model_load(const char *json_path, const vs_model_opts *opts, vs_model **out, vs_error *err) {
    uint8_t *json = NULL;
    size_t len = 0;
    *out = NULL;
    vs_err rc = vs_read_file(json_path, VS_MODEL_JSON_MAX, &json, &len, err);
    if (rc != VS_OK) {
        if (rc == VS_ERR_IO || rc == VS_ERR_NOT_FOUND)
            rc = vs_fail(err, VS_ERR_MODEL, "%s: cannot read model (%s); run scripts/fetch-models.sh or set VISAGE_MODELS",
                         json_path, strerror(errno));
        return rc;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", json_path);
    vs_tf_graph g;
    rc = vs_tf_graph_parse((const char *)json, len, dirname(dir), NULL, 0, &g, err);
    vs_free(json);
    if (rc != VS_OK) {
        if (err && rc == VS_ERR_MODEL && strstr(err->msg, json_path) == NULL) {
            char msg[2 * VS_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s: %s", json_path, err->msg);
            memcpy(err->msg, msg, sizeof err->msg - 1);
            err->msg[sizeof err->msg - 1] = '\0';
        }
        return rc;
    }
    rc = vs_model_from_graph(&g, opts, out, err);
    vs_tf_graph_free(&g);
    return rc;
}

vs_shape vs_model_input_shape(const vs_model *m) { return m->vals[m->input].shape; }
int vs_model_output_count(const vs_model *m) { return m->n_outputs; }
vs_shape vs_model_output_shape(const vs_model *m, int i) { return m->vals[m->outputs[i]].shape; }
const char *vs_model_output_name(const vs_model *m, int i) { return m->output_names[i]; }
int vs_model_op_count(const vs_model *m) { return m->n_ops; }

/* Declares value v in the subgraph (constants with their data). */
static enum xnn_status define_value(xnn_subgraph_t sg, const vs_model *m, int v, uint32_t *ids) {
    const vs_val *val = &m->vals[v];
    uint32_t ext = XNN_INVALID_VALUE_ID, flags = 0;
    if (val->is_input) { ext = 0; flags = XNN_VALUE_FLAG_EXTERNAL_INPUT; }
    else if (val->output_index >= 0) { ext = 1 + (uint32_t)val->output_index; flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT; }
    return xnn_define_tensor_value(sg, xnn_datatype_fp32, (size_t)val->shape.ndim, val->shape.dims, val->data, ext,
                                   flags, &ids[v]);
}

/* Adds one plan op to the subgraph. */
static enum xnn_status define_op(xnn_subgraph_t sg, const vs_model *m, const vs_op *op, const uint32_t *ids,
                                 uint32_t *tmp_ids) {
    uint32_t a = ids[op->in[0]], b = op->in[1] >= 0 ? ids[op->in[1]] : XNN_INVALID_VALUE_ID, o = ids[op->out];
    float lo = op->out_min, hi = op->out_max;
    enum xnn_status st;
    switch (op->kind) {
    case VS_OP_CONV:
    case VS_OP_DWCONV: {
        uint32_t wid, bid = XNN_INVALID_VALUE_ID;
        int dw = op->kind == VS_OP_DWCONV;
        size_t wd[4] = {dw ? 1 : (size_t)op->cout, (size_t)op->kh, (size_t)op->kw, dw ? (size_t)op->cout : (size_t)op->cin};
        size_t bd[1] = {(size_t)op->cout};
        st = xnn_define_tensor_value(sg, xnn_datatype_fp32, 4, wd, op->w, XNN_INVALID_VALUE_ID, 0, &wid);
        if (st == xnn_status_success && op->b)
            st = xnn_define_tensor_value(sg, xnn_datatype_fp32, 1, bd, op->b, XNN_INVALID_VALUE_ID, 0, &bid);
        if (st != xnn_status_success) return st;
        if (dw)
            return xnn_define_depthwise_convolution_2d(sg, (uint32_t)op->pad[0], (uint32_t)op->pad[1], (uint32_t)op->pad[2],
                                                       (uint32_t)op->pad[3], (uint32_t)op->kh, (uint32_t)op->kw,
                                                       (uint32_t)op->sh, (uint32_t)op->sw, (uint32_t)op->dh,
                                                       (uint32_t)op->dw, (uint32_t)op->mult, (size_t)op->cin, lo, hi,
                                                       a, wid, bid, o, 0);
        return xnn_define_convolution_2d(sg, (uint32_t)op->pad[0], (uint32_t)op->pad[1], (uint32_t)op->pad[2],
                                         (uint32_t)op->pad[3], (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                                         (uint32_t)op->sw, (uint32_t)op->dh, (uint32_t)op->dw, 1, (size_t)op->cin,
                                         (size_t)op->cout, lo, hi, a, wid, bid, o, 0);
    }
    case VS_OP_FC: {
        uint32_t wid, bid = XNN_INVALID_VALUE_ID;
        size_t wd[2] = {(size_t)op->cout, (size_t)op->cin}, bd[1] = {(size_t)op->cout};
        st = xnn_define_tensor_value(sg, xnn_datatype_fp32, 2, wd, op->w, XNN_INVALID_VALUE_ID, 0, &wid);
        if (st == xnn_status_success && op->b)
            st = xnn_define_tensor_value(sg, xnn_datatype_fp32, 1, bd, op->b, XNN_INVALID_VALUE_ID, 0, &bid);
        if (st != xnn_status_success) return st;
        return xnn_define_fully_connected(sg, lo, hi, a, wid, bid, o, 0);
    }
    case VS_OP_ADD: return xnn_define_add2(sg, lo, hi, a, b, o, 0);
    case VS_OP_SUB: return xnn_define_subtract(sg, lo, hi, a, b, o, 0);
    case VS_OP_MUL: return xnn_define_multiply2(sg, lo, hi, a, b, o, 0);
    case VS_OP_DIV: return xnn_define_divide(sg, lo, hi, a, b, o, 0);
    case VS_OP_MAX:
    case VS_OP_MIN:
    case VS_OP_ABS:
    case VS_OP_SQUARE:
    case VS_OP_SQRT:
    case VS_OP_SIGMOID:
    case VS_OP_SOFTMAX:
    case VS_OP_PRELU:
    case VS_OP_NEG:
    case VS_OP_RESHAPE: {
        /* These XNNPACK nodes have no fused clamp: write to a temporary and
         * clamp into the real output when the plan fused one here. */
        int clamp = lo != -INFINITY || hi != INFINITY;
        uint32_t t = o;
        if (clamp) {
            const vs_shape *s = &m->vals[op->out].shape;
            st = xnn_define_tensor_value(sg, xnn_datatype_fp32, (size_t)s->ndim, s->dims, NULL, XNN_INVALID_VALUE_ID, 0, &t);
            if (st != xnn_status_success) return st;
            *tmp_ids = t;
        }
        switch (op->kind) {
        case VS_OP_MAX: st = xnn_define_maximum2(sg, a, b, t, 0); break;
        case VS_OP_MIN: st = xnn_define_minimum2(sg, a, b, t, 0); break;
        case VS_OP_ABS: st = xnn_define_abs(sg, a, t, 0); break;
        case VS_OP_SQUARE: st = xnn_define_square(sg, a, t, 0); break;
        case VS_OP_SQRT: st = xnn_define_square_root(sg, a, t, 0); break;
        case VS_OP_SIGMOID: st = xnn_define_sigmoid(sg, a, t, 0); break;
        case VS_OP_SOFTMAX: st = xnn_define_softmax(sg, a, t, 0); break;
        case VS_OP_PRELU: st = xnn_define_prelu(sg, a, b, t, 0); break;
        case VS_OP_NEG: st = xnn_define_negate(sg, a, t, 0); break;
        default: {
            const vs_shape *s = &m->vals[op->out].shape;
            st = xnn_define_static_reshape(sg, (size_t)s->ndim, s->dims, a, t, 0);
        }
        }
        if (st != xnn_status_success || !clamp) return st;
        return xnn_define_clamp(sg, lo, hi, t, o, 0);
    }
    case VS_OP_CLAMP: return xnn_define_clamp(sg, lo, hi, a, o, 0);
    case VS_OP_MAXPOOL:
        return xnn_define_max_pooling_2d(sg, (uint32_t)op->pad[0], (uint32_t)op->pad[1], (uint32_t)op->pad[2],
                                         (uint32_t)op->pad[3], (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                                         (uint32_t)op->sw, 1, 1, lo, hi, a, o, 0);
    case VS_OP_GAP: return xnn_define_global_average_pooling_2d(sg, lo, hi, a, o, 0);
    case VS_OP_PAD: return xnn_define_static_constant_pad(sg, op->pre_pad, op->post_pad, op->out_min, a, o, 0);
    }
    return xnn_status_unsupported_parameter;
}

static const char *op_kind_name(vs_op_kind k) {
    static const char *names[] = {"conv", "dwconv", "fc", "add", "sub", "mul", "div", "max", "min", "clamp",
                                  "abs", "square", "sqrt", "sigmoid", "softmax", "prelu", "maxpool", "gap", "pad",
                                  "reshape", "neg"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* Builds the XNNPACK subgraph of the plan and a runtime from it. */
static vs_err build_runtime(vs_runtime *r, vs_error *err) {
    const vs_model *m = r->m;
    xnn_subgraph_t sg = NULL;
    uint32_t *ids = vs_malloc(sizeof(uint32_t) * (size_t)m->n_vals);
    vs_err rc = VS_OK;
    if (!ids) return vs_fail(err, VS_ERR_NOMEM, "runtime");
    enum xnn_status st = xnn_create_subgraph(1 + (uint32_t)m->n_outputs, 0, &sg);
    if (st != xnn_status_success) { rc = vs_fail(err, VS_ERR_BACKEND, "xnn_create_subgraph: status %d", st); goto out; }
    for (int v = 0; v < m->n_vals; v++) {
        /* Values nothing reads or writes (folded aliases) are skipped. */
        ids[v] = XNN_INVALID_VALUE_ID;
        if (!m->vals[v].is_input && m->vals[v].producer < 0 && !m->vals[v].data) continue;
        if ((st = define_value(sg, m, v, ids)) != xnn_status_success) {
            rc = vs_fail(err, VS_ERR_BACKEND, "xnn_define_tensor_value %d: status %d", v, st);
            goto out;
        }
    }
    for (int i = 0; i < m->n_ops; i++) {
        uint32_t tmp = XNN_INVALID_VALUE_ID;
        if ((st = define_op(sg, m, &m->ops[i], ids, &tmp)) != xnn_status_success) {
            rc = vs_fail(err, VS_ERR_BACKEND, "XNNPACK rejected op %d (%s): status %d", i, op_kind_name(m->ops[i].kind), st);
            goto out;
        }
    }
    st = xnn_create_runtime_v2(sg, r->pool, 0, &r->rt);
    if (st != xnn_status_success) rc = vs_fail(err, VS_ERR_BACKEND, "xnn_create_runtime_v2: status %d", st);
out:
    if (sg) xnn_delete_subgraph(sg);
    vs_free(ids);
    return rc;
}

vs_err vs_runtime_new(const vs_model *m, int threads, vs_runtime **out, vs_error *err) {
    *out = NULL;
    pthread_once(&xnn_once, xnn_init_once);
    if (xnn_init_status != xnn_status_success)
        return vs_fail(err, VS_ERR_BACKEND, "xnn_initialize failed (status %d): CPU not supported?", xnn_init_status);
    vs_runtime *r = vs_calloc(1, sizeof *r);
    if (!r) return vs_fail(err, VS_ERR_NOMEM, "runtime");
    r->m = m;
    vs_err rc = VS_OK;
    if (threads > 1 && !(r->pool = pthreadpool_create((size_t)threads))) {
        rc = vs_fail(err, VS_ERR_BACKEND, "pthreadpool_create(%d) failed", threads);
        goto fail;
    }
    r->input = vs_calloc(shape_count(&m->vals[m->input].shape) + 16, sizeof(float));
    if (!r->input) { rc = vs_fail(err, VS_ERR_NOMEM, "runtime input"); goto fail; }
    r->ext[0] = (struct xnn_external_value){0, r->input};
    for (int i = 0; i < m->n_outputs; i++) {
        /* XNNPACK may read/write a little past the end: pad every buffer. */
        r->outputs[i] = vs_calloc(shape_count(&m->vals[m->outputs[i]].shape) + 16, sizeof(float));
        if (!r->outputs[i]) { rc = vs_fail(err, VS_ERR_NOMEM, "runtime output"); goto fail; }
        r->ext[1 + i] = (struct xnn_external_value){1 + (uint32_t)i, r->outputs[i]};
    }
    if ((rc = build_runtime(r, err)) != VS_OK) goto fail;
    enum xnn_status st = xnn_setup_runtime(r->rt, 1 + (size_t)m->n_outputs, r->ext);
    if (st != xnn_status_success) { rc = vs_fail(err, VS_ERR_BACKEND, "xnn_setup_runtime: status %d", st); goto fail; }
    *out = r;
    return VS_OK;
fail:
    vs_runtime_free(r);
    return rc;
}

void vs_runtime_free(vs_runtime *r) {
    if (!r) return;
    if (r->rt) xnn_delete_runtime(r->rt);
    if (r->pool) pthreadpool_destroy(r->pool);
    vs_free(r->input);
    for (int i = 0; i < VS_NN_MAX_OUTPUTS; i++) vs_free(r->outputs[i]);
    vs_free(r);
}

const vs_model *vs_runtime_model(const vs_runtime *r) { return r->m; }
float *vs_runtime_input(vs_runtime *r) { return r->input; }

vs_err vs_runtime_run(vs_runtime *r, vs_error *err) {
    int64_t t0 = vs_now_ns();
    enum xnn_status st = xnn_invoke_runtime(r->rt);
    r->ns += vs_now_ns() - t0;
    r->runs++;
    if (st != xnn_status_success) return vs_fail(err, VS_ERR_BACKEND, "xnn_invoke_runtime: status %d", st);
    return VS_OK;
}

void vs_runtime_clock(const vs_runtime *r, uint64_t *runs, int64_t *ns) {
    *runs = r->runs;
    *ns = r->ns;
}

const float *vs_runtime_output(const vs_runtime *r, int i) {
    return (i >= 0 && i < r->m->n_outputs) ? r->outputs[i] : NULL;
}
