/*
 * emulation.h - host emulations of the cuda backend's kernels and memory,
 * for the gpu tests on machines without a GPU (hpcz_cuda_set_impl(&emulation)).
 *
 * Device memory is a separate address space here too: emu_malloc hands out
 * host blocks under a tag (bit 62) that makes the address non-canonical, so
 * a host kernel that reads device memory directly faults at once (ASan:
 * SEGV), and the emulated kernels take only tagged pointers (a host pointer
 * where device memory belongs aborts with a message). Copies and syncs are
 * counted (emu_count) so that tests can assert where data moves.
 */
#ifndef HPCZ_TEST_GPU_EMULATION_H
#define HPCZ_TEST_GPU_EMULATION_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/qgemm_tile.h"

#define EMU_TAG ((uintptr_t)1 << 62)

static int emu_calls; /* kernel launches */
static long emu_live;  /* device blocks allocated and not freed */
static struct {
    long h2d, d2h, syncs, allocs, frees;
    uint64_t h2d_bytes, d2h_bytes;
} emu_count;

/* The host block behind device pointer p (NULL stays NULL). */
static void *emu_dev(const void *p)
{
    if (!p)
        return NULL;
    if (!((uintptr_t)p & EMU_TAG)) {
        fprintf(stderr, "emulation: host pointer %p passed as device memory\n", p);
        abort();
    }
    return (void *)((uintptr_t)p - EMU_TAG);
}

static const void *emu_host(const void *p)
{
    if ((uintptr_t)p & EMU_TAG) {
        fprintf(stderr, "emulation: device pointer %p passed as host memory\n", p);
        abort();
    }
    return p;
}

static void *emu_malloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    emu_count.allocs += p != NULL;
    emu_live += p != NULL;
    return p ? (void *)((uintptr_t)p + EMU_TAG) : NULL;
}

static void emu_free(void *d)
{
    emu_count.frees += d != NULL;
    emu_live -= d != NULL;
    free(emu_dev(d));
}

static int emu_h2d(void *d, const void *h, size_t n)
{
    emu_count.h2d++;
    emu_count.h2d_bytes += n;
    if (n)
        memcpy(emu_dev(d), emu_host(h), n);
    return 0;
}

static int emu_d2h(void *h, const void *d, size_t n)
{
    emu_count.d2h++;
    emu_count.d2h_bytes += n;
    if (n)
        memcpy((void *)emu_host(h), emu_dev(d), n);
    return 0;
}

static int emu_sync(void)
{
    emu_count.syncs++;
    return 0;
}

static int emu_is_device(const void *p)
{
    return ((uintptr_t)p & EMU_TAG) != 0;
}

static int emu_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                      size_t height)
{
    emu_calls++;
    for (size_t r = 0; r < height; r++)
        memcpy((char *)emu_dev(dst) + r * dpitch, (const char *)emu_dev(src) + r * spitch, width);
    return 0;
}

/* The kernels: the same arithmetic as kernels.cu (one fmaf chain in k order
 * per GEMM output, the shared per-element code of cuda_api.h; float16
 * widened on load, rounded to nearest even once on store). */
static float emu_ld(const void *p, int64_t i, int f16)
{
    return f16 ? (float)((const _Float16 *)p)[i] : ((const float *)p)[i];
}

static void emu_st(void *p, int64_t i, float v, int f16)
{
    if (f16)
        ((_Float16 *)p)[i] = (_Float16)v;
    else
        ((float *)p)[i] = v;
}

