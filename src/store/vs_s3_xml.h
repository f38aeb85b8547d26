/* vs_s3_xml.h - the S3 client's reading of S3's XML answers (error <Code>,
 * ListObjectsV2 pages): pure functions of the answer body, kept apart from
 * vs_store_s3.c's HTTP code so a hostile or broken server's bytes can be
 * fuzzed without one. Private to src/store. */
#ifndef VS_S3_XML_H
#define VS_S3_XML_H

#include <stddef.h>

#include "vs_err.h"
#include "vs_store.h"

#define VS_S3_KEY_MAX 512 /* bytes of a key the store can hold (longer listed keys are skipped) */

/* Decodes XML text (the five named entities and &#N; / &#xH; references)
 * of n bytes at s into out (cap bytes, NUL-terminated). Returns the length,
 * or -1 when it is malformed, holds a NUL, or does not fit. */
long vs_s3_xml_unescape(const char *s, size_t n, char *out, size_t cap);

/* Finds <tag>text</tag> in [p, end): returns the text's start and its
 * length in *n, and in *next (may be NULL) where the closing tag ends; NULL
 * when absent. tag is at most 36 bytes. */
const char *vs_s3_xml_elem(const char *p, const char *end, const char *tag, size_t *n, const char **next);

/* Copies the <Code> of an S3 error answer (len bytes, body may be NULL)
 * into code (cap bytes), made printable; "" when there is none. */
void vs_s3_error_code(const char *body, size_t len, char *code, size_t cap);

/* Reports to cb the keys of one ListObjectsV2 page (len bytes at body) that
 * start with prefix and are valid store keys, with their sizes; sets
 * *stopped when cb asked to stop, and token (token_cap bytes) to the next
 * page's continuation token ("" when this page was the last). A Contents
 * without Key or Size, a Size that is not a number, or a truncated page
 * without a token fail with VS_ERR_BACKEND naming bucket. */
vs_err vs_s3_list_page(const char *bucket, const char *prefix, const char *body, size_t len, vs_store_list_cb cb,
                       void *ctx, int *stopped, char *token, size_t token_cap, vs_error *err);

#endif
