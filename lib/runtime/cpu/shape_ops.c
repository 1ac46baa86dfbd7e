/*
 * shape_ops.c - ops that move, select or create data without arithmetic:
 * Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat,
 * Split, Slice, Gather*, Scatter*, Expand, Tile, Pad, ConstantOfShape,
 * Range, Constant, Identity, Dropout, Cast, CastLike, DepthToSpace,
 * SpaceToDepth, Trilu, OneHot, EyeLike, NonZero, Compress.
 *
 * Ops whose output shape depends on input values (Reshape's shape, Slice's
 * starts, ...) read them through rt_need(): known at plan time when they are
 * constants or computed from shapes, otherwise the node runs dynamically.
 */
#include "../rt.h"

#define RET_OUT(y) return (y) ? HPCZ_OK : c->err->status

static hpcz_array *out_like(rt_ctx *c, size_t i, const hpcz_array *x)
{
    return rt_out(c, i, x->dtype, x->ndim, x->dims);
}

static hpcz_status copy_through(rt_ctx *c, int ndim, const int64_t *dims)
{
    hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = rt_out(c, 0, x->dtype, ndim, dims);
    if (!y || c->infer)
        RET_OUT(y);
    if (y->nbytes && y->data != x->data)
        memcpy(y->data, x->data, y->nbytes);
    return HPCZ_OK;
}

/* Reads a 1-D int input into v (data needed). -1: not known yet (dynamic),
 * -2: invalid. */
static int64_t read_ints(rt_ctx *c, size_t i, int64_t *v, size_t max)
{
    hpcz_array *a = rt_in(c, i);
    if (!a)
        return 0;
    if (!rt_need(c, i))
        return -1;
    if (!rt_ints(a, v, max))
        return -2;
    return a->numel;
}

/* An int list that moved from attribute `attr` to input i at opset `since`
 * (Reshape's shape, Squeeze's and Unsqueeze's axes, Split's sizes): the
 * attribute's values before that opset, the input's from it on. Returns the
 * count (0 when absent), -1 when the input is not known yet, -2 when it is not
 * an int64 list of at most max values. */
static int64_t read_ints_since(rt_ctx *c, int since, const char *attr, size_t i, int64_t *v,
                               size_t max)
{
    if (c->opset >= since)
        return read_ints(c, i, v, max);
    size_t n;
    const int64_t *a = rt_attr_ints(c, attr, &n);
    if (!a)
        return 0;
    if (n > max)
        return -2;
    memcpy(v, a, n * sizeof *a);
    return (int64_t)n;
}

/* ---------------------------------------------------------------- Shape, Size */

static hpcz_status k_shape(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    int64_t r = x->ndim, s = rt_attr_i(c, "start", 0), e = rt_attr_i(c, "end", r);
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > s ? e - s : 0;
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT64, 1, &n);
    if (!y || c->infer)
        RET_OUT(y);
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)y->data)[i] = x->dims[s + i];
    return HPCZ_OK;
}

static hpcz_status k_size(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT64, 0, NULL);
    if (!y || c->infer)
        RET_OUT(y);
    *(int64_t *)y->data = x->numel;
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Reshape family */

static hpcz_status k_reshape(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    int64_t sh[RT_MAX_RANK];
    size_t na;
    if (c->opset < 5 && !rt_attr_ints(c, "shape", &na))
        return rt_bad(c, "missing shape");
    int64_t n = read_ints_since(c, 5, "shape", 1, sh, RT_MAX_RANK);
    if (n == -1)
        return HPCZ_OK;
    if (n < 0)
        return rt_bad(c, "shape must be a 1-D int64 list of rank <= %d", RT_MAX_RANK);
    bool allowzero = rt_attr_i(c, "allowzero", 0) != 0;
    int neg = -1;
    int64_t known = 1;
    for (int64_t i = 0; i < n; i++) {
        if (sh[i] == 0 && !allowzero) {
            if (i >= x->ndim)
                return rt_bad(c, "shape copies a dimension the input lacks");
            sh[i] = x->dims[i];
        }
        if (sh[i] == -1) {
            if (neg >= 0)
                return rt_bad(c, "more than one -1 in shape");
            neg = (int)i;
        } else if (sh[i] < 0) {
            return rt_bad(c, "negative dimension in shape");
        } else if (__builtin_mul_overflow(known, sh[i], &known) || known > HPCZ_MAX_NUMEL) {
            return rt_bad(c, "shape has more than 2^40 elements");
        }
    }
    if (neg >= 0) {
        if (known == 0 || x->numel % known)
            return rt_bad(c, "cannot infer the -1 dimension");
        sh[neg] = x->numel / known;
    } else if (known != x->numel) {
        return rt_bad(c, "shape has %lld elements, input %lld", (long long)known,
                      (long long)x->numel);
    }
    return copy_through(c, (int)n, sh);
}

static hpcz_status k_flatten(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    int64_t ax = rt_attr_i(c, "axis", 1);
    if (ax < 0)
        ax += x->ndim;
    if (ax < 0 || ax > x->ndim)
        return rt_bad(c, "axis out of range");
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->ndim; i++)
        d[i < ax ? 0 : 1] *= x->dims[i];
    return copy_through(c, 2, d);
}

static hpcz_status k_squeeze(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    int64_t axes[RT_MAX_RANK];
    int64_t na = read_ints_since(c, 13, "axes", 1, axes, RT_MAX_RANK);
    if (na == -1)
        return HPCZ_OK;
    if (na < 0)
        return rt_bad(c, "axes must be an int64 list of at most %d", RT_MAX_RANK);
    bool drop[RT_MAX_RANK] = {0};
    for (int64_t i = 0; i < na; i++) {
        int a = rt_axis(axes[i], x->ndim);
        if (a < 0 || x->dims[a] != 1)
            return rt_bad(c, "cannot squeeze axis %lld", (long long)axes[i]);
        drop[a] = true;
    }
    int64_t d[RT_MAX_RANK];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!(na ? drop[i] : x->dims[i] == 1))
            d[nd++] = x->dims[i];
    return copy_through(c, nd, d);
}

static hpcz_status k_unsqueeze(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    int64_t axes[RT_MAX_RANK];
    int64_t na = read_ints_since(c, 13, "axes", 1, axes, RT_MAX_RANK);
    if (na == -1)
        return HPCZ_OK;
    if (na < 0)
        return rt_bad(c, "axes must be an int64 list of at most %d", RT_MAX_RANK);
    if (na == 0)
        return rt_bad(c, "missing axes");
    int r = x->ndim + (int)na;
    if (r > RT_MAX_RANK)
        return rt_unsupported(c);
    bool ins[RT_MAX_RANK] = {0};
    for (int64_t i = 0; i < na; i++) {
        int a = rt_axis(axes[i], r);
        if (a < 0 || ins[a])
            return rt_bad(c, "invalid axis %lld", (long long)axes[i]);
        ins[a] = true;
    }
    int64_t d[RT_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++)
        d[i] = ins[i] ? 1 : x->dims[k++];
    return copy_through(c, r, d);
}

static hpcz_status k_identity(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!x)
        return rt_unsupported(c);
    return copy_through(c, x->ndim, x->dims);
}

