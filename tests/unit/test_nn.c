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

static vs_err gb_load(gb *g, const char *output, vs_model **m, vs_error *err) {
    static char json[65536];
    snprintf(json, sizeof json,
             "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[%s]},"
             "\"weightsManifest\":[{\"paths\":[\"x.bin\"],\"weights\":[%s]}]}",
             g->nodes, g->weights);
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {output}};
    return vs_model_load_mem(json, strlen(json), g->blob, g->blob_len, &o, m, err);
}

/* Loads, runs once on `in` and copies the output into out. */
static void run_graph(gb *g, const char *output, const float *in, size_t n_in, float *out, size_t n_out) {
    vs_model *m = NULL;
    vs_runtime *rt = NULL;
    vs_error err = {0};
    vs_err rc = gb_load(g, output, &m, &err);
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

/* Every allocation of the loader may fail: no crash, no leak, NOMEM. */
static void test_loader_allocation_failures(void **s) {
    (void)s;
    static gb g;
    memset(&g, 0, sizeof g);
    int in_dims[4] = {1, 3, 3, 2}, fd[4] = {3, 3, 2, 2};
    float f[36];
    fill(f, 36, 1);
    gb_input(&g, "x", in_dims, 4);
    gb_const(&g, "f", fd, 4, f);
    gb_node(&g, "y", "Conv2D", "\"x\",\"f\"", SAME);
    gb_node(&g, "r", "Relu", "\"y\"", NULL);
    int saw_nomem = 0;
    for (long n = 0; n < 400; n++) {
        vs_model *m = NULL;
        vs_error err = {0};
        vs_alloc_fail_after(n);
        vs_err rc = gb_load(&g, "r", &m, &err);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_same_valid_strided),
        cmocka_unit_test(test_depthwise_with_multiplier),
        cmocka_unit_test(test_fused_conv_and_batchnorm_folding),
        cmocka_unit_test(test_add_relu_maxpool_pad_reshape),
        cmocka_unit_test(test_mean_matmul_sigmoid_softmax),
        cmocka_unit_test(test_l2norm_ops),
        cmocka_unit_test(test_fused_prelu),
        cmocka_unit_test(test_unsupported_op_names_op_and_node),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_loader_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
