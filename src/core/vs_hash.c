/* vs_hash.c - hashing and ids on OpenSSL's libcrypto, plus clocks. */
#include "vs_hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void vs_sha256(const void *data, size_t len, uint8_t out[32]) {
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void vs_hex(const uint8_t *b, size_t n, char *out) {
    static const char *d = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void vs_sha256_hex(const void *data, size_t len, char out[VS_SHA256_HEX]) {
    uint8_t h[32];
    vs_sha256(data, len, h);
    vs_hex(h, 32, out);
}

void vs_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32]) {
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

void vs_uuid_from(const char *const *parts, int n_parts, char out[VS_UUID_STR]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t h[32];
    unsigned int n = 32;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; i < n_parts; i++) EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1); /* with NUL: no ambiguity */
    EVP_DigestFinal_ex(ctx, h, &n);
    EVP_MD_CTX_free(ctx);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x50); /* version 5 layout */
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char hex[33];
    vs_hex(h, 16, hex);
    snprintf(out, VS_UUID_STR, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void vs_face_id(const char *tenant, const char *image_sha256, int face_index, char out[VS_UUID_STR]) {
    char idx[16];
    snprintf(idx, sizeof idx, "%d", face_index);
    const char *parts[4] = {"visage-face", tenant, image_sha256, idx};
    vs_uuid_from(parts, 4, out);
}

int vs_uuid_random(const char *kind, const char *tenant, char out[VS_UUID_STR]) {
    uint8_t rnd[16];
    char hex[33];
    if (vs_random_bytes(rnd, sizeof rnd) != 0) return -1;
    vs_hex(rnd, sizeof rnd, hex);
    const char *parts[3] = {kind, tenant, hex};
    vs_uuid_from(parts, 3, out);
    return 0;
}

int vs_secure_streq(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int vs_random_bytes(void *buf, size_t n) { return RAND_bytes(buf, (int)n) == 1 ? 0 : -1; }

int64_t vs_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vs_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t vs_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
