/*
 * prune_channel.c - structured filter pruning that really removes channels.
 *
 * Every Conv (group 1), Gemm or MatMul with a constant weight starts a
 * "channel space": the channel axis of its output. A sweep in topological
 * order follows each space through the ops that keep channels where they are
 * (activations, BatchNormalization, pooling, depthwise convolutions, Pad and
 * Resize that leave the channel axis alone, Flatten), joins the spaces that a
 * residual Add (or Mul, Sub, ...) couples, lays spaces side by side through
 * Concat, and ends at the layers that read channels as input features: a
 * Conv's input channels, a Gemm/MatMul's rows (through Flatten, in blocks of
 * H*W). Anything else that reads a traced tensor - an unknown op, a graph
 * output, a subgraph, a Reshape with a hard-coded size - makes the spaces it
 * touches untraceable: they are left alone and reported.
 *
 * For each traceable group the channels with the lowest importance (L1 or L2
 * norm of the producers' filters, or |gamma| of the BatchNorm after them) are
 * removed from every tensor that indexes them.
 *
 * With calibration data (criterion=energy, reconstruct): one pass over the data
 * accumulates the Gram matrix of the input features of every layer reading
 * prunable channels (its "consumers"); importance is each channel's share of
 * those layers' output variance, normalised per group and ranked across groups
 * (allocation=global, each group capped at max-ratio); then each consumer's
 * kept weights and bias are re-solved by damped least squares to reproduce its
 * original output (ThiNet; He et al. 2017), before anything is sliced.
 */
#include "passes.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>

#define MAX_SEG 32

typedef struct layout {
    int n_seg;             /* 0: not traced */
    int seg[MAX_SEG];      /* space ids, side by side along the channel axis */
    bool spatial;          /* [N, C, ...] feature maps (vs [N, C] features) */
    bool flat;             /* Flatten of a spatial layout: channel c covers a block */
} layout;

typedef struct space {
    int parent;            /* union-find */
    int64_t channels;
    bool bad;
    const char *why;       /* first reason it is untraceable */
    hpcz_node *producer;
    int n_kept;
    unsigned char *keep;   /* [channels], on the root */
    double *score;         /* [channels], on the root */
    bool data_scored;      /* score measured on calibration data */
    int64_t removed;
} space;

typedef enum edit_kind {
    EDIT_SLICE,            /* slice a constant input along an axis by the layout */
    EDIT_GROUP,            /* set a depthwise conv's group to the kept count */
} edit_kind;

typedef struct edit {
    edit_kind kind;
    hpcz_node *node;
    size_t input;
    int axis;
    layout lay;
    int64_t block;         /* > 1: each channel covers `block` consecutive indices (Flatten) */
} edit;

typedef struct pc {
    hpcz_graph *g;
    space *sp;
    int n_sp, cap_sp;
    edit *ed;
    size_t n_ed, cap_ed;
    layout *lay;           /* per value, indexed by value->aux */
    hpcz_value **vals;
    size_t n_vals, cap_vals;
    hpcz_pass_ctx *ctx;
    hpcz_error *err;
    bool oom;
} pc;

static int find(pc *p, int s)
{
    while (p->sp[s].parent != s) {
        p->sp[s].parent = p->sp[p->sp[s].parent].parent;
        s = p->sp[s].parent;
    }
    return s;
}

static void mark_bad(pc *p, int s, const char *why)
{
    s = find(p, s);
    if (!p->sp[s].bad) {
        p->sp[s].bad = true;
        p->sp[s].why = why;
    }
}

static void mark_layout_bad(pc *p, const layout *l, const char *why)
{
    for (int i = 0; i < l->n_seg; i++)
        mark_bad(p, l->seg[i], why);
}

static void unite(pc *p, int a, int b)
{
    a = find(p, a);
    b = find(p, b);
    if (a == b)
        return;
    if (p->sp[a].channels != p->sp[b].channels) {
        mark_bad(p, a, "coupled tensors disagree on the channel count");
        mark_bad(p, b, "coupled tensors disagree on the channel count");
    }
    bool bad = p->sp[a].bad || p->sp[b].bad;
    const char *why = p->sp[a].bad ? p->sp[a].why : p->sp[b].why;
    p->sp[b].parent = a;
    if (bad) {
        p->sp[a].bad = true;
        p->sp[a].why = why;
    }
}

static int new_space(pc *p, int64_t channels, hpcz_node *producer)
{
    if (p->n_sp == p->cap_sp) {
        int nc = p->cap_sp ? 2 * p->cap_sp : 32;
        space *ns = realloc(p->sp, (size_t)nc * sizeof *ns);
        if (!ns) {
            p->oom = true;
            return -1;
        }
        p->sp = ns;
        p->cap_sp = nc;
    }
    space *s = &p->sp[p->n_sp];
    memset(s, 0, sizeof *s);
    s->parent = p->n_sp;
    s->channels = channels;
    s->producer = producer;
    return p->n_sp++;
}

static layout *lay_of(pc *p, const hpcz_value *v)
{
    return v && v->aux > 0 && (size_t)v->aux <= p->n_vals ? &p->lay[v->aux - 1] : NULL;
}

static layout *set_lay(pc *p, hpcz_value *v, const layout *l)
{
    if (!v)
        return NULL;
    if (v->aux <= 0) {
        if (p->n_vals == p->cap_vals) {
            size_t nc = p->cap_vals ? 2 * p->cap_vals : 64;
            layout *nl = realloc(p->lay, nc * sizeof *nl);
            hpcz_value **nv = nl ? realloc(p->vals, nc * sizeof *nv) : NULL;
            if (nl)
                p->lay = nl;
            if (!nv) {
                p->oom = true;
                return NULL;
            }
            p->vals = nv;
            p->cap_vals = nc;
        }
        p->vals[p->n_vals] = v;
        v->aux = (int)++p->n_vals;
    }
    p->lay[v->aux - 1] = *l;
    return &p->lay[v->aux - 1];
}

static int64_t lay_channels(pc *p, const layout *l)
{
    int64_t c = 0;
    for (int i = 0; i < l->n_seg; i++)
        c += p->sp[l->seg[i]].channels;
    return c;
}

static void add_edit(pc *p, edit_kind k, hpcz_node *n, size_t input, int axis, const layout *l,
                     int64_t block)
{
    if (!hpcz_grow((void **)&p->ed, &p->cap_ed, p->n_ed + 1, sizeof *p->ed)) {
        p->oom = true;
        return;
    }
    p->ed[p->n_ed++] = (edit){k, n, input, axis, *l, block};
}

static bool is_op(const hpcz_node *n, const char *op)
{
    return !strcmp(n->op_type, op);
}

static bool in_set(const char *op, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(op, set[i]))
            return true;
    return false;
}

static const char *const passthrough[] = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
    "Celu", "Gelu", "Softplus", "Softsign", "Mish", "Clip", "Identity", "Dropout", "Abs", "Neg",
    "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Swish", "ThresholdedRelu",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool",
    "Cast", "Sin", "Cos",
};

