/* vs_redact.h - credentials out of anything we log or echo.
 *
 * URLs arrive with secrets in them (redis://:PASSWORD@host, a crawl seed
 * http://user:pw@site/, a presigned ...?X-Amz-Signature=...). Every place
 * that prints a URL, or an error message that may hold one, passes it
 * through here first: one rule, so a new log line cannot forget a case.
 *
 * The rule, for each "scheme://" in the text: the user-info (everything
 * between "//" and the last '@' before the first '/' or blank) becomes
 * "***", whether or not the URL is well-formed: when in doubt we hide too
 * much rather than too little. The values of query parameters that carry
 * secrets (key, api_key, token, password, secret, sig, signature,
 * X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, ...) become
 * "***" too. Pure functions, no allocation, thread-safe. */
#ifndef VS_REDACT_H
#define VS_REDACT_H

#include <stddef.h>

#include "vs_err.h"

/* Writes text with every URL in it redacted (see above) into out (cap
 * bytes, always NUL-terminated when cap > 0; cut if too long, and a cut
 * never leaves a secret half-printed: the cut happens before it). out must
 * not overlap text. Returns out. NULL text -> "". */
char *vs_redact(const char *text, char *out, size_t cap);

/* The same for one URL: the name says what the caller holds. */
char *vs_url_redact(const char *url, char *out, size_t cap);

/* Redacts a NUL-terminated string of at most cap bytes in place (through a
 * stack copy), e.g. a vs_error message or a log line already formatted. */
void vs_redact_inplace(char *s, size_t cap);

/* 1 when text holds something vs_redact would hide. */
int vs_redact_needed(const char *text);

#endif
