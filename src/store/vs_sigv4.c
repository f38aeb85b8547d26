/* vs_sigv4.c - AWS Signature Version 4 signing maths for the s3:// store:
 * header signing for every request it sends and query signing for the
 * presigned URLs a browser follows. Requests are small (a few headers, a
 * short query), so everything is built in growable heap strings; nothing
 * here has state, so any thread may call it. */
#include "vs_sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_alloc.h"
#include "vs_buf.h"
#include "vs_hash.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A string being built on a vs_buf; any failure sets bad and later appends
 * do nothing, so builders check once at the end. */
typedef struct sbuf {
    vs_buf b;
    int bad;
} sbuf;

/* Makes room for n more bytes plus the NUL; 0 (and bad) when it cannot. */
static int sb_room(sbuf *s, size_t n) {
    if (!s->bad && (n > SIZE_MAX / 2 - s->b.len || vs_buf_reserve(&s->b, s->b.len + n) != VS_OK)) s->bad = 1;
    return !s->bad;
}

/* Appends n bytes of p. */
static void sb_put(sbuf *s, const char *p, size_t n) {
    if (!s->bad && vs_buf_append(&s->b, p, n) != VS_OK) s->bad = 1;
}

/* Appends the NUL-terminated s. */
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Appends one character. */
static void sb_chr(sbuf *b, char c) { sb_put(b, &c, 1); }

/* Appends s URI-encoded (see vs_sigv4_uri_encode). */
static void sb_enc(sbuf *b, const char *s, int encode_slash) {
    size_t n = vs_sigv4_uri_encode(s, encode_slash, NULL, 0);
    if (!sb_room(b, n)) return;
    vs_sigv4_uri_encode(s, encode_slash, (char *)b->b.data + b->b.len, n + 1);
    b->b.len += n;
}

/* Hands over the built string (NULL, freed, when anything failed). */
static char *sb_done(sbuf *b) {
    if (b->bad || !sb_room(b, 0)) {
        vs_buf_free(&b->b);
        return NULL;
    }
    return (char *)b->b.data;
}

/* 1 when c is kept as it is by the AWS URI encoding. */
static int unreserved(unsigned char c, int encode_slash) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || (c == '/' && !encode_slash);
}

size_t vs_sigv4_uri_encode(const char *s, int encode_slash, char *out, size_t cap) {
    static const char hx[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const char *p = s; p && *p; p++) n += unreserved((unsigned char)*p, encode_slash) ? 1 : 3;
    if (!out || cap == 0) return n;
    if (n >= cap) { /* a cut encoding would sign or send something else: write nothing */
        out[0] = '\0';
        return n;
    }
    size_t o = 0;
    for (const char *p = s; p && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (unreserved(c, encode_slash)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    out[o] = '\0';
    return n;
}

/* A query pair after encoding, for sorting. */
typedef struct enc_pair {
    char *name;
    char *value;
} enc_pair;

/* Orders pairs by encoded name, then encoded value (byte order, as AWS). */
static int pair_cmp(const void *a, const void *b) {
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* URI-encodes s ('/' too) into a new string; NULL when out of memory. */
static char *enc_dup(const char *s) {
    size_t n = vs_sigv4_uri_encode(s ? s : "", 1, NULL, 0);
    char *p = vs_malloc(n + 1);
    if (p) vs_sigv4_uri_encode(s ? s : "", 1, p, n + 1);
    return p;
}

char *vs_sigv4_canonical_query(const vs_sigv4_kv *query, int n) {
    if (n <= 0) {
        char *e = vs_malloc(1);
        if (e) e[0] = '\0';
        return e;
    }
    enc_pair *pairs = vs_calloc((size_t)n, sizeof *pairs);
    if (!pairs) return NULL;
    sbuf b = {0};
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        pairs[i].name = enc_dup(query[i].name);
        pairs[i].value = enc_dup(query[i].value);
        ok = pairs[i].name && pairs[i].value;
    }
    if (ok) {
        qsort(pairs, (size_t)n, sizeof *pairs, pair_cmp);
        for (int i = 0; i < n; i++) {
            if (i) sb_chr(&b, '&');
            sb_str(&b, pairs[i].name);
            sb_chr(&b, '=');
            sb_str(&b, pairs[i].value);
        }
        sb_room(&b, 0); /* n pairs of empty names still make a string */
    } else {
        b.bad = 1;
    }
    for (int i = 0; i < n; i++) {
        vs_free(pairs[i].name);
        vs_free(pairs[i].value);
    }
    vs_free(pairs);
    return sb_done(&b);
}

/* A header prepared for the canonical form. */
typedef struct canon_header {
    char *name;  /* lower-case */
    char *value; /* trimmed, inner space runs folded */
} canon_header;

/* Orders headers by lower-case name. */
static int header_cmp(const void *a, const void *b) {
    return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

/* Lower-cased copy of a header name; NULL when empty, when it holds a
 * character a header name may not (so nothing odd reaches the signature or
 * the wire), or when out of memory. */
static char *lower_name(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == ':') return NULL;
    }
    char *p = vs_malloc(n + 1);
    if (!p) return NULL;
    for (size_t i = 0; i <= n; i++) p[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    return p;
}

/* Trimmed copy of a header value with runs of spaces and tabs folded to
 * one space (AWS "Trimall"); NULL when it holds CR, LF or another control
 * character (header injection) or when out of memory. */
static char *trim_value(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    char *p = vs_malloc(n + 1);
    if (!p) return NULL;
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t') {
            space = o > 0;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            vs_free(p);
            return NULL;
        }
        if (space) p[o++] = ' ';
        space = 0;
        p[o++] = (char)c;
    }
    p[o] = '\0';
    return p;
}

