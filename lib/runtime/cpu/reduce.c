/*
 * reduce.c - Reduce* (axes as attribute or input), ArgMax/ArgMin, TopK,
 * CumSum/CumProd. Each output element is accumulated serially in double,
 * in input order, by one thread.
 */
#include "../rt.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

typedef struct red_op {
    const char *name;
    int kind;
    int axes_input_opset; /* first opset that takes axes as an input */
} red_op;

static const red_op red_ops[] = {
    {"ReduceSum", R_SUM, 13},        {"ReduceMean", R_MEAN, 18},   {"ReduceMax", R_MAX, 18},
    {"ReduceMin", R_MIN, 18},        {"ReduceProd", R_PROD, 18},   {"ReduceL1", R_L1, 18},
    {"ReduceL2", R_L2, 18},          {"ReduceLogSum", R_LOGSUM, 18},
    {"ReduceLogSumExp", R_LOGSUMEXP, 18}, {"ReduceSumSquare", R_SUMSQ, 18},
};

static double red_init(int k)
{
    return k == R_MAX ? -INFINITY : k == R_MIN ? INFINITY : k == R_PROD ? 1 : 0;
}

static inline double red_step(int k, double acc, double v)
{
    switch (k) {
    case R_MAX: return v > acc || v != v ? v : acc;
    case R_MIN: return v < acc || v != v ? v : acc;
    case R_PROD: return acc * v;
    case R_L1: return acc + fabs(v);
    case R_L2:
    case R_SUMSQ: return acc + v * v;
    case R_LOGSUMEXP: return acc + exp(v);
    default: return acc + v;
    }
}

static double red_final(int k, double acc, int64_t n)
{
    switch (k) {
    case R_MEAN: return acc / (double)n;
    case R_L2: return sqrt(acc);
    case R_LOGSUM: return log(acc);
    default: return acc;
    }
}

static hpcz_status k_reduce(rt_ctx *c)
{
    const red_op *op = NULL;
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(red_ops); i++)
        if (!strcmp(red_ops[i].name, c->node->op_type))
            op = &red_ops[i];
    hpcz_array *x = rt_in(c, 0);
    /* float16: the float32 loop on a widened copy adds the same doubles and
     * rounds the same float to float16 as the per-element path (rt_load_d
     * and a portable conversion per element) */
    if (!op || !(RT_TNUM & RT_T(x->dtype)) || x->dtype == HPCZ_DTYPE_BOOL || rt_f16_widen(c))
        return rt_unsupported(c);
    int r = x->ndim;
    bool red[RT_MAX_RANK] = {0};
    int64_t axes[RT_MAX_RANK];
    size_t na = 0;
    bool have_axes = false;
    if (c->opset >= op->axes_input_opset) {
        hpcz_array *ax = rt_in(c, 1);
        if (ax && ax->numel) {
            if (!rt_need(c, 1))
                return HPCZ_OK; /* shape depends on data: run dynamically */
            if (!rt_ints(ax, axes, RT_MAX_RANK))
                return rt_bad(c, "axes must be int64");
            na = (size_t)ax->numel;
            have_axes = true;
        }
    } else {
        size_t n;
        const int64_t *a = rt_attr_ints(c, "axes", &n);
        if (a) {
            if (n > RT_MAX_RANK)
                return rt_bad(c, "too many axes");
            memcpy(axes, a, n * sizeof *a);
            na = n;
            have_axes = n > 0;
        }
    }
    bool keep = rt_attr_i(c, "keepdims", 1) != 0;
    if (!have_axes) {
        if (rt_attr_i(c, "noop_with_empty_axes", 0)) {
            hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
            if (!y || c->infer)
                return y ? HPCZ_OK : c->err->status;
            memcpy(y->data, x->data, x->nbytes);
            return HPCZ_OK;
        }
        for (int d = 0; d < r; d++)
            red[d] = true;
    }
    for (size_t i = 0; i < na; i++) {
        int a = rt_axis(axes[i], r);
        if (a < 0)
            return rt_bad(c, "axis %lld out of range", (long long)axes[i]);
        red[a] = true;
    }
    int64_t dims[RT_MAX_RANK];
    int nd = 0;
    int64_t len = 1;
    for (int d = 0; d < r; d++) {
        if (red[d]) {
            len *= x->dims[d];
            if (keep)
                dims[nd++] = 1;
        } else {
            dims[nd++] = x->dims[d];
        }
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, nd, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int k = op->kind;
    int64_t on = y->numel;
    bool ints = rt_is_int(x->dtype);
    /* reduced axes forming one block: (outer, len, inner) */
    int first = -1, last = -1;
    bool block = true;
    for (int d = 0; d < r; d++)
        if (red[d] && x->dims[d] != 1) {
            if (first < 0)
                first = d;
            else if (last != d - 1)
                block = false;
            last = d;
        }
    if (block) {
        int64_t inner = 1;
        for (int d = last + 1; d < r && first >= 0; d++)
            inner *= x->dims[d];
        if (first < 0)
            inner = 1;
        int64_t lenb = first < 0 ? 1 : len;
        bool f32 = x->dtype == HPCZ_DTYPE_FLOAT;
        for (int64_t o = 0; o < on; o++) {
            int64_t oo = o / inner, ii = o % inner, base = oo * lenb * inner + ii;
            double acc = red_init(k);
            if (f32) {
                const float *s = (const float *)x->data + base;
                for (int64_t q = 0; q < lenb; q++)
                    acc = red_step(k, acc, s[q * inner]);
                ((float *)y->data)[o] = (float)(lenb ? red_final(k, acc, lenb)
                                                     : red_final(k, acc, lenb));
                if (k == R_LOGSUMEXP)
                    ((float *)y->data)[o] = (float)log(acc);
                continue;
            }
            for (int64_t q = 0; q < lenb; q++)
                acc = red_step(k, acc, rt_load_d(x->data, x->dtype, base + q * inner));
            double v = k == R_LOGSUMEXP ? log(acc) : red_final(k, acc, lenb);
            if (ints && k == R_MEAN)
                v = trunc(v);
            rt_store_d(y->data, y->dtype, o, v);
        }
        return HPCZ_OK;
    }
    double *acc = malloc((size_t)(on ? on : 1) * sizeof *acc);
    if (!acc)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < on; o++)
        acc[o] = red_init(k);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t rem = i, o = 0, mul = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t co = rem % x->dims[d];
            rem /= x->dims[d];
            if (!red[d]) {
                o += co * mul;
                mul *= x->dims[d];
            }
        }
        acc[o] = red_step(k, acc[o], rt_load_d(x->data, x->dtype, i));
    }
    for (int64_t o = 0; o < on; o++) {
        double v = k == R_LOGSUMEXP ? log(acc[o]) : red_final(k, acc[o], len);
        rt_store_d(y->data, y->dtype, o, v);
    }
    free(acc);
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- ArgMax/Min */

