/* vs_lower.c - turns the TF.js graph into the plan XNNPACK runs.
 *
 * Walks back from the requested outputs (so unused heads cost nothing),
 * infers every static shape, converts weights to XNNPACK layouts, and folds
 * what a frozen Keras graph leaves unfused: batch-norm Mul/Add after a
 * convolution go into its weights and bias; Relu / Minimum(6) / Maximum(0)
 * chains become the producer's output clamp. Every op it cannot lower fails
 * with the op and node named, never a crash. */
#include <math.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_nn_internal.h"

typedef struct lower_ctx {
    const vs_tf_graph *g;
    vs_model *m;
    vs_error *err;
    const vs_model_opts *opts; /* never NULL */
    int batch;
    int *node_val;     /* TF node -> value id, -1 = not lowered yet */
    int *consumers;    /* TF node -> number of data consumers (+1 if output) */
    int *visiting;     /* cycle guard */
} lower_ctx;

static vs_err value_of(lower_ctx *c, const char *name, int *vid);
static vs_err value_of_any(lower_ctx *c, const char *name, int *vid);

/* ---- small helpers ---- */

static size_t shape_count(const vs_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->dims[i];
    return n;
}

/* Gives the model a float buffer of n elements (zeroed); the model frees it. */
static float *model_buf(vs_model *m, size_t n) {
    if (m->n_bufs == m->cap_bufs) {
        int cap = m->cap_bufs ? m->cap_bufs * 2 : 64;
        float **nb = vs_realloc(m->bufs, (size_t)cap * sizeof *nb);
        if (!nb) return NULL;
        m->bufs = nb;
        m->cap_bufs = cap;
    }
    float *b = vs_calloc(n ? n : 1, sizeof(float));
    if (b) m->bufs[m->n_bufs++] = b;
    return b;
}

static int new_val(lower_ctx *c, const vs_shape *shape, float *data) {
    vs_model *m = c->m;
    if (m->n_vals == m->cap_vals) {
        int cap = m->cap_vals ? m->cap_vals * 2 : 128;
        vs_val *nv = vs_realloc(m->vals, (size_t)cap * sizeof *nv);
        if (!nv) return -1;
        m->vals = nv;
        m->cap_vals = cap;
    }
    vs_val *v = &m->vals[m->n_vals];
    memset(v, 0, sizeof *v);
    v->shape = *shape;
    v->data = data;
    v->producer = -1;
    v->output_index = -1;
    return m->n_vals++;
}

/* Appends an op producing a new value of `shape`; returns the op index. */
static int new_op(lower_ctx *c, vs_op_kind kind, const vs_tf_node *n, int in0, int in1,
                  const vs_shape *shape) {
    vs_model *m = c->m;
    int out = new_val(c, shape, NULL);
    if (out < 0) return -1;
    if (m->n_ops == m->cap_ops) {
        int cap = m->cap_ops ? m->cap_ops * 2 : 128;
        vs_op *no = vs_realloc(m->ops, (size_t)cap * sizeof *no);
        if (!no) return -1;
        m->ops = no;
        m->cap_ops = cap;
    }
    vs_op *op = &m->ops[m->n_ops];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->node = n->name;
    op->in[0] = in0;
    op->in[1] = in1;
    op->out = out;
    op->out_min = -INFINITY;
    op->out_max = INFINITY;
    m->vals[out].producer = m->n_ops;
    return m->n_ops++;
}

/* The Const weight feeding input i of node n (through Identity), or NULL. */
static const vs_tf_weight *const_input(lower_ctx *c, const vs_tf_node *n, int i) {
    if (i >= n->n_inputs) return NULL;
    const char *name = n->inputs[i];
    for (int hops = 0; hops < 8; hops++) {
        int k = vs_tf_find_node(c->g, name);
        if (k < 0) return NULL;
        const vs_tf_node *p = &c->g->nodes[k];
        if (strcmp(p->op, "Const") == 0) return vs_tf_find_weight(c->g, p->name);
        if (strcmp(p->op, "Identity") != 0 || p->n_inputs < 1) return NULL;
        name = p->inputs[0];
    }
    return NULL;
}

static vs_err need_inputs(lower_ctx *c, const vs_tf_node *n, int k) {
    if (n->n_inputs < k)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s (%s): expects %d inputs, has %d", n->name, n->op, k,
                       n->n_inputs);
    return VS_OK;
}

/* Output size of one spatial dim and its (before, after) padding. */
static vs_err conv_dim(lower_ctx *c, const vs_tf_node *n, int dim, size_t in, int k, int s, int d,
                       size_t *out, int *pb, int *pa) {
    int eff = (k - 1) * d + 1;
    if (strcmp(n->padding, "SAME") == 0) {
        *out = (in + (size_t)s - 1) / (size_t)s;
        long total = (long)((*out - 1) * (size_t)s) + eff - (long)in;
        if (total < 0) total = 0;
        *pb = (int)(total / 2);
        *pa = (int)(total - total / 2);
    } else if (strcmp(n->padding, "VALID") == 0 || strcmp(n->padding, "EXPLICIT") == 0) {
        *pb = *pa = 0;
        if (n->padding[0] == 'E') {
            *pb = n->explicit_pad[2 * dim];
            *pa = n->explicit_pad[2 * dim + 1];
        }
        long span = (long)in + *pb + *pa - eff;
        if (span < 0) return vs_fail(c->err, VS_ERR_MODEL, "node %s: window larger than input", n->name);
        *out = (size_t)(span / s + 1);
    } else {
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): padding '%s'", n->name, n->op, n->padding);
    }
    return VS_OK;
}

/* Applies a clamp [lo, hi] to value v: fused into its producer when that
 * producer's result is used only here, else as a separate op. */
static int new_concat_val(lower_ctx *c, const vs_shape *shape, const int *parts, int n);

