/*
 * cuda_ops.c - the cuda backend's run_node: the GPU kernel of kernels.cu
 * when there is one for the node (float32 data, shapes the kernel takes),
 * the cpu kernel otherwise (and always in infer mode: shapes come from the
 * cpu kernels). Activations stay in the host arena; each GPU node copies
 * its inputs in and its output back (see lib/runtime/README.md, "cuda").
 */
#include "../rt.h"

#include <pthread.h>

#include "../cpu/conv_geom.h"
#include "cuda_api.h"

static const hpcz_cuda_impl device_impl = {
    hpcz_cuda_sgemm,  hpcz_cuda_unary,    hpcz_cuda_binary,     hpcz_cuda_softmax,
    hpcz_cuda_conv2d, hpcz_cuda_pool2d,   hpcz_cuda_quantize,   hpcz_cuda_dequantize,
    hpcz_cuda_layernorm,
};
static const hpcz_cuda_impl *impl = &device_impl;

void hpcz_cuda_set_impl(const hpcz_cuda_impl *i)
{
    impl = i ? i : &device_impl;
}

/* A GPU kernel's answer: run (HPCZ_OK or an error) or decline (the node
 * goes to the cpu kernel). */
#define DECLINE (-1)

static hpcz_status cuda_failed(rt_ctx *c)
{
    return rt_bad(c, "CUDA: %s", hpcz_cuda_error());
}

/* rt_out gave no buffer: its error, or decline (an omitted output). */
static int out_failed(const rt_ctx *c)
{
    return c->err->status ? (int)c->err->status : DECLINE;
}

static bool all_f32(const rt_ctx *c)
{
    for (size_t i = 0; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != HPCZ_DTYPE_FLOAT)
            return false;
    return c->n_out >= 1 && c->out[0];
}

