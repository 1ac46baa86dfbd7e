/*
 * cuda_ops.c - the cuda backend: placement (which nodes run on the device,
 * decided at plan time from shapes, dtypes and attributes) and run_node, the
 * GPU kernel of kernels.cu for a node placed on the device (its operands are
 * device memory: the engine's device arena and uploaded weights), the cpu
 * kernel for every other node (and always in infer mode: shapes come from
 * the cpu kernels). See lib/runtime/README.md, "cuda".
 */
#include "../rt.h"

#include <pthread.h>

#include "../cpu/conv_geom.h"
#include "cuda_api.h"

static const hpcz_cuda_impl device_impl = {
    .malloc = hpcz_cuda_malloc,      .free = hpcz_cuda_free,
    .h2d = hpcz_cuda_h2d,            .d2h = hpcz_cuda_d2h,
    .sync = hpcz_cuda_sync,          .is_device = hpcz_cuda_is_device,
    .copy2d = hpcz_cuda_copy2d,
    .sgemm = hpcz_cuda_sgemm,        .unary = hpcz_cuda_unary,
    .binary = hpcz_cuda_binary,      .softmax = hpcz_cuda_softmax,
    .conv2d = hpcz_cuda_conv2d,      .pool2d = hpcz_cuda_pool2d,
    .quantize = hpcz_cuda_quantize,  .dequantize = hpcz_cuda_dequantize,
    .layernorm = hpcz_cuda_layernorm, .act = hpcz_cuda_act,
    .resize_nearest = hpcz_cuda_resize_nearest, .convert = hpcz_cuda_convert,
    .resize_interp = hpcz_cuda_resize_interp,
    .batchnorm = hpcz_cuda_batchnorm, .minmax = hpcz_cuda_minmax,
    .histogram = hpcz_cuda_histogram, .qgemm = hpcz_cuda_qgemm,
    .lut = hpcz_cuda_lut, .qadd = hpcz_cuda_qadd_run,
};
static const hpcz_cuda_impl *impl = &device_impl;

/* Device scratch for widened float16 operands: one buffer, reused by every
 * node (the stream orders its uses), grown as needed. */
static void *scratch;
static size_t scratch_cap;

static void scratch_release(void)
{
    if (scratch) {
        impl->sync();
        impl->free(scratch);
    }
    scratch = NULL;
    scratch_cap = 0;
}

void hpcz_cuda_set_impl(const hpcz_cuda_impl *i)
{
    scratch_release(); /* made by the implementation it leaves */
    impl = i ? i : &device_impl;
}

int rt_cuda_open(int ordinal, char *msg, size_t cap)
{
    return impl == &device_impl ? hpcz_cuda_open(ordinal, msg, cap) : 0;
}

/* A step's device data (qdev, or a Resize's taps): a host struct whose
 * first member is the device block it owns. */
static void cuda_free_state(void *dstate)
{
    void **mem = dstate;
    if (!mem)
        return;
    if (*mem)
        impl->free(*mem);
    free(mem);
}

/* An op's answer at plan time (go false): DECLINE (the cpu kernel runs it) or
 * RT_DEV_RUN with *dev_in the inputs it reads on the device; at run time (go
 * true): HPCZ_OK or an error. */
#define DECLINE (-1)
#define PLACE(mask)                                                                                \
    do {                                                                                           \
        if (!go) {                                                                                 \
            *dev_in = present(c, mask);                                                            \
            return RT_DEV_RUN;                                                                     \
        }                                                                                          \
    } while (0)

static hpcz_status cuda_failed(rt_ctx *c)
{
    return rt_bad(c, "CUDA: %s", hpcz_cuda_error());
}

/* The inputs of mask that the node has (optional ones may be omitted). */
static uint64_t present(const rt_ctx *c, uint64_t mask)
{
    for (size_t j = 0; j < c->n_in && j < 64; j++)
        if (!c->in[j])
            mask &= ~(1ull << j);
    return mask & (c->n_in >= 64 ? ~0ull : (1ull << c->n_in) - 1);
}

/* rt_out gave no buffer: its error (run time, planned outputs only). */
static int out_failed(const rt_ctx *c)
{
    return c->err->status ? (int)c->err->status : (int)rt_bad((rt_ctx *)c, "output not planned");
}

