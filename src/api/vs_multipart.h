/* vs_multipart.h - multipart/form-data parsing (no I/O, no server state). */
#ifndef VS_MULTIPART_H
#define VS_MULTIPART_H

#include <stddef.h>

/* One part of a multipart/form-data body (pointers into the body). */
typedef struct vs_part {
    char name[64];
    char filename[256];
    const char *data;
    size_t len;
} vs_part;

/* Splits body by the boundary named in content_type; returns the number
 * of parts (<= cap), or -1 when it is not multipart or is malformed. */
int vs_multipart_parse(const char *content_type, const char *body, size_t body_len, vs_part *parts, int cap);

#endif
