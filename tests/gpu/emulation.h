/*
 * emulation.h - host emulations of the cuda backend's kernels, for the gpu
 * tests on machines without a GPU (hpcz_cuda_set_impl(&emulation)).
 */
#ifndef HPCZ_TEST_GPU_EMULATION_H
#define HPCZ_TEST_GPU_EMULATION_H

#include <math.h>

#include "runtime/cuda/cuda_api.h"

/* Host emulations of the kernels (the same arithmetic: one fmaf chain in k
 * order per GEMM output, the shared per-element conv/pool code), installed
 * with hpcz_cuda_set_impl: the specs then check the backend's dispatch,
 * shapes and operand mapping (cuda_ops.c) without a GPU. */
static int emu_calls;

static int emu_sgemm(const hpcz_cuda_gemm *g, const float *a, const float *b, float *c)
{
    emu_calls++;
    for (int64_t z = 0; z < g->batch; z++)
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                const float *az = a + z * g->sa, *bz = b + z * g->sb;
                float acc = 0;
                for (int64_t p = 0; p < g->k; p++)
                    acc = fmaf(g->ta ? az[p * g->lda + i] : az[i * g->lda + p],
                               g->tb ? bz[j * g->ldb + p] : bz[p * g->ldb + j], acc);
                float *cz = c + z * g->sc + i * g->ldc + j;
                *cz = g->beta != 0.0f ? g->alpha * acc + g->beta * *cz : g->alpha * acc;
            }
    return 0;
}

static int emu_unary(int op, const float *x, float *y, int64_t n)
{
    emu_calls++;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        switch (op) {
        case HPCZ_CU_RELU: y[i] = v > 0.0f ? v : 0.0f; break;
        case HPCZ_CU_SIGMOID: y[i] = 1.0f / (1.0f + expf(-v)); break;
        case HPCZ_CU_TANH: y[i] = tanhf(v); break;
        case HPCZ_CU_ERF: y[i] = erff(v); break;
        case HPCZ_CU_GELU: y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
        case HPCZ_CU_EXP: y[i] = expf(v); break;
        case HPCZ_CU_ABS: y[i] = fabsf(v); break;
        case HPCZ_CU_NEG: y[i] = -v; break;
        default: y[i] = sqrtf(v); break;
        }
    }
    return 0;
}

static int emu_binary(int op, int ndim, const int64_t *dims, const int64_t *stra,
                      const int64_t *strb, const float *a, int64_t na, const float *b, int64_t nb,
                      float *y)
{
    emu_calls++;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= dims[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t oa = hpcz_cuda_bcast_offset(i, ndim, dims, stra);
        int64_t ob = hpcz_cuda_bcast_offset(i, ndim, dims, strb);
        if (oa >= na || ob >= nb)
            return -1; /* out of the operand: a mapping bug */
        float u = a[oa], v = b[ob];
        y[i] = op == HPCZ_CU_ADD ? u + v : op == HPCZ_CU_SUB ? u - v : op == HPCZ_CU_MUL ? u * v
                                                                                          : u / v;
    }
    return 0;
}

static int emu_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    emu_calls++;
    for (int64_t r = 0; r < rows; r++) {
        float m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++)
            m = fmaxf(m, x[r * cols + j]);
        for (int64_t j = 0; j < cols; j++)
            sum += (y[r * cols + j] = expf(x[r * cols + j] - m));
        for (int64_t j = 0; j < cols; j++)
            y[r * cols + j] *= 1.0f / sum;
    }
    return 0;
}

static int emu_conv2d(const hpcz_cuda_conv *g, const float *x, const float *w, const float *bias,
                      float *y)
{
    emu_calls++;
    for (int64_t i = 0; i < g->n * g->m * g->oh * g->ow; i++)
        y[i] = hpcz_cuda_conv_at(g, x, w, bias, i);
    return 0;
}

static int emu_pool2d(const hpcz_cuda_pool *g, const float *x, float *y)
{
    emu_calls++;
    for (int64_t i = 0; i < g->n * g->c * g->oh * g->ow; i++)
        y[i] = hpcz_cuda_pool_at(g, x, i);
    return 0;
}

static int emu_quantize(const float *x, void *y, int64_t n, float s, int32_t zp, int u8)
{
    emu_calls++;
    for (int64_t i = 0; i < n; i++)
        hpcz_cuda_quant_at(x, y, i, s, zp, u8);
    return 0;
}

static int emu_dequantize(const void *x, float *y, int64_t n, float s, int32_t zp, int u8)
{
    emu_calls++;
    for (int64_t i = 0; i < n; i++)
        y[i] = hpcz_cuda_dequant_at(x, i, s, zp, u8);
    return 0;
}

static int emu_layernorm(const float *x, const float *scale, const float *bias, float *y,
                         int64_t rows, int64_t cols, float eps)
{
    emu_calls++;
    for (int64_t r = 0; r < rows; r++)
        hpcz_cuda_layernorm_row(x + r * cols, scale, bias, y + r * cols, cols, eps);
    return 0;
}

static const hpcz_cuda_impl emulation = {emu_sgemm,  emu_unary,    emu_binary,
                                         emu_softmax, emu_conv2d,  emu_pool2d,
                                         emu_quantize, emu_dequantize, emu_layernorm};

#endif
