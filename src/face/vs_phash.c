/* vs_phash.c - DCT perceptual hash for duplicate detection of whole uploads.
 * Streams the source once with no allocation (a 32x32 accumulator on the
 * stack), so hashing a 50-MP photo costs one pass and cannot fail. */
#include "vs_phash.h"

#include <math.h>

#define PH_N 32   /* side of the reduced image */
#define PH_K 8    /* side of the low-frequency block kept */
#define PH_PI 3.14159265358979323846

/* Coefficients this close to the median count as equal to it (not above).
 * On the 0..255 scale real structure is orders of magnitude larger; rounding
 * noise (~1e-12) is far smaller. Without it a flat image would hash by noise. */
#define PH_EPS 1e-3

/* Gray level of pixel p (BT.601 luma weights for RGB). */
static double gray_at(const uint8_t *p, int channels) {
    if (channels >= 3)
        return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    return p[0];
}

/* Adds value v, spread over the source pixel's extent [a, b) in output units,
 * into out[] proportionally to overlap. Every source pixel covers PH_N/len
 * output units, so each output cell ends up with total weight exactly 1:
 * an exact area average for both shrinking and enlarging. */
static void splat(double *out, double a, double b, double v) {
    int o0 = (int)floor(a), o1 = (int)ceil(b);
    if (o0 < 0)
        o0 = 0;
    if (o1 > PH_N)
        o1 = PH_N;
    for (int o = o0; o < o1; o++) {
        double lo = a > o ? a : o, hi = b < o + 1 ? b : o + 1;
        if (hi > lo)
            out[o] += v * (hi - lo);
    }
}

/* Area-averages the gray version of img into small[PH_N][PH_N]. */
static void reduce_gray(const vs_image *img, double small[PH_N][PH_N]) {
    int w = img->width, h = img->height, c = img->channels;
    double sx = (double)PH_N / w, sy = (double)PH_N / h;
    for (int y = 0; y < PH_N; y++)
        for (int x = 0; x < PH_N; x++)
            small[y][x] = 0.0;
    double row[PH_N];
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < PH_N; x++)
            row[x] = 0.0;
        const uint8_t *p = img->data + (size_t)y * w * c;
        for (int x = 0; x < w; x++, p += c)
            splat(row, x * sx, (x + 1) * sx, gray_at(p, c));
        /* Row y covers [y*sy, (y+1)*sy) vertically. */
        double a = y * sy, b = (y + 1) * sy;
        int o0 = (int)floor(a), o1 = (int)ceil(b);
        if (o1 > PH_N)
            o1 = PH_N;
        for (int o = o0; o < o1; o++) {
            double lo = a > o ? a : o, hi = b < o + 1 ? b : o + 1;
            if (hi <= lo)
                continue;
            for (int x = 0; x < PH_N; x++)
                small[o][x] += row[x] * (hi - lo);
        }
    }
}

/* Sorts a short array in place (insertion sort; 63 elements). */
static void sort_small(double *v, int n) {
    for (int i = 1; i < n; i++) {
        double t = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > t) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

/* The 8x8 lowest DCT-II frequencies of img's 32x32 gray reduction. */
static void low_dct(const vs_image *img, double dct[PH_K][PH_K]) {
    double small[PH_N][PH_N];
    reduce_gray(img, small);

    /* Orthonormal DCT-II basis, only the PH_K lowest frequencies:
     * c[k][x] = alpha(k) cos(pi (2x+1) k / 2N). */
    double basis[PH_K][PH_N];
    for (int k = 0; k < PH_K; k++) {
        double alpha = k == 0 ? sqrt(1.0 / PH_N) : sqrt(2.0 / PH_N);
        for (int x = 0; x < PH_N; x++)
            basis[k][x] = alpha * cos(PH_PI * (2 * x + 1) * k / (2.0 * PH_N));
    }
    /* Separable: rows first (tmp[y][u]), then columns (dct[v][u]). */
    double tmp[PH_N][PH_K];
    for (int y = 0; y < PH_N; y++)
        for (int u = 0; u < PH_K; u++) {
            double s = 0.0;
            for (int x = 0; x < PH_N; x++)
                s += small[y][x] * basis[u][x];
            tmp[y][u] = s;
        }
    for (int v = 0; v < PH_K; v++)
        for (int u = 0; u < PH_K; u++) {
            double s = 0.0;
            for (int y = 0; y < PH_N; y++)
                s += basis[v][y] * tmp[y][u];
            dct[v][u] = s;
        }
}

/* The hash bits of the coefficients, each horizontal frequency u times
 * sign^u: sign -1 gives the hash of the mirror image, whose DCT-II
 * coefficients are the same with odd horizontal frequencies negated. */
static uint64_t hash_bits(const double dct[PH_K][PH_K], int sign) {
    /* Median of the 63 AC terms (odd count: one exact middle element). The DC
     * term is left out because it is the mean brightness, far larger than
     * any AC term, and would bias the median; it still gets a bit, which is
     * almost always 1 (0 only for very dark images). */
    double c[PH_K][PH_K], ac[PH_K * PH_K - 1];
    int n = 0;
    for (int v = 0; v < PH_K; v++)
        for (int u = 0; u < PH_K; u++) {
            c[v][u] = sign < 0 && (u & 1) ? -dct[v][u] : dct[v][u];
            if (u || v)
                ac[n++] = c[v][u];
        }
    sort_small(ac, n);
    double median = ac[n / 2];

    uint64_t hash = 0;
    for (int v = 0; v < PH_K; v++)
        for (int u = 0; u < PH_K; u++)
            if (c[v][u] > median + PH_EPS)
                hash |= (uint64_t)1 << (63 - (PH_K * v + u));
    return hash;
}

/* The hash (see vs_phash.h): low DCT frequencies survive resizing and
 * recompression, and comparing with their median makes it brightness- and
 * contrast-invariant. */
uint64_t vs_phash(const vs_image *img) {
    uint64_t hash, mirror;
    vs_phash_both(img, &hash, &mirror);
    return hash;
}

void vs_phash_both(const vs_image *img, uint64_t *hash, uint64_t *mirror) {
    *hash = *mirror = 0;
    if (!img || !img->data || img->width <= 0 || img->height <= 0 || img->channels <= 0)
        return;
    double dct[PH_K][PH_K];
    low_dct(img, dct);
    *hash = hash_bits(dct, 1);
    *mirror = hash_bits(dct, -1);
}

/* Bits that differ: the distance between two hashes. */
int vs_hamming64(uint64_t a, uint64_t b) {
    return __builtin_popcountll(a ^ b);
}

/* Fixed-width hex, for storing hashes as text (JSON, SQLite). */
void vs_phash_hex(uint64_t h, char out[17]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++)
        out[i] = digits[(h >> (60 - 4 * i)) & 0xf];
    out[16] = '\0';
}
