/* cli_http.c - the command line as a client of a running server
 * (--server URL --key K): one libcurl request at a time, an image posted as
 * base64; and small helpers the commands share (mkdir -p, number options). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "vs_alloc.h"
#include "vs_base64.h"
#include "vs_buf.h"
#include "vs_catalog.h"
#include "vs_image.h"
#include "vs_redact.h"

int cli_mkdir(const char *dir) {
    char p[1100];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) break;
            *s = '/';
        }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "visage: mkdir %s: %s\n", p, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_tenant_ok(const char *t) {
    int ok = vs_tenant_name_ok(t);
    if (!ok) fprintf(stderr, "visage: tenant '%s': use 1 to 63 of A-Z a-z 0-9 _ . -\n", t);
    return ok;
}

#define CLI_HTTP_MAX_RESPONSE ((size_t)256 << 20) /* a server answer larger than this is refused */

int cli_http(const char *method, const char *url, const char *key, const char *ctype, const void *body, size_t len,
             char **resp, long *status) {
    CURL *c = curl_easy_init();
    vs_buf_sink b = {.buf.limit = CLI_HTTP_MAX_RESPONSE};
    struct curl_slist *h = NULL;
    char auth[200];
    if (!c) return -1;
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, vs_buf_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    char shown[512];
    vs_url_redact(url, shown, sizeof shown); /* --server may carry user:password@ */
    if (rc != CURLE_OK) {
        fprintf(stderr, "visage: %s %s: %s\n", method, shown,
                b.rc == VS_ERR_TOO_LARGE ? "answer too large" : b.rc == VS_ERR_NOMEM ? "out of memory"
                                                                              : curl_easy_strerror(rc));
        vs_buf_free(&b.buf);
        return -1;
    }
    if (!(*resp = (char *)vs_buf_take(&b.buf, NULL))) { /* an empty answer is "" */
        fprintf(stderr, "visage: %s %s: out of memory\n", method, shown);
        return -1;
    }
    return 0;
}

int cli_post_image(const char *server, const char *route, const char *key, const char *image, json_t *req) {
    uint8_t *d = NULL;
    size_t n = 0;
    vs_error err = {0};
    if (vs_read_file(image, 32u << 20, &d, &n, &err) != VS_OK) {
        fprintf(stderr, "visage: %s\n", err.msg);
        json_decref(req);
        return 1;
    }
    char *b64 = vs_base64_encode(d, n), url[1200], *resp = NULL;
    vs_free(d);
    if (req && b64) json_object_set_new(req, "image_b64", json_string(b64));
    vs_free(b64);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    long status = 0;
    snprintf(url, sizeof url, "%s%s", server, route);
    int rc = body ? cli_http("POST", url, key, "application/json", body, strlen(body), &resp, &status) : -1;
    free(body);
    if (rc != 0) return 1;
    if (status == 200) printf("%s\n", resp);
    else fprintf(stderr, "visage: %s: server answered %ld: %s\n", image, status, resp);
    vs_free(resp);
    return status == 200 ? 0 : 1;
}

int cli_num_arg(const char *cmd, const char *name, const char *v, double lo, double hi, int whole, double *out) {
    char *end = NULL;
    double d = v ? strtod(v, &end) : 0;
    if (!v || !end || *end || end == v || !(d >= lo && d <= hi) || (whole && d != (double)(long long)d)) {
        fprintf(stderr, "visage: %s: %s must be %s from %g to %g, not '%s'\nsee 'visage %s --help'\n", cmd, name,
                whole ? "a whole number" : "a number", lo, hi, v ? v : "", cmd);
        return -1;
    }
    *out = d;
    return 0;
}
