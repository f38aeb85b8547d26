/* vs_html.c - image and page links of one HTML page: gumbo builds the tree,
 * an iterative walk (no recursion, so deep markup cannot blow the stack) picks
 * the attributes, libcurl's URL API resolves them. Tuned for pages up to a few
 * MiB with hundreds of links: dedup through a small open-addressing hash set. */
#include "vs_html.h"

#include <curl/curl.h>
#include <gumbo.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "vs_alloc.h"

/* One output list plus its dedup index (slots hold item index + 1, 0 = empty). */
typedef struct url_list {
    char **items;
    int n, cap;
    uint32_t *slots;
    size_t n_slots;   /* power of two, kept at least 2x n */
} url_list;

typedef struct extract_ctx {
    CURLU *base;
    url_list images, pages;
    int nomem;        /* an allocation failed somewhere: report NOMEM */
} extract_ctx;

/* FNV-1a, enough to spread URLs over the dedup slots. */
static uint32_t url_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Finds s in the list's set: returns its slot; *found says if it is there. */
static size_t list_slot(const url_list *l, const char *s, int *found) {
    size_t mask = l->n_slots - 1, i = url_hash(s) & mask;
    while (l->slots[i]) {
        if (strcmp(l->items[l->slots[i] - 1], s) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
    *found = 0;
    return i;
}

/* Doubles the dedup set and re-inserts every item; 0 on allocation failure. */
static int list_grow_set(url_list *l) {
    size_t n_slots = l->n_slots ? l->n_slots * 2 : 64;
    uint32_t *slots = vs_calloc(n_slots, sizeof *slots);
    if (!slots) return 0;
    vs_free(l->slots);
    l->slots = slots;
    l->n_slots = n_slots;
    for (int k = 0; k < l->n; k++) {
        int found;
        l->slots[list_slot(l, l->items[k], &found)] = (uint32_t)k + 1;
    }
    return 1;
}

/* Appends url (taking ownership) unless already present or the list is full;
 * 0 on allocation failure (url is freed either way when not kept). */
static int list_add(url_list *l, char *url) {
    int found;
    if (l->n >= VS_HTML_MAX_LINKS) goto drop;
    if ((size_t)(l->n + 1) * 2 > l->n_slots && !list_grow_set(l)) goto fail;
    size_t slot = list_slot(l, url, &found);
    if (found) goto drop;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **items = vs_realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) goto fail;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n] = url;
    l->slots[slot] = (uint32_t)++l->n;
    return 1;
drop:
    vs_free(url);
    return 1;
fail:
    vs_free(url);
    return 0;
}

/* Frees a list and its set. */
static void list_free(url_list *l) {
    for (int k = 0; k < l->n; k++) vs_free(l->items[k]);
    vs_free(l->items);
    vs_free(l->slots);
    memset(l, 0, sizeof *l);
}

static int is_html_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

/* Resolves raw[0..n) against base as a browser would (surrounding whitespace
 * trimmed, tabs and newlines removed, fragment dropped). Returns a vs_strdup'd
 * absolute http(s) URL, or NULL when the URL is unusable or, with *nomem set,
 * when memory ran out. */
static char *resolve(CURLU *base, const char *raw, size_t n, int *nomem) {
    while (n > 0 && is_html_space(*raw)) raw++, n--;
    while (n > 0 && is_html_space(raw[n - 1])) n--;
    if (n > VS_HTML_MAX_URL) return NULL;
    char buf[VS_HTML_MAX_URL + 1];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (raw[i] != '\t' && raw[i] != '\n' && raw[i] != '\r' && raw[i] != '\0') buf[m++] = raw[i];
    buf[m] = '\0';

    char *res = NULL, *scheme = NULL, *url = NULL;
    CURLU *h = curl_url_dup(base);
    if (!h) {
        *nomem = 1;
        return NULL;
    }
    /* "" and "#frag" mean this document; curl 7.88 would yield its directory. */
    if (m > 0 && buf[0] != '#' && curl_url_set(h, CURLUPART_URL, buf, CURLU_URLENCODE) != CURLUE_OK)
        goto out;
    curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) goto out;
    CURLUcode uc = curl_url_get(h, CURLUPART_URL, &url, 0);
    if (uc == CURLUE_OUT_OF_MEMORY) *nomem = 1;
    if (uc != CURLUE_OK || strlen(url) > VS_HTML_MAX_URL) goto out;
    res = vs_strdup(url);
    if (!res) *nomem = 1;
