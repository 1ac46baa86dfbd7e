/*
 * test_contrib.c - ONNX Runtime's contrib ops (com.microsoft) on the cpu
 * backend against the ref backend (naive kernels, double accumulators) on
 * random inputs: MatMulNBits on both of its paths (fused GEMV for up to 4
 * rows, dequantized panels + sgemm beyond), bits 2/4/8, packed, float or
 * absent zero points, g_idx, bias, K not a multiple of the block; and the
 * float ops (FusedMatMul, the Gelu variants, the skip/simplified layer norms,
 * DynamicQuantizeMatMul). Also: the same bytes with 1 and 2 threads, and with
 * HPCZ_NBITS_NO_AVX2 (the portable MatMulNBits kernels). tests/py/
 * test_contrib_ops.py checks the cpu backend against ONNX Runtime itself.
 */
#include "hpcz.h"
#include "op_attrs.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the case tables leave trailing fields of an input zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static int failures, cases;
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static float frand(void) /* [-1, 1) */
{
    return (float)(urand() * (1.0 / 4294967296.0)) * 2.0f - 1.0f;
}

/* One input: a float graph input (kind 'x'), or an initializer of random
 * data: 'u' uint8 in [0, hi], 'i' int8 in [-hi, hi], 'g' int32 in [0, hi],
 * 'f' float in [lo, lo + 1), '-' omitted. */
typedef struct in_spec {
    char kind;
    int ndim;
    int64_t dims[4];
    int hi;
    float lo;
} in_spec;

typedef struct cspec {
    const char *label, *op, *domain;
    int n_in;
    in_spec in[7];
    const char *attrs; /* "name=i:1;name=f:0.5" */
    double tol;        /* bound on max|cpu - ref| / max|ref| */
    int n_out;         /* outputs compared (all produced) */
} cspec;

/* The model, and the float graph inputs' data in ins (in input order). */
static hpcz_model *build(const cspec *s, hpcz_array *ins, int *n_ins)
{
    hpcz_model *m = hpcz_model_new();
    hpcz_graph *g = m->graph;
    hpcz_error err = {0};
    hpcz_opset *ops = hpcz_model_alloc(m, 2 * sizeof *ops);
    ops[0] = (hpcz_opset){"", 17};
    ops[1] = (hpcz_opset){"com.microsoft", 1};
    m->opsets = ops;
    m->n_opsets = 2;
    g->inputs = hpcz_model_alloc(m, 7 * sizeof *g->inputs);
    g->outputs = hpcz_model_alloc(m, 4 * sizeof *g->outputs);
    hpcz_node *n = hpcz_graph_add_node(g, s->op, "n0", (size_t)s->n_in, (size_t)s->n_out);
    if (s->domain)
        n->domain = hpcz_model_strdup(m, s->domain);
    parse_attrs(m, n, s->attrs);
    *n_ins = 0;
    for (int i = 0; i < s->n_in; i++) {
        const in_spec *is = &s->in[i];
        if (is->kind == '-')
            continue;
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        int dt = is->kind == 'u' ? HPCZ_DTYPE_UINT8 : is->kind == 'i' ? HPCZ_DTYPE_INT8
                 : is->kind == 'g' ? HPCZ_DTYPE_INT32 : HPCZ_DTYPE_FLOAT;
        hpcz_value *v = hpcz_graph_value(g, name);
        n->inputs[i] = v;
        if (is->kind == 'x') {
            v->dtype = dt;
            v->ndim = is->ndim;
            v->dims = hpcz_model_alloc(m, (size_t)(is->ndim + 1) * sizeof *v->dims);
            for (int d = 0; d < is->ndim; d++)
                v->dims[d].size = is->dims[d];
            v->is_input = 1;
            g->inputs[g->n_inputs++] = v;
            hpcz_array *a = &ins[(*n_ins)++];
            hpcz_array_alloc(a, dt, is->ndim, is->dims, &err);
            for (int64_t k = 0; k < a->numel; k++)
                ((float *)a->data)[k] = frand() * 2.0f;
            continue;
        }
        hpcz_tensor *t = hpcz_tensor_new(m, name, dt, is->ndim, is->dims);
        void *d = hpcz_tensor_alloc(t);
        for (int64_t k = 0; k < t->numel; k++) {
            uint32_t r = urand();
            if (is->kind == 'u')
                ((uint8_t *)d)[k] = (uint8_t)(r % (uint32_t)(is->hi + 1));
            else if (is->kind == 'i')
                ((int8_t *)d)[k] = (int8_t)((int)(r % (uint32_t)(2 * is->hi + 1)) - is->hi);
            else if (is->kind == 'g')
                ((int32_t *)d)[k] = (int32_t)(r % (uint32_t)(is->hi + 1));
            else
                ((float *)d)[k] = is->lo + (frand() * 0.5f + 0.5f);
        }
        hpcz_graph_add_initializer(g, t, &err);
    }
    for (int o = 0; o < s->n_out; o++) {
        char name[16];
        snprintf(name, sizeof name, "y%d", o);
        hpcz_value *y = hpcz_graph_value(g, name);
        hpcz_node_set_output(n, (size_t)o, y);
        y->is_output = 1;
        g->outputs[g->n_outputs++] = y;
    }
    return m;
}

