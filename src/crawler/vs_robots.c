/* vs_robots.c - robots.txt parser and matcher (RFC 9309, Google's reading of
 * it). Tuned for files of a few KiB parsed once per host and queried per URL:
 * one linear pass keeps only the rules of our group; matching is allocation-free. */
#include "vs_robots.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "vs_alloc.h"

#define VS_ROBOTS_MAX_DELAY 86400.0

typedef struct vs_rule {
    char *pat;        /* pattern without a trailing '$', NUL-terminated */
    size_t pat_len;
    size_t priority;  /* length of the pattern as written (with '$') */
    int allow;
    int anchored;     /* pattern ended in '$' */
} vs_rule;

typedef struct rule_set {
    vs_rule *rules;
    size_t n, cap;
    double delay;     /* -1 = none */
    int seen;         /* a group for this agent exists (even without rules) */
} rule_set;

struct vs_robots {
    rule_set set;
    int disallow_all;
};

/* Frees the rules of a set and leaves it empty. */
static void set_clear(rule_set *s) {
    for (size_t i = 0; i < s->n; i++) vs_free(s->rules[i].pat);
    vs_free(s->rules);
    s->rules = NULL;
    s->n = s->cap = 0;
}

/* Appends one Allow/Disallow pattern to a set; 0 on allocation failure. */
static int set_add(rule_set *s, const char *v, size_t vlen, int allow) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        vs_rule *nr = vs_realloc(s->rules, cap * sizeof *nr);
        if (!nr) return 0;
        s->rules = nr;
        s->cap = cap;
    }
    vs_rule *r = &s->rules[s->n];
    r->priority = vlen;
    r->anchored = vlen > 0 && v[vlen - 1] == '$';
    r->pat_len = r->anchored ? vlen - 1 : vlen;
    r->allow = allow;
    r->pat = vs_malloc(r->pat_len + 1);
    if (!r->pat) return 0;
    memcpy(r->pat, v, r->pat_len);
    r->pat[r->pat_len] = '\0';
    s->n++;
    return 1;
}

/* Length of the product token at the start of s: letters, '_' and '-'
 * (RFC 9309 2.2.1), so "Visage/1.0" and "visage" both yield "visage". */
static size_t product_token_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                     s[i] == '_' || s[i] == '-'))
        i++;
    return i;
}

/* Case-insensitive equality of a counted key with a literal. */
static int key_is(const char *k, size_t klen, const char *lit) {
    return strlen(lit) == klen && strncasecmp(k, lit, klen) == 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

/* Crawl-delay value: digits with an optional fraction; -1 when not a number.
 * Hand-written so the result does not depend on the process locale. */
static double parse_delay(const char *v, size_t n) {
    size_t i = 0;
    double x = 0, scale = 1;
    int digits = 0;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++)
        if (x < VS_ROBOTS_MAX_DELAY) x = x * 10 + (v[i] - '0');
    if (i < n && v[i] == '.')
        for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++, digits++)
            if (scale > 1e-9) x += (v[i] - '0') * (scale /= 10);
    if (!digits) return -1;
    return x > VS_ROBOTS_MAX_DELAY ? VS_ROBOTS_MAX_DELAY : x;
}

/* Allocates an empty policy object: no rules, no delay. */
static vs_robots *robots_new(void) {
    vs_robots *r = vs_calloc(1, sizeof *r);
    if (r) r->set.delay = -1;
    return r;
}

