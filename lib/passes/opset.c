/*
 * opset.c - upgrade a model's ai.onnx opset (quantization needs 13 for
 * per-axis DequantizeLinear and 21 for int4 / blocked scales).
 *
 * Only the schema changes that alter how a node is written are converted:
 * attributes that became inputs (Clip, Pad, Slice, TopK @10-11; Squeeze,
 * Unsqueeze, Split, ReduceSum @13; the other Reduce ops @18), Softmax-family
 * axis semantics @13, Split's num_outputs @18, Resize-10's inputs @11, and
 * training-only attributes of Dropout and BatchNormalization. Everything else
 * between opset 7 and 21 is compatible for inference. An op whose change is
 * not handled here makes the upgrade fail before anything is modified.
 */
#include "passes.h"

static bool is_default(const hpcz_node *n)
{
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

static bool is_reduce18(const char *op)
{
    static const char *const ops[] = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                      "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                      "ReduceSumSquare"};
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(ops); i++)
        if (!strcmp(op, ops[i]))
            return true;
    return false;
}

/* NULL when the node converts; else why not. */
static const char *blocker(const hpcz_node *n, int64_t from, int64_t to)
{
    const char *op = n->op_type;
    if (from < 7)
        return "opsets below 7 are not upgraded";
    if (!strcmp(op, "Upsample") && to >= 10)
        return "Upsample was removed in opset 10";
    if (!strcmp(op, "GroupNormalization") && from < 21 && to >= 21)
        return "GroupNormalization changed its scale/bias layout in opset 21";
    if (!strcmp(op, "Scan") && from < 9 && to >= 9)
        return "Scan changed its inputs in opset 9";
    if (!strcmp(op, "BatchNormalization") && from < 9 &&
        hpcz_node_attr_int(n, "spatial", 1) != 1)
        return "BatchNormalization with spatial=0";
    if (!strcmp(op, "Resize") && from < 11 && to >= 11) {
        const char *mode = hpcz_node_attr_string(n, "mode", "nearest");
        if (strcmp(mode, "nearest") && strcmp(mode, "linear"))
            return "Resize-10 mode";
    }
    return NULL;
}

/* Moves an INTS attribute into a new int64 input at position idx. */
static hpcz_status attr_to_input(hpcz_node *n, const char *attr, size_t idx, hpcz_error *err)
{
    const hpcz_attr *a = hpcz_node_attr(n, attr);
    if (!a) {
        if (idx >= n->n_inputs)
            return HPCZ_OK; /* absent stays absent */
        return HPCZ_OK;
    }
    int64_t dims[1] = {(int64_t)a->n};
    hpcz_value *v = hpcz_new_const(n->graph, n->name && *n->name ? n->name : n->op_type, HPCZ_DTYPE_INT64,
                                   1, dims, a->ints, err);
    if (!v)
        return err->status;
    if (!hpcz_node_set_input(n, idx, v))
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_node_remove_attr(n, attr);
    return HPCZ_OK;
}

static hpcz_status scalar_input(hpcz_node *n, size_t idx, float value, hpcz_error *err)
{
    hpcz_value *v = hpcz_new_const(n->graph, n->name && *n->name ? n->name : n->op_type,
                                   HPCZ_DTYPE_FLOAT, 0, NULL, &value, err);
    if (!v)
        return err->status;
    return hpcz_node_set_input(n, idx, v) ? HPCZ_OK : hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
}

/* Softmax-family before 13 normalizes over the input flattened to 2-D at
 * `axis`; from 13 over `axis` alone. Equal when axis is the last one. */
