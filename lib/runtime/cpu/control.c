/*
 * control.c - If and Loop. Their bodies run as nested plans (rt_sub) that
 * read outer-scope values straight from the enclosing plan's buffers.
 */
#include "../rt.h"

static const hpcz_graph *graph_attr(const rt_ctx *c, const char *name)
{
    const hpcz_attr *a = hpcz_node_attr(c->node, name);
    return a && a->type == HPCZ_ATTR_GRAPH ? a->g : NULL;
}

static hpcz_status k_if(rt_ctx *c)
{
    hpcz_array *cond = rt_in(c, 0);
    if (c->infer)
        return HPCZ_OK; /* always dynamic: the branch decides the shapes */
    if (!cond || cond->numel != 1 || !cond->data)
        return rt_bad(c, "cond must hold one value");
    bool take = rt_load_d(cond->data, cond->dtype, 0) != 0;
    const hpcz_graph *g = graph_attr(c, take ? "then_branch" : "else_branch");
    if (!g)
        return rt_bad(c, "missing branch");
    if (g->n_outputs != c->n_out)
        return rt_bad(c, "branch has %zu outputs, node %zu", g->n_outputs, c->n_out);
    rt_sub *s = rt_sub_get(c, g, take ? 0 : 1);
    if (!s)
        return c->err->status;
    hpcz_array outs[64];
    if (c->n_out > 64)
        return rt_unsupported(c);
    memset(outs, 0, c->n_out * sizeof *outs); /* not all 64 at every run */
    hpcz_status st = rt_sub_run(c, s, NULL, 0, outs, c->n_out);
    for (size_t i = 0; i < c->n_out; i++) {
        if (!st)
            st = rt_out_take(c, i, &outs[i]);
        hpcz_array_release(&outs[i]);
    }
    return st;
}

/* Stacks per-iteration arrays along a new leading axis. */
static hpcz_status stack(rt_ctx *c, hpcz_array *parts, int64_t n, const hpcz_value *proto,
                         hpcz_array *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        /* no iteration: [0, ...] with the body's declared dims where known */
        int64_t d[RT_MAX_RANK] = {0};
        int nd = 1;
        if (proto && proto->ndim >= 0 && proto->ndim < RT_MAX_RANK) {
            for (int k = 0; k < proto->ndim; k++)
                d[nd++] = proto->dims[k].size > 0 ? proto->dims[k].size : 0;
        }
        int dt = proto && proto->dtype ? proto->dtype : HPCZ_DTYPE_FLOAT;
        return hpcz_array_alloc(out, dt, nd, d, c->err);
    }
    if (parts[0].ndim + 1 > RT_MAX_RANK)
        return rt_unsupported(c);
    int64_t d[RT_MAX_RANK];
    d[0] = n;
    memcpy(d + 1, parts[0].dims, (size_t)parts[0].ndim * sizeof *d);
    for (int64_t i = 1; i < n; i++)
        if (!rt_same_shape(&parts[i], &parts[0]) || parts[i].dtype != parts[0].dtype)
            return rt_bad(c, "scan output changes shape between iterations");
    hpcz_status st = hpcz_array_alloc(out, parts[0].dtype, parts[0].ndim + 1, d, c->err);
    if (st)
        return st;
    size_t blk = parts[0].nbytes;
    for (int64_t i = 0; i < n; i++)
        if (blk)
            memcpy((uint8_t *)out->data + (size_t)i * blk, parts[i].data, blk);
    return HPCZ_OK;
}