static vs_err apply_clamp(lower_ctx *c, const vs_tf_node *n, int in_node_uses, int v, float lo, float hi,
                          int *vid) {
    vs_model *m = c->m;
    if (m->vals[v].n_parts > 0) {
        /* Part by part; a part may take the clamp into its producer only when
         * nothing but this concatenation reads it, and the concatenation
         * itself is read only here. */
        vs_val cat = m->vals[v];
        int parts[VS_NN_MAX_PARTS];
        for (int k = 0; k < cat.n_parts; k++) {
            int uses = in_node_uses == 1 && m->vals[cat.parts[k]].private_part ? 1 : 2;
            vs_err rc = apply_clamp(c, n, uses, cat.parts[k], lo, hi, &parts[k]);
            if (rc != VS_OK) return rc;
            m->vals[parts[k]].private_part = 1;
        }
        *vid = new_concat_val(c, &cat.shape, parts, cat.n_parts);
        return *vid < 0 ? vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name) : VS_OK;
    }
    int p = m->vals[v].producer;
    if (p >= 0 && in_node_uses == 1 && m->vals[v].output_index < 0 && m->ops[p].kind != VS_OP_RESHAPE &&
        m->ops[p].kind != VS_OP_PAD && m->ops[p].kind != VS_OP_SOFTMAX && m->ops[p].kind != VS_OP_SIGMOID &&
        m->ops[p].kind != VS_OP_ABS && m->ops[p].kind != VS_OP_SQUARE && m->ops[p].kind != VS_OP_SQRT &&
        m->ops[p].kind != VS_OP_PRELU) {
        vs_op *op = &m->ops[p];
        op->out_min = fminf(fmaxf(op->out_min, lo), hi);
        op->out_max = fmaxf(fminf(op->out_max, hi), lo);
        *vid = v;
        return VS_OK;
    }
    int o = new_op(c, VS_OP_CLAMP, n, v, -1, &m->vals[v].shape);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    m->ops[o].out_min = lo;
    m->ops[o].out_max = hi;
    *vid = m->ops[o].out;
    return VS_OK;
}

/* The node that really produces `name`'s data: Identity chains are followed so
 * that use counts are per tensor, not per alias. */
static int resolve_node(const vs_tf_graph *g, const char *name) {
    int k = vs_tf_find_node(g, name);
    for (int hops = 0; k >= 0 && hops < 16; hops++) {
        const vs_tf_node *n = &g->nodes[k];
        if ((strcmp(n->op, "Identity") && strcmp(n->op, "StopGradient")) || n->n_inputs < 1) break;
        k = vs_tf_find_node(g, n->inputs[0]);
    }
    return k;
}

static int node_uses(lower_ctx *c, const char *name) {
    int k = resolve_node(c->g, name);
    return k < 0 ? 0 : c->consumers[k];
}

/* ---- convolutions and matmul ---- */

/* Applies the fused_ops list of a _Fused* node: the bias goes to op
 * bias_op, activations to op act_op (the same op, unless a convolution was
 * split over the parts of a concatenation: then the first part's convolution
 * and the last add). */
static vs_err apply_fused(lower_ctx *c, const vs_tf_node *n, int bias_op, int act_op, int *vid) {
    vs_model *m = c->m;
    int op_idx = act_op;
    int v = m->ops[op_idx].out;
    size_t cout = m->vals[v].shape.dims[m->vals[v].shape.ndim - 1];
    int arg = 2;
    for (int f = 0; f < n->n_fused; f++) {
        const char *fo = n->fused[f];
        if (strcmp(fo, "BiasAdd") == 0) {
            const vs_tf_weight *b = const_input(c, n, arg++);
            if (!b || b->is_int || b->count != cout)
                return vs_fail(c->err, VS_ERR_MODEL, "node %s: bias is not a float constant of %zu", n->name, cout);
            float *bb = model_buf(m, cout);
            if (!bb) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
            memcpy(bb, b->f32, cout * sizeof(float));
            m->ops[bias_op].b = bb;
        } else if (strcmp(fo, "Relu") == 0) {
            m->ops[op_idx].out_min = 0;
        } else if (strcmp(fo, "Relu6") == 0) {
            m->ops[op_idx].out_min = 0;
            m->ops[op_idx].out_max = 6;
        } else if (strcmp(fo, "Prelu") == 0) {
            const vs_tf_weight *a = const_input(c, n, arg++);
            if (!a || a->is_int || a->count != cout)
                return vs_fail(c->err, VS_ERR_MODEL, "node %s: prelu alpha is not a float constant of %zu", n->name, cout);
            float *ab = model_buf(m, cout);
            if (!ab) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
            memcpy(ab, a->f32, cout * sizeof(float));
            vs_shape as = {1, {cout}};
            int av = new_val(c, &as, ab);
            int o = new_op(c, VS_OP_PRELU, n, v, av, &m->vals[v].shape);
            if (av < 0 || o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
            v = m->ops[o].out;
        } else {
            return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): fused op %s is not supported", n->name, n->op, fo);
        }
    }
    *vid = v;
    return VS_OK;
}

/* Geometry of one convolution node, shared by the parts of a split one. */
typedef struct conv_geom {
    int kh, kw, sh, sw, dh, dw, pad[4]; /* pad: top, right, bottom, left */
    vs_shape out;
} conv_geom;

/* Appends a convolution of value x reading input channels [ci0, ci1) of
 * filter f (TF HWIO, or [KH,KW,Cin,mult] when depthwise); returns the op. */
