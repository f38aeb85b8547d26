/* vs_router.c - the /api/v1 route table. Table-driven so that the set of
 * methods a path accepts is known: a wrong method is a 405 with Allow (the
 * client learns what it got wrong) rather than a 404 that reads as "no such
 * thing". Lookups are a scan of ~30 rows: nothing to tune. */
#include "vs_router.h"

#include <stdio.h>
#include <string.h>

#include "vs_routes.h"

typedef struct route {
    const char *method;
    const char *prefix;            /* the whole path when there is no {id} */
    const char *suffix;            /* after {id}; NULL: no {id} */
    void (*plain)(vs_req *r);
    void (*with_id)(vs_req *r, const char *id);
    /* prefix{id}suffix{id2}: the one path with two ids (a sample of an
     * identity); its ids are matched as "id/id2" */
    void (*with_ids)(vs_req *r, const char *id, const char *id2);
} route;

/* Paths served before the router (vs_server.c: public and operator
 * routes) are listed without a handler, for their Allow header only. */
static const route routes[] = {
    {"POST", "/api/v1/ingest", NULL, vs_route_ingest, NULL, NULL},
    {"POST", "/api/v1/ingest/batch", NULL, vs_route_ingest_batch, NULL, NULL},
    {"POST", "/api/v1/search", NULL, vs_route_search, NULL, NULL},
    {"GET", "/api/v1/faces/", "", NULL, vs_route_face_get, NULL},
    {"DELETE", "/api/v1/faces/", "", NULL, vs_route_face_delete, NULL},
    {"GET", "/api/v1/images", NULL, vs_route_image_list, NULL, NULL},
    {"GET", "/api/v1/faces", NULL, vs_route_face_list, NULL, NULL},
    {"GET", "/api/v1/stats", NULL, vs_route_stats, NULL, NULL},
    {"GET", "/api/v1/images/", "", NULL, vs_route_image_get, NULL},
    {"DELETE", "/api/v1/images/", "", NULL, vs_route_image_delete, NULL},
    {"GET", "/api/v1/identities", NULL, vs_route_identity_list, NULL, NULL},
    {"POST", "/api/v1/identities", NULL, vs_route_identity_create, NULL, NULL},
    {"POST", "/api/v1/identities/identify", NULL, vs_route_identify, NULL, NULL},
    {"GET", "/api/v1/identities/", "", NULL, vs_route_identity_get, NULL},
    {"DELETE", "/api/v1/identities/", "", NULL, vs_route_identity_delete, NULL},
    {"DELETE", "/api/v1/identities/", "/samples/", NULL, NULL, vs_route_identity_sample_delete},
    {"POST", "/api/v1/identities/", "/enroll", NULL, vs_route_identity_enroll, NULL},
    {"POST", "/api/v1/identities/", "/verify", NULL, vs_route_identity_verify, NULL},
    {"GET", "/api/v1/people", NULL, vs_route_people_list, NULL, NULL},
    {"GET", "/api/v1/people/", "", NULL, vs_route_person_get, NULL},
    {"POST", "/api/v1/people/", "/", NULL, NULL, vs_route_person_action},
    {"POST", "/api/v1/erase", NULL, vs_route_erase, NULL, NULL},
    {"GET", "/api/v1/erase/blocks", NULL, vs_route_blocks_list, NULL, NULL},
    {"DELETE", "/api/v1/erase/blocks/", "", NULL, vs_route_block_delete, NULL},
    {"GET", "/api/v1/erase/log", NULL, vs_route_erase_log, NULL, NULL},
    {"GET", "/api/v1/dead-letters", NULL, vs_route_dead_letters, NULL, NULL},
    {"GET", "/api/v1/crawl", NULL, vs_route_crawl_list, NULL, NULL},
    {"POST", "/api/v1/crawl", NULL, vs_route_crawl_create, NULL, NULL},
    {"GET", "/api/v1/crawl/", "", NULL, vs_route_crawl_get, NULL},
    {"DELETE", "/api/v1/crawl/", "", NULL, vs_route_crawl_cancel, NULL},
    {"GET", "/api/v1/events", NULL, vs_route_events_list, NULL, NULL},
    {"GET", "/api/v1/webhook", NULL, vs_route_webhook_get, NULL, NULL},
    {"PUT", "/api/v1/webhook", NULL, vs_route_webhook_put, NULL, NULL},
    {"DELETE", "/api/v1/webhook", NULL, vs_route_webhook_delete, NULL, NULL},
    {"GET", "/api/v1/reindex", NULL, NULL, NULL, NULL},
    {"POST", "/api/v1/reindex", NULL, NULL, NULL, NULL},
    {"GET", "/healthz", NULL, NULL, NULL, NULL},
    {"HEAD", "/healthz", NULL, NULL, NULL, NULL},
    {"GET", "/readyz", NULL, NULL, NULL, NULL},
    {"HEAD", "/readyz", NULL, NULL, NULL, NULL},
    {"GET", "/metrics", NULL, NULL, NULL, NULL},
    {"HEAD", "/metrics", NULL, NULL, NULL, NULL},
    {"GET", "/", NULL, NULL, NULL, NULL},
    {"HEAD", "/", NULL, NULL, NULL, NULL},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* 1 when path is prefix{id}suffix with a non-empty id holding no '/';
 * copies id. */
static int match_id(const char *path, const char *prefix, const char *suffix, char *id, size_t cap) {
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0) return 0;
    size_t il = n - pl - sl;
    if (il >= cap || memchr(path + pl, '/', il)) return 0;
    memcpy(id, path + pl, il);
    id[il] = '\0';
    return 1;
}

