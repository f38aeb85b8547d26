/* vs_identity.h - named identities of a tenant: enrolled samples (one
 * embedding each, kept in collection coll.samples) and their mean, the
 * centroid, kept in coll.identities and used by verify and identify.
 * Erasing an image removes the samples that came from it and recomputes the
 * centroids they were part of. */
#ifndef VS_IDENTITY_H
#define VS_IDENTITY_H

#include <jansson.h>

#include "vs_hash.h"
#include "vs_pipeline.h"

#define VS_IDENTITY_MAX_SAMPLES 256

/* One enrolment sample: an embedding and where it came from. */
typedef struct vs_identity_sample {
    const float *vector;
    const char *face_id;        /* indexed face it came from, or NULL */
    const char *image_sha256;   /* image it came from, or NULL */
    float quality;
    /* A JPEG of the face, for samples from an uploaded image (no indexed
     * face to show): stored as face-crops/{tenant}/sample_{sample_id}.jpg,
     * named in the sample's payload as crop_key and deleted with the
     * sample. NULL: none. Borrowed for the call. */
    const uint8_t *crop_jpeg;
    size_t crop_len;
    int crop_stored;            /* 1: the crop is stored already (a reindex rebuilding the sample) */
} vs_identity_sample;

vs_err vs_identity_create(const vs_pipeline *p, const char *tenant, const char *name, char id_out[VS_UUID_STR],
                          vs_error *err);
/* Adds samples and recomputes the centroid; *n_samples gets the new count
 * and *added (may be NULL) how many of the n were new: a sample is named by
 * its vector, so the same face given twice, or enrolled before, is one
 * sample, not a second vote for it in the centroid. */
vs_err vs_identity_enroll(const vs_pipeline *p, const char *tenant, const char *id, const vs_identity_sample *s, int n,
                          int *n_samples, int *added, vs_error *err);
/* The identity's payload (name, n_samples, members...) as a new JSON object,
 * and its centroid (dim floats) if centroid is not NULL. */
vs_err vs_identity_get(const vs_pipeline *p, const char *tenant, const char *id, json_t **info, float *centroid,
                       vs_error *err);
vs_err vs_identity_delete(const vs_pipeline *p, const char *tenant, const char *id, vs_error *err);
/* The identity's samples, in enrolment order, appended to arr as
 * {sample_id, face_id?, image_sha256?, quality_score, crop_key?}; unknown
 * identity -> VS_ERR_NOT_FOUND. */
vs_err vs_identity_samples(const vs_pipeline *p, const char *tenant, const char *id, json_t *arr, vs_error *err);
/* Removes one sample (its point and its crop) and recomputes the centroid
 * from the others; *n_samples gets the count left. An identity or sample
 * the tenant does not have -> VS_ERR_NOT_FOUND. */
vs_err vs_identity_remove_sample(const vs_pipeline *p, const char *tenant, const char *id, const char *sample_id,
                                 int *n_samples, vs_error *err);
/* Appends {identity_id, name, n_samples} of every identity to arr. */
vs_err vs_identity_list(const vs_pipeline *p, const char *tenant, json_t *arr, vs_error *err);
/* The closest identity with at least one sample: id, name, similarity. *found = 0 when none. */
vs_err vs_identity_closest(const vs_pipeline *p, const char *tenant, const float *vec, int *found,
                           char id[VS_POINT_ID_MAX], char name[256], float *similarity, vs_error *err);
/* Writes identity id of the tenant anew into p's collections, for
 * `visage reindex`: info is its stored payload (name, created_at, ...),
 * and its members become the n samples s, each under the point id it had
 * before (sample_ids[i]); the centroid is recomputed from them. */
vs_err vs_identity_rebuild(const vs_pipeline *p, const char *tenant, const char *id, const json_t *info,
                           const char *const *sample_ids, const vs_identity_sample *s, int n, vs_error *err);
/* Removes samples taken from this image (or this face when face_id is set)
 * and recomputes the centroids they belonged to. */
vs_err vs_identity_forget(const vs_pipeline *p, const char *tenant, const char *image_sha256, const char *face_id,
                          vs_error *err);

#endif