static int conv_op(lower_ctx *c, const vs_tf_node *n, int x, const vs_tf_weight *f, int ci0, int ci1, int depthwise,
                   const conv_geom *gm) {
    vs_model *m = c->m;
    int kh = f->dims[0], kw = f->dims[1], fcin = f->dims[2], fco = f->dims[3], cin = ci1 - ci0;
    int o = new_op(c, depthwise ? VS_OP_DWCONV : VS_OP_CONV, n, x, -1, &gm->out);
    float *w = o < 0 ? NULL : model_buf(m, (size_t)kh * kw * cin * fco);
    if (!w) return -1;
    vs_op *op = &m->ops[o];
    op->kh = kh; op->kw = kw; op->sh = gm->sh; op->sw = gm->sw; op->dh = gm->dh; op->dw = gm->dw;
    memcpy(op->pad, gm->pad, sizeof op->pad);
    op->cin = cin;
    op->cout = (int)gm->out.dims[3];
    op->mult = depthwise ? fco : 1;
    if (depthwise) {
        /* TF [KH,KW,Cin,mult] is XNNPACK's [1,KH,KW,Cin*mult] in memory. */
        memcpy(w, f->f32, f->count * sizeof(float));
    } else {
        /* TF HWIO -> XNNPACK OHWI. */
        for (int y = 0; y < kh; y++)
            for (int xx = 0; xx < kw; xx++)
                for (int ci = 0; ci < cin; ci++)
                    for (int co = 0; co < fco; co++)
                        w[(((size_t)co * kh + y) * kw + xx) * cin + ci] =
                            f->f32[(((size_t)y * kw + xx) * fcin + ci0 + ci) * fco + co];
    }
    op->w = w;
    return o;
}

/* A convolution of a concatenation is the sum of the convolutions of its
 * parts with the matching slices of the filter: exact up to the order of the
 * additions. The bias goes to the first part, activations to the last add. */
static vs_err conv_of_parts(lower_ctx *c, const vs_tf_node *n, int x, const vs_tf_weight *f, const conv_geom *gm,
                            int *vid) {
    vs_model *m = c->m;
    vs_val cat = m->vals[x]; /* a copy: new values may move the array */
    int first = -1, acc = -1, ci = 0;
    for (int k = 0; k < cat.n_parts; k++) {
        int part = cat.parts[k], ck = (int)m->vals[part].shape.dims[3];
        int o = conv_op(c, n, part, f, ci, ci + ck, 0, gm);
        if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        ci += ck;
        if (first < 0) {
            first = o;
            acc = m->ops[o].out;
            continue;
        }
        int a = new_op(c, VS_OP_ADD, n, acc, m->ops[o].out, &gm->out);
        if (a < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        acc = m->ops[a].out;
    }
    return apply_fused(c, n, first, m->vals[acc].producer, vid);
}

static vs_err lower_conv(lower_ctx *c, const vs_tf_node *n, int depthwise, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 2)) != VS_OK) return rc;
    rc = depthwise ? value_of(c, n->inputs[0], &x) : value_of_any(c, n->inputs[0], &x);
    if (rc != VS_OK) return rc;
    vs_model *m = c->m;
    const vs_tf_weight *f = const_input(c, n, 1);
    vs_shape in = m->vals[x].shape;
    if (!f || f->is_int || f->ndim != 4)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): filter must be a 4-D float constant", n->name, n->op);
    if (in.ndim != 4)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s (%s): input must be 4-D NHWC", n->name, n->op);
    conv_geom gm = {.kh = f->dims[0], .kw = f->dims[1]};
    int fcin = f->dims[2], fco = f->dims[3];
    if ((size_t)fcin != in.dims[3])
        return vs_fail(c->err, VS_ERR_MODEL, "node %s: filter expects %d channels, input has %zu", n->name, fcin,
                       in.dims[3]);
    gm.sh = n->has_strides ? n->strides[1] : 1, gm.sw = n->has_strides ? n->strides[2] : 1;
    gm.dh = n->has_dilations ? n->dilations[1] : 1, gm.dw = n->has_dilations ? n->dilations[2] : 1;
    if (gm.sh < 1 || gm.sw < 1 || gm.dh < 1 || gm.dw < 1 || gm.kh < 1 || gm.kw < 1)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s: bad strides/dilations/kernel", n->name);
    gm.out = (vs_shape){4, {in.dims[0], 0, 0, (size_t)(depthwise ? fcin * fco : fco)}};
    if ((rc = conv_dim(c, n, 1, in.dims[1], gm.kh, gm.sh, gm.dh, &gm.out.dims[1], &gm.pad[0], &gm.pad[2])) != VS_OK ||
        (rc = conv_dim(c, n, 2, in.dims[2], gm.kw, gm.sw, gm.dw, &gm.out.dims[2], &gm.pad[3], &gm.pad[1])) != VS_OK)
        return rc;
    if (m->vals[x].n_parts > 0) return conv_of_parts(c, n, x, f, &gm, vid);
    int o = conv_op(c, n, x, f, 0, fcin, depthwise, &gm);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    return apply_fused(c, n, o, o, vid);
}

static vs_err lower_matmul(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 2)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    vs_model *m = c->m;
    const vs_tf_weight *f = const_input(c, n, 1);
    if (!f || f->is_int || f->ndim != 2 || n->transpose_a)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED,
                       "node %s (%s): only x * constant 2-D weights without transpose_a is supported", n->name, n->op);
    vs_shape in = m->vals[x].shape;
    size_t k = (size_t)(n->transpose_b ? f->dims[1] : f->dims[0]);
    size_t out_ch = (size_t)(n->transpose_b ? f->dims[0] : f->dims[1]);
    if (in.dims[in.ndim - 1] != k)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s: matmul inner size %zu vs %zu", n->name, in.dims[in.ndim - 1], k);
    vs_shape os = in;
    os.dims[os.ndim - 1] = out_ch;
    int o = new_op(c, VS_OP_FC, n, x, -1, &os);
    float *w = model_buf(m, f->count);
    if (o < 0 || !w) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    /* XNNPACK wants [out, in]. */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < out_ch; j++)
            w[j * k + i] = n->transpose_b ? f->f32[j * k + i] : f->f32[i * out_ch + j];
    m->ops[o].w = w;
    m->ops[o].cin = (int)k;
    m->ops[o].cout = (int)out_ch;
    return apply_fused(c, n, o, o, vid);
}

/* ---- element-wise ---- */

/* Numpy broadcasting of two shapes. */
static int broadcast(const vs_shape *a, const vs_shape *b, vs_shape *out) {
    out->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < out->ndim; i++) {
        int ia = a->ndim - out->ndim + i, ib = b->ndim - out->ndim + i;
        size_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) return 0;
        out->dims[i] = da > db ? da : db;
    }
    return 1;
}

