/* vs_similarity.h - the vector maths of face descriptors: L2 normalisation,
 * dot product and cosine similarity on float arrays. */
#ifndef VS_SIMILARITY_H
#define VS_SIMILARITY_H

/* Scales v[0..n) to unit Euclidean length in place. A zero (or non-finite
 * norm) vector is left unchanged, so an all-zero vector stays zero. */
void vs_l2_normalize(float *v, int n);

/* sum a[i]*b[i], i < n. With unit vectors this is the cosine similarity;
 * it is the inner loop of brute-force search, written so the compiler
 * vectorises it without -ffast-math. n <= 0 gives 0. */
float vs_dot(const float *a, const float *b, int n);

/* Cosine of the angle between a and b, in [-1,1]; 0 when either is zero. */
float vs_cosine(const float *a, const float *b, int n);

#endif