out:
    curl_free(scheme);
    curl_free(url);
    curl_url_cleanup(h);
    return res;
}

/* Resolves a NUL-terminated attribute value and adds it to list; returns 1
 * when a URL was added or was already there. */
static int add_url(extract_ctx *c, url_list *list, const char *raw, size_t n) {
    char *u = resolve(c->base, raw, n, &c->nomem);
    if (!u) return 0;
    if (!list_add(list, u)) {
        c->nomem = 1;
        return 0;
    }
    return 1;
}

/* Locale-free decimal number at s[0..n) (digits, optional fraction), the
 * whole token; -1 when it is not one. */
static double parse_number(const char *s, size_t n) {
    double x = 0, scale = 1;
    size_t i = 0;
    int digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        if (x < 1e12) x = x * 10 + (s[i] - '0');
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
            if (scale > 1e-9) x += (s[i] - '0') * (scale /= 10);
    return digits && i == n ? x : -1;
}

/* Picks the largest candidate of a srcset (HTML "parse a srcset attribute",
 * simplified): the highest w descriptor if any candidate has one, else the
 * highest x density (no descriptor = 1x), else the first; ties keep the
 * earlier. Sets *url and *ulen and returns 1, or 0 when there is no candidate. */
static int srcset_best(const char *s, const char **url, size_t *ulen) {
    size_t n = strlen(s), i = 0;
    double best_w = -1, best_x = -1;
    const char *bw = NULL, *bx = NULL, *first = NULL;
    size_t bw_len = 0, bx_len = 0, first_len = 0;
    while (i < n) {
        while (i < n && (is_html_space(s[i]) || s[i] == ',')) i++;
        if (i >= n) break;
        size_t us = i;
        while (i < n && !is_html_space(s[i])) i++;
        size_t ue = i;
        double w = -1, x = -1;
        if (s[ue - 1] == ',') {
            while (ue > us && s[ue - 1] == ',') ue--;
        } else {
            /* Descriptors run to the next comma outside parentheses. */
            int depth = 0;
            while (i < n && (s[i] != ',' || depth > 0)) {
                if (is_html_space(s[i])) {
                    i++;
                    continue;
                }
                size_t ts = i;
                while (i < n && !is_html_space(s[i]) && (s[i] != ',' || depth > 0)) {
                    if (s[i] == '(') depth++;
                    else if (s[i] == ')' && depth > 0) depth--;
                    i++;
                }
                size_t tl = i - ts;
                if (tl >= 2 && s[ts + tl - 1] == 'w') w = parse_number(s + ts, tl - 1);
                else if (tl >= 2 && s[ts + tl - 1] == 'x') x = parse_number(s + ts, tl - 1);
            }
        }
        if (ue == us) continue;
        if (!first) first = s + us, first_len = ue - us;
        if (w >= 0 && w > best_w) best_w = w, bw = s + us, bw_len = ue - us;
        if (w < 0) {
            if (x < 0) x = 1;
            if (x > best_x) best_x = x, bx = s + us, bx_len = ue - us;
        }
    }
    if (bw) *url = bw, *ulen = bw_len;
    else if (bx) *url = bx, *ulen = bx_len;
    else if (first) *url = first, *ulen = first_len;
    else return 0;
    return 1;
}

/* Adds the largest candidate of a srcset value; 1 when one was added. */
static int add_srcset(extract_ctx *c, const char *value) {
    const char *u;
    size_t n;
    return value && srcset_best(value, &u, &n) && add_url(c, &c->images, u, n);
}

/* Value of attribute `name` of element e, or NULL. */
static const char *attr(const GumboElement *e, const char *name) {
    const GumboAttribute *a = gumbo_get_attribute(&e->attributes, name);
    return a ? a->value : NULL;
}

/* Is node an element named `name`? Tags gumbo 0.10 does not know (e.g.
 * <picture>) are GUMBO_TAG_UNKNOWN and compared by their original text. */
static int element_named(const GumboNode *node, const char *name) {
    if (!node || (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE)) return 0;
    const GumboElement *e = &node->v.element;
    if (e->tag != GUMBO_TAG_UNKNOWN) return strcasecmp(gumbo_normalized_tagname(e->tag), name) == 0;
    GumboStringPiece p = e->original_tag;
    if (!p.data || p.length == 0) return 0;
    gumbo_tag_from_original_text(&p);
    return p.length == strlen(name) && strncasecmp(p.data, name, p.length) == 0;
}

