/* test_models.c - the real models in C against the independent tfjs
 * reference (tests/data/ref, produced by tests/ref/make_ref.js with
 * @tensorflow/tfjs on the cpu backend). Inputs are regenerated here with the
 * same integer formulas; every output element is compared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vs_alloc.h"
#include "vs_dlib_resnet.h"
#include "vs_faceboxes.h"
#include "vs_image.h"
#include "vs_nn.h"

/* The bound: max abs error <= 1e-3, relative to the output's scale
 * (blazeface logits reach |457|; float32 sums in another order differ there
 * by ~1e-5 relative). */
#define TOL_REL 1e-3

static double gen_u(int gen, size_t i, int x, int y, int c) {
    if (gen == 0) {
        uint32_t h = (uint32_t)i * 2654435761u;
        return (double)(h % 1000u) / 999.0;
    }
    int t = (x * 3 + y * 5 + c * 7) % 512;
    return (double)(t < 256 ? t : 511 - t) / 255.0;
}

/* How a model's input is made from the generator's u in [0, 1]. */
typedef enum input_kind {
    IN_PM1,      /* u*2 - 1 */
    IN_255,      /* u*255 */
    IN_PIXELS    /* FaceBoxes: pixels round(u*255), standardised as its graph
                  * does in float32: p * (1/255 as float16), then 2x - 1 */
} input_kind;

static void fill_input(float *in, int h, int w, input_kind kind, int gen) {
    size_t i = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++, i++) {
                double u = gen_u(gen, i, x, y, c);
                if (kind == IN_PIXELS) {
                    float v = (float)floor(u * 255.0 + 0.5) * 0.0039215087890625f;
                    in[i] = 2.0f * v - 1.0f;
                } else {
                    in[i] = (float)(kind == IN_255 ? u * 255.0 : u * 2.0 - 1.0);
                }
            }
}

static void file_name(char *out, size_t cap, const char *model, int gen, const char *node) {
    char clean[128];
    snprintf(clean, sizeof clean, "%s", node);
    for (char *p = clean; *p; p++)
        if (*p == '/') *p = '_';
    snprintf(out, cap, "%s/tests/data/ref/%s_%s__%s.f32", VS_SOURCE_DIR, model, gen ? "gradient" : "hash", clean);
}

static const char *models_dir(void) {
    return getenv("VISAGE_MODELS") ? getenv("VISAGE_MODELS") : VS_SOURCE_DIR "/models";
}

/* Reads reference output `node` of `model` for generator gen: n floats
 * (the caller frees). */
static float *read_ref(const char *model, int gen, const char *node, size_t n) {
    char f[600];
    file_name(f, sizeof f, model, gen, node);
    uint8_t *ref = NULL;
    size_t len = 0;
    vs_error err = {0};
    if (vs_read_file(f, 1 << 24, &ref, &len, &err) != VS_OK) fail_msg("%s", err.msg);
    if (len != n * 4) fail_msg("%s: %zu bytes, expected %zu", f, len, n * 4);
    return (float *)ref;
}

/* Runs m on both generated inputs and compares every output element with
 * the reference files of `model`; frees m. Outputs whose scale is below 1 are
 * held to TOL_REL of 1 unless `strict`, then to TOL_REL of their own scale. */
static void compare_to_ref(const char *model, vs_model *m, int h, int w, input_kind kind, const char **outs,
                           int n_outs, int strict) {
    vs_runtime *rt = NULL;
    vs_error err = {0};
    if (vs_runtime_new(m, 1, &rt, &err) != VS_OK) fail_msg("%s", err.msg);
    for (int gen = 0; gen < 2; gen++) {
        fill_input(vs_runtime_input(rt), h, w, kind, gen);
        if (vs_runtime_run(rt, &err) != VS_OK) fail_msg("%s", err.msg);
        for (int k = 0; k < n_outs; k++) {
            vs_shape s = vs_model_output_shape(m, k);
            size_t n = 1;
            for (int d = 0; d < s.ndim; d++) n *= s.dims[d];
            float *ref = read_ref(model, gen, outs[k], n);
            const float *r = ref, *got = vs_runtime_output(rt, k);
            double scale = 0, worst = 0;
            for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(r[i]));
            for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - r[i]));
            printf("# %s %s %s: %zu values, max|ref| %.4g, max abs err %.3g (%.3g relative)\n", model,
                   gen ? "gradient" : "hash", outs[k], n, scale, worst, worst / fmax(scale, 1e-12));
            if (worst > TOL_REL * (strict ? scale : fmax(scale, 1.0))) fail_msg("%s %s: max abs error %g", model, outs[k], worst);
            vs_free(ref);
        }
    }
    vs_runtime_free(rt);
    vs_model_free(m);
}