static hpcz_status softmax13(hpcz_node *n, hpcz_error *err)
{
    int64_t axis = hpcz_node_attr_int(n, "axis", 1);
    const hpcz_value *x = n->inputs[0];
    if (axis == -1 || (x && x->ndim > 0 && axis == x->ndim - 1))
        return HPCZ_OK;
    /* y = Reshape(Softmax13(Flatten(x, axis), axis=1), Shape(x)) */
    hpcz_graph *g = n->graph;
    const char *base = n->name && *n->name ? n->name : n->op_type;
    hpcz_node *shape = hpcz_graph_add_node(g, "Shape", hpcz_unique_name(g, base, "shape"), 1, 1);
    hpcz_node *flat = hpcz_graph_add_node(g, "Flatten", hpcz_unique_name(g, base, "flatten"), 1, 1);
    hpcz_node *reshape = hpcz_graph_add_node(g, "Reshape", hpcz_unique_name(g, base, "reshape"), 2, 1);
    hpcz_attr *fa = flat ? hpcz_node_add_attr(flat, "axis", HPCZ_ATTR_INT) : NULL;
    if (!shape || !flat || !reshape || !fa)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    fa->i = axis;
    shape->inputs[0] = n->inputs[0];
    hpcz_node_set_output(shape, 0, hpcz_graph_value(g, hpcz_unique_name(g, base, "in_shape")));
    flat->inputs[0] = n->inputs[0];
    hpcz_node_set_output(flat, 0, hpcz_graph_value(g, hpcz_unique_name(g, base, "in_2d")));
    hpcz_value *y = n->outputs[0];
    hpcz_value *y2 = hpcz_graph_value(g, hpcz_unique_name(g, base, "out_2d"));
    n->inputs[0] = flat->outputs[0];
    hpcz_node_set_output(n, 0, y2);
    hpcz_attr *a = hpcz_node_add_attr(n, "axis", HPCZ_ATTR_INT);
    if (!a)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    a->i = 1;
    reshape->inputs[0] = y2;
    reshape->inputs[1] = shape->outputs[0];
    hpcz_node_set_output(reshape, 0, y);
    n->src = NULL;
    return HPCZ_OK;
}