/* Is `token` one of the whitespace-separated words of list (case-insensitive)? */
static int has_token(const char *list, const char *token) {
    size_t tl = strlen(token);
    for (const char *p = list; p && *p;) {
        while (*p && is_html_space(*p)) p++;
        const char *s = p;
        while (*p && !is_html_space(*p)) p++;
        if ((size_t)(p - s) == tl && strncasecmp(s, token, tl) == 0) return 1;
    }
    return 0;
}

/* Meta names/properties that carry the page's representative image. */
static int is_image_meta(const char *v) {
    static const char *const names[] = {"og:image", "og:image:url", "og:image:secure_url",
                                        "twitter:image", "twitter:image:src"};
    for (size_t i = 0; v && i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(v, names[i]) == 0) return 1;
    return 0;
}

/* Collects the URLs one element contributes (see vs_html.h for the rules). */
static void visit(extract_ctx *c, const GumboNode *node) {
    const GumboElement *e = &node->v.element;
    const char *v;
    switch (e->tag) {
    case GUMBO_TAG_IMG:
        if (add_srcset(c, attr(e, "srcset")) || add_srcset(c, attr(e, "data-srcset"))) break;
        if ((v = attr(e, "data-src")) && add_url(c, &c->images, v, strlen(v))) break;
        if ((v = attr(e, "src"))) add_url(c, &c->images, v, strlen(v));
        break;
    case GUMBO_TAG_SOURCE:
        if (element_named(node->parent, "picture") && !add_srcset(c, attr(e, "srcset")))
            add_srcset(c, attr(e, "data-srcset"));
        break;
    case GUMBO_TAG_META:
        if ((is_image_meta(attr(e, "property")) || is_image_meta(attr(e, "name"))) &&
            (v = attr(e, "content")))
            add_url(c, &c->images, v, strlen(v));
        break;
    case GUMBO_TAG_LINK:
        if (has_token(attr(e, "rel"), "image_src") && (v = attr(e, "href")))
            add_url(c, &c->images, v, strlen(v));
        break;
    case GUMBO_TAG_A:
        if ((v = attr(e, "href"))) add_url(c, &c->pages, v, strlen(v));
        break;
    default:
        break;
    }
}

/* Walks the tree in document order with an explicit stack. With base_only it
 * only looks for the first <base href> and re-points c->base at it; otherwise
 * it visits every element. 0 on allocation failure. */
static int walk(extract_ctx *c, const GumboNode *root, int base_only) {
    size_t n = 0, cap = 256;
    const GumboNode **stack = vs_malloc(cap * sizeof *stack);
    if (!stack) return 0;
    stack[n++] = root;
    while (n > 0) {
        const GumboNode *node = stack[--n];
        if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) continue;
        const GumboElement *e = &node->v.element;
        if (base_only && e->tag == GUMBO_TAG_BASE && attr(e, "href")) {
            const char *h = attr(e, "href");
            char *u = resolve(c->base, h, strlen(h), &c->nomem);
            if (u) (void)curl_url_set(c->base, CURLUPART_URL, u, 0);  /* absolute: cannot fail */
            vs_free(u);
            break;
        }
        if (!base_only) visit(c, node);
        const GumboVector *ch = &e->children;
        if (n + ch->length > cap) {
            size_t ncap = (n + ch->length) * 2;
            const GumboNode **ns = vs_realloc(stack, ncap * sizeof *ns);
            if (!ns) {
                vs_free(stack);
                return 0;
            }
            stack = ns;
            cap = ncap;
        }
        for (unsigned k = ch->length; k > 0; k--) stack[n++] = ch->data[k - 1];
    }
    vs_free(stack);
    return 1;
}

/* 1 when the tag name n[0..len) is one that never nests: void elements
 * and those whose end tag the parser infers (a run of <p> or <li> does not
 * deepen the tree; nor does a run of <a>: each closes the one before). */
static int tag_never_nests(const char *n, size_t len) {
    static const char *k[] = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                              "param", "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup",
                              "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt",
                              "rtc", "rp", "html", "head", "body", "a", "nobr"};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++)
        if (strlen(k[i]) == len && strncasecmp(k[i], n, len) == 0) return 1;
    return 0;
}

/* Upper estimate of the element nesting depth of the page, in one pass over
 * the bytes: start tags push, end tags pop, comments and raw text (script,
 * style) are skipped. gumbo's tree building slows down more than
 * quadratically with depth (16,000 unclosed <div>s take seconds, 8 MiB of
 * them more than ten minutes), so a hostile page is refused before it is
 * parsed; real pages stay far below the limit. */
