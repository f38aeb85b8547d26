/* vs_fetch.c - one HTTP(S) GET on the libcurl easy interface, for URL ingest
 * and the crawler, with the URL treated as hostile (SSRF): one GET per
 * transfer, bodies up to tens of MiB held in memory, connections closed
 * after each transfer unless the caller reuses them (the crawler, per host).
 *
 * The address policy runs in CURLOPT_OPENSOCKETFUNCTION, i.e. on the address
 * curl is about to connect to, after DNS resolution, for every address tried,
 * every redirect hop and every retry. Checking the resolved address rather
 * than the host name is what covers DNS rebinding: whatever a name resolves to
 * at connect time is what gets checked. Proxies from the environment are
 * disabled so the connected address is always the origin's. */
#include "vs_fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "vs_alloc.h"
#include "vs_buf.h"

#define FETCH_DEFAULT_MAX_BYTES (32u << 20)
#define FETCH_DEFAULT_TIMEOUT_MS 15000
#define FETCH_DEFAULT_MAX_REDIRECTS 5
#define FETCH_CONNECT_TIMEOUT_MS 5000

/* An address: family AF_INET (4 bytes used) or AF_INET6 (16). */
typedef struct ip_addr {
    int family;
    uint8_t b[16];
} ip_addr;

/* A range: the first `bits` bits of b, in family. */
typedef struct ip_range {
    int family;
    uint8_t b[16];
    int bits;
} ip_range;

/* A blocked range and the reason given in the error message. */
typedef struct blocked_range {
    const char *net;
    int bits;
    const char *why;
} blocked_range;

/* IPv4 ranges refused by default. Broadcast comes before 240/4 so that it is
 * named as such. */
static const blocked_range k_block_v4[] = {
    {"0.0.0.0", 8, "this network"},
    {"10.0.0.0", 8, "private"},
    {"100.64.0.0", 10, "carrier-grade NAT"},
    {"127.0.0.0", 8, "loopback"},
    {"169.254.0.0", 16, "link-local, incl. cloud metadata"},
    {"172.16.0.0", 12, "private"},
    {"192.0.0.0", 24, "IETF protocol assignments"},
    {"192.168.0.0", 16, "private"},
    {"198.18.0.0", 15, "benchmarking"},
    {"224.0.0.0", 4, "multicast"},
    {"255.255.255.255", 32, "broadcast"},
    {"240.0.0.0", 4, "reserved"},
};

/* IPv6 ranges refused by default (the v4-mapped and NAT64 forms are judged
 * by the embedded IPv4 address instead). ::/96 (IPv4-compatible) and
 * fec0::/10 (site-local) are deprecated forms with no legitimate public use. */
static const blocked_range k_block_v6[] = {
    {"::", 128, "unspecified"},
    {"::1", 128, "loopback"},
    {"::", 96, "IPv4-compatible, deprecated"},
    {"fc00::", 7, "unique local"},
    {"fe80::", 10, "link-local"},
    {"fec0::", 10, "site-local, deprecated"},
    {"ff00::", 8, "multicast"},
};

/* State of one transfer, shared with the curl callbacks. */
typedef struct fetch_ctx {
    vs_buf body;                      /* limit = the byte limit of the transfer (never 0) */
    vs_err body_rc;                   /* why on_data stopped the transfer: TOO_LARGE, NOMEM */
    const ip_range *allow;
    size_t n_allow;
    int allow_all;
    int refused;                      /* an address was refused */
    char refused_addr[INET6_ADDRSTRLEN];
    char refused_why[96];
    const char *(*check_head)(void *, const uint8_t *, size_t);
    void *check_ctx;
    size_t check_bytes;
    int checked;                      /* check_head has run (or was skipped) */
    int truncate, truncated;          /* keep the first max bytes instead of failing */
    CURL *h;                          /* the easy handle, for the response code */
    const char *rejected;             /* its reason, when it refused */
} fetch_ctx;

/* One prepared transfer: the easy handle, the state its callbacks share, and
 * the options (defaults filled in) for the error messages. */
struct vs_fetch_xfer {
    CURL *h;
    fetch_ctx c;
    ip_range *allow;
    vs_fetch_opts o;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe: run it exactly once, on first use. */
static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* 1 when the first `bits` bits of a and net agree. */
static int prefix_match(const uint8_t *a, const uint8_t *net, int bits) {
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0) return 0;
    if (rest == 0) return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

/* Parses a textual address (IPv6 may be bracketed); 0 when it is not one. */
static int parse_ip(const char *s, ip_addr *out) {
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->b) == 1) {
        out->family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, buf, out->b) == 1) {
        out->family = AF_INET6;
        return 1;
    }
    return 0;
}