static bool run(hpcz_model *m, const char *backend, int threads, hpcz_array *ins, hpcz_array *outs,
                hpcz_error *err)
{
    hpcz_plan_opts po = {.threads = threads, .backend = backend};
    hpcz_plan *p = hpcz_plan_new(m, &po, err);
    if (!p)
        return false;
    bool ok = hpcz_plan_run(p, ins, outs, err) == HPCZ_OK;
    hpcz_plan_free(p);
    return ok;
}

static bool same_bytes(const hpcz_array *a, const hpcz_array *b, int n)
{
    for (int o = 0; o < n; o++)
        if (a[o].nbytes != b[o].nbytes || memcmp(a[o].data, b[o].data, a[o].nbytes))
            return false;
    return true;
}

static void check(const cspec *s)
{
    cases++;
    hpcz_array ins[7], a[4], b[4], p[4], r[4];
    memset(ins, 0, sizeof ins);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    memset(p, 0, sizeof p);
    memset(r, 0, sizeof r);
    int n_ins;
    hpcz_model *m = build(s, ins, &n_ins);
    hpcz_error err = {0};
    bool ok = run(m, "cpu", 1, ins, a, &err) && run(m, "cpu", 2, ins, b, &err) &&
              run(m, "ref", 1, ins, r, &err);
    setenv("HPCZ_NBITS_NO_AVX2", "1", 1);
    ok = ok && run(m, "cpu", 2, ins, p, &err);
    unsetenv("HPCZ_NBITS_NO_AVX2");
    double nerr = 0;
    if (ok && !same_bytes(a, b, s->n_out)) {
        ok = false;
        snprintf(err.msg, sizeof err.msg, "1 and 2 threads differ");
    }
    if (ok && !same_bytes(a, p, s->n_out)) {
        ok = false;
        snprintf(err.msg, sizeof err.msg, "the portable kernels differ from the AVX2 ones");
    }
    for (int o = 0; ok && o < s->n_out; o++) {
        if (a[o].numel != r[o].numel || a[o].dtype != r[o].dtype) {
            ok = false;
            snprintf(err.msg, sizeof err.msg, "output %d: shapes or dtypes differ", o);
            break;
        }
        if (a[o].dtype != HPCZ_DTYPE_FLOAT) { /* integer outputs: exact */
            ok = !memcmp(a[o].data, r[o].data, a[o].nbytes);
            if (!ok)
                snprintf(err.msg, sizeof err.msg, "output %d differs", o);
            continue;
        }
        double maxref = 0, maxerr = 0;
        for (int64_t k = 0; k < a[o].numel; k++) {
            double x = ((const float *)a[o].data)[k], y = ((const float *)r[o].data)[k];
            maxref = fmax(maxref, fabs(y));
            maxerr = isnan(x) != isnan(y) ? INFINITY : fmax(maxerr, fabs(x - y));
        }
        nerr = fmax(nerr, maxerr / fmax(maxref, 1e-3));
    }
    bool good = ok && nerr <= s->tol;
    failures += !good;
    printf("%s %-52s normalized error %.2e (bound %.0e)%s%s\n", good ? "PASS" : "FAIL", s->label,
           nerr, s->tol, ok ? "" : ": ", ok ? "" : err.msg);
    for (int i = 0; i < 7; i++)
        hpcz_array_release(&ins[i]);
    for (int o = 0; o < 4; o++) {
        hpcz_array_release(&a[o]);
        hpcz_array_release(&b[o]);
        hpcz_array_release(&p[o]);
        hpcz_array_release(&r[o]);
    }
    hpcz_model_free(m);
}