/* Folds a per-channel (or scalar) constant multiply/add into the convolution
 * or matmul that produced x, when x is used by nothing else. Returns 1 if done. */
static int try_fold(lower_ctx *c, const vs_tf_node *n, int x_node_uses, int x, const float *k, size_t kn,
                    int is_mul) {
    vs_model *m = c->m;
    int p = m->vals[x].producer;
    if (p < 0 || x_node_uses != 1 || m->vals[x].output_index >= 0) return 0;
    vs_op *op = &m->ops[p];
    if (op->kind != VS_OP_CONV && op->kind != VS_OP_DWCONV && op->kind != VS_OP_FC) return 0;
    if (op->out_min != -INFINITY || op->out_max != INFINITY) return 0;
    size_t cout = (size_t)op->cout;
    if (kn != cout && kn != 1) return 0;
    if (!op->b) {
        op->b = model_buf(m, cout);
        if (!op->b) return 0;
    }
    size_t per = 0;
    if (op->kind == VS_OP_CONV || op->kind == VS_OP_FC)
        per = (size_t)(op->kind == VS_OP_CONV ? op->kh * op->kw * op->cin : op->cin);
    for (size_t co = 0; co < cout; co++) {
        float v = k[kn == 1 ? 0 : co];
        if (!is_mul) {
            op->b[co] += v;
            continue;
        }
        op->b[co] *= v;
        if (op->kind == VS_OP_DWCONV) {
            for (int t = 0; t < op->kh * op->kw; t++) op->w[(size_t)t * cout + co] *= v;
        } else {
            for (size_t i = 0; i < per; i++) op->w[co * per + i] *= v;
        }
    }
    (void)n;
    return 1;
}

static vs_err lower_binary(lower_ctx *c, const vs_tf_node *n, vs_op_kind kind, int *vid) {
    vs_err rc;
    if ((rc = need_inputs(c, n, 2)) != VS_OK) return rc;
    vs_model *m = c->m;
    const vs_tf_weight *k0 = const_input(c, n, 0), *k1 = const_input(c, n, 1);
    int xi = 0; /* which input is the activation when the other is constant */
    if (k0 && !k1 && kind != VS_OP_SUB && kind != VS_OP_DIV) {
        k1 = k0;
        k0 = NULL;
        xi = 1;
    }
    /* x op constant: fold or clamp when the constant is a scalar / per-channel. */
    if (k1 && !k0 && !k1->is_int) {
        int x;
        if ((rc = value_of(c, n->inputs[xi], &x)) != VS_OK) return rc;
        int uses = node_uses(c, n->inputs[xi]);
        if ((kind == VS_OP_MUL || kind == VS_OP_ADD) && try_fold(c, n, uses, x, k1->f32, k1->count, kind == VS_OP_MUL)) {
            *vid = x;
            return VS_OK;
        }
        if (kind == VS_OP_SUB && k1->count == 1) {
            float neg = -k1->f32[0];
            if (try_fold(c, n, uses, x, &neg, 1, 0)) {
                *vid = x;
                return VS_OK;
            }
        }
        if (k1->count == 1 && kind == VS_OP_MAX) return apply_clamp(c, n, uses, x, k1->f32[0], INFINITY, vid);
        if (k1->count == 1 && kind == VS_OP_MIN) return apply_clamp(c, n, uses, x, -INFINITY, k1->f32[0], vid);
    }
    int a, b;
    if ((rc = value_of(c, n->inputs[0], &a)) != VS_OK || (rc = value_of(c, n->inputs[1], &b)) != VS_OK) return rc;
    vs_shape os;
    if (!broadcast(&m->vals[a].shape, &m->vals[b].shape, &os))
        return vs_fail(c->err, VS_ERR_MODEL, "node %s (%s): shapes do not broadcast", n->name, n->op);
    if (m->vals[a].data && m->vals[b].data)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): constant-only arithmetic", n->name, n->op);
    int o = new_op(c, kind, n, a, b, &os);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    *vid = m->ops[o].out;
    return VS_OK;
}

static vs_err lower_unary(lower_ctx *c, const vs_tf_node *n, vs_op_kind kind, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 1)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    int o = new_op(c, kind, n, x, -1, &c->m->vals[x].shape);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    *vid = c->m->ops[o].out;
    return VS_OK;
}

/* ---- shape ops ---- */

static vs_err reshape_to(lower_ctx *c, const vs_tf_node *n, int x, const vs_shape *ns, int *vid) {
    vs_model *m = c->m;
    if (shape_count(ns) != shape_count(&m->vals[x].shape))
        return vs_fail(c->err, VS_ERR_MODEL, "node %s (%s): reshape changes the element count", n->name, n->op);
    if (m->vals[x].data) { /* constant: same data, new shape */
        int v = new_val(c, ns, m->vals[x].data);
        if (v < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        *vid = v;
        return VS_OK;
    }
    int o = new_op(c, VS_OP_RESHAPE, n, x, -1, ns);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    *vid = m->ops[o].out;
    return VS_OK;
}

static vs_err lower_reshape(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 2)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    const vs_tf_weight *s = const_input(c, n, 1);
    if (!s || !s->is_int || s->count > VS_NN_MAX_DIMS || s->count == 0)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (Reshape): shape must be a constant of rank <= 4", n->name);
    vs_shape ns = {(int)s->count, {0}};
    size_t total = shape_count(&c->m->vals[x].shape), known = 1;
    int infer = -1;
    for (int i = 0; i < ns.ndim; i++) {
        int d = s->i32[i];
        if (d == -1 && infer < 0) infer = i;
        else if (d <= 0) return vs_fail(c->err, VS_ERR_MODEL, "node %s: bad reshape dim %d", n->name, d);
        else known *= (size_t)d, ns.dims[i] = (size_t)d;
    }
    if (infer >= 0) {
        if (known == 0 || total % known) return vs_fail(c->err, VS_ERR_MODEL, "node %s: cannot infer -1", n->name);
        ns.dims[infer] = total / known;
    }
    return reshape_to(c, n, x, &ns, vid);
}

