/* test_nn.c - the TF.js loader and XNNPACK executor, op by op.
 *
 * Each test writes a tiny graph model (model.json text + a weights blob) in
 * memory, runs it through vs_model_load_mem / vs_runtime_run, and compares
 * with a direct C implementation of the TF op. Also the loader's error
 * branches: unsupported op, truncated weights, bad JSON, missing node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_nn.h"

/* ---- a tiny graph builder ---- */

typedef struct gb {
    char nodes[32768];
    char weights[16384];
    uint8_t blob[1 << 20];
    size_t blob_len;
    int n_nodes, n_weights;
} gb;

static void gb_node(gb *g, const char *name, const char *op, const char *inputs, const char *attr) {
    size_t l = strlen(g->nodes);
    snprintf(g->nodes + l, sizeof g->nodes - l, "%s{\"name\":\"%s\",\"op\":\"%s\",\"input\":[%s],\"attr\":{%s}}",
             g->n_nodes++ ? "," : "", name, op, inputs ? inputs : "", attr ? attr : "");
}

static void gb_shape_json(char *out, size_t cap, const int *dims, int nd) {
    size_t l = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < nd; i++) l += (size_t)snprintf(out + l, cap - l, "%s%d", i ? "," : "", dims[i]);
    snprintf(out + l, cap - l, "]");
}

static void gb_input(gb *g, const char *name, const int *dims, int nd) {
    char attr[512], dj[256] = "";
    for (int i = 0; i < nd; i++) {
        size_t l = strlen(dj);
        snprintf(dj + l, sizeof dj - l, "%s{\"size\":\"%d\"}", i ? "," : "", dims[i]);
    }
    snprintf(attr, sizeof attr, "\"dtype\":{\"type\":\"DT_FLOAT\"},\"shape\":{\"shape\":{\"dim\":[%s]}}", dj);
    gb_node(g, name, "Placeholder", NULL, attr);
}

static void gb_weight(gb *g, const char *name, const int *dims, int nd, const void *data, const char *dtype) {
    size_t count = 1;
    for (int i = 0; i < nd; i++) count *= (size_t)dims[i];
    memcpy(g->blob + g->blob_len, data, count * 4);
    g->blob_len += count * 4;
    char sj[128];
    gb_shape_json(sj, sizeof sj, dims, nd);
    size_t l = strlen(g->weights);
    snprintf(g->weights + l, sizeof g->weights - l, "%s{\"name\":\"%s\",\"shape\":%s,\"dtype\":\"%s\"}",
             g->n_weights++ ? "," : "", name, sj, dtype);
    gb_node(g, name, "Const", NULL, NULL);
}

static void gb_const(gb *g, const char *name, const int *dims, int nd, const float *data) {
    gb_weight(g, name, dims, nd, data, "float32");
}

static void gb_iconst(gb *g, const char *name, const int *dims, int nd, const int32_t *data) {
    gb_weight(g, name, dims, nd, data, "int32");
}

static vs_err gb_load_opts(gb *g, vs_model_opts *o, vs_model **m, vs_error *err) {
    static char json[65536];
    snprintf(json, sizeof json,
             "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[%s]},"
             "\"weightsManifest\":[{\"paths\":[\"x.bin\"],\"weights\":[%s]}]}",
             g->nodes, g->weights);
    return vs_model_load_mem(json, strlen(json), g->blob, g->blob_len, o, m, err);
}

static vs_err gb_load(gb *g, const char *output, vs_model **m, vs_error *err) {
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {output}};
    return gb_load_opts(g, &o, m, err);
}

/* Loads with opts o, runs once on `in` and copies the output into out. */
static void run_graph_opts(gb *g, vs_model_opts *o, const float *in, size_t n_in, float *out, size_t n_out) {
    vs_model *m = NULL;
    vs_runtime *rt = NULL;
    vs_error err = {0};
    vs_err rc = gb_load_opts(g, o, &m, &err);
    if (rc != VS_OK) fail_msg("load: %s", err.msg);
    rc = vs_runtime_new(m, 1, &rt, &err);
    if (rc != VS_OK) fail_msg("runtime: %s", err.msg);
    vs_shape is = vs_model_input_shape(m), os = vs_model_output_shape(m, 0);
    size_t ni = 1, no = 1;
    for (int i = 0; i < is.ndim; i++) ni *= is.dims[i];
    for (int i = 0; i < os.ndim; i++) no *= os.dims[i];
    assert_int_equal(ni, n_in);
    assert_int_equal(no, n_out);
    memcpy(vs_runtime_input(rt), in, n_in * sizeof(float));
    rc = vs_runtime_run(rt, &err);
    if (rc != VS_OK) fail_msg("run: %s", err.msg);
    memcpy(out, vs_runtime_output(rt, 0), n_out * sizeof(float));
    vs_runtime_free(rt);
    vs_model_free(m);
}

