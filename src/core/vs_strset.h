/* vs_strset.h - a set of strings (open addressing, linear probing, owned
 * copies), for the dedup of URLs in the crawler. Not thread-safe. */
#ifndef VS_STRSET_H
#define VS_STRSET_H

#include <stddef.h>

typedef struct vs_strset {
    char **slots;      /* NULL = empty */
    size_t n_slots;    /* power of two, at least 2x n */
    size_t n;
} vs_strset;

/* Adds a copy of s: 1 when added, 0 when already present, -1 when memory ran
 * out (the set is unchanged). A zeroed struct is an empty set. */
int vs_strset_add(vs_strset *set, const char *s);

/* 1 when s is in the set. */
int vs_strset_has(const vs_strset *set, const char *s);

/* Frees every string and the table; the set is empty afterwards. */
void vs_strset_free(vs_strset *set);

#endif
