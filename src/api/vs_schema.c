/* vs_schema.c - checks a request body against its route's schema before the
 * route reads a single field, so a field the server would ignore (unknown,
 * wrongly typed, misspelt enum) is a 400 naming it instead of a request that
 * silently runs without it. Small tables, one pass over the JSON, no I/O. */
#include "vs_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PATH_CAP 160

/* Writes "path: <message>" into msg. Always returns -1. */
static int fail(char *msg, size_t cap, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *msg, size_t cap, const char *path, const char *fmt, ...) {
    if (!msg || !cap) return -1;
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(msg, cap, "%s%s%s", path, path[0] ? ": " : "", what);
    return -1;
}

const char *vs_schema_json_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static const char *type_name(vs_schema_type t) {
    switch (t) {
    case VS_SCHEMA_STRING: return "a string";
    case VS_SCHEMA_INTEGER: return "an integer";
    case VS_SCHEMA_NUMBER: return "a number";
    case VS_SCHEMA_BOOLEAN: return "a boolean";
    case VS_SCHEMA_OBJECT: return "an object";
    case VS_SCHEMA_ARRAY: return "an array";
    default: return "a value";
    }
}

/* 1 when v has type t (an integer is a number too). */
static int type_ok(vs_schema_type t, const json_t *v) {
    switch (t) {
    case VS_SCHEMA_STRING: return json_is_string(v);
    case VS_SCHEMA_INTEGER: return json_is_integer(v);
    case VS_SCHEMA_NUMBER: return json_is_number(v);
    case VS_SCHEMA_BOOLEAN: return json_is_boolean(v);
    case VS_SCHEMA_OBJECT: return json_is_object(v);
    case VS_SCHEMA_ARRAY: return json_is_array(v);
    default: return 1;
    }
}

/* Appends ".name" or "[i]" to a path (truncated, never overflowing). */
static void path_join(char *out, const char *base, const char *name, long idx) {
    if (name) snprintf(out, PATH_CAP, "%s%s%.64s", base, base[0] ? "." : "", name);
    else snprintf(out, PATH_CAP, "%s[%ld]", base, idx);
}

/* 1 when s is one of the NULL-terminated values. */
static int in_enum(const char *const *values, const char *s) {
    for (int i = 0; values[i]; i++)
        if (!strcmp(values[i], s)) return 1;
    return 0;
}

/* The enum values as text: "\"best\", \"all\"". */
static void enum_text(const char *const *values, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; values[i] && n < cap; i++) n += (size_t)snprintf(out + n, cap - n, "%s\"%s\"", i ? ", " : "", values[i]);
}

static int check_object(const vs_schema *s, const json_t *j, const char *path, char *msg, size_t cap);
static int check_value(vs_schema_type t, const vs_schema_field *f, const json_t *v, const char *path, char *msg,
                       size_t cap);

/* Range of a number: lo..hi. */
static int check_number(const vs_schema_field *f, const json_t *v, const char *path, char *msg, size_t cap) {
    double x = json_number_value(v);
    if (f->ranged && (x < f->lo || x > f->hi))
        return fail(msg, cap, path, "must be from %g to %g, got %g", f->lo, f->hi, x);
    return 0;
}

/* Length, enum and format of a string. */
static int check_string(const vs_schema_field *f, const json_t *v, const char *path, char *msg, size_t cap) {
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (f->enums && (strlen(s) != n || !in_enum(f->enums, s))) {
        char allowed[256];
        enum_text(f->enums, allowed, sizeof allowed);
        return fail(msg, cap, path, "expected one of %s, got \"%.64s\"", allowed, s);
    }
    if (f->ranged && ((double)n < f->lo || (double)n > f->hi)) {
        if (f->lo == f->hi) return fail(msg, cap, path, "must be %g bytes long, got %zu", f->lo, n);
        return fail(msg, cap, path, "must be %g to %g bytes long, got %zu", f->lo, f->hi, n);
    }
    if (strlen(s) != n) return fail(msg, cap, path, "must not contain a NUL character");
    return 0;
}