static void run_graph(gb *g, const char *output, const float *in, size_t n_in, float *out, size_t n_out) {
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {output}};
    run_graph_opts(g, &o, in, n_in, out, n_out);
}

static void fill(float *v, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
    }
}

static void assert_close(const float *a, const float *b, size_t n, float tol) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= tol * (1 + fabsf(b[i]))))
            fail_msg("element %zu: got %g, expected %g", i, a[i], b[i]);
}

/* Reference NHWC conv (groups == cin for depthwise with multiplier mult). */
static void ref_conv(const float *x, int h, int w, int cin, const float *f, int kh, int kw, int cout_or_mult,
                     int depthwise, int s, int same, float *y, int *oh, int *ow) {
    int ho = same ? (h + s - 1) / s : (h - kh) / s + 1, wo = same ? (w + s - 1) / s : (w - kw) / s + 1;
    int pt = same ? (((ho - 1) * s + kh - h) > 0 ? ((ho - 1) * s + kh - h) / 2 : 0) : 0;
    int pl = same ? (((wo - 1) * s + kw - w) > 0 ? ((wo - 1) * s + kw - w) / 2 : 0) : 0;
    int cout = depthwise ? cin * cout_or_mult : cout_or_mult;
    for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++)
            for (int co = 0; co < cout; co++) {
                double acc = 0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                        if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
                        if (depthwise) {
                            int ci = co / cout_or_mult, mm = co % cout_or_mult;
                            acc += x[(iy * w + ix) * cin + ci] * f[((ky * kw + kx) * cin + ci) * cout_or_mult + mm];
                        } else {
                            for (int ci = 0; ci < cin; ci++)
                                acc += x[(iy * w + ix) * cin + ci] * f[((ky * kw + kx) * cin + ci) * cout + co];
                        }
                    }
                y[(oy * wo + ox) * cout + co] = (float)acc;
            }
    *oh = ho;
    *ow = wo;
}

#define SAME "\"padding\":{\"s\":\"U0FNRQ==\"}"
#define VALID "\"padding\":{\"s\":\"VkFMSUQ=\"}"
#define STRIDES(s) "\"strides\":{\"list\":{\"i\":[\"1\",\"" #s "\",\"" #s "\",\"1\"]}}"

static void check_conv(int same, int stride, int depthwise) {
    enum { H = 9, W = 7, CIN = 3, COUT = 4, K = 3 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, CIN};
    int fd[4] = {K, K, CIN, depthwise ? 2 : COUT};
    float f[K * K * CIN * COUT], x[H * W * CIN], y[H * W * CIN * COUT], got[H * W * CIN * COUT];
    fill(f, sizeof f / 4, 7);
    fill(x, sizeof x / 4, 9);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    char attr[256];
    snprintf(attr, sizeof attr, "%s,%s", same ? SAME : VALID, stride == 2 ? STRIDES(2) : STRIDES(1));
    gb_node(&g, "y", depthwise ? "DepthwiseConv2dNative" : "Conv2D", "\"x\",\"f\"", attr);
    int oh, ow;
    ref_conv(x, H, W, CIN, f, K, K, depthwise ? 2 : COUT, depthwise, stride, same, y, &oh, &ow);
    size_t n = (size_t)oh * ow * (depthwise ? CIN * 2 : COUT);
    run_graph(&g, "y", x, sizeof x / 4, got, n);
    assert_close(got, y, n, 1e-4f);
}

static void test_conv2d_same_valid_strided(void **s) {
    (void)s;
    check_conv(1, 1, 0);
    check_conv(1, 2, 0);
    check_conv(0, 1, 0);
    check_conv(0, 2, 0);
}

static void test_depthwise_with_multiplier(void **s) {
    (void)s;
    check_conv(1, 1, 1);
    check_conv(1, 2, 1);
    check_conv(0, 1, 1);
}

/* _FusedConv2D(BiasAdd, Relu) and Conv2D -> Mul(scale) -> Add(shift) -> Relu ->
 * Minimum(6) -> Maximum(0), the frozen batch-norm pattern, which must fold
 * into one operator. */
