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
/* Oracle-approximating shrinkage (Chen, Wiesel, Eldar and Hero, 2010) of the
 * symmetric K x K Gram matrix H of `rows` input rows: the share rho in [0, 1]
 * of H to replace by its mean diagonal times I. Few rows for a long input
 * (32 rows for 1536 inputs) give a Gram matrix of low rank whose inverse
 * fits those rows and nothing else; rho is then near 1. As a ridge:
 * H + rho / (1 - rho) * mean_diag * I. */
double hpcz_gram_shrinkage(const double *H, int64_t K, uint64_t rows);
/* The ridge, as a share of the mean diagonal, that the damping `damp` and the
 * shrinkage rho add to H (rho capped at 0.999). */
double hpcz_gram_ridge(double damp, double rho);

typedef enum hpcz_obc_mode { HPCZ_OBC_PRUNE, HPCZ_OBC_QUANT } hpcz_obc_mode;

typedef struct hpcz_obc_opts {
    hpcz_obc_mode mode;
    double damp;        /* fraction of the mean diagonal added (default 0.01), on top of
                         * the shrinkage of H (hpcz_gram_shrinkage) */
    const unsigned char *zero; /* rows x K, or NULL: weights that end at 0 whatever the
                                * updates did (the layer's own zeros, as a mel filter
                                * bank's: pruning keeps them and counts them, GPTQ
                                * rounds them to 0 as round-to-nearest does) */
    double *shrink_out; /* if set: the shrinkage rho used */
    int *rtn_out;       /* quantization, if set: also round the weights to nearest (scales
                         * from their own ranges) and keep that when its output error,
                         * tr(dW H dW^T), is not larger; *rtn_out says which was kept
                         * (1: round-to-nearest) */
    const double *H_check; /* that comparison on these rows' Gram matrix (K x K, upper
                            * triangle read): rows the fit did not see, so that a fit
                            * of few rows cannot pass by fitting them. NULL: the rows
                            * of g, as given */
    double *check_out;  /* if set, with rtn_out: [0] GPTQ's output error, [1] round-to-nearest's */
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
 * consumed; its upper triangle is read). Pruned weights become exactly 0;
 * quantized ones exact grid values. */
hpcz_status hpcz_obc_run(double *W, int64_t rows, int64_t K, hpcz_gram *g, const hpcz_obc_opts *o,
                         hpcz_error *err);

/* tr((A - B) H (A - B)^T) for rows x K weights and a full symmetric H; -1
 * out of memory */
double hpcz_obc_output_error(const double *A, const double *B, const double *H, int64_t rows, int64_t K);
/* The scales and zero points round-to-nearest uses for W0 (rows x K): one
 * per row and group of o->group columns (o->group <= 0: per row), from their
 * min/max range, or with o->clip the range searched as GPTQ does, weighted
 * by hd (the Gram matrix's diagonal). sc, zp: [rows * groups per row]. */
void hpcz_obc_rtn_scales(const double *W0, int64_t rows, int64_t K, const double *hd, const hpcz_obc_opts *o,
                         float *sc, int *zp);

#endif
