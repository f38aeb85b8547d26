/* vs_web.c - finds the compiled-in web files and names their types. The
 * table is tiny (a dozen files): a scan is all it needs. */
#include "vs_web.h"

#include <string.h>

const vs_web_file *vs_web_find(const char *path) {
    const char *name = !strcmp(path, "/") ? "index.html" : !strncmp(path, "/web/", 5) ? path + 5 : NULL;
    if (!name || !*name || strchr(name, '/')) return NULL;
    for (const vs_web_file *f = vs_web_files; f->name; f++)
        if (!strcmp(f->name, name)) return f;
    return NULL;
}

const char *vs_web_content_type(const char *name) {
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"}, {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}
