/*
 * test_gpu_resident.c - where the cuda backend keeps values and when it
 * copies and waits, checked with host emulations of its kernels and memory
 * (emulation.h: device memory a separate, non-dereferenceable address space;
 * copies and syncs counted), so on any machine with a CUDA build:
 *  - a chain of nodes the GPU runs (Conv+Relu, MaxPool, BatchNormalization,
 *    Flatten as a view, Gemm, Softmax): per run exactly one host-to-device
 *    copy per input, one device-to-host copy per output, one sync;
 *  - a node only the CPU runs (Floor) in the middle: exactly one more copy
 *    each way (and one more sync, before the CPU node reads); a view (Flatten)
 *    between CPU nodes stays on the host (no copy at all);
 *  - an observer that takes host memory only sees every tensor copied back
 *    (the cpu's values); weights changed between runs (weights_change) are
 *    uploaded again;
 *  - outputs against the cpu backend (normalised error, per-op bounds as
 *    test_gpu_kernels), per-channel QuantizeLinear/DequantizeLinear the same
 *    bytes, Clip and LeakyRelu fused, a float16 MatMul/Gemm/elementwise chain;
 *  - calibration with the device observers: no activation comes back (only
 *    the graph outputs), the tables equal the cpu's exactly on a model whose
 *    GPU arithmetic is exact (histogram methods included), and within 1e-4
 *    of each tensor's magnitude on the conv chain.
 * Then, where a CUDA device is present, every check again on it (values
 * only: the counts come from the emulation).
 */
#include "hpcz.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/op_model.h" /* frand, value, parse_attrs */
#include "emulation.h"
#include "two_pass.h"


/* ---- building models */

static hpcz_value *graph_input(hpcz_model *m, const char *name, int rank, const int64_t *dims)
{
    hpcz_value *v = value(m->graph, name, rank, dims);
    v->is_input = 1;
    m->graph->inputs[m->graph->n_inputs++] = v;
    return v;
}

static int64_t numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    return n;
}

/* A float initializer of random values (positive: in [0.5, 1.5), variances). */
static hpcz_value *weight(hpcz_model *m, const char *name, int rank, const int64_t *dims,
                          bool positive)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, HPCZ_DTYPE_FLOAT, rank, dims);
    float *d = hpcz_tensor_alloc(t);
    for (int64_t i = 0; i < numel(rank, dims); i++)
        d[i] = positive ? 1.0f + 0.5f * frand() : frand();
    hpcz_graph_add_initializer(m->graph, t, &err);
    return hpcz_graph_value(m->graph, name);
}

static hpcz_value *int8_weight(hpcz_model *m, const char *name, int64_t n, const int8_t *v)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, HPCZ_DTYPE_INT8, 1, &n);
    memcpy(hpcz_tensor_alloc(t), v, (size_t)n);
    hpcz_graph_add_initializer(m->graph, t, &err);
    return hpcz_graph_value(m->graph, name);
}

/* Adds node op(ins) with attributes (op_attrs.h syntax); its one output. */
static hpcz_value *node(hpcz_model *m, const char *op, const char *attrs, int n_in,
                        hpcz_value *const *ins)
{
    static int count;
    char name[32];
    snprintf(name, sizeof name, "n%d", count);
    hpcz_node *n = hpcz_graph_add_node(m->graph, op, name, (size_t)n_in, 1);
    parse_attrs(m, n, attrs);
    for (int i = 0; i < n_in; i++)
        n->inputs[i] = ins[i];
    snprintf(name, sizeof name, "v%d", count++);
    hpcz_value *y = value(m->graph, name, -1, NULL);
    y->producer = n;
    n->outputs[0] = y;
    return y;
}

static void set_output(hpcz_model *m, hpcz_value *y)
{
    y->is_output = 1;
    m->graph->outputs[m->graph->n_outputs++] = y;
}

static hpcz_model *new_model(void)
{
    hpcz_model *m = hpcz_model_new();
    m->graph->inputs = hpcz_model_alloc(m, 4 * sizeof *m->graph->inputs);
    m->graph->outputs = hpcz_model_alloc(m, 4 * sizeof *m->graph->outputs);
    return m;
}

/* x [2, 3, 12, 12] -> Conv 3x3 pad 1 + Relu -> MaxPool 2x2 -> BatchNorm ->
 * [Floor, with_cpu_node] -> Flatten -> Gemm (transB) -> Softmax. */
