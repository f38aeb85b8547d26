/* fuzz_json_msg.c - libFuzzer target for the JSON messages that cross
 * process boundaries: the ingest queue message workers read from Redis or
 * SQLite (vs_ingest_msg_parse), a distributed worker's result message on
 * face:results (vs_result_msg_parse) and the collections setting
 * (vs_collections_parse). The same bytes go to all three. Properties: an
 * ingest message that parses re-encodes to one that parses to the same
 * fields; a result message that parses has exactly dim floats per point
 * and every payload is an object of the message's tenant.
 * Build and run: tests/fuzz/run.sh json_msg [seconds] */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_collections.h"
#include "vs_pipeline.h"
#include "vs_result_msg.h"

/* Parse, encode, parse again: the fields must come back unchanged. */
static void ingest_round_trip(const char *s) {
    vs_ingest_msg a, b;
    if (vs_ingest_msg_parse(s, &a, NULL) != VS_OK) return;
    char *j = vs_ingest_msg_json(&a);
    if (!j) return;
    if (vs_ingest_msg_parse(j, &b, NULL) != VS_OK || memcmp(&a, &b, sizeof a) != 0) abort();
    free(j);
}

/* A parsed result message keeps the promises of vs_result_msg.h. */
static void result_check(const char *s) {
    vs_result_msg m;
    if (vs_result_msg_parse(s, &m, NULL) == VS_OK) {
        if (!m.tenant || !m.sha || m.dim < 1 || m.n_points > VS_RESULT_POINTS_MAX) abort();
        volatile float sum = 0;
        for (size_t i = 0; i < m.n_points; i++) {
            for (int d = 0; d < m.dim; d++) sum += m.pts[i].vector[d]; /* ASan: exactly dim floats */
            json_t *pl = json_loads(m.pts[i].payload_json, 0, NULL);
            const char *t = json_string_value(json_object_get(pl, "tenant_id"));
            if (!m.pts[i].id || !t || strcmp(t, m.tenant) != 0) abort();
            json_decref(pl);
        }
        (void)sum;
    }
    vs_result_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    ingest_round_trip(s);
    result_check(s);
    vs_collections c;
    (void)vs_collections_parse(s, &c, NULL);
    free(s);
    return 0;
}
