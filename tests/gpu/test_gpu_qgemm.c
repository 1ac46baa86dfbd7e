/*
 * test_gpu_qgemm.c - the int8 QDQ fusion on the cuda backend: DQ(x_q) +
 * DQ(const W_q) [+ DQ(const int32 b)] -> Conv / Gemm / MatMul -> Q, which the
 * engine fuses into one integer node (lib/runtime/cpu/qgemm.c), run by the
 * device's int8 GEMM (kernels.cu qgemm_kernel: dp4a, int32 sums, the cpu's
 * requantisation) instead of qgemm.c's kernels. On seeded random shapes
 * (odd sizes, asymmetric padding, strides, dilations, groups, depthwise,
 * 1-D and 3-D convolutions, Gemm with and without transB, batched MatMul;
 * per-tensor and per-channel weight scales; a bias whose scale is x's times
 * the weight's, one whose scale is not (the float bias of the epilogue), and
 * none; u8/s8 activations and outputs; 7-bit, full-range int8 and uint8
 * weights with a zero point; output scales that clamp):
 *  - y_q byte for byte the cpu backend's (its fused integer kernels);
 *  - the fused node placed on the device, with the emulations installed
 *    (emulation.h): per run one host-to-device copy (x_q), one copy back
 *    (y_q), one sync and one kernel launch; two fused nodes in a chain
 *    keep the int8 tensor between them on the device;
 *  - uint8 weights whose w - w_zp leaves int8 (no dp4a form) stay on the
 *    cpu kernel, still the same bytes;
 *  - the other fused kinds on the device too: table ops (DQ -> LeakyRelu or
 *    Sigmoid -> Q as 256 bytes) and the Add of two quantized tensors (its
 *    float arithmetic), the cpu's bytes; a Conv -> table -> Add block keeps
 *    every int8 tensor on the device, and so does a MaxPool between Q/DQ of
 *    one scale (run on the codes).
 * Then, where a CUDA device is present, every case again on it (bytes only).
 */
#include "hpcz.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/op_attrs.h"
#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "../rng.h"
#include "../runtime/int_model.h"
#include "emulation.h"
#include "two_pass.h"



enum { U8 = HPCZ_DTYPE_UINT8, S8 = HPCZ_DTYPE_INT8 };
enum { BIAS_NONE, BIAS_EXACT, BIAS_FLOAT };

typedef struct qcase {
    const char *op;        /* Conv, Gemm (attrs may set transB), MatMul */
    int xdt, wdt, ydt;
    bool per_channel;
    int bias;
    int xrank, wrank;
    int64_t xd[5], wd[5];
    const char *attrs;
    int wlo, whi, wzp;     /* weight codes in [wlo, whi], zero point wzp */
    float yclamp;          /* output scale divided by this (values clamp) */
    bool on_device;        /* expected placement of the fused node */
} qcase;

static hpcz_node *node(hpcz_model *m, const char *op, const char *name, int nin,
                       const char *const *ins, const char *out, const char *attrs)
{
    hpcz_graph *g = m->graph;
    hpcz_node *n = hpcz_graph_add_node(g, op, name, (size_t)nin, 1);
    for (int i = 0; i < nin; i++)
        n->inputs[i] = ins[i] ? hpcz_graph_value(g, ins[i]) : NULL;
    hpcz_node_set_output(n, 0, hpcz_graph_value(g, out));
    parse_attrs(m, n, attrs);
    return n;
}

static int64_t numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

/* Adds DQ(x) + DQ(W) [+ DQ(b)] -> op -> Q reading value `x` (scale xs, zero
 * point xzp, type c->xdt) into value `y`; names prefixed with p. */
