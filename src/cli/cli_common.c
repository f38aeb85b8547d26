/* cli_common.c - helpers shared by the sub-commands. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vs_phash.h"
#include "vs_redact.h"

static int has_models(const char *dir) {
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.json", dir, VS_DETECT_MODEL);
    return stat(p, &st) == 0;
}

const char *cli_models_dir(const char *flag, char *buf, size_t cap) {
    const char *env = getenv("VISAGE_MODELS");
    if (flag && *flag) snprintf(buf, cap, "%s", flag);
    else if (env && *env) snprintf(buf, cap, "%s", env);
    else if (has_models("models")) snprintf(buf, cap, "models");
    else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        snprintf(buf, cap, "models");
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                char cand[PATH_MAX + 16];
                snprintf(cand, sizeof cand, "%s/../models", exe);
                if (has_models(cand)) snprintf(buf, cap, "%s", cand);
            }
        }
    }
    return buf;
}

vs_engine *cli_engine_load(const char *models_flag, int thorough, int embedder) {
    char dir[PATH_MAX];
    vs_engine_cfg cfg;
    vs_engine_cfg_default(&cfg);
    cfg.models_dir = cli_models_dir(models_flag, dir, sizeof dir);
    const char *env = getenv("VISAGE_EMBEDDER");
    if (embedder < 0 && env && *env && (embedder = vs_embedder_find(env)) < 0) {
        fprintf(stderr, "visage: VISAGE_EMBEDDER=%s: not one of dlib, faceres\n", env);
        return NULL;
    }
    if (embedder >= 0) cfg.embedder = (vs_embedder)embedder;
    const char *passes = getenv("VISAGE_DETECT_PASSES");
    if (passes && atoi(passes) > 0) cfg.detect.max_passes = atoi(passes);
    if (thorough) cfg.detect.max_passes = 4096;
    const char *fitted = getenv("VISAGE_DETECT_FITTED");
    if (fitted && *fitted) cfg.detect.fb_fitted = atoi(fitted) != 0;
    vs_engine *e = NULL;
    vs_error err = {0};
    if (vs_engine_load(&cfg, &e, &err) != VS_OK) {
        cli_error("models", &err);
        return NULL;
    }
    return e;
}

static json_t *num(double v) { return json_real(round(v * 1e4) / 1e4); }

json_t *cli_face_json(const vs_face *f, int dim, int with_embedding) {
    json_t *o = json_object();
    json_object_set_new(o, "bbox", json_pack("[oooo]", num(f->det.x), num(f->det.y), num(f->det.w), num(f->det.h)));
    json_object_set_new(o, "det_score", num(f->det.score));
    json_t *lm = json_array();
    for (int i = 0; i < f->det.n_kp; i++) json_array_append_new(lm, json_pack("[oo]", num(f->det.kp[i][0]), num(f->det.kp[i][1])));
    json_object_set_new(o, "landmarks", lm);
    json_object_set_new(o, "quality", num(f->quality.score));
    json_object_set_new(o, "pose", json_pack("{s:o,s:o,s:o}", "yaw", num(f->quality.yaw_deg), "pitch",
                                             num(f->quality.pitch_deg), "roll", num(f->quality.roll_deg)));
    char hex[17];
    vs_phash_hex(f->phash, hex);
    json_object_set_new(o, "p_hash", json_string(hex));
    if (with_embedding && f->embedding) {
        json_t *e = json_array();
        for (int i = 0; i < dim; i++) json_array_append_new(e, json_real(f->embedding[i]));
        json_object_set_new(o, "embedding", e);
    }
    return o;
}

/* Through vs_redact: `what` may be a URL, and a message may have been
 * written without vs_fail. */
static void print_error(const char *what, const char *msg) {
    char line[1400], shown[1600];
    size_t n = strlen(what);
    int named = n && !strncmp(msg, what, n) && (msg[n] == ':' || msg[n] == ' ' || msg[n] == '\0');
    if (named || !*what) snprintf(line, sizeof line, "visage: %s", msg);
    else snprintf(line, sizeof line, "visage: %s: %s", what, msg);
    fprintf(stderr, "%s\n", vs_redact(line, shown, sizeof shown));
}

void cli_error(const char *what, const vs_error *err) {
    print_error(what ? what : "", err && err->msg[0] ? err->msg : "failed");
}

void cli_errorf(const char *what, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error(what ? what : "", msg);
}

int cli_data_dir_exists(const char *dir) {
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Only the commands that put data in make a data dir: a typo in --data for
 * a search must not leave an empty store behind and answer "no results". */
int cli_data_dir(const char *op, const char *flag, int create, char *buf, size_t cap) {
    const char *env = getenv("VISAGE_DATA");
    snprintf(buf, cap, "%s", flag && *flag ? flag : env && *env ? env : "./visage-data");
    struct stat st;
    if (cli_data_dir_exists(buf)) return 0;
    if (stat(buf, &st) == 0) {
        cli_errorf(op, "data dir %s is not a directory", buf);
        return -1;
    }
    if (!create) {
        cli_errorf(op, "no data dir at %s (create one with 'visage serve', 'visage ingest' or 'visage tenant create')",
                   buf);
        return -1;
    }
    if (cli_mkdir(buf) != 0) return -1;
    fprintf(stderr, "visage: created data dir %s\n", buf);
    return 0;
}

typedef struct tenant_names {
    const char *want;
    int found;
    char list[900];
} tenant_names;

/* vs_tenant_list callback: notes whether the wanted tenant is there and
 * collects the names for the message (a long list ends in "..."). */
static int note_tenant(void *ctx, const char *name, int64_t created_ms, int64_t n_keys) {
    (void)created_ms;
    (void)n_keys;
    tenant_names *t = ctx;
    if (!strcmp(name, t->want)) t->found = 1;
    if (!strcmp(name, "default")) return 0; /* added at the end */
    size_t used = strlen(t->list);
    if (used + strlen(name) + 8 < sizeof t->list) snprintf(t->list + used, sizeof t->list - used, "%s, ", name);
    else if (!strstr(t->list, "...")) snprintf(t->list + used, sizeof t->list - used, "..., ");
    return 0;
}

int cli_tenant_known(const char *op, vs_catalog *c, const char *tenant) {
    if (!strcmp(tenant, "default")) return 1;
    tenant_names t = {.want = tenant};
    vs_error err = {0};
    if (c && vs_tenant_list(c, note_tenant, &t, &err) != VS_OK) {
        cli_error(op, &err);
        return 0;
    }
    if (t.found) return 1;
    cli_errorf(op, "no tenant '%s' (tenants: %sdefault)", tenant, t.list);
    return 0;
}

int cli_worker_nice(void) {
    const char *env = getenv("VISAGE_WORKER_NICE");
    if (!env || !*env) return VS_WORKERS_NICE;
    long n = strtol(env, NULL, 10);
    return n < 0 ? 0 : n > 19 ? 19 : (int)n;
}

int cli_worker_count(void) {
    const char *env = getenv("VISAGE_WORKERS");
    long n = env ? strtol(env, NULL, 10) : 0;
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return (int)n;
}
