/* vs_dlib_resnet.c - dlib's face recognition ResNet (Davis King, 2017; 128-d,
 * 99.38 % on LFW), as face-api ships it: weights only, in a TF.js manifest
 * (face_recognition_model-weights_manifest.json). The layer order below was
 * read from dlib's dnn_face_recognition_ex.cpp and face-api's TypeScript:
 *
 *   input 150x150 RGB, (x - mean RGB) / 255
 *   conv 7x7/2 valid, 32  + affine + relu      -> 72x72
 *   max pool 3x3/2 valid                       -> 35x35
 *   3 x residual 32                            (conv3 relu conv3, + x, relu)
 *   residual-down 64, 3 x residual 64          -> 17x17
 *   residual-down 128, 2 x residual 128        -> 8x8
 *   residual-down 256, 2 x residual 256        -> 4x4
 *   residual-down 256                          -> 2x2
 *   mean over H,W, fc 256 -> 128 (no bias)
 *
 * A residual-down block convolves 3x3/2 valid then 3x3 same, and adds the
 * input average-pooled 2x2/2 with its channels zero-padded; where the two
 * differ in size (8 -> 3 vs 4, 4 -> 1 vs 2) the smaller is zero-padded at the
 * bottom and right, as dlib's add_prev does. Every "affine" (dlib's frozen
 * batch norm) and the input normalisation are folded into the convolutions
 * here, so XNNPACK runs 30 convolutions, the adds, a pool, a mean and a
 * matmul on raw 0..255 pixels. */
#include "vs_dlib_resnet.h"

#include <stdio.h>
#include <string.h>


static const float mean_rgb[3] = {122.782f, 117.001f, 104.298f};
#define INPUT_SCALE (1.0f / 255.0f)

/* A convolution with its affine folded in: w' = w * s, b' = b * s + t. When
 * first, (x - mean) * INPUT_SCALE is folded too (exact: that conv is VALID). */
static int conv_affine(vs_nn_builder *b, int x, const char *name, int k, int cin, int cout, int stride, int same,
                       int relu, int first) {
    char n[128];
    int fd[4] = {k, k, cin, cout}, cd[1] = {cout};
    snprintf(n, sizeof n, "%s/conv/filters", name);
    const float *f = vs_nn_weight(b, n, 4, fd);
    snprintf(n, sizeof n, "%s/conv/bias", name);
    const float *bias = vs_nn_weight(b, n, 1, cd);
    snprintf(n, sizeof n, "%s/scale/weights", name);
    const float *s = vs_nn_weight(b, n, 1, cd);
    snprintf(n, sizeof n, "%s/scale/biases", name);
    const float *t = vs_nn_weight(b, n, 1, cd);
    if (!f || !bias || !s || !t) return -1;
    size_t nw = (size_t)k * k * cin * cout;
    float *w = vs_nn_scratch(b, nw), *bb = vs_nn_scratch(b, (size_t)cout);
    if (!w || !bb) return -1;
    for (int o = 0; o < cout; o++) bb[o] = bias[o];
    for (size_t i = 0; i < nw; i++) {
        int o = (int)(i % (size_t)cout), c = (int)(i / (size_t)cout % (size_t)cin);
        float wi = f[i];
        if (first) {
            bb[o] -= wi * mean_rgb[c] * INPUT_SCALE;
            wi *= INPUT_SCALE;
        }
        w[i] = wi * s[o];
    }
    for (int o = 0; o < cout; o++) bb[o] = bb[o] * s[o] + t[o];
    return vs_nn_conv(b, x, w, bb, k, k, cin, cout, stride, same, relu);
}

static int residual(vs_nn_builder *b, int x, const char *name, int c) {
    char n1[96], n2[96];
    snprintf(n1, sizeof n1, "%s/conv1", name);
    snprintf(n2, sizeof n2, "%s/conv2", name);
    int y = conv_affine(b, x, n1, 3, c, c, 1, 1, 1, 0);
    y = conv_affine(b, y, n2, 3, c, c, 1, 1, 0, 0);
    return vs_nn_add(b, y, x, 1);
}

/* side: input H = W. The shortcut (2x2 average pool + zero channels) is one
 * 2x2/2 convolution whose filter is 1/4 on the channel diagonal. */
static int residual_down(vs_nn_builder *b, int x, const char *name, int side, int cin, int cout) {
    char n1[96], n2[96];
    snprintf(n1, sizeof n1, "%s/conv1", name);
    snprintf(n2, sizeof n2, "%s/conv2", name);
    int y = conv_affine(b, x, n1, 3, cin, cout, 2, 0, 1, 0);
    y = conv_affine(b, y, n2, 3, cout, cout, 1, 1, 0, 0);
    int conv_side = (side - 3) / 2 + 1, pool_side = side / 2;
    if (pool_side > conv_side) y = vs_nn_pad(b, y, 0, pool_side - conv_side, 0, pool_side - conv_side);
    float *pw = vs_nn_scratch(b, (size_t)4 * cin * cout);
    if (!pw) return -1;
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < cin; c++) pw[((size_t)i * cin + c) * cout + c] = 0.25f;
    int p = vs_nn_conv(b, x, pw, NULL, 2, 2, cin, cout, 2, 0, 0);
    return vs_nn_add(b, y, p, 1);
}

vs_err vs_dlib_resnet_load(const char *manifest_path, vs_model **out, vs_error *err) {
    vs_nn_builder *b;
    *out = NULL;
    vs_err rc = vs_nn_builder_open(manifest_path, &b, err);
    if (rc != VS_OK) return rc;
    int x = vs_nn_input(b, VS_DLIB_INPUT, VS_DLIB_INPUT, 3);
    x = conv_affine(b, x, "conv32_down", 7, 3, 32, 2, 0, 1, 1);  /* 72 */
    x = vs_nn_maxpool(b, x, 3, 2, 0);                              /* 35 */
    x = residual(b, x, "conv32_1", 32);
    x = residual(b, x, "conv32_2", 32);
    x = residual(b, x, "conv32_3", 32);
    x = residual_down(b, x, "conv64_down", 35, 32, 64);            /* 17 */
    x = residual(b, x, "conv64_1", 64);
    x = residual(b, x, "conv64_2", 64);
    x = residual(b, x, "conv64_3", 64);
    x = residual_down(b, x, "conv128_down", 17, 64, 128);          /* 8 */
    x = residual(b, x, "conv128_1", 128);
    x = residual(b, x, "conv128_2", 128);
    x = residual_down(b, x, "conv256_down", 8, 128, 256);          /* 4 */
    x = residual(b, x, "conv256_1", 256);
    x = residual(b, x, "conv256_2", 256);
    x = residual_down(b, x, "conv256_down_out", 4, 256, 256);      /* 2 */
    x = vs_nn_mean_hw(b, x);
    int fd[2] = {256, VS_DLIB_DIM};
    x = vs_nn_matmul(b, x, vs_nn_weight(b, "fc", 2, fd), 256, VS_DLIB_DIM);
    rc = vs_nn_builder_finish(b, x, out, err);
    vs_nn_builder_free(b);
    return rc;
}