static int emu_sgemm(const hpcz_cuda_gemm *g, const float *a, const float *b, float *c)
{
    emu_calls++;
    const void *av = emu_dev(a), *bv = emu_dev(b);
    void *cv = emu_dev(c);
    for (int64_t z = 0; z < g->batch; z++)
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                int64_t oa = z * g->sa, ob = z * g->sb, oc = z * g->sc + i * g->ldc + j;
                float acc = 0;
                for (int64_t p = 0; p < g->k; p++)
                    acc = fmaf(emu_ld(av, oa + (g->ta ? p * g->lda + i : i * g->lda + p), g->f16),
                               emu_ld(bv, ob + (g->tb ? j * g->ldb + p : p * g->ldb + j), g->f16),
                               acc);
                emu_st(cv, oc,
                       g->beta != 0.0f ? g->alpha * acc + g->beta * emu_ld(cv, oc, g->f16)
                                       : g->alpha * acc,
                       g->f16);
            }
    return 0;
}

static int emu_unary(int op, const float *x, float *y, int64_t n)
{
    emu_calls++;
    int f16 = (op & HPCZ_CU_F16) != 0;
    const void *xv = emu_dev(x);
    void *yv = emu_dev(y);
    for (int64_t i = 0; i < n; i++) {
        float v = emu_ld(xv, i, f16), r;
        switch (op & ~HPCZ_CU_F16) {
        case HPCZ_CU_RELU: r = v > 0.0f ? v : 0.0f; break;
        case HPCZ_CU_SIGMOID: r = 1.0f / (1.0f + expf(-v)); break;
        case HPCZ_CU_TANH: r = tanhf(v); break;
        case HPCZ_CU_ERF: r = erff(v); break;
        case HPCZ_CU_GELU: r = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
        case HPCZ_CU_EXP: r = expf(v); break;
        case HPCZ_CU_ABS: r = fabsf(v); break;
        case HPCZ_CU_NEG: r = -v; break;
        default: r = sqrtf(v); break;
        }
        emu_st(yv, i, r, f16);
    }
    return 0;
}

static int emu_binary(int op, int ndim, const int64_t *dims, const int64_t *stra,
                      const int64_t *strb, const float *a, int64_t na, const float *b, int64_t nb,
                      float *y)
{
    emu_calls++;
    int f16 = (op & HPCZ_CU_F16) != 0;
    op &= ~HPCZ_CU_F16;
    const void *av = emu_dev(a), *bv = emu_dev(b);
    void *yv = emu_dev(y);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= dims[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t oa = hpcz_cuda_bcast_offset(i, ndim, dims, stra);
        int64_t ob = hpcz_cuda_bcast_offset(i, ndim, dims, strb);
        if (oa >= na || ob >= nb)
            return -1; /* out of the operand: a mapping bug */
        float u = emu_ld(av, oa, f16), v = emu_ld(bv, ob, f16);
        emu_st(yv, i,
               op == HPCZ_CU_FIRST ? u
               : op == HPCZ_CU_ADD ? u + v
               : op == HPCZ_CU_SUB ? u - v
               : op == HPCZ_CU_MUL ? u * v
                                   : u / v,
               f16);
    }
    return 0;
}

static int emu_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    emu_calls++;
    x = emu_dev(x);
    y = emu_dev(y);
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
    x = emu_dev(x);
    w = emu_dev(w);
    bias = emu_dev(bias);
    y = emu_dev(y);
    for (int64_t i = 0; i < g->n * g->m * g->oh * g->ow; i++)
        y[i] = hpcz_cuda_conv_at(g, x, w, bias, i);
    return 0;
}

static int emu_pool2d(const hpcz_cuda_pool *g, const void *x, void *y)
{
    emu_calls++;
    x = emu_dev(x);
    y = emu_dev(y);
    for (int64_t i = 0; i < g->n * g->c * g->oh * g->ow; i++)
        if (g->q8)
            hpcz_cuda_maxpool8_at(g, x, y, i);
        else
            ((float *)y)[i] = hpcz_cuda_pool_at(g, x, i);
    return 0;
}

static int emu_quantize(const hpcz_cuda_qdq *q, const float *x, const float *s, const void *zp,
                        void *y)
{
    emu_calls++;
    x = emu_dev(x);
    s = emu_dev(s);
    zp = emu_dev(zp);
    y = emu_dev(y);
    for (int64_t i = 0; i < q->n; i++)
        hpcz_cuda_quant_at(q, x, s, zp, y, i);
    return 0;
}

