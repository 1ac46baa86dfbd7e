/*
 * test_qfuse.c - int8 QDQ fusion (lib/runtime/cpu/qgemm.c):
 *  1. DQ(x) + DQ(W) [+ DQ(b)] -> Conv/Gemm/MatMul (and ConvTranspose whose
 *     kernel equals its stride) -> Q on random shapes (odd sizes, groups,
 *     strides, padding; per-tensor and per-channel weights; u8/s8
 *     activations, s8/u8 weights, u8/s8 outputs): the fused integer
 *     kernel against the "ref" backend (dequantize, float Conv/Gemm, quantize)
 *     and against the cpu backend with fusion off. Bound: |diff| <= 1 unit of
 *     the quantized output (float accumulation in the reference rounds
 *     differently near .5); how many elements differ is printed.
 *  2. Saturation: u8 activations at 255 with zero point 0 and full-range
 *     int8 weights (-128/127) over a long K, where u8 x s8 pair sums exceed
 *     int16 (vpmaddubsw would saturate): exact against an int64 reference.
 *     Also DQ -> MaxPool/Transpose -> Q with one scale: run on the integers,
 *     the same bytes as unfused.
 *     Also DQ(a) + DQ(b) -> Add -> Q: the same bytes as unfused (same float
 *     arithmetic), within 1 of the ref backend.
 *  3. The digits static QDQ model (hpcz quantize --mode static --placement all) on the 450
 *     test samples, fused vs HPCZ_NO_INT8_FUSION=1: same top-1, logits
 *     within one quantization step.
 *  3a. Table ops: DQ -> elementwise ops (Relu, LeakyRelu, Clip, Max, ...,
 *     Sigmoid, Tanh, Mul/Add/Sub/Div by a scalar; also a chain reading x
 *     twice, HardSwish as x * Clip(x + 3, 0, 6) / 6) -> Q as a 256-entry
 *     table: the same bytes as unfused on odd sizes (the float kernels'
 *     tails); not fused when an intermediate is read outside the chain.
 *     Float tables: DQ -> those ops read by float ops: a float32 table of
 *     x_q (and a Q of it a table of x_q), the same bytes as unfused. Per-channel
 *     tables: the ops also read a tensor of one value per channel computed in
 *     the run (squeeze-excite gates): tables built per run, the same bytes.
 *     DQ -> GlobalAveragePool -> Q: the exact mean's codes, within 1 of unfused.
 *     A float depthwise Conv between 8-bit tensors (DQ [-> float table] -> Conv
 *     -> Q): the Conv reads and writes the codes, the same bytes as unfused.
 *  3b. MatMulInteger with constant B, fused (qgemm.c's kernel with the x
 *     zero point read at run time): exact int32 against the ref backend on
 *     every path (u8s8 for 7-bit weights, int16, GEMV, portable C).
 *  4. Every fused case with 1 and 2 threads: identical bytes; and the same
 *     bytes from the other kernel paths (HPCZ_QGEMM_NO_U8S8: int16/vpmaddwd
 *     instead of vpmaddubsw for 7-bit weights; HPCZ_QGEMM_NO_AVX2: the
 *     portable C micro-kernels and epilogue; HPCZ_QGEMM_NO_DW: depthwise
 *     through the grouped GEMM instead of the direct kernel; HPCZ_QGEMM_NO_VNNI:
 *     vpmaddubsw + vpmaddwd instead of vpdpbusd where the CPU has it (AVX-VNNI's
 *     VEX form, or AVX512-VNNI's EVEX form on ymm where only that exists);
 *     HPCZ_QGEMM_NO_WINDOW: im2col instead of panels copied from runs of x;
 *     HPCZ_QGEMM_NO_AVX512: the 256-bit tiles instead of the AVX-512 VNNI ones,
 *     and for table ops the AVX2 lookups instead of AVX-512 VBMI's; where
 *     the CPU lacks those, both runs take the same path and a line says so;
 *     HPCZ_QGEMM_NO_WSHIFT: MatMulInteger's full-range weights on the int16 path
 *     instead of shifted to int8 for vpdpbusd; HPCZ_QGEMM_NO_AMX: the AVX-512
 *     VNNI tiles instead of AMX-INT8's tdpbsud where the CPU has it).
 * A fused node is recognised by its QuantizeLinear not running (profile 0).
 *
 * Usage: test_qfuse [HPCZ_EXE SAMPLES_DIR]
 */
#include "hpcz.h"

#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "../rng.h"
#include "int_model.h"
#include "op_attrs.h"
#include "runtime/rt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures, cases;
static uint64_t last_const_bytes; /* of the last plan run() made */
static int last_ran;               /* nodes of the last plan run() made that ran */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        failures++;                                                                                \
        printf("FAIL: ");                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

typedef struct qcase {
    const char *label;
    const char *op;
    int xdt, wdt, ydt;
    bool per_channel, bias, odd_bias_scale;
    int xrank;
    int64_t xd[5];
    int wrank;
    int64_t wd[5];
    const char *attrs; /* "name=i:1;name=is:1,1" */
    int wlo, whi;      /* weight range (before the zero point) */
    bool saturate;     /* x = 255, xzp 0, weights -128/127, exact check */
} qcase;

static int get_int(const void *p, int dt, int64_t i)
{
    return dt == HPCZ_DTYPE_UINT8 ? ((const uint8_t *)p)[i] : ((const int8_t *)p)[i];
}

static hpcz_node *node(hpcz_graph *g, const char *op, const char *name, int nin,
                       const char *const *ins, const char *out)
{
    hpcz_node *n = hpcz_graph_add_node(g, op, name, (size_t)nin, 1);
    for (int i = 0; i < nin; i++)
        n->inputs[i] = ins[i] ? hpcz_graph_value(g, ins[i]) : NULL;
    hpcz_value *v = hpcz_graph_value(g, out);
    hpcz_node_set_output(n, 0, v);
    return n;
}

static void set_axis(hpcz_model *m, hpcz_node *n, int64_t axis)
{
    n->attrs = hpcz_model_alloc(m, sizeof *n->attrs);
    n->attrs[0].name = hpcz_model_strdup(m, "axis");
    n->attrs[0].type = HPCZ_ATTR_INT;
    n->attrs[0].i = axis;
    n->n_attrs = 1;
}

/* The graph of case c with random data; x (graph input) filled in *x. For
 * the saturation case, *exact gets the expected outputs. */
static hpcz_model *build(const qcase *c, hpcz_array *x, float *ys_out, int32_t *yzp_out,
                         int64_t *K_out)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    bool conv = !strcmp(c->op, "Conv"), gemm = !strcmp(c->op, "Gemm");
    int64_t M, K;
    int w_axis;
    if (conv) {
        M = c->wd[0];
        K = 1;
        for (int i = 1; i < c->wrank; i++)
            K *= c->wd[i];
        w_axis = 0;
    } else if (gemm) { /* transB=1: W [M][K] */
        M = c->wd[0];
        K = c->wd[1];
        w_axis = 0;
    } else if (!strcmp(c->op, "ConvTranspose")) { /* W [Cin][M][kh][kw], kernel = stride */
        M = c->wd[1];
        K = c->wd[0]; /* taps per output */
        w_axis = 1;
    } else {
        K = c->wd[0];
        M = c->wd[1];
        w_axis = 1;
    }
    *K_out = K;
    /* x */
    hpcz_value *xv = hpcz_graph_value(g, "x");
    xv->dtype = c->xdt;
    xv->ndim = c->xrank;
    xv->dims = hpcz_model_alloc(m, (size_t)c->xrank * sizeof *xv->dims);
    for (int i = 0; i < c->xrank; i++)
        xv->dims[i].size = c->xd[i];
    hpcz_graph_add_input(g, xv, &err);
    hpcz_array_alloc(x, c->xdt, c->xrank, c->xd, &err);
    int xlo = c->xdt == HPCZ_DTYPE_UINT8 ? 0 : -128, xhi = xlo + 255;
    for (int64_t i = 0; i < x->numel; i++)
        set_int(x->data, c->xdt, i, c->saturate ? 255 : irange(xlo, xhi));
    float xs = c->saturate ? 1.0f : frange(0.005f, 0.05f);
    int xzp = c->saturate ? 0 : c->xdt == HPCZ_DTYPE_UINT8 ? irange(0, 255) : irange(-30, 30);
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = xs;
    set_int(init(m, "xzp", c->xdt, 0, NULL), c->xdt, 0, xzp);
    /* W */
    int64_t nch = c->per_channel ? M : 1, chd[1] = {nch};
    void *w = init(m, "wq", c->wdt, c->wrank, c->wd);
    float *ws = init(m, "ws", HPCZ_DTYPE_FLOAT, c->per_channel ? 1 : 0, chd);
    void *wzp = init(m, "wzp", c->wdt, c->per_channel ? 1 : 0, chd);
    double wsum = 0;
    for (int64_t i = 0; i < nch; i++) {
        ws[i] = c->saturate ? 1.0f : frange(0.002f, 0.03f);
        wsum += ws[i];
        set_int(wzp, c->wdt, i, c->wdt == HPCZ_DTYPE_UINT8 ? irange(100, 155) : 0);
    }
    int64_t wn = 1;
    for (int i = 0; i < c->wrank; i++)
        wn *= c->wd[i];
    for (int64_t i = 0; i < wn; i++) {
        int v;
        if (c->saturate) {
            /* column/row patterns: all 127, all -128, mixed */
            int64_t ch = conv || gemm ? i / K : i % M;
            v = ch % 3 == 0 ? 127 : ch % 3 == 1 ? -128 : (urand() & 1 ? 127 : -128);
        } else {
            v = irange(c->wlo, c->whi);
        }
        set_int(w, c->wdt, i, v);
    }
    /* y scale: spread the outputs over the range */
    float ys = c->saturate ? 262144.0f
                           : (float)(xs * (wsum / (double)nch) * 90.0 * 90.0 * sqrt((double)K) / 40.0);
    int ylo = c->ydt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    int yzp = c->saturate ? 0 : irange(ylo + 60, ylo + 195);
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = ys;
    set_int(init(m, "yzp", c->ydt, 0, NULL), c->ydt, 0, yzp);
    *ys_out = ys;
    *yzp_out = yzp;
    /* b */
    if (c->bias) {
        int64_t bd[1] = {M};
        int32_t *b = init(m, "bq", HPCZ_DTYPE_INT32, 1, bd);
        float *bs = init(m, "bs", HPCZ_DTYPE_FLOAT, 1, bd);
        for (int64_t i = 0; i < M; i++) {
            b[i] = irange(-20000, 20000);
            bs[i] = xs * ws[c->per_channel ? i : 0] * (c->odd_bias_scale ? 1.37f : 1.0f);
        }
    }
    const char *dx[] = {"x", "xs", "xzp"}, *dwi[] = {"wq", "ws", "wzp"}, *db[] = {"bq", "bs"};
    node(g, "DequantizeLinear", "dqx", 3, dx, "xf");
    hpcz_node *ndw = node(g, "DequantizeLinear", "dqw", 3, dwi, "wf");
    if (c->per_channel)
        set_axis(m, ndw, w_axis);
    if (c->bias) {
        hpcz_node *ndb = node(g, "DequantizeLinear", "dqb", 2, db, "bf");
        set_axis(m, ndb, 0);
    }
    const char *oi[] = {"xf", "wf", "bf"};
    hpcz_node *op = node(g, c->op, "op", c->bias ? 3 : 2, oi, "yf");
    parse_attrs(m, op, c->attrs);
    if (gemm) {
        hpcz_attr *a = hpcz_model_alloc(m, (op->n_attrs + 1) * sizeof *a);
        if (op->n_attrs)
            memcpy(a, op->attrs, op->n_attrs * sizeof *a);
        a[op->n_attrs].name = hpcz_model_strdup(m, "transB");
        a[op->n_attrs].type = HPCZ_ATTR_INT;
        a[op->n_attrs].i = 1;
        op->attrs = a;
        op->n_attrs++;
    }
    const char *qi[] = {"yf", "ys", "yzp"};
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    return m;
}