static hpcz_status convert(hpcz_node *n, int64_t from, int64_t to, hpcz_error *err)
{
    const char *op = n->op_type;
    hpcz_status st = HPCZ_OK;
    bool changed = true;
    if (!strcmp(op, "Clip") && from < 11 && to >= 11) {
        const hpcz_attr *lo = hpcz_node_attr(n, "min"), *hi = hpcz_node_attr(n, "max");
        float lov = lo ? lo->f : -3.402823466e38f, hiv = hi ? hi->f : 3.402823466e38f;
        if ((st = scalar_input(n, 1, lov, err)) || (st = scalar_input(n, 2, hiv, err)))
            return st;
        hpcz_node_remove_attr(n, "min");
        hpcz_node_remove_attr(n, "max");
    } else if (!strcmp(op, "Pad") && from < 11 && to >= 11) {
        float value = hpcz_node_attr_float(n, "value", 0.0f);
        if ((st = attr_to_input(n, "pads", 1, err)) || (st = scalar_input(n, 2, value, err)))
            return st;
        hpcz_node_remove_attr(n, "value");
    } else if (!strcmp(op, "Slice") && from < 10 && to >= 10) {
        if ((st = attr_to_input(n, "starts", 1, err)) || (st = attr_to_input(n, "ends", 2, err)) ||
            (st = attr_to_input(n, "axes", 3, err)))
            return st;
    } else if (!strcmp(op, "TopK") && from < 10 && to >= 10) {
        int64_t k = hpcz_node_attr_int(n, "k", 1), dims[1] = {1};
        hpcz_value *v = hpcz_new_const(n->graph, n->name && *n->name ? n->name : op, HPCZ_DTYPE_INT64,
                                       1, dims, &k, err);
        if (!v || !hpcz_node_set_input(n, 1, v))
            return v ? hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory") : err->status;
        hpcz_node_remove_attr(n, "k");
    } else if (!strcmp(op, "Dropout") && from < 12 && to >= 12) {
        hpcz_node_remove_attr(n, "is_test");
        hpcz_node_remove_attr(n, "ratio"); /* inference: identity whatever the ratio */
    } else if (!strcmp(op, "BatchNormalization") && from < 9 && to >= 9) {
        hpcz_node_remove_attr(n, "spatial");
        hpcz_node_remove_attr(n, "is_test");
    } else if ((!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") || !strcmp(op, "ReduceSum")) &&
               from < 13 && to >= 13) {
        st = attr_to_input(n, "axes", 1, err);
    } else if (!strcmp(op, "Split") && from < 18 && to >= 13) {
        if (from < 13 && (st = attr_to_input(n, "split", 1, err)))
            return st;
        if (to >= 18 && (n->n_inputs < 2 || !n->inputs[1])) {
            hpcz_attr *a = hpcz_node_add_attr(n, "num_outputs", HPCZ_ATTR_INT);
            if (!a)
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            a->i = (int64_t)n->n_outputs;
        }
    } else if (is_reduce18(op) && from < 18 && to >= 18) {
        st = attr_to_input(n, "axes", 1, err);
    } else if ((!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax") || !strcmp(op, "Hardmax")) &&
               from < 13 && to >= 13) {
        st = softmax13(n, err);
    } else if (!strcmp(op, "Resize") && from < 11 && to >= 11) {
        /* Resize-10 (X, scales) -> (X, roi, scales); 10's sampling was "asymmetric" */
        hpcz_value *scales = n->n_inputs > 1 ? n->inputs[1] : NULL;
        if (!hpcz_node_set_input(n, 2, scales))
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        n->inputs[1] = NULL;
        hpcz_attr *a = hpcz_node_add_attr(n, "coordinate_transformation_mode", HPCZ_ATTR_STRING);
        if (!a)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        a->s.data = (const uint8_t *)"asymmetric";
        a->s.len = strlen("asymmetric");
        if (!strcmp(hpcz_node_attr_string(n, "mode", "nearest"), "nearest")) {
            hpcz_attr *b = hpcz_node_add_attr(n, "nearest_mode", HPCZ_ATTR_STRING);
            if (!b)
                return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            b->s.data = (const uint8_t *)"floor";
            b->s.len = strlen("floor");
        }
    } else {
        changed = false;
    }
    if (changed)
        n->src = NULL; /* residual fields of the old proto no longer apply */
    return st;
}

typedef struct walk {
    int64_t from, to;
    hpcz_error *err;
    const hpcz_node *bad;
    const char *why;
    size_t converted;
} walk;

static int check_graph(hpcz_graph *g, void *ctx)
{
    walk *w = ctx;
    for (size_t i = 0; i < g->n_nodes && !w->bad; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!is_default(n))
            continue;
        const char *why = blocker(n, w->from, w->to);
        if (why) {
            w->bad = n;
            w->why = why;
        }
    }
    return w->bad != NULL;
}

static int convert_graph(hpcz_graph *g, void *ctx)
{
    walk *w = ctx;
    size_t n0 = g->n_nodes; /* nodes appended by conversions need none */
    for (size_t i = 0; i < n0; i++) {
        hpcz_node *n = g->nodes[i];
        if (!is_default(n))
            continue;
        if (convert(n, w->from, w->to, w->err))
            return 1;
    }
    if (g->n_nodes != n0 && hpcz_graph_toposort(g, w->err))
        return 1;
    return 0;
}

hpcz_status hpcz_model_upgrade_opset(hpcz_model *m, int64_t target, hpcz_pass_ctx *ctx,
                                     hpcz_error *err)
{
    int64_t from = hpcz_model_opset(m, "");
    if (from >= target)
        return HPCZ_OK;
    if (from == 0)
        from = 1;
    walk w = {from, target, err, NULL, NULL, 0};
    hpcz_model_foreach_graph(m, check_graph, &w);
    if (w.bad)
        return hpcz_fail(err, HPCZ_ERR_UNSUPPORTED,
                         "cannot upgrade opset %lld to %lld: node '%s' (%s): %s", (long long)from,
                         (long long)target, w.bad->name ? w.bad->name : "", w.bad->op_type, w.why);
    if (hpcz_model_foreach_graph(m, convert_graph, &w))
        return err->status ? err->status : HPCZ_ERR_INVALID;
    bool found = false;
    for (size_t i = 0; i < m->n_opsets; i++) {
        const char *d = m->opsets[i].domain;
        if (!d || !*d || !strcmp(d, "ai.onnx")) {
            m->opsets[i].version = target;
            found = true;
        }
    }
    if (!found) {
        hpcz_opset *no = hpcz_model_alloc(m, (m->n_opsets + 1) * sizeof *no);
        if (!no)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        if (m->n_opsets)
            memcpy(no, m->opsets, m->n_opsets * sizeof *no);
        no[m->n_opsets].domain = "";
        no[m->n_opsets].version = target;
        m->opsets = no;
        m->n_opsets++;
    }
    /* opset 21 needs IR version 10 (int4 types) */
    int64_t ir = target >= 21 ? 10 : target >= 19 ? 9 : target >= 15 ? 8 : 7;
    if (m->ir_version < ir)
        m->ir_version = ir;
    hpcz_pass_note(ctx, "upgrade-opset", "ai.onnx opset %lld -> %lld", (long long)from,
                   (long long)target);
    return HPCZ_OK;
}

static const hpcz_pass_opt opts[] = {
    {"to", HPCZ_OPT_INT, "21", "target ai.onnx opset", NULL, 7, 23},
    {0},
};

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    return hpcz_model_upgrade_opset(m, hpcz_pass_arg(a, "to").i, ctx, err);
}

const hpcz_pass hpcz_pass_upgrade_opset = {
    "upgrade-opset",
    "raise the ai.onnx opset, rewriting the ops whose schema changed",
    opts,
    run,
};
