/* vs_base64.h - base64 for images in JSON bodies and vectors in queue
 * messages. */
#ifndef VS_BASE64_H
#define VS_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Standard base64 of data into a new NUL-terminated string (vs_free). */
char *vs_base64_encode(const uint8_t *data, size_t len);

/* Decodes standard or URL-safe base64 (whitespace ignored) into a new
 * buffer (vs_free). A "data:...;base64," prefix is skipped. Returns -1 on
 * invalid input or no memory. */
int vs_base64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif
