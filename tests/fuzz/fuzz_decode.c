/* fuzz_decode.c - libFuzzer target: any bytes into vs_image_decode with a
 * small pixel budget. Must never crash, leak or read out of bounds; errors
 * are fine. Build and run: tests/fuzz/run.sh decode [seconds] */
#include <stddef.h>
#include <stdint.h>

#include "vs_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vs_decode_opts o = {.max_pixels = 4000000};
    vs_image img = {0};
    vs_error err;
    if (vs_image_decode(data, size, &o, &img, &err) == VS_OK) vs_image_free(&img);
    return 0;
}
