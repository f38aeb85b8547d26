/* cli_common.c - helpers shared by the sub-commands. */
#include <limits.h>
#include <math.h>
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
void cli_error(const char *what, const vs_error *err) {
    char line[1024], shown[1200];
    snprintf(line, sizeof line, "visage: %s: %s", what, err && err->msg[0] ? err->msg : "failed");
    fprintf(stderr, "%s\n", vs_redact(line, shown, sizeof shown));
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
