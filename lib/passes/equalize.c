/*
 * equalize.c - cross-layer equalization (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction").
 *
 * For two layers W1 -> f -> W2 where f is positive-homogeneous per channel
 * (f(x / s) = f(x) / s for s > 0: Relu, LeakyRelu, PRelu, Identity, a Mul or
 * Div by a constant, an Add, Sub, Max or Min of a constant once that
 * constant is divided by s too) and W2 is the only reader, output channel i
 * of W1 (and its bias) is divided by s_i and input channel i of W2
 * multiplied by it: the model computes the same function. With
 * s_i = sqrt(r1_i / r2_i) (r: the channel's weight range) both ranges become
 * sqrt(r1_i r2_i), so no channel of either layer is left with a few levels
 * of a shared scale, and the activation between them is evened out the same
 * way. A depthwise convolution between two pointwise ones belongs to both
 * pairs (its channel i is both the input and the output channel i); the
 * pairs are swept in turn until the scales stop moving. BatchNormalization
 * must be folded first (fold-bn).
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>

static const hpcz_pass_opt opts[] = {
    {"iterations", HPCZ_OPT_INT, "20", "sweeps over the layer pairs at most (stops earlier once no scale moves by 1e-3)",
     NULL, 1, 1000},
    {"max-scale", HPCZ_OPT_FLOAT, "1e3", "bound on one channel's total scale and its inverse", NULL, 1, 1e6},
    {0},
};

/* A layer with constant float weights, and how its channels lie in them. */
typedef struct eq_layer {
    hpcz_node *n;
    float *w, *b;     /* bound (writable) weights and bias (b may be NULL) */
    int conv;         /* Conv: W [Co, Ci/group, k...]; else a matrix [K, N] or [N, K] */
    int trans;        /* matrix stored [N, K] (Gemm transB) */
    int64_t co, ci;   /* output and input channels */
    int64_t group, inner; /* Conv: group, kernel elements per (output, input) pair */
} eq_layer;

/* A pair W1 -> chain -> W2 over c channels. */
typedef struct eq_pair {
    eq_layer a, b;
    hpcz_node *chain[8];
    size_t n_chain;
    int64_t c;
    int rank;     /* Conv: rank of the tensor between (channel axis 1); 0: matrices (last axis) */
    double *total; /* scale each channel of the tensor between was divided by */
} eq_pair;

static bool is_op(const hpcz_node *n, const char *op)
{
    return !strcmp(n->op_type, op) && (!n->domain || !*n->domain);
}

static hpcz_tensor *float_const(const hpcz_value *v)
{
    hpcz_tensor *t = v ? hpcz_value_const(v) : NULL;
    return t && t->dtype == HPCZ_DTYPE_FLOAT ? t : NULL;
}

/* Fills l's shape from n when n is a layer this pass can scale. */
static bool layer_init(hpcz_node *n, eq_layer *l)
{
    memset(l, 0, sizeof *l);
    l->n = n;
    if (n->n_inputs < 2 || !n->inputs[0] || hpcz_value_const(n->inputs[0]) || n->n_outputs < 1 || !n->outputs[0])
        return false;
    hpcz_tensor *w = float_const(n->inputs[1]);
    hpcz_tensor *b = n->n_inputs > 2 && n->inputs[2] ? float_const(n->inputs[2]) : NULL;
    if (!w || (n->n_inputs > 2 && n->inputs[2] && !b))
        return false;
    if (is_op(n, "Conv")) {
        l->conv = 1;
        l->group = hpcz_node_attr_int(n, "group", 1);
        if (w->ndim < 3 || l->group < 1 || w->dims[0] % l->group)
            return false;
        l->co = w->dims[0];
        l->ci = w->dims[1] * l->group;
        l->inner = w->numel / (w->dims[0] * w->dims[1]);
        return !b || b->numel == l->co;
    }
    if (w->ndim != 2)
        return false;
    if (is_op(n, "Gemm")) {
        if (hpcz_node_attr_int(n, "transA", 0) || n->n_inputs > 3)
            return false;
        l->trans = hpcz_node_attr_int(n, "transB", 0) != 0;
    } else if (!is_op(n, "MatMul") || n->n_inputs != 2) {
        return false;
    }
    l->ci = w->dims[l->trans ? 1 : 0];
    l->co = w->dims[l->trans ? 0 : 1];
    /* Gemm's C: a bias row [N] or [1, N]; others would broadcast differently */
    return !b || (b->numel == l->co && (b->ndim == 1 || (b->ndim == 2 && b->dims[0] == 1)));
}

