/*
 * smooth_quant.c - SmoothQuant (Xiao et al. 2023): moves per-channel
 * activation outliers into the weights before static int8 quantization.
 *
 * For a tensor X read by matrix products with constant weights, channel j is
 * divided by s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) and the weights' row
 * j multiplied by it: the products are unchanged in exact arithmetic, but X's
 * channels become alike, so one per-tensor activation scale fits them all,
 * while the weights (quantized per output channel) absorb the difference.
 *
 * The division is folded into X's producer, a LayerNormalization over the
 * last axis with constant scale and bias (gamma_j / s_j, beta_j / s_j), so
 * it costs nothing at run time. Readers of X that are not such products (the
 * residual Add of a transformer block) get X back through one Mul by s. The
 * maxima of |X_j| come from the calibration data, real tokens only under a
 * token mask (hpcz_pass_ctx.data_mask).
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>

static const hpcz_pass_opt opts[] = {
    {"alpha", HPCZ_OPT_FLOAT, "0.5",
     "migration strength: 0 leaves the activations as they are, 1 moves all their range into the weights",
     NULL, 0, 1},
    {"min-ratio", HPCZ_OPT_FLOAT, "2",
     "smooth a tensor only when its largest channel maximum is this many times its median one "
     "(its outliers)", NULL, 1, 1e6},
    {0},
};

/* A smoothable tensor: its producer and its readers. */
typedef struct sq_site {
    hpcz_node *ln;  /* LayerNormalization, or Mul by a constant */
    int mul_k;      /* Mul: which input is the constant; -1 for LayerNormalization */
    hpcz_value *x;
    int64_t C;
    hpcz_node **mm; /* matrix products reading x with a constant weight */
    size_t n_mm;
    hpcz_node **other; /* other readers: they get x back */
    size_t n_other;
} sq_site;

/* The weight of a matrix product reading x as its first input, with its
 * input channels along rows ([C, N]: MatMul, Gemm) or columns ([N, C]:
 * Gemm transB); NULL when it is not such a product. */
static hpcz_tensor *product_weight(const hpcz_node *n, const hpcz_value *x, int64_t C, bool *trans)
{
    if (n->domain && *n->domain)
        return NULL;
    bool mm = !strcmp(n->op_type, "MatMul"), gemm = !strcmp(n->op_type, "Gemm");
    if ((!mm && !gemm) || n->n_inputs < 2 || n->inputs[0] != x || n->inputs[1] == x)
        return NULL;
    if (gemm && hpcz_node_attr_int(n, "transA", 0))
        return NULL;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim != 2)
        return NULL;
    *trans = gemm && hpcz_node_attr_int(n, "transB", 0);
    return w->dims[*trans ? 1 : 0] == C ? w : NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void site_release(sq_site *s)
{
    free(s->mm);
    free(s->other);
}

/* The channel count of x when its producer p can absorb a per-channel
 * division: a LayerNormalization over the last axis with constant scale
 * (and bias), or a Mul by a constant scalar or [C] vector (the last op of
 * an exported GELU); 0 otherwise. *mul_k: the Mul's constant input. */
static int64_t foldable(const hpcz_node *p, int *mul_k)
{
    if ((p->domain && *p->domain) || p->n_inputs < 2 || p->n_outputs < 1 || !p->outputs[0] || p->outputs[0]->is_output)
        return 0;
    if (!strcmp(p->op_type, "LayerNormalization")) {
        hpcz_tensor *gamma = hpcz_value_const(p->inputs[1]);
        hpcz_tensor *beta = p->n_inputs > 2 && p->inputs[2] ? hpcz_value_const(p->inputs[2]) : NULL;
        if (!gamma || gamma->dtype != HPCZ_DTYPE_FLOAT || gamma->ndim != 1 ||
            (p->n_inputs > 2 && p->inputs[2] && (!beta || beta->dtype != HPCZ_DTYPE_FLOAT || beta->numel != gamma->numel)) ||
            hpcz_node_attr_int(p, "axis", -1) != -1)
            return 0;
        *mul_k = -1;
        return gamma->dims[0];
    }
    if (strcmp(p->op_type, "Mul") || p->n_inputs != 2)
        return 0;
    for (int k = 0; k < 2; k++) {
        hpcz_tensor *c = hpcz_value_const(p->inputs[k]);
        if (!c || c->dtype != HPCZ_DTYPE_FLOAT || hpcz_value_const(p->inputs[1 - k]))
            continue;
        /* a scalar: the readers tell C; a vector must lie along the last axis */
        bool vec = c->ndim >= 1 && c->numel == c->dims[c->ndim - 1];
        if (c->numel == 1 || vec) {
            *mul_k = k;
            return c->numel == 1 ? -1 : c->numel;
        }
    }
    return 0;
}