static hpcz_model *conv_chain(bool with_cpu_node)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){2, 3, 12, 12});
    hpcz_value *w = weight(m, "w", 4, (int64_t[]){8, 3, 3, 3}, false);
    hpcz_value *b = weight(m, "b", 1, (int64_t[]){8}, false);
    hpcz_value *y = node(m, "Conv", "pads=is:1,1,1,1", 3, (hpcz_value *[]){x, w, b});
    y = node(m, "Relu", NULL, 1, &y);
    y = node(m, "MaxPool", "kernel_shape=is:2,2;strides=is:2,2", 1, &y);
    hpcz_value *bn[5] = {y, weight(m, "bn_s", 1, (int64_t[]){8}, true),
                         weight(m, "bn_b", 1, (int64_t[]){8}, false),
                         weight(m, "bn_m", 1, (int64_t[]){8}, false),
                         weight(m, "bn_v", 1, (int64_t[]){8}, true)};
    y = node(m, "BatchNormalization", "epsilon=f:0.001", 5, bn);
    if (with_cpu_node)
        y = node(m, "Floor", NULL, 1, &y);
    y = node(m, "Flatten", NULL, 1, &y);
    hpcz_value *w2 = weight(m, "w2", 2, (int64_t[]){10, 8 * 6 * 6}, false);
    hpcz_value *b2 = weight(m, "b2", 1, (int64_t[]){10}, false);
    y = node(m, "Gemm", "transB=i:1", 3, (hpcz_value *[]){y, w2, b2});
    y = node(m, "Softmax", NULL, 1, &y);
    set_output(m, y);
    return m;
}

static void random_input(hpcz_array *a, int dtype, int rank, const int64_t *dims)
{
    hpcz_error err = {0};
    hpcz_array_alloc(a, dtype, rank, dims, &err);
    for (int64_t i = 0; i < a->numel; i++)
        ((float *)a->data)[i] = 3 * frand();
}

static double nerr(const hpcz_array *g, const hpcz_array *r)
{
    if (g->numel != r->numel || g->dtype != r->dtype)
        return INFINITY;
    if (g->dtype != HPCZ_DTYPE_FLOAT)
        return memcmp(g->data, r->data, g->nbytes) ? INFINITY : 0;
    double maxref = 0, maxerr = 0;
    for (int64_t i = 0; i < g->numel; i++) {
        double x = ((const float *)g->data)[i], y = ((const float *)r->data)[i];
        maxref = fmax(maxref, fabs(y));
        maxerr = fmax(maxerr, isnan(x) != isnan(y) ? INFINITY : fabs(x - y));
    }
    return maxerr / fmax(maxref, 1e-3);
}

static hpcz_plan_stats last_stats; /* of the last cuda plan run_both ran */

/* Runs m twice on cuda (the first run plans and uploads the weights) and
 * once on cpu; the copies and syncs of the second cuda run in *c. */
static bool run_both(hpcz_model *m, const hpcz_array *in, hpcz_array *g, hpcz_array *r,
                     long *h2d, long *d2h, long *syncs, const char *label)
{
    hpcz_error err = {0};
    hpcz_plan_opts pg = {.threads = 1, .backend = "cuda"}, pc = {.threads = 1, .backend = "cpu"};
    hpcz_plan *p = hpcz_plan_new(m, &pg, &err), *q = hpcz_plan_new(m, &pc, &err);
    bool ok = p && q && !hpcz_plan_run(p, in, g, &err);
    for (size_t i = 0; p && i < hpcz_plan_n_outputs(p); i++)
        hpcz_array_release(&g[i]);
    memset(&emu_count, 0, sizeof emu_count);
    ok = ok && !hpcz_plan_run(p, in, g, &err);
    *h2d = emu_count.h2d;
    *d2h = emu_count.d2h;
    *syncs = emu_count.syncs;
    ok = ok && !hpcz_plan_run(q, in, r, &err);
    if (!ok)
        check(false, label, ": %s", err.msg);
    if (p)
        hpcz_plan_get_stats(p, &last_stats);
    hpcz_plan_free(p);
    hpcz_plan_free(q);
    return ok;
}