static const char *const binary[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Pow"};

/* The constant operand of a binary op: per-channel broadcast axis, or -1 for
 * a scalar, -2 when it does not broadcast per channel. */
static int const_channel_axis(const hpcz_tensor *t, int64_t c, bool spatial)
{
    if (t->numel == 1)
        return -1;
    if (t->numel != c)
        return -2;
    int ax = -2;
    for (int i = 0; i < t->ndim; i++)
        if (t->dims[i] == c)
            ax = i;
    /* the channel must line up with axis 1 of the activation once broadcast */
    int from_right = t->ndim - 1 - ax; /* 0 = last axis */
    int needed = spatial ? -1 : 0;     /* spatial: unknown trailing spatial rank */
    if (!spatial)
        return from_right == 0 ? ax : -2;
    (void)needed;
    /* [C,1,1] (from_right 2 for 2-D maps), [1,C,1,1]: accept when the axes after
     * the channel are all 1 and there is at least one of them */
    return from_right >= 1 ? ax : -2;
}

/* ------------------------------------------------------------ trace */

static void trace_node(pc *p, hpcz_node *n)
{
    const char *op = n->op_type;
    /* which inputs carry traced channels */
    const layout *in0 = n->n_inputs ? lay_of(p, n->inputs[0]) : NULL;
    bool any = false;
    for (size_t i = 0; i < n->n_inputs; i++)
        any |= lay_of(p, n->inputs[i]) != NULL;
    bool default_domain = !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");

    /* subgraphs reading traced values: untraceable */
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == HPCZ_ATTR_GRAPH || n->attrs[a].type == HPCZ_ATTR_GRAPHS) {
            for (size_t k = 0; k < p->n_vals; k++)
                if (hpcz_graph_count_uses(n->attrs[a].type == HPCZ_ATTR_GRAPH ? n->attrs[a].g
                                                                               : n->attrs[a].graphs[0],
                                          p->vals[k]))
                    mark_layout_bad(p, &p->lay[k], "read inside a subgraph");
        }

    hpcz_tensor *w = n->n_inputs > 1 ? hpcz_value_const(n->inputs[1]) : NULL;
    bool wf = w && w->dtype == HPCZ_DTYPE_FLOAT;

    if (default_domain && is_op(n, "Conv") && wf && w->ndim >= 3) {
        int64_t group = hpcz_node_attr_int(n, "group", 1);
        int64_t oc = w->dims[0];
        bool depthwise = group > 1 && w->dims[1] == 1 && group == oc && in0 &&
                         lay_channels(p, in0) == group;
        if (depthwise) {
            add_edit(p, EDIT_SLICE, n, 1, 0, in0, 1);
            if (n->n_inputs > 2 && n->inputs[2])
                add_edit(p, EDIT_SLICE, n, 2, 0, in0, 1);
            add_edit(p, EDIT_GROUP, n, 0, 0, in0, 1);
            set_lay(p, n->outputs[0], in0);
            return;
        }
        if (in0) {
            if (group != 1 || !in0->spatial || in0->flat)
                mark_layout_bad(p, in0, "read by a grouped convolution");
            else if (lay_channels(p, in0) != w->dims[1])
                mark_layout_bad(p, in0, "a convolution's input channels do not match");
            else
                add_edit(p, EDIT_SLICE, n, 1, 1, in0, 1);
        }
        for (size_t i = 1; i < n->n_inputs; i++)
            if (lay_of(p, n->inputs[i]))
                mark_layout_bad(p, lay_of(p, n->inputs[i]), "used as a convolution weight");
        if (group == 1 && n->n_outputs == 1 && n->outputs[0]) {
            int s = new_space(p, oc, n);
            if (s < 0)
                return;
            layout l = {1, {s}, true, false};
            set_lay(p, n->outputs[0], &l);
        }
        return;
    }
    if (default_domain && (is_op(n, "Gemm") || is_op(n, "MatMul")) && wf && w->ndim == 2) {
        bool gemm = is_op(n, "Gemm");
        bool trans_a = gemm && hpcz_node_attr_int(n, "transA", 0);
        bool trans_b = gemm && hpcz_node_attr_int(n, "transB", 0);
        int k_axis = trans_b ? 1 : 0, n_axis = trans_b ? 0 : 1;
        if (in0) {
            if (trans_a || (in0->spatial && !in0->flat))
                mark_layout_bad(p, in0, "read by a matrix product in an untraced layout");
            else {
                int64_t c = lay_channels(p, in0), k = w->dims[k_axis];
                if (c <= 0 || k % c)
                    mark_layout_bad(p, in0, "a matrix product's inputs do not match the channels");
                else
                    add_edit(p, EDIT_SLICE, n, 1, k_axis, in0, k / c);
            }
        }
        for (size_t i = 1; i < n->n_inputs; i++)
            if (lay_of(p, n->inputs[i]))
                mark_layout_bad(p, lay_of(p, n->inputs[i]), "used as a matrix product operand");
        /* MatMul keeps leading axes: only rank-2 activations start a space we can
         * find again; the consumer checks that (spatial = false). */
        int s = new_space(p, w->dims[n_axis], n);
        if (s < 0)
            return;
        layout l = {1, {s}, false, false};
        set_lay(p, n->outputs[0], &l);
        return;
    }
    if (!any)
        return;
    if (!default_domain) {
        for (size_t i = 0; i < n->n_inputs; i++)
            if (lay_of(p, n->inputs[i]))
                mark_layout_bad(p, lay_of(p, n->inputs[i]), "read by an op of another domain");
        return;
    }
    if (in_set(op, passthrough, HPCZ_ARRAY_SIZE(passthrough)) && in0) {
        if (is_op(n, "PRelu") && n->n_inputs > 1) {
            hpcz_tensor *sl = hpcz_value_const(n->inputs[1]);
            int ax = sl ? const_channel_axis(sl, lay_channels(p, in0), in0->spatial) : -2;
            if (ax == -2) {
                mark_layout_bad(p, in0, "PRelu slope does not broadcast per channel");
                return;
            }
            if (ax >= 0)
                add_edit(p, EDIT_SLICE, n, 1, ax, in0, 1);
        }
        if (is_op(n, "Dropout") && n->n_outputs > 1 && n->outputs[1])
            mark_layout_bad(p, in0, "Dropout mask used");
        set_lay(p, n->outputs[0], in0);
        return;
    }
    if (is_op(n, "BatchNormalization") && in0) {
        for (size_t i = 1; i < 5 && i < n->n_inputs; i++) {
            hpcz_tensor *t = hpcz_value_const(n->inputs[i]);
            if (!t || t->numel != lay_channels(p, in0)) {
                mark_layout_bad(p, in0, "BatchNormalization with computed parameters");
                return;
            }
            add_edit(p, EDIT_SLICE, n, i, 0, in0, 1);
        }
        for (size_t j = 1; j < n->n_outputs; j++)
            if (n->outputs[j])
                mark_layout_bad(p, in0, "BatchNormalization in training mode");
        set_lay(p, n->outputs[0], in0);
        return;
    }
    if ((is_op(n, "Flatten") && hpcz_node_attr_int(n, "axis", 1) == 1) && in0 && in0->spatial) {
        layout l = *in0;
        l.flat = true;
        set_lay(p, n->outputs[0], &l);
        return;
    }
    if (is_op(n, "Reshape") && in0 && in0->spatial && !in0->flat) {
        hpcz_tensor *s = n->n_inputs > 1 ? hpcz_value_const(n->inputs[1]) : NULL;
        hpcz_error e;
        const int64_t *d = s && s->dtype == HPCZ_DTYPE_INT64 ? hpcz_tensor_data(s, &e) : NULL;
        if (d && s->numel == 2 && d[1] == -1 && d[0] >= 0) {
            layout l = *in0;
            l.flat = true;
            set_lay(p, n->outputs[0], &l);
            return;
        }
        mark_layout_bad(p, in0, "Reshape to a size written into the model");
        return;
    }
    if ((is_op(n, "Pad") || is_op(n, "Resize") || is_op(n, "Upsample")) && in0) {
        /* channel axis untouched? Pad: pads of axis 1 zero; Resize: scale 1 */
        bool ok = false;
        hpcz_error e;
        if (is_op(n, "Pad")) {
            hpcz_tensor *pt = n->n_inputs > 1 ? hpcz_value_const(n->inputs[1]) : NULL;
            const int64_t *pd = pt && pt->dtype == HPCZ_DTYPE_INT64 ? hpcz_tensor_data(pt, &e) : NULL;
            const hpcz_attr *pa = hpcz_node_attr(n, "pads");
            if (pd && pt->numel >= 4 && n->n_inputs < 4)
                ok = pd[1] == 0 && pd[pt->numel / 2 + 1] == 0;
            else if (pa && pa->n >= 4)
                ok = pa->ints[1] == 0 && pa->ints[pa->n / 2 + 1] == 0;
        } else {
            size_t si = is_op(n, "Resize") ? 2 : 1;
            hpcz_tensor *st = n->n_inputs > si ? hpcz_value_const(n->inputs[si]) : NULL;
            const float *sd = st && st->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_data(st, &e) : NULL;
            ok = sd && st->numel >= 2 && sd[1] == 1.0f;
            hpcz_tensor *sz = is_op(n, "Resize") && n->n_inputs > 3 ? hpcz_value_const(n->inputs[3]) : NULL;
            if (sz)
                ok = false;
        }
        if (!ok) {
            mark_layout_bad(p, in0, "padding or resizing along the channel axis");
            return;
        }
        set_lay(p, n->outputs[0], in0);
        return;
    }
    if (in_set(op, binary, HPCZ_ARRAY_SIZE(binary))) {
        const layout *tl = NULL;
        for (size_t i = 0; i < n->n_inputs; i++) {
            const layout *l = lay_of(p, n->inputs[i]);
            if (!l)
                continue;
            if (!tl) {
                tl = l;
                continue;
            }
            if (l->n_seg != tl->n_seg || l->spatial != tl->spatial || l->flat != tl->flat) {
                mark_layout_bad(p, l, "elementwise op joins differently laid out channels");
                mark_layout_bad(p, tl, "elementwise op joins differently laid out channels");
                return;
            }
            for (int k = 0; k < l->n_seg; k++)
                unite(p, l->seg[k], tl->seg[k]);
        }
        for (size_t i = 0; i < n->n_inputs; i++) {
            hpcz_value *v = n->inputs[i];
            if (!v || lay_of(p, v))
                continue;
            hpcz_tensor *t = hpcz_value_const(v);
            if (!t) {
                mark_layout_bad(p, tl, "combined with a tensor whose channels are not traced");
                return;
            }
            int ax = const_channel_axis(t, lay_channels(p, tl), tl->spatial);
            if (ax == -2 || tl->flat) {
                mark_layout_bad(p, tl, "combined with a constant that is not per channel");
                return;
            }
            if (ax >= 0)
                add_edit(p, EDIT_SLICE, n, i, ax, tl, 1);
        }
        set_lay(p, n->outputs[0], tl);
        return;
    }
    if (is_op(n, "Concat") && hpcz_node_attr_int(n, "axis", 0) == 1) {
        layout l = {0, {0}, true, false};
        bool ok = true;
        for (size_t i = 0; i < n->n_inputs && ok; i++) {
            const layout *li = lay_of(p, n->inputs[i]);
            if (!li || !li->spatial || li->flat || l.n_seg + li->n_seg > MAX_SEG) {
                ok = false;
                break;
            }
            for (int k = 0; k < li->n_seg; k++)
                l.seg[l.n_seg++] = li->seg[k];
        }
        if (!ok) {
            for (size_t i = 0; i < n->n_inputs; i++)
                if (lay_of(p, n->inputs[i]))
                    mark_layout_bad(p, lay_of(p, n->inputs[i]), "concatenated with untraced channels");
            return;
        }
        set_lay(p, n->outputs[0], &l);
        return;
    }
    /* anything else reading traced channels */
    for (size_t i = 0; i < n->n_inputs; i++)
        if (lay_of(p, n->inputs[i])) {
            static char buf[64][96];
            static int k;
            char *b = buf[k++ & 63];
            snprintf(b, 96, "read by %s", op);
            mark_layout_bad(p, lay_of(p, n->inputs[i]), b);
        }
}

/* ------------------------------------------------------------ apply */

/* Kept positions of a layout's channel axis (with blocks expanded). */
static int64_t *kept_index(pc *p, const layout *l, int64_t block, int64_t *n_out)
{
    int64_t total = 0;
    for (int i = 0; i < l->n_seg; i++)
        total += p->sp[l->seg[i]].channels;
    int64_t *idx = malloc((size_t)(total * block + 1) * sizeof *idx);
    if (!idx)
        return NULL;
    int64_t k = 0, off = 0;
    for (int i = 0; i < l->n_seg; i++) {
        space *r = &p->sp[find(p, l->seg[i])];
        int64_t c = p->sp[l->seg[i]].channels;
        for (int64_t ch = 0; ch < c; ch++)
            if (r->bad || !r->keep || r->keep[ch])
                for (int64_t b = 0; b < block; b++)
                    idx[k++] = (off + ch) * block + b;
        off += c;
    }
    *n_out = k;
    return idx;
}