/* The fused activation on the device (kinds as rt_act_kind). */
static int apply_act(rt_ctx *c, float *y, int64_t n)
{
    if (c->act && impl->act((int)c->act->kind, c->act->a, c->act->b, y, n))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* The data type of a float node: float32 or float16 when every input has
 * it, else 0. */
static int float_type(const rt_ctx *c)
{
    int dt = c->in[0]->dtype;
    if (dt != HPCZ_DTYPE_FLOAT && dt != HPCZ_DTYPE_FLOAT16)
        return 0;
    for (size_t i = 1; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != dt)
            return 0;
    return dt;
}

static int run_matmul(rt_ctx *c, bool go, uint64_t *dev_in)
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
    PLACE(3);
    dims[nd++] = m;
    dims[nd++] = n;
    hpcz_array *y = rt_out(c, 0, a->dtype, nd, dims);
    if (!y)
        return out_failed(c);
    int64_t batch = ba > bb ? ba : bb;
    hpcz_cuda_gemm g = {.batch = batch, .m = m, .n = n, .k = k, .alpha = 1, .lda = k, .ldb = n,
                        .ldc = n, .sa = ba == 1 ? 0 : m * k, .sb = bb == 1 ? 0 : k * n,
                        .sc = m * n, .f16 = a->dtype == HPCZ_DTYPE_FLOAT16};
    if (impl->sgemm(&g, a->data, b->data, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_gemm(rt_ctx *c, bool go, uint64_t *dev_in)
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
    bool use_c = bias && beta != 0.0f;
    PLACE(use_c ? 7 : 3);
    bool f16 = a->dtype == HPCZ_DTYPE_FLOAT16;
    hpcz_array *y = rt_out(c, 0, a->dtype, 2, (int64_t[]){m, n});
    if (!y)
        return out_failed(c);
    float *yd = y->data;
    if (use_c) { /* y = C broadcast to [m, n], then the GEMM adds to beta * y */
        int64_t str[2] = {cm == 1 ? 0 : cn, cn == 1 ? 0 : 1};
        if (impl->binary(HPCZ_CU_FIRST | (f16 ? HPCZ_CU_F16 : 0), 2, (int64_t[]){m, n}, str, str,
                         bias->data, bias->numel, bias->data, bias->numel, yd))
            return cuda_failed(c);
    }
    hpcz_cuda_gemm g = {.batch = 1, .m = m, .n = n, .k = k, .ta = ta, .tb = tb, .alpha = alpha,
                        .beta = use_c ? beta : 0.0f, .lda = a->dims[1], .ldb = b->dims[1],
                        .ldc = n, .f16 = f16};
    if (impl->sgemm(&g, a->data, b->data, yd))
        return cuda_failed(c);
    return apply_act(c, yd, m * n);
}

static int run_unary(rt_ctx *c, int op, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0);
    PLACE(1);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    if (impl->unary(op | (x->dtype == HPCZ_DTYPE_FLOAT16 ? HPCZ_CU_F16 : 0), x->data, y->data,
                    x->numel))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_binary(rt_ctx *c, int op, bool go, uint64_t *dev_in)
{
    const hpcz_array *ins[2] = {rt_in(c, 0), rt_in(c, 1)};
    if (c->n_in != 2 || !ins[1])
        return DECLINE;
    int nd;
    int64_t dims[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, 2, &nd, dims) || nd > HPCZ_CUDA_MAX_RANK)
        return DECLINE;
    PLACE(3);
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
    hpcz_array *y = rt_out(c, 0, ins[0]->dtype, nd, dims);
    if (!y)
        return out_failed(c);
    if (impl->binary(op | (ins[0]->dtype == HPCZ_DTYPE_FLOAT16 ? HPCZ_CU_F16 : 0), nd, dims,
                     str[0], str[1], ins[0]->data, ins[0]->numel, ins[1]->data, ins[1]->numel,
                     y->data))
        return cuda_failed(c);
    return op == HPCZ_CU_ADD ? apply_act(c, y->data, y->numel) : HPCZ_OK;
}

static int run_softmax(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0);
    if (c->opset < 13 || x->ndim < 1 || rt_axis(rt_attr_i(c, "axis", -1), x->ndim) != x->ndim - 1)
        return DECLINE;
    PLACE(1);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    int64_t cols = x->dims[x->ndim - 1];
    if (impl->softmax(x->data, y->data, cols ? x->numel / cols : 0, cols))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_conv(rt_ctx *c, bool go, uint64_t *dev_in)
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
    PLACE(7);
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
    return apply_act(c, y->data, y->numel);
}

/* MaxPool (one output), AveragePool, GlobalAveragePool / GlobalMaxPool on
 * 2-D maps. The output size comes from the plan (ceil_mode is the cpu
 * kernel's business). */