static void check_chain(bool with_cpu_node)
{
    hpcz_model *m = conv_chain(with_cpu_node);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){2, 3, 12, 12});
    long h2d, d2h, syncs;
    const char *label = with_cpu_node ? "chain with a CPU node (Floor)" : "chain on the GPU";
    int calls = emu_calls;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, label)) {
        double e = nerr(&g, &r);
        check(e <= 2e-5, label, ": normalized error %.2e (bound 2e-05)", e);
        long want = with_cpu_node ? 2 : 1;
        check(COUNTED(h2d == want && d2h == want && syncs == want), label,
              ": per run %ld host-to-device copies, %ld device-to-host, %ld syncs (want %ld each)",
              h2d, d2h, syncs, want);
        /* Conv (Relu fused), MaxPool, BN, Flatten (a view; on the host after
         * Floor), Gemm, Softmax */
        size_t on_dev = with_cpu_node ? 5 : 6;
        check(last_stats.n_device == on_dev && last_stats.n_copies == (size_t)(2 * want) &&
                  last_stats.device_const_bytes == (8 * 27 + 8 + 4 * 8 + 10 * 288 + 10) * 4,
              label, ": plan stats: %zu nodes on the device (want %zu), %zu copies, %llu bytes "
              "of weights uploaded", last_stats.n_device, on_dev, last_stats.n_copies,
              (unsigned long long)last_stats.device_const_bytes);
        /* per cuda run: Conv, its fused Relu, MaxPool, BN, Gemm's C and GEMM, Softmax */
        check(COUNTED(emu_calls - calls == 2 * 7), label, ": %d kernel launches in two runs (want 14)",
              emu_calls - calls);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* x -> QuantizeLinear (per channel, int8) -> DequantizeLinear: the cpu's bytes. */
static void check_qdq_per_channel(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){2, 4, 5, 5});
    hpcz_value *s = weight(m, "s", 1, (int64_t[]){4}, true);
    hpcz_value *zp = int8_weight(m, "zp", 4, (const int8_t[]){-3, 0, 7, 100});
    hpcz_value *q = node(m, "QuantizeLinear", "axis=i:1", 3, (hpcz_value *[]){x, s, zp});
    hpcz_value *y = node(m, "DequantizeLinear", "axis=i:1", 3, (hpcz_value *[]){q, s, zp});
    set_output(m, y);
    set_output(m, q);
    hpcz_array in = {0}, g[2] = {{0}}, r[2] = {{0}};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){2, 4, 5, 5});
    for (int64_t i = 0; i < in.numel; i += 7)
        ((float *)in.data)[i] = 0.5f * ((float *)in.data)[i - i % 4]; /* some repeats */
    long h2d, d2h, syncs;
    if (run_both(m, &in, g, r, &h2d, &d2h, &syncs, "per-channel Q/DQ")) {
        check(nerr(&g[0], &r[0]) == 0 && nerr(&g[1], &r[1]) == 0, "per-channel Q/DQ",
              ": int8 bytes and dequantized values equal the cpu's");
        check(COUNTED(h2d == 1 && d2h == 2 && syncs == 1), "per-channel Q/DQ",
              ": per run %ld/%ld/%ld copies in/out and syncs (want 1/2/1)", h2d, d2h, syncs);
    }
    for (int i = 0; i < 2; i++) {
        hpcz_array_release(&g[i]);
        hpcz_array_release(&r[i]);
    }
    hpcz_array_release(&in);
    hpcz_model_free(m);
}

/* Conv -> Clip(0, 6) (fused into the conv's epilogue) -> Add -> LeakyRelu (fused). */
static void check_fused_acts(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){1, 4, 9, 9});
    hpcz_value *w = weight(m, "w", 4, (int64_t[]){4, 4, 3, 3}, false);
    hpcz_value *y = node(m, "Conv", "pads=is:1,1,1,1", 2, (hpcz_value *[]){x, w});
    hpcz_tensor *lo = hpcz_tensor_new(m, "lo", HPCZ_DTYPE_FLOAT, 0, NULL);
    hpcz_tensor *hi = hpcz_tensor_new(m, "hi", HPCZ_DTYPE_FLOAT, 0, NULL);
    *(float *)hpcz_tensor_alloc(lo) = 0.0f;
    *(float *)hpcz_tensor_alloc(hi) = 0.6f;
    hpcz_error err = {0};
    hpcz_graph_add_initializer(m->graph, lo, &err);
    hpcz_graph_add_initializer(m->graph, hi, &err);
    y = node(m, "Clip", NULL, 3,
             (hpcz_value *[]){y, hpcz_graph_value(m->graph, "lo"), hpcz_graph_value(m->graph, "hi")});
    y = node(m, "Add", NULL, 2, (hpcz_value *[]){y, x});
    y = node(m, "LeakyRelu", "alpha=f:0.2", 1, &y);
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){1, 4, 9, 9});
    long h2d, d2h, syncs;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "fused Clip and LeakyRelu")) {
        double e = nerr(&g, &r);
        check(e <= 2e-5 && COUNTED(h2d == 1 && d2h == 1 && syncs == 1), "fused Clip and LeakyRelu",
              ": normalized error %.2e (bound 2e-05), %ld/%ld/%ld copies and syncs", e, h2d,
              d2h, syncs);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

static hpcz_value *f16_weight(hpcz_model *m, const char *name, int rank, const int64_t *dims)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, HPCZ_DTYPE_FLOAT16, rank, dims);
    _Float16 *d = hpcz_tensor_alloc(t);
    bool positive = !strncmp(name, "var", 3);
    for (int64_t i = 0; i < numel(rank, dims); i++)
        d[i] = (_Float16)(positive ? 1.0f + 0.5f * frand() : 0.3f * frand());
    hpcz_graph_add_initializer(m->graph, t, &err);
    return hpcz_graph_value(m->graph, name);
}

