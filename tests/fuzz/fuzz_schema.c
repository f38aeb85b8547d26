/* fuzz_schema.c - libFuzzer target for the request schemas: the input is a
 * request body; it is parsed as JSON (as vs_req_json does) and checked
 * against every route's schema. Invariants: the message is empty exactly
 * when the body conforms, always NUL-terminated within its buffer, and a
 * conforming body still conforms after a dump and reload (what a proxy or
 * client library re-encoding it would send).
 * Sources: this file + src/api/vs_schema.c; include -Isrc/api; link jansson.
 * Run: tests/fuzz/run.sh schema [seconds] */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_schema.h"

/* One schema on one document, with the invariants above. */
static void check_one(const vs_schema *s, const json_t *j) {
    char msg[512];
    memset(msg, 'x', sizeof msg);
    int rc = vs_schema_check(s, j, msg, sizeof msg);
    if (!memchr(msg, '\0', sizeof msg)) abort();
    if ((rc == 0) != (msg[0] == '\0')) abort();
    if (vs_schema_check(s, j, NULL, 0) != rc) abort(); /* no message buffer: same verdict */
    if (rc != 0) return;
    char *text = json_dumps(j, JSON_COMPACT);
    json_t *again = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
    if (text && !again) abort();
    if (again && vs_schema_check(s, again, NULL, 0) != 0) abort();
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* NUL inside strings allowed here although the server refuses them:
     * the checker must be safe with them all the same */
    json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (!j) return 0;
    for (int i = 0; vs_schemas_all[i]; i++) check_one(vs_schemas_all[i], j);
    json_decref(j);
    return 0;
}