static void test_fused_conv_and_batchnorm_folding(void **s) {
    (void)s;
    enum { H = 5, W = 5, C = 2, CO = 3 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, C}, fd[4] = {1, 1, C, CO}, cd[1] = {CO}, sd[0] = {};
    float f[C * CO], scale[CO] = {2.0f, -1.0f, 0.5f}, shift[CO] = {0.1f, 3.0f, -0.2f}, six = 6, zero = 0;
    float x[H * W * C], ref[H * W * CO], got[H * W * CO];
    fill(f, C * CO, 3);
    fill(x, H * W * C, 5);
    for (int i = 0; i < H * W * C; i++) x[i] *= 5;
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    gb_const(&g, "scale", cd, 1, scale);
    gb_const(&g, "shift", cd, 1, shift);
    gb_const(&g, "six", sd, 0, &six);
    gb_const(&g, "zero", sd, 0, &zero);
    gb_node(&g, "conv", "Conv2D", "\"x\",\"f\"", SAME "," STRIDES(1));
    gb_node(&g, "bn_mul", "Mul", "\"conv\",\"scale\"", NULL);
    gb_node(&g, "bn_add", "Add", "\"shift\",\"bn_mul\"", NULL);
    gb_node(&g, "relu", "Relu", "\"bn_add\"", NULL);
    gb_node(&g, "min6", "Minimum", "\"relu\",\"six\"", NULL);
    gb_node(&g, "max0", "Maximum", "\"min6\",\"zero\"", NULL);
    for (int p = 0; p < H * W; p++)
        for (int co = 0; co < CO; co++) {
            float acc = 0;
            for (int ci = 0; ci < C; ci++) acc += x[p * C + ci] * f[ci * CO + co];
            float v = acc * scale[co] + shift[co];
            ref[p * CO + co] = fminf(fmaxf(v, 0), 6);
        }
    run_graph(&g, "max0", x, H * W * C, got, H * W * CO);
    assert_close(got, ref, H * W * CO, 1e-5f);
    /* the whole chain is one XNNPACK operator */
    vs_model *m;
    vs_error err;
    assert_int_equal(gb_load(&g, "max0", &m, &err), VS_OK);
    assert_int_equal(vs_model_op_count(m), 1);
    vs_model_free(m);
}

/* Residual block of BlazeFace: AddV2 of two activations, Relu, MaxPool 2x2
 * and channel Pad, then Reshape. */
static void test_add_relu_maxpool_pad_reshape(void **s) {
    (void)s;
    enum { H = 4, W = 6, C = 2 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, C}, pd[2] = {4, 2}, rd[3] = {1, -1, 4};
    int32_t pads[8] = {0, 0, 0, 0, 0, 0, 0, 2}, shape[3] = {1, -1, 4};
    (void)rd;
    float x[H * W * C], got[(H / 2) * (W / 2) * (C + 2)], ref[(H / 2) * (W / 2) * (C + 2)];
    fill(x, H * W * C, 11);
    gb_input(&g, "x", in_dims, 4);
    gb_iconst(&g, "pads", pd, 2, pads);
    int sdims[1] = {3};
    gb_iconst(&g, "shape", sdims, 1, shape);
    gb_node(&g, "sq", "Abs", "\"x\"", NULL);
    gb_node(&g, "sum", "AddV2", "\"x\",\"sq\"", NULL);
    gb_node(&g, "r", "Relu", "\"sum\"", NULL);
    gb_node(&g, "mp", "MaxPool", "\"r\"", SAME "," STRIDES(2) ",\"ksize\":{\"list\":{\"i\":[\"1\",\"2\",\"2\",\"1\"]}}");
    gb_node(&g, "pad", "Pad", "\"mp\",\"pads\"", NULL);
    gb_node(&g, "out", "Reshape", "\"pad\",\"shape\"", NULL);
    for (int oy = 0; oy < H / 2; oy++)
        for (int ox = 0; ox < W / 2; ox++)
            for (int c = 0; c < C + 2; c++) {
                float best = 0;
                if (c < C)
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            float v = x[((oy * 2 + dy) * W + ox * 2 + dx) * C + c];
                            v = fmaxf(v + fabsf(v), 0);
                            if (v > best) best = v;
                        }
                ref[(oy * (W / 2) + ox) * (C + 2) + c] = best;
            }
    run_graph(&g, "out", x, H * W * C, got, sizeof ref / 4);
    assert_close(got, ref, sizeof ref / 4, 1e-6f);
}

/* The embedder's head: Mean over H,W, _FusedMatMul(BiasAdd, Relu), then
 * Sigmoid and Softmax. */