/* float16 nodes with float32 kernels only (Conv, BatchNormalization,
 * MaxPool, GlobalAveragePool, Softmax) run widened on the device, one
 * rounding per output as on the cpu. */
static void check_fp16_widened(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){2, 4, 9, 9});
    x->dtype = HPCZ_DTYPE_FLOAT16;
    hpcz_value *y = node(m, "Conv", "pads=is:1,1,1,1", 3,
                         (hpcz_value *[]){x, f16_weight(m, "cw", 4, (int64_t[]){6, 4, 3, 3}),
                                          f16_weight(m, "cb", 1, (int64_t[]){6})});
    hpcz_value *bn[5] = {y, f16_weight(m, "scale", 1, (int64_t[]){6}),
                         f16_weight(m, "bias", 1, (int64_t[]){6}),
                         f16_weight(m, "mean", 1, (int64_t[]){6}),
                         f16_weight(m, "var", 1, (int64_t[]){6})};
    y = node(m, "BatchNormalization", NULL, 5, bn);
    y = node(m, "MaxPool", "kernel_shape=is:2,2;strides=is:2,2", 1, &y);
    y = node(m, "GlobalAveragePool", NULL, 1, &y);
    y = node(m, "Flatten", NULL, 1, &y);
    y = node(m, "Softmax", NULL, 1, &y);
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    hpcz_error err = {0};
    hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT16, 4, (int64_t[]){2, 4, 9, 9}, &err);
    for (int64_t i = 0; i < in.numel; i++)
        ((_Float16 *)in.data)[i] = (_Float16)(2 * frand());
    long h2d, d2h, syncs;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "float16, widened kernels")) {
        double maxref = 0, maxerr = 0;
        for (int64_t i = 0; g.dtype == HPCZ_DTYPE_FLOAT16 && i < g.numel; i++) {
            double a = (double)((_Float16 *)g.data)[i], b = (double)((_Float16 *)r.data)[i];
            maxref = fmax(maxref, fabs(b));
            maxerr = fmax(maxerr, fabs(a - b));
        }
        double e = g.dtype == HPCZ_DTYPE_FLOAT16 ? maxerr / fmax(maxref, 1e-3) : INFINITY;
        check(e <= 4e-3 && COUNTED(h2d == 1 && d2h == 1 && syncs == 1 && last_stats.n_device == 6),
              "float16, widened kernels", ": normalized error %.2e (bound 4e-03), %zu nodes on "
              "the device, %ld/%ld/%ld copies and syncs", e, last_stats.n_device, h2d, d2h, syncs);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* float16 storage on the GPU: MatMul -> Add -> Sigmoid -> Gemm (C, transB)
 * -> Mul, against the cpu's float16 path (float32 arithmetic, one rounding
 * per output): within a few float16 ulps, and no node on the CPU. */