/* 1 when path is prefix{id}mid{id2}, neither id empty nor holding a '/';
 * copies "id/id2" into id. */
static int match_two(const char *path, const char *prefix, const char *mid, char *id, size_t cap) {
    size_t pl = strlen(prefix), ml = strlen(mid);
    if (strncmp(path, prefix, pl) != 0) return 0;
    const char *a = path + pl, *slash = strchr(a, '/');
    if (!slash || slash == a || strncmp(slash, mid, ml) != 0) return 0;
    const char *b = slash + ml;
    if (!*b || strchr(b, '/') || strlen(a) >= cap) return 0;
    snprintf(id, cap, "%.*s/%s", (int)(slash - a), a, b);
    return 1;
}

/* 1 when row t has this path; exact rows only, or {id} rows only. */
static int row_matches(const route *t, const char *path, int exact, char *id, size_t cap) {
    if (exact) return !t->suffix && !strcmp(t->prefix, path);
    if (t->with_ids) return match_two(path, t->prefix, t->suffix, id, cap);
    return t->suffix && match_id(path, t->prefix, t->suffix, id, cap);
}

/* The row serving (method, path), with id filled; NULL when none, with
 * *exists = 1 and allow filled when the path is served under other methods. */
static const route *find(const char *method, const char *path, char *id, size_t id_cap, char *allow, size_t cap,
                         int *exists) {
    id[0] = allow[0] = '\0';
    *exists = 0;
    /* a fixed path wins over an {id} one: /identities/identify is not the
     * identity "identify" */
    for (int exact = 1; exact >= 0; exact--) {
        size_t n = 0;
        for (size_t i = 0; i < N_ROUTES; i++) {
            const route *t = &routes[i];
            if (!row_matches(t, path, exact, id, id_cap)) continue;
            *exists = 1;
            if (!strcmp(t->method, method) && (t->plain || t->with_id || t->with_ids)) return t;
            if (n < cap && !strstr(allow, t->method)) n += (size_t)snprintf(allow + n, cap - n, "%s%s", n ? ", " : "", t->method);
        }
        if (*exists) return NULL;
    }
    return NULL;
}

int vs_router_lookup(const char *method, const char *path, char *id, char *allow, size_t cap) {
    int exists = 0;
    if (find(method, path, id, cap, allow, cap, &exists)) return 1;
    id[0] = '\0';
    return exists ? 0 : -1;
}

void vs_router_dispatch(vs_req *r) {
    char id[256], allow[sizeof r->allow];
    int exists = 0;
    const route *t = find(r->method, r->path, id, sizeof id, allow, sizeof allow, &exists);
    if (t && t->plain) return t->plain(r);
    if (t && t->with_ids) {
        char *slash = strchr(id, '/');
        *slash = '\0';
        return t->with_ids(r, id, slash + 1);
    }
    if (t) return t->with_id(r, id);
    if (!exists) return vs_reply_error(r, 404, "not_found", "no route %s %s", r->method, r->path);
    snprintf(r->allow, sizeof r->allow, "%s", allow);
    vs_reply_error(r, 405, "method_not_allowed", "%s %s: use %s", r->method, r->path, allow);
}