char *vs_sigv4_canonical_request(const vs_sigv4_request *r, char *signed_headers, size_t cap) {
    if (!r || !r->method || !r->method[0] || !r->payload_hash || r->n_headers <= 0 || !signed_headers || !cap)
        return NULL;
    signed_headers[0] = '\0';
    canon_header *h = vs_calloc((size_t)r->n_headers, sizeof *h);
    if (!h) return NULL;
    sbuf b = {0};
    char *query = NULL;
    int ok = 1, has_host = 0;
    for (int i = 0; i < r->n_headers && ok; i++) {
        h[i].name = lower_name(r->headers[i].name);
        h[i].value = trim_value(r->headers[i].value);
        ok = h[i].name && h[i].value;
    }
    if (!ok) goto out;
    qsort(h, (size_t)r->n_headers, sizeof *h, header_cmp);
    size_t sh = 0;
    for (int i = 0; i < r->n_headers && ok; i++) {
        if (i && !strcmp(h[i].name, h[i - 1].name)) ok = 0; /* one value per name: callers never repeat */
        if (!strcmp(h[i].name, "host")) has_host = 1;
        size_t n = strlen(h[i].name);
        if (sh + (i ? 1 : 0) + n + 1 > cap) ok = 0;
        if (!ok) break;
        if (i) signed_headers[sh++] = ';';
        memcpy(signed_headers + sh, h[i].name, n + 1);
        sh += n;
    }
    if (!ok || !has_host) {
        ok = 0;
        goto out;
    }
    query = vs_sigv4_canonical_query(r->query, r->n_query);
    if (!query) {
        ok = 0;
        goto out;
    }
    sb_str(&b, r->method);
    sb_chr(&b, '\n');
    if (!r->path || r->path[0] != '/') sb_chr(&b, '/');
    sb_enc(&b, r->path ? r->path : "", 0);
    sb_chr(&b, '\n');
    sb_str(&b, query);
    sb_chr(&b, '\n');
    for (int i = 0; i < r->n_headers; i++) {
        sb_str(&b, h[i].name);
        sb_chr(&b, ':');
        sb_str(&b, h[i].value);
        sb_chr(&b, '\n');
    }
    sb_chr(&b, '\n');
    sb_str(&b, signed_headers);
    sb_chr(&b, '\n');
    sb_str(&b, r->payload_hash);
out:
    for (int i = 0; i < r->n_headers; i++) {
        vs_free(h[i].name);
        vs_free(h[i].value);
    }
    vs_free(h);
    vs_free(query);
    if (!ok) {
        vs_buf_free(&b.b);
        signed_headers[0] = '\0';
        return NULL;
    }
    return sb_done(&b);
}

/* 1 when d is "YYYYMMDDTHHMMSSZ" (digits where digits belong). */
static int date_ok(const char *d) {
    if (!d || strlen(d) != VS_SIGV4_DATE - 1 || d[8] != 'T' || d[15] != 'Z') return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9')) return 0;
    return 1;
}

/* 1 when a scope part (region, service, access key) is non-empty printable
 * ASCII without '/' or spaces, which would break the credential scope. */
static int scope_part_ok(const char *s) {
    if (!s || !s[0] || strlen(s) > 128) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '/' || *s == ',') return 0;
    return 1;
}

/* 1 when c holds everything a signature needs. */
static int creds_ok(const vs_sigv4_creds *c) {
    return c && scope_part_ok(c->access_key) && c->secret_key && scope_part_ok(c->region) &&
           scope_part_ok(c->service);
}

char *vs_sigv4_string_to_sign(const vs_sigv4_creds *c, const char *amz_date, const char *canonical_request) {
    if (!creds_ok(c) || !date_ok(amz_date) || !canonical_request) return NULL;
    char hash[VS_SHA256_HEX];
    vs_sha256_hex(canonical_request, strlen(canonical_request), hash);
    sbuf b = {0};
    sb_str(&b, ALGORITHM "\n");
    sb_str(&b, amz_date);
    sb_chr(&b, '\n');
    sb_put(&b, amz_date, 8);
    sb_chr(&b, '/');
    sb_str(&b, c->region);
    sb_chr(&b, '/');
    sb_str(&b, c->service);
    sb_str(&b, "/aws4_request\n");
    sb_str(&b, hash);
    return sb_done(&b);
}

