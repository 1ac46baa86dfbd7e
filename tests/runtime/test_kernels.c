/*
 * test_kernels.c - the optimized CPU kernels against the "ref" backend's
 * naive kernels on random inputs, op by op (ggml test-backend-ops style):
 * the error is normalised by the reference's magnitude and compared with a
 * per-op bound (accumulating ops get more room than elementwise ones).
 * Also: the optimized result has the same bytes with 1 and 2 threads, and
 * with HPCZ_CPU_NO_AVX512=1 (the AVX2 kernels instead of the AVX-512 ones,
 * which take the same sums in the same order; on a CPU without AVX-512 both
 * runs take the AVX2 path and a line says so).
 */
#include "hpcz.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_model.h"
#include "runtime/rt.h"

static int failures, cases;

static bool run(hpcz_model *m, const char *backend, int threads, hpcz_array *ins, hpcz_array *out,
                hpcz_error *err)
{
    hpcz_plan_opts po = {.threads = threads, .backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return false;
    bool ok = hpcz_plan_run(p, ins, out, err) == HPCZ_OK;
    hpcz_plan_free(p);
    return ok;
}

/* ins[0 .. s->n_in): float arrays of the spec's shapes, uniform in [-1, 1)
 * (or positive, from 0.1, where the spec asks) from the seeded generator */
static void random_inputs(const spec *s, hpcz_array *ins)
{
    hpcz_error err = {0};
    for (int i = 0; i < s->n_in; i++) {
        hpcz_array_alloc(&ins[i], HPCZ_DTYPE_FLOAT, s->ranks[i], s->shapes[i], &err);
        float *d = ins[i].data;
        for (int64_t k = 0; k < ins[i].numel; k++)
            d[k] = s->positive ? fabsf(frand()) + 0.1f : frand();
    }
}

static void check(const spec *s)
{
    cases++;
    hpcz_array ins[4];
    memset(ins, 0, sizeof ins);
    hpcz_error err = {0};
    random_inputs(s, ins);
    hpcz_model *m = build(s, ins);
    hpcz_array a = {0}, b = {0}, r = {0}, n5 = {0};
    bool ok = run(m, "cpu", 1, ins, &a, &err) && run(m, "cpu", 2, ins, &b, &err) &&
              run(m, "ref", 1, ins, &r, &err);
    setenv("HPCZ_CPU_NO_AVX512", "1", 1);
    ok = ok && run(m, "cpu", 1, ins, &n5, &err);
    unsetenv("HPCZ_CPU_NO_AVX512");
    if (ok) {
        ok = a.numel == r.numel && a.nbytes == b.nbytes && !memcmp(a.data, b.data, a.nbytes);
        if (!ok)
            snprintf(err.msg, sizeof err.msg, "1 and 2 threads differ (or shapes differ)");
    }
    if (ok) {
        ok = a.nbytes == n5.nbytes && !memcmp(a.data, n5.data, a.nbytes);
        if (!ok)
            snprintf(err.msg, sizeof err.msg, "the AVX2 kernels (HPCZ_CPU_NO_AVX512) differ");
    }
    double nerr = ok ? norm_err(&a, &r) : 0;
    bool good = ok && nerr <= s->tol;
    if (!good)
        failures++;
    printf("%s %-28s %-12s normalized error %.2e (bound %.0e)%s%s\n", good ? "PASS" : "FAIL",
           s->label, s->op, nerr, s->tol, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 4; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&r);
    hpcz_array_release(&n5);
    hpcz_model_free(m);
}

#define S4(...) {__VA_ARGS__}
#define T_ACC 2e-5  /* sums of up to a few thousand products */
#define T_EW 1e-6   /* elementwise: float vs double evaluation */

static const spec specs[] = {
    {"conv3x3 pad1", "Conv", 3, {S4(2, 8, 17, 19), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0, T_ACC,
     "pads=is:1,1,1,1", NULL},
    {"conv3x3 s2 dil2", "Conv", 2, {S4(1, 4, 23, 20), S4(6, 4, 3, 3)}, {4, 4}, 0, T_ACC,
     "strides=is:2,2;dilations=is:2,2;pads=is:2,1,0,2", NULL},
    {"conv grouped", "Conv", 3, {S4(1, 8, 12, 12), S4(8, 2, 3, 3), S4(8)}, {4, 4, 1}, 0, T_ACC,
     "group=i:4;auto_pad=s:SAME_UPPER", NULL},
    {"conv depthwise s1", "Conv", 3, {S4(2, 16, 30, 31), S4(16, 1, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_ACC, "group=i:16;pads=is:1,1,1,1", NULL},
    {"conv depthwise 7x7 map", "Conv", 3, {S4(1, 24, 7, 7), S4(24, 1, 3, 3), S4(24)}, {4, 4, 1},
     0, T_ACC, "group=i:24;pads=is:1,1,1,1", NULL},
    /* 3x3 stride 2: the even/odd split planes, odd and even left pads */
    {"conv depthwise s2 3x3 pad 1", "Conv", 3, {S4(1, 8, 15, 17), S4(8, 1, 3, 3), S4(8)},
     {4, 4, 1}, 0, T_ACC, "group=i:8;strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"conv depthwise s2 3x3 pads 0,2,2,0 wide", "Conv", 2, {S4(1, 4, 9, 40), S4(4, 1, 3, 3)},
     {4, 4}, 0, T_ACC, "group=i:4;strides=is:2,2;pads=is:0,2,2,0", NULL},
    {"conv depthwise s2 5x5", "Conv", 2, {S4(1, 12, 29, 33), S4(12, 1, 5, 5)}, {4, 4}, 0, T_ACC,
     "group=i:12;strides=is:2,2;pads=is:2,2,2,2", NULL},
    /* stride 1 along W, not 3x3: four rows at a time, then the rest */
    {"conv depthwise s1 5x5 14x14", "Conv", 3, {S4(2, 24, 14, 14), S4(24, 1, 5, 5), S4(24)}, {4, 4, 1}, 0,
     T_ACC, "group=i:24;pads=is:2,2,2,2", "Relu"},
    {"conv depthwise s1 3x5 dilated", "Conv", 2, {S4(1, 8, 19, 23), S4(8, 1, 3, 5)}, {4, 4}, 0, T_ACC,
     "group=i:8;dilations=is:2,1;pads=is:2,2,2,2", NULL},
    {"conv depthwise s2,1 7x7", "Conv", 2, {S4(1, 6, 30, 9), S4(6, 1, 7, 7)}, {4, 4}, 0, T_ACC,
     "group=i:6;strides=is:2,1;pads=is:3,3,3,3", NULL},
    /* dwb_task on AVX-512 (channels in the lanes, blocks of 16): full and
     * partial last blocks, row bands (few blocks at 2 threads), strides,
     * dilation, asymmetric pads, a map wider than 16, the activation on the
     * rows of pixels (HardSwish, LeakyRelu) */
    {"conv dw lanes 5x5 14x14 hswish", "Conv", 3, {S4(1, 32, 14, 14), S4(32, 1, 5, 5), S4(32)},
     {4, 4, 1}, 0, T_ACC, "group=i:32;pads=is:2,2,2,2", "HardSwish"},
    {"conv dw lanes s2 40x37 bands", "Conv", 3, {S4(2, 16, 40, 37), S4(16, 1, 3, 3), S4(16)},
     {4, 4, 1}, 0, T_ACC, "group=i:16;strides=is:2,2;pads=is:0,1,2,1", "Relu"},
    {"conv dw lanes C40 dil2 partial", "Conv", 2, {S4(1, 40, 17, 23), S4(40, 1, 3, 3)}, {4, 4},
     0, T_ACC, "group=i:40;dilations=is:2,2;pads=is:2,1,2,3", "LeakyRelu"},
    {"conv dw lanes C72 7x7 5x5", "Conv", 3, {S4(1, 72, 7, 7), S4(72, 1, 5, 5), S4(72)},
     {4, 4, 1}, 0, T_ACC, "group=i:72;pads=is:2,2,2,2", NULL},
    {"conv dw lanes 3x7 s1,2 no pad", "Conv", 3, {S4(1, 16, 9, 70), S4(16, 1, 3, 7), S4(16)},
     {4, 4, 1}, 0, T_ACC, "group=i:16;strides=is:1,2", NULL},
    {"conv 1x1", "Conv", 3, {S4(2, 32, 14, 14), S4(64, 32, 1, 1), S4(64)}, {4, 4, 1}, 0, T_ACC,
     NULL, NULL},
    /* 1x1 with K <= 64 and M >= 32: the direct FMA kernel (pw_task), with
     * rows past the last multiple of 4, columns past the last multiple of 16 */
    {"conv 1x1 small K, M=37, relu fused", "Conv", 3, {S4(1, 20, 9, 15), S4(37, 20, 1, 1),
     S4(37)}, {4, 4, 1}, 0, T_ACC, NULL, "Relu"},
    /* the activation on pw_panel512's registers (an instance per kind),
     * against the AVX2 kernel's rt_act_apply (dc_task512's: act_specs) */
    {"conv 1x1 small K, hswish fused", "Conv", 3, {S4(1, 16, 11, 29), S4(34, 16, 1, 1), S4(34)},
     {4, 4, 1}, 0, T_ACC, NULL, "HardSwish"},
    {"conv 1x1 small K, clip fused", "Conv", 3, {S4(1, 24, 7, 40), S4(32, 24, 1, 1), S4(32)},
     {4, 4, 1}, 0, T_ACC, NULL, "Clip"},
    {"conv 1x1 small K, leaky fused", "Conv", 3, {S4(1, 9, 13, 13), S4(41, 9, 1, 1), S4(41)},
     {4, 4, 1}, 0, T_ACC, NULL, "LeakyRelu"},
    {"conv 1x1 small K, no bias, 130 columns", "Conv", 2, {S4(1, 7, 10, 13), S4(32, 7, 1, 1)},
     {4, 4}, 0, T_ACC, NULL, NULL},
    {"conv 1x1 14x14 K=96 (small map, masked tail)", "Conv", 3, {S4(1, 96, 14, 14),
     S4(40, 96, 1, 1), S4(40)}, {4, 4, 1}, 0, T_ACC, NULL, "Relu"},
    {"conv 3x3 s2 stem (im2col, K = 27)", "Conv", 3, {S4(1, 3, 30, 34), S4(32, 3, 3, 3), S4(32)},
     {4, 4, 1}, 0, T_ACC, "strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"conv 1x1 big (blocked gemm)", "Conv", 2, {S4(1, 64, 56, 56), S4(128, 64, 1, 1)}, {4, 4}, 0,
     T_ACC, NULL, NULL},
    {"conv 1-D", "Conv", 2, {S4(2, 3, 40, 0), S4(5, 3, 4, 0)}, {3, 3}, 0, T_ACC,
     "strides=is:3;pads=is:1,2", NULL},
    /* at most 16 output pixels: patches and dot products (nc_task): silero's
     * 4-wide encoder and 1->258 STFT, oww_embedding's 8x2 maps, one pixel,
     * K not a multiple of 8, fused activations, a batch, a channel tail */
    {"conv narrow 1-D 129->128 k3 on 4, relu", "Conv", 3, {S4(1, 129, 4, 0), S4(128, 129, 3, 0),
     S4(128)}, {3, 3, 1}, 0, T_ACC, "pads=is:1,1", "Relu"},
    {"conv narrow 1-D 1->258 k256 s128 (STFT)", "Conv", 2, {S4(1, 1, 576, 0), S4(258, 1, 256, 0)},
     {3, 3}, 0, T_ACC, "strides=is:128", NULL},
    {"conv narrow 8x2 1x3 pads, leaky", "Conv", 3, {S4(1, 96, 8, 2), S4(96, 96, 1, 3), S4(96)},
     {4, 4, 1}, 0, T_ACC, "pads=is:0,1,0,1", "LeakyRelu"},
    {"conv narrow 3x3 to one pixel, M=7", "Conv", 3, {S4(1, 6, 3, 3), S4(7, 6, 3, 3), S4(7)},
     {4, 4, 1}, 0, T_ACC, NULL, NULL},
    {"conv narrow batch 3, s2 dil2, K=18", "Conv", 2, {S4(3, 6, 9, 0), S4(13, 6, 3, 0)}, {3, 3}, 0,
     T_ACC, "strides=is:2;dilations=is:2;pads=is:2,1", NULL},
    /* 8 wide (the direct kernel declines): im2col rows as one shifted copy
     * of the plane, wrapped columns zeroed (3x1, then 1x3 with pads, dil 2) */
    {"conv 3x1 on 30x8 (im2col block copy)", "Conv", 3, {S4(1, 24, 30, 8), S4(32, 24, 3, 1),
     S4(32)}, {4, 4, 1}, 0, T_ACC, NULL, "LeakyRelu"},
    {"conv 1x3 pads dil 2 on 9x8", "Conv", 2, {S4(2, 12, 9, 8), S4(20, 12, 3, 3)}, {4, 4}, 0, T_ACC,
     "pads=is:1,2,2,2;dilations=is:1,2", NULL},
    {"conv 3-D", "Conv", 2, {{1, 2, 6, 7, 5}, {4, 2, 3, 3, 3}}, {5, 5}, 0, T_ACC,
     "pads=is:1,0,1,1,0,1", NULL},
    {"conv+relu fused", "Conv", 3, {S4(1, 8, 20, 20), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_ACC, "pads=is:1,1,1,1", "Relu"},
    {"depthwise+relu fused", "Conv", 2, {S4(1, 8, 20, 20), S4(8, 1, 3, 3)}, {4, 4}, 0, T_ACC,
     "group=i:8;pads=is:1,1,1,1", "Relu"},
    /* ConvTranspose: strides equal to the kernel, no pads (each output one
     * tap: written in place), and the scatter-add of everything else */
    {"convtranspose 2x2 s2 bias", "ConvTranspose", 3, {S4(1, 24, 13, 17), S4(24, 24, 2, 2), S4(24)},
     {4, 4, 1}, 0, T_ACC, "strides=is:2,2", NULL},
    {"convtranspose 2x3 s2,3 one channel", "ConvTranspose", 2, {S4(2, 8, 9, 5), S4(8, 1, 2, 3)},
     {4, 4}, 0, T_ACC, "strides=is:2,3", NULL},
    {"convtranspose 2x2 s2 grouped", "ConvTranspose", 3, {S4(1, 8, 6, 7), S4(8, 3, 2, 2), S4(12)},
     {4, 4, 1}, 0, T_ACC, "strides=is:2,2;group=i:2", NULL},
    {"convtranspose 2x2 s2 output_padding", "ConvTranspose", 2, {S4(1, 4, 6, 7), S4(4, 5, 2, 2)},
     {4, 4}, 0, T_ACC, "strides=is:2,2;output_padding=is:1,1", NULL},
    {"convtranspose 3x3 s2 pads", "ConvTranspose", 3, {S4(1, 6, 8, 9), S4(6, 4, 3, 3), S4(4)},
     {4, 4, 1}, 0, T_ACC, "strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"gemm transB bias", "Gemm", 3, {S4(33, 70), S4(50, 70), S4(50)}, {2, 2, 1}, 0, T_ACC,
     "transB=i:1", NULL},
    {"gemm transA alpha beta", "Gemm", 3, {S4(70, 33), S4(70, 50), S4(33, 50)}, {2, 2, 2}, 0,
     T_ACC, "transA=i:1;alpha=f:0.5;beta=f:2", NULL},
    /* one row: a GEMV (OpenBLAS's sgemm would pack all of B) */
    {"gemm 1 row transB bias", "Gemm", 3, {S4(1, 300), S4(50, 300), S4(50)}, {2, 2, 1}, 0, T_ACC,
     "transB=i:1", NULL},
    {"gemm 1 row transA alpha beta", "Gemm", 3, {S4(70, 1), S4(70, 50), S4(1, 50)}, {2, 2, 2}, 0,
     T_ACC, "transA=i:1;alpha=f:0.5;beta=f:2", NULL},
    {"matmul 1 row", "MatMul", 2, {S4(1, 70), S4(70, 40)}, {2, 2}, 0, T_ACC, NULL, NULL},
    {"matmul 1 row wide (column blocks)", "MatMul", 2, {S4(1, 1100), S4(1100, 4000)}, {2, 2}, 0,
     T_ACC, NULL, NULL},
    {"gemm 1 row transB wide (column blocks)", "Gemm", 2, {S4(1, 1100), S4(4000, 1100)}, {2, 2},
     0, T_ACC, "transB=i:1", NULL},
    {"gemm+relu fused", "Gemm", 3, {S4(16, 300), S4(300, 40), S4(40)}, {2, 2, 1}, 0, T_ACC, NULL,
     "Relu"},
    {"matmul batched bcast", "MatMul", 2, {S4(3, 1, 17, 30), S4(4, 30, 9)}, {4, 3}, 0, T_ACC, NULL,
     NULL},
    {"matmul 2-D large", "MatMul", 2, {S4(200, 300), S4(300, 500)}, {2, 2}, 0, T_ACC, NULL, NULL},
    /* attention's batched small products: one task per (batch, head) */
    {"matmul attention QK^T", "MatMul", 2, {S4(2, 4, 13, 8), S4(2, 4, 8, 13)}, {4, 4}, 0, T_ACC,
     NULL, NULL},
    {"matmul attention bcast A", "MatMul", 2, {S4(1, 4, 13, 8), S4(3, 1, 8, 13)}, {4, 4}, 0,
     T_ACC, NULL, NULL},
    {"matmul attention bcast B", "MatMul", 2, {S4(3, 4, 13, 8), S4(4, 8, 21)}, {4, 3}, 0, T_ACC,
     NULL, NULL},
    {"matmul 1-D A batched B", "MatMul", 2, {S4(30), S4(2, 3, 30, 9)}, {1, 4}, 0, T_ACC, NULL,
     NULL},
    {"matmul batched A 1-D B", "MatMul", 2, {S4(2, 5, 17, 30), S4(30)}, {4, 1}, 0, T_ACC, NULL,
     NULL},
    {"matmul batched large (blocked per entry)", "MatMul", 2, {S4(2, 130, 200), S4(2, 200, 180)},
     {3, 3}, 0, T_ACC, NULL, NULL},
    {"log", "Log", 1, {S4(3, 50, 70)}, {3}, 1, T_EW, NULL, NULL},
    {"relu", "Relu", 1, {S4(3, 50, 70)}, {3}, 0, 0, NULL, NULL},
    {"sigmoid", "Sigmoid", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"tanh", "Tanh", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"exp", "Exp", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"erf", "Erf", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"gelu", "Gelu", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"gelu tanh", "Gelu", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, "approximate=s:tanh", NULL},
    {"sqrt", "Sqrt", 1, {S4(3, 50, 70)}, {3}, 1, T_EW, NULL, NULL},
    {"reciprocal", "Reciprocal", 1, {S4(3, 50, 70)}, {3}, 1, T_EW, NULL, NULL},
    {"leakyrelu", "LeakyRelu", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, "alpha=f:0.1", NULL},
    {"hardsigmoid", "HardSigmoid", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"hardswish", "HardSwish", 1, {S4(3, 50, 70)}, {3}, 0, T_EW, NULL, NULL},
    {"add bcast", "Add", 2, {S4(2, 16, 9, 9), S4(16, 1, 1)}, {4, 3}, 0, T_EW, NULL, NULL},
    {"add+relu fused", "Add", 2, {S4(2, 16, 9, 9), S4(2, 16, 9, 9)}, {4, 4}, 0, T_EW, NULL, "Relu"},
    {"mul bcast both", "Mul", 2, {S4(5, 1, 7), S4(1, 6, 7)}, {3, 3}, 0, T_EW, NULL, NULL},
    {"div long row", "Div", 2, {S4(300000), S4(300000)}, {1, 1}, 1, T_EW, NULL, NULL},
    {"sub scalar", "Sub", 2, {S4(40, 40), S4(0)}, {2, 0}, 0, T_EW, NULL, NULL},
    {"max", "Max", 2, {S4(40, 40), S4(40)}, {2, 1}, 0, 0, NULL, NULL},
    {"prelu", "PRelu", 2, {S4(2, 8, 5, 5), S4(8, 1, 1)}, {4, 3}, 0, T_EW, NULL, NULL},
    {"softmax last", "Softmax", 1, {S4(4, 7, 33)}, {3}, 0, T_EW, NULL, NULL},
    {"softmax axis1", "Softmax", 1, {S4(4, 7, 33)}, {3}, 0, T_EW, "axis=i:1", NULL},
    {"logsoftmax", "LogSoftmax", 1, {S4(4, 7, 33)}, {3}, 0, T_EW, NULL, NULL},
    {"layernorm", "LayerNormalization", 3, {S4(4, 6, 64), S4(64), S4(64)}, {3, 1, 1}, 0, 1e-5,
     NULL, NULL},
    /* column pairs (2x2 s2, 1x2 s(1, 2)), odd widths: the last column unread */
    {"maxpool 2x2 s2 odd width", "MaxPool", 1, {S4(1, 5, 10, 9)}, {4}, 0, 0,
     "kernel_shape=is:2,2;strides=is:2,2", NULL},
    {"maxpool 1x2 s(1,2)", "MaxPool", 1, {S4(2, 3, 7, 33)}, {4}, 0, 0,
     "kernel_shape=is:1,2;strides=is:1,2", NULL},
    {"maxpool 3x3 s2 pad", "MaxPool", 1, {S4(2, 4, 15, 17)}, {4}, 0, 0,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"avgpool ceil incl pad", "AveragePool", 1, {S4(2, 4, 15, 17)}, {4}, 0, T_EW,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1;ceil_mode=i:1;count_include_pad=i:1",
     NULL},
    {"globalavgpool", "GlobalAveragePool", 1, {S4(2, 8, 13, 13)}, {4}, 0, T_EW, NULL, NULL},
    {"transpose", "Transpose", 1, {S4(3, 4, 5, 6)}, {4}, 0, 0, "perm=is:0,2,3,1", NULL},
    /* the last two axes swapped: 8 x 8 blocks and the edges */
    {"transpose last two, odd", "Transpose", 1, {S4(2, 3, 21, 13)}, {4}, 0, 0, "perm=is:0,1,3,2",
     NULL},
    {"transpose 2-D blocks only", "Transpose", 1, {S4(16, 24)}, {2}, 0, 0, "perm=is:1,0", NULL},
    {"transpose 2-D 257x97", "Transpose", 1, {S4(257, 97)}, {2}, 0, 0, NULL, NULL},
    {"reducemean", "ReduceMean", 1, {S4(3, 4, 5, 6)}, {4}, 0, T_EW, "axes=is:1,3", NULL},
    {"clip", "Clip", 1, {S4(3, 50, 70)}, {3}, 0, 0, NULL, NULL},
    /* Concat in 64 KiB pieces over the threads (a piece may span rows of
     * an input, or end inside one); GlobalAveragePool/MaxPool in tasks of
     * 16-plane groups with a scalar remainder */
    {"concat axis 1 big", "Concat", 3, {S4(1, 8, 96, 100), S4(1, 5, 96, 100), S4(1, 3, 96, 100)},
     {4, 4, 4}, 0, 0, "axis=i:1", NULL},
    {"concat axis 2 rows", "Concat", 2, {S4(2, 6, 50, 130), S4(2, 6, 77, 130)}, {4, 4}, 0, 0,
     "axis=i:2", NULL},
    {"globalavgpool 40 planes", "GlobalAveragePool", 1, {S4(1, 40, 60, 80)}, {4}, 0, T_ACC, NULL,
     NULL},
    {"globalmaxpool 35 planes", "GlobalMaxPool", 1, {S4(1, 35, 50, 70)}, {4}, 0, 0, NULL, NULL},
    /* gp16_512: 16 planes at a time (2 x 35 planes: full blocks and a rest;
     * 63 values each: a masked tail), the scalar loop's order per plane */
    {"globalavgpool 16 planes", "GlobalAveragePool", 1, {S4(2, 35, 7, 9)}, {4}, 0, T_EW, NULL, NULL},
    {"globalmaxpool 16 planes", "GlobalMaxPool", 1, {S4(1, 48, 5, 13)}, {4}, 0, 0, NULL, NULL},
};

static int ipick(int lo, int hi) /* [lo, hi], from the same seeded stream */
{
    float u = frand() * 0.5f + 0.5f; /* [0, 1] */
    int v = lo + (int)(u * (float)(hi - lo + 1));
    return v > hi ? hi : v < lo ? lo : v;
}

/* Seeded random shapes for the float fast paths: 3x3 depthwise (stride 1
 * or 2 along W, any pads, with and without a fused Relu) and 1x1 / im2col
 * convolutions with K <= 64 (the direct FMA kernel), batch 1. */
static void check_random_convs(int n)
{
    static char labels[64][64], attrs[64][128];
    for (int i = 0; i < n && i < 64; i++) {
        bool dw = i % 2 == 0;
        int64_t H = ipick(1, 40), W = ipick(1, 40);
        int sh = ipick(1, 2), sw = ipick(1, 2), pt = ipick(0, 2), pl = ipick(0, 2), pb = ipick(0, 2),
            pr = ipick(0, 2);
        int kh = dw ? 3 : ipick(1, 3), kw = dw ? 3 : ipick(1, 3);
        if (H + pt + pb < kh || W + pl + pr < kw) {
            i--;
            continue;
        }
        int64_t C = dw ? ipick(1, 40) : ipick(1, 64 / (kh * kw)), M = dw ? C : ipick(32, 70);
        snprintf(labels[i], sizeof labels[i], "random %s %dx%d k%dx%d s%d,%d C%d M%d",
                 dw ? "depthwise" : "conv", (int)H, (int)W, kh, kw, sh, sw, (int)C, (int)M);
        snprintf(attrs[i], sizeof attrs[i], "group=i:%d;strides=is:%d,%d;pads=is:%d,%d,%d,%d",
                 dw ? (int)C : 1, sh, sw, pt, pl, pb, pr);
        spec s = {labels[i], "Conv", 3, {S4(1, C, H, W), S4(M, dw ? 1 : C, kh, kw), S4(M)},
                  {4, 4, 1}, false, T_ACC, attrs[i], i % 3 == 0 ? "Relu" : NULL};
        check(&s);
    }
}

/* Convolutions with constant weights (packed at plan time): the direct
 * kernel, every kernel size, dilation, pads, strides (up to 4 along W),
 * output widths around multiples of 16, M not a multiple of 6, with and
 * without bias, Relu or LeakyRelu fused, batch 2; many taps and channels
 * (on AVX-512 the 12-channel tiles and dt_task512, channels along the lanes:
 * M not a multiple of 16, rows split into unequal tiles, strides, dilation);
 * pointwise convs with more than 64 taps as one row (split in column
 * ranges past 256 pixels); and the shapes it declines (stride 5 along W,
 * groups, 1x1 with few taps, narrow maps) through the other paths. */
static void check_direct_convs(void)
{
    static const struct {
        int64_t C, H, W, M, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group, N;
        bool bias, relu;
    } cs[] = {
        {8, 17, 19, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {5, 20, 32, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, true},
        {16, 12, 33, 13, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2, true, false},
        {3, 30, 47, 24, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, true, true},
        {6, 25, 40, 12, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {4, 21, 36, 11, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, true, false},
        {4, 21, 36, 9, 3, 3, 1, 1, 3, 1, 0, 1, 2, 0, 1, 1, false, false},
        {24, 74, 32, 24, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true},
        {24, 74, 32, 24, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, true, false},
        {2, 9, 64, 6, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, true, false},
        {8, 10, 16, 30, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, true, false},
        {8, 10, 15, 30, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false},
        {3, 1, 100, 8, 1, 5, 1, 1, 1, 1, 0, 2, 0, 2, 1, 1, true, false},
        /* strides along W: phases of the padded row */
        {8, 17, 19, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {8, 33, 95, 13, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, 1, 1, true, true},
        {5, 20, 100, 7, 5, 5, 1, 2, 1, 2, 3, 2, 1, 4, 1, 1, false, false},
        {3, 12, 140, 12, 3, 4, 3, 3, 1, 1, 1, 2, 1, 1, 1, 1, true, false},
        {4, 12, 120, 12, 2, 5, 1, 4, 1, 1, 0, 0, 0, 3, 1, 1, true, false},
        /* declined: stride 5 along W, groups, 1x1 with K <= 64, narrow outputs */
        {4, 12, 120, 12, 3, 3, 1, 5, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {8, 17, 19, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, true, false},
        {32, 17, 19, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false},
        {8, 9, 5, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        /* more than 576 taps: direct, several tap chunks; with more than 64
         * output channels (im2col + sgemm before), M = 70: 4 x 16 + 6 */
        {96, 10, 30, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
        {72, 10, 20, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {96, 11, 20, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, true, true},
        {64, 15, 23, 40, 3, 3, 2, 2, 1, 1, 1, 0, 1, 2, 1, 1, true, false},
        {40, 9, 29, 32, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, false, true},
        {100, 5, 13, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        {32, 6, 64, 36, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        /* dt_task512's tap chunks (432 taps: three), row segments (130
         * wide: three), two-row tiles with an odd row left; stride 2 with
         * two pads on the left (the phases' masked copy); weights past 1
         * MiB (a channel unit's rows consecutive) on a 7x7 map */
        {48, 9, 130, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
        {64, 20, 57, 48, 3, 3, 2, 2, 1, 1, 1, 2, 0, 1, 1, 1, true, false},
        {256, 7, 7, 130, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
        /* pointwise with more than 64 taps: one row of H*W pixels */
        {96, 7, 9, 40, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true},
        {320, 5, 7, 48, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2, true, false},
        {72, 20, 30, 24, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false, true},
        {288, 16, 20, 48, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false},
        {300, 16, 20, 33, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true},
        /* KH x 1 without pads or strides (column convs): the planes as one
         * row, the taps KH * dil * W apart; 8, 4 and 5 wide (oww_embedding),
         * 12-channel tiles and, from 288 taps with M a multiple of 16,
         * channels along the lanes; with pads along H: declined */
        {72, 30, 8, 72, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, true},
        {96, 14, 4, 96, 3, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2, true, false},
        {16, 20, 5, 26, 3, 1, 1, 1, 2, 1, 0, 0, 0, 0, 1, 1, false, true},
        {20, 9, 3, 16, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, true, false},
        {24, 12, 8, 24, 3, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, true, true},
    };
    static char labels[48][96], attrs[48][160];
    const_weights = true;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        snprintf(labels[i], sizeof labels[i], "const conv %dx%d s%d,%d d%d,%d g%d %dx%d C%d M%d N%d",
                 (int)cs[i].kh, (int)cs[i].kw, (int)cs[i].sh, (int)cs[i].sw, (int)cs[i].dh,
                 (int)cs[i].dw, (int)cs[i].group, (int)cs[i].H, (int)cs[i].W, (int)cs[i].C,
                 (int)cs[i].M, (int)cs[i].N);
        snprintf(attrs[i], sizeof attrs[i],
                 "group=i:%d;strides=is:%d,%d;dilations=is:%d,%d;pads=is:%d,%d,%d,%d",
                 (int)cs[i].group, (int)cs[i].sh, (int)cs[i].sw, (int)cs[i].dh, (int)cs[i].dw,
                 (int)cs[i].pt, (int)cs[i].pl, (int)cs[i].pb, (int)cs[i].pr);
        spec s = {labels[i], "Conv", cs[i].bias ? 3 : 2,
                  {S4(cs[i].N, cs[i].C, cs[i].H, cs[i].W),
                   S4(cs[i].M, cs[i].C / cs[i].group, cs[i].kh, cs[i].kw), S4(cs[i].M)},
                  {4, 4, 1}, false, T_ACC, attrs[i], cs[i].relu ? (i % 3 ? "LeakyRelu" : "Relu") : NULL};
        check(&s);
    }
    const_weights = false;
}

/* The window kernel's sums are one fmaf chain per output, bias first, then
 * the taps in (c, t) order: its output must be exactly that, bit for bit
 * (which also shows the case took it: OpenBLAS sums in other orders). */
static void check_window_exact(const spec *s, int64_t stride, int64_t dil, int64_t pl, int64_t pr)
{
    cases++;
    hpcz_error err = {0};
    hpcz_array ins[3], y = {0};
    memset(ins, 0, sizeof ins);
    random_inputs(s, ins);
    const_weights = true;
    hpcz_model *m = build(s, ins);
    const_weights = false;
    bool ok = run(m, "cpu", 2, ins, &y, &err);
    int64_t N = s->shapes[0][0], C = s->shapes[0][1], L = s->shapes[0][2];
    int64_t M = s->shapes[1][0], KW = s->shapes[1][2];
    int64_t O = (L + pl + pr - (KW - 1) * dil - 1) / stride + 1, bad = 0;
    ok = ok && y.numel == N * M * O;
    const float *x = ins[0].data, *w = ins[1].data, *b = s->n_in > 2 ? ins[2].data : NULL;
    for (int64_t n = 0; ok && n < N; n++)
        for (int64_t mo = 0; mo < M; mo++)
            for (int64_t o = 0; o < O; o++) {
                float acc = b ? b[mo] : 0.0f;
                for (int64_t c = 0; c < C; c++)
                    for (int64_t t = 0; t < KW; t++) {
                        int64_t i = o * stride + t * dil - pl;
                        float xv = i >= 0 && i < L ? x[(n * C + c) * L + i] : 0.0f;
                        acc = fmaf(xv, w[(mo * C + c) * KW + t], acc);
                    }
                float got = ((const float *)y.data)[(n * M + mo) * O + o];
                bad += memcmp(&got, &acc, sizeof acc) != 0;
            }
    if (!ok || bad)
        failures++;
    printf("%s %-28s %-12s %s %lld of %lld outputs differ from the fmaf chain%s%s\n",
           ok && !bad ? "PASS" : "FAIL", s->label, s->op, "exact:", (long long)bad,
           (long long)y.numel, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 3; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&y);
    hpcz_model_free(m);
}

/* Float 1-D convs with long kernels and constant weights (conv1d.c, read
 * straight from x): oww_melspec's STFT (1 -> 257 channels, 512 taps at hop
 * 160: two tap chunks, an odd last panel, 97 frames: the last tile split),
 * silero's (258 channels, 256 taps at 64), odd lengths, pads, dilation,
 * several input channels, bias, fused Relu, batch 2, more frames than one
 * task takes, a single frame, stride 1; and what it declines (fewer than
 * 32 taps, groups). Against the ref backend, 1 and 2 threads, AVX2 and
 * AVX-512 (check), then bit for bit against the fmaf chain. */
static void check_window_convs(void)
{
    static const struct {
        int64_t N, C, L, M, k, stride, dil, pl, pr, group;
        bool bias, relu;
    } cs[] = {
        {1, 1, 16000, 257, 512, 160, 1, 0, 0, 1, false, false},
        {1, 1, 1600, 258, 256, 64, 1, 0, 0, 1, false, false},
        {1, 1, 1001, 33, 100, 37, 1, 0, 0, 1, true, false},
        {2, 3, 517, 40, 48, 5, 1, 7, 3, 1, true, false},
        {1, 2, 300, 17, 33, 1, 2, 0, 11, 1, true, false},
        {1, 1, 531, 64, 300, 9, 1, 2, 2, 1, false, false},
        {1, 1, 512, 20, 512, 160, 1, 0, 0, 1, true, false},
        {1, 1, 40000, 16, 400, 16, 1, 200, 200, 1, false, true},
        {1, 4, 150, 9, 40, 3, 1, 0, 0, 1, true, true},
        /* declined: fewer than 32 taps, groups */
        {1, 8, 200, 32, 31, 2, 1, 1, 1, 1, true, false},
        {1, 4, 300, 32, 64, 8, 1, 0, 0, 2, true, false},
    };
    static char labels[16][96], attrs[16][128];
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        snprintf(labels[i], sizeof labels[i], "const conv1d k%d s%d d%d p%d,%d g%d L%d C%d M%d N%d",
                 (int)cs[i].k, (int)cs[i].stride, (int)cs[i].dil, (int)cs[i].pl, (int)cs[i].pr,
                 (int)cs[i].group, (int)cs[i].L, (int)cs[i].C, (int)cs[i].M, (int)cs[i].N);
        snprintf(attrs[i], sizeof attrs[i], "group=i:%d;strides=is:%d;dilations=is:%d;pads=is:%d,%d",
                 (int)cs[i].group, (int)cs[i].stride, (int)cs[i].dil, (int)cs[i].pl, (int)cs[i].pr);
        spec s = {labels[i], "Conv", cs[i].bias ? 3 : 2,
                  {S4(cs[i].N, cs[i].C, cs[i].L), S4(cs[i].M, cs[i].C / cs[i].group, cs[i].k),
                   S4(cs[i].M)},
                  {3, 3, 1}, false, T_ACC, attrs[i], cs[i].relu ? "Relu" : NULL};
        const_weights = true;
        check(&s);
        const_weights = false;
        if (!cs[i].relu && cs[i].group == 1 && cs[i].k >= 32)
            check_window_exact(&s, cs[i].stride, cs[i].dil, cs[i].pl, cs[i].pr);
    }
}

/* Pow by a constant exponent 2 or 0.5 (an STFT's power spectrum): exactly
 * x * x and sqrtf(x) on every element (the vectorized loops), and within
 * T_EW of the ref backend. */
static void check_pow_const(double e)
{
    cases++;
    hpcz_error err = {0};
    hpcz_array ins[2], y = {0}, r = {0};
    memset(ins, 0, sizeof ins);
    spec s = {e == 2 ? "pow by constant 2" : "pow by constant 0.5", "Pow", 2,
              {S4(3, 50, 71), S4(0)}, {3, 0}, true, T_EW, NULL, NULL};
    hpcz_array_alloc(&ins[0], HPCZ_DTYPE_FLOAT, 3, s.shapes[0], &err);
    hpcz_array_alloc(&ins[1], HPCZ_DTYPE_FLOAT, 0, s.shapes[1], &err);
    const float *x = ins[0].data;
    for (int64_t k = 0; k < ins[0].numel; k++)
        ((float *)ins[0].data)[k] = e == 2 ? frand() * 100.0f : fabsf(frand()) * 100.0f;
    *(float *)ins[1].data = (float)e;
    const_weights = true;
    hpcz_model *m = build(&s, ins);
    const_weights = false;
    bool ok = run(m, "cpu", 1, ins, &y, &err) && run(m, "ref", 1, ins, &r, &err) &&
              y.numel == ins[0].numel;
    int64_t bad = 0;
    for (int64_t k = 0; ok && k < y.numel; k++) {
        float want = e == 2 ? x[k] * x[k] : sqrtf(x[k]), got = ((const float *)y.data)[k];
        bad += memcmp(&want, &got, sizeof got) != 0;
    }
    double nerr = ok ? norm_err(&y, &r) : 0;
    bool good = ok && !bad && nerr <= s.tol;
    if (!good)
        failures++;
    printf("%s %-28s %-12s %lld inexact, normalized error %.2e (bound %.0e)%s%s\n",
           good ? "PASS" : "FAIL", s.label, s.op, (long long)bad, nerr, s.tol, ok ? "" : ": ",
           ok ? "" : err.msg);
    hpcz_array_release(&ins[0]);
    hpcz_array_release(&ins[1]);
    hpcz_array_release(&y);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* Gemm, MatMul and LSTM with initializer weights: B, W and R packed for
 * rt_pgemm (one and two rows as split sums; from three rows on the blocked
 * tiles: 12 and 6 rows and their remainders, more than one block of rows
 * and of k, columns past the last multiple of 16 and an odd number of
 * panels, transposed A and B, a fused Relu, MatMul's batch rows as one
 * product), and what it declines (alpha, a C that is not a bias row, more
 * than 64 rows with k over 2048, MatMul with fewer than 16 columns). LSTM:
 * bidirectional and forward, batch 1 and 3, with and without B, the
 * default activations (vectorised gates) and others; with weights as graph
 * inputs too (the unpacked products). */
static void check_packed_gemm_lstm(void)
{
    static const spec cs[] = {
        {"const gemm 24x300 -> 1000 transB bias", "Gemm", 3, {S4(24, 300), S4(1000, 300), S4(1000)},
         {2, 2, 1}, 0, T_ACC, "transB=i:1", NULL},
        {"const gemm 23x257 -> 517 bias relu", "Gemm", 3, {S4(23, 257), S4(257, 517), S4(517)},
         {2, 2, 1}, 0, T_ACC, NULL, "Relu"},
        {"const gemm 1 row transB", "Gemm", 2, {S4(1, 300), S4(999, 300)}, {2, 2}, 0, T_ACC,
         "transB=i:1", NULL},
        {"const gemm 2 rows transA transB", "Gemm", 3, {S4(301, 2), S4(333, 301), S4(1, 333)},
         {2, 2, 2}, 0, T_ACC, "transA=i:1;transB=i:1", NULL},
        {"const gemm 5 rows k odd", "Gemm", 3, {S4(5, 129), S4(129, 1030), S4(1030)}, {2, 2, 1}, 0,
         T_ACC, NULL, NULL},
        {"const gemm declined: alpha", "Gemm", 3, {S4(8, 300), S4(300, 400), S4(400)}, {2, 2, 1}, 0,
         T_ACC, "alpha=f:0.5", NULL},
        {"const gemm declined: C matrix", "Gemm", 3, {S4(8, 300), S4(300, 400), S4(8, 400)},
         {2, 2, 2}, 0, T_ACC, NULL, NULL},
        {"const gemm 3 rows", "Gemm", 3, {S4(3, 40), S4(40, 120), S4(120)}, {2, 2, 1}, 0, T_ACC,
         NULL, NULL},
        {"const gemm 97 rows -> 517 bias relu", "Gemm", 3, {S4(97, 300), S4(300, 517), S4(517)},
         {2, 2, 1}, 0, T_ACC, NULL, "Relu"},
        {"const gemm 200 rows k 600 transA transB", "Gemm", 3,
         {S4(600, 200), S4(70, 600), S4(70)}, {2, 2, 1}, 0, T_ACC, "transA=i:1;transB=i:1", NULL},
        {"const gemm declined: 65 rows k 2100", "Gemm", 3, {S4(65, 2100), S4(2100, 20), S4(20)},
         {2, 2, 1}, 0, T_ACC, NULL, NULL},
        {"const matmul 2x37x260 @ 260x33", "MatMul", 2, {S4(2, 37, 260), S4(260, 33)}, {3, 2}, 0,
         T_ACC, NULL, NULL},
        {"const matmul 150x700 @ 700x70", "MatMul", 2, {S4(150, 700), S4(700, 70)}, {2, 2}, 0,
         T_ACC, NULL, NULL},
        {"const matmul 1x1x300 @ 300x50", "MatMul", 2, {S4(1, 1, 300), S4(300, 50)}, {3, 2}, 0,
         T_ACC, NULL, NULL},
        {"const matmul declined: 8 columns", "MatMul", 2, {S4(40, 600), S4(600, 8)}, {2, 2}, 0,
         T_ACC, NULL, NULL},
        {"lstm bidirectional B", "LSTM", 4, {S4(7, 1, 40), S4(2, 128, 40), S4(2, 128, 32), S4(2, 256)},
         {3, 3, 3, 2}, 0, T_ACC, "hidden_size=i:32;direction=s:bidirectional", NULL},
        {"lstm forward batch 3 no B", "LSTM", 3, {S4(5, 3, 24), S4(1, 84, 24), S4(1, 84, 21)},
         {3, 3, 3}, 0, T_ACC, "hidden_size=i:21", NULL},
        {"lstm reverse", "LSTM", 4, {S4(6, 2, 16), S4(1, 80, 16), S4(1, 80, 20), S4(1, 160)},
         {3, 3, 3, 2}, 0, T_ACC, "hidden_size=i:20;direction=s:reverse", NULL},
        {"lstm other activations", "LSTM", 4, {S4(5, 1, 16), S4(1, 64, 16), S4(1, 64, 16), S4(1, 128)},
         {3, 3, 3, 2}, 0, T_ACC, "hidden_size=i:16;activations=ss:HardSigmoid,Tanh,Softsign", NULL},
        {"gru bidirectional B", "GRU", 4, {S4(6, 2, 16), S4(2, 60, 16), S4(2, 60, 20), S4(2, 120)},
         {3, 3, 3, 2}, 0, T_ACC, "hidden_size=i:20;direction=s:bidirectional", NULL},
        {"gru linear before reset", "GRU", 4, {S4(6, 1, 16), S4(1, 60, 16), S4(1, 60, 20), S4(1, 120)},
         {3, 3, 3, 2}, 0, T_ACC, "hidden_size=i:20;linear_before_reset=i:1", NULL},
    };
    for (int cw = 1; cw >= 0; cw--) {
        const_weights = cw;
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            bool lstm = !strcmp(cs[i].op, "LSTM") || !strcmp(cs[i].op, "GRU");
            if (!cw && !lstm)
                continue; /* Gemm with B an input: the cases above */
            static char labels[2][32][96];
            spec s = cs[i];
            snprintf(labels[cw][i], sizeof labels[cw][i], "%s%s", s.label, cw ? "" : " (W, R inputs)");
            s.label = labels[cw][i];
            check(&s);
        }
    }
    const_weights = false;
}

/* A plan told that weights change between runs (reconstruction rewrites
 * layers in place) must read them at every run: the direct conv kernel and
 * rt_pgemm (Gemm, MatMul, LSTM) pack initializer weights, and a stale copy made
 * --reconstruct worse than magnitude pruning on oww_embedding (6.4 -> -1.6
 * dB), and fold_into_conv folds a BatchNormalization into copies of a
 * Conv's weights. After the initializers are doubled, the plan's next run
 * must give the bytes of a new plan made on the doubled weights. */
/* y0 -> BatchNormalization (constant parameters, M channels) -> y1, the
 * graph's output instead of y0 (fold_into_conv folds it into the Conv). */
static void append_batchnorm(hpcz_model *m, int64_t M)
{
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_node *n = hpcz_graph_add_node(g, "BatchNormalization", "bn", 5, 1);
    n->inputs[0] = g->outputs[0];
    g->outputs[0]->is_output = 0;
    static const char *names[4] = {"bn_scale", "bn_bias", "bn_mean", "bn_var"};
    for (int i = 0; i < 4; i++) {
        hpcz_tensor *t = hpcz_tensor_new(m, names[i], HPCZ_DTYPE_FLOAT, 1, &M);
        float *d = hpcz_tensor_alloc(t);
        for (int64_t k = 0; k < M; k++)
            d[k] = i == 3 ? 0.5f + fabsf(frand()) : frand();
        hpcz_graph_add_initializer(g, t, &err);
        n->inputs[1 + i] = hpcz_graph_value(g, names[i]);
    }
    hpcz_value *y = value(g, "y1", -1, NULL);
    y->producer = n;
    y->is_output = 1;
    n->outputs[0] = y;
    g->outputs[0] = y;
}

static void check_weights_change(const spec *s, bool bn)
{
    cases++;
    hpcz_error err = {0};
    hpcz_array ins[4];
    memset(ins, 0, sizeof ins);
    random_inputs(s, ins);
    const_weights = true;
    hpcz_model *m = build(s, ins);
    const_weights = false;
    if (bn)
        append_batchnorm(m, s->shapes[1][0]);
    hpcz_plan_opts po = {.threads = 1, .weights_change = 1};
    hpcz_plan *p = hpcz_plan_new(m, &po, &err), *p2 = NULL;
    hpcz_array y1 = {0}, y2 = {0}, y3 = {0};
    bool ok = p && m->graph->n_inits && hpcz_plan_run(p, ins, &y1, &err) == HPCZ_OK;
    for (size_t i = 0; ok && i < m->graph->n_inits; i++) {
        hpcz_tensor *w = m->graph->inits[i];
        float *wd = hpcz_tensor_data(w, &err);
        for (int64_t k = 0; wd && k < w->numel; k++)
            wd[k] *= 2;
        ok = wd != NULL;
    }
    ok = ok && hpcz_plan_run(p, ins, &y2, &err) == HPCZ_OK && (p2 = hpcz_plan_new(m, &po, &err)) &&
         hpcz_plan_run(p2, ins, &y3, &err) == HPCZ_OK;
    bool same = ok && y2.nbytes == y3.nbytes && !memcmp(y2.data, y3.data, y2.nbytes);
    bool moved = ok && y1.nbytes == y2.nbytes && memcmp(y1.data, y2.data, y1.nbytes);
    if (!same || !moved) {
        failures++;
        printf("FAIL %-40s %s\n", s->label,
               !ok ? err.msg : !moved ? "the second run kept the old weights" : "the second run differs from a new plan");
    } else {
        printf("PASS %-40s the second run reads the rewritten weights\n", s->label);
    }
    hpcz_array_release(&y1);
    hpcz_array_release(&y2);
    hpcz_array_release(&y3);
    for (int i = 0; i < s->n_in; i++)
        hpcz_array_release(&ins[i]);
    hpcz_plan_free(p);
    hpcz_plan_free(p2);
    hpcz_model_free(m);
}

/* Observes nothing; its presence turns the plan-time fusions off. */
static void no_observer(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)ctx, (void)node, (void)name, (void)a;
}

/* x [1][C][L] (L symbolic) -> Conv (initializer W [M][C][k], stride, no
 * bias) -> Unsqueeze(axes [1]) -> Transpose(perm 0,1,3,2) -> y [1][1][O][M],
 * an STFT front end's shape; `tap` adds a second reader of the Conv's
 * output (a Relu, also a graph output), which keeps the ops apart. */
static hpcz_model *stft_model(const hpcz_array *w, int64_t stride, bool tap)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    g->inputs = hpcz_model_alloc(m, sizeof *g->inputs);
    g->outputs = hpcz_model_alloc(m, 2 * sizeof *g->outputs);
    hpcz_value *x = value(g, "x", 3, (int64_t[]){1, w->dims[1], -1});
    x->dims[2].param = "L";
    x->is_input = 1;
    g->inputs[g->n_inputs++] = x;
    hpcz_tensor *t = hpcz_tensor_new(m, "w", HPCZ_DTYPE_FLOAT, 3, w->dims);
    memcpy(hpcz_tensor_alloc(t), w->data, w->nbytes);
    hpcz_graph_add_initializer(g, t, &err);
    t = hpcz_tensor_new(m, "axes", HPCZ_DTYPE_INT64, 1, (int64_t[]){1});
    *(int64_t *)hpcz_tensor_alloc(t) = 1;
    hpcz_graph_add_initializer(g, t, &err);
    char attrs[64];
    snprintf(attrs, sizeof attrs, "strides=is:%lld", (long long)stride);
    static const struct {
        const char *op, *name, *in[2], *out, *attrs;
    } ns[] = {{"Conv", "conv", {"x", "w"}, "c", NULL},
              {"Unsqueeze", "unsq", {"c", "axes"}, "u", NULL},
              {"Transpose", "tr", {"u", NULL}, "y", "perm=is:0,1,3,2"},
              {"Relu", "tap", {"c", NULL}, "r", NULL}};
    for (int i = 0; i < (tap ? 4 : 3); i++) {
        hpcz_node *n = hpcz_graph_add_node(g, ns[i].op, ns[i].name, ns[i].in[1] ? 2 : 1, 1);
        parse_attrs(m, n, i == 0 ? attrs : ns[i].attrs);
        for (int j = 0; j < 2 && ns[i].in[j]; j++)
            n->inputs[j] = hpcz_graph_value(g, ns[i].in[j]);
        hpcz_value *o = value(g, ns[i].out, -1, NULL);
        o->producer = n;
        n->outputs[0] = o;
        if (i >= 2) {
            o->is_output = 1;
            g->outputs[g->n_outputs++] = o;
        }
    }
    return m;
}

/* The Conv writing its Transpose's output (fuse_conv_transpose): the bytes
 * of the transposed fmaf chain (the window kernel's sums), the same as the
 * unfused ops (under an observer, and with the Conv's output read twice),
 * at 1 and 2 threads, and after the plan re-plans for another length. */
static void check_conv_transpose(void)
{
    hpcz_error err = {0};
    hpcz_array w = {0};
    const int64_t M = 45, k = 64, hop = 20;
    hpcz_array_alloc(&w, HPCZ_DTYPE_FLOAT, 3, (int64_t[]){M, 1, k}, &err);
    for (int64_t i = 0; i < w.numel; i++)
        ((float *)w.data)[i] = frand();
    hpcz_model *fused = stft_model(&w, hop, false), *tapped = stft_model(&w, hop, true);
    hpcz_plan_opts p1 = {.threads = 1, .backend = "cpu"}, p2 = {.threads = 2, .backend = "cpu"};
    hpcz_plan_opts po = {.threads = 1, .backend = "cpu", .observer = no_observer};
    hpcz_plan *plans[4] = {hpcz_plan_new(fused, &p1, &err), hpcz_plan_new(fused, &p2, &err),
                           hpcz_plan_new(fused, &po, &err), hpcz_plan_new(tapped, &p1, &err)};
    /* node times: a fused-away step never runs (0 ns) */
    uint64_t times[4][4] = {{0}};
    for (int p = 0; p < 4; p++)
        if (plans[p] && hpcz_plan_n_nodes(plans[p]) <= 4)
            hpcz_plan_set_profile(plans[p], times[p]);
    for (int64_t L = 1000; L <= 1337; L += 337) {
        cases++;
        hpcz_array x = {0}, y[4][2];
        memset(y, 0, sizeof y);
        hpcz_array_alloc(&x, HPCZ_DTYPE_FLOAT, 3, (int64_t[]){1, 1, L}, &err);
        for (int64_t i = 0; i < L; i++)
            ((float *)x.data)[i] = frand();
        bool ok = true;
        for (int p = 0; p < 4; p++)
            ok = ok && plans[p] && hpcz_plan_run(plans[p], &x, y[p], &err) == HPCZ_OK;
        int64_t O = (L - k) / hop + 1, bad = 0;
        for (int p = 0; ok && p < 4; p++)
            ok = y[p][0].ndim == 4 && y[p][0].dims[2] == O && y[p][0].dims[3] == M;
        for (int64_t o = 0; ok && o < O; o++)
            for (int64_t mo = 0; mo < M; mo++) {
                float acc = 0.0f;
                for (int64_t t = 0; t < k; t++)
                    acc = fmaf(((const float *)x.data)[o * hop + t], ((const float *)w.data)[mo * k + t], acc);
                for (int p = 0; p < 4; p++)
                    bad += memcmp(&acc, (const float *)y[p][0].data + o * M + mo, sizeof acc) != 0;
            }
        if (!ok || bad)
            failures++;
        printf("%s conv1d+unsqueeze+transpose L%-5lld %lld of %lld outputs differ from the fmaf chain "
               "(fused at 1 and 2 threads, unfused)%s%s\n",
               ok && !bad ? "PASS" : "FAIL", (long long)L, (long long)bad, (long long)(4 * O * M),
               ok ? "" : ": ", ok ? "" : err.msg);
        hpcz_array_release(&x);
        for (int p = 0; p < 4; p++)
            for (int j = 0; j < 2; j++)
                hpcz_array_release(&y[p][j]);
    }
    cases++;
    bool ran[4] = {false};
    for (int p = 0; p < 4; p++)
        for (size_t n = 0; plans[p] && n < hpcz_plan_n_nodes(plans[p]) && n < 4; n++)
            if (!strcmp(hpcz_plan_node(plans[p], n)->name, "tr"))
                ran[p] = times[p][n] > 0;
    bool fused_ok = !ran[0] && !ran[1] && ran[2] && ran[3];
    failures += !fused_ok;
    printf("%s conv1d+unsqueeze+transpose: the Transpose runs %s\n", fused_ok ? "PASS" : "FAIL",
           fused_ok ? "only unfused (observer, Conv output read twice)"
                    : "in the wrong plans (expected: only under an observer or a second reader)");
    for (int p = 0; p < 4; p++)
        hpcz_plan_free(plans[p]);
    hpcz_model_free(fused);
    hpcz_model_free(tapped);
    hpcz_array_release(&w);
}

/* The spec's model through the to-fp16 pass (float16 weights and compute,
 * float32 inputs and outputs through Casts): the cpu backend with its
 * fusions (a Relu or Clip into the float16 Conv, run on float32 copies) has
 * the same bytes as without them (under an observer) when the op is exact
 * (exact: max, clamp; the fused activation applies to the sums rounded to
 * float16, rt_act.f16, test_act_f16), the same bytes with 2 threads,
 * and is within tol of the ref backend's float16 run. */
static void check_f16(const spec *s, bool exact)
{
    cases++;
    hpcz_array ins[4];
    memset(ins, 0, sizeof ins);
    hpcz_error err = {0};
    random_inputs(s, ins);
    const_weights = true;
    hpcz_model *m = build(s, ins);
    const_weights = false;
    hpcz_pipeline *pl = hpcz_pipeline_parse("to-fp16{keep-io-types=true}", &err);
    hpcz_pass_ctx pc;
    hpcz_pass_ctx_init(&pc);
    bool ok = pl && hpcz_pipeline_run(pl, m, &pc, &err) == HPCZ_OK;
    hpcz_pipeline_free(pl);
    hpcz_array a = {0}, b = {0}, u = {0}, r = {0};
    hpcz_plan_opts po = {.threads = 1, .backend = "cpu", .observer = no_observer};
    hpcz_plan *p = ok ? hpcz_plan_new(m, &po, &err) : NULL;
    ok = p && hpcz_plan_run(p, ins, &u, &err) == HPCZ_OK;
    hpcz_plan_free(p);
    ok = ok && run(m, "cpu", 1, ins, &a, &err) && run(m, "cpu", 2, ins, &b, &err) &&
         run(m, "ref", 1, ins, &r, &err);
    bool same = ok && a.nbytes == u.nbytes && a.nbytes == b.nbytes && !memcmp(a.data, b.data, a.nbytes) &&
                (!exact || !memcmp(a.data, u.data, a.nbytes));
    double nerr = same ? norm_err(&a, &r) : 0;
    bool good = ok && same && nerr <= s->tol;
    if (!good)
        failures++;
    printf("%s float16 %-20s %-12s same bytes as 2 threads%s: %s, normalized error vs ref %.2e (bound %.0e)%s%s\n",
           good ? "PASS" : "FAIL", s->label, s->op, exact ? " and unfused" : "", same ? "yes" : "NO", nerr,
           s->tol, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 4; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

#define T_F16 4e-3 /* a float16 rounding or two of the largest value */

static const spec f16_specs[] = {
    {"conv+relu fused", "Conv", 3, {S4(1, 8, 20, 20), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_F16, "pads=is:1,1,1,1", "Relu"},
    {"conv+clip fused", "Conv", 3, {S4(1, 8, 20, 20), S4(16, 8, 3, 3), S4(16)}, {4, 4, 1}, 0,
     T_F16, "pads=is:1,1,1,1", "Clip"},
    {"depthwise+clip fused", "Conv", 2, {S4(1, 8, 21, 19), S4(8, 1, 3, 3)}, {4, 4}, 0, T_F16,
     "group=i:8;pads=is:1,1,1,1", "Clip"},
    /* pw_panel512's float16 epilogues on its registers (none, ReLU, the
     * HardSwish op), with a masked column tail and rows past a multiple of 4 */
    {"1x1 small K f16 epilogue", "Conv", 3, {S4(1, 16, 9, 23), S4(34, 16, 1, 1), S4(34)}, {4, 4, 1},
     0, T_F16, NULL, NULL},
    {"1x1 small K+relu fused", "Conv", 3, {S4(1, 24, 7, 13), S4(33, 24, 1, 1), S4(33)}, {4, 4, 1},
     0, T_F16, NULL, "Relu"},
    {"1x1 small K+hardswish fused", "Conv", 3, {S4(1, 16, 11, 29), S4(40, 16, 1, 1), S4(40)},
     {4, 4, 1}, 0, T_F16, NULL, "HardSwish"},
    {"maxpool 3x3 s2 pad", "MaxPool", 1, {S4(2, 4, 15, 17)}, {4}, 0, 0,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1", NULL},
    {"relu then clip", "Relu", 1, {S4(3, 50, 70)}, {3}, 0, 0, NULL, "Clip"},
};

static const spec f16_inexact_specs[] = {
    {"avgpool ceil incl pad", "AveragePool", 1, {S4(2, 4, 15, 17)}, {4}, 0, T_F16,
     "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1;ceil_mode=i:1;count_include_pad=i:1",
     NULL},
    {"globalavgpool", "GlobalAveragePool", 1, {S4(2, 8, 13, 13)}, {4}, 0, T_F16, NULL, NULL},
};

static const spec rewritten[] = {
    {"conv weights rewritten between runs", "Conv", 2, {S4(1, 8, 17, 32), S4(16, 8, 3, 3)}, {4, 4}, 0,
     T_ACC, "pads=is:1,1,1,1", NULL},
    {"gemm weights rewritten between runs", "Gemm", 3, {S4(24, 300), S4(1000, 300), S4(1000)},
     {2, 2, 1}, 0, T_ACC, "transB=i:1", NULL},
    {"matmul weights rewritten between runs", "MatMul", 2, {S4(2, 40, 300), S4(300, 100)}, {3, 2},
     0, T_ACC, NULL, NULL},
    {"conv narrow rewritten between runs", "Conv", 2, {S4(1, 32, 4, 2), S4(16, 32, 3, 3)}, {4, 4}, 0,
     T_ACC, "pads=is:1,1,1,1", NULL},
    {"conv1d window rewritten between runs", "Conv", 2, {S4(1, 1, 3000), S4(40, 1, 128)}, {3, 3},
     0, T_ACC, "strides=is:50", NULL},
    {"conv+batchnorm rewritten between runs", "Conv", 2, {S4(1, 8, 17, 32), S4(16, 8, 3, 3)}, {4, 4},
     0, T_ACC, "pads=is:1,1,1,1", NULL},
    {"lstm weights rewritten between runs", "LSTM", 4, {S4(7, 1, 40), S4(2, 128, 40),
     S4(2, 128, 32), S4(2, 256)}, {3, 3, 3, 2}, 0, T_ACC,
     "hidden_size=i:32;direction=s:bidirectional", NULL},
};

/* With constant weights (the direct kernels' packing): the activation on
 * dc_task512's tiles just stored (act_tile512), after the last pass over
 * the taps only (K = 576 takes three), 12- and 6-channel tiles. */
static const spec act_specs[] = {
    {"conv 3x3 K=576 M=30, hswish fused", "Conv", 3, {S4(1, 64, 9, 32), S4(30, 64, 3, 3), S4(30)},
     {4, 4, 1}, 0, T_ACC, "pads=is:1,1,1,1", "HardSwish"},
    {"conv 3x3 M=7 s2, clip fused", "Conv", 3, {S4(1, 5, 40, 63), S4(7, 5, 3, 3), S4(7)},
     {4, 4, 1}, 0, T_ACC, "strides=is:2,2;pads=is:1,1,1,1", "Clip"},
};

/* OpenBLAS's server threads (its pthreads build starts them when it loads)
 * are stopped once the runtime has set its threads: before that they spun
 * on sched_yield beside ours for 0.1 s. After a run at 1 thread, before any
 * at 2 (our pool's workers), the process is one thread. Linux only
 * (/proc/self/task); a BLAS without server threads passes trivially. */
static void check_blas_threads(void)
{
    cases++;
    hpcz_error err = {0};
    spec s = specs[0];
    hpcz_array ins[4], y = {0};
    memset(ins, 0, sizeof ins);
    random_inputs(&s, ins);
    hpcz_model *m = build(&s, ins);
    bool ok = run(m, "cpu", 1, ins, &y, &err);
    int n = 0;
    FILE *f = fopen("/proc/self/status", "r");
    bool have = f != NULL;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    bool good = ok && (n == 1 || !have);
    if (!good)
        failures++;
    printf("%s threads after a run at 1 thread: %d (OpenBLAS's idle servers stopped)%s%s\n",
           good ? "PASS" : "FAIL", n, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 4; i++)
        hpcz_array_release(&ins[i]);
    hpcz_array_release(&y);
    hpcz_model_free(m);
}

int main(void)
{
    check_blas_threads();
    if (!rt_cpu_avx512())
        printf("SKIP AVX-512 kernels: not on this CPU (HPCZ_CPU_NO_AVX512 runs the same path)\n");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        spec s = specs[i];
        check(&s);
    }
    const_weights = true;
    for (size_t i = 0; i < sizeof act_specs / sizeof act_specs[0]; i++) {
        spec s = act_specs[i];
        check(&s);
    }
    const_weights = false;
    check_random_convs(40);
    check_direct_convs();
    check_window_convs();
    check_pow_const(2);
    check_pow_const(0.5);
    check_conv_transpose();
    for (size_t i = 0; i < sizeof f16_specs / sizeof f16_specs[0]; i++)
        check_f16(&f16_specs[i], true);
    for (size_t i = 0; i < sizeof f16_inexact_specs / sizeof f16_inexact_specs[0]; i++)
        check_f16(&f16_inexact_specs[i], false);
    check_packed_gemm_lstm();
    for (size_t i = 0; i < sizeof rewritten / sizeof rewritten[0]; i++)
        check_weights_change(&rewritten[i], strstr(rewritten[i].label, "batchnorm") != NULL);
    printf("%d cases, %d failed\n", cases, failures);
    return failures ? 1 : 0;
}