static void add_block(hpcz_model *m, const qcase *c, const char *p, const char *x, float xs,
                      int xzp, const char *y)
{
    bool conv = !strcmp(c->op, "Conv"), gemm = !strcmp(c->op, "Gemm");
    bool tb = gemm && (!c->attrs || strstr(c->attrs, "transB=i:1"));
    int64_t M, K = 1;
    int w_axis;
    if (conv || tb) {
        M = c->wd[0];
        K = numel(c->wrank, c->wd) / M;
        w_axis = 0;
    } else {
        K = c->wd[0];
        M = c->wd[1];
        w_axis = 1;
    }
    char n[16][32];
    for (int i = 0; i < 16; i++)
        snprintf(n[i], sizeof n[i], "%s%d", p, i);
    /* 0 xs, 1 xzp, 2 wq, 3 ws, 4 wzp, 5 bq, 6 bs, 7 ys, 8 yzp, 9 xf, 10 wf, 11 bf, 12 yf */
    *(float *)init(m, n[0], HPCZ_DTYPE_FLOAT, 0, NULL) = xs;
    set_int(init(m, n[1], c->xdt, 0, NULL), c->xdt, 0, xzp);
    int64_t nch = c->per_channel ? M : 1;
    void *w = init(m, n[2], c->wdt, c->wrank, c->wd);
    float *ws = init(m, n[3], HPCZ_DTYPE_FLOAT, c->per_channel, &nch);
    void *wzp = init(m, n[4], c->wdt, c->per_channel, &nch);
    double wsum = 0;
    for (int64_t i = 0; i < nch; i++) {
        ws[i] = frange(0.002f, 0.03f);
        wsum += ws[i];
        set_int(wzp, c->wdt, i, c->wzp);
    }
    for (int64_t i = 0; i < numel(c->wrank, c->wd); i++)
        set_int(w, c->wdt, i, irange(c->wlo, c->whi));
    float ys = (float)(xs * (wsum / (double)nch) * 60.0 * 60.0 * sqrt((double)K) / 40.0) /
               c->yclamp;
    int ylo = c->ydt == U8 ? 0 : -128;
    *(float *)init(m, n[7], HPCZ_DTYPE_FLOAT, 0, NULL) = ys;
    set_int(init(m, n[8], c->ydt, 0, NULL), c->ydt, 0, irange(ylo + 60, ylo + 195));
    if (c->bias != BIAS_NONE) {
        int32_t *b = init(m, n[5], HPCZ_DTYPE_INT32, 1, &M);
        float *bs = init(m, n[6], HPCZ_DTYPE_FLOAT, 1, &M);
        for (int64_t i = 0; i < M; i++) {
            b[i] = irange(-20000, 20000);
            bs[i] = xs * ws[c->per_channel ? i : 0] * (c->bias == BIAS_FLOAT ? 1.37f : 1.0f);
        }
    }
    char axis[16];
    snprintf(axis, sizeof axis, "axis=i:%d", w_axis);
    node(m, "DequantizeLinear", n[13], 3, (const char *[]){x, n[0], n[1]}, n[9], NULL);
    node(m, "DequantizeLinear", n[14], 3, (const char *[]){n[2], n[3], n[4]}, n[10],
         c->per_channel ? axis : NULL);
    if (c->bias != BIAS_NONE)
        node(m, "DequantizeLinear", n[15], 2, (const char *[]){n[5], n[6]}, n[11], "axis=i:0");
    char on[32];
    snprintf(on, sizeof on, "%sop", p);
    node(m, c->op, on, c->bias != BIAS_NONE ? 3 : 2, (const char *[]){n[9], n[10], n[11]},
         n[12], c->attrs ? c->attrs : gemm ? "transB=i:1" : NULL);
    snprintf(on, sizeof on, "%sq", p);
    node(m, "QuantizeLinear", on, 3, (const char *[]){n[12], n[7], n[8]}, y, NULL);
}

/* A graph input x_q of case c with random codes; *xs, *xzp its parameters. */
static void add_input(hpcz_model *m, const qcase *c, hpcz_array *x, float *xs, int *xzp)
{
    hpcz_error err = {0};
    hpcz_value *xv = hpcz_graph_value(m->graph, "x");
    xv->dtype = c->xdt;
    xv->ndim = c->xrank;
    xv->dims = hpcz_model_alloc(m, (size_t)c->xrank * sizeof *xv->dims);
    for (int i = 0; i < c->xrank; i++)
        xv->dims[i].size = c->xd[i];
    hpcz_graph_add_input(m->graph, xv, &err);
    hpcz_array_alloc(x, c->xdt, c->xrank, c->xd, &err);
    int lo = c->xdt == U8 ? 0 : -128;
    for (int64_t i = 0; i < x->numel; i++)
        set_int(x->data, c->xdt, i, irange(lo, lo + 255));
    *xs = frange(0.005f, 0.05f);
    *xzp = c->xdt == U8 ? irange(0, 255) : irange(-30, 30);
}