static bool dropout_ok(const hpcz_node *n)
{
    (void)n;
    return true;
}

static hpcz_status k_dropout(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *tm = rt_in(c, 2);
    if (c->opset < 7 && rt_attr_i(c, "is_test", 0) == 0)
        return rt_unsupported(c);
    if (tm) {
        if (!rt_need(c, 2))
            return HPCZ_OK;
        if (rt_load_i(tm->data, tm->dtype, 0))
            return rt_unsupported(c); /* training mode needs random masks */
    }
    hpcz_array *y = out_like(c, 0, x);
    if (!y)
        return c->err->status;
    hpcz_array *m = NULL;
    if (c->n_out > 1 && c->out[1] &&
        !(m = rt_out(c, 1, c->opset >= 10 ? HPCZ_DTYPE_BOOL : x->dtype, x->ndim, x->dims)))
        return c->err->status;
    if (c->infer)
        return HPCZ_OK;
    memcpy(y->data, x->data, x->nbytes);
    if (m) {
        for (int64_t i = 0; i < m->numel; i++)
            rt_store_d(m->data, m->dtype, i, 1);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Transpose */

/* y[out index] = x[permuted index]; rows of the innermost output dim are
 * contiguous runs or strided reads. */
RT_HOT static void transpose_any(const hpcz_array *x, const int64_t *perm, hpcz_array *y)
{
    int r = x->ndim;
    size_t es = rt_esize(x->dtype);
    int64_t xs[RT_MAX_RANK], ys[RT_MAX_RANK];
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        xs[d] = s;
        s *= x->dims[d];
    }
    for (int d = 0; d < r; d++)
        ys[d] = xs[perm[d]]; /* input stride of output dim d */
    int64_t inner = r ? y->dims[r - 1] : 1, rows = inner ? y->numel / inner : 0;
    int64_t istr = r ? ys[r - 1] : 1;
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = 0;
        for (int d = r - 2; d >= 0; d--) {
            int64_t i = rem % y->dims[d];
            rem /= y->dims[d];
            off += i * ys[d];
        }
        uint8_t *dst = (uint8_t *)y->data + (size_t)(row * inner) * es;
        const uint8_t *src = (const uint8_t *)x->data;
        if (istr == 1) {
            memcpy(dst, src + (size_t)off * es, (size_t)inner * es);
        } else if (es == 4) {
            const uint32_t *s4 = (const uint32_t *)src + off;
            uint32_t *d4 = (uint32_t *)dst;
            for (int64_t i = 0; i < inner; i++)
                d4[i] = s4[i * istr];
        } else if (es == 1) { /* int8 tensors (a Transpose fused into QDQ) */
            const uint8_t *s1 = src + off;
            for (int64_t i = 0; i < inner; i++)
                dst[i] = s1[i * istr];
        } else {
            for (int64_t i = 0; i < inner; i++)
                memcpy(dst + (size_t)i * es, src + (size_t)(off + i * istr) * es, es);
        }
    }
}

