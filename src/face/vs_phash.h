/* vs_phash.h - 64-bit perceptual hash of an image (DCT pHash) for spotting
 * near-duplicate uploads: resizing, recompression or a small brightness change
 * keep the Hamming distance small. */
#ifndef VS_PHASH_H
#define VS_PHASH_H

#include <stdint.h>

#include "vs_image.h"

/* pHash of img (RGB or gray, any size >= 1x1): gray -> 32x32 area average ->
 * 2-D DCT-II -> the 8x8 lowest frequencies; bit = coefficient > median of the
 * 63 AC coefficients among them. Bit 63 (the MSB) is coefficient (0,0) (the
 * DC term), then row-major: bit 63 - (8*v + u) holds vertical frequency v,
 * horizontal frequency u, so the hex string reads the block row by row.
 * An empty image (NULL data, width or height <= 0) hashes to 0. */
uint64_t vs_phash(const vs_image *img);

/* vs_phash of img and of its left-right mirror image, from one DCT: the
 * mirror's coefficients are img's with odd horizontal frequencies negated.
 * A flipped re-post of a photo then matches its original (a flip moves
 * vs_phash by ~30 bits). */
void vs_phash_both(const vs_image *img, uint64_t *hash, uint64_t *mirror);

/* Number of differing bits, 0..64. */
int vs_hamming64(uint64_t a, uint64_t b);

/* 16 lower-case hex digits plus NUL, most significant first. */
void vs_phash_hex(uint64_t h, char out[17]);

#endif