/* Runs m; *fused: how many QuantizeLinear nodes were skipped (fused). */
static bool run(hpcz_model *m, const char *backend, int threads, bool nofuse,
                const hpcz_array *x, hpcz_array *out, int *fused, hpcz_error *err)
{
    if (nofuse)
        setenv("HPCZ_NO_INT8_FUSION", "1", 1);
    hpcz_plan_opts po = {.threads = threads, .backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p) {
        unsetenv("HPCZ_NO_INT8_FUSION");
        return false;
    }
    size_t nn = hpcz_plan_n_nodes(p);
    hpcz_plan_stats stats;
    hpcz_plan_get_stats(p, &stats);
    last_const_bytes = stats.const_bytes;
    uint64_t *times = calloc(nn + 1, sizeof *times);
    hpcz_plan_set_profile(p, times);
    bool ok = hpcz_plan_run(p, x, out, err) == HPCZ_OK; /* plans here with symbolic dims */
    unsetenv("HPCZ_NO_INT8_FUSION");
    last_ran = 0;
    for (size_t k = 0; k < nn; k++)
        last_ran += times[k] != 0;
    if (fused) {
        *fused = 0;
        for (size_t k = 0; k < nn; k++)
            if (!strcmp(hpcz_plan_node(p, k)->op_type, "QuantizeLinear"))
                *fused += times[k] == 0;
    }
    hpcz_plan_set_profile(p, NULL);
    free(times);
    hpcz_plan_free(p);
    return ok;
}

/* Exact expected output of the saturation case (MatMul or Gemm, x = 255,
 * xzp = 0, xs = ws = 1, no bias): rint(acc / ys) clamped. */
static int exact_sat(const qcase *c, const hpcz_model *m, int64_t row, int64_t col, int64_t K,
                     float ys)
{
    const hpcz_value *wv = hpcz_graph_find_value(m->graph, "wq");
    hpcz_error err = {0};
    const void *w = hpcz_tensor_data(wv->init, &err);
    int64_t M = !strcmp(c->op, "MatMul") ? c->wd[1] : c->wd[0];
    int64_t acc = 0;
    for (int64_t k = 0; k < K; k++) {
        int64_t i = !strcmp(c->op, "MatMul") ? k * M + col : col * K + k;
        acc += 255 * (int64_t)get_int(w, c->wdt, i);
    }
    (void)row;
    double v = nearbyint((double)acc / ys);
    int lo = c->ydt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    return v < lo ? lo : v > lo + 255 ? lo + 255 : (int)v;
}

static void check(const qcase *c)
{
    cases++;
    hpcz_array x = {0}, a = {0}, b = {0}, r = {0}, u = {0};
    float ys;
    int32_t yzp;
    int64_t K;
    hpcz_model *m = build(c, &x, &ys, &yzp, &K);
    hpcz_error err = {0};
    int fa = 0, fb = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, &x, &a, &fa, &err) &&
              run(m, "cpu", 2, false, &x, &b, &fb, &err) &&
              run(m, "cpu", 1, true, &x, &u, &fu, &err) &&
              run(m, "ref", 1, false, &x, &r, NULL, &err);
    if (!ok) {
        FAIL("%s: %s", c->label, err.msg);
        goto out;
    }
    if (!fa || !fb || fu) {
        FAIL("%s: fused %d/%d (expected), unfused run fused %d", c->label, fa, fb, fu);
        goto out;
    }
    if (a.nbytes != b.nbytes || memcmp(a.data, b.data, a.nbytes)) {
        FAIL("%s: 1 and 2 threads differ", c->label);
        goto out;
    }
    /* the other kernel paths: same bytes */
    static const char *const paths[] = {"HPCZ_QGEMM_NO_U8S8", "HPCZ_QGEMM_NO_AVX2",
                                        "HPCZ_QGEMM_NO_DW", "HPCZ_QGEMM_NO_RQSAT",
                                        "HPCZ_QGEMM_NO_DWCL", "HPCZ_QGEMM_NO_WCHUNK",
                                        "HPCZ_QGEMM_NO_VNNI", "HPCZ_QGEMM_NO_WINDOW",
                                        "HPCZ_QGEMM_NO_AVX512", "HPCZ_QGEMM_NO_AMX"};
    static const unsigned combos[] = {1,  2,  3,   4,   7,   8,   12,  16,  32, 64,
                                      65, 72, 128, 192, 256, 264, 512, 520, 640};
    for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
        hpcz_array o = {0};
        for (int e = 0; e < 10; e++)
            if (combos[i] & (1u << e))
                setenv(paths[e], "1", 1);
        bool rok = run(m, "cpu", 2, false, &x, &o, NULL, &err);
        for (int e = 0; e < 10; e++)
            unsetenv(paths[e]);
        bool same = rok && o.nbytes == a.nbytes && !memcmp(o.data, a.data, a.nbytes);
        hpcz_array_release(&o);
        if (!same) {
            FAIL("%s: kernel path variant %u (bits: NO_U8S8, NO_AVX2, NO_DW, NO_RQSAT, NO_DWCL, NO_WCHUNK, NO_VNNI, NO_WINDOW, NO_AVX512, NO_AMX) changes the result",
                 c->label, combos[i]);
            goto out;
        }
    }
    if (a.numel != r.numel || a.dtype != r.dtype || a.numel != u.numel) {
        FAIL("%s: shapes/dtypes differ from the reference", c->label);
        goto out;
    }
    int maxd = 0, maxu = 0;
    int64_t nd = 0, nsat = 0, nlo = 0;
    int lo = c->ydt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t i = 0; i < a.numel; i++) {
        int va = get_int(a.data, c->ydt, i), vr = get_int(r.data, c->ydt, i);
        int vu = get_int(u.data, c->ydt, i);
        int d = abs(va - vr);
        maxd = d > maxd ? d : maxd;
        maxu = abs(va - vu) > maxu ? abs(va - vu) : maxu;
        nd += d != 0;
        nsat += va == lo + 255;
        nlo += va == lo;
    }
    int64_t nexact_bad = 0;
    if (c->saturate && strcmp(c->op, "Conv")) {
        int64_t M = !strcmp(c->op, "MatMul") ? c->wd[1] : c->wd[0];
        for (int64_t i = 0; i < a.numel; i++)
            nexact_bad += get_int(a.data, c->ydt, i) != exact_sat(c, m, i / M, i % M, K, ys);
    }
    bool good = maxd <= 1 && maxu <= 1 && (!c->saturate || (nexact_bad == 0 && maxd == 0));
    if (!good)
        failures++;
    printf("%s %-34s %-6s K=%-5lld max|fused-ref| %d (%lld of %lld differ), max|fused-unfused| %d"
           ", clamped %lld/%lld%s\n",
           good ? "PASS" : "FAIL", c->label, c->op, (long long)K, maxd, (long long)nd,
           (long long)a.numel, maxu, (long long)nlo, (long long)nsat,
           c->saturate && strcmp(c->op, "Conv") ? (nexact_bad ? ", NOT exact" : ", exact") : "");
    (void)yzp;
out:
    hpcz_array_release(&x);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&r);
    hpcz_array_release(&u);
    hpcz_model_free(m);
}

#define U8 HPCZ_DTYPE_UINT8
#define S8 HPCZ_DTYPE_INT8
#define D4(a, b, c, d) {a, b, c, d, 0}

