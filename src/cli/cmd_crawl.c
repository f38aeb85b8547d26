/* cmd_crawl.c - `visage crawl URL`: crawls a site into the embedded store
 * and returns when its images are processed, printing the job as JSON; with
 * --server URL --key K it starts the job on a server and follows it there.
 *
 * A crawl from the command line is the operator's own: it may reach any
 * address (a site on the LAN, loopback). Crawls through the API obey the
 * URL-ingest address rules instead. Ctrl-C stops the crawl; the job stays
 * resumable and the next `visage serve` on the data dir finishes it. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vs_alloc.h"
#include "cli_system.h"
#include "vs_hash.h"
#include "vs_redact.h"

typedef struct crawl_args {
    const char *url, *data_dir, *models, *tenant, *server, *key;
    vs_crawl_job job;          /* options only */
} crawl_args;

/* Raised by SIGINT/SIGTERM; a signal handler can only reach a static. */
static atomic_int g_stop;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, 1);
}

static int usage(void) { return cli_usage("crawl"); }

/* Fills a from argv; 0, or the exit status after an error. */
static int parse_args(int argc, char **argv, crawl_args *a) {
    vs_crawl_job *j = &a->job;
    vs_crawl_job_limits l;
    vs_crawl_job_limits_default(&l);
    a->tenant = "default";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (!strcmp(o, "--require-face")) { j->require_face = 1; continue; }
        if (o[0] != '-') {
            if (a->url) return usage();
            a->url = o;
            continue;
        }
        if (!v) return usage();
        i++;
        if (!strcmp(o, "--data")) a->data_dir = v;
        else if (!strcmp(o, "--models")) a->models = v;
        else if (!strcmp(o, "--tenant")) a->tenant = v;
        else if (!strcmp(o, "--server")) a->server = v;
        else if (!strcmp(o, "--key")) a->key = v;
        else if (!strcmp(o, "--depth")) r = cli_num_arg("crawl", o, v, 0, 100, 0, &l.depth);
        else if (!strcmp(o, "--max-pages")) r = cli_num_arg("crawl", o, v, 1, 1e7, 0, &l.max_pages);
        else if (!strcmp(o, "--max-images")) r = cli_num_arg("crawl", o, v, 1, 1e8, 0, &l.max_images);
        else if (!strcmp(o, "--delay")) r = cli_num_arg("crawl", o, v, 0, 3600, 0, &l.delay_s);
        else if (!strcmp(o, "--timeout")) r = cli_num_arg("crawl", o, v, 0.1, 3600, 0, &l.timeout_s);
        else if (!strcmp(o, "--max-image-mb")) r = cli_num_arg("crawl", o, v, 1, 1024, 0, &l.max_image_mb);
        else if (!strcmp(o, "--allow-hosts")) snprintf(j->allow_hosts, sizeof j->allow_hosts, "%s", v);
        else if (!strcmp(o, "--user-agent")) snprintf(j->user_agent, sizeof j->user_agent, "%s", v);
        else return usage();
        if (r) return 2;
    }
    if (!a->url) return usage();
    if (!cli_tenant_ok(a->tenant)) return 2;
    char norm[VS_CRAWL_URL_MAX];
    if (vs_crawl_normalise(a->url, norm, sizeof norm) != 0) {
        char shown[512];
        fprintf(stderr, "visage: crawl: '%s' is not an absolute http or https URL\n",
                vs_url_redact(a->url, shown, sizeof shown));
        return 2;
    }
    snprintf(j->seed_url, sizeof j->seed_url, "%s", norm);
    snprintf(j->tenant, sizeof j->tenant, "%s", a->tenant);
    vs_crawl_job_set_limits(j, &l);
    return 0;
}

/* The live progress line (terminal only). */
typedef struct crawl_progress {
    cli_system *s;
    int tty;
    const vs_crawl_job *job;
} crawl_progress;

static void show_crawl(void *ctx, const vs_crawl_job *job) {
    crawl_progress *p = ctx;
    if (!p->tty) return;
    const vs_crawl_counts *k = &job->counts;
    fprintf(stderr, "\r\033[Kcrawl: %lld pages, %lld images saved, %lld duplicate, %lld skipped, %lld errors",
            (long long)k->pages_fetched, (long long)k->images_saved, (long long)k->images_duplicate,
            (long long)k->images_skipped, (long long)k->errors);
}

static void show_queue(void *ctx, const vs_queue_stats *qs) {
    crawl_progress *p = ctx;
    if (!p->tty) return;
    fprintf(stderr, "\r\033[Kcrawl done; processing images: %lld queued, %lld in progress", (long long)qs->ready,
            (long long)qs->in_flight);
}

/* Log lines of the crawl go to stderr, after clearing the progress line. */
static void crawl_log_line(void *ctx, const char *line) {
    crawl_progress *p = ctx;
    char shown[2048];
    fprintf(stderr, "%s%s\n", p->tty ? "\r\033[K" : "", vs_redact(line, shown, sizeof shown));
}