/* The producers whose output can be smoothed. */
static hpcz_status find_sites(hpcz_graph *g, sq_site **out, size_t *n_out, hpcz_error *err)
{
    sq_site *s = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *ln = g->nodes[i];
        int mul_k;
        int64_t C = foldable(ln, &mul_k);
        if (!C)
            continue;
        hpcz_value *x = ln->outputs[0];
        for (size_t k = 0; k < g->n_nodes && C < 0; k++) {
            /* a Mul by a scalar: C is what the first matrix product reads */
            hpcz_node *r = g->nodes[k];
            hpcz_tensor *w = !strcmp(r->op_type, "MatMul") && r->n_inputs == 2 && r->inputs[0] == x
                                 ? hpcz_value_const(r->inputs[1]) : NULL;
            if (w && w->ndim == 2)
                C = w->dims[0];
        }
        if (C < 1)
            continue;
        sq_site site = {ln, mul_k, x, C, NULL, 0, NULL, 0};
        size_t readers = 0;
        for (size_t k = 0; k < g->n_nodes; k++) {
            hpcz_node *r = g->nodes[k];
            bool reads = false, trans;
            for (size_t q = 0; q < r->n_inputs; q++)
                reads |= r->inputs[q] == x;
            if (!reads)
                continue;
            readers++;
            bool prod = product_weight(r, x, site.C, &trans) != NULL;
            hpcz_node ***list = prod ? &site.mm : &site.other;
            size_t *cnt = prod ? &site.n_mm : &site.n_other;
            hpcz_node **grown = realloc(*list, (*cnt + 1) * sizeof *grown);
            if (!grown) {
                site_release(&site);
                goto nomem;
            }
            *list = grown;
            grown[(*cnt)++] = r;
        }
        /* readers inside subgraphs would see the smoothed tensor */
        if (!site.n_mm || hpcz_graph_count_uses(g, x) != readers) {
            site_release(&site);
            continue;
        }
        if (!hpcz_grow((void **)&s, &cap, n + 1, sizeof *s)) {
            site_release(&site);
            goto nomem;
        }
        s[n++] = site;
    }
    *out = s;
    *n_out = n;
    return HPCZ_OK;
nomem:
    for (size_t i = 0; i < n; i++)
        site_release(&s[i]);
    free(s);
    return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
}

/* Divides the site's tensor by s (in its producer), multiplies the
 * products' weights by it, and gives the other readers x * s. */