static const qcase qcases[] = {
    /* ConvTranspose with kernel = stride: a 1x1 Conv into Cout * kh * kw maps */
    {"convtranspose 2x2/2 u8/s8 per-channel", "ConvTranspose", U8, S8, U8, true, false, false, 4,
     D4(1, 24, 10, 15), 4, D4(24, 24, 2, 2), "strides=is:2,2", -63, 63, false},
    {"convtranspose 3x2/(3,2) s8 bias", "ConvTranspose", S8, S8, S8, false, true, false, 4,
     D4(2, 5, 7, 9), 4, D4(5, 3, 3, 2), "strides=is:3,2;pads=is:0,0,0,0", -128, 127, false},
    {"convtranspose 2x2/2 to 1 channel", "ConvTranspose", U8, S8, U8, true, true, false, 4,
     D4(1, 24, 20, 30), 4, D4(24, 1, 2, 2), "strides=is:2,2", -63, 63, false},
    {"conv3x3 pad1 u8/s8 per-channel", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 16, 28, 28), 4, D4(16, 16, 3, 3), "pads=is:1,1,1,1", -63, 63, false},
    {"conv3x3 odd sizes full-range w", "Conv", U8, S8, U8, true, true, false, 4,
     D4(2, 5, 13, 11), 4, D4(7, 5, 3, 3), "pads=is:1,0,2,1", -128, 127, false},
    {"conv s2 dil2 per-tensor s8 out", "Conv", U8, S8, S8, false, true, false, 4,
     D4(1, 3, 23, 20), 4, D4(6, 3, 3, 3), "strides=is:2,2;dilations=is:2,2;pads=is:2,1,0,2",
     -128, 127, false},
    {"conv s8 act, u8 weights with zp", "Conv", S8, U8, U8, true, false, false, 4,
     D4(1, 8, 9, 10), 4, D4(9, 8, 3, 3), "pads=is:1,1,1,1", 0, 255, false},
    {"conv grouped", "Conv", U8, S8, U8, true, true, false, 4, D4(1, 8, 12, 12), 4,
     D4(10, 4, 3, 3), "group=i:2;pads=is:1,1,1,1", -63, 63, false},
    {"conv depthwise", "Conv", U8, S8, U8, true, true, false, 4, D4(1, 16, 15, 17), 4,
     D4(16, 1, 3, 3), "group=i:16;pads=is:1,1,1,1", -63, 63, false},
    {"conv depthwise s2 5x5 s8 full-range", "Conv", S8, S8, U8, true, true, false, 4,
     D4(2, 12, 29, 33), 4, D4(12, 1, 5, 5), "group=i:12;strides=is:2,2;pads=is:2,2,2,2",
     -128, 127, false},
    {"conv depthwise x2 multiplier dil2", "Conv", U8, S8, S8, true, true, false, 4,
     D4(1, 6, 14, 11), 4, D4(12, 1, 3, 3), "group=i:6;dilations=is:2,2;pads=is:2,1,2,1",
     -63, 63, false},
    /* depthwise fast paths (flat stride 1, stride 2 along W) with many
     * channels per task, and the shapes around them that fall back */
    {"conv depthwise 7x7 plane 40 ch (flat, runs of channels)", "Conv", U8, S8, U8, true, true,
     false, 4, D4(2, 40, 7, 7), 4, D4(40, 1, 3, 3), "group=i:40;pads=is:1,1,1,1", -63, 63,
     false},
    {"conv depthwise narrow W=5 pads 0,2,1,0", "Conv", S8, S8, U8, true, true, false, 4,
     D4(2, 7, 6, 5), 4, D4(7, 1, 3, 3), "group=i:7;pads=is:0,2,1,0", -63, 63, false},
    {"conv depthwise narrow W=4 s2 pads 1", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 9, 5, 4), 4, D4(9, 1, 3, 3), "group=i:9;strides=is:2,2;pads=is:1,1,1,1", -63, 63,
     false},
    {"conv depthwise W=15 no pads", "Conv", U8, S8, S8, true, true, false, 4,
     D4(1, 3, 9, 15), 4, D4(3, 1, 3, 3), "group=i:3", -63, 63, false},
    {"conv depthwise s2 mobilenet-like s8 out", "Conv", U8, S8, S8, true, true, false, 4,
     D4(1, 24, 14, 14), 4, D4(24, 1, 3, 3), "group=i:24;strides=is:2,2;pads=is:1,1,1,1", -63,
     63, false},
    {"conv depthwise s2 asym pads odd wide", "Conv", S8, S8, U8, true, true, false, 4,
     D4(2, 5, 9, 37), 4, D4(5, 1, 3, 3), "group=i:5;strides=is:2,2;pads=is:0,0,1,1", -128,
     127, false},
    {"conv depthwise s(1,2) x2 multiplier 4x5", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 3, 11, 40), 4, D4(6, 1, 4, 5), "group=i:3;strides=is:1,2;pads=is:2,1,1,2", -63, 63,
     false},
    {"conv depthwise s(2,1) (generic)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 4, 12, 13), 4, D4(4, 1, 3, 3), "group=i:4;strides=is:2,1;pads=is:1,1,1,1", -63, 63,
     false},
    {"conv depthwise 1-D s2", "Conv", U8, S8, U8, false, true, false, 3, D4(2, 6, 50, 0), 3,
     D4(6, 1, 5, 0), "group=i:6;strides=is:2;pads=is:2,2", -63, 63, false},
    {"conv depthwise s3 (generic)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 4, 17, 19), 4, D4(4, 1, 3, 3), "group=i:4;strides=is:3,3;pads=is:1,1,1,1", -63, 63,
     false},
    /* small maps with a multiple of 16 channels: channels in vector lanes
     * (dwcl, HPCZ_QGEMM_NO_DWCL turns it off) */
    {"conv depthwise dwcl 7x7 32 ch", "Conv", U8, S8, U8, true, true, false, 4,
     D4(2, 32, 7, 7), 4, D4(32, 1, 3, 3), "group=i:32;pads=is:1,1,1,1", -63, 63, false},
    /* depthwise 1x1 (a hard-act-region HardSwish gate): each channel's
     * plane 16 pixels a step on AVX512-BW (dw1_task; a masked tail) */
    {"conv depthwise 1x1 13x13 32 ch", "Conv", U8, S8, U8, true, true, false, 4,
     D4(2, 32, 13, 13), 4, D4(32, 1, 1, 1), "group=i:32", -63, 63, false},
    {"conv depthwise 1x1 14x14 48 ch s8 full-range", "Conv", S8, S8, S8, true, true, false, 4,
     D4(1, 48, 14, 14), 4, D4(48, 1, 1, 1), "group=i:48", -128, 127, false},
    {"conv depthwise dwcl s2 14x14 48 ch s8 full-range", "Conv", S8, S8, S8, true, true, false,
     4, D4(1, 48, 14, 14), 4, D4(48, 1, 3, 3), "group=i:48;strides=is:2,2;pads=is:1,1,1,1",
     -128, 127, false},
    {"conv depthwise dwcl 5x5 dil2 asym pads 9x11", "Conv", U8, S8, U8, true, true, true, 4,
     D4(1, 16, 9, 11), 4, D4(16, 1, 5, 5), "group=i:16;dilations=is:2,1;pads=is:3,1,2,2",
     -63, 63, false},
    {"conv depthwise dwcl 3x3 map (< 16 pixels)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 16, 3, 3), 4, D4(16, 1, 3, 3), "group=i:16;pads=is:1,1,1,1", -63, 63, false},
    {"conv depthwise dwcl s2 5x5 -> 3x3 32 ch", "Conv", U8, S8, S8, true, true, false, 4,
     D4(2, 32, 5, 5), 4, D4(32, 1, 3, 3), "group=i:32;strides=is:2,2;pads=is:1,1,1,1", -63,
     63, false},
    {"conv depthwise dwcl 1-D s2 k4", "Conv", S8, S8, U8, false, true, false, 3,
     D4(2, 16, 40, 0), 3, D4(16, 1, 4, 0), "group=i:16;strides=is:2;pads=is:1,2", -63, 63,
     false},
    /* 7x7 images: 4 panels, so the tasks also split the channel blocks;
     * the last panel (1 column) runs as GEMVs */
    {"conv 1x1 7x7 512->256 (split channels)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 512, 7, 7), 4, D4(256, 512, 1, 1), NULL, -63, 63, false},
    {"conv 3x3 7x7 s8 act (split, implicit)", "Conv", S8, S8, S8, true, true, false, 4,
     D4(1, 64, 7, 7), 4, D4(132, 64, 3, 3), "pads=is:1,1,1,1", -64, 64, false},
    /* weights beyond 256 KiB: a task's panels gathered first, the channel
     * blocks in chunks over all of them (implicit_group_task) */
    {"conv 3x3 128->256 6x6 (weight chunks)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 128, 6, 11), 4, D4(256, 128, 3, 3), "pads=is:1,1,1,1", -64, 64, false},
    {"conv 3x3 s2 128->260 (weight chunks, edge block)", "Conv", S8, S8, S8, true, true, false,
     4, D4(2, 128, 9, 13), 4, D4(260, 128, 3, 3), "strides=is:2,2;pads=is:1,0,1,1", -63, 63, false},
    {"conv 1x1 s8 act 7-bit w (direct)", "Conv", S8, S8, U8, true, true, false, 4,
     D4(2, 37, 9, 11), 4, D4(21, 37, 1, 1), NULL, -64, 64, false},
    {"conv 1x1 u8 act 7-bit w (direct)", "Conv", U8, S8, S8, false, true, false, 4,
     D4(1, 24, 8, 8), 4, D4(16, 24, 1, 1), NULL, -63, 63, false},
    {"conv 7x7 s2 pad3 u8 (stem-like)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 3, 40, 75), 4, D4(8, 3, 7, 7), "strides=is:2,2;pads=is:3,3,3,3", -63, 63, false},
    {"conv 3x3 s2 s8 act wide rows", "Conv", S8, S8, S8, true, true, false, 4,
     D4(1, 5, 21, 67), 4, D4(6, 5, 3, 3), "strides=is:2,2;pads=is:1,1,1,1", -64, 64, false},
    {"conv 1x1 (pointwise)", "Conv", U8, S8, U8, true, true, false, 4, D4(2, 33, 7, 9), 4,
     D4(19, 33, 1, 1), NULL, -128, 127, false},
    /* taps of a pixel are a run of x (window_conv: one channel per group, no
     * padding): an STFT-like 1-D conv (kernel past the stride, K not a
     * multiple of 4), s8 x; a 1xK 2-D one with strides in both axes */
    {"conv 1-D window k130 s37 (STFT-like) s8 x", "Conv", S8, S8, U8, true, true, false, 3,
     D4(2, 1, 700, 0), 3, D4(19, 1, 130, 0), "strides=is:37", -63, 63, false},
    {"conv 2-D window 1x9 s(2,3)", "Conv", U8, S8, S8, false, true, false, 4,
     D4(1, 1, 7, 60), 4, D4(9, 1, 1, 9), "strides=is:2,3", -63, 63, false},
    /* AMX tiles (16 channels x 64 k): oww_melspec's STFT (257 channels, a
     * 1-row last tile; K a multiple of 64), a MiniLM-sized MatMul (64 rows),
     * K past the last 64 with full-range weights, groups of 20 channels */
    {"conv 1-D window k512 s160 257 ch (AMX)", "Conv", S8, S8, U8, true, true, false, 3,
     D4(1, 1, 4000, 0), 3, D4(257, 1, 512, 0), "strides=is:160", -63, 63, false},
    {"matmul 64x384 -> 1536 (AMX)", "MatMul", U8, S8, U8, true, false, false, 2,
     D4(64, 384, 0, 0), 2, D4(384, 1536, 0, 0), NULL, -64, 64, false},
    {"gemm 21 rows K 200 full-range w (AMX)", "Gemm", S8, S8, S8, true, true, false, 2,
     D4(21, 200, 0, 0), 2, D4(70, 200, 0, 0), NULL, -128, 127, false},
    {"conv grouped 2 x (9 -> 20) 3x3 (AMX)", "Conv", U8, S8, U8, true, true, false, 4,
     D4(1, 18, 13, 11), 4, D4(40, 9, 3, 3), "group=i:2;pads=is:1,1,1,1", -63, 63, false},
    {"conv 1-D", "Conv", U8, S8, S8, true, true, false, 3, D4(2, 3, 40, 0), 3, D4(5, 3, 4, 0),
     "strides=is:3;pads=is:1,2", -128, 127, false},
    {"conv float-bias path (bias scale)", "Conv", U8, S8, U8, true, true, true, 4,
     D4(1, 6, 8, 8), 4, D4(5, 6, 3, 3), "pads=is:1,1,1,1", -63, 63, false},
    {"conv s8 act 7-bit w (u8s8 path)", "Conv", S8, S8, S8, true, true, false, 4,
     D4(2, 12, 11, 9), 4, D4(13, 12, 3, 3), "strides=is:2,1;pads=is:1,1,1,1", -64, 64, false},
    {"conv 5x5 s8 act u8 out 7-bit w", "Conv", S8, S8, U8, false, true, false, 4,
     D4(1, 7, 19, 21), 4, D4(11, 7, 5, 5), "pads=is:2,2,2,2", -63, 63, false},
    {"matmul s8 act 7-bit w", "MatMul", S8, S8, U8, true, false, false, 2, D4(19, 201, 0, 0), 2,
     D4(201, 35, 0, 0), NULL, -63, 63, false},
    {"conv 3-D pad1 7-bit w", "Conv", U8, S8, U8, true, true, false, 5, {1, 3, 5, 6, 7}, 5,
     {4, 3, 3, 3, 3}, "pads=is:1,1,1,1,1,1", -63, 63, false},
    {"conv 3-D s8 act dil2", "Conv", S8, S8, S8, true, true, false, 5, {2, 2, 6, 7, 9}, 5,
     {3, 2, 2, 3, 3}, "pads=is:1,2,2,0,2,2;dilations=is:1,2,2", -64, 64, false},
    {"gemm transB per-channel", "Gemm", U8, S8, U8, true, true, false, 2, D4(3, 77, 0, 0), 2,
     D4(10, 77, 0, 0), NULL, -63, 63, false},
    {"gemm 37 rows s8/s8", "Gemm", S8, S8, S8, false, true, false, 2, D4(37, 130, 0, 0), 2,
     D4(21, 130, 0, 0), NULL, -128, 127, false},
    {"matmul 3-D x per-channel", "MatMul", U8, S8, U8, true, false, false, 3, D4(2, 9, 65, 0), 2,
     D4(65, 23, 0, 0), NULL, -128, 127, false},
    {"saturation matmul x=255 w=+-127/-128", "MatMul", U8, S8, S8, false, false, false, 2,
     D4(5, 1024, 0, 0), 2, D4(1024, 9, 0, 0), NULL, -128, 127, true},
    {"saturation gemm x=255 w=+-127/-128", "Gemm", U8, S8, S8, false, false, false, 2,
     D4(17, 1023, 0, 0), 2, D4(6, 1023, 0, 0), NULL, -128, 127, true},
    {"saturation conv x=255 (vs ref)", "Conv", U8, S8, S8, false, false, false, 4,
     D4(1, 32, 6, 6), 4, D4(6, 32, 4, 4), NULL, -128, 127, true},
};

/* DQ(a) + DQ(b) -> Add (or Mul: op) -> Q, n elements. */
static void check_add(const char *label, const char *op, int adt, int bdt, int ydt, int64_t n)
{
    bool mul = !strcmp(op, "Mul");
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    int64_t dims[2] = {3, n / 3};
    hpcz_array in[2];
    memset(in, 0, sizeof in);
    const char *nm[2] = {"a", "b"};
    int dts[2] = {adt, bdt};
    for (int i = 0; i < 2; i++) {
        hpcz_value *v = hpcz_graph_value(g, nm[i]);
        v->dtype = dts[i];
        v->ndim = 2;
        v->dims = hpcz_model_alloc(m, 2 * sizeof *v->dims);
        v->dims[0].size = dims[0];
        v->dims[1].size = dims[1];
        hpcz_graph_add_input(g, v, &err);
        hpcz_array_alloc(&in[i], dts[i], 2, dims, &err);
        int lo = dts[i] == HPCZ_DTYPE_UINT8 ? 0 : -128;
        for (int64_t k = 0; k < in[i].numel; k++)
            set_int(in[i].data, dts[i], k, irange(lo, lo + 255));
    }
    *(float *)init(m, "as", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.05f);
    set_int(init(m, "az", adt, 0, NULL), adt, 0, irange(0, 100));
    *(float *)init(m, "bs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.05f);
    set_int(init(m, "bz", bdt, 0, NULL), bdt, 0, irange(-20, 20));
    /* (products reach 160: a Mul's output scale about 1) */
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = mul ? frange(0.4f, 0.9f) : frange(0.03f, 0.08f);
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, ydt == HPCZ_DTYPE_UINT8 ? 100 : -10);
    const char *da[] = {"a", "as", "az"}, *db[] = {"b", "bs", "bz"}, *ad[] = {"af", "bf"},
               *qi[] = {"sum", "ys", "yz"};
    node(g, "DequantizeLinear", "dqa", 3, da, "af");
    node(g, "DequantizeLinear", "dqb", 3, db, "bf");
    node(g, op, "add", 2, ad, "sum");
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    hpcz_array a = {0}, b = {0}, u = {0}, r = {0}, v = {0};
    int fa = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, in, &a, &fa, &err) &&
              run(m, "cpu", 2, false, in, &b, NULL, &err) &&
              run(m, "cpu", 1, true, in, &u, &fu, &err) && run(m, "ref", 1, false, in, &r, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX2", "1", 1);
    ok = ok && run(m, "cpu", 1, false, in, &v, NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX2");
    int maxr = 0;
    bool same = false;
    if (ok) {
        same = a.nbytes == u.nbytes && !memcmp(a.data, u.data, a.nbytes) &&
               !memcmp(a.data, b.data, a.nbytes) && !memcmp(a.data, v.data, a.nbytes);
        for (int64_t k = 0; k < a.numel; k++) {
            int d = abs(get_int(a.data, ydt, k) - get_int(r.data, ydt, k));
            maxr = d > maxr ? d : maxr;
        }
    }
    bool good = ok && fa == 1 && !fu && same && maxr <= 1;
    if (!good)
        failures++;
    printf("%s %-34s %-6s n=%lld fused %d, same bytes as unfused/2 threads/no-AVX2: %s, "
           "max|fused-ref| %d%s%s\n",
           good ? "PASS" : "FAIL", label, op, (long long)a.numel, fa, same ? "yes" : "NO", maxr,
           ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in[0]);
    hpcz_array_release(&in[1]);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_array_release(&r);
    hpcz_array_release(&v);
    hpcz_model_free(m);
}

/* Graph input x of n elements of integer type xdt, and a random feed for it
 * covering the type's whole range. */
static hpcz_array int_input(hpcz_model *m, int xdt, int64_t n, hpcz_error *err)
{
    hpcz_value *v = hpcz_graph_value(m->graph, "x");
    v->dtype = xdt;
    v->ndim = 1;
    v->dims = hpcz_model_alloc(m, sizeof *v->dims);
    v->dims[0].size = n;
    hpcz_graph_add_input(m->graph, v, err);
    hpcz_array in = {0};
    hpcz_array_alloc(&in, xdt, 1, &n, err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t k = 0; k < n; k++)
        set_int(in.data, xdt, k, irange(lo, lo + 255));
    return in;
}

/* DQ(x) -> op [, scalar constant c] -> Q on n elements (odd: the float
 * kernels' scalar tails run too): fused into a table (the Q does not run),
 * the same bytes as the cpu backend unfused and with 2 threads, within 1
 * of the ref backend. attrs as in qcase. */
static void check_table(const char *label, const char *op, const char *attrs, int nconst, float c0,
                        float c1, int xdt, int ydt, int64_t n)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_array in = int_input(m, xdt, n, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.02f, 0.05f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.04f);
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, ydt == HPCZ_DTYPE_UINT8 ? 60 : -10);
    if (nconst > 0)
        *(float *)init(m, "c0", HPCZ_DTYPE_FLOAT, 0, NULL) = c0;
    if (nconst > 1)
        *(float *)init(m, "c1", HPCZ_DTYPE_FLOAT, 0, NULL) = c1;
    const char *dq[] = {"x", "xs", "xz"}, *oi[] = {"xf", "c0", "c1"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    hpcz_node *on = node(g, op, "op", 1 + nconst, oi, "f");
    if (attrs)
        parse_attrs(m, on, attrs);
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    hpcz_array a = {0}, b = {0}, u = {0}, r = {0}, n5 = {0};
    int fa = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, &in, &a, &fa, &err) &&
              run(m, "cpu", 2, false, &in, &b, NULL, &err) &&
              run(m, "cpu", 1, true, &in, &u, &fu, &err) && run(m, "ref", 1, false, &in, &r, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX512", "1", 1); /* the AVX2 (or scalar) lookups instead of AVX-512 VBMI */
    ok = ok && run(m, "cpu", 1, false, &in, &n5, NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX512");
    int maxr = 0;
    bool same = ok && a.nbytes == u.nbytes && !memcmp(a.data, u.data, a.nbytes) &&
                !memcmp(a.data, b.data, a.nbytes) && !memcmp(a.data, n5.data, a.nbytes);
    for (int64_t k = 0; ok && k < a.numel; k++) {
        int d = abs(get_int(a.data, ydt, k) - get_int(r.data, ydt, k));
        maxr = d > maxr ? d : maxr;
    }
    bool good = ok && fa == 1 && !fu && same && maxr <= 1;
    if (!good)
        failures++;
    printf("%s %-34s %-11s n=%lld fused %d, same bytes as unfused/2 threads/NO_AVX512: %s, max|fused-ref| %d%s%s\n",
           good ? "PASS" : "FAIL", label, op, (long long)n, fa, same ? "yes" : "NO", maxr,
           ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_array_release(&r);
    hpcz_array_release(&n5);
    hpcz_model_free(m);
}

/* DQ(x) -> x * Clip(x + 3, 0, 6) / 6 (HardSwish as exporters write it: x read
 * twice) -> Q: one table (the Q does not run), the unfused bytes; with the
 * Clip's output also a graph output (read outside the chain) nothing fuses
 * and the bytes stay the same. */
static void check_table_chain(const char *label, int xdt, int ydt, int64_t n, bool leak)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_array in = int_input(m, xdt, n, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.03f, 0.06f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.03f);
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, ydt == HPCZ_DTYPE_UINT8 ? 30 : -100);
    *(float *)init(m, "three", HPCZ_DTYPE_FLOAT, 0, NULL) = 3.0f;
    *(float *)init(m, "zero", HPCZ_DTYPE_FLOAT, 0, NULL) = 0.0f;
    *(float *)init(m, "six", HPCZ_DTYPE_FLOAT, 0, NULL) = 6.0f;
    const char *dq[] = {"x", "xs", "xz"}, *ad[] = {"xf", "three"}, *cl[] = {"t", "zero", "six"},
               *mu[] = {"xf", "c"}, *dv[] = {"p", "six"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    node(g, "Add", "add", 2, ad, "t");
    node(g, "Clip", "clip", 3, cl, "c");
    node(g, "Mul", "mul", 2, mu, "p");
    node(g, "Div", "div", 2, dv, "f");
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    if (leak)
        hpcz_graph_add_output(g, hpcz_graph_value(g, "c"), &err);
    hpcz_array a[2] = {{0}}, b[2] = {{0}}, u[2] = {{0}};
    int fa = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, &in, a, &fa, &err) && run(m, "cpu", 2, false, &in, b, NULL, &err) &&
              run(m, "cpu", 1, true, &in, u, &fu, &err);
    bool same = ok;
    for (int o = 0; o < (leak ? 2 : 1) && same; o++)
        same = a[o].nbytes == u[o].nbytes && !memcmp(a[o].data, u[o].data, a[o].nbytes) &&
               !memcmp(a[o].data, b[o].data, a[o].nbytes);
    bool good = ok && fa == !leak && !fu && same;
    if (!good)
        failures++;
    printf("%s %-34s hardswish chain n=%lld fused %d (want %d), same bytes as unfused/2 threads: %s%s%s\n",
           good ? "PASS" : "FAIL", label, (long long)n, fa, !leak, same ? "yes" : "NO", ok ? "" : ": ",
           ok ? "" : err.msg);
    hpcz_array_release(&in);
    for (int o = 0; o < 2; o++) {
        hpcz_array_release(&a[o]);
        hpcz_array_release(&b[o]);
        hpcz_array_release(&u[o]);
    }
    hpcz_model_free(m);
}

/* Chains quantized inside, as `hpcz quantize` and ORT's quantizer write
 * them: SiLU as DQ(x) * DQ(Q(Sigmoid(DQ(x)))) (silu), HardSwish with Q -> DQ
 * after the Clip and after the Mul (hswish). Each Q ends a table of x_q (the
 * later ones through the earlier tables), so every Q is skipped and one
 * table of x remains; with the inner tensor also a graph output (leak) its
 * table stays too. The same bytes as unfused, and with 2 threads. */
static void check_table_qchain(const char *label, bool hswish, int xdt, int ydt, int64_t n, bool leak)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_array in = int_input(m, xdt, n, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.03f, 0.06f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ss", HPCZ_DTYPE_FLOAT, 0, NULL) = hswish ? frange(0.02f, 0.03f) : 1.0f / 255;
    set_int(init(m, "sz", HPCZ_DTYPE_UINT8, 0, NULL), HPCZ_DTYPE_UINT8, 0, hswish ? 3 : 0);
    *(float *)init(m, "ps", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.05f, 0.1f);
    set_int(init(m, "pz", xdt, 0, NULL), xdt, 0, lo + 120);
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.03f);
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, ydt == HPCZ_DTYPE_UINT8 ? 30 : -100);
    *(float *)init(m, "three", HPCZ_DTYPE_FLOAT, 0, NULL) = 3.0f;
    *(float *)init(m, "zero", HPCZ_DTYPE_FLOAT, 0, NULL) = 0.0f;
    *(float *)init(m, "six", HPCZ_DTYPE_FLOAT, 0, NULL) = 6.0f;
    const char *dq[] = {"x", "xs", "xz"}, *ad[] = {"xf", "three"}, *cl[] = {"t", "zero", "six"},
               *sq[] = {"c", "ss", "sz"}, *sd[] = {"c_q", "ss", "sz"}, *mu[] = {"xf", "cf"},
               *pq[] = {"p", "ps", "pz"}, *pd[] = {"p_q", "ps", "pz"}, *dv[] = {"pf", "six"},
               *sg[] = {"xf"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    if (hswish) {
        node(g, "Add", "add", 2, ad, "t");
        node(g, "Clip", "clip", 3, cl, "c");
    } else {
        node(g, "Sigmoid", "sig", 1, sg, "c");
    }
    node(g, "QuantizeLinear", "q_c", 3, sq, "c_q");
    node(g, "DequantizeLinear", "dq_c", 3, sd, "cf");
    if (hswish) {
        node(g, "Mul", "mul", 2, mu, "p");
        node(g, "QuantizeLinear", "q_p", 3, pq, "p_q");
        node(g, "DequantizeLinear", "dq_p", 3, pd, "pf");
        node(g, "Div", "div", 2, dv, "f");
    } else {
        node(g, "Mul", "mul", 2, mu, "f");
    }
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    if (leak)
        hpcz_graph_add_output(g, hpcz_graph_value(g, "c_q"), &err);
    hpcz_array a[2] = {{0}}, b[2] = {{0}}, u[2] = {{0}};
    int fa = 0, fu = 1, want = hswish ? 3 : 2, ran = 0;
    bool ok = run(m, "cpu", 1, false, &in, a, &fa, &err);
    ran = last_ran;
    ok = ok && run(m, "cpu", 2, false, &in, b, NULL, &err) && run(m, "cpu", 1, true, &in, u, &fu, &err);
    bool same = ok;
    for (int o = 0; o < (leak ? 2 : 1) && same; o++)
        same = a[o].nbytes == u[o].nbytes && !memcmp(a[o].data, u[o].data, a[o].nbytes) &&
               !memcmp(a[o].data, b[o].data, a[o].nbytes);
    bool good = ok && fa == want && ran == 1 + leak && !fu && same;
    if (!good)
        failures++;
    printf("%s %-34s %s, Q inside, n=%lld: Q skipped %d (want %d), nodes run %d (want %d), same bytes "
           "as unfused/2 threads: %s%s%s\n",
           good ? "PASS" : "FAIL", label, hswish ? "hardswish" : "silu", (long long)n, fa, want, ran,
           1 + leak, same ? "yes" : "NO", ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in);
    for (int o = 0; o < 2; o++) {
        hpcz_array_release(&a[o]);
        hpcz_array_release(&b[o]);
        hpcz_array_release(&u[o]);
    }
    hpcz_model_free(m);
}

/* Float tables: DQ(x) -> ops of x read by a float op (Exp here), as
 * `--placement latency` leaves PP-LCNet's HardSwish blocks: PaddleOCR's
 * HardSwish -> Mul -> Add by scalars (affine), or x + x * HardSigmoid(x)
 * (x read three times). The last op runs a float32 table of x_q (the DQ and
 * the other ops do not run); with a QuantizeLinear also reading its output
 * (withq) that Q becomes a table of x_q. The same bytes as with the float
 * tables off (HPCZ_NO_FLOAT_TABLES=1), as unfused (HPCZ_NO_INT8_FUSION=1), with
 * 2 threads and on the AVX2 and portable lookups. */
static void check_float_table(const char *label, bool affine, int xdt, int64_t n, bool withq)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_array in = int_input(m, xdt, n, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.03f, 0.06f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.03f);
    set_int(init(m, "yz", HPCZ_DTYPE_UINT8, 0, NULL), HPCZ_DTYPE_UINT8, 0, 30);
    *(float *)init(m, "a", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.5f, 1.5f);
    *(float *)init(m, "b", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(-0.5f, 0.5f);
    const char *dq[] = {"x", "xs", "xz"}, *hs[] = {"xf"}, *mu[] = {"a", "h"}, *ad[] = {"m", "b"},
               *sm[] = {"xf", "h"}, *sa[] = {"xf", "m"}, *ex[] = {"f"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    if (affine) {
        node(g, "HardSwish", "hswish", 1, hs, "h");
        node(g, "Mul", "mul", 2, mu, "m");
        node(g, "Add", "add", 2, ad, "f");
    } else {
        parse_attrs(m, node(g, "HardSigmoid", "hsig", 1, hs, "h"), "alpha=f:0.2;beta=f:0.5");
        node(g, "Mul", "mul", 2, sm, "m");
        node(g, "Add", "add", 2, sa, "f");
    }
    node(g, "Exp", "exp", 1, ex, "z");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "z"), &err);
    if (withq) {
        node(g, "QuantizeLinear", "q", 3, qi, "y");
        hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    }
    int nout = 1 + withq, want = 2 + withq, ran = 0, ran_off = 0;
    hpcz_array a[2] = {{0}}, b[2] = {{0}}, u[2] = {{0}}, t[2] = {{0}}, v[2] = {{0}}, s[2] = {{0}};
    bool ok = run(m, "cpu", 1, false, &in, a, NULL, &err);
    ran = last_ran;
    setenv("HPCZ_NO_FLOAT_TABLES", "1", 1);
    ok = ok && run(m, "cpu", 1, false, &in, t, NULL, &err);
    ran_off = last_ran;
    unsetenv("HPCZ_NO_FLOAT_TABLES");
    ok = ok && run(m, "cpu", 2, false, &in, b, NULL, &err) && run(m, "cpu", 1, true, &in, u, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX512", "1", 1); /* AVX2 gathers */
    ok = ok && run(m, "cpu", 1, false, &in, v, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX2", "1", 1); /* portable lookups */
    ok = ok && run(m, "cpu", 1, false, &in, s, NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX512");
    unsetenv("HPCZ_QGEMM_NO_AVX2");
    bool same = ok;
    for (int o = 0; o < nout && same; o++)
        same = a[o].nbytes == u[o].nbytes && !memcmp(a[o].data, u[o].data, a[o].nbytes) &&
               !memcmp(a[o].data, t[o].data, a[o].nbytes) && !memcmp(a[o].data, b[o].data, a[o].nbytes) &&
               !memcmp(a[o].data, v[o].data, a[o].nbytes) && !memcmp(a[o].data, s[o].data, a[o].nbytes);
    bool good = ok && ran == want && ran_off == 5 + withq && same;
    if (!good)
        failures++;
    printf("%s %-34s %s%s, n=%lld: nodes run %d (want %d; %d without float tables), same bytes as "
           "unfused/no float tables/2 threads/AVX2/portable: %s%s%s\n",
           good ? "PASS" : "FAIL", label, affine ? "hardswish*a+b" : "x+x*hardsigmoid(x)",
           withq ? " +Q" : "", (long long)n, ran, want, ran_off, same ? "yes" : "NO", ok ? "" : ": ",
           ok ? "" : err.msg);
    hpcz_array_release(&in);
    for (int o = 0; o < 2; o++) {
        hpcz_array_release(&a[o]);
        hpcz_array_release(&b[o]);
        hpcz_array_release(&u[o]);
        hpcz_array_release(&t[o]);
        hpcz_array_release(&v[o]);
        hpcz_array_release(&s[o]);
    }
    hpcz_model_free(m);
}

/* Graph input NAME [1, C, H, W] of dtype dt (H = W = 1: one value per
 * channel) and a random feed for it: 8-bit codes over the type's range, or
 * float in [-4, 4]. */
static hpcz_array nchw_input(hpcz_model *m, const char *name, int dt, int64_t C, int64_t H, int64_t W,
                             hpcz_error *err)
{
    hpcz_value *v = hpcz_graph_value(m->graph, name);
    int64_t d[4] = {1, C, H, W};
    v->dtype = dt;
    v->ndim = 4;
    v->dims = hpcz_model_alloc(m, 4 * sizeof *v->dims);
    for (int i = 0; i < 4; i++)
        v->dims[i].size = d[i];
    hpcz_graph_add_input(m->graph, v, err);
    hpcz_array in = {0};
    hpcz_array_alloc(&in, dt, 4, d, err);
    int lo = dt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t k = 0; k < in.numel; k++)
        if (dt == HPCZ_DTYPE_FLOAT)
            ((float *)in.data)[k] = frange(-4.0f, 4.0f);
        else
            set_int(in.data, dt, k, irange(lo, lo + 255));
    return in;
}

/* Per-channel tables: DQ(x) [1, C, H, W] with a tensor of one value per
 * channel computed in the run: a squeeze-excite gate, x + x * HardSigmoid(g)
 * (g float [1, C, 1, 1]) read by a float op (Exp), or x + DQ(b) (b 8-bit
 * [1, C, 1, 1]) -> Q; or with a BatchNormalization's constants, Relu(BN(x))
 * -> Q (tables made once). The last op runs the tables (the DQ of x and the other
 * ops do not run, nor the Q) on maps of at least 512 pixels, the same bytes as
 * with them off (HPCZ_NO_CHANNEL_TABLES=1), as unfused, with 2 threads and on
 * the AVX2 and portable lookups; on smaller maps nothing changes. */
enum { CT_GATE, CT_ADDQ, CT_BN };
static void check_channel_table(const char *label, int kind, int xdt, int64_t C, int64_t H, int64_t W)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    bool gate = kind == CT_GATE, bn = kind == CT_BN;
    hpcz_array in[2] = {{0}};
    in[0] = nchw_input(m, "x", xdt, C, H, W, &err);
    if (!bn)
        in[1] = nchw_input(m, "g", gate ? HPCZ_DTYPE_FLOAT : xdt, C, 1, 1, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.03f, 0.06f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "bs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.05f);
    set_int(init(m, "bz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.03f, 0.05f);
    set_int(init(m, "yz", HPCZ_DTYPE_INT8, 0, NULL), HPCZ_DTYPE_INT8, 0, -20);
    const char *dq[] = {"x", "xs", "xz"}, *hs[] = {"g"}, *mu[] = {"xf", "h"}, *ad[] = {"xf", "m"},
               *db[] = {"g", "bs", "bz"}, *ab[] = {"xf", "bf"}, *ex[] = {"f"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    int64_t cd[1] = {C};
    float *bnp[4];
    const char *bnn[] = {"sc", "bb", "mu", "var"}, *bi[] = {"xf", "sc", "bb", "mu", "var"},
               *re[] = {"r"}, *rq[] = {"f", "ys", "yz"};
    for (int k = 0; bn && k < 4; k++) {
        bnp[k] = init(m, bnn[k], HPCZ_DTYPE_FLOAT, 1, cd);
        for (int64_t c = 0; c < C; c++)
            bnp[k][c] = k == 3 ? frange(0.5f, 2.0f) : frange(-1.0f, 1.0f);
    }
    if (bn) {
        node(g, "BatchNormalization", "bn", 5, bi, "r");
        node(g, "Relu", "relu", 1, re, "f");
        node(g, "QuantizeLinear", "q", 3, rq, "y");
        hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    } else if (gate) {
        parse_attrs(m, node(g, "HardSigmoid", "hsig", 1, hs, "h"), "alpha=f:0.2;beta=f:0.5");
        node(g, "Mul", "mul", 2, mu, "m");
        node(g, "Add", "add", 2, ad, "f");
        node(g, "Exp", "exp", 1, ex, "z");
        hpcz_graph_add_output(g, hpcz_graph_value(g, "z"), &err);
    } else {
        node(g, "DequantizeLinear", "dqb", 3, db, "bf");
        node(g, "Add", "add", 2, ab, "f");
        node(g, "QuantizeLinear", "q", 3, qi, "y");
        hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    }
    bool big = H * W >= 512;
    int unfused = bn ? 4 : 5 - !gate, want = !big ? unfused : bn ? 1 : 3 - !gate, ran = 0, ran_off = 0;
    hpcz_array a = {0}, b = {0}, u = {0}, t = {0}, v = {0}, s = {0};
    bool ok = run(m, "cpu", 1, false, in, &a, NULL, &err);
    ran = last_ran;
    setenv("HPCZ_NO_CHANNEL_TABLES", "1", 1);
    ok = ok && run(m, "cpu", 1, false, in, &t, NULL, &err);
    ran_off = last_ran;
    unsetenv("HPCZ_NO_CHANNEL_TABLES");
    ok = ok && run(m, "cpu", 2, false, in, &b, NULL, &err) && run(m, "cpu", 1, true, in, &u, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX512", "1", 1);
    ok = ok && run(m, "cpu", 1, false, in, &v, NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX2", "1", 1);
    ok = ok && run(m, "cpu", 1, false, in, &s, NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX512");
    unsetenv("HPCZ_QGEMM_NO_AVX2");
    bool same = ok && a.nbytes == u.nbytes && !memcmp(a.data, u.data, a.nbytes) &&
                !memcmp(a.data, t.data, a.nbytes) && !memcmp(a.data, b.data, a.nbytes) &&
                !memcmp(a.data, v.data, a.nbytes) && !memcmp(a.data, s.data, a.nbytes);
    bool good = ok && ran == want && ran_off == unfused && same;
    if (!good)
        failures++;
    printf("%s %-34s %s, [1,%lld,%lld,%lld]: nodes run %d (want %d; %d without), same bytes as "
           "unfused/no channel tables/2 threads/AVX2/portable: %s%s%s\n",
           good ? "PASS" : "FAIL", label, gate ? "x+x*hardsigmoid(g)" : bn ? "Q(relu(bn(x)))" : "Q(x+DQ(b))",
           (long long)C,
           (long long)H, (long long)W, ran, want, ran_off, same ? "yes" : "NO", ok ? "" : ": ",
           ok ? "" : err.msg);
    hpcz_array_release(&in[0]);
    hpcz_array_release(&in[1]);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_array_release(&t);
    hpcz_array_release(&v);
    hpcz_array_release(&s);
    hpcz_model_free(m);
}

/* DQ(x) [N, C, H, W] -> GlobalAveragePool -> Q: one fused step (the Q does
 * not run) whose codes are Q of the exact mean (a double reference here: the
 * same bytes), within 1 of unfused (the float kernel sums in float32), the
 * same bytes with 2 threads and on the portable sum. */
static void check_gap(const char *label, int xdt, int ydt, int64_t N, int64_t C, int64_t H, int64_t W)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_array in = nchw_input(m, "x", xdt, C, H, W, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    if (N > 1) { /* a batch */
        hpcz_graph_value(g, "x")->dims[0].size = N;
        int64_t d[4] = {N, C, H, W};
        hpcz_array_release(&in);
        hpcz_array_alloc(&in, xdt, 4, d, &err);
        for (int64_t k = 0; k < in.numel; k++)
            set_int(in.data, xdt, k, irange(lo, lo + 255));
    }
    /* means near the middle of x's range, y's scale wide enough for the
     * spread of a mean of H * W codes: no saturated codes */
    float xs = frange(0.03f, 0.06f), ys = xs * (0.06f + 3.0f / sqrtf((float)(H * W)));
    int xz = irange(lo + 123, lo + 133), yz = ydt == HPCZ_DTYPE_UINT8 ? 128 : 0;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = xs;
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, xz);
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = ys;
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, yz);
    const char *dq[] = {"x", "xs", "xz"}, *gp[] = {"xf"}, *qi[] = {"p", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    node(g, "GlobalAveragePool", "gap", 1, gp, "p");
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    hpcz_array a = {0}, b = {0}, u = {0}, s = {0};
    int fa = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, &in, &a, &fa, &err) && run(m, "cpu", 2, false, &in, &b, NULL, &err) &&
              run(m, "cpu", 1, true, &in, &u, &fu, &err);
    setenv("HPCZ_QGEMM_NO_AVX2", "1", 1);
    ok = ok && run(m, "cpu", 1, false, &in, &s, NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX2");
    int64_t S = H * W, ndiff = 0, nexact = 0, nsat = 0;
    int maxu = 0;
    for (int64_t pl = 0; ok && pl < N * C; pl++) {
        int64_t sum = 0;
        for (int64_t i = 0; i < S; i++)
            sum += get_int(in.data, xdt, pl * S + i);
        float mean = (float)((double)xs * (double)(sum - S * xz) / (double)S);
        float v = nearbyintf(mean / ys) + (float)yz;
        float qlo = ydt == HPCZ_DTYPE_UINT8 ? 0.f : -128.f, qhi = ydt == HPCZ_DTYPE_UINT8 ? 255.f : 127.f;
        v = v < qlo ? qlo : v > qhi ? qhi : v;
        nexact += get_int(a.data, ydt, pl) == (int)v;
        nsat += v == qlo || v == qhi;
        int d = abs(get_int(a.data, ydt, pl) - get_int(u.data, ydt, pl));
        ndiff += d != 0;
        maxu = d > maxu ? d : maxu;
    }
    bool same = ok && !memcmp(a.data, b.data, a.nbytes) && !memcmp(a.data, s.data, a.nbytes);
    bool good = ok && fa == 1 && !fu && same && nexact == N * C && maxu <= 1 && !nsat;
    if (!good)
        failures++;
    printf("%s %-34s [%lld,%lld,%lld,%lld]: fused %d, exact mean %lld/%lld, max|fused-unfused| %d "
           "(%lld differ), same bytes with 2 threads/portable: %s%s%s\n",
           good ? "PASS" : "FAIL", label, (long long)N, (long long)C, (long long)H, (long long)W, fa,
           (long long)nexact, (long long)(N * C), maxu, (long long)ndiff, same ? "yes" : "NO",
           ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_array_release(&s);
    hpcz_model_free(m);
}

/* The graph of `hpcz quantize --mode dynamic`: DynamicQuantizeLinear(x) ->
 * MatMulInteger(x_q, W_q, x_zp, W_zp per column): the cpu backend (vector
 * min/max, QuantizeLinear's kernel, an exact float or double GEMM) against
 * the ref backend's plain loops, byte for byte. K past 257 takes the double
 * GEMM. scaled: then -> Cast to float -> Mul by Mul(x_scale, w_scale), w_scale
 * per column and a bias Add (1) or one w_scale, the Muls' operands swapped
 * (2): run by the fused MatMulInteger (fuse_mmi_scale: the Cast, Muls and Add
 * do not run), the same bytes as ref and as unfused (HPCZ_NO_INT8_FUSION). */
static void check_dynamic_mm(const char *label, int wdt, int64_t M, int64_t K, int64_t N,
                             int scaled)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    int64_t xd[2] = {M, K}, wd[2] = {K, N}, nd[1] = {N};
    hpcz_value *xv = hpcz_graph_value(g, "x");
    xv->dtype = HPCZ_DTYPE_FLOAT;
    xv->ndim = 2;
    xv->dims = hpcz_model_alloc(m, 2 * sizeof *xv->dims);
    xv->dims[0].size = M;
    xv->dims[1].size = K;
    hpcz_graph_add_input(g, xv, &err);
    hpcz_array in = {0};
    hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT, 2, xd, &err);
    for (int64_t i = 0; i < in.numel; i++)
        ((float *)in.data)[i] = frange(-3.0f, 5.0f);
    void *w = init(m, "w", wdt, 2, wd), *z = init(m, "wz", wdt, 1, nd);
    int lo = wdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t i = 0; i < K * N; i++)
        set_int(w, wdt, i, irange(lo, lo + 255));
    for (int64_t j = 0; j < N; j++)
        set_int(z, wdt, j, irange(lo + 100, lo + 155));
    const char *di[] = {"x"}, *mi[] = {"xq", "w", "xz", "wz"};
    hpcz_node *dq = hpcz_graph_add_node(g, "DynamicQuantizeLinear", "dql", 1, 3);
    dq->inputs[0] = hpcz_graph_value(g, di[0]);
    const char *outs[] = {"xq", "xs", "xz"};
    for (int k = 0; k < 3; k++)
        hpcz_node_set_output(dq, (size_t)k, hpcz_graph_value(g, outs[k]));
    node(g, "MatMulInteger", "mmi", 4, mi, "y");
    if (scaled) {
        int64_t one[1] = {1};
        float *ws = init(m, "ws", HPCZ_DTYPE_FLOAT, 1, scaled == 1 ? nd : one);
        for (int64_t j = 0; j < (scaled == 1 ? N : 1); j++)
            ws[j] = frange(0.001f, 0.02f);
        const char *ci[] = {"y"}, *si[] = {"xs", "ws"}, *si2[] = {"ws", "xs"}, *mo[] = {"yf", "sc"},
                   *mo2[] = {"sc", "yf"};
        parse_attrs(m, node(g, "Cast", "cast", 1, ci, "yf"), "to=i:1");
        node(g, "Mul", "scale", 2, scaled == 1 ? si : si2, "sc");
        node(g, "Mul", "mul", 2, scaled == 1 ? mo : mo2, scaled == 1 ? "ym" : "out");
        if (scaled == 1) { /* and a bias row */
            float *bias = init(m, "bias", HPCZ_DTYPE_FLOAT, 1, nd);
            for (int64_t j = 0; j < N; j++)
                bias[j] = frange(-1.0f, 1.0f);
            const char *ai[] = {"bias", "ym"};
            node(g, "Add", "bias_add", 2, ai, "out");
        }
    }
    hpcz_graph_add_output(g, hpcz_graph_value(g, scaled ? "out" : "y"), &err);
    hpcz_array a = {0}, b = {0}, r = {0}, un = {0};
    bool ok = run(m, "cpu", 1, false, &in, &a, NULL, &err);
    int ran = last_ran;
    ok = ok && run(m, "cpu", 2, false, &in, &b, NULL, &err) &&
         run(m, "ref", 1, false, &in, &r, NULL, &err) && run(m, "cpu", 1, true, &in, &un, NULL, &err);
    bool same = ok && a.nbytes == r.nbytes && !memcmp(a.data, r.data, a.nbytes) &&
                !memcmp(a.data, b.data, a.nbytes) && !memcmp(a.data, un.data, a.nbytes);
    bool fused = !scaled || ran + (scaled == 1 ? 4 : 3) == last_ran; /* Cast, Muls, Add skipped */
    if (!same || !fused)
        failures++;
    printf("%s %-34s [%lld x %lld] x [%lld x %lld] %s, same bytes as ref/2 threads/unfused: "
           "%s%s%s%s\n",
           same && fused ? "PASS" : "FAIL", label, (long long)M, (long long)K, (long long)K,
           (long long)N, scaled ? "scaled float" : "int32", same ? "yes" : "NO",
           fused ? "" : ", scaling NOT fused", ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&r);
    hpcz_array_release(&un);
    hpcz_model_free(m);
}

/* MatMulInteger(x, const W [, x_zp graph input] [, const W_zp]) as the cpu
 * backend runs it fused (W packed once, qgemm.c) against the ref backend's
 * plain loops, byte for byte, with 1 and 2 threads and through the other
 * kernel paths (HPCZ_QGEMM_NO_U8S8, HPCZ_QGEMM_NO_AVX2). Weights in
 * [wlo, whi] before the zero point: within 64 of it takes the u8s8 path.
 * zp: 0 none, 1 one for W, 2 one per column. x may be 3-D (batch 2). */
static void check_mmi(const char *label, int xdt, int wdt, int wlo, int whi, int zp, bool xzp,
                      bool batch, int64_t M, int64_t K, int64_t N)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    int64_t B = batch ? 2 : 1, xd[3] = {B, M, K}, wd[2] = {K, N}, nd[1] = {N};
    int xr = batch ? 3 : 2;
    const int64_t *xdims = batch ? xd : xd + 1;
    hpcz_value *xv = hpcz_graph_value(g, "x");
    xv->dtype = xdt;
    xv->ndim = xr;
    xv->dims = hpcz_model_alloc(m, (size_t)xr * sizeof *xv->dims);
    for (int i = 0; i < xr; i++)
        xv->dims[i].size = xdims[i];
    hpcz_graph_add_input(g, xv, &err);
    hpcz_array in[2] = {{0}, {0}};
    hpcz_array_alloc(&in[0], xdt, xr, xdims, &err);
    int xlo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t i = 0; i < in[0].numel; i++)
        set_int(in[0].data, xdt, i, irange(xlo, xlo + 255));
    if (xzp) {
        hpcz_value *zv = hpcz_graph_value(g, "xz");
        zv->dtype = xdt;
        zv->ndim = 0;
        hpcz_graph_add_input(g, zv, &err);
        hpcz_array_alloc(&in[1], xdt, 0, NULL, &err);
        set_int(in[1].data, xdt, 0, irange(xlo, xlo + 255));
    }
    void *w = init(m, "w", wdt, 2, wd);
    for (int64_t i = 0; i < K * N; i++)
        set_int(w, wdt, i, irange(wlo, whi));
    if (zp) {
        void *z = init(m, "wz", wdt, zp == 2 ? 1 : 0, nd);
        int64_t nz = zp == 2 ? N : 1;
        for (int64_t j = 0; j < nz; j++) /* within [wlo, whi]: 7-bit codes stay 7-bit */
            set_int(z, wdt, j, zp == 1 ? (wlo + whi) / 2 : irange((wlo + whi) / 2 - 2, (wlo + whi) / 2 + 2));
        if (wlo < -64 || whi > 64) /* full range: also zero points far from the middle */
            set_int(z, wdt, 0, wlo);
    }
    const char *mi[] = {"x", "w", xzp ? "xz" : NULL, zp ? "wz" : NULL};
    node(g, "MatMulInteger", "mmi", 4, mi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    hpcz_array r = {0}, a[8] = {{0}};
    const char *paths[] = {NULL, NULL, "HPCZ_QGEMM_NO_U8S8", "HPCZ_QGEMM_NO_AVX2", NULL,
                           "HPCZ_QGEMM_NO_VNNI", "HPCZ_QGEMM_NO_AVX512", "HPCZ_QGEMM_NO_WSHIFT"};
    bool ok = run(m, "ref", 1, false, in, &r, NULL, &err), same = ok, fused = true;
    uint64_t fused_bytes = 0;
    for (int v = 0; v < 8 && ok; v++) {
        if (paths[v])
            setenv(paths[v], "1", 1);
        ok = run(m, "cpu", v == 1 ? 2 : 1, v == 4, in, &a[v], NULL, &err);
        if (paths[v])
            unsetenv(paths[v]);
        if (v == 0)
            fused_bytes = last_const_bytes;
        else if (v == 4)
            fused = fused_bytes > last_const_bytes; /* the packed weights are plan constants */
        same = same && ok && a[v].nbytes == r.nbytes && !memcmp(a[v].data, r.data, r.nbytes);
    }
    if (!same || !fused)
        failures++;
    printf("%s %-36s [%lld x %lld] x [%lld x %lld] int32, fused: %s, same bytes as ref: %s%s%s\n",
           same && fused ? "PASS" : "FAIL", label, (long long)(B * M), (long long)K, (long long)K,
           (long long)N, fused ? "yes" : "NO", same ? "yes" : "NO", ok ? "" : ": ", ok ? "" : err.msg);
    for (int v = 0; v < 8; v++)
        hpcz_array_release(&a[v]);
    hpcz_array_release(&r);
    hpcz_array_release(&in[0]);
    hpcz_array_release(&in[1]);
    hpcz_model_free(m);
}

/* DQ(x) -> MaxPool -> Q -> DQ -> Transpose -> Q: with the same scale and
 * zero point throughout, both ops run on the integers (2 Q fused) and give
 * the unfused graph's bytes; with another scale after MaxPool only the
 * Transpose (same scale on both sides) fuses. */
static void check_passthrough(const char *label, int dt, bool same_params, const char *pool)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    int64_t dims[4] = {2, 5, 13, 11};
    hpcz_value *xv = hpcz_graph_value(g, "x");
    xv->dtype = dt;
    xv->ndim = 4;
    xv->dims = hpcz_model_alloc(m, 4 * sizeof *xv->dims);
    for (int i = 0; i < 4; i++)
        xv->dims[i].size = dims[i];
    hpcz_graph_add_input(g, xv, &err);
    hpcz_array in = {0};
    hpcz_array_alloc(&in, dt, 4, dims, &err);
    int lo = dt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t k = 0; k < in.numel; k++)
        set_int(in.data, dt, k, irange(lo, lo + 255));
    float xs = frange(0.01f, 0.05f);
    int xz = dt == HPCZ_DTYPE_UINT8 ? 37 : -11;
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = xs;
    set_int(init(m, "xz", dt, 0, NULL), dt, 0, xz);
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = same_params ? xs : xs * 1.5f;
    set_int(init(m, "yz", dt, 0, NULL), dt, 0, xz);
    const char *dx[] = {"x", "xs", "xz"}, *pi[] = {"xf"}, *q1[] = {"pf", "ys", "yz"},
               *d2[] = {"pq", "ys", "yz"}, *ti[] = {"pd"}, *q2[] = {"tf", "ys", "yz"};
    node(g, "DequantizeLinear", "dqx", 3, dx, "xf");
    hpcz_node *mp = node(g, "MaxPool", "pool", 1, pi, "pf");
    parse_attrs(m, mp, pool);
    node(g, "QuantizeLinear", "q1", 3, q1, "pq");
    node(g, "DequantizeLinear", "dq2", 3, d2, "pd");
    hpcz_node *tr = node(g, "Transpose", "tr", 1, ti, "tf");
    parse_attrs(m, tr, "perm=is:0,2,3,1");
    node(g, "QuantizeLinear", "q2", 3, q2, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    hpcz_array a = {0}, b = {0}, u = {0};
    int fa = 0, fu = 1;
    bool ok = run(m, "cpu", 1, false, &in, &a, &fa, &err) &&
              run(m, "cpu", 2, false, &in, &b, NULL, &err) &&
              run(m, "cpu", 1, true, &in, &u, &fu, &err);
    bool same = ok && a.nbytes == u.nbytes && !memcmp(a.data, u.data, a.nbytes) &&
                !memcmp(a.data, b.data, a.nbytes);
    int want = same_params ? 2 : 1; /* the Transpose always fuses */
    bool good = ok && same && fa == want && !fu;
    if (!good)
        failures++;
    printf("%s %-34s fused %d Q (want %d), same bytes as unfused/2 threads: %s%s%s\n",
           good ? "PASS" : "FAIL", label, fa, want, same ? "yes" : "NO", ok ? "" : ": ",
           ok ? "" : err.msg);
    hpcz_array_release(&in);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_model_free(m);
}

/* 3: the digits static model, fused vs not. */
static void check_digits(const char *exe, const char *samples)
{
    char model[256], cmd[4096], path[4096];
    snprintf(model, sizeof model, "/tmp/hpcz_qfuse_%d.onnx", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "'%s' quantize '%s/digits_cnn.onnx' -o '%s' --mode static --calib '%s/digits/calib' --placement all"
             " -q >/dev/null 2>&1",
             exe, samples, model, samples);
    cases++;
    if (system(cmd) != 0) {
        FAIL("digits: %s failed", cmd);
        return;
    }
    hpcz_error err = {0};
    hpcz_model *m = hpcz_onnx_load(model, NULL, &err);
    unlink(model);
    hpcz_array x = {0}, labels = {0}, a = {0}, b = {0}, u = {0};
    snprintf(path, sizeof path, "%s/digits/test_input.npy", samples);
    bool ok = m && hpcz_npy_load(path, &x, &err) == HPCZ_OK;
    snprintf(path, sizeof path, "%s/digits/test_labels.npy", samples);
    ok = ok && hpcz_npy_load(path, &labels, &err) == HPCZ_OK;
    int fa = 0, fu = 1;
    ok = ok && run(m, "cpu", 1, false, &x, &a, &fa, &err) &&
         run(m, "cpu", 2, false, &x, &b, NULL, &err) && run(m, "cpu", 1, true, &x, &u, &fu, &err);
    if (!ok) {
        FAIL("digits: %s", err.msg);
        goto out;
    }
    const hpcz_value *sv = hpcz_graph_find_value(m->graph, "logits_scale");
    float step = sv && sv->init ? *(const float *)hpcz_tensor_data(sv->init, &err) : 0;
    int64_t n = a.dims[0], same = 0, ca = 0, cu = 0;
    double maxd = 0;
    const float *la = a.data, *lu = u.data;
    for (int64_t i = 0; i < n; i++) {
        int ba = 0, bu = 0;
        for (int j = 1; j < 10; j++) {
            ba = la[i * 10 + j] > la[i * 10 + ba] ? j : ba;
            bu = lu[i * 10 + j] > lu[i * 10 + bu] ? j : bu;
        }
        for (int j = 0; j < 10; j++)
            maxd = fmax(maxd, fabs((double)la[i * 10 + j] - lu[i * 10 + j]));
        same += ba == bu;
        int64_t lab = ((const int64_t *)labels.data)[i];
        ca += ba == lab;
        cu += bu == lab;
    }
    bool thr = a.nbytes == b.nbytes && !memcmp(a.data, b.data, a.nbytes);
    bool good = fa == 8 && !fu && same == n && step > 0 && maxd <= step * 1.001 && thr;
    if (!good)
        failures++;
    printf("%s digits static QDQ (%d nodes fused, want 5 Conv/Gemm + 1 Add + MaxPool and Flatten on the integers), %lld samples: top-1 "
           "agree %lld, accuracy fused %lld unfused "
           "%lld, max|logit diff| %.5f (step %.5f), 1 vs 2 threads %s, unfused run skipped %d Q\n",
           good ? "PASS" : "FAIL", fa, (long long)n, (long long)same, (long long)ca, (long long)cu,
           maxd, step, thr ? "identical" : "DIFFER", fu);
out:
    hpcz_array_release(&x);
    hpcz_array_release(&labels);
    hpcz_array_release(&a);
    hpcz_array_release(&b);
    hpcz_array_release(&u);
    hpcz_model_free(m);
}

/* Random depthwise geometries on small maps (the dwcl path when the
 * channels are a multiple of 16 and the map at most 256 pixels, the planar
 * kernels otherwise), each through check(): every kernel path, 1 and 2
 * threads and the float reference. Seeded, so the same shapes every run. */
static void check_random_dw(int n)
{
    static char labels[64][64], attrs[64][160];
    for (int i = 0; i < n && i < 64; i++) {
        int64_t C = (int64_t[]){16, 32, 48, 24}[irange(0, 3)];
        int64_t H = irange(1, 16), W = irange(1, 16), kh = irange(1, 5), kw = irange(1, 5);
        int64_t sh = irange(1, 3), sw = irange(1, 3), dh = irange(1, 2), dw = irange(1, 2);
        int64_t pt = irange(0, kh - 1), pl = irange(0, kw - 1), pb = irange(0, kh - 1),
                pr = irange(0, kw - 1);
        if (H + pt + pb < dh * (kh - 1) + 1 || W + pl + pr < dw * (kw - 1) + 1) {
            i--; /* no output: draw again */
            continue;
        }
        snprintf(labels[i], sizeof labels[i], "dw random %d: %dx%d k%dx%d", i, (int)H, (int)W,
                 (int)kh, (int)kw);
        snprintf(attrs[i], sizeof attrs[i],
                 "group=i:%lld;strides=is:%lld,%lld;dilations=is:%lld,%lld;pads=is:%lld,%lld,%lld,%lld",
                 (long long)C, (long long)sh, (long long)sw, (long long)dh, (long long)dw,
                 (long long)pt, (long long)pl, (long long)pb, (long long)pr);
        bool s8x = irange(0, 1), s8y = irange(0, 1), full = irange(0, 3) == 0;
        qcase c = {labels[i], "Conv", s8x ? S8 : U8, S8, s8y ? S8 : U8, true, true, false, 4,
                   D4(irange(1, 2), C, H, W), 4, D4(C, 1, kh, kw), attrs[i],
                   full ? -128 : -63, full ? 127 : 63, false};
        check(&c);
    }
}

/* A float depthwise Conv between 8-bit tensors (fuse_conv_codes): DQ(x) [->
 * HardSwish, a float table of x_q] -> Conv (group C, float weights and bias,
 * a fused HardSwish) -> Q, on [N, C, H, W] with odd sizes, 3x3 stride 1 or
 * 2 (the kernels that keep their nine weights in registers) and 5x5 (the
 * generic rows); `out` the Conv's output a graph output too (then only the
 * input side fuses), `dqonly` no HardSwish before the Conv (the plain
 * DequantizeLinear's values as the table). Only the Conv runs (and the Q
 * with `out`); the same bytes as with the fusion off (HPCZ_NO_CONV_CODES=1),
 * as unfused (HPCZ_NO_INT8_FUSION=1), with 2 threads, on the AVX2 kernels
 * (HPCZ_CPU_NO_AVX512=1) and on the AVX2 and portable lookups. */
static void check_conv_codes(const char *label, int xdt, int ydt, int64_t N, int64_t C, int64_t H,
                             int64_t W, int k, int stride, bool out, bool dqonly)
{
    cases++;
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_value *xv = hpcz_graph_value(g, "x");
    int64_t d[4] = {N, C, H, W}, wd[4] = {C, 1, k, k}, bd[1] = {C};
    xv->dtype = xdt;
    xv->ndim = 4;
    xv->dims = hpcz_model_alloc(m, 4 * sizeof *xv->dims);
    for (int i = 0; i < 4; i++)
        xv->dims[i].size = d[i];
    hpcz_graph_add_input(g, xv, &err);
    hpcz_array in = {0};
    hpcz_array_alloc(&in, xdt, 4, d, &err);
    int lo = xdt == HPCZ_DTYPE_UINT8 ? 0 : -128, ylo = ydt == HPCZ_DTYPE_UINT8 ? 0 : -128;
    for (int64_t i = 0; i < in.numel; i++)
        set_int(in.data, xdt, i, irange(lo, lo + 255));
    *(float *)init(m, "xs", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.02f, 0.05f);
    set_int(init(m, "xz", xdt, 0, NULL), xdt, 0, irange(lo + 90, lo + 160));
    *(float *)init(m, "ys", HPCZ_DTYPE_FLOAT, 0, NULL) = frange(0.01f, 0.03f);
    set_int(init(m, "yz", ydt, 0, NULL), ydt, 0, irange(ylo + 20, ylo + 60));
    float *w = init(m, "w", HPCZ_DTYPE_FLOAT, 4, wd), *b = init(m, "b", HPCZ_DTYPE_FLOAT, 1, bd);
    for (int64_t i = 0; i < C * k * k; i++)
        w[i] = frange(-0.5f, 0.5f);
    for (int64_t i = 0; i < C; i++)
        b[i] = frange(-0.3f, 0.3f);
    const char *dq[] = {"x", "xs", "xz"}, *hs[] = {"xf"}, *cv[] = {dqonly ? "xf" : "h", "w", "b"},
               *ha[] = {"c"}, *qi[] = {"f", "ys", "yz"};
    node(g, "DequantizeLinear", "dq", 3, dq, "xf");
    if (!dqonly)
        node(g, "HardSwish", "hswish", 1, hs, "h");
    char attrs[160];
    snprintf(attrs, sizeof attrs, "group=i:%lld;kernel_shape=is:%d,%d;strides=is:%d,%d;pads=is:%d,%d,%d,%d",
             (long long)C, k, k, stride, stride, k / 2, k / 2, k / 2, k / 2);
    parse_attrs(m, node(g, "Conv", "conv", 3, cv, "c"), attrs);
    node(g, "HardSwish", "act", 1, ha, "f");
    node(g, "QuantizeLinear", "q", 3, qi, "y");
    hpcz_graph_add_output(g, hpcz_graph_value(g, "y"), &err);
    if (out)
        hpcz_graph_add_output(g, hpcz_graph_value(g, "f"), &err);
    int nout = 1 + out, want = 1 + out, unfused = 5 - dqonly, ran = 0, ran_off = 0;
    enum { RUNS = 7 };
    hpcz_array r[RUNS][2];
    memset(r, 0, sizeof r);
    bool ok = run(m, "cpu", 1, false, &in, r[0], NULL, &err);
    ran = last_ran;
    setenv("HPCZ_NO_CONV_CODES", "1", 1);
    ok = ok && run(m, "cpu", 1, false, &in, r[1], NULL, &err);
    ran_off = last_ran;
    unsetenv("HPCZ_NO_CONV_CODES");
    ok = ok && run(m, "cpu", 1, true, &in, r[2], NULL, &err) &&
         run(m, "cpu", 2, false, &in, r[3], NULL, &err);
    setenv("HPCZ_CPU_NO_AVX512", "1", 1); /* the AVX2 depthwise kernels */
    ok = ok && run(m, "cpu", 2, false, &in, r[4], NULL, &err);
    unsetenv("HPCZ_CPU_NO_AVX512");
    setenv("HPCZ_QGEMM_NO_AVX512", "1", 1); /* AVX2 gathers */
    ok = ok && run(m, "cpu", 1, false, &in, r[5], NULL, &err);
    setenv("HPCZ_QGEMM_NO_AVX2", "1", 1); /* portable lookups */
    ok = ok && run(m, "cpu", 1, false, &in, r[6], NULL, &err);
    unsetenv("HPCZ_QGEMM_NO_AVX512");
    unsetenv("HPCZ_QGEMM_NO_AVX2");
    bool same = ok;
    for (int o = 0; o < nout && same; o++)
        for (int i = 1; i < RUNS && same; i++)
            same = r[i][o].nbytes == r[0][o].nbytes && !memcmp(r[i][o].data, r[0][o].data, r[0][o].nbytes);
    /* without the fusion the table (or the DQ) and the Q run besides the Conv */
    bool good = ok && ran == want && ran_off == 3 && same;
    if (!good)
        failures++;
    printf("%s %-34s [%lld,%lld,%lld,%lld] %dx%d/%d%s: nodes run %d (want %d; %d without, %d unfused), "
           "same bytes as no conv codes/unfused/2 threads/AVX2 kernels/AVX2/portable lookups: %s%s%s\n",
           good ? "PASS" : "FAIL", label, (long long)N, (long long)C, (long long)H, (long long)W, k, k,
           stride, out ? ", conv output read" : "", ran, want, ran_off, unfused, same ? "yes" : "NO",
           ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_array_release(&in);
    for (int i = 0; i < RUNS; i++)
        for (int o = 0; o < 2; o++)
            hpcz_array_release(&r[i][o]);
    hpcz_model_free(m);
}

int main(int argc, char **argv)
{
#if defined(__x86_64__)
    if (!rt_cpu_avx512() || !__builtin_cpu_supports("avx512vnni"))
        printf("SKIP AVX-512 VNNI tiles: not on this CPU (HPCZ_QGEMM_NO_AVX512 runs the same path)\n");
    if (!rt_cpu_avx512() || !__builtin_cpu_supports("avx512vbmi"))
        printf("SKIP AVX-512 VBMI table lookups: not on this CPU\n");
#endif
    for (size_t i = 0; i < sizeof qcases / sizeof qcases[0]; i++)
        check(&qcases[i]);
    check_random_dw(40);
    check_add("add u8+u8 -> u8", "Add", U8, U8, U8, 3 * 1111);
    check_add("add s8+u8 -> s8", "Add", S8, U8, S8, 3 * 37);
    /* a hard-act-region HardSwish gate: DQ(x) * DQ(gate) -> Q */
    check_add("mul u8*u8 -> u8", "Mul", U8, U8, U8, 3 * 1111);
    check_add("mul s8*u8 -> s8", "Mul", S8, U8, S8, 3 * 37);
    /* table ops: DQ -> one elementwise op -> Q */
    check_table("table u8 -> u8", "Relu", NULL, 0, 0, 0, U8, U8, 1111);
    check_table("table s8 -> s8 alpha 0.2", "LeakyRelu", "alpha=f:0.2", 0, 0, 0, S8, S8, 3333);
    check_table("table u8 -> s8 [-1, 2.5]", "Clip", NULL, 2, -1.0f, 2.5f, U8, S8, 1001);
    check_table("table s8 -> u8 max(x, 0.3)", "Max", NULL, 1, 0.3f, 0, S8, U8, 777);
    check_table("table s8 -> s8 min(x, 1.1)", "Min", NULL, 1, 1.1f, 0, S8, S8, 517);
    check_table("table u8 -> u8", "HardSigmoid", "alpha=f:0.2;beta=f:0.5", 0, 0, 0, U8, U8, 1023);
    check_table("table s8 -> s8", "HardSwish", NULL, 0, 0, 0, S8, S8, 4097);
    check_table("table u8 -> u8", "Sigmoid", NULL, 0, 0, 0, U8, U8, 3001);
    check_table("table s8 -> s8", "Tanh", NULL, 0, 0, 0, S8, S8, 2049);
    check_table("table u8 -> u8 x * 1.7", "Mul", NULL, 1, 1.7f, 0, U8, U8, 301);
    check_table("table s8 -> u8 x + 0.9", "Add", NULL, 1, 0.9f, 0, S8, U8, 299);
    check_table("table u8 -> s8 x - 2.1", "Sub", NULL, 1, 2.1f, 0, U8, S8, 263);
    check_table("table s8 -> s8 x / 3", "Div", NULL, 1, 3.0f, 0, S8, S8, 259);
    check_table("table s8 -> u8", "Abs", NULL, 0, 0, 0, S8, U8, 99);
    check_table("table u8 -> s8", "Neg", NULL, 0, 0, 0, U8, S8, 101);
    check_table_chain("table chain u8 -> u8", U8, U8, 1999, false);
    check_table_chain("table chain s8 -> s8", S8, S8, 333, false);
    check_table_chain("table chain, clip read outside", U8, S8, 555, true);
    check_table_qchain("table of tables u8 -> u8", false, U8, U8, 2001, false);
    check_table_qchain("table of tables s8 -> s8", true, S8, S8, 777, false);
    check_table_qchain("table of tables u8 -> s8", true, U8, S8, 1027, false);
    check_table_qchain("table of tables, inner one an output", false, S8, U8, 515, true);
    check_float_table("float table u8", true, U8, 1999, false);
    check_float_table("float table s8", false, S8, 333, false);
    check_float_table("float table u8, Q reads it too", false, U8, 4099, true);
    check_float_table("float table s8, Q reads it too", true, S8, 17, true);
    check_channel_table("channel table u8", CT_GATE, U8, 5, 7, 75);
    check_channel_table("channel table s8", CT_GATE, S8, 3, 33, 17);
    check_channel_table("channel table u8 -> Q", CT_ADDQ, U8, 6, 40, 13);
    check_channel_table("channel table s8, batchnorm", CT_BN, S8, 7, 24, 24);
    check_channel_table("channel table u8, batchnorm", CT_BN, U8, 3, 1, 1000);
    check_channel_table("channel table s8, small map", CT_GATE, S8, 4, 9, 9);
    check_channel_table("channel table u8 -> Q, small map", CT_ADDQ, U8, 4, 3, 5);
    check_channel_table("channel table, batchnorm small", CT_BN, U8, 4, 3, 5);
    check_conv_codes("conv codes u8 -> u8", U8, U8, 1, 16, 23, 29, 3, 1, false, false);
    check_conv_codes("conv codes s8 -> u8 stride 2", S8, U8, 1, 9, 17, 21, 3, 2, false, false);
    check_conv_codes("conv codes u8 -> s8 5x5", U8, S8, 1, 12, 14, 14, 5, 1, false, false);
    check_conv_codes("conv codes s8 -> s8 5x5/2, batch 2", S8, S8, 2, 5, 13, 7, 5, 2, false, false);
    check_conv_codes("conv codes u8, DQ only", U8, U8, 1, 8, 9, 40, 3, 1, false, true);
    check_conv_codes("conv codes s8, output read", S8, U8, 1, 7, 11, 12, 3, 1, true, false);
    check_gap("gap u8 -> u8", U8, U8, 1, 96, 80, 120);
    check_gap("gap s8 -> s8, batch 2", S8, S8, 2, 7, 13, 17);
    check_gap("gap u8 -> s8 1-wide", U8, S8, 1, 5, 1, 33);
    check_dynamic_mm("dynamic u8 weights (float GEMM)", U8, 37, 64, 45, 0);
    check_dynamic_mm("dynamic s8 weights K 300 (double)", S8, 19, 300, 33, 0);
    check_dynamic_mm("dynamic u8 w, col scales, bias", U8, 37, 64, 45, 1);
    check_dynamic_mm("dynamic s8 w, one scale, swapped", S8, 5, 300, 33, 2);
    /* MatMulInteger fused: 7-bit weights (u8s8), full range (int16), zero points
     * none / one / per column, x zero point or none, x u8 or s8, GEMV rows (< 8) */
    check_mmi("mmi u8 x, s8 7-bit w, col zp", U8, S8, -64, 64, 2, true, false, 37, 67, 45);
    check_mmi("mmi u8 x, s8 7-bit w, no zp", U8, S8, -64, 64, 0, true, true, 20, 384, 33);
    check_mmi("mmi s8 x, s8 7-bit w, no x zp", S8, S8, -64, 64, 1, false, false, 17, 13, 9);
    check_mmi("mmi u8 x, u8 7-bit w, col zp, gemv", U8, U8, 64, 190, 2, true, false, 3, 131, 70);
    check_mmi("mmi s8 x, s8 7-bit w, gemv 1 row", S8, S8, -64, 64, 2, true, true, 1, 200, 19);
    check_mmi("mmi u8 x, u8 full w, col zp", U8, U8, 0, 255, 2, true, false, 37, 67, 45);
    check_mmi("mmi u8 x, s8 full w, zp", U8, S8, -128, 127, 1, true, true, 9, 385, 61);
    check_mmi("mmi s8 x, u8 full w, no zp", S8, U8, 0, 255, 0, true, false, 5, 31, 17);
    check_mmi("mmi u8 x, s8 full w, K 1", U8, S8, -128, 127, 2, true, false, 16, 1, 8);
    /* full-range uint8 weights as --mode dynamic writes them (a zero point per
     * column): with AVX-VNNI shifted to int8 on the u8s8 path (wshift) */
    check_mmi("mmi u8 x, u8 full w, col zp, batch", U8, U8, 0, 255, 2, true, true, 32, 384, 100);
    check_mmi("mmi s8 x, u8 full w, col zp, 5 rows", S8, U8, 0, 255, 2, true, false, 5, 129, 37);
    check_mmi("mmi u8 x, u8 full w, zp, no x zp", U8, U8, 0, 255, 1, false, false, 9, 1000, 24);
    const char *p3s2 = "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1";
    check_passthrough("maxpool+transpose u8 same params", U8, true, p3s2);
    check_passthrough("maxpool+transpose s8 same params", S8, true, p3s2);
    check_passthrough("maxpool+transpose u8 other scale", U8, false, p3s2);
    check_passthrough("maxpool 2x2/2 s8", S8, true, "kernel_shape=is:2,2;strides=is:2,2");
    check_passthrough("maxpool 3x2 s(1,3) pads u8", U8, true,
                      "kernel_shape=is:3,2;strides=is:1,3;pads=is:0,2,1,1");
    check_passthrough("maxpool 4x4/3 ceil s8", S8, true,
                      "kernel_shape=is:4,4;strides=is:3,3;pads=is:1,1,1,1;ceil_mode=i:1");
    if (argc >= 3)
        check_digits(argv[1], argv[2]);
    printf("%d cases, %d failures\n", cases, failures);
    return failures ? 1 : 0;
}
