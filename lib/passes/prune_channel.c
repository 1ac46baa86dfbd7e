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
 */
#include "passes.h"

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
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return x->c < y->c ? -1 : x->c > y->c;
}

static const hpcz_pass_opt opts[] = {
    {"ratio", HPCZ_OPT_FLOAT, "0.25", "share of channels removed from each prunable group, in [0, 1)", NULL, 0, 0.999},
    {"criterion", HPCZ_OPT_ENUM, "l1", "channel importance: filter L1 or L2 norm, or |BatchNorm gamma|", "l1|l2|bn-gamma", 0, 0},
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
    /* choose channels per root */
    size_t groups = 0, skipped = 0;
    int64_t removed_total = 0, channels_total = 0;
    bool l2 = !strcmp(crit, "l2"), gamma = !strcmp(crit, "bn-gamma");
    for (int s = 0; s < p.n_sp; s++) {
        int r = find(&p, s);
        space *root = &p.sp[r];
        if (root->bad || root->score)
            continue;
        root->score = calloc((size_t)root->channels, sizeof *root->score);
        root->keep = malloc((size_t)root->channels);
        if (!root->score || !root->keep) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        memset(root->keep, 1, (size_t)root->channels);
        /* sum of each member producer's scores, each normalised by its max */
        for (int t = 0; t < p.n_sp; t++) {
            if (find(&p, t) != r || !p.sp[t].producer)
                continue;
            const hpcz_node *prod = p.sp[t].producer;
            const float *gm = gamma ? bn_gamma(g, prod) : NULL;
            double mx = 0;
            double *tmp = malloc((size_t)root->channels * sizeof *tmp);
            if (!tmp) {
                st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
                goto out;
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
        int64_t remove = (int64_t)floor(ratio * (double)root->channels);
        if (root->channels - remove < min_ch)
            remove = root->channels > min_ch ? root->channels - min_ch : 0;
        ranked *rk = malloc((size_t)root->channels * sizeof *rk);
        if (!rk) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int64_t c = 0; c < root->channels; c++)
            rk[c] = (ranked){root->score[c], c};
        qsort(rk, (size_t)root->channels, sizeof *rk, cmp_ranked);
        for (int64_t k = 0; k < remove; k++)
            root->keep[rk[k].c] = 0;
        free(rk);
        root->n_kept = (int)(root->channels - remove);
        groups++;
        removed_total += remove;
        channels_total += root->channels;
        char members[512] = "";
        size_t ml = 0;
        for (int t = 0; t < p.n_sp && ml < sizeof members; t++)
            if (find(&p, t) == r && p.sp[t].producer)
                ml += (size_t)snprintf(members + ml, sizeof members - ml, "%s'%s'", ml ? ", " : "",
                                       p.sp[t].producer->name ? p.sp[t].producer->name : "");
        hpcz_pass_note(ctx, "prune-channel", "group %s: %lld -> %lld channels", members,
                       (long long)root->channels, (long long)(root->channels - remove));
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
