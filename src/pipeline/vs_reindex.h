/* vs_reindex.h - moving a deployment's data to another embedder without
 * losing any: `visage reindex` and POST /api/v1/reindex.
 *
 * A collection made by one model is never searched with another, so every
 * stored raw image of every tenant is detected, aligned and embedded again
 * by the new engine, through the pipeline's own vs_process_image, into the
 * next generation of collections (faces_v2, identities_v2, ...). Identities
 * are rebuilt from their samples: a sample taken from an indexed face takes
 * that face's new vector, one taken from an uploaded photo is embedded
 * again from the stored raw image; a sample whose source is gone is lost
 * (counted). Then the active names switch in one catalog transaction, with
 * the new image records, and only then are the old collections dropped:
 * nothing erased can linger in them.
 *
 * Resumable: the plan (target names and model) is a catalog setting; an
 * image's points are written (deterministic ids) before its new record is
 * staged, and staged images are not processed again; identities are
 * rebuilt whole on every run (their new collections made afresh). A run
 * killed anywhere and run again ends with the same points, none twice, none
 * missing. Before the switch the new faces collection is swept: points of
 * images no longer DONE (erased meanwhile) and faces deleted one by one
 * from the old collection (re-detection finds them again) are deleted.
 *
 * Blocks (erase_blocks) hold vectors of people whose photos were erased,
 * so they cannot be made again with the new model: the switch is refused
 * while any tenant has one, unless drop_blocks, which drops them and
 * records each in its tenant's erasure log ("block_dropped"). */
#ifndef VS_REINDEX_H
#define VS_REINDEX_H

#include <jansson.h>
#include <stdatomic.h>

#include "vs_pipeline.h"

/* Catalog setting holding the plan of a reindex under way. */
#define VS_SETTING_REINDEX "reindex"

/* For a reindex inside a running server; all NULL offline. */
typedef struct vs_reindex_hooks {
    void *ctx;
    /* Called once the target collections are known, before the first image:
     * from now on erasures must delete from `to` too (vs_pipeline.shadow). */
    void (*started)(void *ctx, const vs_collections *to);
    /* Stops every write of images, faces, identities and blocks (ingest
     * workers, erasures, identity edits) until resume; searches go on. */
    void (*pause)(void *ctx);
    void (*resume)(void *ctx);
    /* Called paused, right after the catalog switched to `to`: from now on
     * the process must use the new engine and these collections. */
    void (*switched)(void *ctx, const vs_collections *to);
} vs_reindex_hooks;

typedef struct vs_reindex_opts {
    const vs_engine *engine;   /* the new model's engine (borrowed) */
    int drop_blocks;           /* drop erasure blocks (logged) instead of refusing */
    int threads;               /* engine workers for the images (>= 1) */
    int throttle_ms;           /* each of them pauses this long after an image (a server's cores) */
    /* progress(ctx, phase, done, total): phase "images", "identities", "switch", "drop" */
    void (*progress)(void *ctx, const char *phase, int64_t done, int64_t total);
    void *ctx;
    atomic_int *stop;          /* set: stop soon with VS_ERR_CANCELLED (resumable) */
    vs_reindex_hooks hooks;
} vs_reindex_opts;

typedef struct vs_reindex_report {
    int switched;              /* 0: nothing to do (the data is on that model already) */
    int resumed;               /* a plan from an earlier run was continued */
    char from_model[VS_INDEX_MODEL_MAX + 1], to_model[VS_INDEX_MODEL_MAX + 1];
    vs_collections from, to;
    int64_t images;            /* images re-embedded (all runs of this plan) */
    int64_t images_failed;     /* ... whose raw image could not be read: now status failed */
    int64_t faces;             /* points in the new faces collection */
    int64_t identities, samples, samples_lost;
    int64_t blocks_dropped;
    int64_t points_swept;      /* new points of images erased during the reindex, deleted */
    double seconds;
} vs_reindex_report;

/* Runs (or resumes) a reindex of cur's data to o->engine's model. cur is
 * the pipeline in use: its store, index, catalog, engine and active
 * collections (borrowed). A plan for another model is abandoned (its
 * collections dropped) and a new one started. rep is filled as far as the
 * run got. Errors: VS_ERR_INVALID_ARG for blocks without drop_blocks (the
 * message names the tenants), VS_ERR_CANCELLED when stopped, else what the
 * backends said; every one leaves a state the next run continues. */
vs_err vs_reindex_run(const vs_pipeline *cur, const vs_reindex_opts *o, vs_reindex_report *rep, vs_error *err);

/* The report as JSON {"switched","resumed","from":{"model",...names},
 * "to":{...},"images","images_failed","faces","identities","samples",
 * "samples_lost","blocks_dropped","points_swept","seconds"} (new object). */
json_t *vs_reindex_report_json(const vs_reindex_report *r);

#endif
