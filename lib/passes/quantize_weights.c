/*
 * quantize_weights.c - weight-only quantization: int8/uint8 per tensor or per
 * output channel, int4/uint4 in blocks along the reduction axis. Each float
 * weight becomes an integer initializer feeding a DequantizeLinear, which is
 * the QDQ form ONNX Runtime fuses into integer kernels.
 */
#include "passes.h"
#include "qmath.h"

#include <math.h>
#include <stdio.h>

typedef struct weight_role {
    int channel_axis;   /* output channels (per-channel scales) */
    int reduce_axis;    /* reduction axis (int4 blocks) */
} weight_role;

/* Where the weight of node n sits and how its axes are used; false when the
 * node has no constant float weight we quantize. */
static bool weight_of(const hpcz_node *n, size_t *idx, weight_role *role)
{
    const char *op = n->op_type;
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    if (n->n_inputs < 2 || !n->inputs[1])
        return false;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || w->ndim < 2)
        return false;
    *idx = 1;
    if (!strcmp(op, "Conv")) {
        role->channel_axis = 0;
        role->reduce_axis = 1;
    } else if (!strcmp(op, "ConvTranspose")) {
        role->channel_axis = 1;
        role->reduce_axis = 0;
    } else if (!strcmp(op, "Gemm")) {
        if (w->ndim != 2)
            return false;
        bool tb = hpcz_node_attr_int(n, "transB", 0) != 0;
        role->channel_axis = tb ? 0 : 1;
        role->reduce_axis = tb ? 1 : 0;
    } else if (!strcmp(op, "MatMul")) {
        role->channel_axis = w->ndim - 1;
        role->reduce_axis = w->ndim - 2;
    } else {
        return false;
    }
    return true;
}

typedef struct qopts {
    int dtype;          /* int8 / uint8 / int4 / uint4 */
    bool per_channel;
    bool symmetric;
    bool reduce_range;
    bool mse;
    int64_t block;      /* > 0: blocked along the reduction axis */
    int64_t min_size;
    hpcz_node_filter filter;
} qopts;

typedef struct qstats {
    size_t weights;
    size_t by_dtype[HPCZ_DTYPE_COUNT];
    size_t skipped;
    uint64_t bytes_before, bytes_after;
    uint64_t params;
} qstats;

/* Rewires node inputs only (graph outputs keep the float value). */
static void rewire_inputs(hpcz_graph *g, hpcz_value *from, hpcz_value *to)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == from)
                n->inputs[j] = to;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                rewire_inputs(n->attrs[a].g, from, to);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    rewire_inputs(n->attrs[a].graphs[k], from, to);
        }
    }
}

static hpcz_value *new_init_value(hpcz_graph *g, hpcz_tensor *t, hpcz_error *err)
{
    if (hpcz_graph_add_initializer(g, t, err))
        return NULL;
    hpcz_value *v = hpcz_graph_find_value(g, t->name);
    v->ndim = t->ndim;
    v->dims = t->ndim ? hpcz_model_alloc(g->model, (size_t)t->ndim * sizeof *v->dims) : NULL;
    for (int i = 0; i < t->ndim; i++)
        v->dims[i].size = t->dims[i];
    return v;
}

