/* vs_store_internal.h - what the store's own files share and nobody else
 * needs: the backend constructors that vs_store_open dispatches to. */
#ifndef VS_STORE_INTERNAL_H
#define VS_STORE_INTERNAL_H

#include "vs_store.h"

/* Opens the file:// backend rooted at dir (created with mode 0755 when
 * missing, then resolved to an absolute path so a later chdir is harmless).
 * The store is freed by vs_store_close. */
vs_err vs_store_fs_open(const char *dir, vs_store **out, vs_error *err);

#endif