static int run_matmul(rt_ctx *c)
{
    const hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1);
    if (c->n_in != 2 || a->ndim < 2 || b->ndim < 2 || a->dims[a->ndim - 1] != b->dims[b->ndim - 2])
        return DECLINE;
    int64_t m = a->dims[a->ndim - 2], k = a->dims[a->ndim - 1], n = b->dims[b->ndim - 1];
    int64_t ba = rt_numel(a->ndim - 2, a->dims), bb = rt_numel(b->ndim - 2, b->dims);
    /* batch dimensions broadcast as numpy does; the kernel takes equal
     * batches, or one side a single matrix */
    hpcz_array lead[2] = {{.ndim = a->ndim - 2}, {.ndim = b->ndim - 2}};
    memcpy(lead[0].dims, a->dims, (size_t)lead[0].ndim * sizeof *a->dims);
    memcpy(lead[1].dims, b->dims, (size_t)lead[1].ndim * sizeof *b->dims);
    const hpcz_array *leads[2] = {&lead[0], &lead[1]};
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(leads, 2, &nd, dims) || nd + 2 > RT_MAX_RANK)
        return DECLINE;
    if (ba != bb && ba != 1 && bb != 1)
        return DECLINE;
    if (rt_numel(nd, dims) != (ba > bb ? ba : bb))
        return DECLINE; /* e.g. [2,1] x [1,3]: a batch of 6 from 2 and 3 */
    if (ba == bb && ba != 1 && (a->ndim != b->ndim || memcmp(a->dims, b->dims, (size_t)nd * 8)))
        return DECLINE;
    dims[nd++] = m;
    dims[nd++] = n;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, nd, dims);
    if (!y)
        return out_failed(c);
    int64_t batch = ba > bb ? ba : bb;
    hpcz_cuda_gemm g = {.batch = batch, .m = m, .n = n, .k = k, .alpha = 1, .lda = k, .ldb = n,
                        .ldc = n, .sa = ba == 1 ? 0 : m * k, .sb = bb == 1 ? 0 : k * n,
                        .sc = m * n};
    if (impl->sgemm(&g, a->data, b->data, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_gemm(rt_ctx *c)
{
    const hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *bias = rt_in(c, 2);
    if (a->ndim != 2 || b->ndim != 2)
        return DECLINE;
    bool ta = rt_attr_i(c, "transA", 0), tb = rt_attr_i(c, "transB", 0);
    float alpha = rt_attr_f(c, "alpha", 1), beta = rt_attr_f(c, "beta", 1);
    int64_t m = ta ? a->dims[1] : a->dims[0], k = ta ? a->dims[0] : a->dims[1];
    int64_t n = tb ? b->dims[0] : b->dims[1];
    if ((tb ? b->dims[1] : b->dims[0]) != k)
        return DECLINE;
    int64_t cm = 1, cn = 1; /* bias broadcast to [m, n] */
    if (bias && bias->ndim == 2) {
        cm = bias->dims[0];
        cn = bias->dims[1];
    } else if (bias && bias->ndim == 1) {
        cn = bias->dims[0];
    } else if (bias && bias->ndim != 0) {
        return DECLINE;
    }
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
        return DECLINE;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 2, (int64_t[]){m, n});
    if (!y)
        return out_failed(c);
    float *yd = y->data;
    bool use_c = bias && beta != 0.0f;
    if (use_c) {
        const float *cd = bias->data;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                yd[i * n + j] = cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    }
    hpcz_cuda_gemm g = {.batch = 1, .m = m, .n = n, .k = k, .ta = ta, .tb = tb, .alpha = alpha,
                        .beta = use_c ? beta : 0.0f, .lda = a->dims[1], .ldb = b->dims[1],
                        .ldc = n};
    if (impl->sgemm(&g, a->data, b->data, yd))
        return cuda_failed(c);
    rt_act_apply(c->act, yd, m * n);
    return HPCZ_OK;
}

static int run_unary(rt_ctx *c, int op)
{
    const hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    if (impl->unary(op, x->data, y->data, x->numel))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_binary(rt_ctx *c, int op)
{
    const hpcz_array *ins[2] = {rt_in(c, 0), rt_in(c, 1)};
    if (c->n_in != 2 || !ins[1])
        return DECLINE;
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, 2, &nd, dims) || nd > HPCZ_CUDA_MAX_RANK)
        return DECLINE;
    int64_t str[2][RT_MAX_RANK];
    for (int k = 0; k < 2; k++) {
        int off = nd - ins[k]->ndim;
        int64_t s = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t dim = d >= off ? ins[k]->dims[d - off] : 1;
            str[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, nd, dims);
    if (!y)
        return out_failed(c);
    if (impl->binary(op, nd, dims, str[0], str[1], ins[0]->data, ins[0]->numel, ins[1]->data,
                         ins[1]->numel, y->data))
        return cuda_failed(c);
    if (op == HPCZ_CU_ADD)
        rt_act_apply(c->act, y->data, y->numel);
    return HPCZ_OK;
}

static int run_softmax(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0);
    if (c->opset < 13 || x->ndim < 1 || rt_axis(rt_attr_i(c, "axis", -1), x->ndim) != x->ndim - 1)
        return DECLINE;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    int64_t cols = x->dims[x->ndim - 1];
    if (impl->softmax(x->data, y->data, cols ? x->numel / cols : 0, cols))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_conv(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2);
    conv_geom g;
    int64_t group = rt_attr_i(c, "group", 1);
    if (x->ndim != 4 || !w || w->ndim != 4 || group < 1 || x->dims[1] % group ||
        w->dims[0] % group || w->dims[1] * group != x->dims[1] ||
        (b && (b->ndim != 1 || b->dims[0] != w->dims[0])) ||
        !rt_conv_geom(c, x, w->dims + 2, false, &g) || g.k[1] != w->dims[2] ||
        g.k[2] != w->dims[3])
        return DECLINE;
    int64_t dims[4] = {x->dims[0], w->dims[0], g.out[1], g.out[2]};
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 4, dims);
    if (!y)
        return out_failed(c);
    hpcz_cuda_conv k = {.n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3],
                        .m = w->dims[0], .kh = g.k[1], .kw = g.k[2], .oh = g.out[1],
                        .ow = g.out[2], .group = group, .sh = g.stride[1], .sw = g.stride[2],
                        .ph = g.pb[1], .pw = g.pb[2], .dh = g.dil[1], .dw = g.dil[2]};
    if (impl->conv2d(&k, x->data, w->data, b ? b->data : NULL, y->data))
        return cuda_failed(c);
    rt_act_apply(c->act, y->data, y->numel);
    return HPCZ_OK;
}