static hpcz_status k_transpose(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int r = x->ndim;
    int64_t perm[RT_MAX_RANK];
    size_t np;
    const int64_t *p = rt_attr_ints(c, "perm", &np);
    if (p) {
        if ((int)np != r)
            return rt_bad(c, "perm has %zu entries for rank %d", np, r);
        bool seen[RT_MAX_RANK] = {0};
        for (int i = 0; i < r; i++) {
            int a = rt_axis(p[i], r);
            if (a < 0 || seen[a])
                return rt_bad(c, "perm is not a permutation");
            seen[a] = true;
            perm[i] = a;
        }
    } else {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    int64_t d[RT_MAX_RANK];
    for (int i = 0; i < r; i++)
        d[i] = x->dims[perm[i]];
    hpcz_array *y = rt_out(c, 0, x->dtype, r, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    /* the last two axes swapped (an STFT's [bins][frames] -> [frames][bins]):
     * 2-D transposes in blocks, not a strided read per element */
    bool swap2 = r >= 2 && perm[r - 2] == r - 1 && perm[r - 1] == r - 2;
    for (int i = 0; i + 2 < r; i++)
        swap2 &= perm[i] == i;
    if (swap2 && rt_esize(x->dtype) == 4) {
        int64_t R = x->dims[r - 2], C = x->dims[r - 1];
        for (int64_t b = 0; b < x->numel / (R * C); b++)
            rt_transpose32((const uint32_t *)x->data + b * R * C, R, C, C,
                           (uint32_t *)y->data + b * R * C, R);
        return HPCZ_OK;
    }
    transpose_any(x, perm, y);
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Concat, Split */

/* Concat's copies in pieces of CAT_PIECE bytes, a task each: one memcpy of
 * megabytes per input (ppocr_det's four upsampled 240x160 maps) ran on one
 * thread, and at 2 threads it read the other core's output from its L2
 * (0.17 -> 0.27 ms). Piece i of input k: the same bytes whoever copies it. */
#define CAT_PIECE 65536
typedef struct cat_job {
    const rt_ctx *c;
    uint8_t *y;
    size_t orow; /* bytes of an output row */
    int64_t outer;
    const size_t *pieces; /* [n_in + 1] prefix sums of each input's pieces */
    const size_t *offs;   /* [n_in] bytes before input k in an output row */
} cat_job;

static void cat_piece(void *ctx, int64_t t)
{
    const cat_job *j = ctx;
    size_t k = 0;
    while (j->pieces[k + 1] <= (size_t)t) /* the input that holds piece t */
        k++;
    size_t off = j->offs[k];
    const hpcz_array *a = j->c->in[k];
    size_t row = (size_t)a->nbytes / (size_t)j->outer, total = row * (size_t)j->outer;
    size_t b0 = ((size_t)t - j->pieces[k]) * CAT_PIECE, b1 = b0 + CAT_PIECE < total ? b0 + CAT_PIECE : total;
    while (b0 < b1) { /* within rows of a */
        size_t o = b0 / row, in = b0 % row, len = row - in < b1 - b0 ? row - in : b1 - b0;
        memcpy(j->y + o * j->orow + off + in, (const uint8_t *)a->data + b0, len);
        b0 += len;
    }
}

static hpcz_status k_concat(rt_ctx *c)
{
    hpcz_array *x0 = NULL;
    for (size_t i = 0; i < c->n_in && !x0; i++)
        x0 = c->in[i];
    if (!x0 || !rt_esize(x0->dtype))
        return rt_unsupported(c);
    int r = x0->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", c->opset < 4 ? 1 : 0), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    int64_t d[RT_MAX_RANK];
    memcpy(d, x0->dims, (size_t)r * sizeof *d);
    d[axis] = 0;
    for (size_t i = 0; i < c->n_in; i++) {
        hpcz_array *a = c->in[i];
        if (!a)
            continue;
        if (a->ndim != r || a->dtype != x0->dtype)
            return rt_bad(c, "inputs differ in rank or dtype");
        for (int k = 0; k < r; k++)
            if (k != axis && a->dims[k] != x0->dims[k])
                return rt_bad(c, "input %zu differs in dimension %d", i, k);
        d[axis] += a->dims[axis];
    }
    hpcz_array *y = rt_out(c, 0, x0->dtype, r, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    size_t es = rt_esize(x0->dtype);
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= d[k];
    for (int k = axis + 1; k < r; k++)
        inner *= d[k];
    size_t orow = (size_t)(d[axis] * inner) * es;
    if (y->nbytes >= 4 * CAT_PIECE && rt_threads() > 1 && c->n_in <= 64) {
        size_t pieces[65] = {0}, offs[64], off = 0;
        for (size_t i = 0; i < c->n_in; i++) {
            const hpcz_array *a = c->in[i];
            pieces[i + 1] = pieces[i] + (a ? ((size_t)a->nbytes + CAT_PIECE - 1) / CAT_PIECE : 0);
            offs[i] = off;
            off += a ? (size_t)(a->dims[axis] * inner) * es : 0;
        }
        cat_job j = {c, y->data, orow, outer, pieces, offs};
        rt_parallel_for((int64_t)pieces[c->n_in], cat_piece, &j);
        return HPCZ_OK;
    }
    size_t off = 0;
    for (size_t i = 0; i < c->n_in; i++) {
        hpcz_array *a = c->in[i];
        if (!a)
            continue;
        size_t row = (size_t)(a->dims[axis] * inner) * es;
        for (int64_t o = 0; o < outer; o++)
            memcpy((uint8_t *)y->data + (size_t)o * orow + off,
                   (const uint8_t *)a->data + (size_t)o * row, row);
        off += row;
    }
    return HPCZ_OK;
}

static hpcz_status k_split(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", 0), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    size_t no = c->n_out;
    int64_t sizes[64];
    if (no > 64)
        return rt_unsupported(c);
    int64_t ns = read_ints_since(c, 13, "split", 1, sizes, 64);
    if (ns == -1)
        return HPCZ_OK;
    if (ns < 0)
        return rt_bad(c, "split must be an int64 list of at most 64");
    int64_t len = x->dims[axis];
    if (ns == 0) {
        int64_t parts = rt_attr_i(c, "num_outputs", (int64_t)no);
        if (parts <= 0 || (size_t)parts != no)
            return rt_bad(c, "num_outputs differs from the outputs");
        int64_t chunk = (len + parts - 1) / parts;
        if (c->opset < 18 && len % parts)
            return rt_bad(c, "dimension does not split evenly");
        for (int64_t i = 0; i < parts; i++) {
            int64_t lo = i * chunk;
            sizes[i] = lo >= len ? 0 : (len - lo < chunk ? len - lo : chunk);
        }
        ns = parts;
    }
    if ((size_t)ns != no)
        return rt_bad(c, "split has %lld entries for %zu outputs", (long long)ns, no);
    int64_t tot = 0;
    for (int64_t i = 0; i < ns; i++)
        tot += sizes[i];
    if (tot != len)
        return rt_bad(c, "split sizes add up to %lld, not %lld", (long long)tot, (long long)len);
    hpcz_array *ys[64];
    for (size_t i = 0; i < no; i++) {
        int64_t d[RT_MAX_RANK];
        memcpy(d, x->dims, (size_t)r * sizeof *d);
        d[axis] = sizes[i];
        ys[i] = rt_out(c, i, x->dtype, r, d);
        if (!ys[i] && c->out[i])
            return c->err->status;
    }
    if (c->infer)
        return HPCZ_OK;
    size_t es = rt_esize(x->dtype);
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= x->dims[k];
    for (int k = axis + 1; k < r; k++)
        inner *= x->dims[k];
    size_t irow = (size_t)(len * inner) * es, off = 0;
    for (size_t i = 0; i < no; i++) {
        size_t row = (size_t)(sizes[i] * inner) * es;
        if (ys[i])
            for (int64_t o = 0; o < outer; o++)
                memcpy((uint8_t *)ys[i]->data + (size_t)o * row,
                       (const uint8_t *)x->data + (size_t)o * irow + off, row);
        off += row;
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Slice */

static hpcz_status k_slice(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int r = x->ndim;
    int64_t st[RT_MAX_RANK], en[RT_MAX_RANK], ax[RT_MAX_RANK], sp[RT_MAX_RANK];
    int64_t n, nax = -1, nsp = -1;
    if (c->opset < 10) {
        size_t a, b, k;
        const int64_t *s = rt_attr_ints(c, "starts", &a), *e = rt_attr_ints(c, "ends", &b);
        const int64_t *axs = rt_attr_ints(c, "axes", &k);
        if (!s || !e || a != b || a > RT_MAX_RANK || (axs && k != a))
            return rt_bad(c, "invalid starts/ends/axes");
        memcpy(st, s, a * sizeof *s);
        memcpy(en, e, a * sizeof *e);
        n = (int64_t)a;
        if (axs) {
            memcpy(ax, axs, k * sizeof *axs);
            nax = (int64_t)k;
        }
    } else {
        int64_t a = read_ints(c, 1, st, RT_MAX_RANK), b = read_ints(c, 2, en, RT_MAX_RANK);
        if (a == -1 || b == -1)
            return HPCZ_OK;
        if (rt_in(c, 3)) {
            nax = read_ints(c, 3, ax, RT_MAX_RANK);
            if (nax == -1)
                return HPCZ_OK;
        }
        if (rt_in(c, 4)) {
            nsp = read_ints(c, 4, sp, RT_MAX_RANK);
            if (nsp == -1)
                return HPCZ_OK;
        }
        if (a < 0 || b < 0 || a != b || nax < -1 || nsp < -1 || (nax >= 0 && nax != a) ||
            (nsp >= 0 && nsp != a))
            return rt_bad(c, "invalid starts/ends/axes/steps");
        n = a;
    }
    int64_t lo[RT_MAX_RANK], step[RT_MAX_RANK], d[RT_MAX_RANK];
    for (int i = 0; i < r; i++) {
        lo[i] = 0;
        step[i] = 1;
        d[i] = x->dims[i];
    }
    bool seen[RT_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int a = rt_axis(nax >= 0 ? ax[i] : i, r);
        if (a < 0 || seen[a])
            return rt_bad(c, "invalid axis");
        seen[a] = true;
        int64_t s = nsp >= 0 ? sp[i] : 1, dim = x->dims[a];
        if (s == 0)
            return rt_bad(c, "step 0");
        int64_t b = st[i], e = en[i];
        if (b < 0)
            b += dim;
        if (e < 0)
            e += dim;
        if (s > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            d[a] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            d[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        lo[a] = b;
        step[a] = s;
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, r, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t xs[RT_MAX_RANK], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    int64_t inner = r ? d[r - 1] : 1, rows = y->numel / inner;
    int64_t istep = r ? step[r - 1] : 1;
    for (int64_t row = 0; row < rows; row++) {
        int64_t rem = row, off = r ? lo[r - 1] * xs[r - 1] : 0;
        for (int k = r - 2; k >= 0; k--) {
            int64_t i = rem % d[k];
            rem /= d[k];
            off += (lo[k] + i * step[k]) * xs[k];
        }
        uint8_t *dst = (uint8_t *)y->data + (size_t)(row * inner) * es;
        const uint8_t *src = (const uint8_t *)x->data + (size_t)off * es;
        if (istep == 1)
            memcpy(dst, src, (size_t)inner * es);
        else
            for (int64_t i = 0; i < inner; i++)
                memcpy(dst + (size_t)i * es, src + (ptrdiff_t)(i * istep) * (ptrdiff_t)es, es);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Gather family */

static hpcz_status k_gather(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1);
    if (!rt_esize(x->dtype) || (idx->dtype != HPCZ_DTYPE_INT64 && idx->dtype != HPCZ_DTYPE_INT32))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", 0), r);
    if (axis < 0 || idx->ndim + r - 1 > RT_MAX_RANK)
        return rt_bad(c, "axis out of range");
    int64_t d[RT_MAX_RANK];
    int nd = 0;
    for (int k = 0; k < axis; k++)
        d[nd++] = x->dims[k];
    for (int k = 0; k < idx->ndim; k++)
        d[nd++] = idx->dims[k];
    for (int k = axis + 1; k < r; k++)
        d[nd++] = x->dims[k];
    hpcz_array *y = rt_out(c, 0, x->dtype, nd, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t outer = 1, inner = 1, len = x->dims[axis];
    for (int k = 0; k < axis; k++)
        outer *= x->dims[k];
    for (int k = axis + 1; k < r; k++)
        inner *= x->dims[k];
    int64_t ni = idx->numel;
    size_t blk = (size_t)inner * es;
    for (int64_t j = 0; j < ni; j++) {
        int64_t i = rt_int_at(idx, j);
        if (i < -len || i >= len)
            return rt_bad(c, "index %lld out of range [-%lld, %lld)", (long long)i,
                          (long long)len, (long long)len);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t i = rt_int_at(idx, j);
            if (i < 0)
                i += len;
            memcpy((uint8_t *)y->data + (size_t)(o * ni + j) * blk,
                   (const uint8_t *)x->data + (size_t)(o * len + i) * blk, blk);
        }
    return HPCZ_OK;
}

/* GatherElements/ScatterElements: the offset in x (strides xs) of element o
 * of idx, whose coordinate along axis is replaced by the index it holds;
 * -1 when that index is out of range. */
static int64_t elements_offset(const hpcz_array *x, const hpcz_array *idx, const int64_t *xs, int axis,
                               int64_t o)
{
    int64_t rem = o, off = 0;
    for (int k = x->ndim - 1; k >= 0; k--) {
        int64_t i = rem % idx->dims[k];
        rem /= idx->dims[k];
        if (k == axis) {
            i = rt_int_at(idx, o);
            if (i < 0)
                i += x->dims[k];
            if (i < 0 || i >= x->dims[k])
                return -1;
        }
        off += i * xs[k];
    }
    return off;
}

static hpcz_status k_gather_elements(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1);
    if (!rt_esize(x->dtype) || idx->ndim != x->ndim)
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", 0), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    hpcz_array *y = rt_out(c, 0, x->dtype, idx->ndim, idx->dims);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t xs[RT_MAX_RANK], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t off = elements_offset(x, idx, xs, axis, o);
        if (off < 0)
            return rt_bad(c, "index out of range");
        memcpy((uint8_t *)y->data + (size_t)o * es, (const uint8_t *)x->data + (size_t)off * es, es);
    }
    return HPCZ_OK;
}

static hpcz_status k_gather_nd(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1);
    if (!rt_esize(x->dtype) || idx->dtype != HPCZ_DTYPE_INT64 || idx->ndim < 1)
        return rt_unsupported(c);
    int64_t b = rt_attr_i(c, "batch_dims", 0);
    int64_t last = idx->dims[idx->ndim - 1];
    if (b < 0 || b >= idx->ndim || b + last > x->ndim)
        return rt_bad(c, "invalid batch_dims or index depth");
    int64_t d[RT_MAX_RANK];
    int nd = 0;
    for (int k = 0; k < idx->ndim - 1; k++)
        d[nd++] = idx->dims[k];
    for (int k = (int)(b + last); k < x->ndim; k++)
        d[nd++] = x->dims[k];
    hpcz_array *y = rt_out(c, 0, x->dtype, nd, d);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t batch = 1, slice = 1;
    for (int k = 0; k < b; k++)
        batch *= x->dims[k];
    for (int k = (int)(b + last); k < x->ndim; k++)
        slice *= x->dims[k];
    int64_t nidx = idx->numel / (last ? last : 1) / batch;
    int64_t xbatch = x->numel / (batch ? batch : 1);
    const int64_t *ip = idx->data;
    for (int64_t bb = 0; bb < batch; bb++)
        for (int64_t j = 0; j < nidx; j++) {
            const int64_t *t = ip + (bb * nidx + j) * last;
            int64_t off = 0;
            for (int64_t k = 0; k < last; k++) {
                int64_t dim = x->dims[b + k], v = t[k] < 0 ? t[k] + dim : t[k];
                if (v < 0 || v >= dim)
                    return rt_bad(c, "index out of range");
                off = off * dim + v;
            }
            memcpy((uint8_t *)y->data + (size_t)((bb * nidx + j) * slice) * es,
                   (const uint8_t *)x->data + (size_t)(bb * xbatch + off * slice) * es,
                   (size_t)slice * es);
        }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Scatter */

static double scatter_combine(const char *red, double a, double b)
{
    if (!strcmp(red, "add"))
        return a + b;
    if (!strcmp(red, "mul"))
        return a * b;
    if (!strcmp(red, "max"))
        return a > b ? a : b;
    if (!strcmp(red, "min"))
        return a < b ? a : b;
    return b;
}

static hpcz_status k_scatter_elements(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1), *u = rt_in(c, 2);
    if (!rt_esize(x->dtype) || idx->ndim != x->ndim || !rt_same_shape(idx, u))
        return rt_unsupported(c);
    int r = x->ndim;
    int axis = rt_axis(rt_attr_i(c, "axis", 0), r);
    if (axis < 0)
        return rt_bad(c, "axis out of range");
    char red[16];
    rt_attr_s(c, "reduction", "none", red, sizeof red);
    hpcz_array *y = out_like(c, 0, x);
    if (!y || c->infer)
        RET_OUT(y);
    memcpy(y->data, x->data, x->nbytes);
    int64_t xs[RT_MAX_RANK], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int64_t o = 0; o < u->numel; o++) {
        int64_t off = elements_offset(x, idx, xs, axis, o);
        if (off < 0)
            return rt_bad(c, "index out of range");
        if (rt_is_int(x->dtype) && !strcmp(red, "none"))
            rt_store_i(y->data, y->dtype, off, rt_load_i(u->data, u->dtype, o));
        else
            rt_store_d(y->data, y->dtype, off,
                       scatter_combine(red, rt_load_d(y->data, y->dtype, off),
                                       rt_load_d(u->data, u->dtype, o)));
    }
    return HPCZ_OK;
}

static hpcz_status k_scatter_nd(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *idx = rt_in(c, 1), *u = rt_in(c, 2);
    if (!rt_esize(x->dtype) || idx->dtype != HPCZ_DTYPE_INT64 || idx->ndim < 1)
        return rt_unsupported(c);
    int64_t last = idx->dims[idx->ndim - 1];
    if (last > x->ndim)
        return rt_bad(c, "index depth beyond the data rank");
    char red[16];
    rt_attr_s(c, "reduction", "none", red, sizeof red);
    hpcz_array *y = out_like(c, 0, x);
    if (!y || c->infer)
        RET_OUT(y);
    memcpy(y->data, x->data, x->nbytes);
    int64_t slice = 1;
    for (int k = (int)last; k < x->ndim; k++)
        slice *= x->dims[k];
    int64_t n = last ? idx->numel / last : 0;
    const int64_t *ip = idx->data;
    for (int64_t j = 0; j < n; j++) {
        int64_t off = 0;
        for (int64_t k = 0; k < last; k++) {
            int64_t dim = x->dims[k], v = ip[j * last + k] < 0 ? ip[j * last + k] + dim : ip[j * last + k];
            if (v < 0 || v >= dim)
                return rt_bad(c, "index out of range");
            off = off * dim + v;
        }
        for (int64_t q = 0; q < slice; q++)
            rt_store_d(y->data, y->dtype, off * slice + q,
                       scatter_combine(red, rt_load_d(y->data, y->dtype, off * slice + q),
                                       rt_load_d(u->data, u->dtype, j * slice + q)));
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Expand, Tile */

static hpcz_status k_expand(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int64_t sh[RT_MAX_RANK];
    int64_t n = read_ints(c, 1, sh, RT_MAX_RANK);
    if (n == -1)
        return HPCZ_OK;
    if (n < 0)
        return rt_bad(c, "shape must be int64");
    hpcz_array t = {.ndim = (int)n};
    memcpy(t.dims, sh, (size_t)n * sizeof *sh);
    const hpcz_array *ins[2] = {x, &t};
    int nd;
    int64_t d[RT_MAX_RANK];
    if (!rt_broadcast_shape(ins, 2, &nd, d))
        return rt_bad(c, "shape does not broadcast");
    hpcz_array *y = rt_out(c, 0, x->dtype, nd, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    const hpcz_array *one[1] = {x};
    rt_bcast bc;
    rt_bcast_init(&bc, y, one, 1);
    size_t es = rt_esize(x->dtype);
    for (int64_t r = 0; r < bc.rows; r++) {
        int64_t off[1];
        rt_bcast_row(&bc, r, off);
        uint8_t *dst = (uint8_t *)y->data + (size_t)(r * bc.inner) * es;
        const uint8_t *src = (const uint8_t *)x->data + (size_t)off[0] * es;
        if (bc.istr[0])
            memcpy(dst, src, (size_t)bc.inner * es);
        else
            for (int64_t i = 0; i < bc.inner; i++)
                memcpy(dst + (size_t)i * es, src, es);
    }
    return HPCZ_OK;
}

static hpcz_status k_tile(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int64_t rep[RT_MAX_RANK];
    int64_t n = read_ints(c, 1, rep, RT_MAX_RANK);
    if (n == -1)
        return HPCZ_OK;
    if (n != x->ndim)
        return rt_bad(c, "repeats must have one entry per dimension");
    int r = x->ndim;
    int64_t d[RT_MAX_RANK];
    for (int k = 0; k < r; k++) {
        if (rep[k] < 0)
            return rt_bad(c, "negative repeat");
        d[k] = x->dims[k] * rep[k];
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, r, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t xs[RT_MAX_RANK], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t rem = o, off = 0;
        for (int k = r - 1; k >= 0; k--) {
            int64_t i = rem % d[k];
            rem /= d[k];
            off += (i % x->dims[k]) * xs[k];
        }
        memcpy((uint8_t *)y->data + (size_t)o * es, (const uint8_t *)x->data + (size_t)off * es, es);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Pad */

static hpcz_status k_pad(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    int r = x->ndim;
    int64_t pads[2 * RT_MAX_RANK], np;
    double cval = 0;
    int64_t axes[RT_MAX_RANK], nax = -1;
    if (c->opset < 11) {
        size_t n;
        const int64_t *p = rt_attr_ints(c, "pads", &n);
        if (!p || n != (size_t)2 * r)
            return rt_bad(c, "pads must have 2*rank entries");
        memcpy(pads, p, n * sizeof *p);
        np = (int64_t)n;
        cval = rt_attr_f(c, "value", 0);
    } else {
        np = read_ints(c, 1, pads, 2 * RT_MAX_RANK);
        if (np == -1)
            return HPCZ_OK;
        hpcz_array *cv = rt_in(c, 2);
        if (cv && cv->numel) {
            if (!rt_need(c, 2))
                return HPCZ_OK;
            cval = rt_load_d(cv->data, cv->dtype, 0);
        }
        if (rt_in(c, 3)) {
            nax = read_ints(c, 3, axes, RT_MAX_RANK);
            if (nax == -1)
                return HPCZ_OK;
        }
    }
    int64_t pb[RT_MAX_RANK] = {0}, pe[RT_MAX_RANK] = {0};
    if (nax >= 0) {
        if (np != 2 * nax)
            return rt_bad(c, "pads must have 2*len(axes) entries");
        for (int64_t i = 0; i < nax; i++) {
            int a = rt_axis(axes[i], r);
            if (a < 0)
                return rt_bad(c, "invalid axis");
            pb[a] = pads[i];
            pe[a] = pads[nax + i];
        }
    } else {
        if (np != 2 * r)
            return rt_bad(c, "pads must have 2*rank entries");
        for (int i = 0; i < r; i++) {
            pb[i] = pads[i];
            pe[i] = pads[r + i];
        }
    }
    char mode[16];
    rt_attr_s(c, "mode", "constant", mode, sizeof mode);
    int m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2
            : !strcmp(mode, "wrap") ? 3 : -1;
    if (m < 0)
        return rt_unsupported(c);
    int64_t d[RT_MAX_RANK];
    for (int i = 0; i < r; i++) {
        d[i] = x->dims[i] + pb[i] + pe[i];
        if (d[i] < 0)
            return rt_bad(c, "negative output dimension");
        if (m == 1 && (pb[i] >= x->dims[i] || pe[i] >= x->dims[i]) && (pb[i] > 0 || pe[i] > 0))
            return rt_unsupported(c);
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, r, d);
    if (!y || c->infer || !y->numel)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    uint8_t cbytes[16] = {0};
    rt_store_d(cbytes, x->dtype, 0, cval);
    int64_t xs[RT_MAX_RANK], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t rem = o, off = 0;
        bool outside = false;
        for (int k = r - 1; k >= 0; k--) {
            int64_t i = rem % d[k] - pb[k], n = x->dims[k];
            rem /= d[k];
            if (i < 0 || i >= n) {
                if (m == 0 || n == 0) {
                    outside = true;
                    continue;
                }
                if (m == 1) {
                    int64_t period = 2 * (n - 1);
                    if (period == 0)
                        i = 0;
                    else {
                        i = ((i % period) + period) % period;
                        if (i >= n)
                            i = period - i;
                    }
                } else if (m == 2) {
                    i = i < 0 ? 0 : n - 1;
                } else {
                    i = ((i % n) + n) % n;
                }
            }
            off += i * xs[k];
        }
        memcpy((uint8_t *)y->data + (size_t)o * es,
               outside ? cbytes : (const uint8_t *)x->data + (size_t)off * es, es);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- constants */

static hpcz_status array_of_tensor(rt_ctx *c, hpcz_tensor *t)
{
    if (!rt_esize(t->dtype) || t->ndim > RT_MAX_RANK)
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, t->dtype, t->ndim, t->dims);
    if (!y || c->infer)
        RET_OUT(y);
    void *d = hpcz_tensor_data(t, c->err);
    if (!d)
        return c->err->status;
    if (t->nbytes < y->nbytes)
        return rt_bad(c, "tensor payload too short");
    memcpy(y->data, d, y->nbytes);
    return HPCZ_OK;
}

static hpcz_status k_constant(rt_ctx *c)
{
    const hpcz_node *n = c->node;
    for (size_t i = 0; i < n->n_attrs; i++) {
        const hpcz_attr *a = &n->attrs[i];
        if (!strcmp(a->name, "value") && a->type == HPCZ_ATTR_TENSOR && a->t)
            return array_of_tensor(c, a->t);
        if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_int")) {
            bool f = a->type == HPCZ_ATTR_FLOAT;
            hpcz_array *y = rt_out(c, 0, f ? HPCZ_DTYPE_FLOAT : HPCZ_DTYPE_INT64, 0, NULL);
            if (!y || c->infer)
                RET_OUT(y);
            if (f)
                *(float *)y->data = a->f;
            else
                *(int64_t *)y->data = a->i;
            return HPCZ_OK;
        }
        if (!strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints")) {
            bool f = a->type == HPCZ_ATTR_FLOATS;
            int64_t len = (int64_t)a->n;
            hpcz_array *y = rt_out(c, 0, f ? HPCZ_DTYPE_FLOAT : HPCZ_DTYPE_INT64, 1, &len);
            if (!y || c->infer)
                RET_OUT(y);
            if (len)
                memcpy(y->data, f ? (const void *)a->floats : (const void *)a->ints, y->nbytes);
            return HPCZ_OK;
        }
    }
    return rt_unsupported(c);
}

static hpcz_status k_constant_of_shape(rt_ctx *c)
{
    int64_t sh[RT_MAX_RANK];
    int64_t n = read_ints(c, 0, sh, RT_MAX_RANK);
    if (n == -1)
        return HPCZ_OK;
    if (n < 0)
        return rt_bad(c, "shape must be int64 of rank <= %d", RT_MAX_RANK);
    const hpcz_attr *a = hpcz_node_attr(c->node, "value");
    int dt = HPCZ_DTYPE_FLOAT;
    const void *val = NULL;
    if (a && a->type == HPCZ_ATTR_TENSOR && a->t) {
        dt = a->t->dtype;
        if (a->t->numel != 1 || !rt_esize(dt))
            return rt_unsupported(c);
        val = hpcz_tensor_data(a->t, c->err);
        if (!val)
            return c->err->status;
    }
    for (int64_t i = 0; i < n; i++)
        if (sh[i] < 0)
            return rt_bad(c, "negative dimension");
    hpcz_array *y = rt_out(c, 0, dt, (int)n, sh);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(dt);
    if (!val) {
        memset(y->data, 0, y->nbytes);
        return HPCZ_OK;
    }
    for (int64_t i = 0; i < y->numel; i++)
        memcpy((uint8_t *)y->data + (size_t)i * es, val, es);
    return HPCZ_OK;
}

static hpcz_status k_range(rt_ctx *c)
{
    hpcz_array *s = rt_in(c, 0), *l = rt_in(c, 1), *d = rt_in(c, 2);
    if (!rt_need(c, 0) || !rt_need(c, 1) || !rt_need(c, 2))
        return c->need_data ? HPCZ_OK : rt_unsupported(c);
    int dt = s->dtype;
    if (!(RT_TNUM & RT_T(dt)) || l->dtype != dt || d->dtype != dt)
        return rt_unsupported(c);
    int64_t n;
    if (rt_is_int(dt)) {
        int64_t a = rt_load_i(s->data, dt, 0), b = rt_load_i(l->data, dt, 0),
                st = rt_load_i(d->data, dt, 0);
        if (st == 0)
            return rt_bad(c, "delta is 0");
        __int128 span = (__int128)b - a, q = span / st;
        q += (span % st) != 0 && (span > 0) == (st > 0);
        if (q > HPCZ_MAX_NUMEL)
            return rt_bad(c, "the range would have more than 2^40 elements");
        n = (int64_t)q;
    } else {
        double a = rt_load_d(s->data, dt, 0), b = rt_load_d(l->data, dt, 0),
               st = rt_load_d(d->data, dt, 0);
        if (st == 0)
            return rt_bad(c, "delta is 0");
        double q = ceil((b - a) / st);
        if (isnan(q))
            return rt_bad(c, "start, limit or delta is NaN or Inf");
        if (q > (double)HPCZ_MAX_NUMEL)
            return rt_bad(c, "the range would have more than 2^40 elements");
        n = q > 0 ? (int64_t)q : 0;
    }
    if (n < 0)
        n = 0;
    hpcz_array *y = rt_out(c, 0, dt, 1, &n);
    if (!y || c->infer)
        RET_OUT(y);
    for (int64_t i = 0; i < n; i++) {
        if (rt_is_int(dt))
            rt_store_i(y->data, dt, i,
                       rt_load_i(s->data, dt, 0) + i * rt_load_i(d->data, dt, 0));
        else
            rt_store_d(y->data, dt, i, rt_load_d(s->data, dt, 0) + (double)i * rt_load_d(d->data, dt, 0));
    }
    return HPCZ_OK;
}

static hpcz_status k_eyelike(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (x->ndim != 2)
        return rt_bad(c, "input must be 2-D");
    int dt = (int)rt_attr_i(c, "dtype", x->dtype);
    if (!rt_esize(dt))
        return rt_unsupported(c);
    int64_t k = rt_attr_i(c, "k", 0);
    hpcz_array *y = rt_out(c, 0, dt, 2, x->dims);
    if (!y || c->infer)
        RET_OUT(y);
    memset(y->data, 0, y->nbytes);
    for (int64_t i = 0; i < x->dims[0]; i++) {
        int64_t j = i + k;
        if (j >= 0 && j < x->dims[1])
            rt_store_d(y->data, dt, i * x->dims[1] + j, 1);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- Cast */

RT_HOT static void cast_i32_f32(const int32_t *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)x[i];
}

static bool castable(int dt)
{
    return (RT_TALL | RT_T(HPCZ_DTYPE_BFLOAT16)) & RT_T(dt);
}

static hpcz_status do_cast(rt_ctx *c, int to)
{
    hpcz_array *x = rt_in(c, 0);
    if (!castable(x->dtype) || !castable(to))
        return rt_unsupported(c);
    hpcz_array *y = rt_out(c, 0, to, x->ndim, x->dims);
    if (!y || c->infer)
        RET_OUT(y);
    int64_t n = x->numel;
    if (x->dtype == to) {
        memcpy(y->data, x->data, x->nbytes);
        return HPCZ_OK;
    }
    if (x->dtype == HPCZ_DTYPE_FLOAT && to == HPCZ_DTYPE_FLOAT16) {
        rt_f2h_n(x->data, y->data, n);
        return HPCZ_OK;
    }
    if (x->dtype == HPCZ_DTYPE_FLOAT16 && to == HPCZ_DTYPE_FLOAT) {
        rt_h2f_n(x->data, y->data, n);
        return HPCZ_OK;
    }
    if (x->dtype == HPCZ_DTYPE_DOUBLE && to == HPCZ_DTYPE_FLOAT16) {
        /* round once, from double (numpy does the same) */
        for (int64_t i = 0; i < n; i++) {
            double v = ((const double *)x->data)[i];
            float f = (float)v;
            uint16_t h = rt_f2h(f);
            /* a float rounding that lands exactly on a half-way point can
             * double-round: correct by comparing distances in double */
            double hv = rt_h2f(h);
            uint16_t alt = (uint16_t)(hv < v ? h + ((h & 0x8000) ? -1 : 1) : h - ((h & 0x8000) ? -1 : 1));
            if ((h & 0x7c00) != 0x7c00 && (alt & 0x7c00) != 0x7c00 &&
                fabs((double)rt_h2f(alt) - v) < fabs(hv - v))
                h = alt;
            ((uint16_t *)y->data)[i] = h;
        }
        return HPCZ_OK;
    }
    /* the casts of quantized graphs (MatMulInteger's int32 result, 8-bit
     * tensors to float): typed loops, exact like the generic path */
    if (to == HPCZ_DTYPE_FLOAT && x->dtype == HPCZ_DTYPE_INT32) {
        cast_i32_f32(x->data, y->data, n);
        return HPCZ_OK;
    }
    if (to == HPCZ_DTYPE_FLOAT && x->dtype == HPCZ_DTYPE_INT64) {
        /* attention masks; through double as the generic path rounds */
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = (float)(double)((const int64_t *)x->data)[i];
        return HPCZ_OK;
    }
    if (to == HPCZ_DTYPE_FLOAT && x->dtype == HPCZ_DTYPE_UINT8) {
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = (float)((const uint8_t *)x->data)[i];
        return HPCZ_OK;
    }
    if (to == HPCZ_DTYPE_FLOAT && x->dtype == HPCZ_DTYPE_INT8) {
        for (int64_t i = 0; i < n; i++)
            ((float *)y->data)[i] = (float)((const int8_t *)x->data)[i];
        return HPCZ_OK;
    }
    bool ints_in = rt_is_int(x->dtype), ints_out = rt_is_int(to);
    for (int64_t i = 0; i < n; i++) {
        if (ints_in && ints_out)
            rt_store_i(y->data, to, i, rt_load_i(x->data, x->dtype, i));
        else if (to == HPCZ_DTYPE_BOOL)
            ((uint8_t *)y->data)[i] = rt_load_d(x->data, x->dtype, i) != 0;
        else if (ints_in && to == HPCZ_DTYPE_UINT64)
            rt_store_i(y->data, to, i, rt_load_i(x->data, x->dtype, i));
        else
            rt_store_d(y->data, to, i, rt_load_d(x->data, x->dtype, i));
    }
    return HPCZ_OK;
}

static hpcz_status k_cast(rt_ctx *c)
{
    return do_cast(c, (int)rt_attr_i(c, "to", 0));
}

static hpcz_status k_castlike(rt_ctx *c)
{
    hpcz_array *t = rt_in(c, 1);
    return do_cast(c, t->dtype);
}

/* ---------------------------------------------------------------- DepthToSpace */

static hpcz_status space_depth(rt_ctx *c, bool to_space)
{
    hpcz_array *x = rt_in(c, 0);
    if (x->ndim != 4 || !rt_esize(x->dtype))
        return rt_unsupported(c);
    int64_t b = rt_attr_i(c, "blocksize", 0);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (b <= 0 || (to_space && C % (b * b)) || (!to_space && (H % b || W % b)))
        return rt_bad(c, "invalid blocksize");
    bool crd = rt_attr_is(c, "mode", "DCR", "CRD");
    int64_t d[4] = {N, to_space ? C / (b * b) : C * b * b, to_space ? H * b : H / b,
                    to_space ? W * b : W / b};
    hpcz_array *y = rt_out(c, 0, x->dtype, 4, d);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t w = o % d[3], h = (o / d[3]) % d[2], ch = (o / (d[3] * d[2])) % d[1],
                n = o / (d[3] * d[2] * d[1]);
        int64_t src;
        if (to_space) {
            int64_t bh = h % b, bw = w % b, ih = h / b, iw = w / b;
            int64_t ic = crd ? ch * b * b + bh * b + bw : (bh * b + bw) * d[1] + ch;
            src = ((n * C + ic) * H + ih) * W + iw;
        } else {
            int64_t oc = d[1] / (b * b) ? 0 : 0;
            (void)oc;
            int64_t bb = ch / C, ic = ch % C, bh = bb / b, bw = bb % b;
            src = ((n * C + ic) * H + h * b + bh) * W + w * b + bw;
        }
        memcpy((uint8_t *)y->data + (size_t)o * es, (const uint8_t *)x->data + (size_t)src * es, es);
    }
    return HPCZ_OK;
}

static hpcz_status k_d2s(rt_ctx *c) { return space_depth(c, true); }
static hpcz_status k_s2d(rt_ctx *c) { return space_depth(c, false); }

/* ---------------------------------------------------------------- Trilu, OneHot */

static hpcz_status k_trilu(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *kk = rt_in(c, 1);
    if (!rt_esize(x->dtype) || x->ndim < 2)
        return rt_unsupported(c);
    hpcz_array *y = out_like(c, 0, x);
    if (!y || c->infer)
        RET_OUT(y);
    int64_t k = kk && kk->numel ? rt_int_at(kk, 0) : 0;
    bool upper = rt_attr_i(c, "upper", 1) != 0;
    int64_t R = x->dims[x->ndim - 2], C = x->dims[x->ndim - 1];
    size_t es = rt_esize(x->dtype);
    memcpy(y->data, x->data, x->nbytes);
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t j = o % C, i = (o / C) % R;
        bool keep = upper ? j - i >= k : j - i <= k;
        if (!keep)
            memset((uint8_t *)y->data + (size_t)o * es, 0, es);
    }
    return HPCZ_OK;
}

static hpcz_status k_onehot(rt_ctx *c)
{
    hpcz_array *idx = rt_in(c, 0), *dep = rt_in(c, 1), *vals = rt_in(c, 2);
    if (!rt_need(c, 1))
        return HPCZ_OK;
    if (!rt_esize(vals->dtype) || vals->numel != 2 || idx->ndim + 1 > RT_MAX_RANK)
        return rt_unsupported(c);
    int64_t depth = (int64_t)rt_load_d(dep->data, dep->dtype, 0);
    int r = idx->ndim + 1;
    int axis = rt_axis(rt_attr_i(c, "axis", -1), r);
    if (axis < 0 || depth < 0)
        return rt_bad(c, "invalid axis or depth");
    int64_t d[RT_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++)
        d[i] = i == axis ? depth : idx->dims[k++];
    hpcz_array *y = rt_out(c, 0, vals->dtype, r, d);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(vals->dtype);
    int64_t inner = 1;
    for (int i = axis + 1; i < r; i++)
        inner *= d[i];
    for (int64_t o = 0; o < y->numel; o++) {
        int64_t in = o % inner, k = (o / inner) % depth, out = o / (inner * depth);
        int64_t v = (int64_t)rt_load_d(idx->data, idx->dtype, out * inner + in);
        if (v < 0)
            v += depth;
        memcpy((uint8_t *)y->data + (size_t)o * es, (const uint8_t *)vals->data + (v == k ? es : 0), es);
    }
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- NonZero, Compress */

static hpcz_status k_nonzero(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0);
    if (!rt_esize(x->dtype))
        return rt_unsupported(c);
    if (!rt_need(c, 0))
        return HPCZ_OK;
    int64_t cnt = 0;
    for (int64_t i = 0; i < x->numel; i++)
        cnt += rt_load_d(x->data, x->dtype, i) != 0;
    int64_t d[2] = {x->ndim, cnt};
    hpcz_array *y = rt_out(c, 0, HPCZ_DTYPE_INT64, 2, d);
    if (!y || c->infer)
        RET_OUT(y);
    int64_t k = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (rt_load_d(x->data, x->dtype, i) == 0)
            continue;
        int64_t rem = i;
        for (int dd = x->ndim - 1; dd >= 0; dd--) {
            ((int64_t *)y->data)[dd * cnt + k] = rem % x->dims[dd];
            rem /= x->dims[dd];
        }
        k++;
    }
    return HPCZ_OK;
}

static hpcz_status k_compress(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *cond = rt_in(c, 1);
    if (!rt_esize(x->dtype) || cond->dtype != HPCZ_DTYPE_BOOL)
        return rt_unsupported(c);
    if (!rt_need(c, 1))
        return HPCZ_OK;
    const hpcz_attr *aa = hpcz_node_attr(c->node, "axis");
    int axis = aa ? rt_axis(aa->i, x->ndim) : -1;
    if (aa && axis < 0)
        return rt_bad(c, "axis out of range");
    int64_t len = axis < 0 ? x->numel : x->dims[axis];
    const uint8_t *cd = cond->data;
    int64_t cnt = 0;
    for (int64_t i = 0; i < cond->numel && i < len; i++)
        cnt += cd[i] != 0;
    int64_t d[RT_MAX_RANK];
    int nd;
    if (axis < 0) {
        nd = 1;
        d[0] = cnt;
    } else {
        nd = x->ndim;
        memcpy(d, x->dims, (size_t)nd * sizeof *d);
        d[axis] = cnt;
    }
    hpcz_array *y = rt_out(c, 0, x->dtype, nd, d);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t inner = 1, outer = 1;
    if (axis >= 0) {
        for (int k = axis + 1; k < x->ndim; k++)
            inner *= x->dims[k];
        for (int k = 0; k < axis; k++)
            outer *= x->dims[k];
    } else {
        outer = 1;
    }
    size_t blk = (size_t)inner * es;
    int64_t k = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < cond->numel && i < len; i++)
            if (cd[i])
                memcpy((uint8_t *)y->data + (size_t)(k++) * blk,
                       (const uint8_t *)x->data + (size_t)(o * len + i) * blk, blk);
    return HPCZ_OK;
}

/* ---------------------------------------------------------------- ReverseSequence */

static hpcz_status k_reverse_sequence(rt_ctx *c)
{
    hpcz_array *x = rt_in(c, 0), *sl = rt_in(c, 1);
    if (!rt_esize(x->dtype) || x->ndim < 2)
        return rt_unsupported(c);
    int ba = (int)rt_attr_i(c, "batch_axis", 1), ta = (int)rt_attr_i(c, "time_axis", 0);
    if ((ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return rt_bad(c, "invalid axes");
    hpcz_array *y = out_like(c, 0, x);
    if (!y || c->infer)
        RET_OUT(y);
    size_t es = rt_esize(x->dtype);
    int64_t inner = x->numel / (x->dims[0] * x->dims[1]);
    size_t blk = (size_t)inner * es;
    for (int64_t i0 = 0; i0 < x->dims[0]; i0++)
        for (int64_t i1 = 0; i1 < x->dims[1]; i1++) {
            int64_t b = ba == 0 ? i0 : i1, t = ta == 0 ? i0 : i1;
            int64_t len = rt_int_at(sl, b);
            int64_t st = t < len ? len - 1 - t : t;
            int64_t s0 = ta == 0 ? st : i0, s1 = ta == 1 ? st : i1;
            memcpy((uint8_t *)y->data + (size_t)(i0 * x->dims[1] + i1) * blk,
                   (const uint8_t *)x->data + (size_t)(s0 * x->dims[1] + s1) * blk, blk);
        }
    return HPCZ_OK;
}

static const rt_op ops[] = {
    {"", "Shape", 1, 0, RT_SHAPE_ONLY, k_shape, NULL},
    {"", "Size", 1, 0, RT_SHAPE_ONLY, k_size, NULL},
    {"", "Reshape", 1, 0, 0, k_reshape, NULL},
    {"", "Flatten", 1, 0, 0, k_flatten, NULL},
    {"", "Squeeze", 1, 0, 0, k_squeeze, NULL},
    {"", "Unsqueeze", 1, 0, 0, k_unsqueeze, NULL},
    {"", "Identity", 1, 0, 0, k_identity, NULL},
    {"", "Dropout", 1, 0, 0, k_dropout, dropout_ok},
    {"", "Transpose", 1, 0, 0, k_transpose, NULL},
    {"", "Concat", 1, 0, 0, k_concat, NULL},
    {"", "Split", 2, 0, 0, k_split, NULL},
    {"", "Slice", 1, 0, 0, k_slice, NULL},
    {"", "Gather", 1, 0, 0, k_gather, NULL},
    {"", "GatherElements", 11, 0, 0, k_gather_elements, NULL},
    {"", "GatherND", 11, 0, 0, k_gather_nd, NULL},
    {"", "ScatterElements", 11, 0, 0, k_scatter_elements, NULL},
    {"", "ScatterND", 11, 0, 0, k_scatter_nd, NULL},
    {"", "Expand", 8, 0, 0, k_expand, NULL},
    {"", "Tile", 6, 0, 0, k_tile, NULL},
    {"", "Pad", 2, 0, 0, k_pad, NULL},
    {"", "Constant", 1, 0, 0, k_constant, NULL},
    {"", "ConstantOfShape", 9, 0, 0, k_constant_of_shape, NULL},
    {"", "Range", 11, 0, 0, k_range, NULL},
    {"", "EyeLike", 9, 0, 0, k_eyelike, NULL},
    {"", "Cast", 6, 0, 0, k_cast, NULL},
    {"", "CastLike", 15, 0, 0, k_castlike, NULL},
    {"", "DepthToSpace", 1, 0, 0, k_d2s, NULL},
    {"", "SpaceToDepth", 1, 0, 0, k_s2d, NULL},
    {"", "Trilu", 14, 0, 0, k_trilu, NULL},
    {"", "OneHot", 9, 0, 0, k_onehot, NULL},
    {"", "NonZero", 9, 0, 0, k_nonzero, NULL},
    {"", "Compress", 9, 0, 0, k_compress, NULL},
    {"", "ReverseSequence", 10, 0, 0, k_reverse_sequence, NULL},
};

const rt_op_table rt_ops_shape = {ops, HPCZ_ARRAY_SIZE(ops)};
