/* vs_hash.h - SHA-256, HMAC-SHA-256, hex, and the deterministic point ids of
 * DESIGN.md (a re-processed message overwrites instead of duplicating). */
#ifndef VS_HASH_H
#define VS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define VS_SHA256_HEX 65   /* 64 hex digits + NUL */
#define VS_UUID_STR 37     /* 8-4-4-4-12 + NUL */

void vs_sha256(const void *data, size_t len, uint8_t out[32]);
void vs_sha256_hex(const void *data, size_t len, char out[VS_SHA256_HEX]);
void vs_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32]);
void vs_hex(const uint8_t *bytes, size_t n, char *out); /* out: 2n+1 chars */

/* UUID (version 5 layout, SHA-256 based) of the NUL-separated parts: the same
 * parts always give the same id. Used for faces: (tenant, image_sha256, index). */
void vs_uuid_from(const char *const *parts, int n_parts, char out[VS_UUID_STR]);
void vs_face_id(const char *tenant, const char *image_sha256, int face_index, char out[VS_UUID_STR]);
/* A new random id of the same layout for a thing of `kind` (identity,
 * block) of tenant; 0, or -1 when the system has no randomness. */
int vs_uuid_random(const char *kind, const char *tenant, char out[VS_UUID_STR]);

/* Constant-time comparison of two NUL-terminated strings (API keys, signatures). */
int vs_secure_streq(const char *a, const char *b);

/* Fills buf with n cryptographically random bytes; 0 on success. */
int vs_random_bytes(void *buf, size_t n);

/* Milliseconds since an arbitrary fixed point (monotonic) and since the epoch. */
int64_t vs_now_ms(void);
int64_t vs_wall_ms(void);
/* Nanoseconds on the same monotonic clock (stage timings). */
int64_t vs_now_ns(void);

#endif