/* Makes the layer's weight and bias its own, for writing. */
static hpcz_status layer_bind(hpcz_graph *g, eq_layer *l, hpcz_error *err)
{
    hpcz_tensor *w = hpcz_writable_weight(g, l->n, 1, err);
    if (!w)
        return err->status;
    l->w = w->data;
    l->b = NULL;
    if (l->n->n_inputs > 2 && l->n->inputs[2]) {
        hpcz_tensor *b = hpcz_writable_weight(g, l->n, 2, err);
        if (!b)
            return err->status;
        l->b = b->data;
    }
    return HPCZ_OK;
}

/* Multiplies every weight (and the bias) that makes output channel i by f
 * when f != 1; returns their largest magnitude (bias excluded). */
static double slice_out(eq_layer *l, int64_t i, float f)
{
    double r = 0;
    if (l->conv) {
        int64_t per = l->ci / l->group * l->inner;
        for (float *p = l->w + i * per, *e = p + per; p < e; p++) {
            if (f != 1)
                *p *= f;
            r = fmax(r, fabsf(*p));
        }
    } else {
        for (int64_t k = 0; k < l->ci; k++) {
            float *p = l->w + (l->trans ? i * l->ci + k : k * l->co + i);
            if (f != 1)
                *p *= f;
            r = fmax(r, fabsf(*p));
        }
    }
    if (l->b && f != 1)
        l->b[i] *= f;
    return r;
}

/* The same for the weights that read input channel i. */
static double slice_in(eq_layer *l, int64_t i, float f)
{
    double r = 0;
    if (l->conv) {
        int64_t cig = l->ci / l->group, cog = l->co / l->group, q = i / cig, k = i % cig;
        for (int64_t o = q * cog; o < (q + 1) * cog; o++)
            for (float *p = l->w + (o * cig + k) * l->inner, *e = p + l->inner; p < e; p++) {
                if (f != 1)
                    *p *= f;
                r = fmax(r, fabsf(*p));
            }
    } else {
        for (int64_t o = 0; o < l->co; o++) {
            float *p = l->w + (l->trans ? o * l->ci + i : i * l->co + o);
            if (f != 1)
                *p *= f;
            r = fmax(r, fabsf(*p));
        }
    }
    return r;
}

/* A constant that broadcasts one value, or one value per channel along the
 * channel axis (axis 1 of a rank-`rank` tensor; the last axis when rank is
 * 0), over c channels. */
static bool channel_const(const hpcz_tensor *t, int64_t c, int rank)
{
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT)
        return false;
    if (t->numel == 1)
        return rank == 0 || t->ndim <= rank;
    if (t->numel != c || t->ndim < 1)
        return false;
    if (rank == 0)
        return t->dims[t->ndim - 1] == c;
    int axis = t->ndim - (rank - 1); /* axis 1 of the tensor, right-aligned */
    return t->ndim <= rank && axis >= 0 && t->dims[axis] == c;
}

/* Whether n, reading x, keeps per-channel scales: f(x / s) = f(x) / s. */
static bool homogeneous(const hpcz_node *n, const hpcz_value *x, int64_t c, int rank)
{
    if (n->n_outputs != 1 || !n->outputs[0] || n->n_inputs < 1)
        return false;
    if (is_op(n, "Relu") || is_op(n, "LeakyRelu") || is_op(n, "Identity"))
        return n->n_inputs == 1 && n->inputs[0] == x;
    if (is_op(n, "PRelu"))
        return n->n_inputs == 2 && n->inputs[0] == x && n->inputs[1] != x &&
               channel_const(hpcz_value_const(n->inputs[1]), c, rank);
    /* x / c, or x with a constant on either side */
    bool div = is_op(n, "Div");
    if (!(div || is_op(n, "Mul") || is_op(n, "Add") || is_op(n, "Sub") || is_op(n, "Max") || is_op(n, "Min")) ||
        n->n_inputs != 2 || n->inputs[0] == n->inputs[1] || (n->inputs[0] != x && (div || n->inputs[1] != x)))
        return false;
    return channel_const(hpcz_value_const(n->inputs[n->inputs[0] == x ? 1 : 0]), c, rank);
}

