/* vs_pipeline.h - process_image(): the ten steps of DESIGN.md for one queued
 * message, through the store, index and catalog interfaces only.
 *
 * Idempotent: point ids derive from (tenant, image_sha256, face_index) and
 * file names from the same, so processing a message twice (a worker died
 * before its ack) overwrites the same points and files. */
#ifndef VS_PIPELINE_H
#define VS_PIPELINE_H

#include <pthread.h>

#include "vs_catalog.h"
#include "vs_collections.h"
#include "vs_crawl_jobs.h"
#include "vs_engine.h"
#include "vs_index.h"
#include "vs_queue.h"
#include "vs_store.h"

typedef struct vs_pipeline_cfg {
    int near_dup_hamming;      /* pHash distance at or below which a face is a near-duplicate (6) */
    float near_dup_cosine;     /* ... and embedding similarity at or above (0.90) */
    int near_dup_skip;         /* 0 (default): index it, linked by near_duplicate_of;
                                * 1: leave it out with reason DUPLICATE */
    vs_gate index_gate;        /* quality gate for indexing (SEARCH) */
    int max_faces;             /* faces indexed per image, best quality first (32) */
    int thumb_px;              /* image thumbnail longest side (320) */
    int face_thumb_px;         /* face thumbnail side (112) */
    size_t max_image_bytes;    /* largest raw image read from the store (64 MiB) */
    size_t max_pixels;         /* decode budget (50 MP) */
} vs_pipeline_cfg;

void vs_pipeline_cfg_default(vs_pipeline_cfg *cfg);

/* What a worker needs; all borrowed, all thread-safe.
 *
 * Embedded (`visage serve`): index and catalog are local and the pipeline
 * writes points and records itself. Distributed worker (`visage worker`
 * without direct index access): index and catalog are NULL and `results` is
 * set: the worker hands the finished points and the record, durably, to
 * the index owner through that queue (at-least-once, like the ingest
 * queue); the owner applies them with vs_apply_result. Without an index the
 * near-duplicate link is not computed and without a catalog the exact-
 * duplicate check happens at the index owner instead (idempotent ids). */
typedef struct vs_pipeline {
    vs_store *store;
    vs_index *index;       /* NULL: no reads (no near-duplicate links) */
    vs_catalog *catalog;   /* NULL: records go through `results` */
    const vs_engine *engine;
    vs_collections coll;   /* where points go and searches look; made by engine's model */
    vs_pipeline_cfg cfg;
    vs_queue *results;     /* non-NULL: hand results to the index owner */
    vs_crawl_db *crawl_db; /* NULL: none; erasure forgets its rows about an image */
    struct vs_people *people; /* NULL: none; erasure takes the faces out of their people at once */
    int reindex;           /* 1: `visage reindex` filling coll: DONE images are processed
                            * again and their records staged (vs_reindex_record_put) */
    const vs_collections *shadow; /* non-NULL: a reindex is filling these; erasure deletes
                                   * an image's or a face's points there too */
    pthread_rwlock_t *writes;     /* non-NULL: held shared by every write of images, faces,
                                   * identities and blocks (workers per image, write routes);
                                   * a reindex takes it exclusive to switch. One per process. */
} vs_pipeline;

/* The queued message (JSON in the queue). */
typedef struct vs_ingest_msg {
    char tenant[VS_TENANT_MAX];
    char bucket[64];
    char key[512];
    char sha256[65];
    char site[256];
    char source_url[2048];
    char page_url[2048];     /* the page the image was found on (crawler) */
    char external_id[256];
} vs_ingest_msg;

/* JSON text of msg (caller frees with free()) / parse JSON into msg. */
char *vs_ingest_msg_json(const vs_ingest_msg *msg);
vs_err vs_ingest_msg_parse(const char *json, vs_ingest_msg *msg, vs_error *err);

/* Outcome of one process_image call. */
typedef enum vs_process_result {
    VS_PROCESSED = 0,        /* record written, points upserted */
    VS_PROCESS_DUPLICATE,    /* this tenant already has this image, or erased it: nothing (re)done */
    VS_PROCESS_REJECTED,     /* permanent failure (not an image...): record says why, do not retry */
    VS_PROCESS_BLOCKED,      /* a face matched an erasure block: the image was erased on arrival */
} vs_process_result;

/* Processes one message. Returns VS_OK with *result for processed,
 * duplicate and rejected images (ack them); any other error is transient
 * (store or index down...) and the message should be retried. */
vs_err vs_process_image(const vs_pipeline *p, vs_engine_worker *w, const vs_ingest_msg *msg,
                        vs_process_result *result, int *faces_indexed, vs_error *err);

/* Applies one result message (from vs_process_image with `results` set) to
 * the local index and catalog: the index owner's half of the hand-over.
 * Idempotent: applying the same result twice changes nothing. */
vs_err vs_apply_result(const vs_pipeline *p, const char *json, vs_error *err);

/* Raw image bucket/key of an image: raw-images/{tenant}/{sha256}.{ext},
 * ext the format's name ("jpg" for JPEG). */
void vs_raw_key(const char *tenant, const char *sha256, vs_image_format fmt, char *key, size_t cap);
/* The key of a stored raw image, whatever its extension (one listing of
 * raw-images/{tenant}/{sha256}.); VS_ERR_NOT_FOUND when it is not stored. */
#define VS_FACE_KEY_MAX 512

/* The blob keys of face face_index of an image, as the pipeline stores them:
 * face-crops "{tenant}/{sha256}_face_{i}.jpg" and face-thumbs
 * "..._face_{i}_thumb.jpg". The one place that names them. */
void vs_face_blob_keys(const char *tenant, const char *sha256, int face_index, char crop[VS_FACE_KEY_MAX],
                       char thumb[VS_FACE_KEY_MAX]);

vs_err vs_raw_find(vs_store *store, const char *tenant, const char *sha256, char *key, size_t cap, vs_error *err);

#endif