static int emu_dequantize(const hpcz_cuda_qdq *q, const void *x, const float *s, const void *zp,
                          float *y)
{
    emu_calls++;
    x = emu_dev(x);
    s = emu_dev(s);
    zp = emu_dev(zp);
    y = emu_dev(y);
    for (int64_t i = 0; i < q->n; i++)
        y[i] = hpcz_cuda_dequant_at(q, x, s, zp, i);
    return 0;
}

static int emu_layernorm(const float *x, const float *scale, const float *bias, float *y,
                         int64_t rows, int64_t cols, float eps)
{
    emu_calls++;
    x = emu_dev(x);
    scale = emu_dev(scale);
    bias = emu_dev(bias);
    y = emu_dev(y);
    for (int64_t r = 0; r < rows; r++)
        hpcz_cuda_layernorm_row(x + r * cols, scale, bias, y + r * cols, cols, eps);
    return 0;
}

static int emu_act(int kind, float a, float b, float *y, int64_t n)
{
    emu_calls++;
    y = emu_dev(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = hpcz_cuda_act_at(kind, a, b, y[i]);
    return 0;
}

static int emu_resize_nearest(const hpcz_cuda_resize *r, const float *x, float *y)
{
    emu_calls++;
    x = emu_dev(x);
    y = emu_dev(y);
    int64_t total = 1;
    for (int d = 0; d < r->ndim; d++)
        total *= r->out[d];
    for (int64_t i = 0; i < total; i++)
        y[i] = x[hpcz_cuda_resize_at(r, i)];
    return 0;
}

static int emu_resize_interp(const hpcz_cuda_interp *r, const int64_t *idx, const float *w,
                             const float *x, float *y)
{
    emu_calls++;
    idx = emu_dev(idx);
    w = emu_dev(w);
    x = emu_dev(x);
    y = emu_dev(y);
    int64_t total = 1;
    for (int d = 0; d < r->ndim; d++)
        total *= r->out[d];
    for (int64_t i = 0; i < total; i++)
        y[i] = hpcz_cuda_interp_at(r, idx, w, x, i);
    return 0;
}

static int emu_convert(const void *x, void *y, int64_t n, int to_f16)
{
    emu_calls++;
    x = emu_dev(x);
    y = emu_dev(y);
    for (int64_t i = 0; i < n; i++)
        emu_st(y, i, emu_ld(x, i, !to_f16), to_f16);
    return 0;
}

static int emu_batchnorm(const float *x, const float *scale, const float *bias, const float *mean,
                         const float *var, float *y, int64_t n, int64_t c, int64_t inner,
                         float eps)
{
    emu_calls++;
    x = emu_dev(x);
    scale = emu_dev(scale);
    bias = emu_dev(bias);
    mean = emu_dev(mean);
    var = emu_dev(var);
    y = emu_dev(y);
    for (int64_t i = 0; i < n * c * inner; i++)
        y[i] = hpcz_cuda_batchnorm_at(x, scale, bias, mean, var, c, inner, eps, i);
    return 0;
}

/* The int8 GEMM as the device runs it: the tiles of qgemm_tile.h (dp4a in
 * C), or one output at a time (hpcz_cuda_qmm_at) for few channels per
 * group. */
static int emu_qgemm(const hpcz_cuda_qmm *g, const void *x, const int8_t *w, const int32_t *bias,
                     const float *mult, const float *bf, void *y)
{
    emu_calls++;
    const uint8_t *xv = emu_dev(x);
    w = emu_dev(w);
    bias = emu_dev(bias);
    mult = emu_dev(mult);
    bf = emu_dev(bf);
    void *yv = emu_dev(y);
    int64_t mg = g->m / g->groups;
    if (mg < QG_DIRECT_MG) {
        for (int64_t b = 0; b < g->batch; b++)
            for (int64_t m = 0; m < g->m; m++)
                for (int64_t n = 0; n < g->osize; n++)
                    hpcz_cuda_qmm_at(g, xv, w, bias, mult, bf, yv, b, m, n);
        return 0;
    }
    /* the device's blocks, their threads one after another between barriers */
    static qg_smem sm;
    static int32_t acc[QG_THREADS][4][4];
    for (int64_t z = 0; z < g->batch * g->groups; z++)
        for (int64_t m0 = 0; m0 < mg; m0 += QG_BM)
            for (int64_t n0 = 0; n0 < g->osize; n0 += QG_BN) {
                memset(acc, 0, sizeof acc);
                for (int64_t k0 = 0; k0 < g->kp; k0 += QG_BK) {
                    for (int t = 0; t < QG_THREADS; t++)
                        qg_load(g, xv, w, z, m0, n0, k0, t, &sm);
                    for (int t = 0; t < QG_THREADS; t++)
                        qg_mac(&sm, t, acc[t]);
                }
                for (int t = 0; t < QG_THREADS; t++)
                    qg_store(g, bias, mult, bf, yv, z, m0, n0, t, acc[t]);
            }
    return 0;
}

static int emu_lut(const uint8_t *lut, const uint8_t *x, uint8_t *y, int64_t n)
{
    emu_calls++;
    lut = emu_dev(lut);
    x = emu_dev(x);
    y = emu_dev(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = lut[x[i]];
    return 0;
}

static int emu_qadd(const hpcz_cuda_qadd *q, const void *a, const void *b, void *y)
{
    emu_calls++;
    a = emu_dev(a);
    b = emu_dev(b);
    y = emu_dev(y);
    for (int64_t i = 0; i < q->n; i++)
        hpcz_cuda_qadd_at(q, a, b, y, i);
    return 0;
}

/* calib.c's statistics, written out plainly (its scalar path): the
 * observers' reference, and their emulation. */
static void cpu_minmax(const float *x, int64_t n, float *lo, float *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            *lo = x[i] < *lo ? x[i] : *lo;
            *hi = x[i] > *hi ? x[i] : *hi;
        }
}

static void cpu_hist(const float *x, int64_t n, double scale, int bins, uint64_t *h)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v)) {
            h[bins + 1]++;
        } else if (v == 0.0f) {
            h[bins]++;
        } else {
            int b = (int)(fabs(v) * scale);
            h[b >= bins ? bins - 1 : b]++;
        }
    }
}