/* Plans m on cuda and on cpu, runs each twice (the second cuda run counted),
 * and checks y_q's bytes and the fused nodes' placement. */
static void run_inputs(hpcz_model *m, const hpcz_array *x, size_t n_in, const char *label,
                       size_t want_dev, long want_launches)
{
    hpcz_error err = {0};
    hpcz_plan_opts pg = {.threads = 1, .backend = "cuda"}, pc = {.threads = 2, .backend = "cpu"};
    hpcz_plan *p = hpcz_plan_new(m, &pg, &err), *q = p ? hpcz_plan_new(m, &pc, &err) : NULL;
    hpcz_array g = {0}, r = {0};
    bool ok = p && q && !hpcz_plan_run(p, x, &g, &err);
    hpcz_array_release(&g);
    memset(&emu_count, 0, sizeof emu_count);
    int calls = emu_calls;
    ok = ok && !hpcz_plan_run(p, x, &g, &err);
    long h2d = emu_count.h2d, d2h = emu_count.d2h, syncs = emu_count.syncs;
    calls = emu_calls - calls;
    ok = ok && !hpcz_plan_run(q, x, &r, &err);
    if (!ok) {
        check(false, label, ": %s", err.msg);
    } else {
        hpcz_plan_stats st;
        hpcz_plan_get_stats(p, &st);
        int64_t diff = 0;
        bool same = g.dtype == r.dtype && g.numel == r.numel;
        for (int64_t i = 0; same && i < g.numel; i++)
            diff += ((uint8_t *)g.data)[i] != ((uint8_t *)r.data)[i];
        bool moves = want_dev ? h2d == (long)n_in && d2h == 1 && syncs == 1 &&
                                    calls == want_launches
                              : calls == 0;
        check(same && diff == 0 && st.n_device == want_dev && COUNTED(moves), label,
              ": %lld of %lld bytes differ from the cpu's; %zu nodes on the device (want %zu); "
              "per run %ld/%ld copies in/out, %ld syncs, %d launches",
              (long long)diff, (long long)g.numel, st.n_device, want_dev, h2d, d2h, syncs, calls);
    }
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_plan_free(p);
    hpcz_plan_free(q);
}

static void run_case(hpcz_model *m, const hpcz_array *x, const char *label, size_t want_dev,
                     long want_launches)
{
    run_inputs(m, x, 1, label, want_dev, want_launches);
}

static void check_case(const qcase *c, const char *label)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_array x = {0};
    float xs;
    int xzp;
    add_input(m, c, &x, &xs, &xzp);
    add_block(m, c, "a", "x", xs, xzp, "y");
    hpcz_error err = {0};
    hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
    run_case(m, &x, label, c->on_device, 1);
    hpcz_array_release(&x);
    hpcz_model_free(m);
}

#define D(...) {__VA_ARGS__}