static hpcz_status slice_input(pc *p, hpcz_node *n, size_t input, int axis, const int64_t *idx,
                               int64_t n_idx)
{
    hpcz_graph *g = n->graph;
    hpcz_value *v = n->inputs[input];
    hpcz_tensor *t = hpcz_value_const(v);
    if (!t || axis >= t->ndim)
        return hpcz_fail(p->err, HPCZ_ERR_INVALID, "internal: cannot slice '%s'", v ? v->name : "");
    if (t->dims[axis] == n_idx)
        return HPCZ_OK;
    const uint8_t *d = hpcz_tensor_data(t, p->err);
    if (!d)
        return p->err->status;
    size_t es = (size_t)hpcz_dtype_bits(t->dtype) / 8;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= t->dims[i];
    for (int i = axis + 1; i < t->ndim; i++)
        inner *= t->dims[i];
    int64_t dims[HPCZ_MAX_RANK];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = i == axis ? n_idx : t->dims[i];
    /* sliced twice (as output and as input channels): one suffix is enough */
    char base[256];
    snprintf(base, sizeof base, "%s", v->name);
    size_t bl = strlen(base);
    if (bl > 7 && !strcmp(base + bl - 7, "_pruned"))
        base[bl - 7] = 0;
    const char *name = hpcz_unique_name(g, base, "pruned");
    hpcz_tensor *nt = hpcz_tensor_new(g->model, name, t->dtype, t->ndim, dims);
    uint8_t *nd = nt ? hpcz_tensor_alloc(nt) : NULL;
    if (!nd)
        return hpcz_fail(p->err, HPCZ_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n_idx; k++)
            memcpy(nd + ((size_t)(o * n_idx + k) * (size_t)inner) * es,
                   d + ((size_t)(o * t->dims[axis] + idx[k]) * (size_t)inner) * es, (size_t)inner * es);
    hpcz_status st = hpcz_graph_add_initializer(g, nt, p->err);
    if (st)
        return st;
    hpcz_value *nv = hpcz_graph_find_value(g, name);
    nv->ndim = nt->ndim;
    nv->dims = hpcz_model_alloc(g->model, (size_t)nt->ndim * sizeof *nv->dims);
    for (int i = 0; i < nt->ndim && nv->dims; i++)
        nv->dims[i].size = dims[i];
    n->inputs[input] = nv;
    return HPCZ_OK;
}

static double channel_score(const hpcz_node *prod, int64_t ch, bool l2)
{
    hpcz_tensor *w = hpcz_value_const(prod->inputs[1]);
    hpcz_error e;
    const float *d = hpcz_tensor_data(w, &e);
    if (!d)
        return 0;
    bool conv = !strcmp(prod->op_type, "Conv");
    bool trans_b = !strcmp(prod->op_type, "Gemm") && hpcz_node_attr_int(prod, "transB", 0);
    double s = 0;
    if (conv || trans_b) {
        int64_t per = w->numel / w->dims[0];
        for (int64_t k = 0; k < per; k++) {
            double x = d[ch * per + k];
            s += l2 ? x * x : fabs(x);
        }
    } else {
        int64_t cols = w->dims[1];
        for (int64_t k = 0; k < w->dims[0]; k++) {
            double x = d[k * cols + ch];
            s += l2 ? x * x : fabs(x);
        }
    }
    return l2 ? sqrt(s) : s;
}

/* |gamma| of a BatchNormalization reading prod's output directly, or NULL. */
static const float *bn_gamma(const hpcz_graph *g, const hpcz_node *prod)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!strcmp(n->op_type, "BatchNormalization") && n->n_inputs > 1 &&
            n->inputs[0] == prod->outputs[0]) {
            hpcz_tensor *t = hpcz_value_const(n->inputs[1]);
            hpcz_error e;
            return t && t->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_data(t, &e) : NULL;
        }
    }
    return NULL;
}

typedef struct ranked {
    double s;
    int64_t c;
    int root;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    if (x->root != y->root)
        return x->root < y->root ? -1 : 1;
    return x->c < y->c ? -1 : x->c > y->c;
}

/* ------------------------------------------------------------ data */

/* A layer that reads pruned channels as input features (a "consumer"): a
 * group-1 Conv or a Gemm/MatMul with a constant weight. With calibration
 * data we accumulate the Gram matrix of its input features (im2col columns
 * for convolutions, plus a constant 1 for the bias) on the original model,
 * rank channels by their share of the consumer's output energy, and after
 * choosing re-solve the consumer's remaining weights and bias by least
 * squares so its output matches the original (ThiNet; He et al. 2017). */
typedef struct cons {
    hpcz_node *node;
    size_t edit;           /* index into p->ed */
    int kind;              /* 0 conv, 1 W [rows, K] (Gemm transB), 2 W [K, rows] */
    int nd;
    int64_t k[2], s[2], d[2], p0[2], p1[2];
    int64_t K, rows, blk;  /* blk: feature columns per channel */
    bool bias_ok;          /* a bias can be written (Conv, Gemm) */
    const char *in_name;
    double *H;             /* (K+1)^2, upper triangle; last index: the constant 1 */
    uint64_t n;
    double *buf, *buf2;
    size_t cap, cap2;
    int64_t nrows;         /* rows of the original's batch in buf */
    bool failed, active;
    uint64_t seed;
    /* second round: the pruned model's own inputs Xp against the original's Xo */
    double *Hp, *C;        /* Xp^T Xp, Xp^T Xo, (K+1)^2 each */
    uint64_t np;
    double *W0, *b0;       /* the original weight and bias (rows x K, rows) */
    hpcz_node *bnode;      /* where the bias lives: the node (input 2) or the Add after a MatMul */
    size_t bin;
} cons;

#define CONS_MAX_K 4608
#define ROWS_PER_SAMPLE 1024
#define BUF_DOUBLES (16.0 * 1024 * 1024)

static double *cons_room(cons *c, double **buf, size_t *cap, int64_t r)
{
    size_t need = (size_t)(r * (c->K + 1));
    if (need > *cap) {
        double *nb = realloc(*buf, need * sizeof *nb);
        if (!nb) {
            c->failed = true;
            return NULL;
        }
        *buf = nb;
        *cap = need;
    }
    return *buf;
}

/* The consumer's feature rows of one batch (subsampled positions, the same
 * ones for the same batch in both models), plus the constant 1; how many. */
static int64_t cons_rows(cons *c, const hpcz_array *a, double **buf, size_t *cap)
{
    if (a->dtype != HPCZ_DTYPE_FLOAT || c->failed)
        return 0;
    const float *x = a->data;
    int64_t K = c->K, K1 = K + 1, R = 0;
    uint64_t seed = c->seed;
    double *b;
    if (c->kind != 0) {
        if (a->numel % K) {
            c->failed = true;
            return 0;
        }
        int64_t cap_rows = (int64_t)(BUF_DOUBLES / K1);
        int64_t rows = a->numel / K, step = rows > cap_rows ? (rows + cap_rows - 1) / cap_rows : 1;
        int64_t take = (rows + step - 1) / step;
        if (!(b = cons_room(c, buf, cap, take)))
            return 0;
        for (int64_t r = (int64_t)(seed++ % (uint64_t)step); r < rows; r += step, R++) {
            for (int64_t k = 0; k < K; k++)
                b[R * K1 + k] = x[r * K + k];
            b[R * K1 + K] = 1.0;
        }
        return R;
    }
    int64_t N = a->dims[0], C = a->dims[1];
    int nd = c->nd;
    int64_t H = nd == 2 ? a->dims[2] : 1, Wd = a->dims[a->ndim - 1];
    int64_t kh = nd == 2 ? c->k[0] : 1, kw = c->k[nd - 1];
    int64_t sh = nd == 2 ? c->s[0] : 1, sw = c->s[nd - 1];
    int64_t dh = nd == 2 ? c->d[0] : 1, dw = c->d[nd - 1];
    int64_t ph = nd == 2 ? c->p0[0] : 0, pw = c->p0[nd - 1];
    int64_t ph1 = nd == 2 ? c->p1[0] : 0, pw1 = c->p1[nd - 1];
    if (a->ndim != nd + 2 || C * kh * kw != K) {
        c->failed = true;
        return 0;
    }
    int64_t OH = (H + ph + ph1 - dh * (kh - 1) - 1) / sh + 1;
    int64_t OW = (Wd + pw + pw1 - dw * (kw - 1) - 1) / sw + 1;
    if (OH <= 0 || OW <= 0)
        return 0;
    /* at most ROWS_PER_SAMPLE positions per sample, and a batch's rows within
     * BUF_DOUBLES (a 3x3 conv on 512 channels, 32 samples: 1.2 GB otherwise) */
    int64_t per = ROWS_PER_SAMPLE, room_per = (int64_t)(BUF_DOUBLES / K1) / (N > 0 ? N : 1);
    if (per > room_per)
        per = room_per > 16 ? room_per : 16;
    int64_t pos = OH * OW, step = pos > per ? (pos + per - 1) / per : 1;
    int64_t take = N * ((pos + step - 1) / step);
    if (!(b = cons_room(c, buf, cap, take)))
        return 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t q = (int64_t)(seed++ % (uint64_t)step); q < pos; q += step, R++) {
            int64_t oy = q / OW, ox = q % OW;
            double *row = b + R * K1;
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t ky = 0; ky < kh; ky++)
                    for (int64_t kx = 0; kx < kw; kx++) {
                        int64_t iy = oy * sh - ph + ky * dh, ix = ox * sw - pw + kx * dw;
                        *row++ = iy < 0 || iy >= H || ix < 0 || ix >= Wd ? 0.0
                                                                         : x[((n * C + ch) * H + iy) * Wd + ix];
                    }
            *row = 1.0;
        }
    return R;
}

typedef struct cons_set {
    cons *c;
    size_t n;
    int mode;              /* 0: H of the model; 1: H of the original, rows kept; 2: Hp and C of the pruned */
} cons_set;

static void cons_observe(void *ctx, const hpcz_node *node, const char *name, const hpcz_array *a)
{
    (void)node;
    cons_set *cs = ctx;
    if (!name)
        return;
    for (size_t i = 0; i < cs->n; i++) {
        cons *c = &cs->c[i];
        if (!c->active || strcmp(c->in_name, name))
            continue;
        int K1 = (int)(c->K + 1);
        if (cs->mode < 2) {
            int64_t R = cons_rows(c, a, &c->buf, &c->cap);
            c->nrows = R;
            if (R) {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, K1, (int)R, 1.0, c->buf, K1, 1.0, c->H, K1);
                c->n += (uint64_t)R;
            }
            if (cs->mode == 0) { /* the rows are kept only for the second round's cross term */
                free(c->buf);
                c->buf = NULL;
                c->cap = 0;
            }
        } else {
            int64_t R = cons_rows(c, a, &c->buf2, &c->cap2);
            if (R && R == c->nrows) {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, K1, (int)R, 1.0, c->buf2, K1, 1.0, c->Hp, K1);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K1, K1, (int)R, 1.0, c->buf2, K1, c->buf, K1,
                            1.0, c->C, K1);
                c->np += (uint64_t)R;
            } else if (R) {
                c->failed = true;
            }
        }
    }
}