vs_err vs_robots_parse(const char *text, size_t len, const char *user_agent,
                       vs_robots **out, vs_error *err) {
    if (!out || !user_agent || (!text && len > 0))
        return vs_fail(err, VS_ERR_INVALID_ARG, "robots: NULL argument");
    *out = NULL;
    if (len > VS_ROBOTS_MAX_BYTES) len = VS_ROBOTS_MAX_BYTES;
    const char *me = user_agent;
    size_t me_len = product_token_len(me, strlen(me));

    rule_set mine = {.delay = -1}, star = {.delay = -1};
    int in_agents = 0;          /* the previous record was a User-agent line */
    int cur_mine = 0, cur_star = 0;
    vs_err rc = VS_OK;
    const char *p = text, *end = text ? text + len : NULL;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  /* UTF-8 BOM */

    while (p && p < end) {
        const char *ls = p, *le = p;
        while (le < end && *le != '\n' && *le != '\r') le++;
        p = le < end ? le + 1 : end;
        const char *hash = memchr(ls, '#', (size_t)(le - ls));
        if (hash) le = hash;
        const char *colon = memchr(ls, ':', (size_t)(le - ls));
        if (!colon) continue;
        const char *ks = ls, *ke = colon, *vs = colon + 1, *ve = le;
        while (ks < ke && is_space(*ks)) ks++;
        while (ke > ks && is_space(ke[-1])) ke--;
        while (vs < ve && is_space(*vs)) vs++;
        while (ve > vs && is_space(ve[-1])) ve--;
        size_t klen = (size_t)(ke - ks), vlen = (size_t)(ve - vs);

        if (key_is(ks, klen, "user-agent")) {
            if (!in_agents) cur_mine = cur_star = 0;  /* a new group starts */
            in_agents = 1;
            size_t tl = product_token_len(vs, vlen);
            if (vlen > 0 && vs[0] == '*') cur_star = 1;
            else if (tl > 0 && tl == me_len && strncasecmp(vs, me, tl) == 0) cur_mine = 1;
            if (cur_mine) mine.seen = 1;
            if (cur_star) star.seen = 1;
        } else if (key_is(ks, klen, "allow") || key_is(ks, klen, "disallow")) {
            in_agents = 0;
            if (vlen == 0) continue;  /* empty Disallow: allows all; empty Allow: no-op */
            int allow = key_is(ks, klen, "allow");
            if ((cur_mine && !set_add(&mine, vs, vlen, allow)) ||
                (cur_star && !set_add(&star, vs, vlen, allow))) {
                rc = vs_fail(err, VS_ERR_NOMEM, "robots: out of memory for rules");
                goto out;
            }
        } else if (key_is(ks, klen, "crawl-delay")) {
            in_agents = 0;
            double d = parse_delay(vs, vlen);
            if (cur_mine && mine.delay < 0) mine.delay = d;
            if (cur_star && star.delay < 0) star.delay = d;
        }
        /* Sitemap and unknown keys belong to no group and are ignored. */
    }

    vs_robots *r = robots_new();
    if (!r) {
        rc = vs_fail(err, VS_ERR_NOMEM, "robots: out of memory");
        goto out;
    }
    if (mine.seen) {
        r->set = mine;
        mine = (rule_set){0};
    } else if (star.seen) {
        r->set = star;
        star = (rule_set){0};
    }
    *out = r;
out:
    set_clear(&mine);
    set_clear(&star);
    return rc;
}

/* Does pattern (with '*' wildcards) match a prefix of s, or all of s when
 * anchored? Greedy two-pointer glob matching with backtracking to the last
 * '*': no allocation, O(len(pat) * len(s)) worst case. */
static int pattern_match(const char *pat, size_t plen, int anchored, const char *s, size_t slen) {
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    for (;;) {
        if (pi == plen) {
            if (!anchored || si == slen) return 1;
        } else if (pat[pi] == '*') {
            star_p = ++pi;
            star_s = si;
            continue;
        } else if (si < slen && pat[pi] == s[si]) {
            pi++;
            si++;
            continue;
        }
        if (star_p == SIZE_MAX || star_s >= slen) return 0;
        pi = star_p;
        si = ++star_s;
    }
}

int vs_robots_allowed(const vs_robots *r, const char *path_and_query) {
    const char *path = path_and_query && *path_and_query ? path_and_query : "/";
    if (strcmp(path, "/robots.txt") == 0) return 1;
    if (!r) return 0;
    if (r->disallow_all) return 0;
    size_t slen = strlen(path), best = 0;
    int matched = 0, allow = 1;
    for (size_t i = 0; i < r->set.n; i++) {
        const vs_rule *ru = &r->set.rules[i];
        if (matched && ru->priority < best) continue;
        if (matched && ru->priority == best && (allow || !ru->allow)) continue;
        if (!pattern_match(ru->pat, ru->pat_len, ru->anchored, path, slen)) continue;
        if (!matched || ru->priority > best || ru->allow) allow = ru->allow;
        matched = 1;
        best = ru->priority;
    }
    return allow;
}

double vs_robots_crawl_delay(const vs_robots *r) { return r ? r->set.delay : -1; }

vs_robots *vs_robots_allow_all(void) { return robots_new(); }

vs_robots *vs_robots_disallow_all(void) {
    vs_robots *r = robots_new();
    if (r) r->disallow_all = 1;
    return r;
}

void vs_robots_free(vs_robots *r) {
    if (!r) return;
    set_clear(&r->set);
    vs_free(r);
}
