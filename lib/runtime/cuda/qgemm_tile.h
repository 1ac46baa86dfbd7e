/*
 * qgemm_tile.h - the int8 GEMM's tile steps (kernels.cu qgemm_kernel), as
 * host+device functions so that the host emulation (tests/gpu/emulation.h)
 * runs the same tiling, shared-memory layout and dp4a sums as the device:
 *
 *   for each k step of QG_BK bytes:  every thread: qg_load; barrier;
 *                                    every thread: qg_mac; barrier;
 *   every thread: qg_store
 *
 * A block computes QG_BM channels (of one group) x QG_BN columns with
 * QG_THREADS threads of 4x4 outputs; thread `tid` loads weight word (row
 * tid % QG_BM, word tid / QG_BM of the step) and x word (column
 * tid % QG_BN, the same word: four consecutive k of one column).
 */
#ifndef HPCZ_CUDA_QGEMM_TILE_H
#define HPCZ_CUDA_QGEMM_TILE_H

#include "cuda_api.h"

#define QG_BM 64
#define QG_BN 64
#define QG_BKW 4 /* words of four k per step */
#define QG_BK (4 * QG_BKW)
#define QG_THREADS 256

typedef struct qg_smem {
    int32_t w[QG_BKW][QG_BM];
    uint32_t x[QG_BKW][QG_BN];
} qg_smem;

/* c + the four products of a's unsigned bytes and b's signed bytes
 * (dp4a.u32.s32 on the device). */
static inline HPCZ_CU_HD int32_t qg_dp4a(uint32_t a, int32_t b, int32_t c)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 610
    int32_t d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
#else
    uint32_t s = (uint32_t)c;
    for (int i = 0; i < 4; i++)
        s += ((a >> (8 * i)) & 255u) * (uint32_t)(int32_t)(int8_t)(uint8_t)((uint32_t)b >> (8 * i));
    return (int32_t)s;
#endif
}

/* Block (n tile bx, channel tile by, image-group z), k step from k0. */
static inline HPCZ_CU_HD void qg_load(const hpcz_cuda_qmm *g, const uint8_t *x, const int8_t *w,
                                      int64_t z, int64_t m0, int64_t n0, int64_t k0, int tid,
                                      qg_smem *sm)
{
    int64_t mg = g->m / g->groups, gi = z % g->groups;
    int lq = tid / QG_BM, lc = tid % QG_BM;
    int64_t mr = m0 + lc, kw = k0 + 4 * lq, nc = n0 + lc;
    sm->w[lq][lc] = mr < mg && kw < g->kp ? *(const int32_t *)(w + (gi * mg + mr) * g->kp + kw) : 0;
    uint32_t v = 0;
    if (nc < g->osize && kw < g->kp)
        for (int i = 0; i < 4; i++)
            v |= hpcz_cuda_qx_at(g, x, z, kw + i, nc) << (8 * i);
    sm->x[lq][lc] = v;
}

static inline HPCZ_CU_HD void qg_mac(const qg_smem *sm, int tid, int32_t acc[4][4])
{
    int tm = tid / 16, tn = tid % 16;
    for (int q = 0; q < QG_BKW; q++) {
        int32_t a[4];
        uint32_t b[4];
        for (int i = 0; i < 4; i++) {
            a[i] = sm->w[q][tm * 4 + i];
            b[i] = sm->x[q][tn * 4 + i];
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                acc[i][j] = qg_dp4a(b[j], a[i], acc[i][j]);
    }
}

static inline HPCZ_CU_HD void qg_store(const hpcz_cuda_qmm *g, const int32_t *bias,
                                       const float *mult, const float *bf, void *y, int64_t z,
                                       int64_t m0, int64_t n0, int tid, int32_t acc[4][4])
{
    int64_t mg = g->m / g->groups, gi = z % g->groups;
    int tm = tid / 16, tn = tid % 16;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int64_t ml = m0 + tm * 4 + i, n = n0 + tn * 4 + j;
            if (ml >= mg || n >= g->osize)
                continue;
            int64_t m = gi * mg + ml;
            int32_t t = (int32_t)((uint32_t)acc[i][j] + (uint32_t)bias[m]);
            int32_t q = hpcz_cuda_requant(g, t, mult[m], bf[m]);
            int64_t at = hpcz_cuda_qy_at(g, z / g->groups, m, n);
            if (g->ys8)
                ((int8_t *)y)[at] = (int8_t)q;
            else
                ((uint8_t *)y)[at] = (uint8_t)q;
        }
}

/* Channels per group below this: one thread per output (hpcz_cuda_qmm_at;
 * a depthwise convolution would use one of a tile's 64 rows). */
#define QG_DIRECT_MG 8

#endif