static void sym_mean(double *H, int64_t K1, uint64_t n)
{
    double inv = 1.0 / (double)n;
    for (int64_t r = 0; r < K1; r++)
        for (int64_t q = r; q < K1; q++) {
            double v = H[r * K1 + q] * inv;
            H[r * K1 + q] = v;
            H[q * K1 + r] = v;
        }
}

/* One pass over the calibration data for the active consumers: through m
 * alone (ref NULL), or through ref (the original) and m batch by batch. */
static hpcz_status cons_measure(hpcz_model *m, hpcz_model *ref, hpcz_pass_ctx *ctx, cons_set *cs, hpcz_error *err)
{
    hpcz_plan_opts po = {0};
    po.threads = ctx->threads;
    po.observer = cons_observe;
    po.observer_ctx = cs;
    hpcz_plan *plan = hpcz_plan_new(m, &po, err), *rplan = NULL;
    if (!plan)
        return err->status;
    if (ref && !(rplan = hpcz_plan_new(ref, &po, err))) {
        hpcz_plan_free(plan);
        return err->status;
    }
    hpcz_dataset *d = hpcz_dataset_open(ctx->data, plan, ctx->data_samples, err);
    hpcz_status st = d ? HPCZ_OK : err->status;
    size_t ni = hpcz_plan_n_inputs(plan), no = hpcz_plan_n_outputs(plan);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in), *out = calloc(no ? no : 1, sizeof *out);
    if (!st && (!in || !out))
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    size_t total = d ? hpcz_dataset_size(d) : 0, bs = d ? hpcz_dataset_batch_size(d) : 1;
    for (size_t s0 = 0; s0 < total && !st; s0 += bs) {
        size_t n = total - s0 < bs ? total - s0 : bs;
        if ((st = hpcz_dataset_batch(d, s0, n, in, err)))
            break;
        for (size_t i = 0; i < cs->n; i++)
            cs->c[i].seed = s0 * 7919 + i;
        if (rplan) {
            cs->mode = 1;
            st = hpcz_plan_run(rplan, in, out, err);
            for (size_t i = 0; i < no; i++)
                hpcz_array_release(&out[i]);
            cs->mode = 2;
        } else {
            cs->mode = 0;
        }
        if (!st)
            st = hpcz_plan_run(plan, in, out, err);
        for (size_t i = 0; i < ni; i++)
            hpcz_array_release(&in[i]);
        for (size_t i = 0; i < no; i++)
            hpcz_array_release(&out[i]);
    }
    free(in);
    free(out);
    hpcz_dataset_free(d);
    hpcz_plan_free(plan);
    hpcz_plan_free(rplan);
    for (size_t i = 0; i < cs->n; i++) {
        cons *c = &cs->c[i];
        if (!c->active)
            continue;
        free(c->buf);
        free(c->buf2);
        c->buf = c->buf2 = NULL;
        c->cap = c->cap2 = 0;
        c->active = false;
        int64_t K1 = c->K + 1;
        if (c->failed || !c->n || (ref && !c->np)) {
            free(c->H);
            free(c->Hp);
            free(c->C);
            c->H = c->Hp = c->C = NULL;
            continue;
        }
        sym_mean(c->H, K1, c->n);
        if (ref) {
            sym_mean(c->Hp, K1, c->np);
            double inv = 1.0 / (double)c->np;
            for (int64_t q = 0; q < K1 * K1; q++)
                c->C[q] *= inv;
        }
    }
    return st;
}

/* A MatMul's bias: the per-output constant of the one Add reading it. */
static void matmul_bias(cons *c, hpcz_graph *g, hpcz_node *n)
{
    hpcz_value *y = n->outputs[0];
    if (!y || y->is_output)
        return;
    hpcz_node *user = NULL;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (size_t j = 0; j < g->nodes[i]->n_inputs; j++)
            if (g->nodes[i]->inputs[j] == y) {
                if (user)
                    return;
                user = g->nodes[i];
            }
    if (!user || strcmp(user->op_type, "Add") || user->n_inputs != 2 || (user->domain && *user->domain))
        return;
    size_t bi = user->inputs[0] == y ? 1 : 0;
    hpcz_tensor *b = hpcz_value_const(user->inputs[bi]);
    if (!b || b->dtype != HPCZ_DTYPE_FLOAT || b->numel != c->rows || b->ndim < 1 || b->dims[b->ndim - 1] != c->rows)
        return;
    c->bnode = user;
    c->bin = bi;
    c->bias_ok = true;
}

static bool cons_geometry(cons *c, hpcz_node *n)
{
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    if (!w || w->dtype != HPCZ_DTYPE_FLOAT || !n->inputs[0] || !n->inputs[0]->name)
        return false;
    c->node = n;
    c->in_name = n->inputs[0]->name;
    if (!strcmp(n->op_type, "Conv")) {
        const char *ap = hpcz_node_attr_string(n, "auto_pad", "NOTSET");
        if ((strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) || (w->ndim != 3 && w->ndim != 4) ||
            hpcz_node_attr_int(n, "group", 1) != 1)
            return false;
        c->kind = 0;
        c->nd = w->ndim - 2;
        c->rows = w->dims[0];
        c->K = w->numel / w->dims[0];
        c->blk = c->K / w->dims[1];
        const hpcz_attr *st = hpcz_node_attr(n, "strides"), *dl = hpcz_node_attr(n, "dilations"),
                        *pd = hpcz_node_attr(n, "pads");
        for (int i = 0; i < c->nd; i++) {
            c->k[i] = w->dims[2 + i];
            c->s[i] = st && (int)st->n == c->nd ? st->ints[i] : 1;
            c->d[i] = dl && (int)dl->n == c->nd ? dl->ints[i] : 1;
            c->p0[i] = pd && (int)pd->n == 2 * c->nd && strcmp(ap, "VALID") ? pd->ints[i] : 0;
            c->p1[i] = pd && (int)pd->n == 2 * c->nd && strcmp(ap, "VALID") ? pd->ints[c->nd + i] : 0;
        }
        hpcz_tensor *b = n->n_inputs > 2 && n->inputs[2] ? hpcz_value_const(n->inputs[2]) : NULL;
        c->bias_ok = n->n_inputs < 3 || !n->inputs[2] || (b && b->dtype == HPCZ_DTYPE_FLOAT && b->numel == c->rows);
        c->bnode = n;
        c->bin = 2;
        return true;
    }
    bool gemm = !strcmp(n->op_type, "Gemm");
    if (gemm && hpcz_node_attr_int(n, "transA", 0))
        return false;
    bool tb = gemm && hpcz_node_attr_int(n, "transB", 0);
    c->kind = tb ? 1 : 2;
    c->rows = w->dims[tb ? 0 : 1];
    c->K = w->dims[tb ? 1 : 0];
    c->blk = 1;
    c->bnode = n;
    c->bin = 2;
    if (!gemm)
        matmul_bias(c, n->graph, n);
    if (gemm) {
        hpcz_tensor *b = n->n_inputs > 2 && n->inputs[2] ? hpcz_value_const(n->inputs[2]) : NULL;
        c->bias_ok = hpcz_node_attr_float(n, "beta", 1.0f) == 1.0f &&
                     (n->n_inputs < 3 || !n->inputs[2] ||
                      (b && b->dtype == HPCZ_DTYPE_FLOAT && b->numel == c->rows && b->ndim == 1));
    }
    return true;
}

/* The consumer's weight as rows x K doubles (times alpha for Gemm). */
static double *cons_weight(const cons *c)
{
    hpcz_tensor *w = hpcz_value_const(c->node->inputs[1]);
    hpcz_error e;
    const float *d = hpcz_tensor_data(w, &e);
    double *W = d ? malloc((size_t)(c->rows * c->K) * sizeof *W) : NULL;
    if (!W)
        return NULL;
    double alpha = !strcmp(c->node->op_type, "Gemm") ? hpcz_node_attr_float(c->node, "alpha", 1.0f) : 1.0;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t k = 0; k < c->K; k++)
            W[r * c->K + k] = alpha * (c->kind == 2 ? d[k * c->rows + r] : d[r * c->K + k]);
    return W;
}

static double *cons_bias(const cons *c)
{
    double *b = calloc((size_t)c->rows, sizeof *b);
    if (!b)
        return NULL;
    hpcz_node *bn = c->bnode ? c->bnode : c->node;
    size_t bi = c->bnode ? c->bin : 2;
    hpcz_tensor *t = bn->n_inputs > bi && bn->inputs[bi] ? hpcz_value_const(bn->inputs[bi]) : NULL;
    hpcz_error e;
    const float *d = t && t->dtype == HPCZ_DTYPE_FLOAT ? hpcz_tensor_data(t, &e) : NULL;
    if (d && t->numel == c->rows)
        for (int64_t r = 0; r < c->rows; r++)
            b[r] = d[r];
    return b;
}

/* Output error E||D x||^2 of a weight change D (rows x K, plus bias change
 * db or NULL) under the consumer's second moments. */
static double cons_err(const cons *c, const double *D, const double *db)
{
    int64_t K = c->K, K1 = K + 1;
    double *t = malloc((size_t)K1 * sizeof *t), e = 0;
    if (!t)
        return INFINITY;
    for (int64_t r = 0; r < c->rows; r++) {
        for (int64_t k = 0; k < K; k++)
            t[k] = D[r * K + k];
        t[K] = db ? db[r] : 0;
        for (int64_t i = 0; i < K1; i++) {
            if (t[i] == 0)
                continue;
            double s = 0;
            const double *h = c->H + i * K1;
            for (int64_t j = 0; j < K1; j++)
                s += h[j] * t[j];
            e += t[i] * s;
        }
    }
    free(t);
    return e;
}

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info);