/* Runs the crawl in this process, then waits for its images. */
static int crawl_local(crawl_args *a) {
    cli_system s;
    cli_system_opts o = {.role = CLI_ROLE_LOCAL, .op = "crawl", .tenant = a->tenant, .data_dir = a->data_dir, .models = a->models, .workers = -1};
    const char *ni = getenv("VISAGE_CRAWL_NO_INGEST");
    if (ni && !strcmp(ni, "1")) o.workers = 0;
    else if (getenv("VISAGE_WORKERS")) o.workers = atoi(getenv("VISAGE_WORKERS"));
    if (cli_system_open(&o, &s) != 0) return 1;
    crawl_progress p = {&s, isatty(2), &a->job};
    s.app.crawl.log = crawl_log_line;
    s.app.crawl.progress = show_crawl;
    s.app.crawl.log_ctx = &p;
    vs_crawl_job *job = &a->job;
    job->operator_crawl = 1;
    vs_error err = {0};
    vs_err rc = vs_crawl_job_create(s.app.crawl.db, job, &err);
    if (rc == VS_OK) {
        job->state = VS_CRAWL_RUNNING;
        job->started_ms = vs_wall_ms();
        rc = vs_crawl_job_run(&s.app.crawl, job, &g_stop, &err);
    }
    if (rc == VS_ERR_CANCELLED) {
        fprintf(stderr, "%svisage: crawl %s stopped; `visage serve --data %s` resumes it\n", p.tty ? "\r\033[K" : "",
                job->id, s.data_dir);
        cli_system_close(&s);
        return 130;
    }
    if (rc != VS_OK) {
        cli_error("crawl", &err);
        cli_system_close(&s);
        return 1;
    }
    if (s.app.workers) cli_system_drain(&s, show_queue, &p);
    if (p.tty) fprintf(stderr, "\r\033[K");
    json_t *out = vs_crawl_job_json(&s.app.crawl, job);
    char *txt = out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(out);
    int status = job->state == VS_CRAWL_DONE ? 0 : 1;
    if (job->state != VS_CRAWL_DONE) fprintf(stderr, "visage: crawl failed: %s\n", job->error);
    cli_system_close(&s);
    return status;
}

/* Starts the job on a server, then polls it until it is done and its
 * images are processed. */
static int crawl_remote(crawl_args *a) {
    const vs_crawl_job *j = &a->job;
    json_t *req = json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:b}", "url", j->seed_url, "depth", j->max_depth,
                            "max_pages", j->max_pages, "max_images", j->max_images, "delay_s", j->delay_ms / 1000.0,
                            "timeout_s", j->timeout_ms / 1000.0, "max_image_mb", j->max_image_bytes / 1048576.0,
                            "require_face", j->require_face);
    if (req && j->allow_hosts[0]) json_object_set_new(req, "allow_hosts", json_string(j->allow_hosts));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char url[2048], *resp = NULL;
    long status = 0;
    snprintf(url, sizeof url, "%s/api/v1/crawl", a->server);
    int ok = body && cli_http("POST", url, a->key, "application/json", body, strlen(body), &resp, &status) == 0;
    free(body);
    json_t *jobj = ok ? json_loads(resp, 0, NULL) : NULL;
    vs_free(resp);
    const char *id = json_string_value(json_object_get(jobj, "id"));
    if (status != 202 || !id) {
        fprintf(stderr, "visage: crawl: server answered %ld: %s\n", status,
                jobj ? json_string_value(json_object_get(json_object_get(jobj, "error"), "message")) : "no response");
        json_decref(jobj);
        return 1;
    }
    snprintf(url, sizeof url, "%s/api/v1/crawl/%s", a->server, id);
    int tty = isatty(2), rc = 1;
    while (!atomic_load(&g_stop)) {
        sleep(1);
        char *r = NULL;
        if (cli_http("GET", url, a->key, NULL, NULL, 0, &r, &status) != 0 || status != 200) {
            vs_free(r);
            continue;
        }
        json_decref(jobj);
        jobj = json_loads(r, 0, NULL);
        vs_free(r);
        const char *st = json_string_value(json_object_get(jobj, "state"));
        json_int_t saved = json_integer_value(json_object_get(jobj, "images_saved")),
                   done = json_integer_value(json_object_get(jobj, "images_processed"));
        if (tty)
            fprintf(stderr, "\r\033[Kcrawl %s: %lld pages, %lld images saved, %lld processed", st ? st : "?",
                    (long long)json_integer_value(json_object_get(jobj, "pages_fetched")), (long long)saved,
                    (long long)done);
        if (st && !strcmp(st, "failed")) break;
        if (st && !strcmp(st, "done") && done >= saved) {
            rc = 0;
            break;
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    char *txt = jobj ? json_dumps(jobj, JSON_COMPACT) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
    json_decref(jobj);
    return rc;
}

int cmd_crawl(int argc, char **argv) {
    crawl_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) return rc;
    if (!a.server != !a.key) {
        fprintf(stderr, "visage: crawl: --server and --key go together\n");
        return cli_usage("crawl");
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return a.server ? crawl_remote(&a) : crawl_local(&a);
}