/* MaxPool (one output), AveragePool, GlobalAveragePool / GlobalMaxPool on
 * 2-D maps. The output size comes from the plan (ceil_mode is the cpu
 * kernel's business). */
static int run_pool(rt_ctx *c, bool is_max, bool global)
{
    const hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = c->out[0];
    conv_geom g = {0};
    if (x->ndim != 4 || c->n_out != 1 || !y || !c->out_planned || !c->out_planned[0] ||
        y->ndim != 4)
        return DECLINE;
    if (global) {
        g.k[1] = x->dims[2];
        g.k[2] = x->dims[3];
        g.stride[1] = g.stride[2] = g.dil[1] = g.dil[2] = 1;
    } else {
        size_t nk;
        const int64_t *ks = rt_attr_ints(c, "kernel_shape", &nk);
        if (nk != 2 || !rt_conv_geom(c, x, ks, false, &g))
            return DECLINE;
    }
    if (!(y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 4, y->dims)))
        return out_failed(c);
    hpcz_cuda_pool k = {.n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3],
                        .oh = y->dims[2], .ow = y->dims[3], .kh = g.k[1], .kw = g.k[2],
                        .sh = g.stride[1], .sw = g.stride[2], .ph = g.pb[1], .pw = g.pb[2],
                        .pbottom = g.pe[1], .pright = g.pe[2], .dh = g.dil[1], .dw = g.dil[2],
                        .is_max = is_max,
                        .count_include_pad = !global && rt_attr_i(c, "count_include_pad", 0)};
    if (impl->pool2d(&k, x->data, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* LayerNormalization over the last axis with 1-D scale and bias, output 0
 * only (Mean / InvStdDev requested: the cpu kernel). */
static int run_layernorm(rt_ctx *c)
{
    const hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 1), *bi = rt_in(c, 2);
    int64_t cols = x->ndim ? x->dims[x->ndim - 1] : 0;
    if (x->ndim < 1 || rt_axis(rt_attr_i(c, "axis", -1), x->ndim) != x->ndim - 1 ||
        rt_attr_i(c, "stash_type", 1) != 1 || !sc || sc->ndim != 1 || sc->dims[0] != cols ||
        (bi && (bi->ndim != 1 || bi->dims[0] != cols)) || cols == 0)
        return DECLINE;
    for (size_t i = 1; i < c->n_out; i++)
        if (c->out[i])
            return DECLINE;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    if (impl->layernorm(x->data, sc->data, bi ? bi->data : NULL, y->data, x->numel / cols, cols,
                        rt_attr_f(c, "epsilon", 1e-5f)))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* QuantizeLinear / DequantizeLinear, per tensor, float32 <-> uint8/int8
 * (what hpcz quantize writes for activations); anything else declines. */
static int run_qdq(rt_ctx *c, bool quant)
{
    const hpcz_array *x = rt_in(c, 0), *s = rt_in(c, 1), *zp = rt_in(c, 2);
    if (!s || s->dtype != HPCZ_DTYPE_FLOAT || s->numel != 1 || (zp && zp->numel != 1) ||
        rt_attr_i(c, "block_size", 0) > 0 || !x->data)
        return DECLINE;
    int qdt = quant ? (zp ? zp->dtype : (int)rt_attr_i(c, "output_dtype", 0)) : x->dtype;
    if (quant && !qdt)
        qdt = HPCZ_DTYPE_UINT8;
    if ((qdt != HPCZ_DTYPE_UINT8 && qdt != HPCZ_DTYPE_INT8) || (zp && zp->dtype != qdt) ||
        (quant ? x->dtype != HPCZ_DTYPE_FLOAT
               : rt_attr_i(c, "output_dtype", HPCZ_DTYPE_FLOAT) != HPCZ_DTYPE_FLOAT))
        return DECLINE;
    int32_t z = !zp ? 0 : qdt == HPCZ_DTYPE_UINT8 ? *(const uint8_t *)zp->data
                                                  : *(const int8_t *)zp->data;
    float sc = *(const float *)s->data;
    hpcz_array *y = rt_out(c, 0, quant ? qdt : HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    int u8 = qdt == HPCZ_DTYPE_UINT8;
    if (quant ? impl->quantize(x->data, y->data, x->numel, sc, z, u8)
              : impl->dequantize(x->data, y->data, x->numel, sc, z, u8))
        return cuda_failed(c);
    return HPCZ_OK;
}

static const struct {
    const char *op;
    int code;
} unary_ops[] = {
    {"Relu", HPCZ_CU_RELU}, {"Sigmoid", HPCZ_CU_SIGMOID}, {"Tanh", HPCZ_CU_TANH},
    {"Erf", HPCZ_CU_ERF},   {"Exp", HPCZ_CU_EXP},         {"Abs", HPCZ_CU_ABS},
    {"Neg", HPCZ_CU_NEG},   {"Sqrt", HPCZ_CU_SQRT},
}, binary_ops[] = {
    {"Add", HPCZ_CU_ADD}, {"Sub", HPCZ_CU_SUB}, {"Mul", HPCZ_CU_MUL}, {"Div", HPCZ_CU_DIV},
};

static int dispatch(rt_ctx *c)
{
    const hpcz_node *n = c->node;
    if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !rt_in(c, 0) ||
        !rt_in(c, 0)->data || c->n_out < 1 || !c->out[0])
        return DECLINE;
    const char *op = n->op_type;
    if (!strcmp(op, "QuantizeLinear") || !strcmp(op, "DequantizeLinear"))
        return c->act ? DECLINE : run_qdq(c, op[0] == 'Q');
    if (!all_f32(c))
        return DECLINE;
    if (c->act && strcmp(op, "Gemm") && strcmp(op, "Add") && strcmp(op, "Conv"))
        return DECLINE; /* a fused activation the kernel would not apply */
    if (!strcmp(op, "MatMul"))
        return run_matmul(c);
    if (!strcmp(op, "Gemm"))
        return run_gemm(c);
    if (!strcmp(op, "Softmax"))
        return run_softmax(c);
    if (!strcmp(op, "Conv"))
        return run_conv(c);
    if (!strcmp(op, "LayerNormalization"))
        return run_layernorm(c);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return run_pool(c, op[0] == 'M', false);
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool"))
        return run_pool(c, op[6] == 'M', true);
    if (!strcmp(op, "Gelu") && rt_attr_is(c, "approximate", "none", "none"))
        return run_unary(c, HPCZ_CU_GELU);
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(unary_ops); i++)
        if (!strcmp(op, unary_ops[i].op))
            return c->n_in == 1 ? run_unary(c, unary_ops[i].code) : DECLINE;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(binary_ops); i++)
        if (!strcmp(op, binary_ops[i].op))
            return run_binary(c, binary_ops[i].code);
    return DECLINE;
}

/* One GPU node at a time: the kernels share their device buffers and the
 * stream, and plans may run on several threads (calibration workers). */
static pthread_mutex_t gpu_lock = PTHREAD_MUTEX_INITIALIZER;

hpcz_status rt_cuda_run_node(rt_ctx *c)
{
    if (c->infer || c->reference)
        return rt_cpu_run_node(c);
    pthread_mutex_lock(&gpu_lock);
    int st = dispatch(c);
    pthread_mutex_unlock(&gpu_lock);
    return st == DECLINE ? rt_cpu_run_node(c) : (hpcz_status)st;
}