static hpcz_status k_arg(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    bool is_max = !strcmp(c->node->op_type, "ArgMax");
    if (!(RT_TNUM & RT_T(x->dtype)))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", 0), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    bool keep = rt_attr_i(c, "keepdims", 1) != 0, lastidx = rt_attr_i(c, "select_last_index", 0);
    int64_t dims[RT_MAX_RANK];
    int nd = 0;
    for (int d = 0; d < r; d++)
        if (d != axis)
            dims[nd++] = x->dims[d];
        else if (keep)
            dims[nd++] = 1;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT64, nd, dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int64_t len = x->dims[axis], inner = 1;
    for (int d = axis + 1; d < r; d++)
        inner *= x->dims[d];
    int64_t *out = y->data;
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t oo = o / inner, ii = o % inner, base = oo * len * inner + ii;
        double best = 0;
        int64_t bi = 0;
        for (int64_t q = 0; q < len; q++) {
            double v = rt_load_d(x->data, x->dtype, base + q * inner);
            bool better = q == 0 || (is_max ? (v > best || (lastidx && v == best))
                                            : (v < best || (lastidx && v == best)));
            if (better) {
                best = v;
                bi = q;
            }
        }
        out[o] = bi;
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- TopK */

typedef struct topk_item {
    double v;
    int64_t i;
} topk_item;

static int cmp_largest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_smallest(const void *a, const void *b)
{
    const topk_item *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static hpcz_status k_topk(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!(RT_TNUM & RT_T(x->dtype)))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", -1), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    int64_t k;
    if (c->opset < 10) {
        k = rt_attr_i(c, "k", 0);
    } else {
        hpcz_array *ka = rt_in(c, 1);
        if (!ka || ka->numel != 1)
            return rt_bad(c, "K must hold one value");
        if (!rt_need(c, 1))
            return HPCZ_OK;
        k = rt_int_at(ka, 0);
    }
    int64_t len = x->dims[axis];
    if (k < 0 || k > len)
        return rt_bad(c, "K out of range");
    bool largest = rt_attr_i(c, "largest", 1) != 0;
    int64_t dims[RT_MAX_RANK];
    memcpy(dims, x->dims, (size_t)r * sizeof *dims);
    dims[axis] = k;
    hpcz_array *vy = rt_out(c, 0, x->dtype, r, dims);
    if (!vy)
        return c->err->status;
    hpcz_array *iy = rt_out(c, 1, HPCZ_DTYPE_INT64, r, dims);
    if (c->n_out > 1 && c->out[1] && !iy)
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    int64_t inner = 1;
    for (int d = axis + 1; d < r; d++)
        inner *= x->dims[d];
    int64_t outer = len ? x->numel / (len * inner) : 0;
    topk_item *items = malloc((size_t)(len ? len : 1) * sizeof *items);
    if (!items)
        return hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t ii = 0; ii < inner; ii++) {
            int64_t base = o * len * inner + ii;
            for (int64_t q = 0; q < len; q++)
                items[q] = (topk_item){rt_load_d(x->data, x->dtype, base + q * inner), q};
            /* the index breaks ties, so the order is total and stable */
            qsort(items, (size_t)len, sizeof *items, largest ? cmp_largest : cmp_smallest);
            int64_t obase = o * k * inner + ii;
            for (int64_t q = 0; q < k; q++) {
                int64_t src = base + items[q].i * inner;
                if (rt_is_int(x->dtype))
                    rt_store_i(vy->data, x->dtype, obase + q * inner,
                               rt_load_i(x->data, x->dtype, src));
                else
                    rt_store_d(vy->data, x->dtype, obase + q * inner, items[q].v);
                if (iy)
                    ((int64_t *)iy->data)[obase + q * inner] = items[q].i;
            }
        }
    free(items);
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- CumSum */

static hpcz_status k_cum(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *ax = rt_in(c, 1);
    bool prod = !strcmp(c->node->op_type, "CumProd");
    if (!(RT_TNUM & RT_T(x->dtype)) || !ax)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, x->dtype, x->ndim, x->dims);
    if (!y || c->infer)
        return y ? HPCZ_OK : c->err->status;
    int axis = rt_axis(rt_int_at(ax, 0), x->ndim);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    bool excl = rt_attr_i(c, "exclusive", 0), rev = rt_attr_i(c, "reverse", 0);
    int64_t len = x->dims[axis], inner = 1;
    for (int d = axis + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    int64_t outer = len ? x->numel / (len * inner) : 0;
    bool ints = rt_is_int(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t ii = 0; ii < inner; ii++) {
            double acc = prod ? 1 : 0;
            int64_t iacc = prod ? 1 : 0;
            for (int64_t q0 = 0; q0 < len; q0++) {
                int64_t q = rev ? len - 1 - q0 : q0;
                int64_t i = (o * len + q) * inner + ii;
                double v = rt_load_d(x->data, x->dtype, i);
                int64_t iv = rt_load_i(x->data, x->dtype, i);
                if (excl) {
                    if (ints)
                        rt_store_i(y->data, y->dtype, i, iacc);
                    else
                        rt_store_d(y->data, y->dtype, i, acc);
                }
                acc = prod ? acc * v : acc + v;
                iacc = prod ? iacc * iv : iacc + iv;
                if (!excl) {
                    if (ints)
                        rt_store_i(y->data, y->dtype, i, iacc);
                    else
                        rt_store_d(y->data, y->dtype, i, acc);
                }
            }
        }
    return HPCZ_OK;
}

#define RED(n) {"", n, 1, 0, 0, k_reduce, NULL}

static const rt_op ops[] = {
    RED("ReduceSum"), RED("ReduceMean"), RED("ReduceMax"), RED("ReduceMin"), RED("ReduceProd"),
    RED("ReduceL1"), RED("ReduceL2"), RED("ReduceLogSum"), RED("ReduceLogSumExp"),
    RED("ReduceSumSquare"),
    {"", "ArgMax", 1, 0, 0, k_arg, NULL},
    {"", "ArgMin", 1, 0, 0, k_arg, NULL},
    {"", "TopK", 1, 0, 0, k_topk, NULL},
    {"", "CumSum", 11, 0, 0, k_cum, NULL},
    {"", "CumProd", 26, 0, 0, k_cum, NULL},
};

const rt_op_table rt_ops_reduce = {ops, HPCZ_ARRAY_SIZE(ops)};
