/*
 * prune.c - unstructured magnitude pruning (per layer or one global
 * threshold) and N:M semi-structured sparsity along the reduction axis.
 *
 * Weights are the constant float inputs of Conv, ConvTranspose, Gemm and
 * MatMul, whether initializers or Constant nodes, in subgraphs too. Ties at
 * the threshold are broken by index, so the result is deterministic and the
 * sparsity is exact.
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>

typedef struct pweight {
    hpcz_node *node;
    size_t idx;          /* input slot of the weight */
    hpcz_value *value;
    int reduce_axis;
    int order;           /* position in topological order (first/last layer) */
} pweight;

typedef struct pscan {
    pweight *w;
    size_t n, cap;
    hpcz_node_filter *filter;
    int64_t min_params;
    int order;
    hpcz_ptrset seen; /* weights already collected */
} pscan;

static bool prunable(const hpcz_node *n, int *reduce_axis)
{
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    if (n->n_inputs < 2 || !n->inputs[1])
        return false;
    hpcz_tensor *t = hpcz_value_const(n->inputs[1]);
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT || t->ndim < 2)
        return false;
    if (!strcmp(n->op_type, "Conv"))
        *reduce_axis = 1;
    else if (!strcmp(n->op_type, "ConvTranspose"))
        *reduce_axis = 0;
    else if (!strcmp(n->op_type, "Gemm"))
        *reduce_axis = hpcz_node_attr_int(n, "transB", 0) ? 1 : 0;
    else if (!strcmp(n->op_type, "MatMul"))
        *reduce_axis = t->ndim - 2;
    else
        return false;
    return true;
}

static int collect(hpcz_graph *g, void *ctx)
{
    pscan *s = ctx;
    hpcz_node **order = g->n_nodes ? malloc(g->n_nodes * sizeof *order) : NULL;
    hpcz_error e;
    if (g->n_nodes && (!order || hpcz_graph_topo_order(g, order, &e))) {
        free(order);
        return 1;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = order[i];
        int ra;
        if (!hpcz_filter_match(s->filter, n) || !prunable(n, &ra))
            continue;
        hpcz_tensor *t = hpcz_value_const(n->inputs[1]);
        if (t->numel < s->min_params)
            continue;
        int fresh = hpcz_ptrset_add(&s->seen, n->inputs[1]); /* a weight two nodes share: once */
        if (fresh < 0) {
            free(order);
            return 1;
        }
        if (!fresh)
            continue;
        if (!hpcz_grow((void **)&s->w, &s->cap, s->n + 1, sizeof *s->w)) {
            free(order);
            return 1;
        }
        s->w[s->n++] = (pweight){n, 1, n->inputs[1], ra, s->order++};
    }
    free(order);
    return 0;
}

/* |x| ordering with index tie-break */
typedef struct mag {
    float a;
    uint32_t layer;
    uint64_t i;
} mag;

static int cmp_mag(const void *p, const void *q)
{
    const mag *x = p, *y = q;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_float(const void *p, const void *q)
{
    float x = *(const float *)p, y = *(const float *)q;
    return x < y ? -1 : x > y;
}

/* Zeroes the k smallest-magnitude entries of w (ties: lower index first). */
static int64_t zero_smallest(float *w, int64_t n, int64_t k)
{
    if (k <= 0)
        return 0;
    if (k >= n) {
        memset(w, 0, (size_t)n * sizeof *w);
        return n;
    }
    float *a = malloc((size_t)n * sizeof *a);
    if (!a)
        return -1;
    for (int64_t i = 0; i < n; i++)
        a[i] = fabsf(w[i]);
    qsort(a, (size_t)n, sizeof *a, cmp_float);
    float thr = a[k - 1];
    int64_t below = 0;
    for (int64_t i = 0; i < n; i++)
        below += fabsf(w[i]) < thr;
    int64_t at = k - below; /* how many equal to thr to zero, lowest index first */
    int64_t zeroed = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = fabsf(w[i]);
        if (v < thr || (v == thr && at-- > 0)) {
            w[i] = 0.0f;
            zeroed++;
        }
    }
    free(a);
    return zeroed;
}

static void layer_note(hpcz_pass_ctx *ctx, const char *pass, const pweight *pw, const hpcz_tensor *t)
{
    const float *d = t->data;
    int64_t z = 0;
    for (int64_t i = 0; i < t->numel; i++)
        z += d[i] == 0.0f;
    hpcz_pass_note(ctx, pass, "%s (%s '%s'): %.1f%% zeros (%lld of %lld)", pw->value->name,
                   pw->node->op_type, pw->node->name ? pw->node->name : "",
                   100.0 * (double)z / (double)t->numel, (long long)z, (long long)t->numel);
}

