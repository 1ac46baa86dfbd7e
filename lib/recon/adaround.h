/*
 * adaround.h - AdaRound (Nagel et al. 2020): each weight of a layer rounded
 * up or down as the layer's inputs need, learnt on their Gram matrix. See
 * adaround.c.
 */
#ifndef HPCZ_ADAROUND_H
#define HPCZ_ADAROUND_H

#include "obc.h"

typedef struct hpcz_adaround_opts {
    int iters;     /* Adam steps (fixed: the same bytes every run) */
    double reg;    /* weight of the rounding regulariser against the output error (as a share of
                    * round-to-nearest's) */
    double lr;     /* Adam's step */
    double damp;   /* ridge added to the Gram matrix, as hpcz_obc_opts.damp (plus its shrinkage) */
    int gptq;      /* hpcz_adaround_layer without fixed scales: GPTQ is a candidate too */
} hpcz_adaround_opts;

/* The defaults (hpcz_adaround_opts_init): 300 steps, reg 30, lr 0.05, damp 0.01, GPTQ a candidate. */
void hpcz_adaround_opts_init(hpcz_adaround_opts *ao);

/* Rounds W (rows x K, row-major, double) in place onto the grid of the
 * scales sc and zero points zp, one per row and group of `group` columns
 * (group <= 0: one per row; ng groups a row), codes within [qmin, qmax]:
 * each weight goes to the grid value below or above it, whichever set of
 * choices makes tr(dW H dW^T) least, with dW the rounding error and H the
 * symmetric K x K Gram matrix of `nrows` input rows (read, not changed).
 * Weights marked in `zero` (rows x K, or NULL) become 0; weights outside
 * the grid's range clip. *rel_out, if set: the output error reached on H
 * (with the ridge) as a share of round-to-nearest's. */
hpcz_status hpcz_adaround_round(double *W, int64_t rows, int64_t K, const double *H, uint64_t nrows,
                                const float *sc, const int *zp, int64_t group, int64_t ng, int qmin, int qmax,
                                const unsigned char *zero, const hpcz_adaround_opts *ao, double *rel_out,
                                hpcz_error *err);

/* One layer: AdaRound (scales from round-to-nearest's, hpcz_obc_rtn_scales,
 * or the fixed per-row `fixed` with zero point 0) against round-to-nearest on
 * the same grid and, without `fixed` and with ao->gptq, GPTQ (hpcz_obc_run with o, which
 * consumes g's Gram matrix and itself keeps round-to-nearest where closer):
 * the one of least output error on o->H_check (full, symmetric; NULL: on g)
 * stays in W, its scales in o->scales_out / o->zps_out (with `fixed`: left
 * as the caller set them). g->H: full and symmetric. *kept: 0 AdaRound, 1
 * round-to-nearest, 2 GPTQ; e3: their output errors (GPTQ's 0 with fixed). */
hpcz_status hpcz_adaround_layer(double *W, int64_t rows, int64_t K, hpcz_gram *g, const hpcz_obc_opts *o,
                                const float *fixed, const hpcz_adaround_opts *ao, int *kept, double e3[3],
                                hpcz_error *err);

/* A layer of a static int8 model whose codes AdaRound redoes with the
 * scale and range quantize-static chose for it. */
typedef struct hpcz_adaround_fixed {
    hpcz_node *node;   /* in the model measured (float weights, on entry the original ones) */
    float *scales;     /* one per output channel */
    int qmin, qmax;
    int done;          /* set: the weights in the model are AdaRound's (or round-to-nearest's), on the grid */
} hpcz_adaround_fixed;

/* Runs the layers of fx (each with a constant float weight in m) through
 * the calibration data in ctx as GPTQ does, rounding each with
 * hpcz_adaround_layer against round-to-nearest at its fixed scales; the
 * weights are written back into m on their grid (float). lib/recon/reconstruct.c */
hpcz_status hpcz_recon_adaround_fixed(hpcz_model *m, hpcz_adaround_fixed *fx, size_t n,
                                      const hpcz_adaround_opts *ao, hpcz_pass_ctx *ctx, hpcz_error *err);

/* Static int8: m is quantize-static's output, fl the float model it
 * quantized (same node names). Each int8 Conv/Gemm/MatMul weight of m (int8,
 * per channel, zero point 0) is rounded again by AdaRound, measured on the
 * inputs m's layers see (activations through their QuantizeLinear /
 * DequantizeLinear, the layers before already rounded) with the scales and
 * ranges m has; only the int8 codes change. */
hpcz_status hpcz_adaround_static(hpcz_model *m, const hpcz_model *fl, const hpcz_adaround_opts *ao,
                                 hpcz_pass_ctx *ctx, hpcz_error *err);

#endif
