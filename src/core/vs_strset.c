/* vs_strset.c - string set with linear probing; grows by doubling at half
 * full so probes stay short. */
#include "vs_strset.h"

#include <stdint.h>
#include <string.h>

#include "vs_alloc.h"

/* FNV-1a: cheap and good enough to spread URLs. */
static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t find_slot(char **slots, size_t n_slots, const char *s) {
    size_t mask = n_slots - 1, i = (size_t)str_hash(s) & mask;
    while (slots[i] && strcmp(slots[i], s) != 0) i = (i + 1) & mask;
    return i;
}

/* Doubles the table and re-inserts every string; 0 on allocation failure. */
static int grow(vs_strset *set) {
    size_t n_slots = set->n_slots ? set->n_slots * 2 : 64;
    char **slots = vs_calloc(n_slots, sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < set->n_slots; i++)
        if (set->slots[i]) slots[find_slot(slots, n_slots, set->slots[i])] = set->slots[i];
    vs_free(set->slots);
    set->slots = slots;
    set->n_slots = n_slots;
    return 1;
}

int vs_strset_add(vs_strset *set, const char *s) {
    if ((set->n + 1) * 2 > set->n_slots && !grow(set)) return -1;
    size_t i = find_slot(set->slots, set->n_slots, s);
    if (set->slots[i]) return 0;
    if (!(set->slots[i] = vs_strdup(s))) return -1;
    set->n++;
    return 1;
}

int vs_strset_has(const vs_strset *set, const char *s) {
    if (set->n_slots == 0) return 0;
    return set->slots[find_slot(set->slots, set->n_slots, s)] != NULL;
}

void vs_strset_free(vs_strset *set) {
    for (size_t i = 0; i < set->n_slots; i++) vs_free(set->slots[i]);
    vs_free(set->slots);
    memset(set, 0, sizeof *set);
}