/* Quantizes weight value w (consumed with the given role) in graph g. */
static hpcz_status quantize_one(hpcz_graph *g, hpcz_value *wv, weight_role role, const qopts *o,
                                hpcz_pass_ctx *ctx, qstats *st, hpcz_error *err)
{
    hpcz_model *m = g->model;
    hpcz_tensor *w = hpcz_value_const(wv);
    const float *x = hpcz_tensor_data(w, err);
    if (!x)
        return err->status;
    int nd = w->ndim;
    hpcz_qrange r = hpcz_qrange_of(o->dtype, o->symmetric, o->reduce_range);
    /* scale tensor shape */
    int64_t sdims[HPCZ_MAX_RANK];
    int s_ndim;
    int axis = -1;
    if (o->block > 0) {
        axis = role.reduce_axis;
        s_ndim = nd;
        for (int i = 0; i < nd; i++)
            sdims[i] = i == axis ? (w->dims[i] + o->block - 1) / o->block : w->dims[i];
    } else if (o->per_channel) {
        axis = role.channel_axis;
        s_ndim = 1;
        sdims[0] = w->dims[axis];
    } else {
        s_ndim = 0;
    }
    const char *base = wv->name;
    hpcz_tensor *qt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "quantized"), o->dtype, nd, w->dims);
    hpcz_tensor *scale = hpcz_tensor_new(m, hpcz_unique_name(g, base, "scale"), HPCZ_DTYPE_FLOAT, s_ndim, sdims);
    hpcz_tensor *zpt = hpcz_tensor_new(m, hpcz_unique_name(g, base, "zero_point"), o->dtype, s_ndim, sdims);
    if (!qt || !scale || !zpt || !hpcz_tensor_alloc(qt) || !hpcz_tensor_alloc(scale) ||
        !hpcz_tensor_alloc(zpt))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    float *sd = scale->data;
    /* Walk the weight as [outer, axis_len, inner] around `axis`; groups of
     * elements share a scale: all (per tensor), one channel, or one block. */
    int64_t outer = 1, alen = 1, inner = 1;
    if (axis >= 0) {
        for (int i = 0; i < axis; i++)
            outer *= w->dims[i];
        alen = w->dims[axis];
        for (int i = axis + 1; i < nd; i++)
            inner *= w->dims[i];
    } else {
        alen = w->numel;
    }
    int *qbuf = malloc((size_t)(alen > 0 ? alen : 1) * sizeof *qbuf);
    float *gbuf = malloc((size_t)(alen > 0 ? alen : 1) * sizeof *gbuf);
    if (!qbuf || !gbuf) {
        free(qbuf);
        free(gbuf);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if (axis < 0) {
        float s;
        int z;
        hpcz_choose_qparams(x, (size_t)w->numel, 1, r, o->symmetric, o->mse, &s, &z);
        hpcz_quantize_span(x, (size_t)w->numel, 1, s, z, r, NULL);
        sd[0] = s;
        hpcz_qstore(zpt->data, o->dtype, 0, z);
        for (int64_t i = 0; i < w->numel; i++) {
            int q;
            hpcz_quantize_span(x + i, 1, 1, s, z, r, &q);
            hpcz_qstore(qt->data, o->dtype, (size_t)i, q);
        }
    } else if (o->block <= 0) {
        /* per channel: the channel's elements are strided */
        for (int64_t c = 0; c < alen; c++) {
            /* gather channel c: outer x inner elements */
            size_t cnt = (size_t)(outer * inner), k = 0;
            float *ch = malloc(cnt * sizeof *ch);
            int *qc = malloc(cnt * sizeof *qc);
            if (!ch || !qc) {
                free(ch);
                free(qc);
                free(qbuf);
                free(gbuf);
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            }
            for (int64_t a = 0; a < outer; a++)
                for (int64_t b = 0; b < inner; b++)
                    ch[k++] = x[(a * alen + c) * inner + b];
            float s;
            int z;
            hpcz_choose_qparams(ch, cnt, 1, r, o->symmetric, o->mse, &s, &z);
            hpcz_quantize_span(ch, cnt, 1, s, z, r, qc);
            sd[c] = s;
            hpcz_qstore(zpt->data, o->dtype, (size_t)c, z);
            k = 0;
            for (int64_t a = 0; a < outer; a++)
                for (int64_t b = 0; b < inner; b++)
                    hpcz_qstore(qt->data, o->dtype, (size_t)((a * alen + c) * inner + b), qc[k++]);
            free(ch);
            free(qc);
        }
    } else {
        /* blocks of `block` consecutive indices along the axis */
        int64_t nblk = sdims[axis];
        for (int64_t a = 0; a < outer; a++)
            for (int64_t b = 0; b < inner; b++)
                for (int64_t kb = 0; kb < nblk; kb++) {
                    int64_t lo = kb * o->block, hi = lo + o->block < alen ? lo + o->block : alen;
                    size_t cnt = (size_t)(hi - lo);
                    for (int64_t i = lo; i < hi; i++)
                        gbuf[i - lo] = x[(a * alen + i) * inner + b];
                    float s;
                    int z;
                    hpcz_choose_qparams(gbuf, cnt, 1, r, o->symmetric, o->mse, &s, &z);
                    hpcz_quantize_span(gbuf, cnt, 1, s, z, r, qbuf);
                    size_t si = (size_t)((a * nblk + kb) * inner + b);
                    sd[si] = s;
                    hpcz_qstore(zpt->data, o->dtype, si, z);
                    for (int64_t i = lo; i < hi; i++)
                        hpcz_qstore(qt->data, o->dtype, (size_t)((a * alen + i) * inner + b),
                                    qbuf[i - lo]);
                }
    }
    free(qbuf);
    free(gbuf);
    hpcz_value *qv = new_init_value(g, qt, err), *sv = qv ? new_init_value(g, scale, err) : NULL;
    hpcz_value *zv = sv ? new_init_value(g, zpt, err) : NULL;
    if (!zv)
        return err->status;
    hpcz_node *dq = hpcz_graph_add_node(g, "DequantizeLinear", hpcz_unique_name(g, base, "DequantizeLinear"), 3, 1);
    if (!dq)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    dq->inputs[0] = qv;
    dq->inputs[1] = sv;
    dq->inputs[2] = zv;
    hpcz_value *out = hpcz_graph_value(g, hpcz_unique_name(g, base, "dequantized"));
    hpcz_node_set_output(dq, 0, out);
    out->dtype = HPCZ_DTYPE_FLOAT;
    if (axis >= 0) {
        hpcz_attr *aa = hpcz_node_add_attr(dq, "axis", HPCZ_ATTR_INT);
        if (!aa)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        aa->i = axis;
    }
    if (o->block > 0) {
        hpcz_attr *ba = hpcz_node_add_attr(dq, "block_size", HPCZ_ATTR_INT);
        if (!ba)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        ba->i = o->block;
    }
    rewire_inputs(wv->graph, wv, out);
    uint64_t before = hpcz_dtype_nbytes(HPCZ_DTYPE_FLOAT, w->numel);
    uint64_t after = hpcz_dtype_nbytes(o->dtype, w->numel) + 4 * (uint64_t)scale->numel +
                     hpcz_dtype_nbytes(o->dtype, zpt->numel);
    st->weights++;
    st->by_dtype[o->dtype]++;
    st->params += (uint64_t)w->numel;
    st->bytes_before += before;
    st->bytes_after += after;
    char shape[128];
    size_t k = (size_t)snprintf(shape, sizeof shape, "[");
    for (int i = 0; i < nd && k < sizeof shape; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", i ? "," : "", (long long)w->dims[i]);
    if (k < sizeof shape)
        snprintf(shape + k, sizeof shape - k, "]");
    char how[64];
    if (o->block > 0)
        snprintf(how, sizeof how, "blocks of %lld on axis %d", (long long)o->block, axis);
    else if (axis >= 0)
        snprintf(how, sizeof how, "per channel on axis %d", axis);
    else
        snprintf(how, sizeof how, "per tensor");
    hpcz_pass_note(ctx, "quantize", "%s: float %s %llu B -> %s %s, %llu B (%.2f bits/weight)", base,
                   shape, (unsigned long long)before, hpcz_dtype_name(o->dtype), how,
                   (unsigned long long)after, 8.0 * (double)after / (double)w->numel);
    return HPCZ_OK;
}

typedef struct cand {
    hpcz_value *w;
    hpcz_graph *g;      /* where the weight is defined */
    weight_role role;
    bool conflict;
} cand;

typedef struct scan {
    cand *c;
    size_t n, cap;
    const qopts *o;
    qstats *st;
    hpcz_pass_ctx *ctx;
} scan;

static int collect(hpcz_graph *g, void *ctx)
{
    scan *s = ctx;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        size_t idx;
        weight_role role;
        if (!hpcz_filter_match(&s->o->filter, n) || !weight_of(n, &idx, &role))
            continue;
        hpcz_value *wv = n->inputs[idx];
        hpcz_tensor *w = hpcz_value_const(wv);
        if (w->numel < s->o->min_size) {
            s->st->skipped++;
            hpcz_pass_note(s->ctx, "quantize", "%s: kept float (%lld elements, below min-size)",
                           wv->name, (long long)w->numel);
            continue;
        }
        cand *found = NULL;
        for (size_t k = 0; k < s->n && !found; k++)
            if (s->c[k].w == wv)
                found = &s->c[k];
        if (found) {
            if (found->role.channel_axis != role.channel_axis ||
                found->role.reduce_axis != role.reduce_axis)
                found->conflict = true;
            continue;
        }
        if (!hpcz_grow((void **)&s->c, &s->cap, s->n + 1, sizeof *s->c))
            return 1;
        s->c[s->n++] = (cand){wv, wv->graph, role, false};
    }
    return 0;
}

