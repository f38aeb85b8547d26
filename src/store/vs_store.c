/* vs_store.c - the store front door: picks a backend from the URL and checks
 * every bucket and key before a backend sees it, so that no backend has to
 * think about "..", absolute paths or control characters on its own. */
#include "vs_store.h"

#include <string.h>

#include "vs_store_internal.h"

#define KEY_MAX 512

/* 1 when the n bytes at seg are "." or "..": path segments that would climb
 * or alias on a filesystem. */
static int is_dot_segment(const char *seg, size_t n) {
    return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/* Walks the '/'-separated segments of a key or list prefix: none empty
 * ("a//b", "a/" would alias "a/b" and name a directory) except, for a
 * prefix, the last one, none "." or "..", no control characters or '\\'. */
static int path_ok(const char *key, int is_prefix) {
    if (!key) return 0;
    size_t n = strlen(key);
    if (n == 0) return is_prefix;
    if (n > KEY_MAX || key[0] == '/') return 0;
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i == n || c == '/') {
            if ((i == seg && !(is_prefix && i == n)) || is_dot_segment(key + seg, i - seg)) return 0;
            seg = i + 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\') return 0;
    }
    return 1;
}

int vs_store_key_ok(const char *key) { return path_ok(key, 0); }

int vs_store_prefix_ok(const char *prefix) { return path_ok(prefix, 1); }

vs_err vs_store_open(const char *url, vs_store **out, vs_error *err) {
    *out = NULL;
    if (!url || !url[0]) return vs_fail(err, VS_ERR_INVALID_ARG, "store: empty URL (want file://DIR or s3://)");
    if (!strncmp(url, "file://", 7)) {
        const char *dir = url + 7; /* "file:///abs" -> "/abs", "file://rel" -> "rel" */
        if (!dir[0]) return vs_fail(err, VS_ERR_INVALID_ARG, "store %s: no directory after file://", url);
        return vs_store_fs_open(dir, out, err);
    }
    if (!strncmp(url, "s3://", 5)) return vs_store_s3_open(url + 5, out, err); /* "" or a bucket prefix */
    const char *colon = strstr(url, "://");
    int scheme_len = colon ? (int)(colon - url) : (int)strlen(url);
    return vs_fail(err, VS_ERR_UNSUPPORTED, "store %s: scheme \"%.*s\" is not supported (want file://DIR or s3://)",
                   url, scheme_len > 32 ? 32 : scheme_len, url);
}

const char *vs_store_printable(const char *s, char *out, size_t cap) {
    size_t i = 0;
    for (; s && s[i] && i + 4 < cap && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s && s[i] && i + 4 < cap) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}