static void check_fp16(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 2, (int64_t[]){70, 96});
    x->dtype = HPCZ_DTYPE_FLOAT16;
    hpcz_value *y = node(m, "MatMul", NULL, 2,
                         (hpcz_value *[]){x, f16_weight(m, "w", 2, (int64_t[]){96, 80})});
    y = node(m, "Add", NULL, 2, (hpcz_value *[]){y, f16_weight(m, "b", 1, (int64_t[]){80})});
    y = node(m, "Sigmoid", NULL, 1, &y);
    hpcz_value *z = node(m, "Gemm", "transB=i:1;alpha=f:0.5", 3,
                         (hpcz_value *[]){y, f16_weight(m, "w2", 2, (int64_t[]){72, 80}),
                                          f16_weight(m, "b2", 1, (int64_t[]){72})});
    z = node(m, "Mul", NULL, 2, (hpcz_value *[]){z, z});
    set_output(m, z);
    hpcz_array in = {0}, g = {0}, r = {0};
    hpcz_error err = {0};
    hpcz_array_alloc(&in, HPCZ_DTYPE_FLOAT16, 2, (int64_t[]){70, 96}, &err);
    for (int64_t i = 0; i < in.numel; i++)
        ((_Float16 *)in.data)[i] = (_Float16)(2 * frand());
    long h2d, d2h, syncs;
    int calls = emu_calls;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "float16 chain")) {
        double maxref = 0, maxerr = 0;
        for (int64_t i = 0; g.dtype == HPCZ_DTYPE_FLOAT16 && i < g.numel; i++) {
            double a = (double)((_Float16 *)g.data)[i], b = (double)((_Float16 *)r.data)[i];
            maxref = fmax(maxref, fabs(b));
            maxerr = fmax(maxerr, fabs(a - b));
        }
        double e = g.dtype == HPCZ_DTYPE_FLOAT16 ? maxerr / fmax(maxref, 1e-3) : INFINITY;
        check(e <= 4e-3 && COUNTED(h2d == 1 && d2h == 1 && syncs == 1 && emu_calls - calls == 12),
              "float16 chain", ": normalized error %.2e (bound 4e-03), %ld/%ld/%ld copies and "
              "syncs, %d launches in two runs (want 12)", e, h2d, d2h, syncs, emu_calls - calls);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

static hpcz_value *const_tensor(hpcz_model *m, const char *name, int dtype, int64_t n,
                                const void *v)
{
    hpcz_error err = {0};
    hpcz_tensor *t = hpcz_tensor_new(m, name, dtype, 1, &n);
    memcpy(hpcz_tensor_alloc(t), v, (size_t)n * (dtype == HPCZ_DTYPE_INT64 ? 8 : 4));
    hpcz_graph_add_initializer(m->graph, t, &err);
    return hpcz_graph_value(m->graph, name);
}

/* Resize nearest with scales and with sizes, three coordinate transforms and
 * three rounding modes: the cpu's values exactly, all on the device. */
static void check_resize(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){1, 3, 5, 7});
    hpcz_value *sc = const_tensor(m, "sc", HPCZ_DTYPE_FLOAT, 4, (const float[]){1, 1, 2, 1.5f});
    hpcz_value *sz1 = const_tensor(m, "sz1", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 3, 7, 9});
    hpcz_value *sz2 = const_tensor(m, "sz2", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 3, 12, 4});
    hpcz_value *y = node(m, "Resize", "mode=s:nearest;coordinate_transformation_mode=s:asymmetric;"
                         "nearest_mode=s:floor", 3, (hpcz_value *[]){x, NULL, sc});
    y = node(m, "Resize", "mode=s:nearest", 4, (hpcz_value *[]){y, NULL, NULL, sz1});
    y = node(m, "Resize", "mode=s:nearest;coordinate_transformation_mode=s:align_corners;"
             "nearest_mode=s:round_prefer_ceil", 4, (hpcz_value *[]){y, NULL, NULL, sz2});
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){1, 3, 5, 7});
    long h2d, d2h, syncs;
    int calls = emu_calls;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "Resize nearest")) {
        check(nerr(&g, &r) == 0 && COUNTED(h2d == 1 && d2h == 1 && syncs == 1 && emu_calls - calls == 6),
              "Resize nearest", ": %s the cpu's values, %ld/%ld/%ld copies and syncs, %d "
              "launches in two runs (want 6)", nerr(&g, &r) == 0 ? "equal to" : "NOT", h2d, d2h,
              syncs, emu_calls - calls);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* Resize in linear and cubic modes: linear half_pixel by scales along H and
 * W (the cpu's float32 row blends), linear align_corners by sizes along
 * three axes and an output row longer than 4096 (the cpu's double sums over
 * every tap combination), cubic asymmetric with exclude_outside and
 * cubic_coeff_a -0.5, linear pytorch_half_pixel down to one row: the cpu's
 * values exactly (normalised error 0), all on the device. */
static void check_resize_interp(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){1, 3, 5, 7});
    hpcz_value *sc = const_tensor(m, "isc", HPCZ_DTYPE_FLOAT, 4, (const float[]){1, 1, 2, 1.5f});
    hpcz_value *sz1 = const_tensor(m, "isz1", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 2, 7, 9});
    hpcz_value *sz2 = const_tensor(m, "isz2", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 2, 12, 4});
    hpcz_value *sz3 = const_tensor(m, "isz3", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 2, 1, 5});
    hpcz_value *sz4 = const_tensor(m, "isz4", HPCZ_DTYPE_INT64, 4, (const int64_t[]){1, 2, 2, 4099});
    hpcz_value *y = node(m, "Resize", "mode=s:linear", 3, (hpcz_value *[]){x, NULL, sc});
    y = node(m, "Resize", "mode=s:linear;coordinate_transformation_mode=s:align_corners", 4,
             (hpcz_value *[]){y, NULL, NULL, sz1});
    y = node(m, "Resize", "mode=s:cubic;coordinate_transformation_mode=s:asymmetric;"
             "exclude_outside=i:1;cubic_coeff_a=f:-0.5", 4, (hpcz_value *[]){y, NULL, NULL, sz2});
    y = node(m, "Resize", "mode=s:linear;coordinate_transformation_mode=s:pytorch_half_pixel", 4,
             (hpcz_value *[]){y, NULL, NULL, sz3});
    y = node(m, "Resize", "mode=s:linear", 4, (hpcz_value *[]){y, NULL, NULL, sz4});
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){1, 3, 5, 7});
    long h2d, d2h, syncs;
    int calls = emu_calls;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "Resize linear/cubic")) {
        double e = nerr(&g, &r);
        check(e == 0 && last_stats.n_device == 5 &&
                  COUNTED(h2d == 1 && d2h == 1 && syncs == 1 && emu_calls - calls == 10),
              "Resize linear/cubic", ": normalized error %.2e against the cpu (want 0), %zu of 5 "
              "nodes on the device, %ld/%ld/%ld copies and syncs, %d launches in two runs "
              "(want 10)", e, last_stats.n_device, h2d, d2h, syncs, emu_calls - calls);
    }
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* Slice with negative starts, ends past the end, steps of 2 and -2, then
 * with default axes and steps: the cpu's values, all on the device. */