/* MatMulNBits: A [M, K] (or [2, M/2, K]), N outputs. */
static void nbits(int bits, int bs, int64_t K, int64_t N, int64_t M, char zp, bool bias, bool gidx)
{
    static char labels[64][96], attrs[64][96];
    static int k;
    char *label = labels[k % 64], *at = attrs[k % 64];
    k++;
    int64_t nb = (K + bs - 1) / bs, blob = bs * bits / 8, zrow = (nb * bits + 7) / 8;
    snprintf(label, 96, "MatMulNBits %d-bit b%d K%lld N%lld M%lld zp:%c%s%s", bits, bs, (long long)K,
             (long long)N, (long long)M, zp, bias ? " bias" : "", gidx ? " g_idx" : "");
    snprintf(at, 96, "K=i:%lld;N=i:%lld;bits=i:%d;block_size=i:%d", (long long)K, (long long)N, bits,
             bs);
    cspec s = {label, "MatMulNBits", "com.microsoft", 6, {{0}}, at, 2e-5, 1};
    s.in[0] = M % 2 == 0 && M > 2 ? (in_spec){'x', 3, {2, M / 2, K}, 0, 0}
                                  : (in_spec){'x', 2, {M, K}, 0, 0};
    s.in[1] = (in_spec){'u', 3, {N, nb, blob}, 255, 0};
    s.in[2] = (in_spec){'f', 1, {N * nb}, 0, -0.5f};
    s.in[3] = zp == 'p'   ? (in_spec){'u', 1, {N * zrow}, 255, 0}
              : zp == 'f' ? (in_spec){'f', 2, {N, nb}, 0, (float)(1 << (bits - 1)) - 0.5f}
                          : (in_spec){'-', 0, {0}, 0, 0};
    s.in[4] = gidx ? (in_spec){'g', 1, {K}, (int)nb - 1, 0} : (in_spec){'-', 0, {0}, 0, 0};
    s.in[5] = bias ? (in_spec){'f', 1, {N}, 0, -0.5f} : (in_spec){'-', 0, {0}, 0, 0};
    check(&s);
}