/* Count and items of an array. */
static int check_array(const vs_schema_field *f, const json_t *v, const char *path, char *msg, size_t cap) {
    size_t n = json_array_size(v);
    if (f->ranged && ((double)n < f->lo || (double)n > f->hi))
        return fail(msg, cap, path, "must hold %g to %g items, got %zu", f->lo, f->hi, n);
    if (f->items == VS_SCHEMA_ANY) return 0;
    /* an item's own range is not the array's: items carry only type and object */
    vs_schema_field item = {.name = f->name, .type = f->items, .object = f->object};
    for (size_t i = 0; i < n; i++) {
        char p[PATH_CAP];
        path_join(p, path, NULL, (long)i);
        if (check_value(f->items, &item, json_array_get(v, i), p, msg, cap) != 0) return -1;
    }
    return 0;
}

/* One value against type t of field f. */
static int check_value(vs_schema_type t, const vs_schema_field *f, const json_t *v, const char *path, char *msg,
                       size_t cap) {
    if (!type_ok(t, v)) return fail(msg, cap, path, "expected %s, got %s", type_name(t), vs_schema_json_type(v));
    switch (t) {
    case VS_SCHEMA_STRING: return check_string(f, v, path, msg, cap);
    case VS_SCHEMA_INTEGER:
    case VS_SCHEMA_NUMBER: return check_number(f, v, path, msg, cap);
    case VS_SCHEMA_ARRAY: return check_array(f, v, path, msg, cap);
    case VS_SCHEMA_OBJECT: return f->object ? check_object(f->object, v, path, msg, cap) : 0;
    default: return 0;
    }
}

/* The known fields as text, for the "unknown field" message. */
static void known_text(const vs_schema *s, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < s->n_fields && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", s->fields[i].name);
}

/* At most one of the exclusive fields given (null counts as not given). */
static int check_exclusive(const vs_schema *s, const json_t *j, const char *path, char *msg, size_t cap) {
    const char *first = NULL;
    for (int i = 0; s->exclusive && s->exclusive[i]; i++) {
        const json_t *v = json_object_get(j, s->exclusive[i]);
        if (!v || json_is_null(v)) continue;
        if (!first) {
            first = s->exclusive[i];
            continue;
        }
        char all[256] = "";
        for (int k = 0, n = 0; s->exclusive[k] && n < (int)sizeof all; k++)
            n += snprintf(all + n, sizeof all - (size_t)n, "%s%s", k ? ", " : "", s->exclusive[k]);
        return fail(msg, cap, path, "%s and %s both given: give exactly one of %s", first, s->exclusive[i], all);
    }
    return 0;
}

static int check_object(const vs_schema *s, const json_t *j, const char *path, char *msg, size_t cap) {
    if (!json_is_object(j)) return fail(msg, cap, path, "expected an object, got %s", vs_schema_json_type(j));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        char p[PATH_CAP];
        path_join(p, path, key, 0);
        const vs_schema_field *f = vs_schema_find(s, key);
        if (!f) {
            char known[512];
            known_text(s, known, sizeof known);
            return fail(msg, cap, p, "unknown field (%s takes %s)", path[0] ? path : s->name,
                        known[0] ? known : "no fields");
        }
        if (json_is_null(v) && f->nullable) continue;
        if (check_value(f->type, f, v, p, msg, cap) != 0) return -1;
    }
    for (int i = 0; i < s->n_fields; i++) {
        const json_t *v = json_object_get(j, s->fields[i].name);
        if (s->fields[i].required && (!v || json_is_null(v))) {
            char p[PATH_CAP];
            path_join(p, path, s->fields[i].name, 0);
            return fail(msg, cap, p, "required (%s)", type_name(s->fields[i].type));
        }
    }
    return check_exclusive(s, j, path, msg, cap);
}

int vs_schema_check(const vs_schema *s, const json_t *json, char *msg, size_t cap) {
    if (msg && cap) msg[0] = '\0';
    return check_object(s, json, "", msg, cap);
}

const vs_schema_field *vs_schema_find(const vs_schema *s, const char *name) {
    for (int i = 0; i < s->n_fields; i++)
        if (!strcmp(s->fields[i].name, name)) return &s->fields[i];
    return NULL;
}

/* ---- the routes' schemas (docs/openapi.yaml) ------------------------------ */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define STR(n, l, h) {.name = (n), .type = VS_SCHEMA_STRING, .ranged = 1, .lo = (l), .hi = (h)}
#define INT(n, l, h) {.name = (n), .type = VS_SCHEMA_INTEGER, .ranged = 1, .lo = (l), .hi = (h)}
#define NUM(n, l, h) {.name = (n), .type = VS_SCHEMA_NUMBER, .ranged = 1, .lo = (l), .hi = (h)}
#define BOOL(n) {.name = (n), .type = VS_SCHEMA_BOOLEAN}
/* lengths: the fixed buffers of vs_ingest_msg, vs_crawl_job, point ids */
#define IMAGE_B64 {.name = "image_b64", .type = VS_SCHEMA_STRING}
#define FACE_ID STR("face_id", 1, 63)
#define VECTOR {.name = "vector", .type = VS_SCHEMA_ARRAY, .ranged = 1, .lo = 1, .hi = 4096, .items = VS_SCHEMA_NUMBER}
#define FACE_INDEX INT("face_index", 0, 1000)

