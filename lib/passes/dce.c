/*
 * dce.c - dead-code elimination: nodes whose outputs nothing reads, then
 * initializers nothing reads. Graph inputs and outputs are the interface and
 * stay.
 */
#include "passes.h"

static void release_reads(hpcz_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j])
                n->inputs[j]->aux--;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                release_reads(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    release_reads(n->attrs[a].graphs[k]);
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        g->outputs[i]->aux--;
}

typedef struct dce_stats {
    size_t nodes, inits;
} dce_stats;

static hpcz_status dce_graph(hpcz_graph *g, hpcz_pass_ctx *ctx, dce_stats *s, hpcz_error *err)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        hpcz_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            hpcz_status st;
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g &&
                (st = dce_graph(n->attrs[a].g, ctx, s, err)))
                return st;
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t k = 0; k < n->attrs[a].n; k++)
                    if ((st = dce_graph(n->attrs[a].graphs[k], ctx, s, err)))
                        return st;
        }
    }
    hpcz_count_uses(g);
    hpcz_node **order = g->n_nodes ? malloc(g->n_nodes * sizeof *order) : NULL;
    if (g->n_nodes && !order)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = hpcz_graph_topo_order(g, order, err);
    if (st) {
        free(order);
        return st;
    }
    /* consumers before producers, so whole dead chains go in one sweep */
    for (size_t k = g->n_nodes; k-- > 0;) {
        hpcz_node *n = order[k];
        bool live = false;
        for (size_t j = 0; j < n->n_outputs && !live; j++)
            live = n->outputs[j] && (n->outputs[j]->aux > 0 || n->outputs[j]->is_output);
        if (live)
            continue;
        n->aux = -1;
        s->nodes++;
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j])
                n->inputs[j]->aux--;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].type == HPCZ_ATTR_GRAPH && n->attrs[a].g)
                release_reads(n->attrs[a].g);
            if (n->attrs[a].type == HPCZ_ATTR_GRAPHS)
                for (size_t i = 0; i < n->attrs[a].n; i++)
                    release_reads(n->attrs[a].graphs[i]);
        }
        hpcz_pass_note(ctx, "dce", "removed unused node '%s' (%s)", n->name ? n->name : "",
                       n->op_type);
    }
    free(order);
    hpcz_graph_sweep(g);
    size_t keep = 0;
    for (size_t i = 0; i < g->n_inits; i++) {
        hpcz_tensor *t = g->inits[i];
        hpcz_value *v = hpcz_valmap_get(g->values, t->name);
        if (v && v->init == t && v->aux <= 0 && !v->is_output && !v->is_input) {
            v->init = NULL;
            s->inits++;
            hpcz_pass_note(ctx, "dce", "removed unused initializer '%s'", t->name);
            continue;
        }
        g->inits[keep++] = t;
    }
    g->n_inits = keep;
    hpcz_graph_sweep(g); /* drops value_info of the removed initializers */
    return HPCZ_OK;
}

size_t hpcz_drop_unused_inits(hpcz_graph *g)
{
    hpcz_graph *top = g;
    while (top->parent)
        top = top->parent;
    hpcz_count_uses(top);
    size_t keep = 0, dropped = 0;
    for (size_t i = 0; i < g->n_inits; i++) {
        hpcz_tensor *t = g->inits[i];
        hpcz_value *v = hpcz_valmap_get(g->values, t->name);
        if (v && v->init == t && v->aux <= 0 && !v->is_output && !v->is_input) {
            v->init = NULL;
            dropped++;
            continue;
        }
        g->inits[keep++] = t;
    }
    g->n_inits = keep;
    hpcz_graph_sweep(g);
    return dropped;
}

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    (void)a;
    dce_stats s = {0};
    hpcz_status st = dce_graph(m->graph, ctx, &s, err);
    if (st)
        return st;
    ctx->nodes_removed += s.nodes;
    hpcz_pass_note(ctx, "dce", "%zu unused node%s and %zu unused initializer%s removed", s.nodes,
                   s.nodes == 1 ? "" : "s", s.inits, s.inits == 1 ? "" : "s");
    return HPCZ_OK;
}

const hpcz_pass hpcz_pass_dce = {
    "dce",
    "remove nodes and initializers whose results nothing reads",
    NULL,
    run,
};
