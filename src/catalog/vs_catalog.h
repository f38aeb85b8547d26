/* vs_catalog.h - the embedded catalog (SQLite, WAL, under the data dir):
 * tenants and their API keys (stored as SHA-256, the key itself is shown
 * once), one record per processed image (what was found, what was indexed
 * and what was not, with reasons), the erasure log, a few settings of the
 * deployment (which collections are active) and the records a reindex
 * keeps aside until it switches. Thread-safe. */
#ifndef VS_CATALOG_H
#define VS_CATALOG_H

#include <stdint.h>

#include "vs_err.h"

typedef struct vs_catalog vs_catalog;

#define VS_TENANT_MAX 64
#define VS_API_KEY_MAX 80

/* 1 when name is a valid tenant id: 1..63 characters of [A-Za-z0-9_.-],
 * not "." or "..": safe in paths and keys. The one rule for every module that
 * names tenants (a new tenant's name also starts with a letter or digit). */
int vs_tenant_name_ok(const char *name);
/* 1 when name may be given to a new tenant: vs_tenant_name_ok and starting
 * with a letter or a digit. */
int vs_tenant_new_name_ok(const char *name);

/* VS_OK for a valid tenant name, else INVALID_ARG "{op}: tenant name '…'
 * must be 1..63 characters of [A-Za-z0-9_.-]": the one message for it. */
vs_err vs_tenant_check(const char *tenant, const char *op, vs_error *err);

/* 1 when s is 64 lower-case hex digits: how every module writes a sha256. */
int vs_sha256_hex_ok(const char *s);

/* Opens (creating if needed) {data_dir}/catalog.db. A file from a newer
 * build (PRAGMA user_version above ours) -> VS_ERR_UNSUPPORTED; a file that
 * is not a database -> VS_ERR_BACKEND ("file is not a database"). */
vs_err vs_catalog_open(const char *data_dir, vs_catalog **out, vs_error *err);
void vs_catalog_close(vs_catalog *c);
/* The connection and its mutex, for the catalog's own files only
 * (vs_events.c); every other module uses the functions of the headers. */
struct vs_sqlite_db *vs_catalog_sqlite(vs_catalog *c);

/* Creates tenant `name` (1..63 chars of [A-Za-z0-9_.-]) with a new random
 * API key "vsk_<48 hex>" written to key_out. A duplicate name ->
 * VS_ERR_INVALID_ARG. The tenant id is the name. */
vs_err vs_tenant_create(vs_catalog *c, const char *name, char key_out[VS_API_KEY_MAX], vs_error *err);
/* Issues a new API key for tenant `name` and revokes all its others, in
 * one transaction; effective at once, also for a running server. Unknown
 * tenant -> VS_ERR_NOT_FOUND. */
vs_err vs_tenant_rotate_key(vs_catalog *c, const char *name, char key_out[VS_API_KEY_MAX], vs_error *err);
/* Every tenant by name: cb gets its name, creation time (ms since the epoch)
 * and number of keys; non-zero stops. Runs under the catalog lock. */
typedef int (*vs_tenant_cb)(void *ctx, const char *name, int64_t created_ms, int64_t n_keys);
vs_err vs_tenant_list(vs_catalog *c, vs_tenant_cb cb, void *ctx, vs_error *err);
/* The tenant of an API key, or VS_ERR_NOT_FOUND. Constant-time on the hash. */
vs_err vs_tenant_for_key(vs_catalog *c, const char *key, char tenant_out[VS_TENANT_MAX], vs_error *err);
/* Number of tenants (0 = open mode: no keys needed, tenant "default");
 * -1 when the catalog cannot be read (not 0: fails closed). */
int64_t vs_tenant_count(vs_catalog *c);

/* ERASED: the image was erased and is remembered only by its sha256 (no
 * record, no external id), so that it is never indexed again for the tenant
 * (a re-crawl, a re-post) until the tenant lifts that. */
typedef enum vs_image_status {
    VS_IMG_QUEUED = 0, VS_IMG_PROCESSING, VS_IMG_DONE, VS_IMG_FAILED, VS_IMG_ERASED
} vs_image_status;

const char *vs_image_status_name(vs_image_status s);

/* Inserts or updates the record of (tenant, sha256). external_id and
 * record_json may be NULL to keep the stored value. sha256 must be 64
 * lower-case hex digits and tenant a valid name, else VS_ERR_INVALID_ARG.
 * An ERASED image stays ERASED (a late result of a processing that raced
 * the erasure changes nothing); status ERASED itself is not accepted here. */
vs_err vs_image_record_put(vs_catalog *c, const char *tenant, const char *sha256, const char *external_id,
                           vs_image_status status, const char *record_json, vs_error *err);
/* Marks n images as queued in one transaction (one sync for the batch):
 * new ones are inserted as QUEUED, FAILED ones go back to QUEUED, the others
 * keep their status. external_ids may be NULL, or hold NULLs. When
 * already_done is not NULL, already_done[i] is set to 1 for images that
 * were DONE before the call (exact duplicates: nothing to process), 2 for
 * ERASED ones (they stay ERASED: not to be processed), else 0. */