void vs_sigv4_signing_key(const vs_sigv4_creds *c, const char *date8, uint8_t out[32]) {
    size_t slen = strlen(c->secret_key);
    char *k = vs_malloc(slen + 5);
    uint8_t kdate[32], kregion[32], kservice[32];
    if (!k) { /* no memory: a key nobody can match, never a weak one */
        memset(out, 0, 32);
        return;
    }
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, c->secret_key, slen + 1);
    vs_hmac_sha256(k, slen + 4, date8, 8, kdate);
    vs_hmac_sha256(kdate, 32, c->region, strlen(c->region), kregion);
    vs_hmac_sha256(kregion, 32, c->service, strlen(c->service), kservice);
    vs_hmac_sha256(kservice, 32, "aws4_request", 12, out);
    memset(k, 0, slen + 4); /* the secret does not linger in freed memory */
    vs_free(k);
}

int vs_sigv4_sign(const vs_sigv4_creds *c, const char *amz_date, const vs_sigv4_request *r,
                  char sig[VS_SIGV4_SIG_HEX], char *signed_headers, size_t cap) {
    sig[0] = '\0';
    if (!creds_ok(c) || !date_ok(amz_date)) return -1;
    char *creq = vs_sigv4_canonical_request(r, signed_headers, cap);
    if (!creq) return -1;
    char *sts = vs_sigv4_string_to_sign(c, amz_date, creq);
    vs_free(creq);
    if (!sts) return -1;
    uint8_t key[32], mac[32];
    vs_sigv4_signing_key(c, amz_date, key);
    vs_hmac_sha256(key, sizeof key, sts, strlen(sts), mac);
    vs_free(sts);
    vs_hex(mac, sizeof mac, sig);
    memset(key, 0, sizeof key);
    return 0;
}

int vs_sigv4_authorization(const vs_sigv4_creds *c, const char *amz_date, const vs_sigv4_request *r, char *out,
                           size_t cap) {
    char sig[VS_SIGV4_SIG_HEX], sh[512];
    if (!out || !cap) return -1;
    out[0] = '\0';
    if (vs_sigv4_sign(c, amz_date, r, sig, sh, sizeof sh) != 0) return -1;
    int n = snprintf(out, cap, ALGORITHM " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                     c->access_key, amz_date, c->region, c->service, sh, sig);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

char *vs_sigv4_presign_query(const vs_sigv4_creds *c, const char *amz_date, int64_t expires_s, const char *host,
                             const char *method, const char *path) {
    if (!creds_ok(c) || !date_ok(amz_date) || !host || !host[0] || expires_s < 1 ||
        expires_s > VS_SIGV4_MAX_EXPIRES)
        return NULL;
    char credential[600], expires[24];
    int n = snprintf(credential, sizeof credential, "%s/%.8s/%s/%s/aws4_request", c->access_key, amz_date,
                     c->region, c->service);
    if (n < 0 || (size_t)n >= sizeof credential) return NULL;
    snprintf(expires, sizeof expires, "%lld", (long long)expires_s);
    const vs_sigv4_kv q[] = {
        {"X-Amz-Algorithm", ALGORITHM}, {"X-Amz-Credential", credential}, {"X-Amz-Date", amz_date},
        {"X-Amz-Expires", expires},     {"X-Amz-SignedHeaders", "host"},
    };
    const vs_sigv4_kv h[] = {{"host", host}};
    const vs_sigv4_request r = {.method = method ? method : "GET", .path = path, .query = q, .n_query = 5,
                                .headers = h, .n_headers = 1, .payload_hash = "UNSIGNED-PAYLOAD"};
    char sig[VS_SIGV4_SIG_HEX], sh[16];
    if (vs_sigv4_sign(c, amz_date, &r, sig, sh, sizeof sh) != 0) return NULL;
    char *query = vs_sigv4_canonical_query(q, 5);
    if (!query) return NULL;
    sbuf b = {.b = {.data = (uint8_t *)query, .len = strlen(query), .cap = strlen(query) + 1}};
    sb_str(&b, "&X-Amz-Signature=");
    sb_str(&b, sig);
    return sb_done(&b);
}

void vs_sigv4_amz_date(int64_t unix_s, char out[VS_SIGV4_DATE]) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, VS_SIGV4_DATE, "%Y%m%dT%H%M%SZ", &tm) != VS_SIGV4_DATE - 1)
        memcpy(out, "19700101T000000Z", VS_SIGV4_DATE);
}
