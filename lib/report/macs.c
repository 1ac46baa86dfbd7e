/*
 * macs.c - multiply-accumulates per sample, counted statically: the model is
 * planned for shapes (hpcz_plan_opts.shapes_only), never run.
 *
 * Running one sample to see the shapes made `hpcz prune` hang on a Loop of
 * 2^62 iterations and grow to gigabytes on a small Loop with scan outputs.
 * Now the top-level graph gets its shapes from the runtime's shape planning
 * (symbolic dimensions from the data when given, else 1), and what only a
 * run would tell is estimated from declarations: nodes whose shapes depend
 * on data take their declared output shapes, and the bodies of Loop, Scan
 * and If count one iteration (a Loop a constant trip count of at most
 * MAX_TRIPS times; an If its larger branch). Any of that marks the count
 * an estimate.
 */
#include "internal.h"

#define MAX_TRIPS 1000000

typedef struct macs_acc {
    uint64_t macs;
    bool estimate;
    size_t n_unknown;
} macs_acc;

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static bool is_op(const hpcz_node *n, const char *op)
{
    return !strcmp(n->op_type, op) && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"));
}

/* A constant behind v: an initializer or a Constant node, through up to two
 * DequantizeLinear nodes (QDQ weights). */
static hpcz_tensor *weight_behind(const hpcz_value *v)
{
    for (int hops = 0; v && hops < 3; hops++) {
        if (v->init)
            return v->init;
        const hpcz_node *p = v->producer;
        if (!p)
            return NULL;
        if (!strcmp(p->op_type, "Constant")) {
            const hpcz_attr *a = hpcz_node_attr(p, "value");
            return a ? a->t : NULL;
        }
        if (strcmp(p->op_type, "DequantizeLinear") || !p->n_inputs)
            return NULL;
        v = p->inputs[0];
    }
    return NULL;
}

/* MACs per output element of n (Conv, Gemm, MatMul and their integer
 * forms, with a constant weight); 0 for other nodes. */
static uint64_t macs_per_output(const hpcz_node *n)
{
    const char *op = n->op_type;
    if (n->domain && !strcmp(n->domain, "com.microsoft")) {
        /* MatMulNBits states K; the integer forms read a [K, N] weight */
        if (!strcmp(op, "MatMulNBits")) {
            int64_t k = hpcz_node_attr_int(n, "K", 0);
            return k > 0 ? (uint64_t)k : 0;
        }
        if (strcmp(op, "MatMulIntegerToFloat") && strcmp(op, "DynamicQuantizeMatMul"))
            return 0;
        hpcz_tensor *w = n->n_inputs > 1 ? weight_behind(n->inputs[1]) : NULL;
        return w && w->ndim >= 2 ? (uint64_t)w->dims[w->ndim - 2] : 0;
    }
    bool conv = !strcmp(op, "Conv") || !strcmp(op, "ConvInteger") || !strcmp(op, "QLinearConv");
    bool mm = !strcmp(op, "Gemm") || !strcmp(op, "MatMul") || !strcmp(op, "MatMulInteger") ||
              !strcmp(op, "QLinearMatMul");
    if (!conv && !mm)
        return 0;
    size_t wi = !strcmp(op, "QLinearConv") || !strcmp(op, "QLinearMatMul") ? 3 : 1;
    hpcz_tensor *w = n->n_inputs > wi ? weight_behind(n->inputs[wi]) : NULL;
    if (conv && w && w->ndim >= 3 && w->dims[0] > 0)
        return (uint64_t)(w->numel / w->dims[0]);
    if (mm && w && w->ndim >= 2) {
        bool tb = !strcmp(op, "Gemm") && hpcz_node_attr_int(n, "transB", 0);
        return (uint64_t)w->dims[tb ? w->ndim - 1 : w->ndim - 2];
    }
    return 0;
}

/* Elements of v from its declared shape (symbolic dimensions as 1); false
 * when the rank or a dimension is unknown. */
static bool declared_numel(const hpcz_value *v, uint64_t *out)
{
    if (!v || v->ndim < 0)
        return false;
    uint64_t n = 1;
    for (int d = 0; d < v->ndim; d++) {
        if (v->dims[d].size >= 0)
            n = sat_mul(n, (uint64_t)v->dims[d].size);
        else if (!v->dims[d].param)
            return false;
    }
    *out = n;
    return true;
}

