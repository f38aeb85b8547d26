/* vs_router.h - the table of /api/v1 routes: (method, path pattern) ->
 * handler. A path that exists under other methods answers 405 with an Allow
 * header naming them; a path that does not exist answers 404. */
#ifndef VS_ROUTER_H
#define VS_ROUTER_H

#include <stddef.h>

#include "vs_http.h"

/* Runs the handler of r's method and path (r is authenticated), or replies
 * 405 + Allow, or 404. */
void vs_router_dispatch(vs_req *r);

/* Pure lookup, for tests: the route of (method, path). Returns 1 when a
 * handler serves it (id gets the {id} part, "" when none), 0 when the path
 * exists only under other methods (allow gets them, "GET, DELETE"), -1 when
 * no route has that path. id and allow have room for cap bytes each. */
int vs_router_lookup(const char *method, const char *path, char *id, char *allow, size_t cap);

#endif