/* The only reader of v in g, or NULL (several, none, a graph output, or a
 * reader inside a subgraph). Needs hpcz_count_uses. */
static hpcz_node *sole_reader(hpcz_graph *g, const hpcz_value *v)
{
    if (!v || v->is_output || v->aux != 1)
        return NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == v)
                return g->nodes[i];
    return NULL;
}

/* The pair that starts at layer a, if any. */
static bool find_pair(hpcz_graph *g, hpcz_node *a, eq_pair *p)
{
    memset(p, 0, sizeof *p);
    if (!layer_init(a, &p->a))
        return false;
    p->c = p->a.co;
    p->rank = p->a.conv ? (int)hpcz_value_const(a->inputs[1])->ndim : 0;
    hpcz_value *v = a->outputs[0];
    for (;;) {
        hpcz_node *r = sole_reader(g, v);
        if (!r)
            return false;
        if ((is_op(r, "Conv") || is_op(r, "Gemm") || is_op(r, "MatMul")) && r->inputs[0] == v &&
            layer_init(r, &p->b)) {
            /* the same layout on both sides, and not one layer twice */
            bool conv = p->b.conv != 0;
            if (conv != (p->a.conv != 0) || p->b.ci != p->c || r->inputs[1] == a->inputs[1])
                return false;
            if (conv && hpcz_value_const(r->inputs[1])->ndim != p->rank)
                return false;
            return true;
        }
        if (p->n_chain == HPCZ_ARRAY_SIZE(p->chain) || !homogeneous(r, v, p->c, p->rank))
            return false;
        p->chain[p->n_chain++] = r;
        v = r->outputs[0];
    }
}

/* The chain's Add/Sub/Max/Min constants divided by the scales of their
 * channels (Mul, Div, PRelu and the rest commute with them as they are). */
static hpcz_status rescale_chain(hpcz_graph *g, eq_pair *p, hpcz_error *err)
{
    hpcz_value *x = p->a.n->outputs[0];
    for (size_t i = 0; i < p->n_chain; x = p->chain[i++]->outputs[0]) {
        hpcz_node *n = p->chain[i];
        if (!is_op(n, "Add") && !is_op(n, "Sub") && !is_op(n, "Max") && !is_op(n, "Min"))
            continue;
        int k = n->inputs[0] == x ? 1 : 0;
        hpcz_tensor *t = hpcz_value_const(n->inputs[k]);
        const float *cd = hpcz_tensor_data(t, err);
        float *nc = cd ? malloc((size_t)p->c * sizeof *nc) : NULL;
        if (!nc)
            return cd ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
        for (int64_t j = 0; j < p->c; j++)
            nc[j] = (float)(cd[t->numel == 1 ? 0 : j] / p->total[j]);
        /* the constant's rank kept (its broadcast gives the same shape), the
         * channels along the tensor's channel axis */
        int need = p->rank ? p->rank - 1 : 1, nd = t->ndim > need ? t->ndim : need;
        int64_t dims[HPCZ_MAX_RANK];
        for (int d = 0; d < nd; d++)
            dims[d] = 1;
        dims[p->rank ? nd - (p->rank - 1) : nd - 1] = p->c;
        hpcz_value *nv = hpcz_new_const(g, n->inputs[k]->name, HPCZ_DTYPE_FLOAT, nd, dims, nc, err);
        free(nc);
        if (!nv)
            return err->status;
        n->inputs[k] = nv;
    }
    return HPCZ_OK;
}

/* Largest over smallest output-channel range of the pair's first layer,
 * dead channels (below 1e-6 of the largest) left out. */
