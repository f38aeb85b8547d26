/* vs_people_query.c - reading people.db for the routes (people by images
 * or sites, a person with its faces and sites, the person of search
 * results) and the decisions a person makes about them (name, merge,
 * split, watch, ignore), each in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_alloc.h"
#include "vs_people.h"
#include "vs_people_internal.h"

/* The columns of a person as the listing and get return them. */
#define PERSON_COLUMNS                                                                                                 \
    "SELECT p.person_id, p.name, p.identity_id, p.watched, p.ignored, p.created_at, count(f.face_id),"                 \
    " count(DISTINCT f.image_sha256), count(DISTINCT f.site), f.face_id, max(f.quality)"                               \
    " FROM people p JOIN faces f ON f.tenant_id = p.tenant_id AND f.person_id = p.person_id"

/* The row of a person statement as JSON (cover: the best-quality face,
 * SQLite's bare column of max()). */
static json_t *person_row(sqlite3_stmt *st) {
    const char *name = (const char *)sqlite3_column_text(st, 1), *iid = (const char *)sqlite3_column_text(st, 2);
    json_t *o =
        json_pack("{s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:s}", "person_id", (const char *)sqlite3_column_text(st, 0), "watched",
                  sqlite3_column_int(st, 3), "ignored", sqlite3_column_int(st, 4), "created_at",
                  (json_int_t)sqlite3_column_int64(st, 5), "faces", (json_int_t)sqlite3_column_int64(st, 6), "images",
                  (json_int_t)sqlite3_column_int64(st, 7), "sites", (json_int_t)sqlite3_column_int64(st, 8),
                  "cover_face_id", (const char *)sqlite3_column_text(st, 9));
    if (o && name) json_object_set_new(o, "name", json_string(name));
    if (o && iid) json_object_set_new(o, "identity_id", json_string(iid));
    return o;
}