vs_err vs_image_records_queue(vs_catalog *c, const char *tenant, const char *const *sha256,
                              const char *const *external_ids, int n, int *already_done, vs_error *err);

/* By sha256 (or, when sha256 is NULL, by external_id). *record_json is a new
 * string (vs_free) or NULL if none stored yet; sha_out may be NULL.
 * Missing -> VS_ERR_NOT_FOUND. When several images of the tenant carry the
 * external_id, the most recently updated one is returned. */
vs_err vs_image_record_get(vs_catalog *c, const char *tenant, const char *sha256, const char *external_id,
                           vs_image_status *status, char **record_json, char sha_out[65], vs_error *err);
/* Progress of a set of n images (a crawl's saved images): *processed = how
 * many have status DONE, FAILED or ERASED (erased on arrival by a block), *faces_found = the sum of the integer
 * "faces_found" field of the record_json of the DONE ones. Images without a
 * record count as not processed; each entry of sha256 is counted, so pass
 * distinct ones. Either output may be NULL. Bad tenant or sha256 ->
 * VS_ERR_INVALID_ARG. */
vs_err vs_image_records_summary(vs_catalog *c, const char *tenant, const char *const *sha256, int n,
                                int64_t *processed, int64_t *faces_found, vs_error *err);
/* One face of an image deleted (DELETE /api/v1/faces/{id}): its entry
 * moves from the record's "faces_indexed" to "faces_deleted" (with
 * "deleted_at", ms), in one statement so concurrent deletions of faces of
 * one image do not lose each other's. A record not listing the face is left
 * as it is (VS_OK). */
vs_err vs_image_record_drop_face(vs_catalog *c, const char *tenant, const char *sha256, const char *face_id,
                                 vs_error *err);
/* A listing of the tenant's records (GET /api/v1/images and /faces), never
 * ERASED ones, newest first: created_at DESC, then sha256 DESC. Filters
 * left at their "off" value (NULL, status -1, since INT64_MIN, until
 * INT64_MAX) do not apply. after_sha256 (with after_created_ms) is the
 * cursor: only rows strictly after that one in the order are listed. */
typedef struct vs_image_query {
    const char *tenant;
    int status;                    /* a vs_image_status, or -1: any */
    const char *site;              /* exact match on the record's "site" */
    const char *sha256;            /* one image only */
    int64_t since_ms, until_ms;    /* created_at in [since, until) */
    const char *after_sha256;
    int64_t after_created_ms;
    int limit;                     /* at most this many rows (>= 1) */
} vs_image_query;

/* One row of a listing; the strings live until the callback returns
 * (external_id and record_json may be NULL). */
typedef struct vs_image_row {
    const char *sha256;
    vs_image_status status;
    const char *external_id, *record_json;
    int64_t created_ms, updated_ms;
} vs_image_row;

/* Non-zero stops the listing. Runs under the catalog lock: it must not
 * call the catalog. */
typedef int (*vs_image_row_cb)(void *ctx, const vs_image_row *row);
vs_err vs_image_record_list(vs_catalog *c, const vs_image_query *q, vs_image_row_cb cb, void *ctx, vs_error *err);

/* The tenant's image records in the order they last changed, strictly
 * after (after_ms, after_sha; "" = from the start), at most limit, every
 * status (ERASED too): how a follower such as the people runner sees new,
 * changed and erased images. */
vs_err vs_image_records_changed(vs_catalog *c, const char *tenant, int64_t after_ms, const char *after_sha, int limit,
                                vs_image_row_cb cb, void *ctx, vs_error *err);

/* The tenant's images by status (counts[VS_IMG_QUEUED..VS_IMG_ERASED]),
 * the DONE ones updated in the last 60 s and the faces their records list
 * as indexed. */
vs_err vs_image_record_counts(vs_catalog *c, const char *tenant, int64_t counts[VS_IMG_ERASED + 1],
                              int64_t *done_last_minute, int64_t *faces_indexed, vs_error *err);

/* Removes the record of (tenant, sha256); none -> VS_ERR_NOT_FOUND. */
vs_err vs_image_record_delete(vs_catalog *c, const char *tenant, const char *sha256, vs_error *err);

/* Erasure's last step: the record becomes an ERASED marker (record_json and
 * external_id dropped) so the image is not indexed again; created when the
 * tenant had no record. */
vs_err vs_image_record_mark_erased(vs_catalog *c, const char *tenant, const char *sha256, vs_error *err);

/* The erasure log: one entry per erasure the tenant asked for (an image, a
 * face, a person, a block lifted) or that was done on its behalf (an image
 * erased on arrival by a block), so a team can show what was erased and
 * when. `what` names the kind; detail_json is a JSON object of counts and
 * ids (never a face vector or an image). Entries are not deleted. */
vs_err vs_erasure_log_add(vs_catalog *c, const char *tenant, const char *what, const char *detail_json, vs_error *err);
/* The tenant's entries newest first, with id < before (0: from the newest),
 * at most limit (1..1000); cb returning non-zero stops. The callback runs
 * under the catalog lock: it must not call the catalog. */