static const qcase cases[] = {
    {"Conv", U8, S8, U8, true, BIAS_EXACT, 4, 4, D(1, 16, 28, 28), D(16, 16, 3, 3),
     "pads=is:1,1,1,1", -63, 63, 0, 1, true},
    {"Conv", U8, S8, U8, true, BIAS_EXACT, 4, 4, D(2, 5, 13, 11), D(7, 5, 3, 3),
     "pads=is:1,0,2,1", -128, 127, 0, 1, true},
    {"Conv", U8, S8, S8, false, BIAS_EXACT, 4, 4, D(1, 3, 23, 20), D(6, 3, 3, 3),
     "strides=is:2,2;dilations=is:2,2;pads=is:2,1,0,2", -128, 127, 0, 1, true},
    {"Conv", S8, S8, U8, true, BIAS_FLOAT, 4, 4, D(1, 8, 9, 10), D(9, 8, 3, 3),
     "pads=is:1,1,1,1", -128, 127, 0, 1, true},
    {"Conv", U8, S8, U8, true, BIAS_EXACT, 4, 4, D(1, 8, 12, 12), D(10, 4, 3, 3),
     "group=i:2;pads=is:1,1,1,1", -63, 63, 0, 1, true},
    {"Conv", U8, S8, U8, true, BIAS_EXACT, 4, 4, D(1, 16, 15, 17), D(16, 1, 3, 3),
     "group=i:16;pads=is:1,1,1,1", -63, 63, 0, 1, true},
    {"Conv", S8, S8, S8, true, BIAS_EXACT, 4, 4, D(2, 12, 29, 33), D(12, 1, 5, 5),
     "group=i:12;strides=is:2,2;pads=is:2,2,2,2", -128, 127, 0, 1, true},
    {"Conv", U8, S8, S8, true, BIAS_NONE, 4, 4, D(1, 6, 14, 11), D(12, 1, 3, 3),
     "group=i:6;dilations=is:2,2;pads=is:2,1,2,1", -63, 63, 0, 1, true},
    {"Conv", U8, S8, U8, true, BIAS_EXACT, 4, 4, D(1, 70, 9, 9), D(67, 70, 1, 1), NULL, -128,
     127, 0, 1, true}, /* 1x1: more than one 64-channel tile, odd K */
    {"Conv", U8, U8, U8, true, BIAS_EXACT, 4, 4, D(1, 5, 8, 8), D(6, 5, 3, 3),
     "pads=is:0,1,1,0", 0, 255, 128, 1, true}, /* uint8 weights, w - 128 fits int8 */
    {"Conv", S8, S8, U8, true, BIAS_EXACT, 3, 3, D(2, 6, 37), D(5, 6, 4), "pads=is:2,1;strides=is:3",
     -128, 127, 0, 1, true}, /* 1-D */
    {"Conv", U8, S8, U8, false, BIAS_EXACT, 5, 5, D(1, 3, 5, 6, 7), D(4, 3, 2, 3, 3),
     "pads=is:1,0,1,0,1,1", -63, 63, 0, 1, true}, /* 3-D */
    {"Conv", U8, S8, U8, true, BIAS_FLOAT, 4, 4, D(1, 8, 10, 10), D(8, 8, 3, 3),
     "pads=is:1,1,1,1", -128, 127, 0, 25, true}, /* outputs clamp at both ends */
    {"Gemm", U8, S8, U8, true, BIAS_EXACT, 2, 2, D(37, 100), D(45, 100), NULL, -128, 127, 0, 1,
     true},
    {"Gemm", S8, S8, S8, false, BIAS_FLOAT, 2, 2, D(3, 19), D(19, 70), "transB=i:0", -63, 63, 0,
     1, true},
    {"MatMul", U8, S8, U8, true, BIAS_NONE, 3, 2, D(2, 9, 33), D(33, 65), NULL, -128, 127, 0, 1,
     true},
    {"MatMul", S8, S8, U8, false, BIAS_NONE, 2, 2, D(130, 7), D(7, 3), NULL, -128, 127, 0, 1,
     true},
    /* uint8 weights with zero point 100: w - 100 up to 155, no int8 form */
    {"Conv", U8, U8, U8, true, BIAS_EXACT, 4, 4, D(1, 4, 7, 7), D(5, 4, 3, 3),
     "pads=is:1,1,1,1", 0, 255, 100, 1, false},
};