static const char *const raw_bucket[] = {"raw-images", NULL};
static const char *const faces_enum[] = {"best", "all", NULL};
static const char *const group_enum[] = {"image", NULL};

static const vs_schema_field ingest_item_f[] = {
    IMAGE_B64,
    STR("url", 1, 2047),
    /* only raw images: a face crop or thumbnail ingested again would come
     * back from search as an "image" of its own */
    {.name = "bucket", .type = VS_SCHEMA_STRING, .enums = raw_bucket},
    STR("key", 1, 511),
    STR("site", 0, 255),
    STR("source_url", 0, 2047),
    STR("page_url", 0, 2047),
    STR("external_image_id", 0, 255),
};
static const char *const ingest_sources[] = {"image_b64", "url", "bucket", NULL};
const vs_schema vs_schema_ingest_item = {"ingest item", ingest_item_f, N(ingest_item_f), ingest_sources};
const vs_schema vs_schema_ingest_form = {"multipart ingest", ingest_item_f + 4, 4, NULL};

static const vs_schema_field batch_f[] = {
    {.name = "items", .type = VS_SCHEMA_ARRAY, .required = 1, .ranged = 1, .lo = 1, .hi = 1000},
};
const vs_schema vs_schema_ingest_batch = {"ingest batch", batch_f, N(batch_f), NULL};

static const vs_schema_field filters_f[] = {
    STR("site", 0, 255),
    STR("image_sha256", 64, 64),
    NUM("min_quality", 0, 1),
};
static const vs_schema filters_s = {"filters", filters_f, N(filters_f), NULL};

static const vs_schema_field search_f[] = {
    INT("top_k", 1, 1000),
    NUM("threshold", -1, 1),
    {.name = "faces", .type = VS_SCHEMA_STRING, .enums = faces_enum},
    {.name = "filters", .type = VS_SCHEMA_OBJECT, .object = &filters_s},
    {.name = "group_by", .type = VS_SCHEMA_STRING, .enums = group_enum},
    BOOL("exact"),
    IMAGE_B64,
    VECTOR,
    FACE_ID,
};
static const char *const query_sources[] = {"image_b64", "vector", "face_id", NULL};
const vs_schema vs_schema_search = {"search", search_f, N(search_f), query_sources};
/* the form takes the options before "exact" (the image is its own part) */
const vs_schema vs_schema_search_form = {"multipart search", search_f, 5, NULL};

static const vs_schema_field erase_f[] = {
    IMAGE_B64,
    FACE_INDEX,
    FACE_ID,
    VECTOR,
    NUM("threshold", 0.3, 1),
    INT("max_images", 1, 100000),
    BOOL("dry_run"),
    BOOL("suppress"),
    BOOL("block"),
    STR("note", 0, 512),
};
const vs_schema vs_schema_erase = {"erase", erase_f, N(erase_f), query_sources};

static const vs_schema_field identity_f[] = {
    {.name = "name", .type = VS_SCHEMA_STRING, .required = 1, .ranged = 1, .lo = 1, .hi = 200},
};
const vs_schema vs_schema_identity_create = {"identity", identity_f, N(identity_f), NULL};

static const vs_schema_field enroll_f[] = {
    FACE_INDEX,
    IMAGE_B64,
    FACE_ID,
    {.name = "face_ids", .type = VS_SCHEMA_ARRAY, .ranged = 1, .lo = 1, .hi = 64, .items = VS_SCHEMA_STRING},
};
static const char *const enroll_sources[] = {"image_b64", "face_id", "face_ids", NULL};
const vs_schema vs_schema_enroll = {"enroll", enroll_f, N(enroll_f), enroll_sources};
const vs_schema vs_schema_enroll_form = {"multipart enroll", enroll_f, 1, NULL};

