/*
 * fold_constants.c - evaluate, once and with hpcz's runtime, every node whose
 * inputs are all constant, and replace what they compute by initializers.
 * Exporters leave such chains behind (shape arithmetic on constant shapes,
 * weights transposed or reshaped at run time, scale computations).
 */
#include "passes.h"

#include <stdio.h>

static bool foldable_op(const hpcz_node *n)
{
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return false;
    static const char *const never[] = {"Constant", "RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Multinomial", "Bernoulli", "If", "Loop",
                                        "Scan", "SequenceEmpty", "Optional"};
    for (size_t i = 0; i < HPCZ_ARRAY_SIZE(never); i++)
        if (!strcmp(n->op_type, never[i]))
            return false;
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == HPCZ_ATTR_GRAPH || n->attrs[a].type == HPCZ_ATTR_GRAPHS)
            return false;
    return n->n_outputs > 0;
}

static const hpcz_pass_opt opts[] = {
    {"max-bytes", HPCZ_OPT_INT, "67108864", "leave results larger than this computed at run time", NULL, 0, 1e12},
    {0},
};

static hpcz_status run(hpcz_model *m, const hpcz_pass_args *a, hpcz_pass_ctx *ctx, hpcz_error *err)
{
    int64_t max_bytes = hpcz_pass_arg(a, "max-bytes").i;
    hpcz_graph *g = m->graph;
    size_t nn = g->n_nodes;
    if (!nn)
        return HPCZ_OK;
    hpcz_node **order = malloc(nn * sizeof *order);
    if (!order)
        return hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
    hpcz_status st = hpcz_graph_topo_order(g, order, err);
    if (st) {
        free(order);
        return st;
    }
    /* node aux: 1 = foldable; value aux: 1 = constant */
    for (size_t i = 0; i < nn; i++) {
        hpcz_node *n = order[i];
        n->aux = 0;
        for (size_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j])
                n->outputs[j]->aux = n->outputs[j]->init || hpcz_value_const(n->outputs[j]) ? 1 : 0;
        for (size_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j])
                n->inputs[j]->aux = hpcz_value_const(n->inputs[j]) ? 1 : 0;
    }
    size_t n_fold = 0;
    for (size_t i = 0; i < nn; i++) {
        hpcz_node *n = order[i];
        if (!strcmp(n->op_type, "Constant"))
            n->aux = 2; /* not folded, but the evaluation copy needs it */
        if (!foldable_op(n))
            continue;
        bool all = true;
        for (size_t j = 0; j < n->n_inputs && all; j++)
            all = !n->inputs[j] || (n->inputs[j]->aux == 1 && n->inputs[j]->graph == g);
        if (!all)
            continue;
        n->aux = 1;
        n_fold++;
        for (size_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j])
                n->outputs[j]->aux = 1;
    }
    if (!n_fold) {
        free(order);
        for (size_t i = 0; i < nn; i++)
            g->nodes[i]->aux = 0;
        hpcz_pass_note(ctx, "fold-constants", "nothing to fold");
        return HPCZ_OK;
    }
    /* results that something else needs: the boundary */
    hpcz_count_uses(g); /* value aux now counts uses: recompute which outputs leave the folded set */
    size_t n_out = 0;
    hpcz_value **outs = malloc(nn * 4 * sizeof *outs + sizeof *outs);
    size_t cap_out = nn * 4;
    for (size_t i = 0; i < nn && outs; i++) {
        hpcz_node *n = order[i];
        if (n->aux != 1)
            continue;
        for (size_t j = 0; j < n->n_outputs; j++) {
            hpcz_value *v = n->outputs[j];
            if (!v)
                continue;
            bool needed = v->is_output;
            for (size_t k = 0; k < nn && !needed; k++) {
                const hpcz_node *c = g->nodes[k];
                if (c->aux == 1)
                    continue;
                for (size_t q = 0; q < c->n_inputs && !needed; q++)
                    needed = c->inputs[q] == v;
                for (size_t q = 0; q < c->n_attrs && !needed; q++)
                    if (c->attrs[q].type == HPCZ_ATTR_GRAPH && c->attrs[q].g)
                        needed = hpcz_graph_count_uses(c->attrs[q].g, v) > 0;
            }
            if (needed && n_out < cap_out)
                outs[n_out++] = v;
        }
    }
    /* evaluate: a copy of the model cut down to the folded nodes */
    uint8_t *buf = NULL;
    size_t len = 0;
    hpcz_model *cp = NULL;
    hpcz_plan *plan = NULL;
    hpcz_array *res = NULL;
    if (!outs) {
        st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!n_out)
        goto rewrite;
    if ((st = hpcz_onnx_serialize(m, NULL, &buf, &len, err)))
        goto out;
    hpcz_load_opts lo = {.skip_verify = 1};
    cp = hpcz_onnx_load_buffer(buf, len, &lo, err);
    if (!cp) {
        st = err->status;
        goto out;
    }
    {
        hpcz_graph *cg = cp->graph;
        for (size_t i = 0; i < cg->n_nodes; i++) {
            const hpcz_node *orig = NULL;
            /* same position in file order as in m (the copy is a round trip) */
            orig = g->nodes[i];
            cg->nodes[i]->aux = orig->aux == 1 || orig->aux == 2 ? 0 : -1;
        }
        hpcz_graph_sweep(cg);
        size_t k = 0;
        for (size_t i = 0; i < cg->n_inputs; i++)
            if (cg->inputs[i]->init)
                cg->inputs[k++] = cg->inputs[i];
            else
                cg->inputs[i]->is_input = 0;
        cg->n_inputs = k;
        hpcz_value **co = hpcz_model_alloc(cp, n_out * sizeof *co);
        if (!co) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < cg->n_outputs; i++)
            cg->outputs[i]->is_output = 0;
        for (size_t i = 0; i < n_out; i++) {
            co[i] = hpcz_graph_find_value(cg, outs[i]->name);
            co[i]->is_output = 1;
        }
        cg->outputs = co;
        cg->n_outputs = n_out;
        cg->n_value_info = 0;
    }
    {
        hpcz_plan_opts po = {0};
        po.threads = ctx->threads;
        plan = hpcz_plan_new(cp, &po, err);
        if (!plan) {
            /* an op the runtime lacks: leave the chain as it is */
            hpcz_pass_note(ctx, "fold-constants", "not folded: %s", err->msg);
            st = HPCZ_OK;
            n_fold = 0;
            goto out;
        }
        res = calloc(n_out, sizeof *res);
        if (!res) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        if ((st = hpcz_plan_run(plan, NULL, res, err)))
            goto out;
    }
    for (size_t i = 0; i < n_out; i++)
        if ((int64_t)res[i].nbytes > max_bytes) {
            hpcz_pass_note(ctx, "fold-constants", "not folded: '%s' would be %zu bytes", outs[i]->name, res[i].nbytes);
            n_fold = 0;
            goto out;
        }
    /* results become initializers of the same names */
    for (size_t i = 0; i < n_out; i++) {
        hpcz_value *v = outs[i];
        hpcz_tensor *t = hpcz_tensor_new(m, v->name, res[i].dtype, res[i].ndim, res[i].dims);
        void *d = t ? hpcz_tensor_alloc(t) : NULL;
        if (!d) {
            st = hpcz_fail(err, HPCZ_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (res[i].nbytes)
            memcpy(d, res[i].data, res[i].nbytes);
        v->producer = NULL;
        if ((st = hpcz_graph_add_initializer(g, t, err)))
            goto out;
        v->dtype = res[i].dtype;
    }
rewrite:
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i]->aux = g->nodes[i]->aux == 1 ? -1 : 0;
    hpcz_graph_sweep(g);
    hpcz_drop_unused_inits(g);
    ctx->nodes_removed += n_fold;
    hpcz_pass_note(ctx, "fold-constants", "%zu node%s evaluated into %zu initializer%s", n_fold,
                   n_fold == 1 ? "" : "s", n_out, n_out == 1 ? "" : "s");
out:
    if (st || !n_fold)
        for (size_t i = 0; i < g->n_nodes; i++)
            g->nodes[i]->aux = 0;
    for (size_t i = 0; res && i < n_out; i++)
        hpcz_array_release(&res[i]);
    free(res);
    hpcz_plan_free(plan);
    hpcz_model_free(cp);
    free(buf);
    free(outs);
    free(order);
    return st;
}

const hpcz_pass hpcz_pass_fold_constants = {
    "fold-constants",
    "evaluate nodes whose inputs are all constant once, with the runtime, into initializers",
    opts,
    run,
};