static int run_pool(rt_ctx *c, bool is_max, bool global, bool go, uint64_t *dev_in)
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
    int q8 = x->dtype == HPCZ_DTYPE_UINT8 ? 1 : x->dtype == HPCZ_DTYPE_INT8 ? 2 : 0;
    if (q8 && (!is_max || global))
        return DECLINE;
    PLACE(1);
    if (!(y = rt_out(c, 0, x->dtype, 4, y->dims)))
        return out_failed(c);
    hpcz_cuda_pool k = {.q8 = q8, .n = x->dims[0], .c = x->dims[1], .h = x->dims[2], .w = x->dims[3],
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
static int run_layernorm(rt_ctx *c, bool go, uint64_t *dev_in)
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
    PLACE(7);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    if (impl->layernorm(x->data, sc->data, bi ? bi->data : NULL, y->data, x->numel / cols, cols,
                        rt_attr_f(c, "epsilon", 1e-5f)))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* BatchNormalization (inference, one output) with float32 parameters of C
 * entries. */
static int run_batchnorm(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0);
    if (x->ndim < 2 || c->n_in != 5 || c->n_out != 1 || rt_attr_i(c, "training_mode", 0) ||
        rt_attr_i(c, "spatial", 1) != 1)
        return DECLINE;
    int64_t ch = x->dims[1];
    for (size_t j = 1; j < 5; j++)
        if (!c->in[j] || c->in[j]->numel != ch)
            return DECLINE;
    PLACE(31);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    int64_t n = x->dims[0], inner = n * ch != 0 ? x->numel / (n * ch) : 0;
    if (impl->batchnorm(x->data, c->in[1]->data, c->in[2]->data, c->in[3]->data,
                        c->in[4]->data, y->data, n, ch, inner, rt_attr_f(c, "epsilon", 1e-5f)))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* QuantizeLinear / DequantizeLinear, float32 <-> uint8/int8, per tensor or
 * per channel (axis), constant scales and zero points (uploaded with the
 * weights); blocked or other types: the cpu kernel. */
static int run_qdq(rt_ctx *c, bool quant, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0), *s = rt_in(c, 1), *zp = rt_in(c, 2);
    if (!s || s->dtype != HPCZ_DTYPE_FLOAT || (zp && zp->numel != s->numel) ||
        rt_attr_i(c, "block_size", 0) > 0 || x->ndim > RT_MAX_RANK)
        return DECLINE;
    if (!go && (!s->data || (zp && !zp->data)))
        return DECLINE; /* scales computed at run time */
    int qdt = quant ? (zp ? zp->dtype : (int)rt_attr_i(c, "output_dtype", 0)) : x->dtype;
    if (quant && !qdt)
        qdt = HPCZ_DTYPE_UINT8;
    if ((qdt != HPCZ_DTYPE_UINT8 && qdt != HPCZ_DTYPE_INT8) || (zp && zp->dtype != qdt) ||
        (quant ? x->dtype != HPCZ_DTYPE_FLOAT
               : rt_attr_i(c, "output_dtype", HPCZ_DTYPE_FLOAT) != HPCZ_DTYPE_FLOAT))
        return DECLINE;
    hpcz_cuda_qdq q = {.n = x->numel, .ch = 1, .inner = 1, .u8 = qdt == HPCZ_DTYPE_UINT8};
    if (s->numel != 1) { /* per channel along axis */
        int axis = rt_axis(rt_attr_i(c, "axis", 1), x->ndim);
        if (axis < 0 || s->ndim != 1 || s->numel != x->dims[axis])
            return DECLINE;
        q.ch = s->numel;
        q.inner = rt_numel(x->ndim - axis - 1, x->dims + axis + 1);
    }
    PLACE(7);
    hpcz_array *y = rt_out(c, 0, quant ? qdt : HPCZ_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y)
        return out_failed(c);
    const void *z = zp ? zp->data : NULL;
    if (quant ? impl->quantize(&q, x->data, s->data, z, y->data)
              : impl->dequantize(&q, x->data, s->data, z, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* Resize (opset 11 on), mode nearest, float32, every axis, constant scales
 * or sizes, the stretch policy; the coordinate transforms half_pixel,
 * pytorch_half_pixel, align_corners and asymmetric (resize.c's arithmetic).
 * Other modes and options: the cpu kernel. */
/* Resize in linear or cubic mode: the cpu's taps (resize.c), computed and
 * uploaded at plan time into the step's device data. */
typedef struct interp_dev {
    void *mem; /* (first: cuda_free_state) idx int64 [sum 4 out[d]], then w float */
    hpcz_cuda_interp g;
    int64_t *idx;
    float *w;
} interp_dev;

static int run_resize_interp(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = c->out[0];
    if (x->dtype != HPCZ_DTYPE_FLOAT || x->ndim < 1 || x->ndim > HPCZ_CUDA_MAX_RANK ||
        y->ndim != x->ndim || !c->dstate)
        return DECLINE;
    if (!go) {
        rt_resize_view v;
        void *taps = rt_resize_taps_new(c, &v);
        interp_dev *d = taps ? calloc(1, sizeof *d) : NULL;
        int64_t ntaps = 0, combos = 1;
        bool ok = d != NULL;
        for (int k = 0; ok && k < v.r; k++) {
            ok = v.out[k] == y->dims[k] && v.in[k] == x->dims[k];
            d->g.in[k] = v.in[k];
            d->g.out[k] = v.out[k];
            d->g.base[k] = ntaps;
            ntaps += 4 * v.out[k];
            combos *= v.n;
        }
        ok = ok && combos <= 4096; /* cubic over many axes: the cpu kernel */
        size_t ib = (size_t)ntaps * sizeof *d->idx, total = ib + (size_t)ntaps * sizeof *d->w;
        char *host = ok ? malloc(total ? total : 1) : NULL;
        for (int k = 0; host && k < v.r; k++) {
            memcpy(host + (size_t)d->g.base[k] * sizeof *d->idx, v.idx[k],
                   (size_t)(4 * v.out[k]) * sizeof *d->idx);
            memcpy(host + ib + (size_t)d->g.base[k] * sizeof *d->w, v.w[k],
                   (size_t)(4 * v.out[k]) * sizeof *d->w);
        }
        ok = host && (d->mem = impl->malloc(total ? total : 1)) && !impl->h2d(d->mem, host, total);
        free(host);
        free(taps);
        if (!ok) {
            cuda_free_state(d);
            return DECLINE;
        }
        d->g.ndim = v.r;
        d->g.n = v.n;
        d->g.lerp2d = v.lerp2d;
        d->idx = d->mem;
        d->w = (float *)((char *)d->mem + ib);
        *c->dstate = d;
    }
    PLACE(1);
    const interp_dev *d = *c->dstate;
    if (!d || !(y = rt_out(c, 0, x->dtype, x->ndim, y->dims)))
        return d ? out_failed(c) : DECLINE;
    if (impl->resize_interp(&d->g, d->idx, d->w, x->data, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

static int run_resize(rt_ctx *c, bool go, uint64_t *dev_in)
{
    if (!rt_attr_is(c, "mode", "nearest", "nearest"))
        return run_resize_interp(c, go, dev_in);
    static const char *const cts[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                      "asymmetric"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const hpcz_array *x = rt_in(c, 0), *sc = rt_in(c, 2), *sz = rt_in(c, 3);
    hpcz_array *y = c->out[0];
    size_t na;
    if (c->opset < 11 || x->dtype != HPCZ_DTYPE_FLOAT || x->ndim < 1 ||
        x->ndim > HPCZ_CUDA_MAX_RANK || y->ndim != x->ndim || rt_attr_ints(c, "axes", &na) ||
        !rt_attr_is(c, "mode", "nearest", "nearest") ||
        !rt_attr_is(c, "keep_aspect_ratio_policy", "stretch", "stretch"))
        return DECLINE;
    if (sc && !sc->numel)
        sc = NULL;
    if (sz && !sz->numel)
        sz = NULL;
    if (!sc == !sz || (sc && (sc->dtype != HPCZ_DTYPE_FLOAT || !sc->data || sc->numel != x->ndim)) ||
        (sz && (!sz->data || sz->numel != x->ndim)))
        return DECLINE; /* scales computed at run time, or malformed: the cpu kernel */
    hpcz_cuda_resize r = {.ndim = x->ndim, .ct = -1, .nm = -1, .sized = sz != NULL};
    for (int i = 0; i < 4; i++) {
        if (rt_attr_is(c, "coordinate_transformation_mode", "half_pixel", cts[i]))
            r.ct = i;
        if (rt_attr_is(c, "nearest_mode", "round_prefer_floor", nms[i]))
            r.nm = i;
    }
    if (r.ct < 0 || r.nm < 0)
        return DECLINE;
    for (int d = 0; d < x->ndim; d++) {
        r.in[d] = x->dims[d];
        r.out[d] = y->dims[d];
        r.scale[d] = sz ? (double)y->dims[d] / (double)x->dims[d]
                        : (double)((const float *)sc->data)[d];
        if (sz && rt_int_at(sz, d) != y->dims[d])
            return DECLINE;
    }
    PLACE(1);
    if (!(y = rt_out(c, 0, x->dtype, x->ndim, y->dims)))
        return out_failed(c);
    if (impl->resize_nearest(&r, x->data, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* Transpose of float32 data: a strided gather (the binary kernel's
 * HPCZ_CU_FIRST, input strides permuted). */
static int run_transpose(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = c->out[0];
    if (x->dtype != HPCZ_DTYPE_FLOAT || x->ndim < 1 || x->ndim > HPCZ_CUDA_MAX_RANK ||
        y->ndim != x->ndim)
        return DECLINE;
    size_t np;
    const int64_t *perm = rt_attr_ints(c, "perm", &np);
    int64_t p[RT_MAX_RANK], str[RT_MAX_RANK], ystr[RT_MAX_RANK] = {0};
    for (int d = 0; d < x->ndim; d++)
        p[d] = perm ? perm[d] : x->ndim - 1 - d;
    if (perm && np != (size_t)x->ndim)
        return DECLINE;
    int64_t s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        str[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < x->ndim; d++) {
        if (p[d] < 0 || p[d] >= x->ndim || y->dims[d] != x->dims[p[d]])
            return DECLINE;
        ystr[d] = str[p[d]];
    }
    PLACE(1);
    if (!(y = rt_out(c, 0, x->dtype, x->ndim, y->dims)))
        return out_failed(c);
    if (impl->binary(HPCZ_CU_FIRST, x->ndim, y->dims, ystr, ystr, x->data, x->numel, x->data,
                     x->numel, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* Slice (opset 10 on) of float32/float16 data with constant starts, ends,
 * axes and steps: a strided gather from the first element taken (the
 * binary kernel's HPCZ_CU_FIRST). The ONNX clamping rules; the extents must
 * come out as the plan's (the cpu kernel's) or the node stays there. */
static int run_slice(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *x = rt_in(c, 0), *st = rt_in(c, 1), *en = rt_in(c, 2), *ax = rt_in(c, 3),
                     *sp = rt_in(c, 4);
    hpcz_array *y = c->out[0];
    int r = x->ndim;
    if (c->opset < 10 || (x->dtype != HPCZ_DTYPE_FLOAT && x->dtype != HPCZ_DTYPE_FLOAT16) ||
        r < 1 || r > HPCZ_CUDA_MAX_RANK || y->ndim != r || !st || !en || st->numel != en->numel)
        return DECLINE;
    const hpcz_array *ints[4] = {st, en, ax, sp};
    for (int i = 0; i < 4; i++)
        if (ints[i] && (!ints[i]->data || ints[i]->numel != st->numel ||
                        (ints[i]->dtype != HPCZ_DTYPE_INT64 && ints[i]->dtype != HPCZ_DTYPE_INT32)))
            return DECLINE; /* computed at run time (or malformed): the cpu kernel */
    int64_t lo[RT_MAX_RANK] = {0}, step[RT_MAX_RANK], xs[RT_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) {
        step[d] = 1;
        xs[d] = s;
        s *= x->dims[d];
    }
    for (int64_t i = 0; i < st->numel; i++) {
        int a = rt_axis(ax ? rt_int_at(ax, i) : i, r);
        int64_t k = sp ? rt_int_at(sp, i) : 1, dim = x->dims[a < 0 ? 0 : a], n;
        if (a < 0 || k == 0)
            return DECLINE;
        int64_t b = rt_int_at(st, i), e = rt_int_at(en, i);
        b += b < 0 ? dim : 0;
        e += e < 0 ? dim : 0;
        if (k > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            n = e > b ? (e - b + k - 1) / k : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            n = b > e ? (b - e - k - 1) / -k : 0;
        }
        if (n != y->dims[a])
            return DECLINE;
        lo[a] = b;
        step[a] = k;
    }
    PLACE(1);
    if (!(y = rt_out(c, 0, x->dtype, r, y->dims)))
        return out_failed(c);
    if (!y->numel)
        return HPCZ_OK;
    int64_t base = 0, str[RT_MAX_RANK];
    for (int d = 0; d < r; d++) {
        base += lo[d] * xs[d];
        str[d] = step[d] * xs[d];
    }
    size_t es = rt_esize(x->dtype);
    const void *from = (const char *)x->data + (size_t)base * es;
    /* the kernel's bound check: offsets from `from`, inside x */
    if (impl->binary(HPCZ_CU_FIRST | (es == 2 ? HPCZ_CU_F16 : 0), r, y->dims, str, str, from,
                     x->numel - base, from, x->numel - base, y->data))
        return cuda_failed(c);
    return HPCZ_OK;
}

/* Concat of inputs of one dtype: a 2-D copy per input into its columns of
 * y viewed as [outer, axis * inner]. */
static int run_concat(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_array *y = c->out[0];
    int axis = rt_axis(rt_attr_i(c, "axis", 0), y->ndim);
    if (axis < 0 || c->n_in > 64 || c->n_out != 1)
        return DECLINE;
    for (size_t j = 0; j < c->n_in; j++)
        if (!c->in[j] || c->in[j]->dtype != y->dtype || c->in[j]->ndim != y->ndim)
            return DECLINE;
    PLACE(c->n_in == 64 ? ~0ull : (1ull << c->n_in) - 1);
    hpcz_array *out = rt_out(c, 0, y->dtype, y->ndim, y->dims);
    if (!out)
        return out_failed(c);
    size_t es = rt_esize(y->dtype);
    int64_t outer = rt_numel(axis, y->dims), inner = rt_numel(y->ndim - axis - 1, y->dims + axis + 1);
    size_t row = (size_t)(y->dims[axis] * inner) * es, at = 0;
    for (size_t j = 0; j < c->n_in; j++) {
        size_t w = (size_t)(c->in[j]->dims[axis] * inner) * es;
        if (impl->copy2d((char *)out->data + at, row, c->in[j]->data, w, w, (size_t)outer))
            return cuda_failed(c);
        at += w;
    }
    return HPCZ_OK;
}

/* A float32 kernel on a float16 node: the float16 inputs widened into
 * device scratch, the kernel's float32 output there rounded once into the
 * real output (the cpu backend's rt_run_f16_via_f32). */
typedef int (*op_fn)(rt_ctx *c, bool go, uint64_t *dev_in);
#define WIDE_MAX_IN 8

static int run_widened(rt_ctx *c, op_fn fn)
{
    hpcz_array wide[WIDE_MAX_IN + 1], *saved[WIDE_MAX_IN + 1];
    size_t need = 0, n_in = c->n_in;
    if (n_in > WIDE_MAX_IN || c->n_out != 1 || !c->out[0])
        return rt_bad(c, "float16 on the GPU: %zu inputs, %zu outputs", n_in, c->n_out);
    for (size_t j = 0; j <= n_in; j++) {
        hpcz_array *a = j < n_in ? c->in[j] : c->out[0];
        if (a && a->dtype == HPCZ_DTYPE_FLOAT16)
            need += ((size_t)a->numel * 4 + 255) / 256 * 256;
    }
    if (need > scratch_cap) {
        scratch_release();
        if (!(scratch = impl->malloc(need)))
            return cuda_failed(c);
        scratch_cap = need;
    }
    size_t off = 0;
    for (size_t j = 0; j <= n_in; j++) {
        hpcz_array **slot = j < n_in ? &c->in[j] : &c->out[0];
        saved[j] = *slot;
        if (!*slot || (*slot)->dtype != HPCZ_DTYPE_FLOAT16)
            continue;
        wide[j] = **slot;
        wide[j].dtype = HPCZ_DTYPE_FLOAT;
        wide[j].nbytes = (size_t)wide[j].numel * 4;
        wide[j].data = (char *)scratch + off;
        off += (wide[j].nbytes + 255) / 256 * 256;
        if (j < n_in && impl->convert(saved[j]->data, wide[j].data, wide[j].numel, 0))
            return cuda_failed(c);
        *slot = &wide[j];
    }
    int st = fn(c, true, NULL);
    for (size_t j = 0; j <= n_in; j++)
        *(j < n_in ? &c->in[j] : &c->out[0]) = saved[j];
    if (!st && saved[n_in]->dtype == HPCZ_DTYPE_FLOAT16 &&
        impl->convert(wide[n_in].data, saved[n_in]->data, saved[n_in]->numel, 1))
        return cuda_failed(c);
    return st;
}

static int run_maxpool(rt_ctx *c, bool go, uint64_t *dev_in)
{
    return run_pool(c, true, false, go, dev_in);
}
static int run_avgpool(rt_ctx *c, bool go, uint64_t *dev_in)
{
    return run_pool(c, false, false, go, dev_in);
}
static int run_global_maxpool(rt_ctx *c, bool go, uint64_t *dev_in)
{
    return run_pool(c, true, true, go, dev_in);
}
static int run_global_avgpool(rt_ctx *c, bool go, uint64_t *dev_in)
{
    return run_pool(c, false, true, go, dev_in);
}

/* Ops with float32 kernels only: float16 nodes run them widened. */
static const struct {
    const char *op;
    op_fn run;
} f32_ops[] = {
    {"Softmax", run_softmax},
    {"Conv", run_conv},
    {"LayerNormalization", run_layernorm},
    {"BatchNormalization", run_batchnorm},
    {"MaxPool", run_maxpool},
    {"AveragePool", run_avgpool},
    {"GlobalMaxPool", run_global_maxpool},
    {"GlobalAveragePool", run_global_avgpool},
};

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

/* Ops whose output is input 0's bytes under another shape: views on the
 * device (the engine gives them no buffer and runs nothing). */
static const char *const view_ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};

static int dispatch(rt_ctx *c, bool go, uint64_t *dev_in)
{
    const hpcz_node *n = c->node;
    if ((n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) || !rt_in(c, 0) ||
        c->n_out < 1 || !c->out[0])
        return DECLINE;
    const char *op = n->op_type;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(view_ops); i++)
        if (!strcmp(op, view_ops[i])) {
            if (go || c->n_out != 1 || c->out[0]->nbytes != c->in[0]->nbytes)
                return DECLINE;
            *dev_in = 1;
            return RT_DEV_ALIAS;
        }
    if (!strcmp(op, "QuantizeLinear") || !strcmp(op, "DequantizeLinear"))
        return c->act ? DECLINE : run_qdq(c, op[0] == 'Q', go, dev_in);
    if (!strcmp(op, "Concat"))
        return run_concat(c, go, dev_in);
    if (!strcmp(op, "Transpose"))
        return run_transpose(c, go, dev_in);
    if (!strcmp(op, "Resize"))
        return run_resize(c, go, dev_in);
    if (!strcmp(op, "Slice"))
        return run_slice(c, go, dev_in);
    if (!strcmp(op, "MaxPool") && !c->act &&
        (c->in[0]->dtype == HPCZ_DTYPE_UINT8 || c->in[0]->dtype == HPCZ_DTYPE_INT8))
        return run_pool(c, true, false, go, dev_in); /* int8 QDQ models: on the codes */
    int dt = float_type(c);
    if (!dt)
        return DECLINE;
    if (c->act && (dt != HPCZ_DTYPE_FLOAT || c->act->max ||
                   (strcmp(op, "Gemm") && strcmp(op, "Add") && strcmp(op, "Conv"))))
        return DECLINE; /* a fused activation the kernel would not apply */
    if (!strcmp(op, "MatMul"))
        return run_matmul(c, go, dev_in);
    if (!strcmp(op, "Gemm"))
        return run_gemm(c, go, dev_in);
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(binary_ops); i++)
        if (!strcmp(op, binary_ops[i].op))
            return run_binary(c, binary_ops[i].code, go, dev_in);
    if (!strcmp(op, "Gelu") && rt_attr_is(c, "approximate", "none", "none"))
        return run_unary(c, HPCZ_CU_GELU, go, dev_in);
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(unary_ops); i++)
        if (!strcmp(op, unary_ops[i].op))
            return c->n_in == 1 ? run_unary(c, unary_ops[i].code, go, dev_in) : DECLINE;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(f32_ops); i++)
        if (!strcmp(op, f32_ops[i].op)) {
            if (dt == HPCZ_DTYPE_FLOAT || !go)
                return dt == HPCZ_DTYPE_FLOAT16 && c->n_in > WIDE_MAX_IN
                           ? DECLINE
                           : f32_ops[i].run(c, go, dev_in);
            return run_widened(c, f32_ops[i].run);
        }
    return DECLINE;
}

/* The kernels share the observers' scratch buffers, and plans may run on
 * several threads (calibration workers): one launch at a time. */
static pthread_mutex_t gpu_lock = PTHREAD_MUTEX_INITIALIZER;

static int cuda_place(rt_ctx *c, uint64_t *dev_in)
{
    if (c->reference)
        return 0;
    *dev_in = 0;
    int r = dispatch(c, false, dev_in);
    return r == DECLINE ? 0 : r;
}

hpcz_status rt_cuda_run_node(rt_ctx *c)
{
    if (!c->device || c->infer || c->reference)
        return rt_cpu_run_node(c);
    pthread_mutex_lock(&gpu_lock);
    int st = dispatch(c, true, NULL);
    pthread_mutex_unlock(&gpu_lock);
    if (st == DECLINE) /* the plan placed it: shapes or data changed under it */
        return rt_bad(c, "placed on the GPU, but its kernel declines it now");
    return (hpcz_status)st;
}

/* ---- int8 QDQ fusion on the device: the fused step's qgemm.c pack described
 * by rt_qpack_info, its weights as int8 rows for dp4a, uploaded once with
 * the per-channel constants in one device block. */
typedef struct qdev {
    void *mem; /* (first: cuda_free_state) w [m][kp] int8, bias [m] int32, mult [m], bf [m];
                * a table op: its 256 bytes */
    enum { QDEV_GEMM, QDEV_LUT, QDEV_ADD } kind;
    hpcz_cuda_qadd add;
    hpcz_cuda_qmm g;
    int8_t *w;
    int32_t *bias;
    float *mult, *bf;
} qdev;


/* A table op (its 256 entries uploaded; every input read on the device: the
 * table's operands are x_q and constants) or an Add of two quantized
 * tensors. */
static void *qplace_elementwise(rt_ctx *c, const rt_qpack *qp, uint64_t *dev_in, size_t *bytes)
{
    const uint8_t *lut = rt_qpack_lut(qp);
    rt_qadd_info a;
    const hpcz_array *x = rt_in(c, 0), *y = c->out[0];
    if (!x || !y || (!lut && !rt_qpack_add_info(qp, &a)))
        return NULL;
    qdev *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    if (lut) {
        q->kind = QDEV_LUT;
        if (!(q->mem = impl->malloc(256)) || impl->h2d(q->mem, lut, 256)) {
            cuda_free_state(q);
            return NULL;
        }
        *bytes = 256;
        *dev_in = present(c, c->n_in >= 64 ? ~0ull : (1ull << c->n_in) - 1);
        return q;
    }
    q->kind = QDEV_ADD;
    q->add = (hpcz_cuda_qadd){.n = y->numel, .as8 = a.adt == HPCZ_DTYPE_INT8,
                              .bs8 = a.bdt == HPCZ_DTYPE_INT8, .ys8 = a.ydt == HPCZ_DTYPE_INT8,
                              .sa = a.sa, .sb = a.sb, .sy = a.sy, .za = a.za, .zb = a.zb,
                              .zy = a.zy};
    *dev_in = 3;
    return q;
}

/* NULL (the cpu kernel runs it) for MatMulInteger, for weights whose
 * w - w_zp leaves int8 (uint8 weights with a zero point: no dp4a form), and
 * for grids beyond one launch. */
static void *cuda_qplace(rt_ctx *c, const rt_qpack *qp, uint64_t *dev_in, size_t *bytes)
{
    rt_qgemm_info in;
    if (c->reference)
        return NULL;
    if (rt_qpack_lut(qp) || rt_qpack_add_info(qp, &(rt_qadd_info){0}))
        return qplace_elementwise(c, qp, dev_in, bytes);
    if (!rt_qpack_info(qp, &in, NULL, NULL) || in.batch * in.groups > 65535 ||
        (in.M / in.groups + 63) / 64 > 65535)
        return NULL;
    const hpcz_array *x = rt_in(c, 0), *y = c->out[0];
    int64_t per = in.conv ? in.cin * in.in[0] * in.in[1] * in.in[2] : in.K;
    if (!x || !y || x->dtype != in.xdt || y->dtype != in.ydt ||
        x->numel != (in.conv ? in.batch : in.osize) * per ||
        y->numel != in.batch * in.M * (in.conv ? in.osize : in.osize / in.batch))
        return NULL;
    int64_t kp = (in.K + 3) / 4 * 4, M = in.M;
    size_t wbytes = ((size_t)(M * kp) + 255) / 256 * 256, cbytes = (size_t)M * 4;
    size_t total = wbytes + 3 * cbytes;
    int16_t *wr = malloc((size_t)(M * in.K) * sizeof *wr);
    int32_t *bias = malloc(cbytes);
    uint8_t *host = calloc(1, total);
    qdev *q = calloc(1, sizeof *q);
    bool ok = wr && bias && host && q && rt_qpack_info(qp, &in, wr, bias);
    int32_t xzu = in.xdt == HPCZ_DTYPE_INT8 ? in.xzp + 128 : in.xzp;
    for (int64_t m = 0; ok && m < M; m++) {
        int64_t sum = 0;
        for (int64_t k = 0; k < in.K && ok; k++) {
            int16_t v = wr[m * in.K + k];
            ok = v >= -128 && v <= 127;
            host[m * kp + k] = (uint8_t)(int8_t)v;
            sum += v;
        }
        int64_t b = (int64_t)bias[m] - (int64_t)xzu * sum;
        ok = ok && b >= INT32_MIN && b <= INT32_MAX;
        int32_t b32 = (int32_t)b;
        memcpy(host + wbytes + (size_t)m * 4, &b32, 4);
    }
    if (ok) {
        memcpy(host + wbytes + cbytes, in.mult, cbytes);
        memcpy(host + wbytes + 2 * cbytes, in.bf, cbytes);
        q->mem = impl->malloc(total);
        ok = q->mem && !impl->h2d(q->mem, host, total);
    }
    free(wr);
    free(bias);
    free(host);
    if (!ok) {
        cuda_free_state(q);
        return NULL;
    }
    q->w = q->mem;
    q->bias = (int32_t *)((char *)q->mem + wbytes);
    q->mult = (float *)((char *)q->mem + wbytes + cbytes);
    q->bf = (float *)((char *)q->mem + wbytes + 2 * cbytes);
    q->g = (hpcz_cuda_qmm){.conv = in.conv, .xs8 = in.xdt == HPCZ_DTYPE_INT8,
                             .ys8 = in.ydt == HPCZ_DTYPE_INT8, .batch = in.batch, .cin = in.cin,
                             .groups = in.groups, .m = M, .k = in.K, .kp = kp,
                             .osize = in.osize, .xzu = xzu, .yzp = in.yzp, .lo = in.lo,
                             .hi = in.hi};
    for (int d = 0; d < 3; d++) {
        q->g.in[d] = in.in[d];
        q->g.kd[d] = in.k[d];
        q->g.out[d] = in.out[d];
        q->g.stride[d] = in.stride[d];
        q->g.dil[d] = in.dil[d];
        q->g.pad[d] = in.pad[d];
    }
    *bytes = total;
    *dev_in = 1;
    return q;
}

static hpcz_status cuda_qrun(rt_ctx *c, void *dq)
{
    const qdev *q = dq;
    const hpcz_array *x = rt_in(c, 0), *b = rt_in(c, 1);
    hpcz_array *y = c->out[0];
    int r;
    if (q->kind != QDEV_GEMM) {
        if (!x || !y || x->numel != y->numel || (q->kind == QDEV_ADD && (!b || b->numel != y->numel)))
            return rt_bad(c, "int8 fused kernel on the GPU: inputs do not match the plan");
        pthread_mutex_lock(&gpu_lock);
        r = q->kind == QDEV_LUT ? impl->lut(q->mem, x->data, y->data, y->numel)
                                : impl->qadd(&q->add, x->data, b->data, y->data);
        pthread_mutex_unlock(&gpu_lock);
        return r ? cuda_failed(c) : HPCZ_OK;
    }
    if (!x || !y || !x->data || !y->data ||
        x->dtype != (q->g.xs8 ? HPCZ_DTYPE_INT8 : HPCZ_DTYPE_UINT8) ||
        y->dtype != (q->g.ys8 ? HPCZ_DTYPE_INT8 : HPCZ_DTYPE_UINT8))
        return rt_bad(c, "int8 fused kernel on the GPU: inputs do not match the plan");
    pthread_mutex_lock(&gpu_lock);
    r = impl->qgemm(&q->g, x->data, q->w, q->bias, q->mult, q->bf, y->data);
    pthread_mutex_unlock(&gpu_lock);
    return r ? cuda_failed(c) : HPCZ_OK;
}

static void *dev_alloc(size_t n)
{
    return impl->malloc(n);
}
static void dev_free(void *d)
{
    impl->free(d);
}
static int dev_h2d(void *d, const void *h, size_t n)
{
    return impl->h2d(d, h, n);
}
static int dev_d2h(void *h, const void *d, size_t n)
{
    return impl->d2h(h, d, n);
}
static int dev_sync(void)
{
    return impl->sync();
}

const rt_device rt_cuda_device = {
    .place = cuda_place,
    .alloc = dev_alloc,
    .free = dev_free,
    .h2d = dev_h2d,
    .d2h = dev_d2h,
    .sync = dev_sync,
    .error = hpcz_cuda_error,
    .qplace = cuda_qplace,
    .qrun = cuda_qrun,
    .free_state = cuda_free_state,
};

/* ---- the calibration observers on device-resident values (internal.h) */

bool hpcz_array_on_device(const hpcz_array *a)
{
    return a->data && impl->is_device(a->data);
}

hpcz_status hpcz_device_minmax(const float *x, int64_t n, float *lo, float *hi, hpcz_error *err)
{
    pthread_mutex_lock(&gpu_lock);
    int r = impl->minmax(x, n, lo, hi);
    pthread_mutex_unlock(&gpu_lock);
    return r ? hpcz_fail(err, HPCZ_ERR_INVALID, "CUDA: %s", hpcz_cuda_error()) : HPCZ_OK;
}

hpcz_status hpcz_device_histogram(const float *x, int64_t n, double scale, int bins, uint64_t *h,
                                  hpcz_error *err)
{
    pthread_mutex_lock(&gpu_lock);
    int r = impl->histogram(x, n, scale, bins, h);
    pthread_mutex_unlock(&gpu_lock);
    return r ? hpcz_fail(err, HPCZ_ERR_INVALID, "CUDA: %s", hpcz_cuda_error()) : HPCZ_OK;
}

hpcz_status hpcz_device_copy_back(void *h, const void *d, size_t n, hpcz_error *err)
{
    if (impl->d2h(h, d, n) || impl->sync())
        return hpcz_fail(err, HPCZ_ERR_INVALID, "CUDA: %s", hpcz_cuda_error());
    return HPCZ_OK;
}