/* Parses one "addr[/bits]" entry (surrounding blanks allowed); 0 if bad. */
static int parse_range(const char *s, size_t n, ip_range *out) {
    while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    char buf[80];
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    if (slash) *slash = '\0';
    ip_addr a;
    if (!parse_ip(buf, &a)) return 0;
    int max = a.family == AF_INET ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3) return 0;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') return 0;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max) return 0;
    }
    out->family = a.family;
    memcpy(out->b, a.b, sizeof a.b);
    out->bits = bits;
    return 1;
}

/* Parses a comma-separated list of ranges into a new array (vs_free).
 * Empty entries are skipped. Returns 0, or -1 with the bad entry copied to
 * bad (an allocation failure leaves bad empty). */
static int parse_ranges(const char *list, ip_range **out, size_t *n_out, char *bad, size_t bad_len) {
    *out = NULL;
    *n_out = 0;
    bad[0] = '\0';
    if (!list || !*list) return 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    ip_range *r = vs_calloc(cap, sizeof *r);
    if (!r) return -1;
    size_t n = 0;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t blank = strspn(p, " \t");
        if (blank < len && !parse_range(p, len, &r[n++])) {
            snprintf(bad, bad_len, "%.*s", (int)(len > 64 ? 64 : len), p);
            vs_free(r);
            return -1;
        }
        if (!end) break;
        p = end + 1;
    }
    *out = r;
    *n_out = n;
    return 0;
}

/* 1 when addr (family AF_INET or AF_INET6, bytes b) lies in an allowed range. */
static int in_allow_list(int family, const uint8_t *b, const ip_range *allow, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (allow[i].family == family && prefix_match(b, allow[i].b, allow[i].bits)) return 1;
    return 0;
}

/* The reason an address lies in one of the blocked ranges, or NULL. */
static const char *blocked_reason(int family, const uint8_t *b) {
    const blocked_range *t = family == AF_INET ? k_block_v4 : k_block_v6;
    size_t n = family == AF_INET ? sizeof k_block_v4 / sizeof *t : sizeof k_block_v6 / sizeof *t;
    for (size_t i = 0; i < n; i++) {
        uint8_t net[16];
        inet_pton(family, t[i].net, net);
        if (prefix_match(b, net, t[i].bits)) return t[i].why;
    }
    return NULL;
}

/* The address policy. Returns 1 when ip may be connected to; otherwise 0
 * with the reason in why. IPv4-mapped (::ffff:0:0/96) and NAT64
 * (64:ff9b::/96) addresses reach an IPv4 host, so the IPv4 rules (and IPv4
 * allow entries) apply to the embedded address. */
static int policy_allows(const ip_addr *ip, const ip_range *allow, size_t n_allow, int allow_all, char *why,
                         size_t why_len) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (allow_all || in_allow_list(ip->family, ip->b, allow, n_allow)) return 1;
    const char *r;
    if (ip->family == AF_INET6 && (!memcmp(ip->b, mapped, 12) || !memcmp(ip->b, nat64, 12))) {
        const char *form = ip->b[1] == 0x64 ? "NAT64" : "IPv4-mapped";
        if (in_allow_list(AF_INET, ip->b + 12, allow, n_allow)) return 1;
        if (!(r = blocked_reason(AF_INET, ip->b + 12))) return 1;
        snprintf(why, why_len, "%s %s", form, r);
        return 0;
    }
    if (!(r = blocked_reason(ip->family, ip->b))) return 1;
    snprintf(why, why_len, "%s", r);
    return 0;
}

/* The address policy on a textual address, for callers and tests; the same
 * rules that on_open_socket applies to live connections. */
int vs_fetch_addr_allowed(const char *addr, const vs_fetch_opts *opts) {
    ip_addr ip;
    if (!addr || !parse_ip(addr, &ip)) return 0;
    if (opts && opts->allow_all) return 1;
    ip_range *allow = NULL;
    size_t n = 0;
    char bad[80], why[96];
    /* A malformed list allows nothing (vs_fetch_url rejects it outright). */
    if (opts && parse_ranges(opts->allow_cidrs, &allow, &n, bad, sizeof bad) != 0) n = 0;
    int ok = policy_allows(&ip, allow, n, 0, why, sizeof why);
    vs_free(allow);
    return ok;
}

