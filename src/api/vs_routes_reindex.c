/* vs_routes_reindex.c - POST and GET /api/v1/reindex: moving the whole
 * deployment to another embedder in the background (vs_app_reindex.c).
 * Deployment-wide, so operator-only: the server checks the admin key
 * before these run (vs_server.c). */
#include <string.h>

#include "vs_routes.h"

static void reply_status(vs_req *r, int status) {
    json_t *o = vs_app_reindex_status(r->app);
    if (!o) return vs_reply_error(r, 500, "internal", "out of memory");
    vs_reply_json(r, status, o);
}

void vs_route_reindex_get(vs_req *r) { reply_status(r, 200); }

void vs_route_reindex_post(vs_req *r) {
    /* an empty body (whatever its Content-Type) is "the defaults" */
    json_t *b = r->body_len ? vs_req_body(r, VS_BODY_JSON, &vs_schema_reindex, NULL) : json_object();
    if (!b) return;
    json_t *e = json_object_get(b, "embedder"), *d = json_object_get(b, "drop_blocks"),
           *t = json_object_get(b, "throttle_ms");
    int which = e ? vs_embedder_find(json_string_value(e)) : VS_EMBEDDER_DEFAULT;
    int bad = which < 0 || (d && !json_is_boolean(d)) ||
              (t && (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 10000));
    int drop = json_is_true(d), throttle = t ? (int)json_integer_value(t) : 0;
    json_decref(b);
    if (bad)
        return vs_reply_error(r, 400, "bad_request",
                              "give \"embedder\": \"dlib\" or \"faceres\", \"drop_blocks\": a boolean, "
                              "\"throttle_ms\": 0..10000");
    vs_error err = {0};
    vs_err rc = vs_app_reindex_start(r->app, (vs_embedder)which, drop, throttle, &err);
    if (rc == VS_ERR_INVALID_ARG) return vs_reply_error(r, 409, "conflict", "%s", err.msg);
    if (rc != VS_OK) return vs_reply_vs_err(r, rc, &err);
    reply_status(r, 202);
}