static vs_err lower_squeeze(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 1)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    vs_shape in = c->m->vals[x].shape, ns = {0, {0}};
    for (int i = 0; i < in.ndim; i++) {
        int drop = 0;
        if (n->n_axes == 0) drop = in.dims[i] == 1;
        for (int a = 0; a < n->n_axes; a++)
            if (n->axes[a] == i || n->axes[a] + in.ndim == i) drop = 1;
        if (!drop) ns.dims[ns.ndim++] = in.dims[i];
    }
    return reshape_to(c, n, x, &ns, vid);
}

static vs_err lower_pad(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 2)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    const vs_tf_weight *p = const_input(c, n, 1);
    vs_shape in = c->m->vals[x].shape;
    if (!p || !p->is_int || p->count != (size_t)in.ndim * 2)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): paddings must be a constant [%d,2]", n->name, n->op,
                       in.ndim);
    float value = 0;
    if (n->n_inputs > 2) {
        const vs_tf_weight *pv = const_input(c, n, 2);
        if (!pv || pv->count != 1) return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s: pad value must be constant", n->name);
        value = pv->is_int ? (float)pv->i32[0] : pv->f32[0];
    }
    vs_shape os = in;
    for (int i = 0; i < in.ndim; i++) {
        if (p->i32[2 * i] < 0 || p->i32[2 * i + 1] < 0 || p->i32[2 * i] > 4096 || p->i32[2 * i + 1] > 4096)
            return vs_fail(c->err, VS_ERR_MODEL, "node %s: bad padding", n->name);
        os.dims[i] += (size_t)(p->i32[2 * i] + p->i32[2 * i + 1]);
    }
    int o = new_op(c, VS_OP_PAD, n, x, -1, &os);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    for (int i = 0; i < in.ndim; i++) {
        c->m->ops[o].pre_pad[i] = (size_t)p->i32[2 * i];
        c->m->ops[o].post_pad[i] = (size_t)p->i32[2 * i + 1];
    }
    c->m->ops[o].out_min = value; /* the pad value travels in out_min; no clamp for PAD */
    *vid = c->m->ops[o].out;
    return VS_OK;
}

/* A value standing for the concatenation of parts[0..n) (see vs_val). */
static int new_concat_val(lower_ctx *c, const vs_shape *shape, const int *parts, int n) {
    int v = new_val(c, shape, NULL);
    if (v < 0) return -1;
    c->m->vals[v].n_parts = n;
    memcpy(c->m->vals[v].parts, parts, sizeof(int) * (size_t)n);
    return v;
}

static vs_err lower_maxpool(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 1)) != VS_OK || (rc = value_of_any(c, n->inputs[0], &x)) != VS_OK) return rc;
    vs_shape in = c->m->vals[x].shape;
    if (in.ndim != 4 || !n->has_ksize)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s (MaxPool): needs 4-D input and ksize", n->name);
    int kh = n->ksize[1], kw = n->ksize[2], sh = n->has_strides ? n->strides[1] : 1, sw = n->has_strides ? n->strides[2] : 1;
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1) return vs_fail(c->err, VS_ERR_MODEL, "node %s: bad pool window", n->name);
    vs_shape os = in;
    int pt, pb, pl, pr;
    if ((rc = conv_dim(c, n, 1, in.dims[1], kh, sh, 1, &os.dims[1], &pt, &pb)) != VS_OK ||
        (rc = conv_dim(c, n, 2, in.dims[2], kw, sw, 1, &os.dims[2], &pl, &pr)) != VS_OK)
        return rc;
    /* Pooling works channel by channel: a concatenation is pooled part by part. */
    vs_val cat = c->m->vals[x];
    int single[1] = {x}, *src = cat.n_parts ? cat.parts : single, np = cat.n_parts ? cat.n_parts : 1, parts[VS_NN_MAX_PARTS];
    for (int k = 0; k < np; k++) {
        vs_shape ps = os;
        ps.dims[3] = c->m->vals[src[k]].shape.dims[3];
        int o = new_op(c, VS_OP_MAXPOOL, n, src[k], -1, &ps);
        if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        vs_op *op = &c->m->ops[o];
        op->kh = kh; op->kw = kw; op->sh = sh; op->sw = sw;
        op->pad[0] = pt; op->pad[1] = pr; op->pad[2] = pb; op->pad[3] = pl;
        parts[k] = op->out;
        c->m->vals[op->out].private_part = cat.n_parts > 0;
    }
    *vid = cat.n_parts ? new_concat_val(c, &os, parts, np) : parts[0];
    return *vid < 0 ? vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name) : VS_OK;
}

/* Mean or Sum over H and W of NHWC (global average pooling), or Sum over the
 * last axis (a fully connected layer with all-ones weights). */
static vs_err lower_reduce(lower_ctx *c, const vs_tf_node *n, int is_sum, int *vid) {
    vs_err rc;
    int x;
    if ((rc = need_inputs(c, n, 2)) != VS_OK || (rc = value_of(c, n->inputs[0], &x)) != VS_OK) return rc;
    vs_model *m = c->m;
    const vs_tf_weight *ax = const_input(c, n, 1);
    vs_shape in = m->vals[x].shape;
    if (!ax || !ax->is_int) return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): axes must be constant", n->name, n->op);
    int hw = in.ndim == 4 && ax->count == 2 && ((ax->i32[0] == 1 && ax->i32[1] == 2) || (ax->i32[0] == 2 && ax->i32[1] == 1));
    int last = ax->count == 1 && (ax->i32[0] == in.ndim - 1 || ax->i32[0] == -1);
    vs_shape ks = in, ds = in;
    if (hw) {
        ks.dims[1] = ks.dims[2] = 1;
        ds.ndim = 2;
        ds.dims[1] = in.dims[3];
        int o = new_op(c, VS_OP_GAP, n, x, -1, &ks);
        if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        int v = m->ops[o].out;
        if (is_sum) {
            float *s = model_buf(m, 1);
            vs_shape ss = {1, {1}};
            int sv = s ? new_val(c, &ss, s) : -1;
            if (sv < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
            s[0] = (float)(in.dims[1] * in.dims[2]);
            int o2 = new_op(c, VS_OP_MUL, n, v, sv, &ks);
            if (o2 < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
            v = m->ops[o2].out;
        }
        if (n->keep_dims) { *vid = v; return VS_OK; }
        return reshape_to(c, n, v, &ds, vid);
    }
    if (last && is_sum) {
        size_t k = in.dims[in.ndim - 1];
        ks.dims[in.ndim - 1] = 1;
        int o = new_op(c, VS_OP_FC, n, x, -1, &ks);
        float *w = model_buf(m, k);
        if (o < 0 || !w) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        for (size_t i = 0; i < k; i++) w[i] = 1.0f;
        m->ops[o].w = w;
        m->ops[o].cin = (int)k;
        m->ops[o].cout = 1;
        if (n->keep_dims) { *vid = m->ops[o].out; return VS_OK; }
        ds = in;
        ds.ndim--;
        if (ds.ndim == 0) ds = (vs_shape){1, {1}};
        return reshape_to(c, n, m->ops[o].out, &ds, vid);
    }
    return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): reduction over these axes is not supported", n->name, n->op);
}