/* A small constant integer behind v (the trip count of a Loop). */
static bool const_int(const hpcz_value *v, int64_t *out)
{
    if (!v)
        return false;
    hpcz_tensor *t = v->init;
    if (!t && v->producer && !strcmp(v->producer->op_type, "Constant")) {
        const hpcz_attr *a = hpcz_node_attr(v->producer, "value");
        t = a ? a->t : NULL;
    }
    if (!t || t->numel != 1 || (t->dtype != HPCZ_DTYPE_INT64 && t->dtype != HPCZ_DTYPE_INT32))
        return false;
    const void *d = hpcz_tensor_bytes(t, NULL);
    if (!d)
        return false;
    if (t->dtype == HPCZ_DTYPE_INT64) {
        int64_t x;
        memcpy(&x, d, sizeof x);
        *out = x;
    } else {
        int32_t x;
        memcpy(&x, d, sizeof x);
        *out = x;
    }
    return true;
}

static void count_declared(const hpcz_graph *g, uint64_t mult, macs_acc *a);

/* MACs of the subgraphs of n, each run `mult` times per sample. */
static void count_bodies(const hpcz_node *n, uint64_t mult, macs_acc *a)
{
    bool any = false;
    for (size_t i = 0; i < n->n_attrs; i++)
        any |= n->attrs[i].type == HPCZ_ATTR_GRAPH || n->attrs[i].type == HPCZ_ATTR_GRAPHS;
    if (!any)
        return;
    a->estimate = true;
    if (is_op(n, "If")) {
        /* one branch runs: count the larger */
        uint64_t best = 0;
        for (size_t i = 0; i < n->n_attrs; i++) {
            const hpcz_attr *at = &n->attrs[i];
            if (at->type != HPCZ_ATTR_GRAPH || !at->g)
                continue;
            macs_acc b = {0};
            count_declared(at->g, mult, &b);
            if (b.macs > best)
                best = b.macs;
            a->n_unknown += b.n_unknown;
        }
        a->macs = sat_add(a->macs, best);
        return;
    }
    uint64_t trips = 1;
    int64_t m;
    if (is_op(n, "Loop") && n->n_inputs > 0 && const_int(n->inputs[0], &m) && m >= 0 &&
        m <= MAX_TRIPS)
        trips = (uint64_t)m;
    else if (is_op(n, "Scan")) {
        /* iterations: the length of the first scan input along its axis */
        int64_t nscan = hpcz_node_attr_int(n, "num_scan_inputs", 0);
        int64_t nstate = (int64_t)n->n_inputs - nscan;
        if (nscan > 0 && nstate >= 0 && (size_t)nstate < n->n_inputs && n->inputs[nstate]) {
            const hpcz_value *v = n->inputs[nstate];
            const hpcz_attr *ax = hpcz_node_attr(n, "scan_input_axes");
            int64_t axis = ax && ax->type == HPCZ_ATTR_INTS && ax->n ? ax->ints[0] : 0;
            if (v->ndim > 0 && axis < 0)
                axis += v->ndim;
            if (axis >= 0 && axis < v->ndim && v->dims[axis].size >= 0 &&
                v->dims[axis].size <= MAX_TRIPS)
                trips = (uint64_t)v->dims[axis].size;
        }
    }
    for (size_t i = 0; i < n->n_attrs; i++) {
        const hpcz_attr *at = &n->attrs[i];
        if (at->type == HPCZ_ATTR_GRAPH && at->g)
            count_declared(at->g, sat_mul(mult, trips), a);
        else if (at->type == HPCZ_ATTR_GRAPHS)
            for (size_t k = 0; k < at->n; k++)
                count_declared(at->graphs[k], sat_mul(mult, trips), a);
    }
}

static void count_node_declared(const hpcz_node *n, uint64_t mult, macs_acc *a)
{
    uint64_t k = macs_per_output(n), numel;
    if (k) {
        if (n->n_outputs && declared_numel(n->outputs[0], &numel))
            a->macs = sat_add(a->macs, sat_mul(sat_mul(numel, k), mult));
        else
            a->n_unknown++;
        a->estimate = true;
    }
    count_bodies(n, mult, a);
}