vs_err vs_people_list(vs_people *pp, const char *tenant, vs_people_sort sort, int include_ignored, int offset,
                      int limit, json_t *arr, int *more, vs_error *err) {
    static const char *order[] = {" ORDER BY 8 DESC, 7 DESC, p.person_id", " ORDER BY 9 DESC, 8 DESC, p.person_id",
                                  " ORDER BY 7 DESC, 8 DESC, p.person_id"};
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%s WHERE p.tenant_id = ?1 AND (?2 OR p.ignored = 0) GROUP BY p.person_id%s LIMIT ?3 OFFSET ?4",
             PERSON_COLUMNS, order[sort]);
    sqlite3_stmt *st = NULL;
    *more = 0;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_prepare(&pp->sq, sql, "people list", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        sqlite3_bind_int(st, 2, include_ignored);
        sqlite3_bind_int(st, 3, limit + 1);
        sqlite3_bind_int(st, 4, offset);
        int s, n = 0;
        while ((s = sqlite3_step(st)) == SQLITE_ROW) {
            if (n++ == limit) {
                *more = 1;
                break;
            }
            json_array_append_new(arr, person_row(st));
        }
        if (s != SQLITE_ROW && s != SQLITE_DONE) rc = vs_sqlite_fail(&pp->sq, err, "people list");
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

/* The person's sites, most faces first, into arr (called with sq.mu held). */
static vs_err person_sites(vs_people *pp, const char *tenant, const char *person_id, json_t *arr, vs_error *err) {
    sqlite3_stmt *st = NULL;
    vs_err rc = vs_sqlite_prepare(
        &pp->sq,
        "SELECT site, count(*) FROM faces WHERE tenant_id = ?1 AND person_id = ?2 AND site IS NOT NULL"
        " GROUP BY site ORDER BY 2 DESC, site LIMIT 100",
        "people sites", &st, err);
    if (rc != VS_OK) return rc;
    vs_sqlite_bind_text(st, 1, tenant);
    vs_sqlite_bind_text(st, 2, person_id);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(arr, json_pack("{s:s,s:I}", "site", (const char *)sqlite3_column_text(st, 0), "faces",
                                             (json_int_t)sqlite3_column_int64(st, 1)));
    sqlite3_finalize(st);
    return VS_OK;
}

vs_err vs_people_get(vs_people *pp, const char *tenant, const char *person_id, json_t **out, vs_error *err) {
    char sql[768];
    snprintf(sql, sizeof sql, "%s WHERE p.tenant_id = ?1 AND p.person_id = ?2 GROUP BY p.person_id", PERSON_COLUMNS);
    sqlite3_stmt *st = NULL;
    *out = NULL;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_prepare(&pp->sq, sql, "people get", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, person_id);
        if (sqlite3_step(st) == SQLITE_ROW) *out = person_row(st);
        sqlite3_finalize(st);
        if (!*out) rc = vs_fail(err, VS_ERR_NOT_FOUND, "person %.64s not found", person_id);
    }
    json_t *sites = json_array();
    if (rc == VS_OK) rc = person_sites(pp, tenant, person_id, sites, err);
    pthread_mutex_unlock(&pp->sq.mu);
    if (rc == VS_OK) json_object_set(*out, "site_list", sites);
    json_decref(sites);
    if (rc != VS_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

vs_err vs_people_faces(vs_people *pp, const char *tenant, const char *person_id, int offset, int limit, json_t *arr,
                       int *more, vs_error *err) {
    sqlite3_stmt *st = NULL;
    *more = 0;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_prepare(
        &pp->sq,
        "SELECT face_id, image_sha256, site, manual, quality FROM faces WHERE tenant_id = ?1 AND person_id = ?2"
        " ORDER BY created_at DESC, face_id LIMIT ?3 OFFSET ?4",
        "people faces", &st, err);
    if (rc == VS_OK) {
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, person_id);
        sqlite3_bind_int(st, 3, limit + 1);
        sqlite3_bind_int(st, 4, offset);
        int n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (n++ == limit) {
                *more = 1;
                break;
            }
            const char *site = (const char *)sqlite3_column_text(st, 2);
            json_t *o = json_pack("{s:s,s:s,s:b,s:f}", "face_id", (const char *)sqlite3_column_text(st, 0),
                                  "image_sha256", (const char *)sqlite3_column_text(st, 1), "manual",
                                  sqlite3_column_int(st, 3), "quality_score", sqlite3_column_double(st, 4));
            if (o && site) json_object_set_new(o, "site", json_string(site));
            json_array_append_new(arr, o);
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

vs_err vs_people_of_faces(vs_people *pp, const char *tenant, const char *const *face_ids, int n,
                          char (*person_ids)[VS_UUID_STR], char (*names)[VS_PERSON_NAME_MAX], vs_error *err) {
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc =
        vs_sqlite_prepare(&pp->sq,
                          "SELECT f.person_id, p.name FROM faces f LEFT JOIN people p ON p.tenant_id = f.tenant_id"
                          " AND p.person_id = f.person_id WHERE f.tenant_id = ?1 AND f.face_id = ?2",
                          "people of face", &st, err);
    for (int i = 0; i < n && rc == VS_OK; i++) {
        person_ids[i][0] = '\0';
        if (names) names[i][0] = '\0';
        vs_sqlite_bind_text(st, 1, tenant);
        vs_sqlite_bind_text(st, 2, face_ids[i]);
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *pid = (const char *)sqlite3_column_text(st, 0),
                       *name = (const char *)sqlite3_column_text(st, 1);
            snprintf(person_ids[i], VS_UUID_STR, "%s", pid ? pid : "");
            if (names) snprintf(names[i], VS_PERSON_NAME_MAX, "%s", name ? name : "");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

/* NOT_FOUND unless person_id is one of the tenant's (sq.mu held). */
static vs_err must_exist(vs_people *pp, const char *tenant, const char *person_id, vs_error *err) {
    char v[8];
    int found = 0;
    vs_err rc = vs_people_text(pp, "SELECT 1 FROM people WHERE tenant_id = ?1 AND person_id = ?2", "people exists",
                               tenant, person_id, NULL, v, sizeof v, &found, err);
    if (rc == VS_OK && !found) rc = vs_fail(err, VS_ERR_NOT_FOUND, "person %.64s not found", person_id);
    return rc;
}

/* One statement on an existing person, in one locked step. */
static vs_err on_person(vs_people *pp, const char *tenant, const char *person_id, const char *sql, const char *op,
                        const char *v1, const char *v2, vs_error *err) {
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = must_exist(pp, tenant, person_id, err);
    if (rc == VS_OK) rc = vs_people_exec(pp, sql, op, tenant, person_id, v1, v2, err);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

vs_err vs_people_name(vs_people *pp, const char *tenant, const char *person_id, const char *name,
                      const char *identity_id, vs_error *err) {
    if (!name || !*name || strlen(name) > 200) return vs_fail(err, VS_ERR_INVALID_ARG, "name: 1 to 200 characters");
    return on_person(
        pp, tenant, person_id,
        "UPDATE people SET name = ?3, identity_id = COALESCE(?4, identity_id) WHERE tenant_id = ?1 AND person_id = ?2",
        "people name", name, identity_id, err);
}

vs_err vs_people_set_flag(vs_people *pp, const char *tenant, const char *person_id, const char *flag, int on,
                          vs_error *err) {
    const char *sql = !strcmp(flag, "watched")
                          ? "UPDATE people SET watched = CAST(?3 AS INTEGER) WHERE tenant_id = ?1 AND person_id = ?2"
                      : !strcmp(flag, "ignored")
                          ? "UPDATE people SET ignored = CAST(?3 AS INTEGER) WHERE tenant_id = ?1 AND person_id = ?2"
                          : NULL;
    if (!sql) return vs_fail(err, VS_ERR_INVALID_ARG, "people: no flag %s", flag);
    return on_person(pp, tenant, person_id, sql, "people flag", on ? "1" : "0", NULL, err);
}

vs_err vs_people_merge(vs_people *pp, const char *tenant, const char *into, const char *from, vs_error *err) {
    if (!strcmp(into, from)) return vs_fail(err, VS_ERR_INVALID_ARG, "merge: a person cannot be merged into itself");
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_exec(&pp->sq, "BEGIN IMMEDIATE", "people begin", err);
    if (rc == VS_OK) rc = must_exist(pp, tenant, into, err);
    if (rc == VS_OK) rc = must_exist(pp, tenant, from, err);
    /* what `into` lacks comes from `from`; a watch on either holds */
    if (rc == VS_OK)
        rc = vs_people_exec(
            pp,
            "UPDATE people SET name = COALESCE(name, (SELECT name FROM people WHERE tenant_id = ?1 AND person_id = "
            "?3)),"
            " identity_id = COALESCE(identity_id, (SELECT identity_id FROM people WHERE tenant_id = ?1 AND person_id = "
            "?3)),"
            " watched = max(watched, (SELECT watched FROM people WHERE tenant_id = ?1 AND person_id = ?3))"
            " WHERE tenant_id = ?1 AND person_id = ?2",
            "people merge", tenant, into, from, NULL, err);
    if (rc == VS_OK)
        rc = vs_people_exec(pp, "UPDATE faces SET person_id = ?2, manual = 1 WHERE tenant_id = ?1 AND person_id = ?3",
                            "people merge faces", tenant, into, from, NULL, err);
    if (rc == VS_OK)
        rc = vs_people_exec(pp, "DELETE FROM people WHERE tenant_id = ?1 AND person_id = ?2", "people merge drop",
                            tenant, from, NULL, NULL, err);
    if (rc == VS_OK)
        rc = vs_sqlite_exec(&pp->sq, "COMMIT", "people commit", err);
    else
        vs_sqlite_rollback(&pp->sq);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

vs_err vs_people_split(vs_people *pp, const char *tenant, const char *person_id, const char *const *face_ids, int n,
                       char new_id[VS_UUID_STR], vs_error *err) {
    if (n < 1) return vs_fail(err, VS_ERR_INVALID_ARG, "split: name at least one face");
    vs_uuid_random("person", tenant, new_id);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)vs_wall_ms());
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = vs_sqlite_exec(&pp->sq, "BEGIN IMMEDIATE", "people begin", err);
    if (rc == VS_OK) rc = must_exist(pp, tenant, person_id, err);
    for (int i = 0; rc == VS_OK && i < n; i++) {
        char owner[VS_UUID_STR];
        rc = vs_people_text(pp, "SELECT person_id FROM faces WHERE tenant_id = ?1 AND face_id = ?2", "people split",
                            tenant, face_ids[i], NULL, owner, sizeof owner, NULL, err);
        if (rc == VS_OK && strcmp(owner, person_id) != 0)
            rc = vs_fail(err, VS_ERR_INVALID_ARG, "split: face %.64s is not one of person %.64s", face_ids[i],
                         person_id);
    }
    if (rc == VS_OK)
        rc = vs_people_exec(pp,
                            "INSERT INTO people(tenant_id, person_id, created_at) VALUES (?1, ?2, CAST(?3 AS INTEGER))",
                            "people split new", tenant, new_id, now, NULL, err);
    for (int i = 0; rc == VS_OK && i < n; i++)
        rc = vs_people_exec(pp, "UPDATE faces SET person_id = ?3, manual = 1 WHERE tenant_id = ?1 AND face_id = ?2",
                            "people split move", tenant, face_ids[i], new_id, NULL, err);
    if (rc == VS_OK) rc = vs_people_drop_empty(pp, tenant, err);
    if (rc == VS_OK)
        rc = vs_sqlite_exec(&pp->sq, "COMMIT", "people commit", err);
    else
        vs_sqlite_rollback(&pp->sq);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}

vs_err vs_people_forget(vs_people *pp, const char *tenant, const char *image_sha256, const char *face_id,
                        vs_error *err) {
    pthread_mutex_lock(&pp->sq.mu);
    vs_err rc = face_id ? vs_people_exec(pp, "DELETE FROM faces WHERE tenant_id = ?1 AND face_id = ?2",
                                         "people forget face", tenant, face_id, NULL, NULL, err)
                        : vs_people_exec(pp, "DELETE FROM faces WHERE tenant_id = ?1 AND image_sha256 = ?2",
                                         "people forget image", tenant, image_sha256, NULL, NULL, err);
    if (rc == VS_OK) rc = vs_people_drop_empty(pp, tenant, err);
    pthread_mutex_unlock(&pp->sq.mu);
    return rc;
}
