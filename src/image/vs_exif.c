/* vs_exif.c - a deliberately tiny EXIF reader: it finds the orientation tag
 * (0x0112 in IFD0) of a JPEG and nothing else. Input is hostile uploads, so
 * every offset is checked against the remaining length before it is read. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vs_image_internal.h"

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3
#define TIFF_TYPE_LONG 4

/* Reads a 16-bit value at p in the TIFF block's byte order. */
static unsigned rd16(const uint8_t *p, int le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

/* Reads a 32-bit value at p in the TIFF block's byte order. */
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads IFD0 of a TIFF block for tag 0x0112; a lying entry count or an
 * offset past the end yields 1 (upright), never a read out of bounds. */
int vs_exif_tiff_orientation(const uint8_t *tiff, size_t len) {
    if (!tiff || len < 8) return 1;
    int le;
    if (tiff[0] == 'I' && tiff[1] == 'I') le = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') le = 0;
    else return 1;
    if (rd16(tiff + 2, le) != 42) return 1;

    uint32_t ifd = rd32(tiff + 4, le);
    if (ifd < 8 || ifd > len - 2) return 1; /* len >= 8, so len - 2 cannot wrap */
    size_t count = rd16(tiff + ifd, le);
    size_t room = (len - ifd - 2) / 12; /* whole entries that fit after the count */
    if (count > room) count = room;     /* a lying count only loses entries */

    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = tiff + ifd + 2 + 12 * i;
        if (rd16(e, le) != EXIF_TAG_ORIENTATION) continue;
        unsigned type = rd16(e + 2, le);
        uint32_t n = rd32(e + 4, le);
        uint32_t v;
        if (n < 1) return 1;
        if (type == TIFF_TYPE_SHORT) v = rd16(e + 8, le); /* inline, left-justified */
        else if (type == TIFF_TYPE_LONG) v = rd32(e + 8, le);
        else return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Finds the first APP1 "Exif" segment among the JPEG markers before SOS. */
int vs_exif_jpeg_orientation(const uint8_t *buf, size_t len) {
    if (!buf || len < 4 || buf[0] != 0xff || buf[1] != 0xd8) return 1;
    size_t pos = 2;
    /* Walk the marker segments up to the first scan. Every step advances pos,
     * so the loop ends even on a hostile stream. */
    while (len - pos >= 2) {
        if (buf[pos] != 0xff) return 1; /* lost sync: not a segment boundary */
        uint8_t m = buf[pos + 1];
        if (m == 0xff) { /* fill byte before a marker */
            pos++;
            continue;
        }
        pos += 2;
        if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; /* no length */
        if (m == 0xda || m == 0xd9) return 1; /* scan data or end: EXIF comes before */
        if (len - pos < 2) return 1;
        size_t seg = (size_t)buf[pos] << 8 | buf[pos + 1]; /* includes its own 2 bytes */
        if (seg < 2 || seg > len - pos) return 1;
        if (m == 0xe1 && seg >= 2 + 6 && memcmp(buf + pos + 2, "Exif\0\0", 6) == 0)
            return vs_exif_tiff_orientation(buf + pos + 8, seg - 8);
        pos += seg;
    }
    return 1;
}