/* Least squares for the kept feature columns idx[0..m): W' and b' minimising
 * E||W x + b - W'_S x_S - b'||^2 + lambda ||W'_S - W_S||^2 (damped towards
 * plain removal). Wn (rows x K, zeros at removed columns) and bn receive the
 * result; *e0, *e1: output error of plain removal and of the solution. */
#define NROWS c->n

/* Damps the kept features' Gram matrix A (m x m, features ix[] of K, the
 * constant column last) by damp times its mean diagonal over the m0 real
 * features, more when few rows were seen for many features (an SE gate sees
 * one per sample: the fit would follow the calibration set, not the data);
 * returns the amount added. */
static double add_damping(double *A, int64_t m, const int64_t *ix, int64_t K, int64_t m0, double damp,
                          double nrows)
{
    double md = 0;
    for (int64_t i = 0; i < m; i++)
        if (ix[i] < K)
            md += A[i * m + i];
    md = m0 ? md / (double)m0 : 0;
    double lam = md > 0 ? (damp + (double)(K + 1) / nrows) * md : 1e-8;
    for (int64_t i = 0; i < m; i++)
        A[i * m + i] += lam;
    return lam;
}

static int cons_solve(const cons *c, const int64_t *idx, int64_t m0, double damp, double *Wn, double *bn,
                      double *e0, double *e1)
{
    int64_t K = c->K, K1 = K + 1, rows = c->rows;
    bool bias = c->bias_ok;
    int64_t m = m0 + (bias ? 1 : 0);
    double *W = cons_weight(c), *b = cons_bias(c);
    double *A = malloc((size_t)(m * m) * sizeof *A);
    double *Hs = malloc((size_t)(m * K1) * sizeof *Hs);
    double *Wa = malloc((size_t)(rows * K1) * sizeof *Wa);
    double *B = malloc((size_t)(rows * m) * sizeof *B);
    double *D = malloc((size_t)(rows * K) * sizeof *D);
    int64_t *ix = malloc((size_t)(m + 1) * sizeof *ix);
    int info = -1;
    if (!W || !b || !A || !Hs || !Wa || !B || !D || !ix)
        goto out;
    for (int64_t i = 0; i < m0; i++)
        ix[i] = idx[i];
    if (bias)
        ix[m0] = K;
    for (int64_t r = 0; r < rows; r++) {
        memcpy(Wa + r * K1, W + r * K, (size_t)K * sizeof *Wa);
        Wa[r * K1 + K] = b[r];
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < m; j++)
            A[i * m + j] = c->H[ix[i] * K1 + ix[j]];
        memcpy(Hs + i * K1, c->H + ix[i] * K1, (size_t)K1 * sizeof *Hs);
    }
    double lam = add_damping(A, m, ix, K, m0, damp, (double)NROWS);
    /* B (column-major m x rows) = H[S', :] Wa^T + lambda Wa[:, S']^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)m, (int)K1, 1.0, Wa, (int)K1, Hs, (int)K1,
                0.0, B, (int)m);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < m; i++)
            B[r * m + i] += lam * Wa[r * K1 + ix[i]];
    int n = (int)m, nrhs = (int)rows;
    info = 0;
    dposv_("L", &n, &nrhs, A, &n, B, &n, &info);
    /* plain removal */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++)
            D[r * K + k] = W[r * K + k];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < m0; i++)
            D[r * K + ix[i]] = 0;
    *e0 = cons_err(c, D, NULL);
    memset(Wn, 0, (size_t)(rows * K) * sizeof *Wn);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < m0; i++)
            Wn[r * K + ix[i]] = W[r * K + ix[i]];
        bn[r] = b[r];
    }
    *e1 = *e0;
    if (info)
        goto out;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < m0; i++)
            D[r * K + ix[i]] = W[r * K + ix[i]] - B[r * m + i];
        if (bias)
            b[r] -= B[r * m + m0]; /* b: now the bias change */
    }
    double e = cons_err(c, D, bias ? b : NULL);
    if (e < *e0) {
        *e1 = e;
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < m0; i++)
                Wn[r * K + ix[i]] = B[r * m + i];
            if (bias)
                bn[r] = B[r * m + m0];
        }
    }
out:
    free(W);
    free(b);
    free(A);
    free(Hs);
    free(Wa);
    free(B);
    free(D);
    free(ix);
    return info;
}

extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* Per input channel of the consumer: its share of the consumer's output
 * energy, added to the channel scores of the spaces the layout holds: what the
 * channel's features carry, E||W_c x_c||^2 (around the mean when the bias is
 * re-solved, as the least squares restores the mean). With obs, instead what
 * the least squares cannot recover from the other channels, sum over outputs
 * of w_c^T ((H^-1)_cc)^-1 w_c (group OBS on the damped second moments with the
 * constant feature); measured worse as a one-shot ranking (ppocr_cls top-1
 * agreement 0.977 -> 0.844, ppocr_rec CTC match 0.68 -> 0.41: correlated
 * channels each look free until both are gone), so unused. */
static void cons_importance(pc *p, const cons *c, const layout *l, bool recon, bool obs, double damp)
{
    int64_t K = c->K, K1 = K + 1, blk = c->blk;
    double *W = cons_weight(c);
    int64_t nch = K / blk;
    double *e = calloc((size_t)nch, sizeof *e);
    double *inv = obs ? malloc((size_t)(K1 * K1) * sizeof *inv) : NULL;
    double *M = malloc((size_t)(blk * blk) * sizeof *M), *v = malloc((size_t)blk * sizeof *v);
    if (!W || !e || !M || !v || (obs && !inv)) {
        free(W);
        free(e);
        free(inv);
        free(M);
        free(v);
        return;
    }
    if (obs) {
        memcpy(inv, c->H, (size_t)(K1 * K1) * sizeof *inv);
        double md = 0;
        for (int64_t i = 0; i < K; i++)
            md += inv[i * K1 + i];
        md = K ? md / (double)K : 0;
        for (int64_t i = 0; i < K1; i++)
            inv[i * K1 + i] += md > 0 ? damp * md : 1e-8;
        int n = (int)K1, info = 0;
        dpotrf_("L", &n, inv, &n, &info);
        if (!info)
            dpotri_("L", &n, inv, &n, &info);
        if (info) {
            free(inv);
            inv = NULL;
        } else {
            for (int64_t i = 0; i < K1; i++)
                for (int64_t j = 0; j < i; j++)
                    inv[i * K1 + j] = inv[j * K1 + i];
        }
    }
    double tot = 0;
    for (int64_t ch = 0; ch < nch; ch++) {
        int64_t c0 = ch * blk;
        double s = 0, en = 0;
        for (int64_t i = c0; i < c0 + blk; i++)
            for (int64_t j = c0; j < c0 + blk; j++) {
                double h = c->H[i * K1 + j];
                if (recon)
                    h -= c->H[i * K1 + K] * c->H[j * K1 + K];
                double w = 0;
                for (int64_t r = 0; r < c->rows; r++)
                    w += W[r * K + i] * W[r * K + j];
                en += w * h;
            }
        if (inv) {
            /* M = (H^-1)_cc, Cholesky; s = sum_r w_r^T M^-1 w_r */
            for (int64_t i = 0; i < blk; i++)
                for (int64_t j = 0; j < blk; j++)
                    M[i * blk + j] = inv[(c0 + i) * K1 + c0 + j];
            int n = (int)blk, info = 0;
            dpotrf_("L", &n, M, &n, &info);
            if (info) {
                s = en;
            } else {
                /* column-major L (row-major upper): solve L y = w, s += |y|^2 */
                for (int64_t r = 0; r < c->rows; r++) {
                    for (int64_t i = 0; i < blk; i++) {
                        double t = W[r * K + c0 + i];
                        for (int64_t j = 0; j < i; j++)
                            t -= M[j * blk + i] * v[j];
                        v[i] = t / M[i * blk + i];
                        s += v[i] * v[i];
                    }
                }
            }
        } else {
            s = en;
        }
        e[ch] = s > 0 ? s : 0;
        tot += en > 0 ? en : 0;
    }
    int64_t off = 0;
    for (int k = 0; k < l->n_seg; k++) {
        space *r = &p->sp[find(p, l->seg[k])];
        int64_t cc = p->sp[l->seg[k]].channels;
        if (r->score && !r->bad)
            for (int64_t ch = 0; ch < cc && off + ch < nch; ch++)
                r->score[ch] += tot > 0 ? e[off + ch] / tot : 0;
        if (r->score)
            r->data_scored = true;
        off += cc;
    }
    free(W);
    free(e);
    free(inv);
    free(M);
    free(v);
}


static bool edit_pruned(pc *p, const edit *e)
{
    for (int k = 0; k < e->lay.n_seg; k++) {
        space *r = &p->sp[find(p, e->lay.seg[k])];
        if (!r->bad && r->n_kept < r->channels)
            return true;
    }
    return false;
}

/* Writes rows x K weights (and the bias when it can carry one) back into the
 * consumer, in its own layout, as new initializers. */
static hpcz_status cons_write(hpcz_graph *g, const cons *c, const double *Wn, const double *bn, hpcz_error *err)
{
    hpcz_node *n = c->node;
    hpcz_tensor *w = hpcz_value_const(n->inputs[1]);
    size_t cnt = (size_t)(w->numel > c->rows ? w->numel : c->rows);
    float *f = malloc(cnt * sizeof *f);
    double alpha = is_op(n, "Gemm") ? hpcz_node_attr_float(n, "alpha", 1.0f) : 1.0;
    if (alpha == 0)
        alpha = 1;
    if (!f)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t k = 0; k < c->K; k++)
            f[c->kind == 2 ? k * c->rows + r : r * c->K + k] = (float)(Wn[r * c->K + k] / alpha);
    hpcz_status st = HPCZ_OK;
    hpcz_value *v = hpcz_new_const(g, n->inputs[1]->name, HPCZ_DTYPE_FLOAT, w->ndim, w->dims, f, err);
    if (!v || !hpcz_node_set_input(n, 1, v))
        st = v ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
    if (!st && c->bias_ok) {
        for (int64_t r = 0; r < c->rows; r++)
            f[r] = (float)bn[r];
        hpcz_node *bnode = c->bnode ? c->bnode : n;
        size_t bi = c->bnode ? c->bin : 2;
        hpcz_tensor *old = bnode->n_inputs > bi && bnode->inputs[bi] ? hpcz_value_const(bnode->inputs[bi]) : NULL;
        int64_t bd[1] = {c->rows};
        const char *bname = old ? bnode->inputs[bi]->name : n->name && *n->name ? n->name : n->op_type;
        hpcz_value *bv = old ? hpcz_new_const(g, bname, HPCZ_DTYPE_FLOAT, old->ndim, old->dims, f, err)
                             : hpcz_new_const(g, bname, HPCZ_DTYPE_FLOAT, 1, bd, f, err);
        if (!bv || !hpcz_node_set_input(bnode, bi, bv))
            st = bv ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
    }
    free(f);
    return st;
}