/* ConcatV2 on the last axis becomes a value made of parts (see vs_val);
 * nested concatenations are flattened. */
static vs_err lower_concat(lower_ctx *c, const vs_tf_node *n, int *vid) {
    vs_model *m = c->m;
    const vs_tf_weight *ax = n->n_inputs >= 3 ? const_input(c, n, n->n_inputs - 1) : NULL;
    if (!ax || !ax->is_int || ax->count != 1)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (ConcatV2): needs 2 or more tensors and a constant axis",
                       n->name);
    int parts[VS_NN_MAX_PARTS], np = 0;
    vs_shape shape = {0};
    for (int i = 0; i < n->n_inputs - 1; i++) {
        int p;
        vs_err rc = value_of_any(c, n->inputs[i], &p);
        if (rc != VS_OK) return rc;
        vs_val pv = m->vals[p];
        int last = pv.shape.ndim - 1;
        if (last < 0)
            return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (ConcatV2): input %s is a scalar", n->name, n->inputs[i]);
        if (i == 0) {
            if (ax->i32[0] != -1 && ax->i32[0] != last)
                return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (ConcatV2): only the last axis is supported, not %d",
                               n->name, (int)ax->i32[0]);
            shape = pv.shape;
            shape.dims[last] = 0;
        }
        int same = pv.shape.ndim == shape.ndim && !pv.data;
        for (int d = 0; same && d < last; d++) same = pv.shape.dims[d] == shape.dims[d];
        if (!same)
            return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (ConcatV2): input %s is a constant or of another shape",
                           n->name, n->inputs[i]);
        int k = pv.n_parts ? pv.n_parts : 1;
        if (np + k > VS_NN_MAX_PARTS)
            return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (ConcatV2): more than %d parts", n->name, VS_NN_MAX_PARTS);
        if (pv.n_parts) memcpy(parts + np, pv.parts, sizeof(int) * (size_t)k);
        else parts[np] = p;
        np += k;
        shape.dims[last] += pv.shape.dims[last];
    }
    *vid = new_concat_val(c, &shape, parts, np);
    return *vid < 0 ? vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name) : VS_OK;
}

/* Computes concatenation v for a consumer that needs it whole: per part, a
 * 1x1 convolution (fully connected for rank 2) with weights 1 where a part's
 * channel lands and 0 elsewhere, then adds. x*1 and x+0 are exact, so the
 * result is the concatenation bit for bit. Built once per value. */
static vs_err materialize(lower_ctx *c, const vs_tf_node *n, int v, int *vid) {
    vs_model *m = c->m;
    if (m->vals[v].materialized > 0) {
        *vid = m->vals[v].materialized - 1;
        return VS_OK;
    }
    vs_val cat = m->vals[v];
    int last = cat.shape.ndim - 1;
    if (cat.shape.ndim != 4 && cat.shape.ndim != 2)
        return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s (%s): a concatenation of rank %d read whole", n->name, n->op,
                       cat.shape.ndim);
    size_t total = cat.shape.dims[last], off = 0;
    int acc = -1;
    for (int k = 0; k < cat.n_parts; k++) {
        size_t ck = m->vals[cat.parts[k]].shape.dims[last];
        int o = new_op(c, cat.shape.ndim == 4 ? VS_OP_CONV : VS_OP_FC, n, cat.parts[k], -1, &cat.shape);
        float *w = o < 0 ? NULL : model_buf(m, total * ck);
        if (!w) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        for (size_t i = 0; i < ck; i++) w[(off + i) * ck + i] = 1.0f; /* [out][in] */
        vs_op *op = &m->ops[o];
        op->kh = op->kw = op->sh = op->sw = op->dh = op->dw = op->mult = 1;
        op->cin = (int)ck;
        op->cout = (int)total;
        op->w = w;
        off += ck;
        if (acc < 0) {
            acc = op->out;
            continue;
        }
        int a = new_op(c, VS_OP_ADD, n, acc, op->out, &cat.shape);
        if (a < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
        acc = m->ops[a].out;
    }
    m->vals[v].materialized = acc + 1;
    *vid = acc;
    return VS_OK;
}