static const vs_schema_field probe_f[] = {IMAGE_B64, FACE_ID};
static const char *const probe_sources[] = {"image_b64", "face_id", NULL};
const vs_schema vs_schema_probe = {"verify/identify", probe_f, N(probe_f), probe_sources};
const vs_schema vs_schema_probe_form = {"multipart verify/identify", probe_f, 0, NULL};

static const vs_schema_field crawl_f[] = {
    {.name = "url", .type = VS_SCHEMA_STRING, .required = 1, .ranged = 1, .lo = 1, .hi = 2047},
    {.name = "depth", .type = VS_SCHEMA_INTEGER, .nullable = 1, .ranged = 1, .lo = 0, .hi = 10},
    {.name = "max_pages", .type = VS_SCHEMA_INTEGER, .nullable = 1, .ranged = 1, .lo = 1, .hi = 100000},
    {.name = "max_images", .type = VS_SCHEMA_INTEGER, .nullable = 1, .ranged = 1, .lo = 1, .hi = 1000000},
    {.name = "delay_s", .type = VS_SCHEMA_NUMBER, .nullable = 1, .ranged = 1, .lo = 0, .hi = 3600},
    {.name = "timeout_s", .type = VS_SCHEMA_NUMBER, .nullable = 1, .ranged = 1, .lo = 0.1, .hi = 600},
    {.name = "max_image_mb", .type = VS_SCHEMA_NUMBER, .nullable = 1, .ranged = 1, .lo = 1, .hi = 256},
    {.name = "allow_hosts", .type = VS_SCHEMA_STRING, .nullable = 1, .ranged = 1, .lo = 0, .hi = 511},
    {.name = "require_face", .type = VS_SCHEMA_BOOLEAN, .nullable = 1},
};
const vs_schema vs_schema_crawl = {"crawl", crawl_f, N(crawl_f), NULL};

static const vs_schema_field reindex_f[] = {
    STR("embedder", 1, 64),
    BOOL("drop_blocks"),
    INT("throttle_ms", 0, 10000),
};
const vs_schema vs_schema_reindex = {"reindex", reindex_f, N(reindex_f), NULL};

static const vs_schema_field person_name_f[] = {
    {.name = "name", .type = VS_SCHEMA_STRING, .required = 1, .ranged = 1, .lo = 1, .hi = 200},
};
const vs_schema vs_schema_person_name = {"person name", person_name_f, N(person_name_f), NULL};

static const vs_schema_field person_merge_f[] = {
    {.name = "person_id", .type = VS_SCHEMA_STRING, .required = 1, .ranged = 1, .lo = 1, .hi = 63},
};
const vs_schema vs_schema_person_merge = {"person merge", person_merge_f, N(person_merge_f), NULL};

static const vs_schema_field person_split_f[] = {
    {.name = "face_ids", .type = VS_SCHEMA_ARRAY, .required = 1, .ranged = 1, .lo = 1, .hi = 1000, .items = VS_SCHEMA_STRING},
};
const vs_schema vs_schema_person_split = {"person split", person_split_f, N(person_split_f), NULL};

static const vs_schema_field person_watch_f[] = {
    {.name = "watched", .type = VS_SCHEMA_BOOLEAN, .required = 1},
};
const vs_schema vs_schema_person_watch = {"person watch", person_watch_f, N(person_watch_f), NULL};

static const vs_schema_field person_ignore_f[] = {
    {.name = "ignored", .type = VS_SCHEMA_BOOLEAN, .required = 1},
};
const vs_schema vs_schema_person_ignore = {"person ignore", person_ignore_f, N(person_ignore_f), NULL};

static const vs_schema_field webhook_f[] = {
    {.name = "url", .type = VS_SCHEMA_STRING, .required = 1, .ranged = 1, .lo = 1, .hi = 2047},
};
const vs_schema vs_schema_webhook = {"webhook", webhook_f, N(webhook_f), NULL};

const vs_schema *const vs_schemas_all[] = {
    &vs_schema_ingest_item, &vs_schema_ingest_form, &vs_schema_ingest_batch, &vs_schema_search,
    &vs_schema_search_form, &vs_schema_erase,       &vs_schema_identity_create, &vs_schema_enroll,
    &vs_schema_enroll_form, &vs_schema_probe,       &vs_schema_probe_form,      &vs_schema_crawl,
    &vs_schema_reindex,     &vs_schema_person_name, &vs_schema_person_merge, &vs_schema_person_split,
    &vs_schema_person_watch, &vs_schema_person_ignore, &vs_schema_webhook, NULL,
};