static void check_model(const char *model, int size, int range255, const char **outs, int n_outs) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", models_dir(), model);
    vs_model_opts o = {.batch = 1, .n_outputs = n_outs};
    for (int i = 0; i < n_outs; i++) o.outputs[i] = outs[i];
    vs_model *m = NULL;
    vs_error err = {0};
    if (vs_model_load(path, &o, &m, &err) != VS_OK) fail_msg("%s", err.msg);
    compare_to_ref(model, m, size, size, range255 ? IN_255 : IN_PM1, outs, n_outs, 0);
}

/* dlib's ResNet is built in C from a weights-only manifest, with every affine
 * and the input normalisation folded in; the reference is tfjs running
 * face-api's layer order (tests/ref/dlib_resnet.js). Its descriptor values
 * are ~0.3, so the bound is relative to that, not to 1. */
static void test_dlib_resnet_matches_tfjs(void **s) {
    (void)s;
    char path[512];
    snprintf(path, sizeof path, "%s/face_recognition_model-weights_manifest.json", models_dir());
    vs_model *m = NULL;
    vs_error err = {0};
    if (vs_dlib_resnet_load(path, &m, &err) != VS_OK) fail_msg("%s", err.msg);
    vs_shape in = vs_model_input_shape(m), out = vs_model_output_shape(m, 0);
    assert_int_equal(in.dims[1], 150);
    assert_int_equal(out.dims[out.ndim - 1], 128);
    const char *outs[] = {"descriptor"};
    compare_to_ref("dlib-resnet", m, 150, 150, IN_255, outs, 1, 1);
}

/* A manifest without one of the weights the layer order needs is refused
 * with the manifest and the weight named, not a crash. */
static void test_dlib_resnet_missing_weight_is_named(void **s) {
    (void)s;
    char src[512], dir[] = "/tmp/vs_dlib_XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/face_recognition_model-weights_manifest.json", models_dir());
    uint8_t *json = NULL;
    size_t len = 0;
    vs_error err = {0};
    assert_int_equal(vs_read_file(src, 1 << 24, &json, &len, &err), VS_OK);
    /* rename the fc weight: same bytes, so the shard still fits */
    char *fc = strstr((char *)json, "\"fc\"");
    assert_non_null(fc);
    fc[1] = 'x';
    char dst[600], bin_src[600], bin_dst[600];
    snprintf(dst, sizeof dst, "%s/m.json", dir);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    fwrite(json, 1, len, f);
    fclose(f);
    vs_free(json);
    snprintf(bin_src, sizeof bin_src, "%s/face_recognition_model.bin", models_dir());
    snprintf(bin_dst, sizeof bin_dst, "%s/face_recognition_model.bin", dir);
    assert_int_equal(symlink(bin_src, bin_dst), 0);
    vs_model *m = NULL;
    assert_int_equal(vs_dlib_resnet_load(dst, &m, &err), VS_ERR_MODEL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "m.json"));
    assert_non_null(strstr(err.msg, "weight fc"));
    unlink(bin_dst);
    unlink(dst);
    rmdir(dir);
}

static void test_blazeface_back_matches_tfjs(void **s) {
    (void)s;
    const char *outs[] = {"Identity", "Identity_1", "Identity_2", "Identity_3"};
    check_model("blazeface-back", 256, 0, outs, 4);
}

/* FaceBoxes cut at its standardised input and its six prediction layers
 * (Neg and channel concatenations inside), on 256x384: not square, so a
 * swapped height and width would not load or not match. */
static void test_faceboxes_matches_tfjs(void **s) {
    (void)s;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", models_dir(), VS_FACEBOXES_MODEL);
    vs_model *m = NULL;
    vs_error err = {0};
    if (vs_faceboxes_load(path, 256, 384, &m, &err) != VS_OK) fail_msg("%s", err.msg);
    compare_to_ref("faceboxes", m, 256, 384, IN_PIXELS, (const char **)vs_faceboxes_outputs, 6, 0);
}

/* The C decoder against the graph's own postprocessing on the same
 * prediction-layer outputs: anchors, face probability and decoded box of
 * every anchor, in order. */
