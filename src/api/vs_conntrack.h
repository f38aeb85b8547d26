/* vs_conntrack.h - deadlines for sockets, enforced by one watchdog thread:
 * a connection past its deadline has its socket shut down (SHUT_RDWR), so
 * the event loop that owns it sees end-of-file and closes it. This is what
 * makes "the whole request head within N s" hold however slowly the bytes
 * trickle in: libmicrohttpd's own timeout restarts with every byte.
 *
 * The tracker never closes a socket, and never touches one after
 * vs_conntrack_remove returns: the owner removes the entry before it closes
 * the fd, so a number reused by a new socket is never shut by mistake. */
#ifndef VS_CONNTRACK_H
#define VS_CONNTRACK_H

#include <stdint.h>

#include "vs_err.h"

typedef struct vs_conntrack vs_conntrack;
typedef struct vs_tracked vs_tracked;

/* Called by the watchdog (with the tracker's lock held: keep it short) for
 * each socket it shuts; reason is what the deadline was set with. */
typedef void (*vs_conntrack_cut_cb)(void *ctx, int reason);

/* Starts the watchdog, checking every tick_ms (default 200 when <= 0).
 * Freed by vs_conntrack_stop. */
vs_err vs_conntrack_start(int tick_ms, vs_conntrack_cut_cb cb, void *ctx, vs_conntrack **out, vs_error *err);
/* Stops the watchdog and frees the entries still tracked. */
void vs_conntrack_stop(vs_conntrack *t);

/* Tracks fd with a deadline (monotonic ms, vs_now_ms; 0 = none). NULL when
 * out of memory (the socket then simply has no deadline). */
vs_tracked *vs_conntrack_add(vs_conntrack *t, int fd, int64_t deadline_ms, int reason);
/* Replaces c's deadline and reason (0 = none). c may be NULL (ignored). */
void vs_conntrack_set(vs_conntrack *t, vs_tracked *c, int64_t deadline_ms, int reason);
/* Forgets c (may be NULL); call before closing its fd. */
void vs_conntrack_remove(vs_conntrack *t, vs_tracked *c);
/* Sockets tracked now. */
int vs_conntrack_count(vs_conntrack *t);

#endif
