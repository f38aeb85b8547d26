/* vs_origin.h - who may talk to the server from a browser: the open mode's
 * loopback Host check (against DNS rebinding) and the CORS origin checks.
 * Pure functions of header values, so they are tested without a server. */
#ifndef VS_ORIGIN_H
#define VS_ORIGIN_H

#include "vs_err.h"

/* 1 when a Host header value names loopback: 127.x.y.z, localhost or [::1],
 * each with an optional :port. */
int vs_host_is_loopback(const char *host);

/* 1 when origin ("scheme://host[:port]") names the same host[:port] as the
 * Host header the request came with (the scheme is not compared: a TLS
 * proxy in front changes it). */
int vs_origin_same_host(const char *origin, const char *host);

/* 1 when origin is one of the comma-separated exact origins of list
 * (case-insensitive, spaces around commas ignored). */
int vs_origin_listed(const char *origin, const char *list);

/* Checks a list for vs_origin_listed: every entry "http(s)://host[:port]",
 * no path, no "*" (a wildcard would let every page use the API).
 * VS_ERR_INVALID_ARG naming the entry. */
vs_err vs_origin_list_check(const char *list, vs_error *err);

#endif