/* Random geometries: odd sizes, strides, dilations, asymmetric pads, groups. */
static void check_random(int n)
{
    for (int i = 0; i < n; i++) {
        int64_t groups = irange(1, 3), cg = irange(1, 6), mg = irange(1, 9);
        int64_t H = irange(1, 14), W = irange(1, 14), kh = irange(1, 4), kw = irange(1, 4);
        int64_t sh = irange(1, 3), sw = irange(1, 3), dh = irange(1, 2), dw = irange(1, 2);
        int64_t pt = irange(0, kh - 1), pl = irange(0, kw - 1), pb = irange(0, kh - 1),
                pr = irange(0, kw - 1);
        if (H + pt + pb < dh * (kh - 1) + 1 || W + pl + pr < dw * (kw - 1) + 1) {
            i--; /* no output: draw again */
            continue;
        }
        char attrs[200], label[200];
        snprintf(attrs, sizeof attrs,
                 "group=i:%lld;strides=is:%lld,%lld;dilations=is:%lld,%lld;pads=is:%lld,%lld,%lld,%lld",
                 (long long)groups, (long long)sh, (long long)sw, (long long)dh, (long long)dw,
                 (long long)pt, (long long)pl, (long long)pb, (long long)pr);
        bool full = irange(0, 1);
        qcase c = {"Conv", irange(0, 1) ? S8 : U8, S8, irange(0, 1) ? S8 : U8, irange(0, 1),
                   irange(0, 2), 4, 4, D(irange(1, 2), groups * cg, H, W),
                   D(groups * mg, cg, kh, kw), attrs, full ? -128 : -63, full ? 127 : 63, 0,
                   1, true};
        snprintf(label, sizeof label, "random conv %d: %.140s", i, attrs);
        check_case(&c, label);
    }
}

static const char *describe(const qcase *c, char *buf, size_t cap)
{
    int o = snprintf(buf, cap, "%s x%s w%s y%s %s bias %s [", c->op, c->xdt == U8 ? "u8" : "s8",
                     c->wdt == U8 ? "u8" : "s8", c->ydt == U8 ? "u8" : "s8",
                     c->per_channel ? "per-channel" : "per-tensor",
                     (const char *[]){"none", "exact", "float"}[c->bias]);
    for (int i = 0; i < c->xrank; i++)
        o += snprintf(buf + o, cap - (size_t)o, "%s%lld", i ? "," : "", (long long)c->xd[i]);
    snprintf(buf + o, cap - (size_t)o, "] %s%s", c->attrs ? c->attrs : "",
             c->yclamp > 1 ? " clamping" : "");
    return buf;
}

/* Two fused convolutions: the int8 tensor between them stays on the device. */
static void check_chain(void)
{
    qcase a = cases[0], b = cases[0];
    b.wd[0] = 8;
    hpcz_model *m = hpcz_model_new();
    hpcz_array x = {0};
    float xs;
    int xzp;
    add_input(m, &a, &x, &xs, &xzp);
    add_block(m, &a, "a", "x", xs, xzp, "mid");
    /* the second block reads the first's y_q with its scale and zero point */
    const hpcz_value *ys = hpcz_graph_find_value(m->graph, "a7");
    const hpcz_value *yz = hpcz_graph_find_value(m->graph, "a8");
    hpcz_error err = {0};
    float s = *(const float *)hpcz_tensor_data(ys->init, &err);
    int z = *(const uint8_t *)hpcz_tensor_data(yz->init, &err);
    add_block(m, &b, "b", "mid", s, z, "y");
    hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
    run_case(m, &x, "two fused convs in a chain", 2, 2);
    hpcz_array_release(&x);
    hpcz_model_free(m);
}

/* DQ(in) -> op -> Q into out, with fresh output parameters *ys, *yzp. */
static void add_table(hpcz_model *m, const char *p, const char *in, float xs, int xzp, int xdt,
                      int ydt, const char *op, const char *attrs, const char *out, float *ys,
                      int *yzp)
{
    char n[8][32];
    for (int i = 0; i < 8; i++)
        snprintf(n[i], sizeof n[i], "%s%d", p, i);
    *(float *)init(m, n[0], HPCZ_DTYPE_FLOAT, 0, NULL) = xs;
    set_int(init(m, n[1], xdt, 0, NULL), xdt, 0, xzp);
    *ys = frange(0.002f, 0.02f);
    *yzp = ydt == U8 ? irange(0, 255) : irange(-100, 100);
    *(float *)init(m, n[2], HPCZ_DTYPE_FLOAT, 0, NULL) = *ys;
    set_int(init(m, n[3], ydt, 0, NULL), ydt, 0, *yzp);
    node(m, "DequantizeLinear", n[4], 3, (const char *[]){in, n[0], n[1]}, n[5], NULL);
    node(m, op, n[6], 1, (const char *[]){n[5]}, n[7], attrs);
    snprintf(n[4], sizeof n[4], "%sq", p);
    node(m, "QuantizeLinear", n[4], 3, (const char *[]){n[7], n[2], n[3]}, out, NULL);
}

