/*
 * verify.c - structural checks of a model: the invariants passes rely on.
 */
#include "internal.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool defined(const hpcz_value *v)
{
    return v->is_input || v->init || v->is_sparse_init || v->producer;
}

static hpcz_status verify_graph(const hpcz_graph *g, hpcz_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const hpcz_node *n = g->nodes[i];
        if (!n->op_type || !*n->op_type)
            return hpcz_fail(err, HPCZ_ERR_INVALID, "node %zu ('%s') has no op_type", i,
                             nz(n->name));
        for (size_t j = 0; j < n->n_inputs; j++) {
            const hpcz_value *v = n->inputs[j];
            if (v && !defined(v))
                return hpcz_fail(err, HPCZ_ERR_INVALID, "node '%s' (%s): input '%s' is not defined",
                                 nz(n->name), n->op_type, v->name);
        }
        for (size_t j = 0; j < n->n_outputs; j++) {
            const hpcz_value *v = n->outputs[j];
            if (!v)
                continue;
            if (v->producer != n)
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "value '%s' is produced by two nodes ('%s' and '%s')", v->name,
                                 v->producer ? nz(v->producer->name) : "", nz(n->name));
            if (v->init)
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "node '%s' (%s) writes '%s', which is an initializer",
                                 nz(n->name), n->op_type, v->name);
        }
        for (size_t a = 0; a < n->n_attrs; a++) {
            const hpcz_attr *at = &n->attrs[a];
            hpcz_status st;
            if (at->type == HPCZ_ATTR_GRAPH && at->g && (st = verify_graph(at->g, err)))
                return st;
            if (at->type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < at->n; k++)
                    if ((st = verify_graph(at->graphs[k], err)))
                        return st;
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        if (!defined(g->outputs[i]))
            return hpcz_fail(err, HPCZ_ERR_INVALID, "graph output '%s' is not defined",
                             g->outputs[i]->name);
    for (size_t i = 0; i < g->n_inits; i++) {
        const hpcz_tensor *t = g->inits[i];
        const hpcz_value *v = hpcz_graph_find_value(g, t->name);
        if (!v || v->init != t) {
            /* a second initializer with the same name */
            return hpcz_fail(err, HPCZ_ERR_INVALID, "initializer '%s' is defined twice",
                             nz(t->name));
        }
        if (v->dtype != HPCZ_DTYPE_UNDEFINED && v->dtype != t->dtype)
            return hpcz_fail(err, HPCZ_ERR_INVALID,
                             "initializer '%s' is %s but its declared type is %s", nz(t->name),
                             hpcz_dtype_name(t->dtype), hpcz_dtype_name(v->dtype));
        if (v->ndim >= 0) {
            bool bad = v->ndim != t->ndim;
            for (int d = 0; !bad && d < t->ndim; d++)
                bad = v->dims[d].size >= 0 && v->dims[d].size != t->dims[d];
            if (bad)
                return hpcz_fail(err, HPCZ_ERR_INVALID,
                                 "initializer '%s': its shape differs from its declared shape",
                                 nz(t->name));
        }
    }
    /* Cycles: a topological order must exist. */
    if (g->n_nodes) {
        hpcz_node **order = malloc(g->n_nodes * sizeof *order);
        if (!order)
            return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        hpcz_status st = hpcz_graph_topo_order(g, order, err);
        free(order);
        if (st)
            return st;
    }
    return HPCZ_OK;
}

hpcz_status hpcz_model_verify(const hpcz_model *m, hpcz_error *err)
{
    if (!m->graph)
        return hpcz_fail(err, HPCZ_ERR_INVALID, "model has no graph");
    return verify_graph(m->graph, err);
}