/* Opens the socket for each connection curl makes, after checking the
 * address it is about to connect to; refusing returns CURL_SOCKET_BAD and
 * remembers the address for the error message. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *sa) {
    (void)purpose;
    fetch_ctx *c = ud;
    ip_addr ip = {0};
    char why[96] = "not an IP address";
    int ok = 0;
    if (sa->family == AF_INET && sa->addrlen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, &sa->addr, sizeof in);
        ip.family = AF_INET;
        memcpy(ip.b, &in.sin_addr, 4);
        ok = 1;
    } else if (sa->family == AF_INET6 && sa->addrlen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, &sa->addr, sizeof in6);
        ip.family = AF_INET6;
        memcpy(ip.b, &in6.sin6_addr, 16);
        ok = 1;
    }
    if (ok) ok = policy_allows(&ip, c->allow, c->n_allow, c->allow_all, why, sizeof why);
    if (!ok) {
        if (!c->refused) {
            c->refused = 1;
            if (!ip.family || !inet_ntop(ip.family, ip.b, c->refused_addr, sizeof c->refused_addr))
                snprintf(c->refused_addr, sizeof c->refused_addr, "family %d", sa->family);
            snprintf(c->refused_why, sizeof c->refused_why, "%s", why);
        }
        return CURL_SOCKET_BAD;
    }
    return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* Appends received bytes; past the limit the transfer is aborted (returning
 * 0), or, when truncating, what fits is kept and the transfer stopped. */
static size_t on_data(char *p, size_t size, size_t nmemb, void *ud) {
    fetch_ctx *c = ud;
    size_t n = size * nmemb, got = n;
    if (c->truncate && n > c->body.limit - c->body.len) {
        n = c->body.limit - c->body.len; /* keep the first max bytes, then stop */
        c->truncated = 1;
    }
    if ((c->body_rc = vs_buf_append(&c->body, p, n)) != VS_OK) return 0; /* past the limit, or out of memory */
    if (c->truncated) return 0;
    if (c->check_head && !c->checked && c->body.len >= c->check_bytes) {
        /* only a 2xx body is what the caller asked for; a 3xx or error page
         * is judged by its status in vs_fetch_xfer_finish */
        long status = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            c->checked = 1;
            if ((c->rejected = c->check_head(c->check_ctx, c->body.data, c->body.len))) return 0;
        }
    }
    return got;
}

/* Checks that url parses and is http or https with a host: anything else is
 * the caller's mistake (or an attacker's file://), never a network error. */
static vs_err check_url(const char *url, vs_error *err) {
    if (!url || !*url) return vs_fail(err, VS_ERR_INVALID_ARG, "fetch: empty URL");
    CURLU *u = curl_url();
    if (!u) return vs_fail(err, VS_ERR_NOMEM, "fetch: out of memory");
    char *scheme = NULL, *host = NULL;
    vs_err rc = VS_OK;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "fetch: bad URL '%.200s': %s", url, curl_url_strerror(uc));
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "fetch: only http and https URLs are fetched, not '%.40s' (%.200s)",
                     scheme ? scheme : "?", url);
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "fetch: URL has no host: %.200s", url);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* Sets every option of the transfer; 0 when libcurl accepted all of them
 * (a refused protocol or proxy option must not silently weaken the policy). */
static int setup_handle(CURL *h, const char *url, const vs_fetch_opts *o, fetch_ctx *c, char *errbuf) {
    int timeout = o->timeout_ms;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, c) != CURLE_OK;
    if (!o->truncate) bad |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->body.limit) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, o->no_follow ? 0L : 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, o->reuse_connections ? 0L : 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)o->max_redirects) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                            (long)(timeout < FETCH_CONNECT_TIMEOUT_MS ? timeout : FETCH_CONNECT_TIMEOUT_MS)) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, o->user_agent) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    return !bad;
}

/* Turns a failed transfer into the error of the contract, most specific
 * cause first: a refused address, the size limit, then curl's own code. */
