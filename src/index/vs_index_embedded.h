/* vs_index_embedded.h - internal entry points of the embedded backend, for
 * vs_index.c (URL dispatch), tests and benchmarks. Applications use
 * vs_index.h only. */
#ifndef VS_INDEX_EMBEDDED_H
#define VS_INDEX_EMBEDDED_H

#include <stdint.h>

#include "vs_index.h"

/* Opens (creating if needed) {data_dir}/index/, takes an exclusive flock on
 * its LOCK file (a second process gets VS_ERR_IO) and loads every collection
 * found there: replay, torn-tail truncation, and compaction when due. */
vs_err vs_index_embedded_open(const char *data_dir, vs_index **out, vs_error *err);
/* The same with tuning (opts may be NULL: defaults). */
vs_err vs_index_embedded_open_with(const char *data_dir, const vs_index_opts *opts, vs_index **out, vs_error *err);

/* 1 when ix is an embedded index. */
int vs_index_is_embedded(const vs_index *ix);

/* Invariants of one collection (see vs_index_validate). */
vs_err vs_index_embedded_validate(vs_index *ix, const char *coll, vs_error *err);

/* What the approximate index of collection coll holds and did (see
 * vs_ann_stats in vs_ann.h); VS_ERR_NOT_FOUND without such a collection. */
vs_err vs_index_embedded_ann_stats(vs_index *ix, const char *coll, vs_ann_stats *st, vs_error *err);

/* Writes collection coll's graph snapshot now (it is otherwise written at
 * close and after enough changes). For tests, tools and benchmarks. */
vs_err vs_index_embedded_checkpoint(vs_index *ix, const char *coll, vs_error *err);

/* Compaction runs at open when the log exceeds this many bytes (default
 * 64 MiB) and more than half of it is dead records. Test hook; process-wide. */
void vs_index_embedded_set_compact_min(uint64_t bytes);

#endif
