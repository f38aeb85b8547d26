/* fuzz_s3_xml.c - libFuzzer target for what the S3 client reads from the
 * server (src/store/vs_s3_xml.c): the body as an error answer (its <Code>)
 * and as a ListObjectsV2 page, listed with and without a prefix, and its
 * first bytes through the entity decoder. Properties: a code is printable
 * and fits; every listed key is a valid store key under the prefix; the
 * token is NUL-terminated inside its buffer; text without '&' decodes to
 * itself. Build and run: tests/fuzz/run.sh s3_xml [seconds] */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_s3_xml.h"
#include "vs_store.h"

typedef struct seen {
    const char *prefix;
    int n, stop_at;
} seen;

/* Each key handed out must be one the store could have written. */
static int on_key(void *ctx, const char *key, size_t size) {
    seen *s = ctx;
    (void)size;
    if (!vs_store_key_ok(key) || strncmp(key, s->prefix, strlen(s->prefix)) != 0) abort();
    return ++s->n == s->stop_at;
}

/* Lists body under prefix, stopping at the stop_at-th key (0: never). */
static void list(const char *body, size_t len, const char *prefix, int stop_at) {
    char token[64];
    memset(token, 'x', sizeof token);
    int stopped = 0;
    seen s = {prefix, 0, stop_at};
    vs_err rc = vs_s3_list_page("b", prefix, body, len, on_key, &s, &stopped, token, sizeof token, NULL);
    if (rc == VS_OK && !stopped && !memchr(token, 0, sizeof token)) abort();
    if (stopped && s.n != stop_at) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = malloc(size ? size : 1); /* own allocation: ASan sees reads past the end */
    if (!body) return 0;
    memcpy(body, data, size);
    char code[32];
    vs_s3_error_code(body, size, code, sizeof code);
    for (const char *c = code; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) abort();
    list(body, size, "", 0);
    list(body, size, "acme/", 2);
    char out[128];
    size_t n = size < 100 ? size : 100;
    long k = vs_s3_xml_unescape(body, n, out, sizeof out);
    if (k >= (long)sizeof out || (k >= 0 && out[k] != '\0')) abort();
    if (k >= 0 && !memchr(body, '&', n) && ((size_t)k != n || memcmp(out, body, n) != 0)) abort();
    free(body);
    return 0;
}
