/* fuzz_multipart.c - libFuzzer target for vs_multipart_parse, which splits
 * every multipart upload (POST /ingest, /search) before authentication
 * decides anything. Input: a Content-Type line, '\n', then the body. Every
 * part must lie inside the body, in order, with NUL-terminated names.
 * Build and run: tests/fuzz/run.sh multipart [seconds] */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || nl - data > 512) return 0;
    char ct[513];
    size_t cl = (size_t)(nl - data);
    memcpy(ct, data, cl);
    ct[cl] = '\0';
    /* the body in its own allocation, so ASan sees a read past its end */
    size_t blen = size - cl - 1;
    char *body = malloc(blen ? blen : 1);
    if (!body) return 0;
    memcpy(body, nl + 1, blen);
    vs_part parts[8];
    int n = vs_multipart_parse(ct, body, blen, parts, 8);
    if (n < -1 || n > 8) abort();
    const char *prev = body;
    for (int i = 0; i < n; i++) {
        const vs_part *p = &parts[i];
        if (p->data < prev || p->data > body + blen || p->len > (size_t)(body + blen - p->data)) abort();
        if (!memchr(p->name, 0, sizeof p->name) || !memchr(p->filename, 0, sizeof p->filename)) abort();
        prev = p->data + p->len;
    }
    free(body);
    return 0;
}
