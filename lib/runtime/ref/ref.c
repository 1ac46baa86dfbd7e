/*
 * ref.c - the "ref" backend: naive kernels that serve as the oracle for the
 * optimized CPU kernels (tests/runtime/test_kernels.c). Written for
 * obviousness, not speed: direct loops, double accumulators.
 *
 * Ops without an entry here run the CPU kernel with ctx->reference set,
 * which makes kernels with fast paths (vectorized float loops, fused
 * epilogues, broadcast specialisations) take their generic path instead.
 */
#include "../rt.h"
#include "../cpu/conv_geom.h"

static hpcz_status ref_conv(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *w = rt_in(c, 1), *b = rt_in(c, 2);
    if (x->dtype != HPCZ_DTYPE_FLOAT || w->dtype != HPCZ_DTYPE_FLOAT || x->ndim < 3 ||
        x->ndim > 5 || w->ndim != x->ndim)
        return rt_unsupported(c);
    int64_t group = rt_attr_i(c, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0];
    if (group < 1 || C % group || M % group || w->dims[1] != C / group)
        return rt_bad(c, "channels do not match the weights and groups");
    conv_geom g;
    if (!rt_conv_geom(c, x, w->dims + 2, false, &g))
        return rt_bad(c, "invalid geometry");
    int64_t dims[5] = {N, M};
    for (int s = 0; s < g.nsp; s++)
        dims[2 + s] = g.out[3 - g.nsp + s];
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, x->ndim, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *yd = y->data;
    int64_t Cg = C / group, Mg = M / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t od = 0; od < g.out[0]; od++)
                for (int64_t oh = 0; oh < g.out[1]; oh++)
                    for (int64_t ow = 0; ow < g.out[2]; ow++) {
                        double acc = bd ? bd[m] : 0;
                        for (int64_t cc = 0; cc < Cg; cc++)
                            for (int64_t kd = 0; kd < g.k[0]; kd++)
                                for (int64_t kh = 0; kh < g.k[1]; kh++)
                                    for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                        int64_t id = od * g.stride[0] - g.pb[0] + kd * g.dil[0];
                                        int64_t ih = oh * g.stride[1] - g.pb[1] + kh * g.dil[1];
                                        int64_t iw = ow * g.stride[2] - g.pb[2] + kw * g.dil[2];
                                        if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] ||
                                            iw < 0 || iw >= g.in[2])
                                            continue;
                                        int64_t ch = (m / Mg) * Cg + cc;
                                        acc += (double)xd[((n * C + ch) * g.in[0] + id) * g.in[1] * g.in[2] +
                                                          ih * g.in[2] + iw] *
                                               wd[((m * Cg + cc) * g.k[0] + kd) * g.k[1] * g.k[2] +
                                                  kh * g.k[2] + kw];
                                    }
                        yd[((n * M + m) * g.out[0] + od) * g.out[1] * g.out[2] + oh * g.out[2] + ow] =
                            (float)acc;
                    }
    rt_act_apply(c->act, yd, y->numel);
    return HPCZ_OK;
}

static hpcz_status ref_gemm(rt_ctx *c)
{
    hpcz_array *a = rt_in(c, 0), *b = rt_in(c, 1), *cc = rt_in(c, 2);
    if (a->dtype != HPCZ_DTYPE_FLOAT || b->dtype != HPCZ_DTYPE_FLOAT || a->ndim != 2 || b->ndim != 2)
        return rt_unsupported(c);
    bool ta = rt_attr_i(c, "transA", 0), tb = rt_attr_i(c, "transB", 0);
    double alpha = rt_attr_f(c, "alpha", 1.0f), beta = rt_attr_f(c, "beta", 1.0f);
    int64_t m = ta ? a->dims[1] : a->dims[0], k = ta ? a->dims[0] : a->dims[1];
    int64_t n = tb ? b->dims[0] : b->dims[1];
    if ((tb ? b->dims[1] : b->dims[0]) != k)
        return rt_bad(c, "inner dimensions differ");
    int64_t dims[2] = {m, n};
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_FLOAT, 2, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    const float *ad = a->data, *bd = b->data;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t q = 0; q < k; q++)
                acc += (double)ad[ta ? q * a->dims[1] + i : i * a->dims[1] + q] *
                       bd[tb ? j * b->dims[1] + q : q * b->dims[1] + j];
            acc *= alpha;
            if (cc && cc->numel) {
                int64_t cm = cc->ndim == 2 ? cc->dims[0] : 1, cn = cc->ndim ? cc->dims[cc->ndim - 1] : 1;
                acc += beta * ((const float *)cc->data)[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
            }
            ((float *)y->data)[i * n + j] = (float)acc;
        }
    rt_act_apply(c->act, y->data, y->numel);
    return HPCZ_OK;
}

typedef struct ref_op {
    const char *name;
    rt_kernel_fn run;
} ref_op;

static const ref_op ref_ops[] = {
    {"Conv", ref_conv},
    {"Gemm", ref_gemm},
};

static hpcz_status ref_run(rt_ctx *c);

hpcz_status rt_ref_run_node(rt_ctx *c)
{
    c->reference = true;
    hpcz_status st = ref_run(c);
    if (st == HPCZ_ERR_UNSUPPORTED && rt_has_f16_input(c)) {
        *c->err = (hpcz_error){0};
        st = rt_run_f16_via_f32(c, ref_run);
    }
    return st;
}

static hpcz_status ref_run(rt_ctx *c)
{
    if (!c->node->domain || !*c->node->domain)
        for (size_t i = 0; i < HPCZ_ARRAY_SIZE(ref_ops); i++)
            if (!strcmp(ref_ops[i].name, c->node->op_type))
                return ref_ops[i].run(c);
    hpcz_status st = c->op->run(c);
    /* generic paths do not know about fused epilogues */
    if (!st && !c->infer && c->act && c->n_out && c->out[0] &&
        c->out[0]->dtype == HPCZ_DTYPE_FLOAT && strcmp(c->node->op_type, "Add"))
        rt_act_apply(c->act, c->out[0]->data, c->out[0]->numel);
    return st;
}