static void check_slice(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 3, (int64_t[]){5, 6, 9});
    hpcz_value *y = node(m, "Slice", NULL, 5, (hpcz_value *[]){x,
        const_tensor(m, "s0", HPCZ_DTYPE_INT64, 2, (const int64_t[]){1, -1}),
        const_tensor(m, "e0", HPCZ_DTYPE_INT64, 2, (const int64_t[]){100, -100}),
        const_tensor(m, "a0", HPCZ_DTYPE_INT64, 2, (const int64_t[]){0, -1}),
        const_tensor(m, "p0", HPCZ_DTYPE_INT64, 2, (const int64_t[]){2, -2})});
    y = node(m, "Slice", NULL, 3, (hpcz_value *[]){y,
        const_tensor(m, "s1", HPCZ_DTYPE_INT64, 3, (const int64_t[]){0, 2, 1}),
        const_tensor(m, "e1", HPCZ_DTYPE_INT64, 3, (const int64_t[]){1, 5, 4})});
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 3, (int64_t[]){5, 6, 9});
    long h2d, d2h, syncs;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "Slice"))
        check(nerr(&g, &r) == 0 && g.numel == 1 * 3 * 3 &&
                  COUNTED(h2d == 1 && d2h == 1 && last_stats.n_device == 2),
              "Slice", ": %s the cpu's values, %zu nodes on the device, %ld/%ld copies",
              nerr(&g, &r) == 0 ? "equal to" : "NOT", last_stats.n_device, h2d, d2h);
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* A view between CPU nodes stays on the host: no copies, no syncs. */
static void check_host_view(void)
{
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 3, (int64_t[]){2, 3, 4});
    hpcz_value *y = node(m, "Floor", NULL, 1, &x);
    y = node(m, "Flatten", NULL, 1, &y);
    y = node(m, "Ceil", NULL, 1, &y);
    set_output(m, y);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 3, (int64_t[]){2, 3, 4});
    long h2d, d2h, syncs;
    if (run_both(m, &in, &g, &r, &h2d, &d2h, &syncs, "view between CPU nodes"))
        check(nerr(&g, &r) == 0 && COUNTED(h2d == 0 && d2h == 0 && syncs == 0), "view between CPU nodes",
              ": stays on the host (%ld/%ld/%ld copies and syncs)", h2d, d2h, syncs);
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* An observer that takes host memory only (report, reconstruction) on a
 * plan whose values live on the device: every tensor copied back for the
 * call, the values the cpu plan shows. */
typedef struct seen {
    int n;
    double sum[16];
} seen;

static void on_value(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    (void)name;
    seen *s = ctx;
    double t = 0;
    for (int64_t i = 0; a->dtype == HPCZ_DTYPE_FLOAT && i < a->numel; i++)
        t += ((const float *)a->data)[i];
    if (s->n < 16)
        s->sum[s->n] = t;
    s->n++;
}

