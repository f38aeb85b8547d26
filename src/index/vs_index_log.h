/* vs_index_log.h - the embedded index's on-disk form: one append-only log per
 * collection ({data_dir}/index/{collection}/points.log). Knows bytes, files
 * and fsync; nothing of tenants policy, JSON or search.
 *
 * File layout (all integers little-endian):
 *   header  "VSIX" | u32 version (1) | u32 dim | u32 model_len | model bytes | u32 crc32c(header so far)
 *   frame   u32 body_len | u32 crc32c(body_len bytes + body) | body
 *   body    upsert: u8 type=1 | u8 id_len | u8 flags (1 quality, 2 site, 4 sha) | u8 tenant_len |
 *                   u16 site_len | u16 sha_len | u32 payload_len | f32 quality | f32 vector[dim] |
 *                   id | tenant | site | sha | payload
 *           delete: u8 type=2 | u8 id_len | u16 0 | id
 *           commit: u8 type=3 | 3 x u8 0 | u32 n_records | u64 group_start | "VSIXCMIT"
 * Every write call appends one group (its records, then a commit naming how
 * many records it closes and where the group began) and fdatasyncs before
 * returning, so a group is all or nothing: on open, records after the last
 * commit are a torn tail and are cut away; a bad record with a valid commit
 * after it is corruption (VS_ERR_CORRUPT naming file and offset), because that
 * commit was acknowledged as durable. (Damage confined to the very last
 * commit record cannot be told from a torn write and drops that group.)
 *
 * Not thread-safe: the caller serialises writers (the embedded index holds
 * its per-collection writer mutex around every call here). */
#ifndef VS_INDEX_LOG_H
#define VS_INDEX_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "vs_err.h"

#define VS_LOG_FILE "points.log"
#define VS_LOG_VERSION 1u
#define VS_LOG_MODEL_MAX 255
#define VS_LOG_DIM_MAX 65536
#define VS_LOG_PAYLOAD_MAX (1u << 20)   /* bytes of one point's payload JSON */

enum { VS_LOG_UPSERT = 1, VS_LOG_DELETE = 2, VS_LOG_COMMIT = 3 };

typedef struct vs_log vs_log;

/* One record. Strings are not NUL-terminated (lengths given); site/sha are
 * NULL when absent. While replaying, pointers are valid only during the
 * apply callback (vector is an aligned, host-endian copy). */
typedef struct vs_log_rec {
    int type;                       /* VS_LOG_UPSERT or VS_LOG_DELETE */
    const char *id;
    size_t id_len;
    const char *tenant, *site, *sha, *payload;
    size_t tenant_len, site_len, sha_len, payload_len;
    int has_quality;
    float quality;
    const float *vector;            /* dim floats (upsert only) */
} vs_log_rec;

/* Replay target. reset is called when records already applied must be
 * forgotten (the tail group turned out to be torn): start from empty. */
typedef struct vs_log_sink {
    vs_err (*apply)(void *ctx, const vs_log_rec *r, vs_error *err);
    vs_err (*reset)(void *ctx, vs_error *err);
    void *ctx;
} vs_log_sink;

/* A group being written; begin/add/commit, or abort. */
typedef struct vs_log_batch {
    unsigned char *buf;
    size_t len, cap;
    uint64_t start;                 /* file offset where the group begins */
    uint64_t flushed;               /* bytes of the group already written */
    uint32_t n;                     /* records so far */
    int touched;                    /* a write was attempted: abort cuts the file */
} vs_log_batch;

/* CRC-32C (Castagnoli). Start with crc = 0; feed the previous result to
 * continue. SSE4.2 instruction when compiled for it, else slicing-by-8. */
uint32_t vs_crc32c(uint32_t crc, const void *data, size_t n);

/* fsync of the directory holding path, so a create or rename in it
 * survives a crash (the log's and the graph snapshot's). 0 or an errno. */
int vs_fsync_parent(const char *path);

/* Creates a log holding only the header (written to path.tmp, fsynced and
 * renamed, so a crash never leaves a half header). Fails if path exists. */
vs_err vs_log_create(const char *path, int dim, const char *model, vs_error *err);

/* Opens an existing log for appending and checks its header: wrong magic ->
 * VS_ERR_CORRUPT, other version -> VS_ERR_UNSUPPORTED, bad dim/model/CRC ->
 * VS_ERR_CORRUPT, each naming the file. Call vs_log_replay next. */
vs_err vs_log_open(const char *path, vs_log **out, vs_error *err);
void vs_log_close(vs_log *lg);

int vs_log_dim(const vs_log *lg);
const char *vs_log_model(const vs_log *lg);
const char *vs_log_path(const vs_log *lg);
uint64_t vs_log_size(const vs_log *lg);        /* bytes of the valid log */
uint64_t vs_log_header_size(const vs_log *lg);
int vs_log_broken(const vs_log *lg);          /* a failed write could not be undone */

/* Feeds every committed record to sink in file order. Reads in 16 MiB
 * chunks; validates every length, limit and CRC. A torn tail is truncated
 * away (*truncated = bytes dropped; may be NULL). */
vs_err vs_log_replay(vs_log *lg, const vs_log_sink *sink, uint64_t *truncated, vs_error *err);

/* Bytes an upsert record of these sizes takes in the file (frame included). */
uint64_t vs_log_upsert_bytes(int dim, size_t id_len, size_t tenant_len, size_t site_len, size_t sha_len,
                             size_t payload_len);

/* Group writing. add encodes (and writes out every few MiB); commit appends
 * the commit record, writes, fdatasyncs and advances the log; on any failure
 * the file is cut back to where the group began (if that fails too the log is
 * marked broken and refuses further writes). abort drops an unfinished group;
 * rollback drops the last committed group (the caller could not apply it). */
void vs_log_begin(vs_log *lg, vs_log_batch *b);
vs_err vs_log_add(vs_log *lg, vs_log_batch *b, const vs_log_rec *r, vs_error *err);
vs_err vs_log_commit(vs_log *lg, vs_log_batch *b, vs_error *err);
void vs_log_abort(vs_log *lg, vs_log_batch *b);
vs_err vs_log_rollback(vs_log *lg, const vs_log_batch *b, vs_error *err);
void vs_log_batch_free(vs_log_batch *b);

/* Rewrites the log with only the records `each` emits (the live points), in
 * groups, to path.tmp, then fsync + rename over the log: a crash leaves the
 * old or the new file, both complete. */
typedef vs_err (*vs_log_emit_fn)(void *ectx, const vs_log_rec *r, vs_error *err);
vs_err vs_log_compact(vs_log *lg, vs_err (*each)(void *ctx, vs_log_emit_fn emit, void *ectx, vs_error *err),
                      void *ctx, vs_error *err);

#endif
