/* vs_collections.h - which collections a deployment searches and writes,
 * and therefore which embedder it must run.
 *
 * Every collection is pinned to the model that filled it (the index records
 * it: vs_index_ops.describe), and vectors of two models are never compared.
 * The catalog holds the names in use (setting "collections"); a data dir
 * from before that setting uses generation 1 (faces_v1, identities_v1,
 * identity_samples_v1, erase_blocks_v1). `visage reindex` fills generation
 * n+1 with another model and switches the setting in one transaction, so
 * the data dir, not the command line, decides the embedder. */
#ifndef VS_COLLECTIONS_H
#define VS_COLLECTIONS_H

#include "vs_catalog.h"
#include "vs_engine.h"
#include "vs_index.h"

#define VS_COLL_NAME_MAX 64
/* Catalog setting holding the active set (JSON, vs_collections_json). */
#define VS_SETTING_COLLECTIONS "collections"

typedef struct vs_collections {
    char faces[VS_COLL_NAME_MAX];       /* one point per indexed face */
    char identities[VS_COLL_NAME_MAX];  /* one point per identity: its centroid */
    char samples[VS_COLL_NAME_MAX];     /* enrolled samples of the identities */
    char blocks[VS_COLL_NAME_MAX];      /* erasure blocks: vectors of erased people */
} vs_collections;

/* Generation n of the names: faces_v{n}, identities_v{n},
 * identity_samples_v{n}, erase_blocks_v{n} (n >= 1). */
void vs_collections_gen(int n, vs_collections *c);
/* The generation of c (from its faces name; 1 when it has none). */
int vs_collections_generation(const vs_collections *c);
/* c's names in order faces, identities, samples, blocks (4 pointers). */
void vs_collections_list(const vs_collections *c, const char *names[4]);

/* {"faces":…,"identities":…,"samples":…,"blocks":…}: a new string (free())
 * or NULL when out of memory. */
char *vs_collections_json(const vs_collections *c);
/* Parses that JSON; a missing or bad name -> VS_ERR_CORRUPT naming it. */
vs_err vs_collections_parse(const char *json, vs_collections *c, vs_error *err);

/* The active set of a data dir, from its catalog; generation 1 when the
 * setting was never written. */
vs_err vs_collections_load(vs_catalog *cat, vs_collections *c, vs_error *err);

/* The newest generation (1..VS_COLL_GEN_PROBE) whose faces collection
 * exists in the index, for a process without the catalog (a distributed
 * worker on a shared index); generation 1 when there is none. */
#define VS_COLL_GEN_PROBE 32
vs_err vs_collections_newest(vs_index *ix, vs_collections *c, vs_error *err);

/* The embedder that may search and fill c: the one whose model id the
 * first existing collection of c (faces, identities, samples, blocks) was
 * created with. When none exists yet (a new data dir), `wanted` (an
 * embedder name or model id; NULL or "" = VS_EMBEDDER_DEFAULT). A `wanted`
 * that names another model than existing collections -> VS_ERR_INVALID_ARG
 * naming both; a model this build does not know -> VS_ERR_UNSUPPORTED. */
vs_err vs_collections_embedder(vs_index *ix, const vs_collections *c, const char *wanted, vs_embedder *out,
                               vs_error *err);

#endif
