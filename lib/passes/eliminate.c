/*
 * eliminate.c - remove nodes that compute nothing: Identity, inference
 * Dropout, Reshape to the same shape, identity Transpose, Cast to the same
 * type. Graph output names are kept.
 */
#include "passes.h"

static bool is_default_domain(const hpcz_node *n)
{
    return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx");
}

static bool shape_known(const hpcz_value *v)
{
    if (!v || v->ndim < 0)
        return false;
    for (int i = 0; i < v->ndim; i++)
        if (v->dims[i].size < 0)
            return false;
    return true;
}

/* Why this node is a no-op, or NULL when it is not (or we cannot tell). */
static const char *noop_reason(const hpcz_node *n)
{
    if (!is_default_domain(n) || n->n_inputs < 1 || !n->inputs[0] || n->n_outputs < 1 ||
        !n->outputs[0])
        return NULL;
    const char *op = n->op_type;
    const hpcz_value *x = n->inputs[0];
    if (!strcmp(op, "Identity"))
        return "Identity";
    if (!strcmp(op, "Dropout")) {
        if (n->n_outputs > 1 && n->outputs[1] && (n->outputs[1]->aux > 0 || n->outputs[1]->is_output))
            return NULL; /* the mask is used */
        if (hpcz_node_opset(n) < 7 && hpcz_node_attr_int(n, "is_test", 0) == 0)
            return NULL;
        if (n->n_inputs > 2 && n->inputs[2]) {
            hpcz_tensor *t = hpcz_value_const(n->inputs[2]);
            hpcz_error e;
            const uint8_t *d = t && t->dtype == HPCZ_DTYPE_BOOL ? hpcz_tensor_data(t, &e) : NULL;
            if (!d || t->numel != 1 || d[0])
                return NULL; /* training_mode may be true */
        }
        return "inference Dropout";
    }
    if (!strcmp(op, "Transpose")) {
        const hpcz_attr *p = hpcz_node_attr(n, "perm");
        if (!p)
            return x->ndim >= 0 && x->ndim <= 1 ? "Transpose of rank <= 1" : NULL;
        for (size_t i = 0; i < p->n; i++)
            if (p->ints[i] != (int64_t)i)
                return NULL;
        return "identity Transpose";
    }
    if (!strcmp(op, "Cast")) {
        int64_t to = hpcz_node_attr_int(n, "to", -1);
        return x->dtype != HPCZ_DTYPE_UNDEFINED && x->dtype == to ? "Cast to the same type" : NULL;
    }
    if (!strcmp(op, "Reshape") && n->n_inputs >= 2 && shape_known(x)) {
        hpcz_tensor *s = hpcz_value_const(n->inputs[1]);
        hpcz_error e;
        const int64_t *d = s && s->dtype == HPCZ_DTYPE_INT64 ? hpcz_tensor_data(s, &e) : NULL;
        if (!d || s->numel != x->ndim)
            return NULL;
        int allowzero = (int)hpcz_node_attr_int(n, "allowzero", 0);
        for (int i = 0; i < x->ndim; i++) {
            int64_t want = x->dims[i].size;
            if (d[i] == want || (d[i] == 0 && !allowzero))
                continue;
            if (d[i] == -1) {
                /* -1 is inferred: it equals the input dim when every other one does */
                continue;
            }
            return NULL;
        }
        int minus = 0;
        for (int i = 0; i < x->ndim; i++)
            minus += d[i] == -1;
        return minus <= 1 ? "Reshape to the same shape" : NULL;
    }
    return NULL;
}

static size_t eliminate_graph(hpcz_graph *g, hpcz_pass_ctx *ctx)
{
    size_t removed = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                removed += eliminate_graph(n->attrs[a].g, ctx);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    removed += eliminate_graph(n->attrs[a].graphs[k], ctx);
        }
    }
    hpcz_count_uses(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        const char *why = noop_reason(n);
        if (!why)
            continue;
        if (hpcz_bypass_node(g, n, n->inputs[0], n->outputs[0])) {
            removed++;
            hpcz_pass_note(ctx, "eliminate", "removed '%s': %s", n->name ? n->name : "", why);
        }
    }
    hpcz_graph_sweep(g);
    return removed;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    (void)a;
    (void)err;
    size_t total = 0, n;
    while ((n = eliminate_graph(m->graph, ctx)) > 0)
        total += n;
    ctx->nodes_removed += total;
    hpcz_pass_note(ctx, "eliminate", "%zu no-op node%s removed", total, total == 1 ? "" : "s");
    return HPCZ_OK;
}

const hpcz_pass hpcz_pass_eliminate = {
    "eliminate",
    "remove Identity, inference Dropout, no-op Reshape/Transpose and Cast to the same type",
    NULL,
    run,
};