/* Zeroes the removed input positions of an edit's constant (same shape). */
static hpcz_status zero_removed(pc *p, const edit *e)
{
    hpcz_node *n = e->node;
    hpcz_tensor *t = hpcz_value_const(n->inputs[e->input]);
    if (!t || t->dtype != HPCZ_DTYPE_FLOAT || e->axis >= t->ndim)
        return HPCZ_OK;
    const float *d = hpcz_tensor_data(t, p->err);
    if (!d)
        return p->err->status;
    int64_t n_idx;
    int64_t *idx = kept_index(p, &e->lay, e->block, &n_idx);
    int64_t len = t->dims[e->axis], outer = 1, inner = 1;
    unsigned char *keep = calloc((size_t)(len ? len : 1), 1);
    float *f = malloc((size_t)t->numel * sizeof *f);
    if (!idx || !keep || !f) {
        free(idx);
        free(keep);
        free(f);
        return hpcz_fail(p->err, HPCZ_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < n_idx; k++)
        if (idx[k] < len)
            keep[idx[k]] = 1;
    for (int i = 0; i < e->axis; i++)
        outer *= t->dims[i];
    for (int i = e->axis + 1; i < t->ndim; i++)
        inner *= t->dims[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < len; a++)
            for (int64_t q = 0; q < inner; q++) {
                int64_t at = (o * len + a) * inner + q;
                f[at] = keep[a] ? d[at] : 0.0f;
            }
    hpcz_value *v = hpcz_new_const(p->g, n->inputs[e->input]->name, HPCZ_DTYPE_FLOAT, t->ndim, t->dims, f, p->err);
    hpcz_status st = HPCZ_OK;
    if (!v || !hpcz_node_set_input(n, e->input, v))
        st = v ? hpcz_fail(p->err, HPCZ_ERR_NOMEM, "out of memory") : p->err->status;
    free(idx);
    free(keep);
    free(f);
    return st;
}

/* Second round: min E||Wo xo + bo - W' xp_S - b'||^2 + lambda ||W' - W1_S||^2
 * with Hp = E[xp xp^T], C = E[xp xo^T], H = E[xo xo^T] (augmented); W1 is
 * the consumer's current (first-round) weight. *e1, *e2: the error of W1 and
 * of the new solution. */
#undef NROWS
#define NROWS c->np
static int cons_solve2(const cons *c, const int64_t *idx, int64_t m0, double damp, double *Wn, double *bn,
                       double *e1, double *e2)
{
    int64_t K = c->K, K1 = K + 1, rows = c->rows;
    bool bias = c->bias_ok;
    int64_t m = m0 + (bias ? 1 : 0);
    double *W1 = cons_weight(c), *b1 = cons_bias(c);
    double *A = malloc((size_t)(m * m) * sizeof *A), *A0 = malloc((size_t)(m * m) * sizeof *A0);
    double *Cs = malloc((size_t)(m * K1) * sizeof *Cs);
    double *Wo = malloc((size_t)(rows * K1) * sizeof *Wo);
    double *B = malloc((size_t)(rows * m) * sizeof *B), *G = malloc((size_t)(rows * m) * sizeof *G);
    double *Z1 = malloc((size_t)(rows * m) * sizeof *Z1);
    double *t = malloc((size_t)K1 * sizeof *t);
    int64_t *ix = malloc((size_t)(m + 1) * sizeof *ix);
    int info = -1;
    if (!W1 || !b1 || !A || !A0 || !Cs || !Wo || !B || !G || !Z1 || !t || !ix)
        goto out;
    for (int64_t i = 0; i < m0; i++)
        ix[i] = idx[i];
    if (bias)
        ix[m0] = K;
    for (int64_t r = 0; r < rows; r++) {
        memcpy(Wo + r * K1, c->W0 + r * K, (size_t)K * sizeof *Wo);
        Wo[r * K1 + K] = c->b0[r];
        for (int64_t i = 0; i < m; i++)
            Z1[r * m + i] = ix[i] < K ? W1[r * K + ix[i]] : b1[r];
    }
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < m; j++)
            A0[i * m + j] = A[i * m + j] = c->Hp[ix[i] * K1 + ix[j]];
        memcpy(Cs + i * K1, c->C + ix[i] * K1, (size_t)K1 * sizeof *Cs);
    }
    double lam = add_damping(A, m, ix, K, m0, damp, (double)NROWS);
    /* G (rows x m) = Wo C[S', :]^T: the cross term */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)m, (int)K1, 1.0, Wo, (int)K1, Cs, (int)K1,
                0.0, G, (int)m);
    for (int64_t q = 0; q < rows * m; q++)
        B[q] = G[q] + lam * Z1[q];
    int n = (int)m, nrhs = (int)rows;
    info = 0;
    dposv_("L", &n, &nrhs, A, &n, B, &n, &info);
    /* errors (dropping the constant Wo H Wo^T): Z A0 Z^T - 2 Z . G */
    {
        double a1 = 0, a2 = 0;
        for (int64_t r = 0; r < rows; r++) {
            const double *z1 = Z1 + r * m, *z2 = B + r * m, *gr = G + r * m;
            for (int64_t i = 0; i < m; i++) {
                double u1 = 0, u2 = 0;
                for (int64_t j = 0; j < m; j++) {
                    u1 += A0[i * m + j] * z1[j];
                    u2 += A0[i * m + j] * z2[j];
                }
                a1 += z1[i] * u1 - 2 * z1[i] * gr[i];
                a2 += z2[i] * u2 - 2 * z2[i] * gr[i];
            }
        }
        double base = 0;
        for (int64_t r = 0; r < rows; r++) {
            const double *w = Wo + r * K1;
            for (int64_t i = 0; i < K1; i++) {
                if (w[i] == 0)
                    continue;
                double s = 0;
                for (int64_t j = 0; j < K1; j++)
                    s += c->H[i * K1 + j] * w[j];
                base += w[i] * s;
            }
        }
        *e1 = base + a1;
        *e2 = info ? INFINITY : base + a2;
    }
    if (!info) {
        memset(Wn, 0, (size_t)(rows * K) * sizeof *Wn);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < m0; i++)
                Wn[r * K + ix[i]] = B[r * m + i];
            bn[r] = bias ? B[r * m + m0] : b1[r];
        }
    }
out:
    free(W1);
    free(b1);
    free(A);
    free(A0);
    free(Cs);
    free(Wo);
    free(B);
    free(G);
    free(Z1);
    free(t);
    free(ix);
    return info;
}
#undef NROWS