static int html_depth_estimate(const char *h, size_t len) {
    int depth = 0, max = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (h[i] != '<') continue;
        const char *p = h + i + 1;
        size_t left = len - i - 1;
        if (left >= 3 && memcmp(p, "!--", 3) == 0) {
            const char *e = memmem(p + 3, left - 3, "-->", 3);
            if (!e) break;
            i = (size_t)(e - h) + 2;
            continue;
        }
        if (*p == '/') {
            if (depth > 0) depth--;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) continue;
        size_t n = 0;
        while (n < left && ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= '0' && p[n] <= '9'))) n++;
        const char *gt = memchr(p + n, '>', left - n);
        if (!gt) break;
        i = (size_t)(gt - h);
        if (gt[-1] == '/' || tag_never_nests(p, n)) continue;
        int raw = (n == 6 && strncasecmp(p, "script", 6) == 0) || (n == 5 && strncasecmp(p, "style", 5) == 0);
        if (raw) {
            const char *e = memmem(gt, len - i, "</", 2);
            /* the input need not be NUL-terminated: compare only what is there */
            while (e && !((size_t)(h + len - (e + 2)) >= n && strncasecmp(e + 2, p, n) == 0))
                e = memmem(e + 2, len - (size_t)(e + 2 - h), "</", 2);
            if (!e) break;
            i = (size_t)(e - h) + 1;
            continue;
        }
        if (++depth > max) max = depth;
    }
    return max;
}

/* Hands a list's items to the caller's array/count pair. */
static void list_export(url_list *l, char ***items, int *count) {
    *items = l->items;
    *count = l->n;
    l->items = NULL;
    l->n = l->cap = 0;
}

vs_err vs_html_extract(const char *html, size_t len, const char *page_url,
                       vs_html_links *out, vs_error *err) {
    if (!out) return vs_fail(err, VS_ERR_INVALID_ARG, "html: NULL output");
    memset(out, 0, sizeof *out);
    if ((!html && len > 0) || !page_url) return vs_fail(err, VS_ERR_INVALID_ARG, "html: NULL argument");
    if (len > VS_HTML_MAX_BYTES)
        return vs_fail(err, VS_ERR_TOO_LARGE, "html: %zu bytes over the %u byte limit", len,
                       VS_HTML_MAX_BYTES);
    int depth = html ? html_depth_estimate(html, len) : 0;
    if (depth > VS_HTML_MAX_DEPTH)
        return vs_fail(err, VS_ERR_TOO_LARGE, "html: elements nested %d deep, over the limit of %d", depth,
                       VS_HTML_MAX_DEPTH);

    vs_err rc = VS_OK;
    extract_ctx c = {0};
    GumboOutput *doc = NULL;
    char *scheme = NULL;
    c.base = curl_url();
    if (!c.base) {
        rc = vs_fail(err, VS_ERR_NOMEM, "html: curl_url");
        goto out;
    }
    if (curl_url_set(c.base, CURLUPART_URL, page_url, 0) != CURLUE_OK ||
        curl_url_get(c.base, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        rc = vs_fail(err, VS_ERR_INVALID_ARG, "html: page url is not an absolute http(s) URL");
        goto out;
    }
    doc = gumbo_parse_with_options(&kGumboDefaultOptions, html ? html : "", len);
    if (!doc) {
        rc = vs_fail(err, VS_ERR_BACKEND, "html: gumbo parse failed");
        goto out;
    }
    if (!walk(&c, doc->root, 1) || c.nomem || !walk(&c, doc->root, 0) || c.nomem) {
        rc = vs_fail(err, VS_ERR_NOMEM, "html: out of memory collecting links");
        goto out;
    }
    list_export(&c.images, &out->images, &out->n_images);
    list_export(&c.pages, &out->pages, &out->n_pages);
out:
    if (doc) gumbo_destroy_output(&kGumboDefaultOptions, doc);
    curl_free(scheme);
    curl_url_cleanup(c.base);
    list_free(&c.images);
    list_free(&c.pages);
    return rc;
}

void vs_html_links_free(vs_html_links *l) {
    if (!l) return;
    for (int k = 0; k < l->n_images; k++) vs_free(l->images[k]);
    for (int k = 0; k < l->n_pages; k++) vs_free(l->pages[k]);
    vs_free(l->images);
    vs_free(l->pages);
    memset(l, 0, sizeof *l);
}
