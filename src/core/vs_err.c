/* vs_err.c - error records: formatting and stable names. */
#include "vs_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vs_redact.h"

/* Messages end up in logs, API errors and dead letters, and many name a
 * URL: credentials in one are hidden here, once for every caller. The text
 * is formatted whole first, so a message cut to fit never cuts a URL's
 * user-info before the '@' that marks it. */
vs_err vs_fail(vs_error *e, vs_err code, const char *fmt, ...) {
    if (e) {
        char full[1024];
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(full, sizeof full, fmt, ap);
        va_end(ap);
        if (strstr(full, "://")) vs_redact(full, e->msg, sizeof e->msg);
        else {
            size_t n = strnlen(full, sizeof e->msg - 1);
            memcpy(e->msg, full, n);
            e->msg[n] = '\0';
        }
    }
    return code;
}

const char *vs_err_name(vs_err code) {
    switch (code) {
    case VS_OK: return "ok";
    case VS_ERR_NOMEM: return "nomem";
    case VS_ERR_IO: return "io";
    case VS_ERR_CORRUPT: return "corrupt";
    case VS_ERR_UNSUPPORTED: return "unsupported";
    case VS_ERR_TOO_LARGE: return "too_large";
    case VS_ERR_INVALID_ARG: return "invalid_arg";
    case VS_ERR_MODEL: return "model";
    case VS_ERR_NOT_FOUND: return "not_found";
    case VS_ERR_BACKEND: return "backend";
    case VS_ERR_INTERNAL: return "internal";
    case VS_ERR_CANCELLED: return "cancelled";
    }
    return "unknown";
}

void vs_error_clear(vs_error *e) {
    if (e) {
        e->code = VS_OK;
        e->msg[0] = '\0';
    }
}