static vs_err transfer_error(CURL *h, CURLcode res, const char *url, const vs_fetch_opts *o, const fetch_ctx *c,
                             const char *errbuf, vs_error *err) {
    if (c->refused && res == CURLE_COULDNT_CONNECT) {
        char *eff = NULL;
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
        if (eff && strcmp(eff, url) != 0)
            return vs_fail(err, VS_ERR_UNSUPPORTED, "address not allowed: %s (%s) for %.120s, redirected from %.120s",
                           c->refused_addr, c->refused_why, eff, url);
        return vs_fail(err, VS_ERR_UNSUPPORTED, "address not allowed: %s (%s) for %.200s", c->refused_addr,
                       c->refused_why, url);
    }
    if (c->rejected)
        return vs_fail(err, VS_ERR_UNSUPPORTED, "%s at %.200s", c->rejected, url);
    if (c->body_rc == VS_ERR_TOO_LARGE || res == CURLE_FILESIZE_EXCEEDED)
        return vs_fail(err, VS_ERR_TOO_LARGE, "response larger than %zu bytes from %.200s", c->body.limit, url);
    if (c->body_rc == VS_ERR_NOMEM || res == CURLE_OUT_OF_MEMORY) return vs_fail(err, VS_ERR_NOMEM, "fetch %.200s: out of memory", url);
    if (res == CURLE_OPERATION_TIMEDOUT)
        return vs_fail(err, VS_ERR_IO, "timeout after %d ms fetching %.200s (%s)", o->timeout_ms, url, errbuf);
    if (res == CURLE_TOO_MANY_REDIRECTS)
        return vs_fail(err, VS_ERR_IO, "too many redirects (more than %d) fetching %.200s", o->max_redirects, url);
    if (res == CURLE_UNSUPPORTED_PROTOCOL)
        return vs_fail(err, VS_ERR_UNSUPPORTED, "redirect to a non-http(s) URL refused fetching %.200s", url);
    return vs_fail(err, VS_ERR_IO, "fetch %.200s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(res));
}

vs_err vs_fetch_check_cidrs(const char *list, vs_error *err) {
    ip_range *r = NULL;
    size_t n = 0;
    char bad[80];
    if (parse_ranges(list, &r, &n, bad, sizeof bad) != 0)
        return bad[0] ? vs_fail(err, VS_ERR_INVALID_ARG, "allow_cidrs: bad CIDR '%s'", bad)
                      : vs_fail(err, VS_ERR_NOMEM, "fetch: out of memory");
    vs_free(r);
    return VS_OK;
}

vs_err vs_fetch_global_init(vs_error *err) {
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return vs_fail(err, VS_ERR_BACKEND, "fetch: curl_global_init: %s", curl_easy_strerror(g_curl_init_rc));
    return VS_OK;
}

/* Prepares one transfer of url under the policy and limits of opts
 * (defaults for zero fields); nothing is sent until curl runs it. */
vs_err vs_fetch_xfer_new(const char *url, const vs_fetch_opts *opts, vs_fetch_xfer **out, vs_error *err) {
    *out = NULL;
    vs_fetch_opts o = opts ? *opts : (vs_fetch_opts){0};
    if (o.max_bytes == 0) o.max_bytes = FETCH_DEFAULT_MAX_BYTES;
    if (o.max_bytes > SIZE_MAX / 2) o.max_bytes = SIZE_MAX / 2;
    if (o.timeout_ms <= 0) o.timeout_ms = FETCH_DEFAULT_TIMEOUT_MS;
    if (o.max_redirects == 0) o.max_redirects = FETCH_DEFAULT_MAX_REDIRECTS;
    if (o.max_redirects < 0) o.max_redirects = 0; /* negative: follow none */
    if (!o.user_agent) o.user_agent = "visage/0.1";
    if (o.check_bytes == 0) o.check_bytes = 16;

    vs_err rc = vs_fetch_global_init(err);
    if (rc != VS_OK) return rc;
    rc = check_url(url, err);
    if (rc != VS_OK) return rc;

    vs_fetch_xfer *x = vs_calloc(1, sizeof *x);
    if (!x || !(x->url = vs_strdup(url))) {
        vs_free(x);
        return vs_fail(err, VS_ERR_NOMEM, "fetch: out of memory");
    }
    x->o = o;
    x->c = (fetch_ctx){.body.limit = o.max_bytes, .allow_all = o.allow_all, .check_head = o.check_head,
                       .check_ctx = o.check_ctx, .check_bytes = o.check_bytes, .truncate = o.truncate};
    char bad[80];
    if (parse_ranges(o.allow_cidrs, &x->allow, &x->c.n_allow, bad, sizeof bad) != 0) {
        rc = bad[0] ? vs_fail(err, VS_ERR_INVALID_ARG, "fetch: allow_cidrs: bad CIDR '%s'", bad)
                    : vs_fail(err, VS_ERR_NOMEM, "fetch: out of memory");
        vs_fetch_xfer_free(x);
        return rc;
    }
    x->c.allow = x->allow;
    if (!(x->h = x->c.h = curl_easy_init())) {
        vs_fetch_xfer_free(x);
        return vs_fail(err, VS_ERR_BACKEND, "fetch %.200s: curl_easy_init failed", url);
    }
    if (!setup_handle(x->h, url, &x->o, &x->c, x->errbuf)) {
        vs_fetch_xfer_free(x);
        return vs_fail(err, VS_ERR_BACKEND, "fetch %.200s: libcurl refused an option (needs curl >= 7.85)", url);
    }
    *out = x;
    return VS_OK;
}

void *vs_fetch_xfer_easy(vs_fetch_xfer *x) { return x->h; }

size_t vs_fetch_xfer_received(const vs_fetch_xfer *x) { return x->c.body.len; }

/* Turns the finished transfer into *out (taking the body) or the error of
 * the contract. */
vs_err vs_fetch_xfer_finish(vs_fetch_xfer *x, int curl_code, vs_fetch_result *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    fetch_ctx *c = &x->c;
    CURLcode res = (CURLcode)curl_code;
    if (res != CURLE_OK && !(c->truncated && res == CURLE_WRITE_ERROR)) {
        out->refused = c->refused && res == CURLE_COULDNT_CONNECT;
        out->too_many_redirects = res == CURLE_TOO_MANY_REDIRECTS;
        return transfer_error(x->h, res, x->url, &x->o, c, x->errbuf, err);
    }
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &out->http_status);
    curl_off_t ra = 0;
    if (curl_easy_getinfo(x->h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) out->retry_after_s = (long)ra;
    /* a 2xx body shorter than check_bytes is checked whole, at the end */
    if (c->check_head && !c->checked && out->http_status >= 200 && out->http_status < 300 &&
        (c->rejected = c->check_head(c->check_ctx, c->body.data ? c->body.data : (const uint8_t *)"", c->body.len)))
        return vs_fail(err, VS_ERR_UNSUPPORTED, "%s at %.200s", c->rejected, x->url);
    int redirect = x->o.no_follow && out->http_status >= 300 && out->http_status < 400;
    if (!redirect && (out->http_status < 200 || out->http_status >= 300))
        return vs_fail(err, VS_ERR_IO, "HTTP %ld from %.200s", out->http_status, x->url);
    if (redirect) {
        char *loc = NULL;
        curl_easy_getinfo(x->h, CURLINFO_REDIRECT_URL, &loc);
        if (!loc || !*loc) return vs_fail(err, VS_ERR_IO, "HTTP %ld without a Location from %.200s", out->http_status, x->url);
        if (strlen(loc) >= sizeof out->redirect_url)
            return vs_fail(err, VS_ERR_IO, "HTTP %ld: redirect URL too long from %.200s", out->http_status, x->url);
        snprintf(out->redirect_url, sizeof out->redirect_url, "%s", loc);
    }
    if (!(out->data = vs_buf_take(&c->body, &out->len))) /* an empty body is still a buffer */
        return vs_fail(err, VS_ERR_NOMEM, "fetch %.200s: out of memory", x->url);
    char *ct = NULL, *eff = NULL;
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff);
    snprintf(out->content_type, sizeof out->content_type, "%s", ct ? ct : "");
    snprintf(out->final_url, sizeof out->final_url, "%s", eff ? eff : x->url);
    return VS_OK;
}

/* Releases the transfer and whatever body it still holds; NULL is fine. */
void vs_fetch_xfer_free(vs_fetch_xfer *x) {
    if (!x) return;
    if (x->h) curl_easy_cleanup(x->h);
    vs_buf_free(&x->c.body);
    vs_free(x->allow);
    vs_free(x->url);
    vs_free(x);
}

/* Fetches url into memory under the policy and limits of opts (defaults for
 * zero fields); the transfer is aborted, never truncated. */
vs_err vs_fetch_url(const char *url, const vs_fetch_opts *opts, vs_fetch_result *out, vs_error *err) {
    memset(out, 0, sizeof *out);
    vs_fetch_xfer *x = NULL;
    vs_err rc = vs_fetch_xfer_new(url, opts, &x, err);
    if (rc != VS_OK) return rc;
    rc = vs_fetch_xfer_finish(x, (int)curl_easy_perform(x->h), out, err);
    vs_fetch_xfer_free(x);
    return rc;
}

/* Frees the body and resets r; safe on a zeroed or already freed result. */
void vs_fetch_result_free(vs_fetch_result *r) {
    if (!r) return;
    vs_free(r->data);
    memset(r, 0, sizeof *r);
}
