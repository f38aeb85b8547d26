/* vs_origin.c - Host and Origin header checks (see vs_origin.h): small
 * string functions, no allocation. */
#include "vs_origin.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* 1 when s[0..n) is ":" followed by 1-5 digits, or empty. */
static int port_ok(const char *s, size_t n) {
    if (n == 0) return 1;
    if (s[0] != ':' || n < 2 || n > 6) return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int vs_host_is_loopback(const char *host) {
    if (!host) return 0;
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        return end && end - host == 4 && !strncmp(host, "[::1]", 5) && port_ok(end + 1, strlen(end + 1));
    }
    const char *colon = strchr(host, ':');
    size_t hl = colon ? (size_t)(colon - host) : n;
    if (!port_ok(host + hl, n - hl)) return 0;
    if (hl == 9 && !strncasecmp(host, "localhost", 9)) return 1;
    char ip[16];
    struct in_addr a;
    if (hl == 0 || hl >= sizeof ip) return 0;
    memcpy(ip, host, hl);
    ip[hl] = '\0';
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int vs_origin_same_host(const char *origin, const char *host) {
    if (!origin || !host) return 0;
    const char *p = strstr(origin, "://");
    return p && p[3] && !strcasecmp(p + 3, host);
}

/* Next comma-separated entry of *list without surrounding spaces: start
 * and length; 0 at the end. */
static int next_entry(const char **list, const char **start, size_t *len) {
    const char *p = *list;
    while (*p == ' ' || *p == ',') p++;
    if (!*p) return 0;
    const char *e = strchr(p, ',');
    if (!e) e = p + strlen(p);
    *list = e;
    while (e > p && e[-1] == ' ') e--;
    *start = p;
    *len = (size_t)(e - p);
    return 1;
}

int vs_origin_listed(const char *origin, const char *list) {
    if (!origin || !list) return 0;
    const char *s;
    size_t n, on = strlen(origin);
    while (next_entry(&list, &s, &n))
        if (n == on && !strncasecmp(s, origin, n)) return 1;
    return 0;
}

vs_err vs_origin_list_check(const char *list, vs_error *err) {
    const char *s;
    size_t n;
    while (list && next_entry(&list, &s, &n)) {
        size_t scheme = !strncasecmp(s, "http://", 7) ? 7 : !strncasecmp(s, "https://", 8) ? 8 : 0;
        int ok = scheme && n > scheme;
        for (size_t i = scheme; ok && i < n; i++) ok = s[i] != '/' && s[i] != '*' && s[i] != '?' && s[i] != '#';
        if (!ok)
            return vs_fail(err, VS_ERR_INVALID_ARG,
                           "VISAGE_CORS_ORIGINS: '%.*s' is not an origin like https://app.example[:port] "
                           "(exact origins only: no path, no wildcard)", n > 100 ? 100 : (int)n, s);
    }
    return VS_OK;
}