/* DQ(a) + DQ(b) -> Add -> Q into out. */
static void add_qadd(hpcz_model *m, const char *p, const char *a, float sa, int za, int adt,
                     const char *b, float sb, int zb, int bdt, int ydt, const char *out)
{
    char n[12][32];
    for (int i = 0; i < 12; i++)
        snprintf(n[i], sizeof n[i], "%s%d", p, i);
    *(float *)init(m, n[0], HPCZ_DTYPE_FLOAT, 0, NULL) = sa;
    set_int(init(m, n[1], adt, 0, NULL), adt, 0, za);
    *(float *)init(m, n[2], HPCZ_DTYPE_FLOAT, 0, NULL) = sb;
    set_int(init(m, n[3], bdt, 0, NULL), bdt, 0, zb);
    *(float *)init(m, n[4], HPCZ_DTYPE_FLOAT, 0, NULL) = (sa + sb) * frange(0.6f, 1.5f);
    set_int(init(m, n[5], ydt, 0, NULL), ydt, 0, ydt == U8 ? irange(60, 195) : irange(-60, 60));
    node(m, "DequantizeLinear", n[6], 3, (const char *[]){a, n[0], n[1]}, n[7], NULL);
    node(m, "DequantizeLinear", n[8], 3, (const char *[]){b, n[2], n[3]}, n[9], NULL);
    node(m, "Add", n[10], 2, (const char *[]){n[7], n[9]}, n[11], NULL);
    snprintf(n[6], sizeof n[6], "%sq", p);
    node(m, "QuantizeLinear", n[6], 3, (const char *[]){n[11], n[4], n[5]}, out, NULL);
}

/* Table ops and Adds alone (odd sizes), then Conv -> table -> Add(conv) in
 * one block on the device. */