static void check_host_observer(void)
{
    hpcz_model *m = conv_chain(false);
    hpcz_array in = {0}, out = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){2, 3, 12, 12});
    seen sv[2] = {{0}, {0}};
    const char *const be[2] = {"cpu", "cuda"};
    bool ok = true;
    long back = 0;
    for (int d = 0; d < 2; d++) {
        hpcz_error err = {0};
        hpcz_plan_opts po = {.threads = 1, .backend = be[d], .observer = on_value,
                             .observer_ctx = &sv[d]};
        hpcz_plan *p = hpcz_plan_new(m, &po, &err);
        memset(&emu_count, 0, sizeof emu_count);
        ok &= p && !hpcz_plan_run(p, &in, &out, &err);
        back = emu_count.d2h;
        hpcz_array_release(&out);
        hpcz_plan_free(p);
    }
    bool same = ok && sv[0].n == sv[1].n && sv[0].n <= 16;
    for (int i = 0; same && i < sv[0].n; i++)
        same = fabs(sv[0].sum[i] - sv[1].sum[i]) <= 1e-4 * fmax(1, fabs(sv[0].sum[i]));
    /* no fusion under an observer: Conv, Relu, MaxPool, BN, Flatten, Gemm,
     * Softmax, each copied back once, and the output once */
    check(same && COUNTED(back == sv[1].n + 1), "host-only observer on cuda",
          ": %d tensors seen as on the cpu, %ld copies back", sv[1].n, back);
    hpcz_array_release(&in);
    hpcz_model_free(m);
}

/* hpcz_plan_opts.weights_change: weights changed in place between runs are
 * uploaded again (reconstruction, GPTQ). */
static void check_weights_change(void)
{
    hpcz_model *m = conv_chain(false);
    hpcz_array in = {0}, g = {0}, r = {0};
    random_input(&in, HPCZ_DTYPE_FLOAT, 4, (int64_t[]){2, 3, 12, 12});
    hpcz_error err = {0};
    hpcz_plan_opts pg = {.threads = 1, .backend = "cuda", .weights_change = 1};
    hpcz_plan_opts pc = {.threads = 1, .backend = "cpu", .weights_change = 1};
    hpcz_plan *p = hpcz_plan_new(m, &pg, &err), *q = hpcz_plan_new(m, &pc, &err);
    bool ok = p && q && !hpcz_plan_run(p, &in, &g, &err);
    hpcz_array_release(&g);
    for (size_t i = 0; i < m->graph->n_inits; i++) /* every weight scaled by -2 */
        if (m->graph->inits[i]->dtype == HPCZ_DTYPE_FLOAT && strncmp(m->graph->inits[i]->name, "bn_v", 4))
            for (int64_t k = 0; k < m->graph->inits[i]->numel; k++)
                ((float *)m->graph->inits[i]->data)[k] *= -2;
    ok = ok && !hpcz_plan_run(p, &in, &g, &err) && !hpcz_plan_run(q, &in, &r, &err);
    double e = ok ? nerr(&g, &r) : INFINITY;
    check(ok && e <= 2e-5, "weights changed between runs", ": normalized error %.2e (bound 2e-05)%s%s",
          e, ok ? "" : ": ", ok ? "" : err.msg);
    hpcz_plan_free(p);
    hpcz_plan_free(q);
    hpcz_array_release(&in);
    hpcz_array_release(&g);
    hpcz_array_release(&r);
    hpcz_model_free(m);
}

/* Calibration tables on cpu and cuda; *back: device-to-host bytes during the
 * cuda calibration. */
static bool calibrate_both(hpcz_model *m, hpcz_calib_method method, hpcz_calib_table **t,
                           uint64_t *back, long *observer_calls)
{
    const char *const dev[2] = {"cpu", "cuda"};
    bool ok = true;
    for (int d = 0; d < 2; d++) {
        hpcz_error err = {0};
        hpcz_plan_opts po = {.threads = 1};
        hpcz_dataset *ds = NULL;
        hpcz_plan *p = NULL;
        hpcz_calib_opts co = {.method = method, .bits = 8, .percentile = 99.9, .threads = 1};
        memset(&emu_count, 0, sizeof emu_count);
        int calls = emu_calls;
        if (hpcz_set_default_device(dev[d], &err) || !(p = hpcz_plan_new(m, &po, &err)) ||
            !(ds = hpcz_dataset_open("random:6", p, 6, &err)) ||
            hpcz_calibrate(m, ds, &co, &t[d], &err)) {
            check(false, "calibration", " on %s: %s", dev[d], err.msg);
            ok = false;
        }
        *back = emu_count.d2h_bytes;
        *observer_calls = emu_calls - calls;
        hpcz_dataset_free(ds);
        hpcz_plan_free(p);
    }
    hpcz_error err = {0};
    hpcz_set_default_device("cpu", &err);
    return ok;
}

