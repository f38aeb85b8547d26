/* vs_queue_internal.h - what the queue's own files share: the backend
 * constructors that vs_queue_open dispatches to. */
#ifndef VS_QUEUE_INTERNAL_H
#define VS_QUEUE_INTERNAL_H

#include "vs_queue.h"

/* Opens (creating when missing) {opts->data_dir}/queue.db. opts must be
 * complete: defaults are filled in by vs_queue_open. Freed by ops->close. */
vs_err vs_queue_sqlite_open(const vs_queue_opts *opts, vs_queue **out, vs_error *err);

#endif