static void test_mean_matmul_sigmoid_softmax(void **s) {
    (void)s;
    enum { H = 3, W = 3, C = 4, O = 5 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, C}, ad[1] = {2}, kd[2] = {C, O}, bd[1] = {O};
    int32_t axes[2] = {1, 2};
    float x[H * W * C], k[C * O], b[O], got[O], ref[O], mean[C] = {0};
    fill(x, H * W * C, 1);
    fill(k, C * O, 2);
    fill(b, O, 4);
    gb_input(&g, "x", in_dims, 4);
    gb_iconst(&g, "axes", ad, 1, axes);
    gb_const(&g, "k", kd, 2, k);
    gb_const(&g, "b", bd, 1, b);
    gb_node(&g, "mean", "Mean", "\"x\",\"axes\"", "\"keep_dims\":{\"b\":false}");
    gb_node(&g, "fc", "_FusedMatMul", "\"mean\",\"k\",\"b\"",
            "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}},\"transpose_b\":{\"b\":false}");
    gb_node(&g, "sm", "Softmax", "\"fc\"", NULL);
    gb_node(&g, "sig", "Sigmoid", "\"fc\"", NULL);
    for (int i = 0; i < H * W * C; i++) mean[i % C] += x[i] / (H * W);
    float fc[O], z = 0;
    for (int o = 0; o < O; o++) {
        float acc = b[o];
        for (int c = 0; c < C; c++) acc += mean[c] * k[c * O + o];
        fc[o] = fmaxf(acc, 0);
        z += expf(fc[o]);
    }
    for (int o = 0; o < O; o++) ref[o] = expf(fc[o]) / z;
    run_graph(&g, "sm", x, H * W * C, got, O);
    assert_close(got, ref, O, 1e-5f);
    for (int o = 0; o < O; o++) ref[o] = 1 / (1 + expf(-fc[o]));
    run_graph(&g, "sig", x, H * W * C, got, O);
    assert_close(got, ref, O, 1e-5f);
    run_graph(&g, "mean", x, H * W * C, got, C);
    assert_close(got, mean, C, 1e-5f);
}

/* Sub, Square, Sum over the last axis, Rsqrt, Mul: an L2 normalisation
 * written in TF ops, plus Squeeze. */
static void test_l2norm_ops(void **s) {
    (void)s;
    enum { N = 6 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[2] = {1, N}, ad[1] = {1}, sd[0] = {};
    int32_t axis[1] = {1};
    float x[N], got[N], ref[N], eps = 0.5f, one = 1.0f;
    fill(x, N, 21);
    gb_input(&g, "x", in_dims, 2);
    gb_iconst(&g, "axis", ad, 1, axis);
    gb_const(&g, "eps", sd, 0, &eps);
    gb_const(&g, "one", sd, 0, &one);
    gb_node(&g, "d", "Sub", "\"x\",\"eps\"", NULL);
    gb_node(&g, "sq", "Square", "\"d\"", NULL);
    gb_node(&g, "ss", "Sum", "\"sq\",\"axis\"", "\"keep_dims\":{\"b\":true}");
    gb_node(&g, "ss1", "AddV2", "\"ss\",\"one\"", NULL);
    gb_node(&g, "inv", "Rsqrt", "\"ss1\"", NULL);
    gb_node(&g, "y", "Mul", "\"d\",\"inv\"", NULL);
    gb_node(&g, "sqz", "Squeeze", "\"y\"", NULL);
    float ss = 0;
    for (int i = 0; i < N; i++) ss += (x[i] - eps) * (x[i] - eps);
    for (int i = 0; i < N; i++) ref[i] = (x[i] - eps) / sqrtf(ss + 1);
    run_graph(&g, "sqz", x, N, got, N);
    assert_close(got, ref, N, 1e-5f);
}

/* _FusedConv2D with BiasAdd + Prelu (3 extra args). */
static void test_fused_prelu(void **s) {
    (void)s;
    enum { H = 3, W = 3, C = 2 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, C}, fd[4] = {1, 1, C, C}, cd[1] = {C};
    float f[C * C] = {1, 0, 0, 1}, b[C] = {0.5f, -0.5f}, a[C] = {0.1f, 0.3f}, x[H * W * C], got[H * W * C],
          ref[H * W * C];
    fill(x, H * W * C, 33);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    gb_const(&g, "b", cd, 1, b);
    gb_const(&g, "a", cd, 1, a);
    gb_node(&g, "y", "_FusedConv2D", "\"x\",\"f\",\"b\",\"a\"",
            SAME "," STRIDES(1) ",\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UHJlbHU=\"]}}");
    for (int i = 0; i < H * W * C; i++) {
        float v = x[i] + b[i % C];
        ref[i] = v >= 0 ? v : v * a[i % C];
    }
    run_graph(&g, "y", x, H * W * C, got, H * W * C);
    assert_close(got, ref, H * W * C, 1e-6f);
}


/* Reference NHWC max pooling, k x k, stride s, TF SAME padding (padded
 * positions are not candidates). */
static void ref_maxpool(const float *x, int h, int w, int c, int k, int s, float *y, int *oh, int *ow) {
    int ho = (h + s - 1) / s, wo = (w + s - 1) / s;
    int pt = ((ho - 1) * s + k - h) > 0 ? ((ho - 1) * s + k - h) / 2 : 0;
    int pl = ((wo - 1) * s + k - w) > 0 ? ((wo - 1) * s + k - w) / 2 : 0;
    for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++)
            for (int ch = 0; ch < c; ch++) {
                float best = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * s + ky - pt, ix = ox * s + kx - pl;
                        if (iy >= 0 && ix >= 0 && iy < h && ix < w) best = fmaxf(best, x[(iy * w + ix) * c + ch]);
                    }
                y[(oy * wo + ox) * c + ch] = best;
            }
    *oh = ho;
    *ow = wo;
}

