/* vs_err.h - the one error type of visage.
 *
 * Every fallible function returns a vs_err and, when the caller passes a
 * vs_error, fills it with a message that names the file, field or operation
 * that failed. The enum only grows: codes are never renumbered, because the
 * API maps them to HTTP statuses and scripts match on their names. */
#ifndef VS_ERR_H
#define VS_ERR_H

#include <stddef.h>

typedef enum vs_err {
    VS_OK = 0,
    VS_ERR_NOMEM = 1,        /* an allocation failed */
    VS_ERR_IO = 2,           /* open/read/write failed (errno in the message) */
    VS_ERR_CORRUPT = 3,      /* input is malformed or truncated */
    VS_ERR_UNSUPPORTED = 4,  /* well-formed but not something we handle */
    VS_ERR_TOO_LARGE = 5,    /* over a configured budget (pixels, bytes) */
    VS_ERR_INVALID_ARG = 6,  /* caller passed something out of contract */
    VS_ERR_MODEL = 7,        /* model files missing, corrupt or inconsistent */
    VS_ERR_NOT_FOUND = 8,    /* a named thing does not exist */
    VS_ERR_BACKEND = 9,      /* a library we call (XNNPACK, ...) failed */
    VS_ERR_INTERNAL = 10,    /* an invariant broke: a bug */
    VS_ERR_CANCELLED = 11    /* stopped on request (shutdown); may be resumed */
} vs_err;

#define VS_ERROR_MSG_MAX 384

/* Caller-owned error record. Functions write it only on failure. */
typedef struct vs_error {
    vs_err code;
    char msg[VS_ERROR_MSG_MAX];
} vs_error;

/* Records code + formatted message in *e (if e is not NULL) and returns code,
 * so error paths read `return vs_fail(e, VS_ERR_IO, "open %s: %s", ...)`. */
vs_err vs_fail(vs_error *e, vs_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stable lower-case name of a code ("corrupt", "too_large", ...). */
const char *vs_err_name(vs_err code);

/* Resets *e to VS_OK with an empty message. */
void vs_error_clear(vs_error *e);

#endif