static int emu_minmax(const float *x, int64_t n, float *lo, float *hi)
{
    emu_calls++;
    cpu_minmax(emu_dev(x), n, lo, hi);
    return 0;
}

static int emu_histogram(const float *x, int64_t n, double scale, int bins, uint64_t *h)
{
    emu_calls++;
    cpu_hist(emu_dev(x), n, scale, bins, h);
    return 0;
}

static const hpcz_cuda_impl emulation = {
    .malloc = emu_malloc,       .free = emu_free,
    .h2d = emu_h2d,             .d2h = emu_d2h,
    .sync = emu_sync,           .is_device = emu_is_device,
    .copy2d = emu_copy2d,
    .sgemm = emu_sgemm,         .unary = emu_unary,
    .binary = emu_binary,       .softmax = emu_softmax,
    .conv2d = emu_conv2d,       .pool2d = emu_pool2d,
    .quantize = emu_quantize,   .dequantize = emu_dequantize,
    .layernorm = emu_layernorm, .act = emu_act,
    .resize_nearest = emu_resize_nearest, .convert = emu_convert,
    .batchnorm = emu_batchnorm, .minmax = emu_minmax,
    .histogram = emu_histogram, .qgemm = emu_qgemm,
    .resize_interp = emu_resize_interp, .lut = emu_lut, .qadd = emu_qadd,
};

#endif