#define KSIZE3 "\"ksize\":{\"list\":{\"i\":[\"1\",\"3\",\"3\",\"1\"]}}"
#define FUSED_BIAS_RELU "\"fused_ops\":{\"list\":{\"s\":[\"Qmlhc0FkZA==\",\"UmVsdQ==\"]}}"

/* FaceBoxes' CReLU block: conv -> Neg -> ConcatV2(conv, neg) on channels ->
 * MaxPool -> Relu -> _FusedConv2D(BiasAdd, Relu). The concatenation is never
 * computed: pooling and the clamp run part by part and the last convolution
 * splits its filter; the result must equal the direct computation. Neg alone,
 * and the concatenation read whole (an output), too. */
static void test_neg_and_channel_concat(void **s) {
    (void)s;
    enum { H = 6, W = 5, C = 2, A = 3, CO = 4 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, C}, f1d[4] = {3, 3, C, A}, f2d[4] = {2, 2, 2 * A, CO}, bd[1] = {CO}, sd[0] = {};
    int32_t axis = 3;
    float x[H * W * C], f1[3 * 3 * C * A], f2[2 * 2 * 2 * A * CO], b2[CO];
    fill(x, H * W * C, 41);
    fill(f1, sizeof f1 / 4, 42);
    fill(f2, sizeof f2 / 4, 43);
    fill(b2, CO, 44);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f1", f1d, 4, f1);
    gb_const(&g, "f2", f2d, 4, f2);
    gb_const(&g, "b2", bd, 1, b2);
    gb_iconst(&g, "axis", sd, 0, &axis);
    gb_node(&g, "conv", "Conv2D", "\"x\",\"f1\"", SAME "," STRIDES(1));
    gb_node(&g, "neg", "Neg", "\"conv\"", NULL);
    gb_node(&g, "cat", "ConcatV2", "\"conv\",\"neg\",\"axis\"", NULL);
    gb_node(&g, "pool", "MaxPool", "\"cat\"", SAME "," STRIDES(2) "," KSIZE3);
    gb_node(&g, "relu", "Relu", "\"pool\"", NULL);
    gb_node(&g, "y", "_FusedConv2D", "\"relu\",\"f2\",\"b2\"", SAME "," STRIDES(1) "," FUSED_BIAS_RELU);
    /* direct: conv, concat(a, -a), pool, relu, conv + bias, relu */
    static float a[H * W * A], cat[H * W * 2 * A], pool[H * W * 2 * A], y[H * W * CO], got[H * W * 2 * A];
    int oh, ow, ph, pw;
    ref_conv(x, H, W, C, f1, 3, 3, A, 0, 1, 1, a, &oh, &ow);
    for (int p = 0; p < H * W; p++)
        for (int k = 0; k < A; k++) {
            cat[p * 2 * A + k] = a[p * A + k];
            cat[p * 2 * A + A + k] = -a[p * A + k];
        }
    ref_maxpool(cat, H, W, 2 * A, 3, 2, pool, &ph, &pw);
    for (int i = 0; i < ph * pw * 2 * A; i++) pool[i] = fmaxf(pool[i], 0);
    ref_conv(pool, ph, pw, 2 * A, f2, 2, 2, CO, 0, 1, 1, y, &oh, &ow);
    for (int i = 0; i < oh * ow * CO; i++) y[i] = fmaxf(y[i] + b2[i % CO], 0);
    run_graph(&g, "y", x, H * W * C, got, (size_t)oh * ow * CO);
    assert_close(got, y, (size_t)oh * ow * CO, 1e-5f);
    run_graph(&g, "cat", x, H * W * C, got, H * W * 2 * A);
    assert_close(got, cat, H * W * 2 * A, 1e-6f);
    float neg[H * W * A];
    for (int i = 0; i < H * W * A; i++) neg[i] = -a[i];
    run_graph(&g, "neg", x, H * W * C, got, H * W * A);
    assert_close(got, neg, H * W * A, 1e-6f);
}

