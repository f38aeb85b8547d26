/* vs_schema.h - the request bodies the API accepts, one schema per route, and
 * a checker that refuses anything else: unknown fields, wrong types, enum
 * values it does not know, numbers and lengths out of range, two image
 * sources at once. The tables follow docs/openapi.yaml (keep both in step).
 *
 * Pure: no I/O, no allocation but jansson's, no server state, so the
 * checker can be fuzzed on its own (tests/fuzz/fuzz_schema.c). */
#ifndef VS_SCHEMA_H
#define VS_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

typedef enum vs_schema_type {
    VS_SCHEMA_ANY = 0,   /* any JSON value (checked by the route itself) */
    VS_SCHEMA_STRING,    /* lo..hi: length in bytes */
    VS_SCHEMA_INTEGER,   /* a JSON integer; lo..hi: value */
    VS_SCHEMA_NUMBER,    /* integer or real; lo..hi: value */
    VS_SCHEMA_BOOLEAN,
    VS_SCHEMA_OBJECT,    /* checked against `object` */
    VS_SCHEMA_ARRAY      /* lo..hi: item count; each item of type `items` (and `object`) */
} vs_schema_type;

struct vs_schema;

typedef struct vs_schema_field {
    const char *name;
    vs_schema_type type;
    int required;
    int nullable;                  /* JSON null accepted, meaning "not given" */
    int ranged;                    /* lo and hi apply */
    double lo, hi;
    const char *const *enums;      /* strings: the allowed values, NULL-terminated */
    vs_schema_type items;          /* arrays: the type of each item */
    const struct vs_schema *object; /* objects, or arrays of objects */
} vs_schema_field;

typedef struct vs_schema {
    const char *name;              /* what it describes, for messages */
    const vs_schema_field *fields;
    int n_fields;
    /* At most one of these may be given (the image sources of a request:
     * one silently winning over another is the bug this prevents). */
    const char *const *exclusive;
} vs_schema;

/* Checks that json is an object holding only the schema's fields, each of
 * the right type and within its range, the required ones present, and at
 * most one of the exclusive ones. 0 when it conforms; else -1 with msg
 * naming the field by its path ("filters.site: expected a string, got a
 * number"). msg may be NULL. */
int vs_schema_check(const vs_schema *s, const json_t *json, char *msg, size_t cap);

/* The field of s named name, or NULL. */
const vs_schema_field *vs_schema_find(const vs_schema *s, const char *name);

/* Name of a JSON value's type as messages use it ("a string", "null"). */
const char *vs_schema_json_type(const json_t *v);

/* The routes' schemas (docs/openapi.yaml). The *_form ones are the text
 * fields a multipart/form-data request may carry besides its "image" part. */
extern const vs_schema vs_schema_ingest_item;   /* POST /api/v1/ingest and each item of a batch */
extern const vs_schema vs_schema_ingest_form;
extern const vs_schema vs_schema_ingest_batch;  /* POST /api/v1/ingest/batch (items checked one by one) */
extern const vs_schema vs_schema_search;        /* POST /api/v1/search */
extern const vs_schema vs_schema_search_form;
extern const vs_schema vs_schema_erase;         /* POST /api/v1/erase */
extern const vs_schema vs_schema_identity_create;
extern const vs_schema vs_schema_enroll;        /* POST /api/v1/identities/{id}/enroll */
extern const vs_schema vs_schema_enroll_form;
extern const vs_schema vs_schema_probe;         /* verify and identify */
extern const vs_schema vs_schema_person_name, vs_schema_person_merge, vs_schema_person_split, vs_schema_person_watch,
    vs_schema_person_ignore;                       /* the people decisions */
extern const vs_schema vs_schema_probe_form;
extern const vs_schema vs_schema_crawl;         /* POST /api/v1/crawl */
extern const vs_schema vs_schema_reindex;       /* POST /api/v1/reindex */
extern const vs_schema vs_schema_webhook;       /* PUT /api/v1/webhook */

/* Every schema above, NULL-terminated (for the fuzzer and the tests). */
extern const vs_schema *const vs_schemas_all[];

#endif
