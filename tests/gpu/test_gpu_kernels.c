/*
 * test_gpu_kernels.c - the cuda backend against the cpu backend, op by op,
 * on seeded random inputs (one-node models, tests/runtime/op_model.h): the
 * error normalised by the cpu result's magnitude is compared with a per-op
 * bound. Ops the GPU declines (shapes, attributes) go through the cpu
 * fallback and must match too. Then the calibration observers (min/max and
 * the 2048-bin |x| histogram) against calib.c's algorithm: exactly equal.
 *
 * The host-side checks run everywhere: broadcast index math, the conv and
 * pool kernels' per-element code against the cpu backend, and every spec on
 * the cuda backend with host emulations of its kernels (dispatch, shapes,
 * operand mapping, fallbacks); without a
 * CUDA device the test then exits 77 (meson: skipped) with the reason.
 * `test_gpu_kernels --bench-gemm` times the GEMM kernel instead.
 */
#include "hpcz.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/op_model.h"
#include "emulation.h"
#include "runtime/cuda/cuda_api.h"

static int failures, cases;

#define FAILF(...)                                                                                 \
    do {                                                                                           \
        failures++;                                                                                \
        printf("FAIL: ");                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

/* hpcz_cuda_bcast_offset (the binary kernel's index math, compiled for the
 * host too) against an odometer over the output's multi-index. */
static void check_bcast_offsets(void)
{
    static const struct {
        int nd;
        int64_t dims[4], sa[4];
    } t[] = {
        {3, {2, 3, 4}, {12, 4, 1}}, {3, {2, 3, 4}, {0, 1, 0}}, {4, {5, 1, 6, 7}, {42, 0, 7, 1}},
        {2, {7, 9}, {0, 0}},        {1, {13}, {1}},            {4, {2, 3, 1, 5}, {0, 5, 0, 1}},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        cases++;
        int64_t idx[4] = {0}, n = 1, bad = -1;
        for (int d = 0; d < t[k].nd; d++)
            n *= t[k].dims[d];
        for (int64_t i = 0; i < n; i++) {
            int64_t want = 0;
            for (int d = 0; d < t[k].nd; d++)
                want += idx[d] * t[k].sa[d];
            if (hpcz_cuda_bcast_offset(i, t[k].nd, t[k].dims, t[k].sa) != want && bad < 0)
                bad = i;
            for (int d = t[k].nd - 1; d >= 0 && ++idx[d] == t[k].dims[d]; d--)
                idx[d] = 0;
        }
        if (bad >= 0)
            FAILF("broadcast offsets, case %zu: element %lld", k, (long long)bad);
    }
}

static bool run(hpcz_model *m, const char *backend, hpcz_array *ins, hpcz_array *out,
                hpcz_error *err)
{
    hpcz_plan_opts po = {.threads = 1, .backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return false;
    bool ok = hpcz_plan_run(p, ins, out, err) == HPCZ_OK;
    hpcz_plan_free(p);
    return ok;
}

#define S4(...) {__VA_ARGS__}
#define T_ACC 2e-5 /* sums of up to a few thousand products, another order */
#define T_EW 4e-6  /* elementwise: CUDA's expf/tanhf/erff are within 2 ulp */

/* The conv and pool kernels' per-element code (hpcz_cuda_conv_at,
 * hpcz_cuda_pool_at), run on the host, against the cpu backend: checks the
 * kernels' index math and window rules on any machine. */
typedef struct emu_case {
    spec s;
    hpcz_cuda_conv conv; /* .m == 0: a pool */
    hpcz_cuda_pool pool;
} emu_case;

static const emu_case emu_cases[] = {
    {{"conv3x3 pad1", "Conv", 3, {S4(2, 8, 17, 19), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0, T_ACC,
      "pads=is:1,1,1,1", NULL},
     {2, 8, 17, 19, 16, 3, 3, 17, 19, 1, 1, 1, 1, 1, 1, 1}, {0}},
    {{"conv s2 dil2 pads 2,1,0,2", "Conv", 2, {S4(1, 4, 23, 20), S4(6, 4, 3, 3)}, {4, 4}, 0, T_ACC,
      "strides=is:2,2;dilations=is:2,2;pads=is:2,1,0,2", NULL},
     {1, 4, 23, 20, 6, 3, 3, 11, 10, 1, 2, 2, 2, 1, 2, 2}, {0}},
    {{"conv depthwise s2", "Conv", 3, {S4(1, 16, 15, 17), S4(16, 1, 3, 3), S4(16)}, {4, 4, 1}, 0,
      T_ACC, "group=i:16;strides=is:2,2;pads=is:1,1,1,1", NULL},
     {1, 16, 15, 17, 16, 3, 3, 8, 9, 16, 2, 2, 1, 1, 1, 1}, {0}},
    {{"conv grouped 4", "Conv", 2, {S4(1, 8, 12, 12), S4(8, 2, 3, 3)}, {4, 4}, 0, T_ACC,
      "group=i:4", NULL},
     {1, 8, 12, 12, 8, 3, 3, 10, 10, 4, 1, 1, 0, 0, 1, 1}, {0}},
    {{"maxpool 3x3 s2 pad1", "MaxPool", 1, {S4(2, 4, 15, 17)}, {4}, 0, 0,
      "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1", NULL},
     {0}, {2, 4, 15, 17, 8, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
    {{"avgpool ceil incl pad", "AveragePool", 1, {S4(2, 4, 16, 17)}, {4}, 0, T_EW,
      "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1;ceil_mode=i:1;count_include_pad=i:1",
      NULL},
     {0}, {2, 4, 16, 17, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1, 0}},
    {{"avgpool excl pad 2x3", "AveragePool", 1, {S4(2, 4, 15, 17)}, {4}, 0, T_EW,
      "kernel_shape=is:2,3;strides=is:1,2;pads=is:1,0,0,1", NULL},
     {0}, {2, 4, 15, 17, 15, 8, 2, 3, 1, 2, 1, 0, 0, 1, 1, 1, 0, 0, 0}},
};

static void check_emulated(const emu_case *e)
{
    cases++;
    const spec *s = &e->s;
    hpcz_model *m = build(s, NULL);
    hpcz_array ins[4], r = {0};
    memset(ins, 0, sizeof ins);
    hpcz_error err = {0};
    for (int i = 0; i < s->n_in; i++) {
        hpcz_array_alloc(&ins[i], HPCZ_DTYPE_FLOAT, s->ranks[i], s->shapes[i], &err);
        for (int64_t k = 0; k < ins[i].numel; k++)
            ((float *)ins[i].data)[k] = frand();
    }
    bool ok = run(m, "cpu", ins, &r, &err);
    int64_t n = e->conv.m ? e->conv.n * e->conv.m * e->conv.oh * e->conv.ow
                          : e->pool.n * e->pool.c * e->pool.oh * e->pool.ow;
    if (ok && n != r.numel) {
        ok = false;
        snprintf(err.msg, sizeof err.msg, "%lld outputs, the cpu gives %lld", (long long)n,
                 (long long)r.numel);
    }
    double maxref = 0, maxerr = 0;
    for (int64_t i = 0; ok && i < n; i++) {
        double y = ((const float *)r.data)[i];
        double x = e->conv.m ? hpcz_cuda_conv_at(&e->conv, ins[0].data, ins[1].data,
                                                 s->n_in > 2 ? ins[2].data : NULL, i)
                             : hpcz_cuda_pool_at(&e->pool, ins[0].data, i);
        maxref = fmax(maxref, fabs(y));
        maxerr = fmax(maxerr, fabs(x - y));
    }
    double nerr = maxerr / fmax(maxref, 1e-3);
    bool good = ok && nerr <= s->tol;
    failures += !good;
    printf("%s host emulation: %-28s normalized error %.2e (bound %.0e)%s%s\n",
           good ? "PASS" : "FAIL", s->label, nerr, s->tol, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 4; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

static void check(const spec *s)
{
    cases++;
    hpcz_model *m = build(s, NULL);
    hpcz_array ins[4];
    memset(ins, 0, sizeof ins);
    hpcz_error err = {0};
    for (int i = 0; i < s->n_in; i++) {
        hpcz_array_alloc(&ins[i], HPCZ_DTYPE_FLOAT, s->ranks[i], s->shapes[i], &err);
        float *d = ins[i].data;
        for (int64_t k = 0; k < ins[i].numel; k++)
            d[k] = s->positive ? fabsf(frand()) + 0.1f : frand();
    }
    hpcz_array g = {0}, r = {0};
    bool ok = run(m, "cuda", ins, &g, &err) && run(m, "cpu", ins, &r, &err);
    if (ok && (g.numel != r.numel || g.ndim != r.ndim || g.dtype != r.dtype)) {
        ok = false;
        snprintf(err.msg, sizeof err.msg, "shapes or types differ");
    }
    double nerr = !ok                         ? 0
                  : g.dtype == HPCZ_DTYPE_FLOAT ? norm_err(&g, &r)
                  : memcmp(g.data, r.data, g.nbytes) ? INFINITY /* integer outputs: the same bytes */
                                                     : 0;
    bool good = ok && nerr <= s->tol;
    if (!good)
        failures++;
    printf("%s %-40s %-8s normalized error %.2e (bound %.0e)%s%s\n", good ? "PASS" : "FAIL",
           s->label, s->op, nerr, s->tol, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 4; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

static const spec specs[] = {
    {"gemm transB bias", "Gemm", 3, {S4(33, 70), S4(50, 70), S4(50)}, {2, 2, 1}, 0, T_ACC,
     "transB=i:1", NULL},
    {"gemm transA alpha beta, 2-D C", "Gemm", 3, {S4(70, 33), S4(70, 50), S4(33, 50)}, {2, 2, 2},
     0, T_ACC, "transA=i:1;alpha=f:0.5;beta=f:2", NULL},
    {"gemm both transposed, C [M,1]", "Gemm", 3, {S4(40, 17), S4(23, 40), S4(17, 1)}, {2, 2, 2},
     0, T_ACC, "transA=i:1;transB=i:1", NULL},
    {"gemm no bias", "Gemm", 2, {S4(1, 300), S4(300, 50)}, {2, 2}, 0, T_ACC, NULL, NULL},
    {"gemm+relu fused", "Gemm", 3, {S4(16, 300), S4(300, 40), S4(40)}, {2, 2, 1}, 0, T_ACC, NULL,
     "Relu"},
    {"matmul 2-D large", "MatMul", 2, {S4(200, 300), S4(300, 500)}, {2, 2}, 0, T_ACC, NULL, NULL},
    /* 128x128-tile kernel (C at least 64 x 64): edge tiles, transposes, batches */
    {"gemm both transposed, 130x140x300", "Gemm", 3, {S4(300, 130), S4(140, 300), S4(140)},
     {2, 2, 1}, 0, T_ACC, "transA=i:1;transB=i:1", NULL},
    {"gemm transA, C [M,N], beta 0.5", "Gemm", 3, {S4(77, 200), S4(77, 129), S4(200, 129)},
     {2, 2, 2}, 0, T_ACC, "transA=i:1;beta=f:0.5", NULL},
    {"matmul batched 130x70x129", "MatMul", 2, {S4(2, 3, 130, 70), S4(2, 3, 70, 129)}, {4, 4},
     0, T_ACC, NULL, NULL},
    {"matmul batched, same batch", "MatMul", 2, {S4(2, 3, 17, 30), S4(2, 3, 30, 9)}, {4, 4}, 0,
     T_ACC, NULL, NULL},
    {"matmul batched A, 2-D B", "MatMul", 2, {S4(4, 65, 48), S4(48, 33)}, {3, 2}, 0, T_ACC, NULL,
     NULL},
    {"matmul 2-D A, batched B", "MatMul", 2, {S4(5, 48), S4(3, 48, 20)}, {2, 3}, 0, T_ACC, NULL,
     NULL},
    {"matmul bcast [3,1] x [4] (cpu fallback)", "MatMul", 2, {S4(3, 1, 17, 30), S4(4, 30, 9)},
     {4, 3}, 0, T_ACC, NULL, NULL},
    {"matmul 1-D B (cpu fallback)", "MatMul", 2, {S4(6, 30), S4(30)}, {2, 1}, 0, T_ACC, NULL, NULL},
    {"relu", "Relu", 1, {S4(3, 50, 70)}, {3}, 0, 0, NULL, NULL},
    {"sigmoid", "Sigmoid", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"tanh", "Tanh", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"exp", "Exp", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"erf", "Erf", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"gelu", "Gelu", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"gelu tanh (cpu fallback)", "Gelu", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, "approximate=s:tanh",
     NULL},
    {"abs", "Abs", 1, {S4(1000)}, {1}, 0, 0, NULL, NULL},
    {"neg", "Neg", 1, {S4(1000)}, {1}, 0, 0, NULL, NULL},
    {"sqrt", "Sqrt", 1, {S4(3, 50, 70)}, {3}, 1, T_EW, NULL, NULL},
    {"add bcast", "Add", 2, {S4(2, 16, 9, 9), S4(16, 1, 1)}, {4, 3}, 0, 0, NULL, NULL},
    {"add+relu fused", "Add", 2, {S4(2, 16, 9, 9), S4(2, 16, 9, 9)}, {4, 4}, 0, 0, NULL, "Relu"},
    {"mul bcast both", "Mul", 2, {S4(5, 1, 7), S4(1, 6, 7)}, {3, 3}, 0, 0, NULL, NULL},
    {"div long row", "Div", 2, {S4(300000), S4(300000)}, {1, 1}, 1, T_EW, NULL, NULL},
    {"sub scalar", "Sub", 2, {S4(40, 40), S4(0)}, {2, 0}, 0, 0, NULL, NULL},
    {"softmax last", "Softmax", 1, {S4(4, 7, 33)}, {3}, 0, T_EW, NULL, NULL},
    {"softmax last, 3000 wide", "Softmax", 1, {S4(3, 3000)}, {2}, 0, T_EW, NULL, NULL},
    {"softmax axis1 (cpu fallback)", "Softmax", 1, {S4(4, 7, 33)}, {3}, 0, T_EW, "axis=i:1", NULL},
    {"conv3x3 pad1", "Conv", 3, {S4(2, 8, 17, 19), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0, T_ACC,
     "pads=is:1,1,1,1", NULL},
    {"conv3x3 s2 dil2, uneven pads", "Conv", 2, {S4(1, 4, 23, 20), S4(6, 4, 3, 3)}, {4, 4}, 0,
     T_ACC, "strides=is:2,2;dilations=is:2,2;pads=is:2,1,0,2", NULL},
    {"conv grouped SAME_UPPER", "Conv", 3, {S4(1, 8, 12, 12), S4(8, 2, 3, 3), S4(8)}, {4, 4, 1},
     0, T_ACC, "group=i:4;auto_pad=s:SAME_UPPER", NULL},
    {"conv depthwise s2", "Conv", 3, {S4(1, 16, 15, 17), S4(16, 1, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_ACC, "group=i:16;strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"conv 1x1", "Conv", 3, {S4(2, 32, 14, 14), S4(64, 32, 1, 1), S4(64)}, {4, 4, 1}, 0, T_ACC,
     NULL, NULL},
    {"conv+relu fused", "Conv", 3, {S4(1, 8, 20, 20), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_ACC, "pads=is:1,1,1,1", "Relu"},
    {"conv 1-D (cpu fallback)", "Conv", 2, {S4(2, 3, 40, 0), S4(5, 3, 4, 0)}, {3, 3}, 0, T_ACC,
     "strides=is:3;pads=is:1,2", NULL},
    {"maxpool 3x3 s2 pad", "MaxPool", 1, {S4(2, 4, 15, 17)}, {4}, 0, 0,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"maxpool ceil dil2", "MaxPool", 1, {S4(1, 3, 16, 15)}, {4}, 0, 0,
     "kernel_shape=is:3,3;strides=is:2,2;dilations=is:2,2;ceil_mode=i:1", NULL},
    {"avgpool ceil incl pad", "AveragePool", 1, {S4(2, 4, 15, 17)}, {4}, 0, T_EW,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1;ceil_mode=i:1;count_include_pad=i:1",
     NULL},
    {"avgpool excl pad", "AveragePool", 1, {S4(2, 4, 15, 17)}, {4}, 0, T_EW,
     "kernel_shape=is:2,3;strides=is:1,2;pads=is:1,0,0,1", NULL},
    {"globalavgpool", "GlobalAveragePool", 1, {S4(2, 8, 13, 13)}, {4}, 0, T_EW, NULL, NULL},
    {"globalmaxpool", "GlobalMaxPool", 1, {S4(2, 8, 13, 13)}, {4}, 0, 0, NULL, NULL},
    {"quantize u8 per tensor", "QuantizeLinear", 2, {S4(3, 50, 70), S4(0)}, {3, 0}, 1, 0, NULL,
     NULL},
    {"transpose 0,2,3,1", "Transpose", 1, {S4(2, 3, 4, 5)}, {4}, 0, 0, "perm=is:0,2,3,1", NULL},
    {"transpose reversed (no perm)", "Transpose", 1, {S4(3, 7, 5)}, {3}, 0, 0, NULL, NULL},
    {"concat axis 1, three inputs", "Concat", 3, {S4(2, 3, 4), S4(2, 5, 4), S4(2, 1, 4)},
     {3, 3, 3}, 0, 0, "axis=i:1", NULL},
    {"concat axis -1", "Concat", 2, {S4(4, 6, 3), S4(4, 6, 2)}, {3, 3}, 0, 0, "axis=i:-1", NULL},
    {"concat axis 0", "Concat", 2, {S4(2, 6), S4(3, 6)}, {2, 2}, 0, 0, "axis=i:0", NULL},
    {"layernorm", "LayerNormalization", 3, {S4(4, 6, 64), S4(64), S4(64)}, {3, 1, 1}, 0, 1e-5,
     NULL, NULL},
    {"layernorm no bias, 384 wide", "LayerNormalization", 2, {S4(2, 7, 384), S4(384)}, {3, 1}, 0,
     1e-5, NULL, NULL},
    {"layernorm axis 1 (cpu fallback)", "LayerNormalization", 3, {S4(4, 6, 64), S4(6, 64),
     S4(6, 64)}, {3, 2, 2}, 0, 1e-5, "axis=i:1", NULL},
};

#define NBINS 2048

/* Q and DQ, int8 and uint8, against the cpu kernels' formula (quant.c),
 * rounding ties included: the same bytes / bits. */
static void check_qdq(void)
{
    enum { N = 100003 };
    static float x[N], y[N], want_y[N];
    static uint8_t q[N], want_q[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 101 == 0 ? 0.5f * (float)(i % 7 - 3) * 0.1f : frand() * 20.0f;
    for (int u8 = 0; u8 < 2; u8++) {
        cases++;
        float sc = 0.1f;
        int32_t zp = u8 ? 128 : -3;
        float lo = u8 ? 0.f : -128.f, hi = u8 ? 255.f : 127.f;
        for (int i = 0; i < N; i++) {
            float v = nearbyintf(x[i] / sc) + (float)zp;
            v = v < lo ? lo : v > hi ? hi : v;
            want_q[i] = u8 ? (uint8_t)v : (uint8_t)(int8_t)v;
        }
        for (int i = 0; i < N; i++) {
            int32_t qq = u8 ? want_q[i] : (int8_t)want_q[i];
            want_y[i] = (float)(qq - zp) * sc;
        }
        hpcz_cuda_qdq qd = {.n = N, .ch = 1, .inner = 1, .u8 = u8};
        uint8_t zb = (uint8_t)zp;
        void *dx = hpcz_cuda_malloc(sizeof x), *dq = hpcz_cuda_malloc(N), *dy = hpcz_cuda_malloc(sizeof y);
        void *ds = hpcz_cuda_malloc(4), *dz = hpcz_cuda_malloc(1);
        int bad = !dx || !dq || !dy || !ds || !dz || hpcz_cuda_h2d(dx, x, sizeof x) ||
                  hpcz_cuda_h2d(ds, &sc, 4) || hpcz_cuda_h2d(dz, &zb, 1) ||
                  hpcz_cuda_quantize(&qd, dx, ds, dz, dq) || hpcz_cuda_dequantize(&qd, dq, ds, dz, dy) ||
                  hpcz_cuda_d2h(q, dq, N) || hpcz_cuda_d2h(y, dy, sizeof y) || hpcz_cuda_sync();
        hpcz_cuda_free(dx);
        hpcz_cuda_free(dq);
        hpcz_cuda_free(dy);
        hpcz_cuda_free(ds);
        hpcz_cuda_free(dz);
        if (bad) {
            FAILF("Q/DQ %s: %s", u8 ? "uint8" : "int8", hpcz_cuda_error());
            continue;
        }
        if (memcmp(q, want_q, N) || memcmp(y, want_y, sizeof y))
            FAILF("Q/DQ %s differs from the cpu formula", u8 ? "uint8" : "int8");
        else
            printf("PASS QuantizeLinear/DequantizeLinear %s, %d values\n", u8 ? "uint8" : "int8", N);
    }
}

static void check_observers(void)
{
    static const int64_t sizes[] = {1, 7, 4096, 1000003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *x = malloc((size_t)n * sizeof *x);
        for (int64_t i = 0; i < n; i++) {
            float v = frand() * (float)(1 + k * 10);
            x[i] = i % 97 == 5 ? 0.0f : i % 1009 == 3 ? NAN : i % 2003 == 7 ? -INFINITY : v;
        }
        for (int pass = 0; pass < 2; pass++) { /* pass 1: all values beyond the range */
            cases++;
            float lo, hi, glo, ghi;
            cpu_minmax(x, n, &lo, &hi);
            double amax = fmax(-lo, hi) * (pass ? 0.25 : 1);
            double scale = amax > 0 ? NBINS / amax : 0;
            static uint64_t want[NBINS + 2], got[NBINS + 2];
            memset(want, 0, sizeof want);
            memset(got, 0, sizeof got);
            cpu_hist(x, n, scale, NBINS, want);
            void *dx = hpcz_cuda_malloc((size_t)n * sizeof *x);
            int bad = !dx || hpcz_cuda_h2d(dx, x, (size_t)n * sizeof *x) ||
                      hpcz_cuda_minmax(dx, n, &glo, &ghi) ||
                      hpcz_cuda_histogram(dx, n, scale, NBINS, got);
            hpcz_cuda_free(dx);
            if (bad) {
                FAILF("observers, %lld values: %s", (long long)n, hpcz_cuda_error());
                continue;
            }
            if (glo != lo || ghi != hi)
                FAILF("minmax of %lld values: GPU [%g, %g], CPU [%g, %g]", (long long)n, glo, ghi,
                      lo, hi);
            if (memcmp(got, want, sizeof got))
                FAILF("histogram of %lld values (scale %g) differs", (long long)n, scale);
            else
                printf("PASS observers, %lld values, scale %g\n", (long long)n, scale);
        }
        free(x);
    }
}

/* --bench-gemm: the GEMM kernel's throughput against the card's float32 FMA
 * peak (scripts/bench/gpu.sh), lines "gemm M N K MS GFLOPS PEAK_GFLOPS". */
static int bench_gemm(void)
{
    static const int64_t sz[][3] = {{1024, 1024, 1024}, {4096, 4096, 4096}, {32, 1536, 384},
                                    {4096, 384, 1536}};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        double ms;
        if (hpcz_cuda_sgemm_bench(sz[i][0], sz[i][1], sz[i][2], 10, &ms)) {
            printf("error gemm: %s\n", hpcz_cuda_error());
            return 1;
        }
        printf("gemm %lld %lld %lld %.4f %.1f %.1f\n", (long long)sz[i][0], (long long)sz[i][1],
               (long long)sz[i][2], ms, 2e-6 * (double)sz[i][0] * (double)sz[i][1] * (double)sz[i][2] / ms,
               hpcz_cuda_peak_gflops());
    }
    return 0;
}

static void check_specs(void)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        spec s = specs[i];
        check(&s);
    }
}

int main(int argc, char **argv)
{
    check_bcast_offsets();
    for (size_t i = 0; i < sizeof emu_cases / sizeof emu_cases[0]; i++)
        check_emulated(&emu_cases[i]);
    printf("-- the cuda backend with host emulations of its kernels\n");
    hpcz_cuda_set_impl(&emulation);
    check_specs();
    hpcz_cuda_set_impl(NULL);
    printf("(%d kernel calls emulated; the rest went to the cpu fallback)\n", emu_calls);
    if (emu_calls < 30) {
        failures++;
        printf("FAIL: the cuda backend called its kernels %d times, expected at least 30\n",
               emu_calls);
    }
    char msg[512];
    if (hpcz_cuda_open(0, msg, sizeof msg)) {
        printf("%d host checks, %d failed\n", cases, failures);
        printf("SKIP: %s\n", msg);
        return failures ? 1 : 77;
    }
    printf("device: %s\n", hpcz_cuda_device_name());
    if (argc > 1 && !strcmp(argv[1], "--bench-gemm"))
        return bench_gemm();
    printf("-- the cuda backend on the device\n");
    check_specs();
    check_qdq();
    check_observers();
    printf("%d cases, %d failed\n", cases, failures);
    hpcz_cuda_close();
    return failures ? 1 : 0;
}
