/* vs_people.h - people: a tenant's indexed faces grouped into persons
 * without anyone asking (vs_cluster.c decides, this module keeps and feeds
 * it). The grouping lives in {data}/people.db: one row per face that has
 * been looked at (its person, or none yet) and one per person (name,
 * identity, watched, ignored).
 *
 * A background runner follows the catalog's image records in the order they
 * change (vs_image_records_changed): a new face joins the person its
 * neighbours and the person's centroid agree on, or waits; waiting faces are
 * grouped in batches (DBSCAN over their k-nearest-neighbour graph) into new
 * people. A record that lost faces (a face deleted, the image erased) takes
 * them out of their person; a person left with no face disappears. The
 * runner's place is kept in people.db, so a restart resumes where it was.
 *
 * Manual decisions hold: clustering only ever places faces that have no
 * person; a merge, a split or "ignore" is never undone by a later run. */
#ifndef VS_PEOPLE_H
#define VS_PEOPLE_H

#include <stdint.h>

#include <jansson.h>

#include "vs_cluster.h"
#include "vs_hash.h"
#include "vs_pipeline.h"

typedef struct vs_people vs_people;

typedef struct vs_people_cfg {
    vs_cluster_cfg cluster;
    int tick_ms;   /* pause between runner passes (default 1000) */
    int batch_max; /* waiting faces grouped in one batch, at most, the oldest first (default 1,000,000) */
    int exact_max; /* up to this many, the batch's neighbours are exact, over vectors in memory;
                    * above, one search of the tenant's index per face (default 2000) */
    int nice;      /* runner thread's nice value (default 10: ingest and search first) */
} vs_people_cfg;

void vs_people_cfg_default(vs_people_cfg *c);

/* Called when a face joins a watched person (the runner's thread): the
 * tenant, the person and the face's record entry (face_id, image_sha256,
 * site, source_url, page_url). */
typedef void (*vs_people_seen_cb)(void *ctx, const char *tenant, const char *person_id, const json_t *face);

/* Opens {data_dir}/people.db. p is borrowed (index, catalog, collections)
 * and must outlive the handle. */
vs_err vs_people_open(const char *data_dir, const vs_pipeline *p, const vs_people_cfg *cfg, vs_people **out,
                      vs_error *err);
void vs_people_close(vs_people *pp); /* stops the runner first */

/* The background runner: one thread, nice cfg.nice; seen (may be NULL) is
 * told of every face of a watched person it places. */
vs_err vs_people_start(vs_people *pp, vs_people_seen_cb seen, void *seen_ctx, vs_error *err);
/* Makes the pipeline the runner reads from p (a reindex switched). */
void vs_people_set_pipeline(vs_people *pp, const vs_pipeline *p);

/* One pass over every tenant, now, in the caller's thread (tests, and the
 * runner's body): new and changed records, then a batch of the waiting
 * faces when there are enough. *placed (may be NULL) gets the faces that got
 * a person. */
vs_err vs_people_run_once(vs_people *pp, int64_t *placed, vs_error *err);

/* What the runner has done since the process started (/metrics). */
typedef struct vs_people_stats {
    int64_t placed;        /* new faces that joined a person on arrival */
    int64_t batches;       /* batches of waiting faces grouped */
    int64_t formed;        /* people the batches formed */
    int64_t attached;      /* waiting faces the attach pass placed */
    int64_t merged;        /* new people merged into an existing one (step 4, docs/people.md) */
    int64_t last_batch_ms; /* how long the last batch took */
} vs_people_stats;
void vs_people_stats_get(vs_people *pp, vs_people_stats *out);

/* ---- reading ------------------------------------------------------- */

typedef enum vs_people_sort { VS_PEOPLE_BY_IMAGES = 0, VS_PEOPLE_BY_SITES, VS_PEOPLE_BY_FACES } vs_people_sort;

/* The tenant's people, most images (sites, faces) first, from offset, at
 * most limit; ignored ones only when include_ignored. Each item:
 * {person_id, name?, identity_id?, faces, images, sites, watched, ignored,
 * cover_face_id, created_at}. *more = 1 when more follow. */
vs_err vs_people_list(vs_people *pp, const char *tenant, vs_people_sort sort, int include_ignored, int offset,
                      int limit, json_t *arr, int *more, vs_error *err);
/* One person as above, plus "sites": [{site, faces}] (most first);
 * NOT_FOUND for another tenant's or an unknown id. */
vs_err vs_people_get(vs_people *pp, const char *tenant, const char *person_id, json_t **out, vs_error *err);
/* The person's faces, newest first, from offset, at most limit:
 * {face_id, image_sha256, site, manual, quality_score}. */
vs_err vs_people_faces(vs_people *pp, const char *tenant, const char *person_id, int offset, int limit, json_t *arr,
                       int *more, vs_error *err);
#define VS_PERSON_NAME_MAX 201

/* The person of each of n faces into person_ids[i] (VS_UUID_STR each; ""
 * when none) and its name into names[i] ("" when unnamed; names may be
 * NULL): for search results. */
vs_err vs_people_of_faces(vs_people *pp, const char *tenant, const char *const *face_ids, int n,
                          char (*person_ids)[VS_UUID_STR], char (*names)[VS_PERSON_NAME_MAX], vs_error *err);

/* ---- deciding ------------------------------------------------------ */

/* Names the person (1..200 characters); identity_id (may be NULL) records
 * the identity made from it. */
vs_err vs_people_name(vs_people *pp, const char *tenant, const char *person_id, const char *name,
                      const char *identity_id, vs_error *err);
/* Moves every face of `from` into `into` (both the tenant's) and removes
 * `from`; its name, watch and identity go to `into` when it had none. */
vs_err vs_people_merge(vs_people *pp, const char *tenant, const char *into, const char *from, vs_error *err);
/* Moves n faces of person_id out into a new person (its id into new_id);
 * a face of another person -> INVALID_ARG naming it. */
vs_err vs_people_split(vs_people *pp, const char *tenant, const char *person_id, const char *const *face_ids, int n,
                       char new_id[VS_UUID_STR], vs_error *err);
vs_err vs_people_set_flag(vs_people *pp, const char *tenant, const char *person_id, const char *flag, int on,
                          vs_error *err); /* flag: "watched" or "ignored" */

/* Erasure: forgets an image's faces (face_id NULL) or one face at once,
 * removing people left with none; the runner would do it on its next pass,
 * this makes it immediate. */
vs_err vs_people_forget(vs_people *pp, const char *tenant, const char *image_sha256, const char *face_id,
                        vs_error *err);

#endif
