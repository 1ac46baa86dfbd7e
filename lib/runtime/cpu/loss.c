/*
 * loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (reductions none/sum/mean, class weights, ignore_index).
 */
#include "../rt.h"

/* loss over log-probabilities lp [N, C, D...] (D = product of extra dims). */
static hpcz_status nll(rt_ctx *c, const hpcz_array *lp_arr, const double *lp, const hpcz_array *t,
                       const hpcz_array *w, int out_dtype)
{
    int64_t N = lp_arr->dims[0], C = lp_arr->dims[1];
    int64_t D = N && C ? lp_arr->numel / (N * C) : 0;
    char red[16];
    rt_attr_s(c, "reduction", "mean", red, sizeof red);
    bool none = !strcmp(red, "none"), sum = !strcmp(red, "sum"), mean = !strcmp(red, "mean");
    if (!none && !sum && !mean)
        return rt_unsupported(c);
    const hpcz_attr *ia = hpcz_node_attr(c->node, "ignore_index");
    bool has_ignore = ia != NULL;
    int64_t ignore = ia ? ia->i : 0;
    hpcz_array *y = none ? rt_out(c, 0, out_dtype, t->ndim, t->dims) : rt_out(c, 0, out_dtype, 0, NULL);
    if (!y)
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    double total = 0, wsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t i = n * D + d;
            int64_t k = rt_load_i(t->data, t->dtype, i);
            double v = 0, wk = 0;
            if (!(has_ignore && k == ignore)) {
                if (k < 0 || k >= C)
                    return rt_bad(c, "target %lld out of range", (long long)k);
                wk = w ? rt_load_d(w->data, w->dtype, k) : 1;
                v = -lp[(n * C + k) * D + d] * wk;
            }
            if (none)
                rt_store_d(y->data, y->dtype, i, v);
            total += v;
            wsum += wk;
        }
    if (sum)
        rt_store_d(y->data, y->dtype, 0, total);
    else if (mean)
        rt_store_d(y->data, y->dtype, 0, total / wsum);
    return HPCZ_OK;
}

static bool loss_types(const hpcz_array *x, const hpcz_array *t)
{
    return hpcz_dtype_is_float(x->dtype) && x->dtype != HPCZ_DTYPE_BFLOAT16 &&
           (t->dtype == HPCZ_DTYPE_INT64 || t->dtype == HPCZ_DTYPE_INT32) && x->ndim >= 2 &&
           t->ndim == x->ndim - 1;
}

static hpcz_status k_nll(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *t = rt_in(c, 1), *w = rt_in(c, 2);
    if (!loss_types(x, t))
        return rt_unsupported(c);
    double *lp = NULL;
    if (!c->infer) {
        lp = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *lp);
        if (!lp)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < x->numel; i++)
            lp[i] = rt_load_d(x->data, x->dtype, i);
    }
    hpcz_status st = nll(c, x, lp, t, w, x->dtype);
    free(lp);
    return st;
}

static hpcz_status k_sce(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *t = rt_in(c, 1), *w = rt_in(c, 2);
    if (!loss_types(x, t))
        return rt_unsupported(c);
    hpcz_array *lpo = NULL;
    if (c->n_out > 1 && c->out[1] && !(lpo = rt_out(c, 1, x->dtype, x->ndim, x->dims)))
        return c->err->status;
    double *lp = NULL;
    if (!c->infer) {
        int64_t N = x->dims[0], C = x->dims[1], D = N && C ? x->numel / (N * C) : 0;
        lp = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *lp);
        if (!lp)
            return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t n = 0; n < N; n++)
            for (int64_t d = 0; d < D; d++) {
                double mx = -INFINITY, s = 0;
                for (int64_t k = 0; k < C; k++)
                    mx = fmax(mx, rt_load_d(x->data, x->dtype, (n * C + k) * D + d));
                for (int64_t k = 0; k < C; k++)
                    s += exp(rt_load_d(x->data, x->dtype, (n * C + k) * D + d) - mx);
                for (int64_t k = 0; k < C; k++) {
                    int64_t i = (n * C + k) * D + d;
                    lp[i] = rt_load_d(x->data, x->dtype, i) - mx - log(s);
                    if (lpo)
                        rt_store_d(lpo->data, lpo->dtype, i, lp[i]);
                }
            }
    }
    hpcz_status st = nll(c, x, lp, t, w, x->dtype);
    free(lp);
    return st;
}

static const rt_op ops[] = {
    {"", "NegativeLogLikelihoodLoss", 12, 0, 0, k_nll, NULL},
    {"", "SoftmaxCrossEntropyLoss", 12, 0, 0, k_sce, NULL},
};

const rt_op_table rt_ops_loss = {ops, HPCZ_ARRAY_SIZE(ops)};
