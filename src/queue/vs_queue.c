/* vs_queue.c - the queue front door: picks a backend from the URL ("embedded"
 * or "redis://"), fills in the option defaults every backend shares, and
 * frees messages. */
#include "vs_queue.h"

#include <string.h>

#include "vs_alloc.h"
#include "vs_queue_internal.h"

/* In vs_queue_redis.c. Belongs in vs_queue_internal.h next to the SQLite
 * constructor; declared here until that header is opened up. url is the
 * whole "redis://..." string; opts complete as for the embedded backend. */
vs_err vs_queue_redis_open(const char *url, const vs_queue_opts *opts, vs_queue **out, vs_error *err);

#define DEFAULT_VISIBILITY_MS 60000
#define DEFAULT_MAX_ATTEMPTS 5

vs_err vs_queue_open(const char *url, const vs_queue_opts *opts, vs_queue **out, vs_error *err) {
    *out = NULL;
    if (!url || !url[0] || !strcmp(url, "embedded")) {
        if (!opts || !opts->data_dir || !opts->data_dir[0])
            return vs_fail(err, VS_ERR_INVALID_ARG, "queue embedded: no data directory given");
        vs_queue_opts o = *opts;
        if (o.visibility_ms <= 0) o.visibility_ms = DEFAULT_VISIBILITY_MS;
        if (o.max_attempts <= 0) o.max_attempts = DEFAULT_MAX_ATTEMPTS;
        return vs_queue_sqlite_open(&o, out, err);
    }
    if (!strncmp(url, "redis://", 8)) {
        vs_queue_opts o = opts ? *opts : (vs_queue_opts){0};
        if (o.visibility_ms <= 0) o.visibility_ms = DEFAULT_VISIBILITY_MS;
        if (o.max_attempts <= 0) o.max_attempts = DEFAULT_MAX_ATTEMPTS;
        return vs_queue_redis_open(url, &o, out, err);
    }
    const char *colon = strstr(url, "://");
    int scheme_len = colon ? (int)(colon - url) : (int)strlen(url);
    return vs_fail(err, VS_ERR_UNSUPPORTED,
                   "queue \"%.*s\": backend not supported (want \"embedded\" or \"redis://host:port/db\")",
                   scheme_len > 64 ? 64 : scheme_len, url);
}

void vs_msg_free(vs_msg *m) {
    if (!m) return;
    vs_free(m->body);
    m->body = NULL;
}
