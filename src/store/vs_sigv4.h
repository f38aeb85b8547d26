/* vs_sigv4.h - AWS Signature Version 4 for S3: the canonical request, the
 * string to sign, the derived signing key, the Authorization header and
 * presigned (query-string) URLs, as the AWS S3 API reference describes them
 * ("Authenticating Requests (AWS Signature Version 4)"). Pure maths on
 * strings, no I/O and no clock: callers pass the X-Amz-Date, so the AWS
 * published examples reproduce exactly in tests. Thread-safe (no state). */
#ifndef VS_SIGV4_H
#define VS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#define VS_SIGV4_DATE 17        /* "20130524T000000Z" + NUL */
#define VS_SIGV4_SIG_HEX 65     /* 64 hex digits + NUL */
#define VS_SIGV4_MAX_EXPIRES 604800 /* a presigned URL lives at most 7 days */

/* A name/value pair of a query string or of a header, both raw (not
 * URI-encoded): the signer encodes query names and values itself. */
typedef struct vs_sigv4_kv {
    const char *name;
    const char *value;
} vs_sigv4_kv;

/* Who signs and for what scope ("s3" service, a region like "us-east-1"). */
typedef struct vs_sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *region;
    const char *service;
} vs_sigv4_creds;

/* One HTTP request as signed. Every header listed is signed (names are
 * lower-cased, values trimmed and inner runs of spaces folded, then sorted);
 * it must include "host". path is the raw absolute path ("/bucket/a b.jpg"),
 * URI-encoded here with '/' kept, as S3 wants (no double encoding, no
 * dot-segment normalisation). payload_hash is the hex SHA-256 of the body or
 * "UNSIGNED-PAYLOAD". */
typedef struct vs_sigv4_request {
    const char *method;
    const char *path;
    const vs_sigv4_kv *query;
    int n_query;
    const vs_sigv4_kv *headers;
    int n_headers;
    const char *payload_hash;
} vs_sigv4_request;

/* AWS URI-encoding of s: unreserved characters (A-Z a-z 0-9 - . _ ~) as
 * they are, '/' as is unless encode_slash, every other byte as %XX with
 * upper-case hex. Returns the length the whole encoding needs (like
 * snprintf) and writes it with its NUL into out when it fits in cap bytes;
 * when it does not, out becomes "" rather than a cut encoding. */
size_t vs_sigv4_uri_encode(const char *s, int encode_slash, char *out, size_t cap);

/* The canonical query string: each name and value URI-encoded ('/' too),
 * sorted by encoded name then value, joined as "n=v&n2=v2" ("n=" for an
 * empty value). The same text is what a client must send after the '?', so
 * the server sees exactly what was signed. New string (vs_free); NULL when
 * out of memory. n == 0 gives "". */
char *vs_sigv4_canonical_query(const vs_sigv4_kv *query, int n);

/* The canonical request of r (method, URI, query, headers, signed header
 * list, payload hash, joined by '\n'), and in signed_headers (cap bytes) the
 * ';'-joined lower-case header names. New string (vs_free); NULL when out of
 * memory, when signed_headers does not fit, or when r is incomplete. */
char *vs_sigv4_canonical_request(const vs_sigv4_request *r, char *signed_headers, size_t cap);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<YYYYMMDD>/<region>/<service>/aws4_request\n<hex sha256 of canonical_request>".
 * New string (vs_free); NULL when out of memory or amz_date is malformed. */
char *vs_sigv4_string_to_sign(const vs_sigv4_creds *c, const char *amz_date, const char *canonical_request);

/* The signing key HMAC(HMAC(HMAC(HMAC("AWS4"+secret, YYYYMMDD), region),
 * service), "aws4_request"); date8 is the first 8 characters of amz_date. */
void vs_sigv4_signing_key(const vs_sigv4_creds *c, const char *date8, uint8_t out[32]);

/* Signs r at amz_date: hex signature into sig, the signed header list into
 * signed_headers (cap bytes). 0 on success, -1 when out of memory or the
 * request or date is malformed. */
int vs_sigv4_sign(const vs_sigv4_creds *c, const char *amz_date, const vs_sigv4_request *r,
                  char sig[VS_SIGV4_SIG_HEX], char *signed_headers, size_t cap);

/* The Authorization header value for r: "AWS4-HMAC-SHA256 Credential=AK/
 * YYYYMMDD/region/service/aws4_request, SignedHeaders=..., Signature=...".
 * r's headers must already hold x-amz-date (= amz_date) and, for S3,
 * x-amz-content-sha256. 0 on success, -1 on error or when out (cap bytes) is
 * too small. */
int vs_sigv4_authorization(const vs_sigv4_creds *c, const char *amz_date, const vs_sigv4_request *r, char *out,
                           size_t cap);

/* The query string (without '?') of a presigned GET of path on host, valid
 * for expires_s seconds (1..VS_SIGV4_MAX_EXPIRES) from amz_date: the
 * X-Amz-Algorithm, -Credential, -Date, -Expires and -SignedHeaders=host
 * parameters in canonical order, then X-Amz-Signature; the payload is
 * UNSIGNED-PAYLOAD. host is the Host header the client will send
 * ("bucket.s3.amazonaws.com", "127.0.0.1:4568"). New string (vs_free); NULL
 * on bad arguments or out of memory. */
char *vs_sigv4_presign_query(const vs_sigv4_creds *c, const char *amz_date, int64_t expires_s, const char *host,
                             const char *method, const char *path);

/* Formats unix seconds (UTC) as an X-Amz-Date "YYYYMMDDTHHMMSSZ". */
void vs_sigv4_amz_date(int64_t unix_s, char out[VS_SIGV4_DATE]);

#endif