typedef struct popts {
    hpcz_node_filter filter;
    int64_t min_params;
    bool keep_first_last;
} popts;

static hpcz_status gather(hpcz_model *m, const hpcz_pass_args *a, popts *po, pscan *s,
                          const char *pass, hpcz_error *err)
{
    po->min_params = hpcz_pass_arg(a, "min-params").i;
    po->keep_first_last = hpcz_pass_arg(a, "keep-first-last").b;
    hpcz_status st = hpcz_filter_init(&po->filter, hpcz_pass_arg(a, "include").s,
                                      hpcz_pass_arg(a, "exclude").s, hpcz_pass_arg(a, "op-types").s, err);
    if (st)
        return st;
    memset(s, 0, sizeof *s);
    s->filter = &po->filter;
    s->min_params = po->min_params;
    int bad = hpcz_model_foreach_graph(m, collect, s);
    hpcz_ptrset_free(&s->seen);
    if (bad) {
        hpcz_filter_release(&po->filter);
        free(s->w);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (po->keep_first_last && s->n >= 1) {
        /* main-graph order: first and last prunable layers stay dense */
        memmove(s->w, s->w + 1, (s->n - 1) * sizeof *s->w);
        s->n--;
        if (s->n)
            s->n--;
    }
    if (s->n == 0) {
        hpcz_filter_release(&po->filter);
        free(s->w);
        return hpcz_fail(err, HPCZ_ERR_INVALID, "no prunable layers (Conv, ConvTranspose, Gemm or "
                         "MatMul with a constant float weight%s)",
                         po->min_params ? " of at least min-params elements" : "");
    }
    (void)pass;
    return HPCZ_OK;
}

#define COMMON_OPTS                                                                                \
    {"op-types", HPCZ_OPT_STRING, "Conv,ConvTranspose,Gemm,MatMul", "ops whose weights are pruned", NULL, 0, 0}, \
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0}, \
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0}, \
    {"min-params", HPCZ_OPT_INT, "0", "skip weights with fewer elements", NULL, 0, 1e12},            \
    {"keep-first-last", HPCZ_OPT_BOOL, "false", "leave the first and last prunable layers dense", NULL, 0, 0}

/* ------------------------------------------------------------ magnitude */

static const hpcz_pass_opt mag_opts[] = {
    {"sparsity", HPCZ_OPT_FLOAT, "0.5", "share of weights set to zero, in [0, 1)", NULL, 0, 0.999999},
    {"scope", HPCZ_OPT_ENUM, "layer", "one threshold per layer, or one across all layers", "layer|global", 0, 0},
    COMMON_OPTS,
    {0},
};

static hpcz_status run_magnitude(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                                 hpcz_error *err)
{
    double sparsity = hpcz_pass_arg(a, "sparsity").f;
    bool global = !strcmp(hpcz_pass_arg(a, "scope").s, "global");
    popts po;
    pscan s;
    hpcz_status st = gather(m, a, &po, &s, "prune-magnitude", err);
    if (st)
        return st;
    hpcz_tensor **ts = calloc(s.n, sizeof *ts);
    if (!ts || hpcz_uses_begin(m, err)) {
        st = ts ? err->status : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s.n; i++) {
        ts[i] = hpcz_writable_weight(s.w[i].node->graph, s.w[i].node, s.w[i].idx, err);
        if (!ts[i]) {
            st = err->status;
            hpcz_uses_end(m);
            goto out;
        }
        s.w[i].value = s.w[i].node->inputs[s.w[i].idx];
    }
    hpcz_uses_end(m);
    if (!global) {
        for (size_t i = 0; i < s.n; i++) {
            int64_t k = (int64_t)floor(sparsity * (double)ts[i]->numel);
            if (zero_smallest(ts[i]->data, ts[i]->numel, k) < 0) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                goto out;
            }
            layer_note(ctx, "prune-magnitude", &s.w[i], ts[i]);
        }
    } else {
        uint64_t total = 0;
        for (size_t i = 0; i < s.n; i++)
            total += (uint64_t)ts[i]->numel;
        mag *all = malloc(total * sizeof *all);
        if (!all) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        uint64_t p = 0;
        for (size_t i = 0; i < s.n; i++) {
            const float *d = ts[i]->data;
            for (int64_t j = 0; j < ts[i]->numel; j++)
                all[p++] = (mag){fabsf(d[j]), (uint32_t)i, (uint64_t)j};
        }
        uint64_t k = (uint64_t)floor(sparsity * (double)total);
        qsort(all, total, sizeof *all, cmp_mag);
        for (uint64_t q = 0; q < k; q++)
            ((float *)ts[all[q].layer]->data)[all[q].i] = 0.0f;
        free(all);
        for (size_t i = 0; i < s.n; i++)
            layer_note(ctx, "prune-magnitude", &s.w[i], ts[i]);
    }
    hpcz_pass_note(ctx, "prune-magnitude", "%zu layer%s pruned to %.1f%% sparsity (%s)", s.n,
                   s.n == 1 ? "" : "s", 100 * sparsity, global ? "one global threshold" : "per layer");