/* Every node of g from declared shapes (subgraph bodies, or a model the
 * runtime cannot plan). */
static void count_declared(const hpcz_graph *g, uint64_t mult, macs_acc *a)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        count_node_declared(g->nodes[i], mult, a);
}

/* Input shapes to plan for: from one sample of `data`, or declared with
 * symbolic dimensions at 1; a fixed leading dimension is kept (and divided
 * out as the batch). */
static hpcz_status input_shapes(hpcz_plan *p, const char *data, hpcz_array *in, uint64_t *batch,
                                hpcz_error *err)
{
    size_t ni = hpcz_plan_n_inputs(p);
    if (data) {
        hpcz_dataset *d = hpcz_dataset_open(data, p, 1, err);
        if (!d)
            return err->status;
        hpcz_status st = hpcz_dataset_batch(d, 0, 1, in, err);
        hpcz_dataset_free(d);
        if (st)
            return st;
        for (size_t i = 0; i < ni; i++) {
            hpcz_array shape = in[i];
            hpcz_array_release(&in[i]); /* shapes only */
            in[i] = shape;
            in[i].data = NULL;
        }
    }
    *batch = 1;
    for (size_t i = 0; i < ni; i++) {
        const hpcz_value *v = hpcz_plan_input(p, i);
        if (!data) {
            if (v->ndim < 0 || v->ndim > HPCZ_ARRAY_MAX_RANK)
                return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED, "input '%s': rank unknown", v->name);
            memset(&in[i], 0, sizeof in[i]);
            in[i].dtype = v->dtype;
            in[i].ndim = v->ndim;
            for (int d = 0; d < v->ndim; d++)
                in[i].dims[d] = v->dims[d].size >= 0 ? v->dims[d].size : 1;
        }
        if (v->ndim >= 1 && in[i].ndim == v->ndim && v->dims[0].size > 0) {
            in[i].dims[0] = v->dims[0].size;
            if (i == 0)
                *batch = (uint64_t)v->dims[0].size;
        }
        in[i].numel = 1;
        for (int d = 0; d < in[i].ndim; d++)
            in[i].numel *= in[i].dims[d];
    }
    return HPCZ_OK;
}

hpcz_status hpcz_model_macs(hpcz_model *m, const char *data, int threads, hpcz_macs *out,
                            hpcz_error *err)
{
    memset(out, 0, sizeof *out);
    macs_acc a = {0};
    hpcz_plan_opts po = {0};
    po.threads = threads;
    po.shapes_only = 1;
    hpcz_error perr = {0};
    hpcz_plan *p = hpcz_plan_new(m, &po, &perr);
    if (!p) {
        if (perr.status == HPCZ_ERR_NOMEM) {
            *err = perr;
            return perr.status;
        }
        /* ops the runtime lacks: declarations only */
        count_declared(m->graph, 1, &a);
        a.estimate = true;
        goto done;
    }
    size_t ni = hpcz_plan_n_inputs(p);
    hpcz_array *in = calloc(ni ? ni : 1, sizeof *in);
    if (!in) {
        hpcz_plan_free(p);
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    }
    uint64_t batch = 1;
    hpcz_status st = input_shapes(p, data, in, &batch, err);
    if (st && data) {
        free(in);
        hpcz_plan_free(p);
        return st; /* bad data: said so */
    }
    if (st || hpcz_plan_shapes(p, in, &perr)) {
        count_declared(m->graph, 1, &a);
        a.estimate = true;
    } else {
        for (size_t k = 0; k < hpcz_plan_n_nodes(p); k++) {
            const hpcz_node *n = hpcz_plan_node(p, k);
            if (hpcz_plan_node_folded(p, k))
                continue; /* evaluated once at plan time */
            uint64_t kk = macs_per_output(n);
            const hpcz_array *y = hpcz_plan_node_output(p, k, 0);
            if (kk && y)
                a.macs = sat_add(a.macs, sat_mul((uint64_t)y->numel, kk));
            else
                count_node_declared(n, 1, &a); /* shape known only at run time */
        }
        if (batch > 1)
            a.macs /= batch;
    }
    free(in);
    hpcz_plan_free(p);
done:
    out->macs = a.macs;
    out->estimate = a.estimate || a.n_unknown;
    out->n_unknown = a.n_unknown;
    return HPCZ_OK;
}