static void check_calibration(void)
{
    /* exact on the GPU: Relu, MaxPool, Abs, Mul by a constant, Add */
    hpcz_model *m = new_model();
    hpcz_value *x = graph_input(m, "x", 4, (int64_t[]){-1, 3, 10, 10});
    hpcz_value *y = node(m, "Relu", NULL, 1, &x);
    y = node(m, "MaxPool", "kernel_shape=is:2,2;strides=is:2,2", 1, &y);
    hpcz_value *k = weight(m, "k", 3, (int64_t[]){3, 1, 1}, false);
    y = node(m, "Mul", NULL, 2, (hpcz_value *[]){y, k});
    hpcz_value *z = node(m, "Abs", NULL, 1, &y);
    y = node(m, "Add", NULL, 2, (hpcz_value *[]){y, z});
    set_output(m, y);
    static const struct {
        hpcz_calib_method m;
        const char *name;
    } methods[] = {{HPCZ_CALIB_MINMAX, "minmax"},
                   {HPCZ_CALIB_PERCENTILE, "percentile 99.9"},
                   {HPCZ_CALIB_ENTROPY, "entropy"},
                   {HPCZ_CALIB_MSE, "mse"},
                   {HPCZ_CALIB_MEAN_MINMAX, "mean-minmax"}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        hpcz_calib_table *t[2] = {NULL, NULL};
        uint64_t back;
        long calls;
        if (calibrate_both(m, methods[i].m, t, &back, &calls)) {
            bool same = t[0]->n == t[1]->n && t[0]->n == 6;
            for (size_t j = 0; same && j < t[0]->n; j++) {
                const hpcz_calib_range *a = &t[0]->r[j], *b = hpcz_calib_find(t[1], a->name);
                same = b && a->min == b->min && a->max == b->max && a->seen_min == b->seen_min &&
                       a->seen_max == b->seen_max && a->abs_p99 == b->abs_p99 &&
                       a->finite == b->finite && a->nonfinite == b->nonfinite;
            }
            /* 6 samples of [3, 5, 5] float outputs come back, nothing else */
            check(same && COUNTED(back == 6 * 3 * 5 * 5 * 4 && calls > 0), "calibration, exact ops, ",
                  "%s: tables equal the cpu's (%zu ranges); %llu bytes copied back", methods[i].name,
                  t[0]->n, (unsigned long long)back);
        }
        hpcz_calib_table_free(t[0]);
        hpcz_calib_table_free(t[1]);
    }
    hpcz_model_free(m);
    /* the conv chain: GEMM/conv sums in another order, 1e-4 of the magnitude */
    m = conv_chain(false);
    m->graph->inputs[0]->dims[0].size = -1;
    hpcz_calib_table *t[2] = {NULL, NULL};
    uint64_t back;
    long calls;
    if (calibrate_both(m, HPCZ_CALIB_MINMAX, t, &back, &calls)) {
        size_t bad = 0;
        for (size_t j = 0; j < t[0]->n; j++) {
            const hpcz_calib_range *a = &t[0]->r[j], *b = hpcz_calib_find(t[1], a->name);
            double mag = fmax(fmax(fabs(a->min), fabs(a->max)), 1e-6);
            bad += !b || fabs(a->min - b->min) > 1e-4 * mag || fabs(a->max - b->max) > 1e-4 * mag;
        }
        check(!bad && t[0]->n == t[1]->n && COUNTED(back == 6 * 10 * 4), "calibration, conv chain",
              ": %zu of %zu ranges beyond 1e-4; %llu bytes copied back", bad, t[0]->n,
              (unsigned long long)back);
    }
    hpcz_calib_table_free(t[0]);
    hpcz_calib_table_free(t[1]);
    hpcz_model_free(m);
}

static void check_all(void)
{
    check_chain(false);
    check_chain(true);
    check_qdq_per_channel();
    check_fused_acts();
    check_fp16();
    check_fp16_widened();
    check_resize();
    check_resize_interp();
    check_slice();
    check_host_view();
    check_host_observer();
    check_weights_change();
    check_calibration();
}

int main(void)
{
    return two_pass_main(check_all, "values only");
}