static const hpcz_pass_opt opts[] = {
    {"ratio", HPCZ_OPT_FLOAT, "0.25", "share of the prunable channels removed (per group with allocation=uniform), in [0, 1)", NULL, 0, 0.999},
    {"criterion", HPCZ_OPT_ENUM, "l1",
     "channel importance: filter L1 or L2 norm, |BatchNorm gamma|, or energy (share of the consumers' output "
     "variance on the calibration data)", "l1|l2|bn-gamma|energy", 0, 0},
    {"allocation", HPCZ_OPT_ENUM, "auto",
     "how many channels each group loses: uniform (ratio of each), global (one ranking of the per-group "
     "normalised importance, capped by max-ratio) or auto (global with criterion=energy)", "auto|uniform|global", 0, 0},
    {"max-ratio", HPCZ_OPT_FLOAT, "0", "global allocation: most any group loses (0: min(ratio + 0.1, 0.9))", NULL, 0, 0.999},
    {"reconstruct", HPCZ_OPT_BOOL, "false",
     "re-solve the layers reading pruned channels by least squares on the calibration data (needs data)", NULL, 0, 0},
    {"refine", HPCZ_OPT_BOOL, "false",
     "reconstruction, experimental: solve each layer a second time on its inputs in the pruned model against the "
     "original's outputs (passes through both models), correcting what the layers before it changed; helps ppocr_cls "
     "when fully sequential (refine-layers=1), hurts ppocr_rec in chunks", NULL, 0, 0},
    {"refine-layers", HPCZ_OPT_INT, "1000000",
     "second round: layers solved per pass over the data, in execution order (1: fully sequential)", NULL, 1, 1e9},
    {"damp", HPCZ_OPT_FLOAT, "0.01", "reconstruction: damping towards plain removal, share of the mean input energy", NULL, 0, 1e6},
    {"include", HPCZ_OPT_STRING, NULL, "only groups with a producer whose name or op type matches this regex", NULL, 0, 0},
    {"exclude", HPCZ_OPT_STRING, NULL, "leave groups with a producer whose name or op type matches this regex", NULL, 0, 0},
    {"min-channels", HPCZ_OPT_INT, "1", "never keep fewer channels than this", NULL, 1, 1e9},
    {0},
};

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    double ratio = hpcz_pass_arg(a, "ratio").f;
    const char *crit = hpcz_pass_arg(a, "criterion").s;
    int64_t min_ch = hpcz_pass_arg(a, "min-channels").i;
    hpcz_node_filter filt;
    hpcz_status st = hpcz_filter_init(&filt, hpcz_pass_arg(a, "include").s,
                                      hpcz_pass_arg(a, "exclude").s, NULL, err);
    if (st)
        return st;
    hpcz_graph *g = m->graph;
    pc p = {.g = g, .ctx = ctx, .err = err};
    hpcz_node **order = g->n_nodes ? malloc(g->n_nodes * sizeof *order) : NULL;
    if (g->n_nodes && !order) {
        hpcz_filter_release(&filt);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    if ((st = hpcz_graph_topo_order(g, order, err)))
        goto out;
    /* value aux: layout index + 1 (0 = untraced) */
    for (size_t i = 0; i < g->n_nodes; i++) {
        for (size_t j = 0; j < order[i]->n_inputs; j++)
            if (order[i]->inputs[j])
                order[i]->inputs[j]->aux = 0;
        for (size_t j = 0; j < order[i]->n_outputs; j++)
            if (order[i]->outputs[j])
                order[i]->outputs[j]->aux = 0;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        g->outputs[i]->aux = 0;
    for (size_t i = 0; i < g->n_nodes && !p.oom; i++)
        trace_node(&p, order[i]);
    for (size_t i = 0; i < g->n_outputs; i++)
        if (lay_of(&p, g->outputs[i]))
            mark_layout_bad(&p, lay_of(&p, g->outputs[i]), "a graph output (the model's interface)");
    if (p.oom) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* a group is pruned only if every producer in it is selected */
    for (int s = 0; s < p.n_sp; s++)
        if (p.sp[s].producer && !hpcz_filter_match(&filt, p.sp[s].producer))
            mark_bad(&p, s, "excluded");
    /* choose channels: scores per root */
    size_t groups = 0, skipped = 0;
    int64_t removed_total = 0, channels_total = 0;
    bool l2 = !strcmp(crit, "l2"), gamma = !strcmp(crit, "bn-gamma"), energy = !strcmp(crit, "energy");
    const char *alloc = hpcz_pass_arg(a, "allocation").s;
    bool global = !strcmp(alloc, "global") || (!strcmp(alloc, "auto") && energy);
    bool recon = hpcz_pass_arg(a, "reconstruct").b, refine = recon && hpcz_pass_arg(a, "refine").b;
    double max_ratio = hpcz_pass_arg(a, "max-ratio").f, damp = hpcz_pass_arg(a, "damp").f;
    int64_t chunk = hpcz_pass_arg(a, "refine-layers").i;
    if (max_ratio <= 0)
        max_ratio = fmin(ratio + 0.1, 0.9); /* ddddocr_ocr at 0.25: CTC match 0.71 with 2R, 0.79 with R + 0.1 */
    if (max_ratio < ratio)
        max_ratio = ratio;
    if ((energy || recon) && !ctx->data) {
        st = hpcz_fail(err, HPCZ_ERR_USAGE, "criterion=energy and reconstruct need calibration data (--calib DIR)");
        goto out;
    }
    for (int s = 0; s < p.n_sp; s++) {
        space *root = &p.sp[find(&p, s)];
        if (root->bad || root->score)
            continue;
        root->score = calloc((size_t)root->channels, sizeof *root->score);
        root->keep = malloc((size_t)root->channels);
        if (!root->score || !root->keep) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        memset(root->keep, 1, (size_t)root->channels);
        root->n_kept = (int)root->channels;
    }
    /* consumers with data */
    cons_set cs = {0};
    if (energy || recon) {
        cs.c = calloc(p.n_ed ? p.n_ed : 1, sizeof *cs.c);
        if (!cs.c) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < p.n_ed; i++) {
            edit *e = &p.ed[i];
            hpcz_node *n = e->node;
            bool conv = is_op(n, "Conv") && hpcz_node_attr_int(n, "group", 1) == 1 && e->axis == 1;
            bool mm = is_op(n, "Gemm") || is_op(n, "MatMul");
            if (e->kind != EDIT_SLICE || e->input != 1 || (!conv && !mm))
                continue;
            bool live = false;
            for (int k = 0; k < e->lay.n_seg; k++)
                live |= !p.sp[find(&p, e->lay.seg[k])].bad;
            cons *c = &cs.c[cs.n];
            memset(c, 0, sizeof *c);
            if (!live || !cons_geometry(c, n) || c->K > CONS_MAX_K)
                continue;
            if (!conv)
                c->blk = e->block;
            c->edit = i;
            cs.n++;
        }
        /* passes over the data, at most ~768 MiB of Gram matrices each */
        size_t next = 0;
        while (next < cs.n && !st) {
            double bytes = 0;
            size_t i = next;
            for (; i < cs.n; i++) {
                double need = 8.0 * (double)(cs.c[i].K + 1) * (double)(cs.c[i].K + 1);
                if (i > next && bytes + need > 768.0 * 1024 * 1024)
                    break;
                bytes += need;
                cs.c[i].H = calloc((size_t)((cs.c[i].K + 1) * (cs.c[i].K + 1)), sizeof(double));
                if (!cs.c[i].H) {
                    st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                    break;
                }
                cs.c[i].active = true;
            }
            if (!st)
                st = cons_measure(m, NULL, ctx, &cs, err);
            next = i;
        }
        if (st)
            goto out_cons;
        if (energy)
            for (size_t i = 0; i < cs.n; i++)
                if (cs.c[i].H)
                    cons_importance(&p, &cs.c[i], &p.ed[cs.c[i].edit].lay, recon, false, damp);
    }
    /* per root: each score over the group's mean, so groups compare */
    for (int s = 0; s < p.n_sp; s++) {
        int r = find(&p, s);
        space *root = &p.sp[r];
        if (root->bad || s != r)
            continue;
        if (!root->data_scored) {
            /* sum of each member producer's weight scores, each over its max */
            for (int t = 0; t < p.n_sp; t++) {
                if (find(&p, t) != r || !p.sp[t].producer)
                    continue;
                const hpcz_node *prod = p.sp[t].producer;
                const float *gm = gamma ? bn_gamma(g, prod) : NULL;
                double mx = 0;
                double *tmp = malloc((size_t)root->channels * sizeof *tmp);
                if (!tmp) {
                    st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                    goto out_cons;
                }
                for (int64_t c = 0; c < root->channels; c++) {
                    tmp[c] = gm ? fabs((double)gm[c]) : channel_score(prod, c, l2);
                    if (tmp[c] > mx)
                        mx = tmp[c];
                }
                for (int64_t c = 0; c < root->channels; c++)
                    root->score[c] += mx > 0 ? tmp[c] / mx : 0;
                free(tmp);
            }
        }
        double mean = 0;
        for (int64_t c = 0; c < root->channels; c++)
            mean += root->score[c];
        mean /= (double)root->channels;
        for (int64_t c = 0; c < root->channels; c++)
            root->score[c] = mean > 0 ? root->score[c] / mean : 0;
    }
    /* ranking: per root (uniform) or one across roots (global) */
    {
        int64_t total = 0;
        for (int s = 0; s < p.n_sp; s++)
            if (find(&p, s) == s && !p.sp[s].bad)
                total += p.sp[s].channels;
        ranked *rk = malloc((size_t)(total ? total : 1) * sizeof *rk);
        int *rt = malloc((size_t)(p.n_sp ? p.n_sp : 1) * sizeof *rt);
        if (!rk || !rt) {
            free(rk);
            free(rt);
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out_cons;
        }
        int64_t k = 0;
        for (int s = 0; s < p.n_sp; s++) {
            if (find(&p, s) != s || p.sp[s].bad)
                continue;
            space *root = &p.sp[s];
            if (global) {
                for (int64_t c = 0; c < root->channels; c++)
                    rk[k++] = (ranked){root->score[c], c, s};
                continue;
            }
            int64_t remove = (int64_t)floor(ratio * (double)root->channels);
            if (root->channels - remove < min_ch)
                remove = root->channels > min_ch ? root->channels - min_ch : 0;
            int64_t k0 = k;
            for (int64_t c = 0; c < root->channels; c++)
                rk[k++] = (ranked){root->score[c], c, s};
            qsort(rk + k0, (size_t)root->channels, sizeof *rk, cmp_ranked);
            for (int64_t q = 0; q < remove; q++)
                root->keep[rk[k0 + q].c] = 0;
            root->removed = remove;
        }
        if (global) {
            qsort(rk, (size_t)k, sizeof *rk, cmp_ranked);
            int64_t budget = (int64_t)floor(ratio * (double)total), done = 0;
            for (int64_t q = 0; q < k && done < budget; q++) {
                space *root = &p.sp[rk[q].root];
                int64_t cap = (int64_t)floor(max_ratio * (double)root->channels);
                if (root->removed >= cap || root->channels - root->removed <= min_ch)
                    continue;
                root->keep[rk[q].c] = 0;
                root->removed++;
                done++;
            }
        }
        free(rk);
        free(rt);
    }
    for (int s = 0; s < p.n_sp; s++) {
        int r = find(&p, s);
        space *root = &p.sp[r];
        if (root->bad || s != r)
            continue;
        root->n_kept = (int)(root->channels - root->removed);
        groups++;
        removed_total += root->removed;
        channels_total += root->channels;
        char members[512] = "";
        size_t ml = 0;
        for (int t = 0; t < p.n_sp && ml < sizeof members; t++)
            if (find(&p, t) == r && p.sp[t].producer)
                ml += (size_t)snprintf(members + ml, sizeof members - ml, "%s'%s'", ml ? ", " : "",
                                       p.sp[t].producer->name ? p.sp[t].producer->name : "");
        hpcz_pass_note(ctx, "prune-channel", "group %s: %lld -> %lld channels%s", members,
                       (long long)root->channels, (long long)root->n_kept,
                       root->data_scored ? " (importance measured on data)" : "");
    }
    for (int s = 0; s < p.n_sp; s++) {
        int r = find(&p, s);
        if (r == s && p.sp[s].bad) {
            skipped++;
            hpcz_pass_note(ctx, "prune-channel", "left alone: output channels of '%s' (%s): %s",
                           p.sp[s].producer && p.sp[s].producer->name ? p.sp[s].producer->name : "",
                           p.sp[s].producer ? p.sp[s].producer->op_type : "?", p.sp[s].why);
        }
    }
    /* reconstruction: each consumer re-solved on its kept input features,
     * before any slicing (removed columns become zeros, sliced away below) */
    if (recon) {
        size_t done = 0;
        double sum0 = 0, sum1 = 0;
        hpcz_model *orig = refine ? hpcz_model_clone(m, err) : NULL;
        if (refine && !orig) {
            st = err->status;
            goto out_cons;
        }
        for (size_t i = 0; i < cs.n && !st; i++) {
            cons *c = &cs.c[i];
            edit *e = &p.ed[c->edit];
            if (!c->H || !edit_pruned(&p, e))
                continue;
            int64_t n_idx;
            int64_t *idx = kept_index(&p, &e->lay, c->blk, &n_idx);
            double *Wn = malloc((size_t)(c->rows * c->K) * sizeof *Wn);
            double *bn = malloc((size_t)c->rows * sizeof *bn);
            c->W0 = cons_weight(c);
            c->b0 = cons_bias(c);
            double e0 = 0, e1 = 0;
            int info = idx && Wn && bn ? cons_solve(c, idx, n_idx, damp, Wn, bn, &e0, &e1) : -1;
            if (!idx || !Wn || !bn || !c->W0 || !c->b0)
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            else
                st = cons_write(g, c, Wn, bn, err); /* plain removal when the solve did not help */
            if (!st && e1 < e0) {
                done++;
                sum0 += e0;
                sum1 += e1;
                hpcz_pass_note(ctx, "prune-channel",
                               "'%s' reconstructed from %llu input rows: output error %.4g -> %.4g (%.1f%%)",
                               c->node->name ? c->node->name : "", (unsigned long long)c->n, e0, e1,
                               e0 > 0 ? 100 * e1 / e0 : 0.0);
            } else if (!st) {
                hpcz_pass_note(ctx, "prune-channel", "'%s': least squares did not beat plain removal%s",
                               c->node->name ? c->node->name : "", info ? " (solve failed)" : "");
            }
            free(idx);
            free(Wn);
            free(bn);
            free(c->H);
            c->H = NULL;
        }
        hpcz_pass_note(ctx, "prune-channel", "%zu layer%s reconstructed on %s (output error %.1f%% of plain removal)",
                       done, done == 1 ? "" : "s", ctx->data, sum0 > 0 ? 100 * sum1 / sum0 : 0.0);
        /* second round: m now computes what the pruned model will (removed
         * input columns are zero everywhere); each consumer is solved again on
         * its own inputs in it against the original's outputs, which undoes
         * the error the layers before it left (He et al.'s sequential form,
         * with all layers from one pass) */
        if (refine && !st) {
            for (size_t i = 0; i < p.n_ed && !st; i++) {
                edit *e = &p.ed[i];
                hpcz_node *n = e->node;
                bool conv = is_op(n, "Conv") && hpcz_node_attr_int(n, "group", 1) == 1 && e->axis == 1;
                bool mm = is_op(n, "Gemm") || is_op(n, "MatMul");
                if (e->kind == EDIT_SLICE && e->input == 1 && (conv || mm) && edit_pruned(&p, e))
                    st = zero_removed(&p, e);
            }
            size_t next = 0, done2 = 0;
            double s1 = 0, s2 = 0;
            while (next < cs.n && !st) {
                double bytes = 0;
                size_t i = next;
                for (; i < cs.n; i++) {
                    cons *c = &cs.c[i];
                    size_t kk = (size_t)((c->K + 1) * (c->K + 1));
                    if (!c->W0)
                        continue;
                    if (i > next && (bytes + 24.0 * (double)kk > 768.0 * 1024 * 1024 || (int64_t)(i - next) >= chunk))
                        break;
                    bytes += 24.0 * (double)kk;
                    c->H = calloc(kk, sizeof(double));
                    c->Hp = calloc(kk, sizeof(double));
                    c->C = calloc(kk, sizeof(double));
                    if (!c->H || !c->Hp || !c->C) {
                        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                        break;
                    }
                    c->n = c->np = 0;
                    c->failed = false;
                    c->active = true;
                }
                if (!st)
                    st = cons_measure(m, orig, ctx, &cs, err);
                for (size_t j = next; j < i && !st; j++) {
                    cons *c = &cs.c[j];
                    if (!c->W0 || !c->H)
                        continue;
                    edit *e = &p.ed[c->edit];
                    int64_t n_idx;
                    int64_t *idx = kept_index(&p, &e->lay, c->blk, &n_idx);
                    double *Wn = malloc((size_t)(c->rows * c->K) * sizeof *Wn);
                    double *bn = malloc((size_t)c->rows * sizeof *bn);
                    double e1 = 0, e2 = 0;
                    if (!idx || !Wn || !bn)
                        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                    else if (cons_solve2(c, idx, n_idx, damp, Wn, bn, &e1, &e2) == 0 && e2 < e1) {
                        st = cons_write(g, c, Wn, bn, err);
                        done2++;
                        s1 += e1;
                        s2 += e2;
                        hpcz_pass_note(ctx, "prune-channel",
                                       "'%s' solved again on the pruned model's inputs: error %.4g -> %.4g",
                                       c->node->name ? c->node->name : "", e1, e2);
                    }
                    free(idx);
                    free(Wn);
                    free(bn);
                    free(c->H);
                    free(c->Hp);
                    free(c->C);
                    c->H = c->Hp = c->C = NULL;
                }
                next = i;
            }
            if (!st)
                hpcz_pass_note(ctx, "prune-channel",
                               "second round: %zu layer%s solved again on the pruned model's own inputs (error against "
                               "the original %.1f%% of the first round's)",
                               done2, done2 == 1 ? "" : "s", s1 > 0 ? 100 * s2 / s1 : 0.0);
        }
        hpcz_model_free(orig);
    }
out_cons:
    for (size_t i = 0; i < cs.n; i++) {
        free(cs.c[i].H);
        free(cs.c[i].Hp);
        free(cs.c[i].C);
        free(cs.c[i].W0);
        free(cs.c[i].b0);
        free(cs.c[i].buf);
    }
    free(cs.c);
    if (st)
        goto out;
    /* producers: slice their own output channels */
    for (int s = 0; s < p.n_sp && !st; s++) {
        space *root = &p.sp[find(&p, s)];
        hpcz_node *prod = p.sp[s].producer;
        if (root->bad || !prod || root->n_kept == root->channels)
            continue;
        layout l = {1, {s}, true, false};
        int64_t n_idx;
        int64_t *idx = kept_index(&p, &l, 1, &n_idx);
        if (!idx) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        bool conv = !strcmp(prod->op_type, "Conv");
        bool trans_b = !strcmp(prod->op_type, "Gemm") && hpcz_node_attr_int(prod, "transB", 0);
        st = slice_input(&p, prod, 1, conv || trans_b ? 0 : 1, idx, n_idx);
        if (!st && prod->n_inputs > 2 && prod->inputs[2]) {
            hpcz_tensor *b = hpcz_value_const(prod->inputs[2]);
            if (b && b->numel == p.sp[s].channels)
                st = slice_input(&p, prod, 2, b->ndim - 1, idx, n_idx);
            else if (b && b->numel != 1)
                st = hpcz_fail(err, HPCZ_ERR_INVALID, "internal: bias of '%s' not per channel",
                               prod->name ? prod->name : "");
        }
        free(idx);
    }
    for (size_t i = 0; i < p.n_ed && !st; i++) {
        edit *e = &p.ed[i];
        bool any_bad = false, any_pruned = false;
        for (int k = 0; k < e->lay.n_seg; k++) {
            space *r = &p.sp[find(&p, e->lay.seg[k])];
            any_bad |= r->bad;
            any_pruned |= !r->bad && r->n_kept < r->channels;
        }
        if (!any_pruned)
            continue;
        int64_t n_idx;
        int64_t *idx = kept_index(&p, &e->lay, e->block, &n_idx);
        if (!idx) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            break;
        }
        if (e->kind == EDIT_SLICE) {
            st = slice_input(&p, e->node, e->input, e->axis, idx, n_idx);
        } else {
            hpcz_attr *ga = hpcz_node_add_attr(e->node, "group", HPCZ_ATTR_INT);
            if (!ga)
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            else
                ga->i = n_idx;
        }
        (void)any_bad;
        free(idx);
    }
    if (st)
        goto out;
    /* shapes of traced intermediate values changed: drop their value_info */
    for (size_t i = 0; i < p.n_vals; i++) {
        layout *l = &p.lay[i];
        for (int k = 0; k < l->n_seg; k++) {
            space *r = &p.sp[find(&p, l->seg[k])];
            if (!r->bad && r->n_kept < r->channels) {
                p.vals[i]->ndim = -1;
                p.vals[i]->type_dirty = 1;
                break;
            }
        }
    }
    {
        size_t kv = 0;
        for (size_t i = 0; i < g->n_value_info; i++)
            if (!g->value_info[i]->type_dirty || g->value_info[i]->is_output)
                g->value_info[kv++] = g->value_info[i];
        g->n_value_info = kv;
    }
    hpcz_drop_unused_inits(g);
    {
        /* weights held by Constant nodes were sliced into new initializers:
         * the Constant nodes must go too, or the model grows (565 KiB ->
         * 894 KiB on a model of that form) */
        hpcz_count_uses(g);
        size_t dead = 0;
        for (size_t i = 0; i < g->n_nodes; i++) {
            hpcz_node *n = g->nodes[i];
            bool is_const = !strcmp(n->op_type, "Constant") && (!n->domain || !*n->domain);
            if (is_const && n->n_outputs == 1 && n->outputs[0] && !n->outputs[0]->is_output &&
                n->outputs[0]->aux == 0) {
                n->aux = -1;
                dead++;
            } else {
                n->aux = 0;
            }
        }
        if (dead)
            hpcz_graph_sweep(g);
    }
    hpcz_pass_note(ctx, "prune-channel", "%zu group%s pruned (%lld of %lld channels removed), %zu left alone",
                   groups, groups == 1 ? "" : "s", (long long)removed_total, (long long)channels_total,
                   skipped);
    if (groups == 0 && !st)
        st = hpcz_fail(err, HPCZ_ERR_INVALID, "no channel group can be pruned safely (%zu untraceable)",
                       skipped);
out:
    for (int s = 0; s < p.n_sp; s++) {
        free(p.sp[s].score);
        free(p.sp[s].keep);
    }
    for (size_t i = 0; i < p.n_vals; i++)
        p.vals[i]->aux = 0;
    free(p.sp);
    free(p.ed);
    free(p.lay);
    free(p.vals);
    free(order);
    hpcz_filter_release(&filt);
    return st;
}

const hpcz_pass hpcz_pass_prune_channel = {
    "prune-channel",
    "structured pruning: remove whole output channels and every tensor slice that reads them",
    opts,
    run,
};
