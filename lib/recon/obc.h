/*
 * obc.h - layer-wise reconstruction shared by pruning (SparseGPT-style
 * masks) and quantization (GPTQ): see obc.c.
 */
#ifndef HPCZ_OBC_H
#define HPCZ_OBC_H

#include "internal.h"

/* Streaming Gram matrix of a layer's inputs: H = sum x x^T (upper triangle
 * until hpcz_obc_run), and the column sums for bias correction. */
typedef struct hpcz_gram {
    int64_t K;
    double *H;
    double *sum;
    uint64_t rows;
} hpcz_gram;

hpcz_status hpcz_gram_init(hpcz_gram *g, int64_t K, hpcz_error *err);
/* Adds `rows` input rows of length K (row-major floats). */
void hpcz_gram_add_rows(hpcz_gram *g, const float *x, int64_t rows);
void hpcz_gram_release(hpcz_gram *g);

typedef enum hpcz_obc_mode { HPCZ_OBC_PRUNE, HPCZ_OBC_QUANT } hpcz_obc_mode;

typedef struct hpcz_obc_opts {
    hpcz_obc_mode mode;
    double damp;        /* fraction of the mean diagonal added (default 0.01) */
    /* pruning */
    double sparsity;    /* unstructured, when n == 0 */
    int64_t n, m;       /* N:M: keep n of every m along K (128 % m == 0, K % m == 0) */
    /* quantization */
    int qmin, qmax;
    int symmetric;
    int64_t group;      /* > 0: one scale per `group` columns of a row; else one per row */
    int64_t n_groups;
    int clip;           /* search each scale's range (shrunk up to half) for the least
                         * rounding error weighted by the Gram matrix's diagonal */
    float *scales_out;  /* [rows * n_groups] (or [rows]) */
    int *zps_out;
} hpcz_obc_opts;

/* Compresses W (rows x K, row-major, double) in place given g (whose H is
 * consumed). Pruned weights become exactly 0; quantized ones exact grid values. */
hpcz_status hpcz_obc_run(double *W, int64_t rows, int64_t K, hpcz_gram *g, const hpcz_obc_opts *o,
                         hpcz_error *err);

#endif
