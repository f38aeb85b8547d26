/* fuzz_base64.c - libFuzzer target for vs_base64_decode (every image_b64 of
 * a JSON request, every vector of a distributed result message) and the
 * encode -> decode round trip. Any input: decoding must not crash or write
 * past what it allocated; bytes encoded must decode to themselves, and the
 * text decoded, once re-encoded, must decode to the same bytes again.
 * Build and run: tests/fuzz/run.sh base64 [seconds] */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_base64.h"

/* Decodes encode(b) and aborts unless it gives back b. */
static void round_trip(const uint8_t *b, size_t n) {
    char *e = vs_base64_encode(b, n);
    if (!e) return;
    if (strlen(e) != (n + 2) / 3 * 4) abort();
    uint8_t *d = NULL;
    size_t dn = 0;
    if (vs_base64_decode(e, strlen(e), &d, &dn) != 0 || dn != n || (n && memcmp(d, b, n) != 0)) abort();
    vs_free(d);
    vs_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the text in its own allocation, so ASan sees a read past its end */
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    uint8_t *out = NULL;
    size_t n = 0;
    if (vs_base64_decode(in, size, &out, &n) == 0) {
        if (n > size / 4 * 3 + 3) abort();
        round_trip(out, n);
        vs_free(out);
    }
    round_trip(data, size);
    free(in);
    return 0;
}