static hpcz_status apply(hpcz_graph *g, sq_site *site, const float *s, hpcz_error *err)
{
    int64_t C = site->C;
    if (site->mul_k >= 0) {
        /* Mul by c: by c / s, a [C] vector */
        hpcz_node *mul = site->ln;
        hpcz_tensor *c = hpcz_value_const(mul->inputs[site->mul_k]);
        const float *cd = hpcz_tensor_data(c, err);
        float *nc = cd ? malloc((size_t)C * sizeof *nc) : NULL;
        if (!nc)
            return cd ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
        for (int64_t j = 0; j < C; j++)
            nc[j] = cd[c->numel == 1 ? 0 : j] / s[j];
        hpcz_value *nv = hpcz_new_const(g, mul->inputs[site->mul_k]->name, HPCZ_DTYPE_FLOAT, 1, &C, nc, err);
        free(nc);
        if (!nv)
            return err->status;
        mul->inputs[site->mul_k] = nv;
    }
    for (size_t k = 1; k < 3 && k < site->ln->n_inputs && site->mul_k < 0; k++) {
        if (!site->ln->inputs[k])
            continue;
        hpcz_tensor *t = hpcz_writable_weight(g, site->ln, k, err);
        float *d = t ? hpcz_tensor_data(t, err) : NULL;
        if (!d)
            return err->status;
        for (int64_t j = 0; j < C; j++)
            d[j] /= s[j];
    }
    for (size_t i = 0; i < site->n_mm; i++) {
        hpcz_node *n = site->mm[i];
        bool trans;
        if (!product_weight(n, site->x, C, &trans))
            continue;
        hpcz_tensor *t = hpcz_writable_weight(g, n, 1, err);
        float *w = t ? hpcz_tensor_data(t, err) : NULL;
        if (!w)
            return err->status;
        int64_t N = t->numel / C;
        for (int64_t j = 0; j < C; j++)
            for (int64_t o = 0; o < N; o++)
                w[trans ? o * C + j : j * N + o] *= s[j];
    }
    if (!site->n_other)
        return HPCZ_OK;
    const char *base = site->x->name ? site->x->name : "smoothed";
    hpcz_value *sv = hpcz_new_const(g, base, HPCZ_DTYPE_FLOAT, 1, &C, s, err);
    if (!sv)
        return err->status;
    hpcz_node *mul = hpcz_graph_add_node(g, "Mul", hpcz_unique_name(g, base, "unsmooth"), 2, 1);
    hpcz_value *y = mul ? hpcz_graph_value(g, hpcz_unique_name(g, base, "unsmoothed")) : NULL;
    if (!y)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    y->dtype = site->x->dtype;
    mul->inputs[0] = site->x;
    mul->inputs[1] = sv;
    hpcz_node_set_output(mul, 0, y);
    for (size_t i = 0; i < site->n_other; i++)
        for (size_t q = 0; q < site->other[i]->n_inputs; q++)
            if (site->other[i]->inputs[q] == site->x)
                site->other[i]->inputs[q] = y;
    return HPCZ_OK;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    double alpha = hpcz_pass_arg(a, "alpha").f, min_ratio = hpcz_pass_arg(a, "min-ratio").f;
    hpcz_graph *g = m->graph;
    sq_site *sites = NULL;
    size_t ns = 0;
    hpcz_status st = find_sites(g, &sites, &ns, err);
    if (st)
        return st;
    if (!ns) {
        hpcz_pass_note(ctx, "smooth-quant", "no LayerNormalization or Mul by a constant feeding a matrix product: nothing smoothed");
        free(sites);
        return HPCZ_OK;
    }
    if (!ctx->data) {
        for (size_t i = 0; i < ns; i++)
            site_release(&sites[i]);
        free(sites);
        return hpcz_fail(err, HPCZ_ERR_USAGE, "smooth-quant needs calibration data (--calib)");
    }
    const char **names = calloc(ns, sizeof *names);
    int64_t *chans = calloc(ns, sizeof *chans);
    double **xmax = calloc(ns, sizeof *xmax);
    st = names && chans && xmax ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ns && !st; i++) {
        names[i] = sites[i].x->name;
        chans[i] = sites[i].C;
        if (!(xmax[i] = calloc((size_t)sites[i].C, sizeof **xmax)))
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (!st)
        st = hpcz_channel_absmax(m, ctx->data, ctx->data_samples, ctx->data_mask, ctx->threads, ns, names, chans,
                                 xmax, err);
    size_t smoothed = 0;
    double worst_before = 0, worst_after = 0;
    for (size_t i = 0; i < ns && !st; i++) {
        sq_site *site = &sites[i];
        int64_t C = site->C;
        double *wmax = calloc((size_t)C, sizeof *wmax), *sorted = malloc((size_t)C * sizeof *sorted);
        float *s = malloc((size_t)C * sizeof *s);
        if (!wmax || !sorted || !s) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        } else {
            for (size_t k = 0; k < site->n_mm && !st; k++) {
                bool trans;
                hpcz_tensor *t = product_weight(site->mm[k], site->x, C, &trans);
                const float *w = hpcz_tensor_data(t, err);
                if (!w) {
                    st = err->status;
                    break;
                }
                int64_t N = t->numel / C;
                for (int64_t j = 0; j < C; j++)
                    for (int64_t o = 0; o < N; o++) {
                        double v = fabs(w[trans ? o * C + j : j * N + o]);
                        if (v > wmax[j])
                            wmax[j] = v;
                    }
            }
            memcpy(sorted, xmax[i], (size_t)C * sizeof *sorted);
            qsort(sorted, (size_t)C, sizeof *sorted, cmp_double);
            double med = sorted[C / 2], top = sorted[C - 1];
            if (!st && med > 0 && top >= min_ratio * med) {
                for (int64_t j = 0; j < C; j++) {
                    double v = xmax[i][j] > 0 && wmax[j] > 0 ? pow(xmax[i][j], alpha) / pow(wmax[j], 1 - alpha) : 1;
                    v = v < 1e-4 ? 1e-4 : v > 1e4 ? 1e4 : v;
                    s[j] = (float)v;
                }
                st = apply(g, site, s, err);
                smoothed++;
                worst_before = fmax(worst_before, top / med);
                for (int64_t j = 0; j < C; j++)
                    sorted[j] = xmax[i][j] / s[j];
                qsort(sorted, (size_t)C, sizeof *sorted, cmp_double);
                if (sorted[C / 2] > 0)
                    worst_after = fmax(worst_after, sorted[C - 1] / sorted[C / 2]);
            }
        }
        free(wmax);
        free(sorted);
        free(s);
    }
    for (size_t i = 0; i < ns; i++) {
        free(xmax ? xmax[i] : NULL);
        site_release(&sites[i]);
    }
    free(xmax);
    free(names);
    free(chans);
    free(sites);
    if (st)
        return st;
    if (smoothed) {
        hpcz_drop_unused_inits(g);
        if ((st = hpcz_graph_toposort(g, err)))
            return st;
        hpcz_pass_note(ctx, "smooth-quant",
                       "smoothed %zu of %zu LayerNormalization/Mul outputs read by matrix products (alpha %g): "
                       "largest channel maximum over the median %.1fx -> %.1fx",
                       smoothed, ns, alpha, worst_before, worst_after);
    } else {
        hpcz_pass_note(ctx, "smooth-quant", "no outlier channels (max/median < %g) in %zu candidates: nothing smoothed",
                       min_ratio, ns);
    }
    return HPCZ_OK;
}

const hpcz_pass hpcz_pass_smooth_quant = {
    "smooth-quant",
    "SmoothQuant: divide outlier activation channels after LayerNormalization (folded into its scale and "
    "bias) and multiply the reading matrix products' weights by the same factors (needs calibration data)",
    opts,
    run,
};