static void check_elementwise(void)
{
    static const struct {
        const char *op, *attrs;
        int xdt, ydt;
        int64_t n;
    } tables[] = {
        {"LeakyRelu", "alpha=f:0.1", U8, U8, 1001}, {"Sigmoid", NULL, S8, U8, 77},
        {"LeakyRelu", "alpha=f:0.3", S8, S8, 4099},
    };
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        qcase c = {.xdt = tables[i].xdt, .xrank = 1, .xd = {tables[i].n}};
        hpcz_model *m = hpcz_model_new();
        hpcz_array x = {0};
        float xs, ys;
        int xzp, yzp;
        add_input(m, &c, &x, &xs, &xzp);
        add_table(m, "t", "x", xs, xzp, c.xdt, tables[i].ydt, tables[i].op, tables[i].attrs, "y",
                  &ys, &yzp);
        hpcz_error err = {0};
        hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
        char label[96];
        snprintf(label, sizeof label, "table op %s x%s y%s, %lld elements", tables[i].op,
                 c.xdt == U8 ? "u8" : "s8", tables[i].ydt == U8 ? "u8" : "s8",
                 (long long)tables[i].n);
        run_case(m, &x, label, 1, 1);
        hpcz_array_release(&x);
        hpcz_model_free(m);
    }
    for (int i = 0; i < 3; i++) {
        int adt = i == 1 ? S8 : U8, bdt = i == 2 ? S8 : U8, ydt = i ? S8 : U8;
        int64_t n = (int64_t[]){999, 64, 4101}[i];
        qcase ca = {.xdt = adt, .xrank = 2, .xd = {3, n}};
        hpcz_model *m = hpcz_model_new();
        hpcz_array in[2] = {{0}};
        float sa, sb;
        int za, zb;
        add_input(m, &ca, &in[0], &sa, &za);
        /* the second input, b */
        hpcz_error err = {0};
        hpcz_value *bv = hpcz_graph_value(m->graph, "b");
        bv->dtype = bdt;
        bv->ndim = 2;
        bv->dims = hpcz_model_alloc(m, 2 * sizeof *bv->dims);
        bv->dims[0].size = 3;
        bv->dims[1].size = n;
        hpcz_graph_add_input(m->graph, bv, &err);
        hpcz_array_alloc(&in[1], bdt, 2, (int64_t[]){3, n}, &err);
        for (int64_t k = 0; k < in[1].numel; k++)
            set_int(in[1].data, bdt, k, irange(bdt == U8 ? 0 : -128, bdt == U8 ? 255 : 127));
        sb = frange(0.005f, 0.05f);
        zb = bdt == U8 ? irange(0, 255) : irange(-30, 30);
        add_qadd(m, "s", "x", sa, za, adt, "b", sb, zb, bdt, ydt, "y");
        hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
        char label[96];
        snprintf(label, sizeof label, "Add a%s b%s y%s, [3, %lld]", adt == U8 ? "u8" : "s8",
                 bdt == U8 ? "u8" : "s8", ydt == U8 ? "u8" : "s8", (long long)n);
        run_inputs(m, in, 2, label, 1, 1);
        hpcz_array_release(&in[0]);
        hpcz_array_release(&in[1]);
        hpcz_model_free(m);
    }
    /* x -> Conv block -> c; c -> LeakyRelu table -> t; Add(c, t) -> y */
    qcase a = cases[0];
    hpcz_model *m = hpcz_model_new();
    hpcz_array x = {0};
    float xs, ts;
    int xzp, tz;
    add_input(m, &a, &x, &xs, &xzp);
    add_block(m, &a, "a", "x", xs, xzp, "c");
    hpcz_error err = {0};
    float cs = *(const float *)hpcz_tensor_data(hpcz_graph_find_value(m->graph, "a7")->init, &err);
    int cz = *(const uint8_t *)hpcz_tensor_data(hpcz_graph_find_value(m->graph, "a8")->init, &err);
    add_table(m, "t", "c", cs, cz, U8, U8, "LeakyRelu", "alpha=f:0.2", "t", &ts, &tz);
    add_qadd(m, "s", "c", cs, cz, U8, "t", ts, tz, U8, U8, "y");
    hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
    run_case(m, &x, "Conv -> table -> Add, all int8 on the device", 3, 3);
    hpcz_array_release(&x);
    hpcz_model_free(m);
}

/* Conv block -> DQ -> MaxPool -> Q with the same parameters: the engine runs
 * the MaxPool on the codes (pool.c's 8-bit kernel), the device too. */
static void check_maxpool8(int ydt, const char *attrs)
{
    qcase a = cases[0];
    a.ydt = ydt;
    hpcz_model *m = hpcz_model_new();
    hpcz_array x = {0};
    float xs;
    int xzp;
    add_input(m, &a, &x, &xs, &xzp);
    add_block(m, &a, "a", "x", xs, xzp, "c");
    node(m, "DequantizeLinear", "pdq", 3, (const char *[]){"c", "a7", "a8"}, "cf", NULL);
    node(m, "MaxPool", "pool", 1, (const char *[]){"cf"}, "pf", attrs);
    node(m, "QuantizeLinear", "pq", 3, (const char *[]){"pf", "a7", "a8"}, "y", NULL);
    hpcz_error err = {0};
    hpcz_graph_add_output(m->graph, hpcz_graph_value(m->graph, "y"), &err);
    char label[160];
    snprintf(label, sizeof label, "Conv -> MaxPool on %s codes (%s)", ydt == U8 ? "u8" : "s8",
             attrs);
    run_case(m, &x, label, 2, 2);
    hpcz_array_release(&x);
    hpcz_model_free(m);
}

static void check_all(void)
{
    test_rng = TEST_RNG_SEED;
    char label[300];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(&cases[i], describe(&cases[i], label, sizeof label));
    check_random(24);
    check_chain();
    check_elementwise();
    check_maxpool8(U8, "kernel_shape=is:3,3;strides=is:2,2;pads=is:1,1,1,1");
    check_maxpool8(S8, "kernel_shape=is:2,3;strides=is:1,2;pads=is:0,1,1,0;ceil_mode=i:1");
}

int main(void)
{
    return two_pass_main(check_all, "bytes only");
}
