/* vs_presign.c - signed, expiring blob URLs served by the API
 * (/api/v1/blobs/{bucket}/{key}?expires=..&sig=..), so a browser can show a
 * crop without an API key. The signature is HMAC-SHA-256 with the server
 * secret over "bucket\nkey\nexpires"; bucket and key must pass
 * vs_store_key_ok, which forbids '\n', so no two triples sign the same text. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vs_hash.h"
#include "vs_store.h"

#define KEY_MAX 512
#define SIGNED_MAX (2 * KEY_MAX + 32)

/* Hex HMAC of "bucket\nkey\nexpires" into hex; 0 when bucket or key is not a
 * valid store name (then nothing can be signed or checked). */
static int sign(const uint8_t *secret, size_t secret_len, const char *bucket, const char *key, int64_t expires,
                char hex[VS_SHA256_HEX]) {
    if (!vs_store_key_ok(bucket) || !vs_store_key_ok(key) || !secret) return 0;
    char msg[SIGNED_MAX];
    int n = snprintf(msg, sizeof msg, "%s\n%s\n%" PRId64, bucket, key, expires);
    if (n < 0 || (size_t)n >= sizeof msg) return 0;
    uint8_t mac[32];
    vs_hmac_sha256(secret, secret_len, msg, (size_t)n, mac);
    vs_hex(mac, sizeof mac, hex);
    return 1;
}

/* Appends s percent-encoded (RFC 3986: all but unreserved characters, and
 * '/' when keep_slash) at out[*pos]; 0 when it does not fit in cap. */
static int encode(const char *s, int keep_slash, char *out, size_t cap, size_t *pos) {
    static const char *hx = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
        if (*pos + (plain ? 1 : 3) >= cap) return 0;
        if (plain) {
            out[(*pos)++] = (char)c;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hx[c >> 4];
            out[(*pos)++] = hx[c & 15];
        }
    }
    out[*pos] = '\0';
    return 1;
}

/* Writes the signed path, or "" when bucket/key are invalid or the path
 * does not fit in cap: a cut URL would only fail later, less clearly. */
void vs_presign_path(const uint8_t *secret, size_t secret_len, const char *bucket, const char *key,
                     int64_t expires_unix, char *out, size_t cap) {
    if (!out || cap == 0) return;
    out[0] = '\0';
    char sig[VS_SHA256_HEX];
    if (!sign(secret, secret_len, bucket, key, expires_unix, sig)) return;
    size_t pos = 0;
    static const char base[] = "/api/v1/blobs/";
    if (sizeof base >= cap) return;
    memcpy(out, base, sizeof base);
    pos = sizeof base - 1;
    if (!encode(bucket, 0, out, cap, &pos) || pos + 1 >= cap) goto too_small;
    out[pos++] = '/';
    if (!encode(key, 1, out, cap, &pos)) goto too_small;
    int n = snprintf(out + pos, cap - pos, "?expires=%" PRId64 "&sig=%s", expires_unix, sig);
    if (n < 0 || (size_t)n >= cap - pos) goto too_small;
    return;
too_small:
    out[0] = '\0';
}

/* 1 when sig_hex is the signature of (bucket, key, expires) and the link
 * has not expired; the comparison takes the same time wherever it differs. */
int vs_presign_check(const uint8_t *secret, size_t secret_len, const char *bucket, const char *key,
                     int64_t expires_unix, const char *sig_hex, int64_t now_unix) {
    char want[VS_SHA256_HEX];
    if (!sig_hex || !sign(secret, secret_len, bucket, key, expires_unix, want)) return 0;
    int ok = vs_secure_streq(want, sig_hex);
    return ok && expires_unix >= now_unix;
}