static hpcz_status drop_float_weight(hpcz_graph *g, hpcz_value *wv)
{
    hpcz_graph *top = g;
    while (top->parent)
        top = top->parent;
    if (wv->is_output || wv->is_input || hpcz_graph_count_uses(top, wv) > 0)
        return HPCZ_OK;
    if (wv->init) {
        hpcz_graph *dg = wv->graph;
        size_t k = 0;
        for (size_t i = 0; i < dg->n_inits; i++)
            if (dg->inits[i] != wv->init)
                dg->inits[k++] = dg->inits[i];
        dg->n_inits = k;
        wv->init = NULL;
    } else if (wv->producer) {
        wv->producer->aux = -1; /* the Constant node that held it */
        hpcz_graph_sweep(wv->producer->graph);
    }
    return HPCZ_OK;
}

static hpcz_status quantize_weights(hpcz_model *m, const qopts *o, hpcz_pass_ctx *ctx,
                                  hpcz_error *err)
{
    int64_t need = o->block > 0 || o->dtype == HPCZ_DTYPE_INT4 || o->dtype == HPCZ_DTYPE_UINT4
                       ? 21
                   : o->per_channel ? 13
                                    : 10;
    hpcz_status st = hpcz_model_upgrade_opset(m, need, ctx, err);
    if (st)
        return st;
    qstats qs = {0};
    scan s = {NULL, 0, 0, o, &qs, ctx};
    if (hpcz_model_foreach_graph(m, collect, &s)) {
        free(s.c);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s.n && !st; i++) {
        cand *c = &s.c[i];
        qopts local = *o;
        hpcz_tensor *wt = hpcz_value_const(c->w);
        if (local.block > 0 && wt->dims[c->role.reduce_axis] < local.block) {
            /* blocks longer than the axis would cost more than they save */
            hpcz_pass_note(ctx, "quantize", "%s: reduction axis of %lld is shorter than a block "
                           "of %lld: int8 per channel instead",
                           c->w->name, (long long)wt->dims[c->role.reduce_axis], (long long)local.block);
            local.block = 0;
            local.dtype = HPCZ_DTYPE_INT8;
            local.symmetric = true;
            local.per_channel = true;
        }
        if (c->conflict) {
            if (local.block > 0) {
                qs.skipped++;
                hpcz_pass_note(ctx, "quantize", "%s: kept float (users disagree on the axis)",
                               c->w->name);
                continue;
            }
            local.per_channel = false;
        }
        st = quantize_one(c->g, c->w, c->role, &local, ctx, &qs, err);
        if (!st)
            st = drop_float_weight(c->g, c->w);
    }
    free(s.c);
    if (st)
        return st;
    if ((st = hpcz_graph_toposort(m->graph, err)))
        return st;
    char kinds[128] = "";
    size_t k = 0;
    for (int d = 0; d < HPCZ_DTYPE_COUNT; d++)
        if (qs.by_dtype[d] && k < sizeof kinds)
            k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%s%zu %s", k ? ", " : "",
                                  qs.by_dtype[d], hpcz_dtype_name(d));
    hpcz_pass_note(ctx, "quantize", "%zu weight%s quantized (%s; %llu parameters, %.1f KiB -> "
                   "%.1f KiB), %zu kept float",
                   qs.weights, qs.weights == 1 ? "" : "s", qs.weights ? kinds : "none",
                   (unsigned long long)qs.params, (double)qs.bytes_before / 1024.0,
                   (double)qs.bytes_after / 1024.0, qs.skipped);
    return HPCZ_OK;
}

