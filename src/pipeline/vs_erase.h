/* vs_erase.h - erasure: of one image, of every image of a person, and blocks
 * that keep a person's future images out.
 *
 * An image is erased whole: its points, crops, thumbnails, raw file, record,
 * the identity samples taken from it and the crawl.db rows about it. With
 * suppress its record becomes an ERASED marker (the sha256 only), so the same
 * bytes are never indexed again for the tenant.
 *
 * A person is erased by a face: every image of the tenant holding a face at
 * or above the threshold goes, other people's faces in those images too
 * (the request is "remove the images of this person"; to drop one face and
 * keep its image there is DELETE /api/v1/faces/{id}). Different photos of
 * the person cannot be caught by exact bytes, so a block keeps the query
 * vector (in the index, collection coll.blocks, tenant-scoped like every
 * point) and the index owner erases any later image with a face matching it
 * instead of indexing it.
 *
 * The erasure log is the tenant's audit record, so it must name every image
 * erased even when the process dies part-way: an erasure of a person, of an
 * image (DELETE /api/v1/images) and an erasure on arrival first write their
 * entry "started" (tenant, a request id, what asked for it and the images
 * about to go) in one durable commit, then erase, marking each image done,
 * then complete the entry. The deletion of one face (DELETE
 * /api/v1/faces/{id}) is recorded the same way, naming the face id and its
 * image. A start-up finds entries a crash left started and finishes them
 * (vs_erase_resume). The log holds ids and sha256s only. */
#ifndef VS_ERASE_H
#define VS_ERASE_H

#include <jansson.h>

#include "vs_pipeline.h"

#define VS_ERASE_MAX_IMAGES 100000
#define VS_BLOCK_NOTE_MAX 512

/* Removes every trace of an image of a tenant (see above). Without suppress
 * the record goes too and an existing ERASED marker is lifted. *faces_deleted
 * and *crawl_rows (rows of crawl.db that named it) may be NULL. */
vs_err vs_erase_image(const vs_pipeline *p, const char *tenant, const char *sha256, int suppress,
                      int64_t *faces_deleted, int64_t *crawl_rows, vs_error *err);

/* vs_erase_image with its log entry of kind `what` ("image",
 * "blocked_on_arrival") begun before anything is deleted and completed
 * after: detail (taken over; NULL -> NOMEM) gets image_sha256, suppressed,
 * state, request_id, images, images_erased and faces_deleted. */
vs_err vs_erase_image_recorded(const vs_pipeline *p, const char *tenant, const char *sha256, int suppress,
                               const char *what, json_t *detail, int64_t *faces_deleted, int64_t *crawl_rows,
                               vs_error *err);

/* Deletes one face of a tenant and keeps its image (DELETE
 * /api/v1/faces/{id}): crop, thumbnail, identity samples, its entry in the
 * image record (moved to faces_deleted) and its points. payload_json is the
 * face's stored payload (image_sha256, face_index, crop_key, thumb_key).
 * Logged as "face" {face_id, image_sha256, face_index, faces_deleted}, the
 * entry begun before anything goes and completed after, so a crash part-way
 * leaves it started for vs_erase_resume. *deleted = points removed. */
vs_err vs_erase_face(const vs_pipeline *p, const char *tenant, const char *face_id, const char *payload_json,
                     int64_t *deleted, vs_error *err);

/* Finishes every erasure a crash cut short (entries still "started"): the
 * images each named and had not erased yet are erased, and the entry is
 * completed naming all of them, with "resumed": true (and, for a person,
 * "complete": false: images a later round would have found were not looked
 * for). A face's deletion ("face") is done again step by step and
 * completed with "resumed": true. Run at start-up, before workers or
 * requests. *resumed = entries finished. On an error the rest stay started for the next start. */
vs_err vs_erase_resume(const vs_pipeline *p, int *resumed, vs_error *err);

/* Appends an entry of kind `what` to the tenant's erasure log (catalog);
 * takes ownership of detail (a JSON object of counts and ids). */
vs_err vs_erase_log(const vs_pipeline *p, const char *tenant, const char *what, json_t *detail, vs_error *err);

/* The index owner's side of a block: erases an image that arrived with a
 * face matching block_id, and logs it ("blocked_on_arrival"). */
vs_err vs_erase_blocked(const vs_pipeline *p, const char *tenant, const char *sha256, const char *block_id, vs_error *err);

typedef struct vs_erase_person_opts {
    float threshold;   /* cosine similarity at or above which a face is the person */
    int max_images;    /* stop after this many images, 1..VS_ERASE_MAX_IMAGES */
    int dry_run;       /* list what would go; change nothing */
    int suppress;      /* leave ERASED markers (the default for a person) */
    int block;         /* also add a block with this vector and threshold */
    const char *note;  /* kept with the block: why (a ticket id...); may be NULL */
} vs_erase_person_opts;

/* Erases (or, dry_run, lists) every image of the tenant with a face
 * matching vec (dim floats, L2-normalised). *report is a new object:
 * {"dry_run", "threshold", "images":[{"image_sha256","score","face_ids",
 * "source_url"?,"site"?,"page_url"?}] best first, "images_erased",
 * "faces_deleted", "complete", "block_id"?}. complete = 0 when max_images
 * stopped it, or (dry run) when more faces matched than one search returns.
 * Not a dry run: logged as "person" with the counts and the images' sha256,
 * the entry begun before the first image goes and each round's images named
 * in it before they are erased. On an error part of the work may be done;
 * a retry finishes it, and the begun entry (finished at the next start)
 * names the images this run had taken on. */
vs_err vs_erase_person(const vs_pipeline *p, const char *tenant, const float *vec, const vs_erase_person_opts *o,
                       json_t **report, vs_error *err);

/* Adds a block for the tenant; id_out gets its id. threshold in [0.3, 1]. */
vs_err vs_block_add(const vs_pipeline *p, const char *tenant, const float *vec, float threshold, const char *note,
                    char id_out[VS_POINT_ID_MAX], vs_error *err);
/* Appends {block_id, threshold, note, created_at} of every block to arr. */
vs_err vs_block_list(const vs_pipeline *p, const char *tenant, json_t *arr, vs_error *err);
/* Lifts a block (logged as "block_lifted", the entry begun before the block
 * goes and finished by vs_erase_resume after a crash); unknown id ->
 * VS_ERR_NOT_FOUND. Images it erased stay erased. */
vs_err vs_block_delete(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err);
/* *blocked = 1 (with the block's id) when any of the n points matches a
 * block of the tenant at that block's threshold; else 0. */
vs_err vs_block_match(const vs_pipeline *p, const char *tenant, const vs_point *pts, int n, int *blocked,
                      char id_out[VS_POINT_ID_MAX], vs_error *err);

#endif