static void test_faceboxes_decode_matches_tfjs(void **s) {
    (void)s;
    enum { H = 256, W = 384, N = 8 * 12 * 21 + 4 * 6 + 2 * 3 };
    static const size_t sizes[6] = {8 * 12 * 42, 8 * 12 * 84, 4 * 6 * 2, 4 * 6 * 4, 2 * 3 * 2, 2 * 3 * 4};
    static float anchors[N * 4];
    static vs_face_det d[N];
    assert_int_equal(vs_faceboxes_anchors(H, W, anchors, N), N);
    for (int gen = 0; gen < 2; gen++) {
        float *outs[6];
        for (int k = 0; k < 6; k++) outs[k] = read_ref("faceboxes", gen, vs_faceboxes_outputs[k], sizes[k]);
        float *ra = read_ref("faceboxes", gen, "concatenate/clip_by_value", N * 4);
        float *rs = read_ref("faceboxes", gen, "postprocessing/strided_slice_2", N);
        float *rb = read_ref("faceboxes", gen, "postprocessing/clip_by_value_1", N * 4);
        assert_int_equal(vs_faceboxes_decode((const float *const *)outs, H, W, 0, W, H, d, N), N);
        double wa = 0, ws = 0, wb = 0;
        for (int i = 0; i < N; i++) {
            float got[4] = {d[i].y / H, d[i].x / W, (d[i].y + d[i].h) / H, (d[i].x + d[i].w) / W};
            float an[4] = {anchors[4 * i] / H, anchors[4 * i + 1] / W, anchors[4 * i + 2] / H, anchors[4 * i + 3] / W};
            for (int k = 0; k < 4; k++) {
                wa = fmax(wa, fabs(an[k] - ra[4 * i + k]));
                wb = fmax(wb, fabs(got[k] - rb[4 * i + k]));
            }
            ws = fmax(ws, fabs(d[i].score - rs[i]));
        }
        /* boxes: the graph's variances are 0.1 and 0.2 stored as float16 */
        printf("# faceboxes decode %s: %d anchors, max abs err anchors %.3g, scores %.3g, boxes %.3g\n",
               gen ? "gradient" : "hash", N, wa, ws, wb);
        assert_true(wa < 1e-5);
        assert_true(ws < 1e-5);
        assert_true(wb < 1e-3);
        for (int k = 0; k < 6; k++) vs_free(outs[k]);
        vs_free(ra);
        vs_free(rs);
        vs_free(rb);
    }
}

static void test_faceres_matches_tfjs(void **s) {
    (void)s;
    const char *outs[] = {"global_pooling/Mean", "gender_pred/Sigmoid", "age_pred/Softmax"};
    check_model("faceres", 224, 1, outs, 3);
}

/* A corrupted shard is caught: the loader names the model when the weights
 * do not add up. */
static void test_truncated_shard_is_reported(void **s) {
    (void)s;
    char dir[] = "/tmp/vs_model_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[512], dst[600];
    const char *models = getenv("VISAGE_MODELS") ? getenv("VISAGE_MODELS") : VS_SOURCE_DIR "/models";
    uint8_t *buf = NULL;
    size_t len = 0;
    vs_error err = {0};
    snprintf(src, sizeof src, "%s/blazeface-back.json", models);
    assert_int_equal(vs_read_file(src, 1 << 24, &buf, &len, &err), VS_OK);
    snprintf(dst, sizeof dst, "%s/blazeface-back.json", dir);
    FILE *f = fopen(dst, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    vs_free(buf);
    snprintf(src, sizeof src, "%s/blazeface-back.bin", models);
    assert_int_equal(vs_read_file(src, 1 << 24, &buf, &len, &err), VS_OK);
    snprintf(dst, sizeof dst, "%s/blazeface-back.bin", dir);
    f = fopen(dst, "wb");
    fwrite(buf, 1, len / 2, f);
    fclose(f);
    vs_free(buf);
    vs_model *m = NULL;
    snprintf(dst, sizeof dst, "%s/blazeface-back.json", dir);
    vs_model_opts o = {.n_outputs = 1, .outputs = {"Identity"}};
    assert_int_equal(vs_model_load(dst, &o, &m, &err), VS_ERR_MODEL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "fetch-models"));
    snprintf(dst, sizeof dst, "%s/blazeface-back.bin", dir);
    unlink(dst);
    assert_int_equal(vs_model_load(dst, &o, &m, &err), VS_ERR_MODEL);
    snprintf(dst, sizeof dst, "%s/blazeface-back.json", dir);
    assert_int_equal(vs_model_load(dst, &o, &m, &err), VS_ERR_MODEL);
    assert_non_null(strstr(err.msg, "blazeface-back.bin"));
    unlink(dst);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blazeface_back_matches_tfjs),
        cmocka_unit_test(test_faceres_matches_tfjs),
        cmocka_unit_test(test_faceboxes_matches_tfjs),
        cmocka_unit_test(test_faceboxes_decode_matches_tfjs),
        cmocka_unit_test(test_dlib_resnet_matches_tfjs),
        cmocka_unit_test(test_dlib_resnet_missing_weight_is_named),
        cmocka_unit_test(test_truncated_shard_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
