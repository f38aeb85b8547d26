/* vs_web.h - the web app's static files, compiled into the binary from web/
 * by the build (CMakeLists.txt writes vs_web_assets.c), served at "/" (the
 * page) and "/web/NAME" (its modules, styles, icons). */
#ifndef VS_WEB_H
#define VS_WEB_H

#include <stddef.h>

typedef struct vs_web_file {
    const char *name;                /* "index.html", "app.js", ... */
    const unsigned char *data;       /* len bytes, then a NUL */
    size_t len;
} vs_web_file;

/* Every file of web/, ended by a row whose name is NULL. */
extern const vs_web_file vs_web_files[];

/* The file served at path ("/" is index.html, "/web/NAME" is NAME), or NULL. */
const vs_web_file *vs_web_find(const char *path);

/* The Content-Type of a file by its extension. */
const char *vs_web_content_type(const char *name);

#endif
