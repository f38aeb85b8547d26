/* vs_routes.h - the route handlers, one file per group. Each replies through
 * vs_reply_*; none keeps state between requests. */
#ifndef VS_ROUTES_H
#define VS_ROUTES_H

#include "vs_http.h"

/* vs_routes_ingest.c */
void vs_route_ingest(vs_req *r);
void vs_route_ingest_batch(vs_req *r);
/* vs_routes_search.c */
void vs_route_search(vs_req *r);
/* vs_routes_faces.c */
void vs_route_face_get(vs_req *r, const char *id);
void vs_route_face_delete(vs_req *r, const char *id);
void vs_route_image_get(vs_req *r, const char *sha256);
void vs_route_image_delete(vs_req *r, const char *sha256);
void vs_route_blob(vs_req *r, const char *bucket_and_key);
/* vs_routes_lists.c */
void vs_route_image_list(vs_req *r);
void vs_route_face_list(vs_req *r);
void vs_route_stats(vs_req *r);
/* vs_routes_identities.c */
void vs_route_identity_get(vs_req *r, const char *id);
void vs_route_identity_sample_delete(vs_req *r, const char *id, const char *sample_id);
void vs_route_identity_create(vs_req *r);
void vs_route_identity_list(vs_req *r);
void vs_route_identity_delete(vs_req *r, const char *id);
void vs_route_identity_enroll(vs_req *r, const char *id);
void vs_route_identity_verify(vs_req *r, const char *id);
void vs_route_identify(vs_req *r);
/* vs_routes_people.c */
void vs_route_people_list(vs_req *r);
void vs_route_person_get(vs_req *r, const char *id);
void vs_route_person_action(vs_req *r, const char *id, const char *action);
/* Adds person_id to each result (a face with "face_id") whose face has a person. */
void vs_route_people_annotate(vs_req *r, json_t *results);
/* vs_routes_crawl.c */
void vs_route_crawl_create(vs_req *r);
void vs_route_crawl_get(vs_req *r, const char *id);
void vs_route_crawl_list(vs_req *r);
void vs_route_crawl_cancel(vs_req *r, const char *id);
/* vs_routes_erase.c */
void vs_route_erase(vs_req *r);
void vs_route_blocks_list(vs_req *r);
void vs_route_block_delete(vs_req *r, const char *id);
void vs_route_erase_log(vs_req *r);
/* vs_routes_events.c */
void vs_route_events_list(vs_req *r);
void vs_route_webhook_get(vs_req *r);
void vs_route_webhook_put(vs_req *r);
void vs_route_webhook_delete(vs_req *r);
/* vs_routes_reindex.c (operator-only: the server checks the admin key) */
void vs_route_reindex_get(vs_req *r);
void vs_route_reindex_post(vs_req *r);
/* vs_routes_ops.c */
void vs_route_healthz(vs_req *r);
void vs_route_readyz(vs_req *r);
void vs_route_metrics(vs_req *r);
void vs_route_dead_letters(vs_req *r);
void vs_route_web(vs_req *r);

/* Shared by the handlers (vs_routes_common.c) */

/* The image bytes of a request: JSON "image_b64", multipart field "image",
 * or a raw image body. Returns 1 with a new buffer (vs_free), 0 when the
 * request carries none (nothing replied), -1 after replying an error. */
int vs_req_image(vs_req *r, json_t *body, uint8_t **data, size_t *len);

/* Adds crop_url and thumb_url to dst from the crop_key / thumb_key of a
 * face payload. */
void vs_add_face_urls(vs_app *a, json_t *payload, json_t *dst);

/* Adds crop_url and thumb_url to dst for face face_index of image sha256
 * of the caller's tenant (keys by vs_face_blob_keys): where a record lists
 * faces by index, without their payloads. */
void vs_add_face_index_urls(vs_req *r, const char *sha256, int face_index, json_t *dst);

/* Blob URL (signed path) for bucket/key, into out. */
void vs_app_blob_url(vs_app *a, const char *bucket, const char *key, char *out, size_t cap);

/* Decodes and analyses an image for a query (search, verify, enroll): one
 * reply on failure (415/413/400) and returns -1. */
int vs_req_analyze(vs_req *r, const uint8_t *data, size_t len, vs_faces *faces);
/* The same with the engine's flags (VS_ANALYZE_KEEP_CROPS for enrolment,
 * which keeps a picture of the sample). */
int vs_req_analyze_flags(vs_req *r, const uint8_t *data, size_t len, unsigned flags, vs_faces *faces);

/* A query vector given as JSON (an array of the embedding's dim numbers)
 * into vec, L2-normalised; -1 after replying 400 when it is not one. */
int vs_req_vector(vs_req *r, json_t *v, float *vec);

/* The stored vector of the caller's face face_id into vec; -1 after
 * replying (404 for a face the tenant does not have). */
int vs_req_face_vector(vs_req *r, const char *face_id, float *vec);

/* A face of the query as JSON (bbox, det_score, quality). */
json_t *vs_query_face_json(const vs_face *f);

#endif