static hpcz_status k_loop(rt_ctx *c)
{
    if (c->infer)
        return HPCZ_OK;
    const hpcz_graph *body = graph_attr(c, "body");
    if (!body)
        return rt_bad(c, "missing body");
    hpcz_array *M = rt_in(c, 0), *cond0 = rt_in(c, 1);
    size_t nc = c->n_in >= 2 ? c->n_in - 2 : 0; /* loop-carried */
    if (body->n_inputs != nc + 2 || body->n_outputs < nc + 1 || c->n_out != body->n_outputs - 1)
        return rt_bad(c, "body signature does not match the node");
    size_t nscan = body->n_outputs - 1 - nc;
    if (nc > 60 || nscan > 60)
        return rt_unsupported(c);
    rt_sub *s = rt_sub_get(c, body, 0);
    if (!s)
        return c->err->status;
    int64_t max_trip = M && M->numel ? rt_load_i(M->data, M->dtype, 0) : INT64_MAX;
    bool cond = cond0 && cond0->numel ? rt_load_d(cond0->data, cond0->dtype, 0) != 0 : true;
    hpcz_array carried[64], owned_flag[1];
    (void)owned_flag;
    bool own[64] = {0};
    for (size_t k = 0; k < nc; k++)
        carried[k] = *c->in[2 + k];
    hpcz_array *scans[64] = {0};
    int64_t cap = 0, iters = 0;
    hpcz_status st = HPCZ_OK;
    hpcz_array iter_a, cond_a;
    int64_t iter_v = 0;
    uint8_t cond_v = 1;
    memset(&iter_a, 0, sizeof iter_a);
    memset(&cond_a, 0, sizeof cond_a);
    iter_a.dtype = HPCZ_DTYPE_INT64;
    iter_a.numel = 1;
    iter_a.nbytes = 8;
    iter_a.data = &iter_v;
    cond_a.dtype = HPCZ_DTYPE_BOOL;
    cond_a.numel = 1;
    cond_a.nbytes = 1;
    cond_a.data = &cond_v;
    for (int64_t i = 0; i < max_trip && cond; i++) {
        hpcz_array *ins[66];
        ins[0] = &iter_a;
        ins[1] = &cond_a;
        iter_v = i;
        cond_v = cond;
        for (size_t k = 0; k < nc; k++)
            ins[2 + k] = &carried[k];
        hpcz_array outs[128];
        memset(outs, 0, body->n_outputs * sizeof *outs); /* not all 128 per iteration */
        st = rt_sub_run(c, s, ins, nc + 2, outs, body->n_outputs);
        if (st) {
            for (size_t k = 0; k < body->n_outputs; k++)
                hpcz_array_release(&outs[k]);
            break;
        }
        cond = outs[0].numel ? rt_load_d(outs[0].data, outs[0].dtype, 0) != 0 : false;
        hpcz_array_release(&outs[0]);
        for (size_t k = 0; k < nc; k++) {
            if (own[k])
                hpcz_array_release(&carried[k]);
            carried[k] = outs[1 + k];
            own[k] = true;
        }
        if (iters == cap) {
            cap = cap ? cap * 2 : 16;
            for (size_t q = 0; q < nscan; q++) {
                hpcz_array *np = realloc(scans[q], (size_t)cap * sizeof *np);
                if (!np) {
                    st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
                    break;
                }
                scans[q] = np;
            }
        }
        for (size_t q = 0; q < nscan; q++) {
            if (!st)
                scans[q][iters] = outs[1 + nc + q];
            else
                hpcz_array_release(&outs[1 + nc + q]);
        }
        if (st)
            break;
        iters++;
    }
    for (size_t k = 0; k < nc && !st; k++) {
        hpcz_array tmp;
        if (own[k]) {
            tmp = carried[k];
            own[k] = false;
        } else {
            tmp = carried[k];
            tmp.data = rt_alloc(carried[k].nbytes);
            if (!tmp.data) {
                st = hpcz_fail(c->err, HPCZ_ERR_NOMEM, "out of memory");
                break;
            }
            if (carried[k].nbytes)
                memcpy(tmp.data, carried[k].data, carried[k].nbytes);
        }
        st = rt_out_take(c, k, &tmp);
        hpcz_array_release(&tmp);
    }
    for (size_t k = 0; k < nc; k++)
        if (own[k])
            hpcz_array_release(&carried[k]);
    for (size_t q = 0; q < nscan; q++) {
        if (!st) {
            hpcz_array out;
            st = stack(c, scans[q], iters, body->outputs[1 + nc + q], &out);
            if (!st)
                st = rt_out_take(c, nc + q, &out);
            hpcz_array_release(&out);
        }
        for (int64_t i = 0; i < iters && scans[q]; i++)
            hpcz_array_release(&scans[q][i]);
        free(scans[q]);
    }
    return st;
}

static const rt_op ops[] = {
    {"", "If", 1, 0, RT_NOFOLD | RT_ALWAYS_DYNAMIC, k_if, NULL},
    {"", "Loop", 1, 0, RT_NOFOLD | RT_ALWAYS_DYNAMIC, k_loop, NULL},
};

const rt_op_table rt_ops_control = {ops, HPCZ_ARRAY_SIZE(ops)};