typedef int (*vs_erasure_cb)(void *ctx, int64_t id, int64_t at_ms, const char *what, const char *detail_json);
vs_err vs_erasure_log_list(vs_catalog *c, const char *tenant, int64_t before, int limit, vs_erasure_cb cb, void *ctx,
                           vs_error *err);

/* An erasure recorded before anything is deleted, so that the log names
 * every image that is gone even when the process dies part-way:
 * vs_erasure_begin adds the entry "in progress" with the images it is about
 * to erase (more may follow with vs_erasure_plan: a person's images are
 * found in rounds), each in the same durable commit; vs_erasure_image_done
 * marks one erased; vs_erasure_finish writes the final detail (which must
 * name the images itself) and closes it. Until then vs_erasure_log_list
 * shows the entry's detail with "images" (every one named) and
 * "images_erased" (those marked) filled in from the list. An entry found
 * in progress at start-up was cut by a crash: vs_erasure_unfinished lists
 * them so the erasure can be finished (vs_erase_resume). *id gets the
 * entry's id. Images: 64 lower-case hex digits each, else INVALID_ARG. */
vs_err vs_erasure_begin(vs_catalog *c, const char *tenant, const char *what, const char *detail_json,
                        const char *const *sha256, int n, int64_t *id, vs_error *err);
/* Names n more images in erasure id; one not in progress -> NOT_FOUND. */
vs_err vs_erasure_plan(vs_catalog *c, int64_t id, const char *const *sha256, int n, vs_error *err);
vs_err vs_erasure_image_done(vs_catalog *c, int64_t id, const char *sha256, vs_error *err);
/* One not in progress (finished already, unknown) -> NOT_FOUND. */
vs_err vs_erasure_finish(vs_catalog *c, int64_t id, const char *detail_json, vs_error *err);
/* Every entry in progress, oldest first. The callbacks run under the
 * catalog lock: they must not call the catalog. */
typedef int (*vs_erasure_open_cb)(void *ctx, int64_t id, const char *tenant, const char *what, const char *detail_json);
vs_err vs_erasure_unfinished(vs_catalog *c, vs_erasure_open_cb cb, void *ctx, vs_error *err);
/* The images named in erasure id (in progress), in the order named. */
typedef int (*vs_erasure_image_cb)(void *ctx, const char *sha256, int done);
vs_err vs_erasure_images(vs_catalog *c, int64_t id, vs_erasure_image_cb cb, void *ctx, vs_error *err);

/* Every tenant id that may hold data, each once in name order: those with
 * keys, those with image records, and "default" (open mode's tenant). cb
 * runs under the catalog lock: it must not call the catalog. */
typedef int (*vs_tenant_id_cb)(void *ctx, const char *tenant);
vs_err vs_tenant_ids(vs_catalog *c, vs_tenant_id_cb cb, void *ctx, vs_error *err);

/* ---- settings: small named values of the deployment ------------------- */

/* *value is a new string (vs_free); VS_ERR_NOT_FOUND when key is unset. */
vs_err vs_setting_get(vs_catalog *c, const char *key, char **value, vs_error *err);
/* Sets key; value NULL removes it. */
vs_err vs_setting_put(vs_catalog *c, const char *key, const char *value, vs_error *err);

/* ---- reindex: new records kept aside until the switch ----------------- */

/* `visage reindex` re-embeds every DONE image into new collections. The
 * record each image gets from that run is staged here, not written over the
 * image's record: until the switch the records keep describing the
 * collections searches use. */
typedef struct vs_image_ref {
    char tenant[VS_TENANT_MAX];
    char sha256[65];
} vs_image_ref;

/* Stages the new record of (tenant, sha256); status DONE or FAILED. */
vs_err vs_reindex_record_put(vs_catalog *c, const char *tenant, const char *sha256, vs_image_status status,
                             const char *record_json, vs_error *err);
/* Up to cap DONE images with no staged record, in (tenant, sha256) order;
 * *n gets how many were written to out. */
vs_err vs_reindex_pending(vs_catalog *c, vs_image_ref *out, int cap, int *n, vs_error *err);
/* *images = DONE images, *staged = those of them with a staged record,
 * *failed = those staged as FAILED (their raw image could not be read). */
vs_err vs_reindex_counts(vs_catalog *c, int64_t *images, int64_t *staged, int64_t *failed, vs_error *err);
/* Forgets every staged record (a new reindex starts from nothing). */
vs_err vs_reindex_reset(vs_catalog *c, vs_error *err);

typedef struct vs_setting {
    const char *key, *value;   /* value NULL: remove */
} vs_setting;

typedef struct vs_erasure_entry {
    const char *tenant, *what, *detail_json;
} vs_erasure_entry;

/* The switch, in one transaction: every image still DONE takes its staged
 * record and status, the settings are written, the erasure log entries
 * added and the staging emptied. All or nothing: a crash leaves either the
 * old state or the new one. */
vs_err vs_reindex_switch(vs_catalog *c, const vs_setting *set, int n_set, const vs_erasure_entry *log, int n_log,
                         vs_error *err);

#endif
