/* vs_redact.c - hides URL credentials and secret query values in text that
 * is about to be logged or echoed (rules in vs_redact.h). Tuned for short
 * strings (error messages, log lines): one pass, no allocation. */
#include "vs_redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Query parameters whose value is a secret (compared case-insensitively). */
static const char *const secret_params[] = {
    "key", "api_key", "apikey", "api-key", "access_token", "token", "auth", "password", "passwd", "pass", "pwd",
    "secret", "client_secret", "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
};

/* Output cursor: writes stop (keeping the NUL) once the buffer is full. */
typedef struct sink {
    char *out;
    size_t cap, len;
    int full;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->full) return;
    if (s->len + n >= s->cap) { /* cut here, before a piece that does not fit */
        s->full = 1;
        return;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
    s->out[s->len] = '\0';
}

/* Ends a URL (and its authority or query value) as a log line sees it. */
static int url_end(char c) { return c == '\0' || isspace((unsigned char)c) || strchr("\"'<>`", c) != NULL; }

static int secret_param(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof secret_params / sizeof *secret_params; i++)
        if (strlen(secret_params[i]) == n && strncasecmp(secret_params[i], name, n) == 0) return 1;
    return 0;
}

/* At text+i == "://" after a scheme: copies "://", hides the user-info
 * (up to the last '@' before the first '/' or end), returns the new i. */
static size_t authority(const char *text, size_t i, sink *s) {
    put(s, "://", 3);
    size_t j = i + 3, end = j, at = 0;
    int has_at = 0;
    while (!url_end(text[end]) && text[end] != '/') {
        if (text[end] == '@') {
            at = end;
            has_at = 1;
        }
        end++;
    }
    if (!has_at) return j;
    put(s, "***@", 4);
    return at + 1;
}

/* At a '?', '&' or ';' inside a URL: copies the separator and the parameter
 * name, and "***" instead of the value when the name says it is a secret. */
static size_t query_param(const char *text, size_t i, sink *s) {
    put(s, text + i, 1);
    size_t j = i + 1, n = 0;
    while (!url_end(text[j + n]) && !strchr("=&;#", text[j + n])) n++;
    put(s, text + j, n);
    j += n;
    if (text[j] != '=' || !secret_param(text + i + 1, n)) return j;
    put(s, "=***", 4);
    j++;
    while (!url_end(text[j]) && !strchr("&;#", text[j])) j++;
    return j;
}

/* 1 when text+i is "://" right after a scheme's last letter or digit. */
static int at_scheme_sep(const char *text, size_t i) {
    return i > 0 && isalnum((unsigned char)text[i - 1]) && strncmp(text + i, "://", 3) == 0;
}

char *vs_redact(const char *text, char *out, size_t cap) {
    if (!out || cap == 0) return out;
    out[0] = '\0';
    if (!text) return out;
    sink s = {out, cap, 0, 0};
    int in_url = 0;
    size_t i = 0;
    while (text[i] && !s.full) {
        if (at_scheme_sep(text, i)) {
            i = authority(text, i, &s);
            in_url = 1;
        } else if (in_url && strchr("?&;", text[i])) {
            i = query_param(text, i, &s);
        } else {
            if (url_end(text[i])) in_url = 0;
            put(&s, text + i, 1);
            i++;
        }
    }
    return out;
}

char *vs_url_redact(const char *url, char *out, size_t cap) { return vs_redact(url, out, cap); }

void vs_redact_inplace(char *s, size_t cap) {
    char tmp[4096];
    if (!s || cap == 0 || !vs_redact_needed(s)) return;
    size_t n = strnlen(s, cap);
    if (n >= sizeof tmp) n = sizeof tmp - 1; /* longer lines: the tail is cut */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    vs_redact(tmp, s, cap < sizeof tmp ? cap : sizeof tmp);
}

int vs_redact_needed(const char *text) {
    if (!text) return 0;
    char buf[4096];
    /* cheap test first: no "://" means nothing to hide */
    if (!strstr(text, "://")) return 0;
    size_t n = strlen(text);
    if (n >= sizeof buf) return 1;
    vs_redact(text, buf, sizeof buf);
    return strcmp(buf, text) != 0;
}
