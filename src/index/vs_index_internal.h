/* vs_index_internal.h - checks both index backends apply the same way, so
 * a name valid for one is valid for the other. Private to src/index. */
#ifndef VS_INDEX_INTERNAL_H
#define VS_INDEX_INTERNAL_H

#include <stddef.h>

#define VS_INDEX_COLL_NAME_MAX 63

/* Collection names become directory names and URL path segments:
 * [A-Za-z0-9_-], 1..63. */
int vs_index_name_ok(const char *s);

/* 1..max bytes with no control characters (ids, tenants, model names). */
int vs_index_text_ok(const char *s, size_t max);

#endif
