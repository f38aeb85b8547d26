/* vs_index_qdrant.h - internal entry points of the Qdrant backend, for
 * vs_index.c (URL dispatch) and tests. Applications use vs_index.h only. */
#ifndef VS_INDEX_QDRANT_H
#define VS_INDEX_QDRANT_H

#include "vs_hash.h"
#include "vs_index.h"

/* Id of the reserved point that records the model and dimension of a
 * collection (payload {"_visage_collection":true,"model":…,"dim":…}, no
 * tenant_id, so no tenant filter can ever match it). "visage" in hex. */
#define VS_QDRANT_META_ID "76697361-6765-5000-8000-000000000000"

/* Transport tuning; zero fields take the defaults. */
typedef struct vs_qdrant_opts {
    long connect_timeout_ms; /* default 5000 */
    long timeout_ms;         /* whole request, default 60000 */
    int tries;               /* attempts on transport errors, 5xx and 429; default 4 */
    long backoff_ms;         /* delay before the 2nd attempt, doubled after; default 100 */
} vs_qdrant_opts;

/* Opens a client for the Qdrant REST API at url ("http(s)://host:port", an
 * optional path prefix allowed). Reads QDRANT_API_KEY from the environment
 * once, here. No request is sent: collections are checked lazily. */
vs_err vs_index_qdrant_open(const char *url, const vs_qdrant_opts *opts, vs_index **out, vs_error *err);

/* 1 when ix is a Qdrant index. */
int vs_index_is_qdrant(const vs_index *ix);

/* The Qdrant point id of a visage point id: a canonical lower-case UUID is
 * used as is, anything else maps to a UUID derived from it (vs_uuid_from),
 * the original kept in payload "_visage_id". */
void vs_qdrant_point_id(const char *id, char out[VS_UUID_STR]);

#endif