/* ------------------------------------------------------------ passes */

static const hpcz_pass_opt int8_opts[] = {
    {"per-channel", HPCZ_OPT_BOOL, "true", "one scale per output channel (else per tensor)", NULL, 0, 0},
    {"weight-dtype", HPCZ_OPT_ENUM, "int8", "integer type of the weights", "int8|uint8", 0, 0},
    {"symmetric", HPCZ_OPT_BOOL, "true", "zero point 0 (int8: range [-127, 127])", NULL, 0, 0},
    {"reduce-range", HPCZ_OPT_BOOL, "false", "7-bit weights, for u8*s8 engines without VNNI", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "weight range: min/max, or the clipping that minimises squared error", "minmax|mse", 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,ConvTranspose,Gemm,MatMul", "ops whose weights are quantized", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "keep weights with fewer elements in float", NULL, 0, 1e12},
    {0},
};

static hpcz_status common_opts(const hpcz_pass_args *a, qopts *o, hpcz_error *err)
{
    o->mse = !strcmp(hpcz_pass_arg(a, "clip").s, "mse");
    o->min_size = hpcz_pass_arg(a, "min-size").i;
    return hpcz_filter_init(&o->filter, hpcz_pass_arg(a, "include").s,
                            hpcz_pass_arg(a, "exclude").s, hpcz_pass_arg(a, "op-types").s, err);
}

static hpcz_status run_int8(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                            hpcz_error *err)
{
    qopts o = {0};
    o.dtype = !strcmp(hpcz_pass_arg(a, "weight-dtype").s, "uint8") ? HPCZ_DTYPE_UINT8 : HPCZ_DTYPE_INT8;
    o.per_channel = hpcz_pass_arg(a, "per-channel").b;
    o.symmetric = hpcz_pass_arg(a, "symmetric").b;
    o.reduce_range = hpcz_pass_arg(a, "reduce-range").b;
    hpcz_status st = common_opts(a, &o, err);
    if (st)
        return st;
    st = quantize_weights(m, &o, ctx, err);
    hpcz_filter_release(&o.filter);
    return st;
}

static const hpcz_pass_opt int4_opts[] = {
    {"block-size", HPCZ_OPT_INT, "32", "elements per scale along the reduction axis (16..1024, power of 2)", NULL, 16, 1024},
    {"symmetric", HPCZ_OPT_BOOL, "false", "int4 with zero point 0; else uint4 with a zero point per block", NULL, 0, 0},
    {"clip", HPCZ_OPT_ENUM, "mse", "block range: min/max, or the clipping that minimises squared error", "minmax|mse", 0, 0},
    {"op-types", HPCZ_OPT_STRING, "Conv,ConvTranspose,Gemm,MatMul", "ops whose weights are quantized", NULL, 0, 0},
    {"include", HPCZ_OPT_STRING, NULL, "only nodes whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "skip nodes whose name or op type matches this regex", NULL, 0, 0},
    {"min-size", HPCZ_OPT_INT, "16", "keep weights with fewer elements in float", NULL, 0, 1e12},
    {0},
};

static hpcz_status run_int4(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx,
                            hpcz_error *err)
{
    qopts o = {0};
    o.symmetric = hpcz_pass_arg(a, "symmetric").b;
    o.dtype = o.symmetric ? HPCZ_DTYPE_INT4 : HPCZ_DTYPE_UINT4;
    o.block = hpcz_pass_arg(a, "block-size").i;
    if (o.block & (o.block - 1))
        return hpcz_fail(err, HPCZ_ERR_USAGE, "quantize-int4{block-size}: %lld is not a power of 2",
                         (long long)o.block);
    hpcz_status st = common_opts(a, &o, err);
    if (st)
        return st;
    st = quantize_weights(m, &o, ctx, err);
    hpcz_filter_release(&o.filter);
    return st;
}

const hpcz_pass hpcz_pass_quantize_int8 = {
    "quantize-int8",
    "int8 weight-only quantization: integer weights behind DequantizeLinear (QDQ)",
    int8_opts,
    run_int8,
};

const hpcz_pass hpcz_pass_quantize_int4 = {
    "quantize-int4",
    "int4 weight-only quantization in blocks along the reduction axis (opset 21 DequantizeLinear)",
    int4_opts,
    run_int4,
};
