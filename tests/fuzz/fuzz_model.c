/* fuzz_model.c - libFuzzer target: any bytes as a model.json (with a small
 * weights blob) into the TF.js loader and lowering. Must never crash or
 * leak; every failure must be a vs_err. */
#include <stddef.h>
#include <stdint.h>

#include "vs_nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static float weights[4096];
    vs_model_opts o = {.batch = 1, .n_outputs = 1, .outputs = {"y"}};
    vs_model *m = NULL;
    vs_error err;
    if (vs_model_load_mem((const char *)data, size, weights, sizeof weights, &o, &m, &err) == VS_OK) vs_model_free(m);
    return 0;
}
