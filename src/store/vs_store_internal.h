/* vs_store_internal.h - what the store's own files share and nobody else
 * needs: the backend constructors that vs_store_open dispatches to, and
 * what both backends use to name keys in messages. */
#ifndef VS_STORE_INTERNAL_H
#define VS_STORE_INTERNAL_H

#include "vs_store.h"

/* Opens the file:// backend rooted at dir (created with mode 0755 when
 * missing, then resolved to an absolute path so a later chdir is harmless).
 * The store is freed by vs_store_close. */
vs_err vs_store_fs_open(const char *dir, vs_store **out, vs_error *err);

/* Opens the s3:// backend. spec is what follows "s3://": "" (buckets named
 * as in DESIGN.md) or a prefix of [a-z0-9-] (bucket b becomes PREFIX-b).
 * Reads its configuration from the environment here and nowhere else:
 * VISAGE_S3_ENDPOINT (default https://s3.<region>.amazonaws.com),
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both required), AWS_REGION
 * (else AWS_DEFAULT_REGION, else us-east-1), VISAGE_S3_PATH_STYLE (1/0;
 * default 1 with an endpoint, 0 without). Creates the four buckets of
 * DESIGN.md when missing, so an unreachable server or rejected credentials
 * fail here (VS_ERR_BACKEND). The store is freed by vs_store_close. */
vs_err vs_store_s3_open(const char *spec, vs_store **out, vs_error *err);

/* Copies s into out (cap bytes) with control characters replaced by '?' and
 * cut at 120 bytes, so a hostile key cannot garble a log line. Returns out. */
const char *vs_store_printable(const char *s, char *out, size_t cap);

#endif