static vs_err lower_rsqrt(lower_ctx *c, const vs_tf_node *n, int *vid) {
    int s;
    vs_err rc = lower_unary(c, n, VS_OP_SQRT, &s);
    if (rc != VS_OK) return rc;
    float *one = model_buf(c->m, 1);
    vs_shape os = {1, {1}};
    int ov = one ? new_val(c, &os, one) : -1;
    if (ov < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    one[0] = 1.0f;
    int o = new_op(c, VS_OP_DIV, n, ov, s, &c->m->vals[s].shape);
    if (o < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    *vid = c->m->ops[o].out;
    return VS_OK;
}

static vs_err lower_const(lower_ctx *c, const vs_tf_node *n, int *vid) {
    const vs_tf_weight *w = vs_tf_find_weight(c->g, n->name);
    if (!w) return vs_fail(c->err, VS_ERR_MODEL, "node %s (Const): no weight of that name in the manifest", n->name);
    float *d = model_buf(c->m, w->count);
    if (!d) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    for (size_t i = 0; i < w->count; i++) d[i] = w->is_int ? (float)w->i32[i] : w->f32[i];
    vs_shape s = {w->ndim, {0}};
    for (int i = 0; i < w->ndim; i++) s.dims[i] = (size_t)w->dims[i];
    if (s.ndim == 0) s = (vs_shape){1, {1}};
    *vid = new_val(c, &s, d);
    return *vid < 0 ? vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name) : VS_OK;
}

/* The graph's input: a Placeholder, or the node the caller cut the graph at
 * (opts->input), with the caller's shape when one is given. */
static vs_err lower_placeholder(lower_ctx *c, const vs_tf_node *n, int *vid) {
    if (c->m->input >= 0) return vs_fail(c->err, VS_ERR_UNSUPPORTED, "node %s: more than one graph input", n->name);
    const vs_model_opts *o = c->opts;
    int cut = o->input != NULL, given = o->input_ndim > 0;
    if (cut && strcmp(n->name, o->input))
        return vs_fail(c->err, VS_ERR_INVALID_ARG, "the outputs depend on placeholder %s, above the cut at %s", n->name,
                       o->input);
    if (cut && !given)
        return vs_fail(c->err, VS_ERR_INVALID_ARG, "input node %s: the graph is cut there, so its shape must be given",
                       n->name);
    if (given && o->input_ndim > VS_NN_MAX_DIMS)
        return vs_fail(c->err, VS_ERR_INVALID_ARG, "input node %s: rank %d > %d", n->name, o->input_ndim, VS_NN_MAX_DIMS);
    if (given && !cut && n->shape_ndim != o->input_ndim)
        return vs_fail(c->err, VS_ERR_MODEL, "node %s: input of rank %d, the caller gives rank %d", n->name,
                       n->shape_ndim, o->input_ndim);
    vs_shape s = {given ? o->input_ndim : n->shape_ndim, {0}};
    for (int i = 0; i < s.ndim; i++) {
        int d = given ? o->input_dims[i] : n->shape[i];
        if (given && !cut && n->shape[i] != -1 && n->shape[i] != d)
            return vs_fail(c->err, VS_ERR_MODEL, "node %s: input dim %d is %d, the caller gives %d", n->name, i,
                           n->shape[i], d);
        if (d == -1 && i == 0) d = c->batch;
        if (d <= 0 || d > 16384) return vs_fail(c->err, VS_ERR_MODEL, "node %s: input dim %d is %d", n->name, i, d);
        s.dims[i] = (size_t)d;
    }
    if (s.ndim == 0) return vs_fail(c->err, VS_ERR_MODEL, "node %s: input without a shape", n->name);
    *vid = new_val(c, &s, NULL);
    if (*vid < 0) return vs_fail(c->err, VS_ERR_NOMEM, "node %s", n->name);
    c->m->vals[*vid].is_input = 1;
    c->m->input = *vid;
    return VS_OK;
}

/* Lowers node n (its inputs first) and returns its value. */
static vs_err lower_node(lower_ctx *c, const vs_tf_node *n, int *vid) {
    const char *op = n->op;
    if (!strcmp(op, "Const")) return lower_const(c, n, vid);
    if (!strcmp(op, "Placeholder")) return lower_placeholder(c, n, vid);
    if (!strcmp(op, "Identity") || !strcmp(op, "StopGradient")) {
        vs_err rc = need_inputs(c, n, 1);
        return rc != VS_OK ? rc : value_of_any(c, n->inputs[0], vid);
    }
    if (!strcmp(op, "Conv2D") || !strcmp(op, "_FusedConv2D")) return lower_conv(c, n, 0, vid);
    if (!strcmp(op, "DepthwiseConv2dNative") || !strcmp(op, "FusedDepthwiseConv2dNative")) return lower_conv(c, n, 1, vid);
    if (!strcmp(op, "MatMul") || !strcmp(op, "_FusedMatMul")) return lower_matmul(c, n, vid);
    if (!strcmp(op, "Add") || !strcmp(op, "AddV2") || !strcmp(op, "BiasAdd")) return lower_binary(c, n, VS_OP_ADD, vid);
    if (!strcmp(op, "Sub")) return lower_binary(c, n, VS_OP_SUB, vid);
    if (!strcmp(op, "Mul")) return lower_binary(c, n, VS_OP_MUL, vid);
    if (!strcmp(op, "RealDiv") || !strcmp(op, "Div")) return lower_binary(c, n, VS_OP_DIV, vid);
    if (!strcmp(op, "Maximum")) return lower_binary(c, n, VS_OP_MAX, vid);
    if (!strcmp(op, "Minimum")) return lower_binary(c, n, VS_OP_MIN, vid);
    if (!strcmp(op, "Relu") || !strcmp(op, "Relu6")) {
        int x;
        vs_err rc = need_inputs(c, n, 1);
        if (rc == VS_OK) rc = value_of_any(c, n->inputs[0], &x);
        if (rc != VS_OK) return rc;
        return apply_clamp(c, n, node_uses(c, n->inputs[0]), x, 0, op[4] == '6' ? 6.0f : INFINITY, vid);
    }
    if (!strcmp(op, "Abs")) return lower_unary(c, n, VS_OP_ABS, vid);
    if (!strcmp(op, "Neg")) return lower_unary(c, n, VS_OP_NEG, vid);
    if (!strcmp(op, "ConcatV2")) return lower_concat(c, n, vid);
    if (!strcmp(op, "Square")) return lower_unary(c, n, VS_OP_SQUARE, vid);
    if (!strcmp(op, "Sqrt")) return lower_unary(c, n, VS_OP_SQRT, vid);
    if (!strcmp(op, "Rsqrt")) return lower_rsqrt(c, n, vid);
    if (!strcmp(op, "Sigmoid")) return lower_unary(c, n, VS_OP_SIGMOID, vid);
    if (!strcmp(op, "Softmax")) return lower_unary(c, n, VS_OP_SOFTMAX, vid);
    if (!strcmp(op, "MaxPool")) return lower_maxpool(c, n, vid);
    if (!strcmp(op, "Pad") || !strcmp(op, "PadV2")) return lower_pad(c, n, vid);
    if (!strcmp(op, "Reshape")) return lower_reshape(c, n, vid);
    if (!strcmp(op, "Squeeze")) return lower_squeeze(c, n, vid);
    if (!strcmp(op, "Mean")) return lower_reduce(c, n, 0, vid);
    if (!strcmp(op, "Sum")) return lower_reduce(c, n, 1, vid);
    return vs_fail(c->err, VS_ERR_UNSUPPORTED, "op %s (node %s) is not supported by the XNNPACK executor", op, n->name);
}

/* The value of node `name`, lowering it first if needed; may be a
 * concatenation of parts (only callers that handle parts use this). */
static vs_err value_of_any(lower_ctx *c, const char *name, int *vid) {
    int k = vs_tf_find_node(c->g, name);
    if (k < 0) return vs_fail(c->err, VS_ERR_MODEL, "model.json: node %s is referenced but not defined", name);
    if (c->node_val[k] >= 0) {
        *vid = c->node_val[k];
        return VS_OK;
    }
    if (c->visiting[k]) return vs_fail(c->err, VS_ERR_MODEL, "model.json: cycle through node %s", name);
    c->visiting[k] = 1;
    const vs_tf_node *n = &c->g->nodes[k];
    vs_err rc = c->opts->input && !strcmp(n->name, c->opts->input) ? lower_placeholder(c, n, vid) : lower_node(c, n, vid);
    c->visiting[k] = 0;
    if (rc == VS_OK) c->node_val[k] = *vid;
    return rc;
}

/* The value of node `name` as one tensor. */
static vs_err value_of(lower_ctx *c, const char *name, int *vid) {
    vs_err rc = value_of_any(c, name, vid);
    if (rc == VS_OK && c->m->vals[*vid].n_parts > 0)
        rc = materialize(c, &c->g->nodes[vs_tf_find_node(c->g, name)], *vid, vid);
    return rc;
}

/* Counts data consumers of every node, plus one for each requested output. */
static void count_consumers(lower_ctx *c, const char **outs, int n_outs) {
    for (int i = 0; i < c->g->n_nodes; i++) {
        const vs_tf_node *n = &c->g->nodes[i];
        if (!strcmp(n->op, "Identity") || !strcmp(n->op, "StopGradient")) continue; /* an alias, not a use */
        for (int j = 0; j < n->n_inputs; j++) {
            int k = resolve_node(c->g, n->inputs[j]);
            if (k >= 0) c->consumers[k]++;
        }
    }
    for (int i = 0; i < n_outs; i++) {
        int k = resolve_node(c->g, outs[i]);
        if (k >= 0) c->consumers[k]++;
    }
}

vs_err vs_lower(const vs_tf_graph *g, const vs_model_opts *opts, vs_model *m, vs_error *err) {
    static const vs_model_opts none = {0};
    if (!opts) opts = &none;
    lower_ctx c = {g, m, err, opts, opts->batch > 0 ? opts->batch : 1, NULL, NULL, NULL};
    if (opts->input && vs_tf_find_node(g, opts->input) < 0)
        return vs_fail(err, VS_ERR_NOT_FOUND, "input node %s is not in the graph", opts->input);
    const char *outs[VS_NN_MAX_OUTPUTS];
    int n_outs = 0;
    if (opts->n_outputs > 0) {
        if (opts->n_outputs > VS_NN_MAX_OUTPUTS) return vs_fail(err, VS_ERR_INVALID_ARG, "too many outputs requested");
        for (int i = 0; i < opts->n_outputs; i++) outs[n_outs++] = opts->outputs[i];
    } else {
        for (int i = 0; i < g->n_outputs && n_outs < VS_NN_MAX_OUTPUTS; i++) outs[n_outs++] = g->outputs[i];
    }
    if (n_outs == 0) return vs_fail(err, VS_ERR_INVALID_ARG, "model declares no outputs; name the nodes wanted");
    vs_err rc = VS_OK;
    c.node_val = vs_malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    c.consumers = vs_calloc((size_t)g->n_nodes + 1, sizeof(int));
    c.visiting = vs_calloc((size_t)g->n_nodes + 1, sizeof(int));
    if (!c.node_val || !c.consumers || !c.visiting) { rc = vs_fail(err, VS_ERR_NOMEM, "lowering"); goto out; }
    for (int i = 0; i < g->n_nodes; i++) c.node_val[i] = -1;
    m->input = -1;
    count_consumers(&c, outs, n_outs);
    for (int i = 0; i < n_outs; i++) {
        int v;
        if (vs_tf_find_node(g, outs[i]) < 0) {
            rc = vs_fail(err, VS_ERR_NOT_FOUND, "output node %s is not in the graph", outs[i]);
            goto out;
        }
        if ((rc = value_of(&c, outs[i], &v)) != VS_OK) goto out;
        if (m->vals[v].producer < 0) {
            rc = vs_fail(err, VS_ERR_UNSUPPORTED, "output node %s is an input or a constant", outs[i]);
            goto out;
        }
        if (m->vals[v].output_index >= 0) {
            rc = vs_fail(err, VS_ERR_INVALID_ARG, "output node %s requested twice (or aliases another)", outs[i]);
            goto out;
        }
        m->vals[v].output_index = i;
        m->outputs[i] = v;
        m->output_names[i] = vs_strdup(outs[i]);
        m->n_outputs = i + 1;
        if (!m->output_names[i]) { rc = vs_fail(err, VS_ERR_NOMEM, "output names"); goto out; }
    }
    if (m->input < 0) rc = vs_fail(err, VS_ERR_MODEL, "the outputs do not depend on any input");
out:
    vs_free(c.node_val);
    vs_free(c.consumers);
    vs_free(c.visiting);
    return rc;
}