out:
    free(ts);
    free(s.w);
    hpcz_filter_release(&po.filter);
    return st;
}

/* ------------------------------------------------------------ N:M */

static const hpcz_pass_opt nm_opts[] = {
    {"n", HPCZ_OPT_INT, "2", "weights kept in each group", NULL, 1, 64},
    {"m", HPCZ_OPT_INT, "4", "group length along the reduction axis", NULL, 2, 64},
    COMMON_OPTS,
    {0},
};

static hpcz_status run_nm(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    int64_t keep = hpcz_pass_arg(a, "n").i, grp = hpcz_pass_arg(a, "m").i;
    if (keep >= grp)
        return hpcz_fail(err, HPCZ_ERR_USAGE, "prune-nm: pattern %lld:%lld keeps every weight (n must be below m)",
                         (long long)keep, (long long)grp);
    popts po;
    pscan s;
    hpcz_status st = gather(m, a, &po, &s, "prune-nm", err);
    if (st)
        return st;
    size_t done = 0;
    st = hpcz_uses_begin(m, err);
    bool held = !st;
    for (size_t i = 0; i < s.n && !st; i++) {
        pweight *pw = &s.w[i];
        hpcz_tensor *t0 = hpcz_value_const(pw->value);
        int ax = pw->reduce_axis;
        /* Conv weights [OC, IC, kh, kw]: groups run along IC (the K of a
         * channels-last implicit GEMM, what sparse tensor cores see) */
        int64_t len = t0->dims[ax];
        if (len % grp) {
            hpcz_pass_note(ctx, "prune-nm", "%s: reduction axis of %lld is not a multiple of %lld: left dense",
                           pw->value->name, (long long)len, (long long)grp);
            continue;
        }
        hpcz_tensor *t = hpcz_writable_weight(pw->node->graph, pw->node, pw->idx, err);
        if (!t) {
            st = err->status;
            break;
        }
        pw->value = pw->node->inputs[pw->idx];
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < ax; d++)
            outer *= t->dims[d];
        for (int d = ax + 1; d < t->ndim; d++)
            inner *= t->dims[d];
        float *w = t->data;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t in = 0; in < inner; in++)
                for (int64_t g0 = 0; g0 < len; g0 += grp) {
                    /* keep the n largest of the group; ties: lower index */
                    int64_t idx[64];
                    for (int64_t j = 0; j < grp; j++)
                        idx[j] = (o * len + g0 + j) * inner + in;
                    for (int64_t j = 0; j < grp; j++) {
                        int64_t rank = 0;
                        float aj = fabsf(w[idx[j]]);
                        for (int64_t q = 0; q < grp; q++) {
                            float aq = fabsf(w[idx[q]]);
                            rank += aq > aj || (aq == aj && q < j);
                        }
                        if (rank >= keep)
                            w[idx[j]] = 0.0f;
                    }
                }
        layer_note(ctx, "prune-nm", pw, t);
        done++;
    }
    if (held)
        hpcz_uses_end(m);
    if (!st)
        hpcz_pass_note(ctx, "prune-nm", "%zu layer%s pruned to %lld:%lld", done, done == 1 ? "" : "s",
                       (long long)keep, (long long)grp);
    free(s.w);
    hpcz_filter_release(&po.filter);
    return st;
}

const hpcz_pass hpcz_pass_prune_magnitude = {
    "prune-magnitude",
    "unstructured pruning: zero the smallest-magnitude weights, per layer or globally",
    mag_opts,
    run_magnitude,
};

const hpcz_pass hpcz_pass_prune_nm = {
    "prune-nm",
    "N:M semi-structured sparsity: keep the n largest of every m weights along the reduction axis",
    nm_opts,
    run_nm,
};