static double spread(eq_pair *p)
{
    double lo = INFINITY, hi = 0;
    for (int64_t i = 0; i < p->c; i++)
        hi = fmax(hi, slice_out(&p->a, i, 1));
    for (int64_t i = 0; i < p->c; i++) {
        double r = slice_out(&p->a, i, 1);
        if (r > hi * 1e-6)
            lo = fmin(lo, r);
    }
    return hi > 0 ? hi / lo : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    int64_t iterations = hpcz_pass_arg(a, "iterations").i;
    double max_scale = hpcz_pass_arg(a, "max-scale").f;
    hpcz_graph *g = m->graph;
    hpcz_count_uses(g);
    eq_pair *pairs = NULL;
    size_t np = 0, cap = 0;
    hpcz_status st = HPCZ_OK;
    for (size_t i = 0; i < g->n_nodes && !st; i++) {
        eq_pair p;
        if (!find_pair(g, g->nodes[i], &p))
            continue;
        if (!hpcz_grow((void **)&pairs, &cap, np + 1, sizeof *pairs))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        else
            pairs[np++] = p;
    }
    if (!st && !np) {
        hpcz_pass_note(ctx, "equalize", "no Conv/Gemm/MatMul pair joined by Relu-like ops alone: nothing equalized");
        free(pairs);
        return HPCZ_OK;
    }
    if (!st)
        st = hpcz_uses_begin(m, err);
    for (size_t i = 0; i < np && !st; i++) {
        if (!(pairs[i].total = malloc((size_t)pairs[i].c * sizeof *pairs[i].total)))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; !st && j < pairs[i].c; j++)
            pairs[i].total[j] = 1;
        if (!st && !(st = layer_bind(g, &pairs[i].a, err)))
            st = layer_bind(g, &pairs[i].b, err);
    }
    hpcz_uses_end(m);
    /* a layer in two pairs (the depthwise one) is bound twice: both copies
     * of its eq_layer point at the same weights */
    double *before = st ? NULL : malloc(np * sizeof *before), *after = before ? malloc(np * sizeof *after) : NULL;
    if (!st && !after)
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < np && !st; i++)
        before[i] = spread(&pairs[i]);
    int64_t it = 0;
    double moved = INFINITY;
    for (; !st && it < iterations && moved > 1e-3; it++) {
        moved = 0;
        for (size_t i = 0; i < np; i++) {
            eq_pair *p = &pairs[i];
            for (int64_t j = 0; j < p->c; j++) {
                double r1 = slice_out(&p->a, j, 1), r2 = slice_in(&p->b, j, 1);
                if (!(r1 > 0 && r2 > 0))
                    continue;
                double s = sqrt(r1 / r2), t = p->total[j] * s;
                /* the total stays within [1/max-scale, max-scale] */
                if (t > max_scale)
                    s = max_scale / p->total[j];
                else if (t < 1 / max_scale)
                    s = 1 / (max_scale * p->total[j]);
                if (fabs(log(s)) < 1e-6)
                    continue;
                slice_out(&p->a, j, (float)(1 / s));
                slice_in(&p->b, j, (float)s);
                p->total[j] *= s;
                moved = fmax(moved, fabs(log(s)));
            }
        }
    }
    for (size_t i = 0; i < np && !st; i++) {
        after[i] = spread(&pairs[i]);
        st = rescale_chain(g, &pairs[i], err);
    }
    if (!st) {
        qsort(before, np, sizeof *before, cmp_double);
        qsort(after, np, sizeof *after, cmp_double);
        hpcz_pass_note(ctx, "equalize",
                       "equalized %zu layer pairs in %lld sweeps: largest over smallest output-channel weight range "
                       "of their first layers, median %.1fx -> %.1fx, worst %.1fx -> %.1fx",
                       np, (long long)it, before[np / 2], after[np / 2], before[np - 1], after[np - 1]);
        hpcz_drop_unused_inits(g);
    }
    free(before);
    free(after);
    for (size_t i = 0; i < np; i++)
        free(pairs[i].total);
    free(pairs);
    return st;
}

const hpcz_pass hpcz_pass_equalize = {
    "equalize",
    "cross-layer equalization: scale each output channel of a Conv/Gemm/MatMul by 1/s and the input channel "
    "of the next one (joined by Relu, LeakyRelu, PRelu or constant Mul/Add/Max/Min only) by s, evening out "
    "both layers' per-channel weight ranges; the model computes the same function (run fold-bn first)",
    opts,
    run,
};