/* Concatenations of branches (one a concatenation itself: flattened) read
 * by a 1x1 convolution, by an AddV2 (which needs it whole: built exactly from
 * placing 1x1 convolutions), and a rank-2 concatenation as an output; axis -1
 * means the last. */
static void test_concat_parts_nested_and_whole(void **s) {
    (void)s;
    enum { H = 3, W = 4, CO = 5 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, H, W, 2}, pd[4] = {1, 1, 2, 3}, fd[4] = {1, 1, 8, CO}, sd[0] = {};
    int32_t last = -1, three = 3;
    float x[H * W * 2], p1[2 * 3], p2[2 * 3], f[8 * CO];
    fill(x, sizeof x / 4, 51);
    fill(p1, 6, 52);
    fill(p2, 6, 53);
    fill(f, sizeof f / 4, 54);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "p1", pd, 4, p1);
    gb_const(&g, "p2", pd, 4, p2);
    gb_const(&g, "f", fd, 4, f);
    gb_iconst(&g, "last", sd, 0, &last);
    gb_iconst(&g, "three", sd, 0, &three);
    gb_node(&g, "b1", "Conv2D", "\"x\",\"p1\"", SAME "," STRIDES(1));
    gb_node(&g, "b2", "Conv2D", "\"x\",\"p2\"", SAME "," STRIDES(1));
    gb_node(&g, "inner", "ConcatV2", "\"b1\",\"b2\",\"three\"", NULL);     /* 6 channels */
    gb_node(&g, "cat8", "ConcatV2", "\"x\",\"inner\",\"last\"", NULL);     /* 2 + 6 */
    gb_node(&g, "y", "Conv2D", "\"cat8\",\"f\"", SAME "," STRIDES(1));
    gb_node(&g, "cat", "ConcatV2", "\"x\",\"inner\",\"b1\",\"last\"", NULL); /* 2 + 6 + 3 */
    gb_node(&g, "sum", "AddV2", "\"cat\",\"cat\"", NULL);
    static float v1[H * W * 3], v2[H * W * 3], cat[H * W * 11], c8[H * W * 8], y[H * W * CO], got[H * W * 11];
    int oh, ow;
    ref_conv(x, H, W, 2, p1, 1, 1, 3, 0, 1, 1, v1, &oh, &ow);
    ref_conv(x, H, W, 2, p2, 1, 1, 3, 0, 1, 1, v2, &oh, &ow);
    for (int p = 0; p < H * W; p++) {
        float *c = cat + p * 11;
        c[0] = x[p * 2], c[1] = x[p * 2 + 1];
        for (int k = 0; k < 3; k++) c[2 + k] = v1[p * 3 + k], c[5 + k] = v2[p * 3 + k], c[8 + k] = v1[p * 3 + k];
        for (int k = 0; k < 8; k++) c8[p * 8 + k] = c[k];
    }
    ref_conv(c8, H, W, 8, f, 1, 1, CO, 0, 1, 1, y, &oh, &ow);
    run_graph(&g, "y", x, sizeof x / 4, got, H * W * CO);
    assert_close(got, y, H * W * CO, 1e-5f);
    run_graph(&g, "sum", x, sizeof x / 4, got, H * W * 11);
    for (int i = 0; i < H * W * 11; i++) cat[i] *= 2;
    assert_close(got, cat, H * W * 11, 1e-6f);
    /* rank 2 */
    static gb g2;
    memset(&g2, 0, sizeof g2);
    int vd[2] = {1, 3}, md[2] = {3, 2};
    float v[3], mw[6], out[5], ref[5];
    fill(v, 3, 55);
    fill(mw, 6, 56);
    gb_input(&g2, "v", vd, 2);
    gb_const(&g2, "mw", md, 2, mw);
    gb_iconst(&g2, "last", sd, 0, &last);
    gb_node(&g2, "mm", "MatMul", "\"v\",\"mw\"", NULL);
    gb_node(&g2, "cat", "ConcatV2", "\"v\",\"mm\",\"last\"", NULL);
    for (int i = 0; i < 3; i++) ref[i] = v[i];
    for (int j = 0; j < 2; j++) ref[3 + j] = v[0] * mw[j] + v[1] * mw[2 + j] + v[2] * mw[4 + j];
    run_graph(&g2, "cat", v, 3, out, 5);
    assert_close(out, ref, 5, 1e-6f);
}