int main(void)
{
    /* the GEMV path (M <= 4) and the panel path, every zero-point form */
    for (int bits = 2; bits <= 8; bits *= 2)
        for (int zi = 0; zi < 3; zi++) {
            char zp = "pnf"[zi];
            nbits(bits, 32, 200, 70, 1, zp, false, false);
            nbits(bits, 16, 96, 37, 4, zp, true, false);
            nbits(bits, 128, 300, 45, 9, zp, zi == 1, false);
        }
    nbits(4, 64, 384, 700, 300, 'p', true, false); /* several row and column blocks */
    nbits(8, 16, 1000, 20, 2, 'n', false, false);
    nbits(4, 16, 80, 24, 1, 'n', false, true);
    nbits(4, 16, 80, 24, 6, 'f', true, true);

    static const cspec specs[] = {
        {"FusedMatMul transA transB alpha", "FusedMatMul", "com.microsoft", 2,
         {{'x', 3, {2, 40, 30}}, {'x', 3, {2, 50, 40}}}, "transA=i:1;transB=i:1;alpha=f:0.5", 2e-5, 1},
        {"FusedMatMul transBatchA transBatchB", "FusedMatMul", "com.microsoft", 2,
         {{'x', 4, {2, 3, 7, 20}}, {'x', 4, {20, 3, 7, 9}}}, "transBatchA=i:1;transBatchB=i:1;transB=i:0",
         2e-5, 1},
        {"QuickGelu", "QuickGelu", "com.microsoft", 1, {{'x', 3, {3, 50, 70}}}, "alpha=f:1.702", 1e-6, 1},
        {"FastGelu bias", "FastGelu", "com.microsoft", 2, {{'x', 3, {3, 50, 70}}, {'f', 1, {70}, 0, -0.5f}},
         NULL, 1e-6, 1},
        {"BiasGelu", "BiasGelu", "com.microsoft", 2, {{'x', 3, {3, 50, 70}}, {'f', 1, {70}, 0, -0.5f}},
         NULL, 1e-6, 1},
        {"Gelu (com.microsoft)", "Gelu", "com.microsoft", 1, {{'x', 3, {3, 50, 70}}}, NULL, 1e-6, 1},
        {"SkipLayerNormalization beta bias, 4 outputs", "SkipLayerNormalization", "com.microsoft", 5,
         {{'x', 3, {2, 9, 64}}, {'x', 3, {2, 9, 64}}, {'f', 1, {64}, 0, 0.5f}, {'f', 1, {64}, 0, -0.5f},
          {'f', 1, {64}, 0, -0.5f}}, "epsilon=f:1e-5", 1e-5, 4},
        {"SkipLayerNormalization skip (S, H)", "SkipLayerNormalization", "com.microsoft", 3,
         {{'x', 3, {2, 9, 64}}, {'x', 2, {9, 64}}, {'f', 1, {64}, 0, 0.5f}}, NULL, 1e-5, 1},
        {"SkipSimplifiedLayerNormalization bias", "SkipSimplifiedLayerNormalization", "com.microsoft", 4,
         {{'x', 3, {2, 9, 64}}, {'x', 3, {2, 9, 64}}, {'f', 1, {64}, 0, 0.5f}, {'f', 1, {64}, 0, -0.5f}},
         "epsilon=f:1e-6", 1e-5, 4},
        {"SimplifiedLayerNormalization", "SimplifiedLayerNormalization", NULL, 2,
         {{'x', 3, {2, 9, 64}}, {'f', 1, {64}, 0, 0.5f}}, "axis=i:-1;epsilon=f:1e-6", 1e-5, 2},
        {"EmbedLayerNormalization", "EmbedLayerNormalization", "com.microsoft", 7,
         {{'g', 2, {3, 9}, 49}, {'g', 2, {3, 9}, 1}, {'f', 2, {50, 64}, 0, -0.5f},
          {'f', 2, {16, 64}, 0, -0.5f}, {'f', 2, {2, 64}, 0, -0.5f}, {'f', 1, {64}, 0, 0.5f},
          {'f', 1, {64}, 0, -0.5f}}, "epsilon=f:1e-5", 1e-5, 3},
        {"Attention raw mask unidirectional", "Attention", "com.microsoft", 4,
         {{'x', 3, {2, 9, 32}}, {'f', 2, {32, 96}, 0, -0.5f}, {'f', 1, {96}, 0, -0.5f},
          {'g', 2, {2, 9}, 1}}, "num_heads=i:4;unidirectional=i:1", 1e-5, 1},
        {"Attention lengths", "Attention", "com.microsoft", 4,
         {{'x', 3, {2, 9, 32}}, {'f', 2, {32, 96}, 0, -0.5f}, {'f', 1, {96}, 0, -0.5f},
          {'g', 1, {2}, 9}}, "num_heads=i:2", 1e-5, 1},
        {"DynamicQuantizeMatMul per-column", "DynamicQuantizeMatMul", "com.microsoft", 5,
         {{'x', 3, {2, 30, 100}}, {'i', 2, {100, 40}, 127}, {'f', 1, {40}, 0, 0.01f}, {'i', 1, {40}, 3},
          {'f', 1, {40}, 0, -0.5f}}, NULL, 1e-6, 1},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        check(&specs[i]);
    printf("%d cases, %d failed\n", cases, failures);
    return failures ? 1 : 0;
}