/* A concatenation on another axis than channels is refused, naming the node. */
static void test_concat_other_axis_is_refused(void **s) {
    (void)s;
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, 2, 2, 1}, sd[0] = {};
    int32_t one = 1;
    gb_input(&g, "x", in_dims, 4);
    gb_iconst(&g, "one", sd, 0, &one);
    gb_node(&g, "n", "Neg", "\"x\"", NULL);
    gb_node(&g, "rows", "ConcatV2", "\"x\",\"n\",\"one\"", NULL);
    vs_model *m = NULL;
    vs_error err = {0};
    assert_int_equal(gb_load(&g, "rows", &m, &err), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "rows"));
    assert_non_null(strstr(err.msg, "last axis"));
    /* one tensor and no axis, or only an axis: refused, not read past the inputs */
    gb_node(&g, "lonely", "ConcatV2", "\"x\"", NULL);
    assert_int_equal(gb_load(&g, "lonely", &m, &err), VS_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "lonely"));
    gb_node(&g, "bare", "ConcatV2", NULL, NULL);
    assert_int_equal(gb_load(&g, "bare", &m, &err), VS_ERR_UNSUPPORTED);
}

/* The graph cut at an internal node: what is above it (here an op the
 * executor does not know) is never read; the input takes the caller's shape.
 * A Placeholder with unknown dims takes them from the caller too. */
static void test_input_cut_and_shape(void **s) {
    (void)s;
    enum { H = 4, W = 5, C = 3, CO = 2 };
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, -1, -1, C}, fd[4] = {3, 3, C, CO};
    float f[3 * 3 * C * CO], x[H * W * C], y[H * W * CO], got[H * W * CO];
    fill(f, sizeof f / 4, 61);
    fill(x, sizeof x / 4, 62);
    gb_input(&g, "image", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    gb_node(&g, "cast", "Cast", "\"image\"", NULL);
    gb_node(&g, "y", "Conv2D", "\"cast\",\"f\"", SAME "," STRIDES(1));
    gb_node(&g, "z", "Conv2D", "\"image\",\"f\"", SAME "," STRIDES(1));
    int oh, ow;
    ref_conv(x, H, W, C, f, 3, 3, CO, 0, 1, 1, y, &oh, &ow);
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {"y"}, .input = "cast", .input_ndim = 4,
                       .input_dims = {1, H, W, C}};
    run_graph_opts(&g, &o, x, sizeof x / 4, got, H * W * CO);
    assert_close(got, y, H * W * CO, 1e-5f);
    /* the Placeholder itself, its -1 dims given */
    vs_model_opts p = {.batch = 1, .n_outputs = 1, .outputs = {"z"}, .input_ndim = 4, .input_dims = {1, H, W, C}};
    run_graph_opts(&g, &p, x, sizeof x / 4, got, H * W * CO);
    assert_close(got, y, H * W * CO, 1e-5f);
    vs_model *m = NULL;
    vs_error err = {0};
    /* a cut needs the shape */
    o.input_ndim = 0;
    assert_int_equal(gb_load_opts(&g, &o, &m, &err), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "cast"));
    /* a cut at a node that is not there */
    o.input_ndim = 4;
    o.input = "nope";
    assert_int_equal(gb_load_opts(&g, &o, &m, &err), VS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nope"));
    /* outputs that do not go through the cut */
    o.input = "cast";
    o.outputs[0] = "z";
    assert_int_equal(gb_load_opts(&g, &o, &m, &err), VS_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "image"));
    /* without a shape, the Placeholder's -1 dims are an error naming it */
    vs_model_opts q = {.batch = 1, .n_outputs = 1, .outputs = {"z"}};
    assert_int_equal(gb_load_opts(&g, &q, &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "image"));
}

static void test_unsupported_op_names_op_and_node(void **s) {
    (void)s;
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[2] = {1, 4};
    gb_input(&g, "x", in_dims, 2);
    gb_node(&g, "weird/node", "Erf", "\"x\"", NULL);
    vs_model *m = (vs_model *)1;
    vs_error err = {0};
    assert_int_equal(gb_load(&g, "weird/node", &m, &err), VS_ERR_UNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(err.msg, "Erf"));
    assert_non_null(strstr(err.msg, "weird/node"));
}

static void test_loader_errors(void **s) {
    (void)s;
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, 2, 2, 1}, fd[4] = {1, 1, 1, 1};
    float f = 2;
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, &f);
    gb_node(&g, "y", "Conv2D", "\"x\",\"f\"", SAME);
    gb_node(&g, "z", "Relu", "\"missing\"", NULL);
    vs_model *m = NULL;
    vs_error err = {0};
    /* weights shorter than the manifest says */
    size_t full = g.blob_len;
    g.blob_len = 2;
    assert_int_equal(gb_load(&g, "y", &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "f"));
    g.blob_len = full;
    /* a node that references nothing */
    assert_int_equal(gb_load(&g, "z", &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "missing"));
    /* an output that is not in the graph */
    assert_int_equal(gb_load(&g, "nope", &m, &err), VS_ERR_NOT_FOUND);
    /* malformed JSON reports the position */
    vs_model_opts o = {0};
    assert_int_equal(vs_model_load_mem("{\"modelTopology\": [", 19, NULL, 0, &o, &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "line"));
    /* a missing file names the path and the fix */
    assert_int_equal(vs_model_load("/nonexistent/model.json", &o, &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "/nonexistent/model.json"));
    assert_non_null(strstr(err.msg, "fetch-models"));
    /* and the good graph still loads */
    assert_int_equal(gb_load(&g, "y", &m, &err), VS_OK);
    vs_model_free(m);
}

/* Loads g's `output` with the n-th allocation failing, for every n until a
 * load succeeds: each attempt must fail with NOMEM, cleanly. */
static void check_allocation_failures(gb *g, const char *output) {
    int saw_nomem = 0;
    for (long n = 0; n < 1000; n++) {
        vs_model *m = NULL;
        vs_error err = {0};
        vs_alloc_fail_after(n);
        vs_err rc = gb_load(g, output, &m, &err);
        vs_alloc_fail_after(-1);
        if (rc == VS_OK) {
            vs_model_free(m);
            break;
        }
        assert_int_equal(rc, VS_ERR_NOMEM);
        saw_nomem = 1;
    }
    assert_true(saw_nomem);
}

/* Every allocation of the loader may fail: no crash, no leak, NOMEM; also
 * while concatenations are split and materialised. */
static void test_loader_allocation_failures(void **s) {
    (void)s;
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, 3, 3, 2}, fd[4] = {3, 3, 2, 2}, f4d[4] = {1, 1, 4, 2}, sd[0] = {};
    int32_t axis = 3;
    float f[36], f4[8];
    fill(f, 36, 1);
    fill(f4, 8, 2);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    gb_const(&g, "f4", f4d, 4, f4);
    gb_iconst(&g, "axis", sd, 0, &axis);
    gb_node(&g, "y", "Conv2D", "\"x\",\"f\"", SAME);
    gb_node(&g, "r", "Relu", "\"y\"", NULL);
    check_allocation_failures(&g, "r");
    gb_node(&g, "n", "Neg", "\"y\"", NULL);
    gb_node(&g, "cat", "ConcatV2", "\"y\",\"n\",\"axis\"", NULL);
    gb_node(&g, "pool", "MaxPool", "\"cat\"", SAME "," STRIDES(1) "," KSIZE3);
    gb_node(&g, "relu", "Relu", "\"pool\"", NULL);
    gb_node(&g, "c4", "Conv2D", "\"relu\",\"f4\"", SAME "," STRIDES(1));
    gb_node(&g, "sum", "AddV2", "\"c4\",\"c4\"", NULL);
    check_allocation_failures(&g, "sum");
    gb_node(&g, "twice", "AddV2", "\"cat\",\"cat\"", NULL);
    check_allocation_failures(&g, "twice");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_same_valid_strided),
        cmocka_unit_test(test_depthwise_with_multiplier),
        cmocka_unit_test(test_fused_conv_and_batchnorm_folding),
        cmocka_unit_test(test_add_relu_maxpool_pad_reshape),
        cmocka_unit_test(test_mean_matmul_sigmoid_softmax),
        cmocka_unit_test(test_l2norm_ops),
        cmocka_unit_test(test_fused_prelu),
        cmocka_unit_test(test_neg_and_channel_concat),
        cmocka_unit_test(test_concat_parts_nested_and_whole),
        cmocka_unit_test(test_concat_other_axis_is_refused),
        cmocka_unit_test(test_input_cut_and_shape),
        cmocka_unit_test(test_unsupported_op_names_op_and_node),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_loader_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
